"""End to end: `serve` runs the real gunicorn with 2 workers on a free port; query, metrics, swap, errors."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from service.cli import gunicorn_options, serve

ROUTE = "/articles/<path:article_id>/related"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def raw(port: int, data: bytes) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.fixture
def server(models_dir: Path, tmp_path: Path):
    """Start `serve --workers 2` in a subprocess; yield (port, process); stop it with SIGTERM."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(RELATED_RELOAD_INTERVAL="0.2", TMPDIR=str(tmp_path))
    code = "import sys; from service.cli import serve; sys.exit(serve())"
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", code, "--models-dir", str(models_dir), "--port", str(port), "--workers", "2"],
            env=env, cwd=Path(__file__).resolve().parents[1], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, log_path.read_text(errors="replace")
        try:
            if get(port, "/readyz")[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "server did not become ready"
        time.sleep(0.2)
    yield port, process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def metric_samples(port: int) -> list:
    status, headers, body = get(port, "/metrics")
    assert status == 200
    return [s for f in text_string_to_metric_families(body.decode()) for s in f.samples]


@pytest.mark.slow
def test_real_gunicorn_serves_counts_swaps_and_stops(server, models_dir, tmp_path, tiny_corpus, train_tiny):
    port, process = server
    status, headers, body = get(port, "/articles/a/b/related?k=3")
    assert status == 200 and headers["Server"].startswith("gunicorn")
    payload = json.loads(body)
    assert payload["article"]["id"] == "a/b" and len(payload["related"]) == 3
    status, _, body = get(port, "/articles/a/b/related?k=3", {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""
    status, _, body = get(port, "/articles/" + "x" * 5000 + "/related")
    assert status == 404 and json.loads(body)["error"]["code"] == "unknown_article"

    # both workers load the model (the second may still be booting when the first answers)
    deadline = time.monotonic() + 60
    while len({s.labels["pid"] for s in metric_samples(port) if s.name == "related_model_info"}) < 2:
        assert time.monotonic() < deadline, "the second worker never loaded the model"
        time.sleep(0.2)
    # metrics are summed over both workers (each request on a new connection)
    for _ in range(40):
        assert get(port, "/articles/energy-0/related")[0] == 200
    counted = sum(s.value for s in metric_samples(port) if s.name == "related_http_requests_total"
                  and s.labels == {"route": ROUTE, "method": "GET", "status": "200"})
    assert counted == 41

    # gunicorn's own protocol errors use the JSON shape too
    status, error = raw(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414 and error["error"]["status"] == 414
    status, error = raw(port, b"NONSENSE\r\n\r\n")
    assert status == 400 and set(error["error"]) == {"status", "code", "message"}

    # a new version is picked up by every worker
    new_version = train_tiny(tiny_corpus[0], models_dir, n_components=3)
    deadline = time.monotonic() + 30
    while True:
        versions = {get(port, "/articles/energy-0/related")[1]["X-Model-Version"] for _ in range(10)}
        if versions == {new_version}:
            break
        assert time.monotonic() < deadline, versions
        time.sleep(0.2)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert not list(tmp_path.glob("related-metrics-*")), "the metrics directory was not removed"


def test_serve_help_and_bad_settings():
    runner = CliRunner()
    result = runner.invoke(serve, ["--help"])
    assert result.exit_code == 0
    for option in ("--models-dir", "--host", "--port", "--workers", "--threads"):
        assert option in result.output
    result = runner.invoke(serve, ["--port", "1"], env={"RELATED_MAX_K": "abc"})
    assert result.exit_code == 2 and "RELATED_MAX_K" in result.output
    result = runner.invoke(serve, ["--workers", "0"])
    assert result.exit_code == 2


def test_gunicorn_options_are_production_settings():
    options = gunicorn_options(workers=3)
    assert options["workers"] == 3
    assert options["worker_class"] == "gthread"
    assert options["preload_app"] is False
    assert options["max_requests"] > 0 and options["max_requests_jitter"] > 0
    assert 0 < options["limit_request_line"] <= 8190 and options["timeout"] > 0
    assert callable(options["child_exit"]) and callable(options["post_fork"])
    with pytest.raises(ValueError, match="unknown gunicorn setting"):
        gunicorn_options(wrokers=2)
