"""Server processes of the serving benchmark: the bare-WSGI ceiling app, start, readiness, stop, CPU."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from benchmarks.measure import tree_cpu_seconds

REPO = Path(__file__).resolve().parents[1]


# -- the ceiling: a bare WSGI app with precomputed bodies ------------------------------------

def precomputed_bodies(models_dir: Path, paths: list[str]) -> dict[str, bytes]:
    """Return PATH_INFO -> the exact body the service answers for each of ``paths``."""
    from service import create_app

    client = create_app({"models_dir": str(models_dir), "cache_size": 0}).test_client()
    bodies = {}
    for path in paths:
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}")
        bodies[path.split("?", 1)[0]] = response.data
    return bodies


def bare_app_factory(models_dir: Path, paths: list[str]):
    """Build the ceiling WSGI app: one dict lookup per request, no framework."""
    bodies = precomputed_bodies(models_dir, paths)
    not_found = b'{"error":{"status":404}}'

    def app(environ, start_response):
        body = bodies.get(environ["PATH_INFO"])
        if body is None:
            start_response("404 Not Found", [("Content-Type", "application/json"),
                                              ("Content-Length", str(len(not_found)))])
            return [not_found]
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def run_bare_server(models_dir: Path, port: int, paths: list[str]) -> None:
    """Serve the ceiling app with gunicorn gthread, 2 workers x 4 threads (preloaded)."""
    from gunicorn.app.base import BaseApplication

    class Bare(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": [f"127.0.0.1:{port}"], "workers": 2, "threads": 4,
                               "worker_class": "gthread", "preload_app": True, "accesslog": None,
                               "control_socket_disable": True}.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):
            return bare_app_factory(models_dir, paths)

    Bare().run()


# -- helpers -------------------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` from 127.0.0.1:``port``; return (status, headers, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


class Server:
    """A server subprocess with its log; stopped with SIGTERM."""

    def __init__(self, name: str, argv: list[str], port: int, workdir: Path, env: dict[str, str] | None = None):
        self.name, self.port = name, port
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                            env={**os.environ, **(env or {})})

    def wait_ready(self, path: str, timeout: float = 180) -> None:
        """Poll GET ``path`` until it answers 200; raise if the process exits or ``timeout`` s pass."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            try:
                if http_get(self.port, path)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout} s")
            time.sleep(0.25)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the master and its current workers."""
        return tree_cpu_seconds(self.process.pid)

    def worker_pids(self) -> list[int]:
        """Process ids of the master's children (the workers), sorted."""
        import psutil

        return sorted(child.pid for child in psutil.Process(self.process.pid).children())

    def stop(self) -> None:
        """SIGTERM the server and wait for it (SIGKILL after 60 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_all_workers_loaded(port: int, workers: int, timeout: float = 180) -> None:
    """Wait until every worker reports the model in /metrics (related_model_info per pid)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = http_get(port, "/metrics")[2].decode()
        if len(set(re.findall(r'related_model_info\{pid="(\d+)"', body))) >= workers:
            return
        time.sleep(0.25)
    raise RuntimeError("not every worker loaded the model")
