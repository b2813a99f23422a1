"""Serving benchmark: wrk against `related serve --workers 2` and a bare-WSGI ceiling in the same run.

Usage (needs wrk, `apt-get install wrk`, and ../shared for the Reuters pool):

    python benchmarks/serve_bench.py [--models-dir DIR] [--duration 10] [--rounds 3] [--out FILE]

Without --models-dir it writes the Reuters pool (benchmarks/reuters.py pool) and trains on it
in a temporary directory (Reuters stays out of the repo). It measures, on loopback:

* GET /articles/<id>/related?k=10 over 1,000 sampled ids at 1 and 32 connections against the
  ceiling (a bare WSGI app returning precomputed, byte-identical bodies under gunicorn gthread,
  2 workers x 4 threads), `related serve --workers 2`, and the service with its response cache
  off (every request through Flask); rounds are interleaved and the median is reported;
* POST /related with 500-word drafts at 1 connection, plus the in-process time split;
* a 20 s run at 32 connections during which 3 new model versions are published;
* the memory of each worker and what the model costs a worker privately.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED_DATA = REPO.parent / "shared" / "data" / "reuters21578.jsonl.gz"
K = 10
N_IDS = 1000
DRAFT_WORDS = 500


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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
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
        import psutil

        total = 0.0
        for process in [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children()]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def worker_pids(self) -> list[int]:
        import psutil

        return sorted(child.pid for child in psutil.Process(self.process.pid).children())

    def stop(self) -> None:
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


WRK_GET = """local paths = {%s}
local i = 0
request = function()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i])
end
"""
WRK_CHECK = """
local threads = {}
checked, mismatched = 0, 0
setup = function(thread) table.insert(threads, thread) end
response = function(status, headers, body)
  checked = checked + 1
  local version = headers["X-Model-Version"]
  if status ~= 200 or version == nil or not string.find(body, '"model_version":"' .. version .. '"', 1, true) then
    mismatched = mismatched + 1
  end
end
done = function(summary, latency, requests)
  local c, m = 0, 0
  for _, thread in ipairs(threads) do c = c + thread:get("checked"); m = m + thread:get("mismatched") end
  io.write(string.format("checked %d mismatched %d\\n", c, m))
end
"""
WRK_POST = """local bodies = {%s}
local i = 0
request = function()
  i = i + 1
  if i > #bodies then i = 1 end
  return wrk.format("POST", "/related", {["Content-Type"] = "application/json"}, bodies[i])
end
"""


def lua_string(text: str) -> str:
    return json.dumps(text)  # JSON string escapes are valid Lua for ASCII text


def parse_wrk(output: str) -> dict[str, Any]:
    """Extract req/s, latency percentiles, request count and errors from `wrk --latency` output."""
    def seconds(value: str, unit: str) -> float:
        return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]

    result: dict[str, Any] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
                              "requests": int(re.search(r"(\d+) requests in", output).group(1))}
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s|m)\b", output)
        result[f"p{pct}_ms"] = seconds(*match.groups()) * 1000
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = sum(map(int, socket_errors.groups())) if socket_errors else 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    result["errors"] = result["socket_errors"] + result["non_2xx"]
    checked = re.search(r"checked (\d+) mismatched (\d+)", output)
    if checked:
        result["checked"], result["mismatched"] = int(checked.group(1)), int(checked.group(2))
    return result


def wrk(port: int, script: Path, connections: int, duration: float) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "-s", str(script),
            f"http://127.0.0.1:{port}"]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")
    output = done.stdout
    return {**parse_wrk(output), "command": " ".join(argv[:-2] + [script.name, argv[-1]])}


# -- the parts of the benchmark -----------------------------------------------------------------

def build_model(workdir: Path) -> tuple[Path, Path]:
    """Write the Reuters pool and train on it; return (models_dir, corpus)."""
    if not SHARED_DATA.exists():
        raise click.ClickException(f"research data not available: {SHARED_DATA} is absent (use --models-dir)")
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "reuters.py"), "pool", "--out", str(workdir)],
                   check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    corpus = workdir / "reuters-pool.jsonl.gz"
    from training.pipeline import train

    train(corpus, workdir / "models", n_jobs=2)
    return workdir / "models", corpus


def make_drafts(models_dir: Path, n: int = 5, words: int = DRAFT_WORDS) -> list[dict[str, Any]]:
    """Build ``n`` drafts of exactly ``words`` body words from consecutive stored texts."""
    version_dir = models_dir / (models_dir / "CURRENT").read_text().strip()
    texts = [json.loads(line) for line in (version_dir / "texts.jsonl").read_text(encoding="utf-8").splitlines()]
    drafts, start = [], 0
    for _ in range(n):
        collected: list[str] = []
        title = texts[start]["title"]
        while len(collected) < words:
            collected += texts[start]["body"].split()
            start += 1
        drafts.append({"title": title, "body": " ".join(collected[:words]), "tags": [], "k": K})
    return drafts


def post_breakdown(models_dir: Path, drafts: list[dict[str, Any]], repeats: int = 40) -> dict[str, float]:
    """Median in-process times (ms) of the vectorizer transform and the exact scan for a draft."""
    from threadpoolctl import threadpool_limits

    from service.model import load_version
    from service.ranking import similar_to_vectors

    model = load_version(models_dir, (models_dir / "CURRENT").read_text().strip(), cache_size=0)
    transform_ms, scan_ms = [], []
    with threadpool_limits(limits=1):
        for i in range(repeats):
            draft = drafts[i % len(drafts)]
            record = {"title": draft["title"], "body": draft["body"], "tags": draft["tags"]}
            t0 = time.perf_counter()
            sparse, dense = model.vectorizer.transform([record])
            t1 = time.perf_counter()
            similar_to_vectors(model, sparse, dense, K)
            t2 = time.perf_counter()
            transform_ms.append((t1 - t0) * 1000)
            scan_ms.append((t2 - t1) * 1000)
    return {"transform_ms": statistics.median(transform_ms), "scan_ms": statistics.median(scan_ms),
            "articles": model.n_articles}


def rollup(pid: int | str = "self") -> dict[str, int]:
    """The memory totals of /proc/<pid>/smaps_rollup, in bytes (Rss, Pss, Private_Dirty, Anonymous, ...)."""
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return {name: int(kib) * 1024 for name, kib in re.findall(r"^(\w+):\s+(\d+) kB", text, re.M)}


def anonymous_bytes(pid: int | str = "self") -> int:
    """Anonymous memory (heap, Python objects) of a process."""
    return rollup(pid)["Anonymous"]


def memory_report(server: Server, version_dir: Path, array_bytes: int) -> dict[str, Any]:
    """Per worker: RSS, PSS, private anonymous memory, and resident pages of the mapped model files."""
    import psutil

    workers = []
    for pid in server.worker_pids():
        info = psutil.Process(pid).memory_full_info()
        mapped, current = 0, False
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            fields = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                current = len(fields) >= 6 and fields[5].startswith(str(version_dir))
            elif current and fields[0] == "Rss:":
                mapped += int(fields[1]) * 1024
        totals = rollup(pid)
        workers.append({"pid": pid, "rss": info.rss, "pss": info.pss, "uss": info.uss,
                        "private_dirty": totals["Private_Dirty"], "model_files_resident": mapped})
    return {"array_bytes": array_bytes, "workers": workers}


MEMPROBE = """
import gc, json, shutil, sys, tempfile
from pathlib import Path
sys.path.insert(0, {repo!r})
sys.path.insert(0, {bench!r})
from serve_bench import anonymous_bytes
import sklearn.feature_extraction.text, sklearn.decomposition, training.features, service.app  # imports only
from service import create_app
source = Path({models!r})
version = (source / "CURRENT").read_text().strip()
store_dir = Path(tempfile.mkdtemp())
app = create_app({{"models_dir": str(store_dir)}})  # the app, with no model yet
client = app.test_client()
client.get("/readyz")
gc.collect()
before = anonymous_bytes()
shutil.copytree(source / version, store_dir / version)
(store_dir / "CURRENT").write_text(version)
assert app.extensions["related"].store.refresh() is not None
gc.collect()
loaded = anonymous_bytes()
for path in {paths!r}:
    assert client.get(path).status_code == 200
gc.collect()
cached = anonymous_bytes()
for draft in {drafts!r}:
    assert client.post("/related", json=draft).status_code == 200
gc.collect()
shutil.rmtree(store_dir)
print(json.dumps({{"anonymous_before": before, "after_load": loaded, "after_gets": cached,
                  "anonymous_after": anonymous_bytes()}}))
"""


def model_private_cost(models_dir: Path, paths: list[str], drafts: list[dict[str, Any]]) -> dict[str, int]:
    """Private memory an app gains by loading the model, then answering the benchmark's GETs and drafts."""
    code = MEMPROBE.format(repo=str(REPO), bench=str(Path(__file__).parent), models=str(models_dir),
                           paths=paths, drafts=drafts)
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def publish_during_run(models_dir: Path, staged: list[Path], at: list[float], seen: list[tuple[float, str]],
                       published: list[tuple[float, str]], port: int, stop: threading.Event) -> None:
    """Move staged versions into the served store at the given offsets (s); poll /readyz meanwhile."""
    from training.model_dir import set_current

    start = time.monotonic()
    pending = list(zip(at, staged))
    while not stop.is_set():
        now = time.monotonic() - start
        if pending and now >= pending[0][0]:
            _, version_dir = pending.pop(0)
            os.rename(version_dir, models_dir / version_dir.name)
            set_current(models_dir, version_dir.name)
            published.append((round(now, 2), version_dir.name))
        try:
            seen.append((round(now, 2), json.loads(http_get(port, "/readyz", timeout=5)[2])["model_version"]))
        except (OSError, ValueError, KeyError):
            seen.append((round(now, 2), "readyz failed"))
        time.sleep(0.05)


def convergence(published: list[tuple[float, str]], seen: list[tuple[float, str]]) -> list[dict[str, Any]]:
    """For each published version: when /readyz first showed it and last showed an older one."""
    out = []
    for i, (t_pub, version) in enumerate(published):
        t_next = published[i + 1][0] if i + 1 < len(published) else float("inf")
        window = [(t, v) for t, v in seen if t_pub <= t < t_next]
        first = next((t for t, v in window if v == version), None)
        older = [t for t, v in window if v != version]
        out.append({"version": version, "published_s": t_pub, "first_seen_s": first,
                    "all_workers_by_s": max([first or t_pub, *older]) if first is not None else None})
    return out


def stage_versions(corpus: Path, workdir: Path, count: int) -> list[Path]:
    """Train ``count`` genuinely different versions (other SVD seeds) in a staging store."""
    from training.pipeline import train

    staged = []
    for i in range(count):
        result = train(corpus, workdir / f"staging-{i}", n_jobs=2, vectorizer_params={"random_state": 1 + i})
        staged.append(result.path)
    return staged


def stage_copies(models_dir: Path, workdir: Path, count: int) -> list[Path]:
    """Without a corpus: stage copies of the served version under new version ids."""
    source = models_dir / (models_dir / "CURRENT").read_text().strip()
    staged = []
    for i in range(count):
        version = f"{source.name}-copy{i}"
        target = workdir / "staging" / version
        shutil.copytree(source, target)
        manifest = json.loads((target / "manifest.json").read_text())
        manifest["version"] = version
        (target / "manifest.json").write_text(json.dumps(manifest))
        staged.append(target)
    return staged


def measure_run(server: Server, script: Path, connections: int, duration: float) -> dict[str, Any]:
    """One wrk run plus the CPU time the server spent on it (robust to other load on the machine)."""
    before = server.cpu_seconds()
    result = wrk(server.port, script, connections, duration)
    cpu = server.cpu_seconds() - before
    return {**result, "server_cpu_s": cpu, "per_cpu_s": result["requests"] / cpu if cpu > 0 else 0.0}


def median_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("rps", "p50_ms", "p99_ms", "per_cpu_s")
    return {**{key: statistics.median(r[key] for r in runs) for key in keys},
            "errors": sum(r["errors"] for r in runs), "requests": sum(r["requests"] for r in runs),
            "runs": runs}


def markdown(results: dict[str, Any]) -> str:
    """Render the results as the Serving section's tables."""
    lines = ["| Server | Connections | req/s (median) | p50 ms | p99 ms | errors | vs ceiling | "
             "requests per server CPU-second | vs ceiling (CPU) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for conns in ("1", "32"):
        ceiling = results["get"]["bare"][conns]
        for name, label in (("bare", "ceiling: bare WSGI, gthread 2x4"), ("related", "`related serve --workers 2`"),
                            ("nocache", "same, response cache off (all Flask)")):
            r = results["get"][name][conns]
            lines.append(f"| {label} | {conns} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                         f"{r['errors']} | {r['rps'] / ceiling['rps']:.0%} | {r['per_cpu_s']:,.0f} | "
                         f"{r['per_cpu_s'] / ceiling['per_cpu_s']:.0%} |")
    post = results["post"]
    lines += ["", f"POST /related, {DRAFT_WORDS}-word drafts, 1 connection: median {post['p50_ms']:.2f} ms, "
              f"p99 {post['p99_ms']:.2f} ms, {post['rps']:,.0f} req/s, {post['errors']} errors "
              f"(in process: transform {post['breakdown']['transform_ms']:.2f} ms + exact scan of "
              f"{post['breakdown']['articles']:,} articles {post['breakdown']['scan_ms']:.2f} ms)."]
    swap, sw = results["swap"], results["swap"]["wrk"]
    lines += ["", f"Swap under load: {sw['requests']:,} requests in {swap['duration']:g} s at 32 connections while "
              f"{len(swap['published'])} new versions were published: {sw['errors']} errors (socket "
              f"{sw['socket_errors']}, non-2xx {sw['non_2xx']}), {sw.get('mismatched', '?')} of "
              f"{sw.get('checked', '?'):,} responses whose body version differs from X-Model-Version, "
              f"p99 {sw['p99_ms']:.1f} ms. " + "; ".join(
                  f"{c['version']} published at {c['published_s']:.1f} s, first served {c['first_seen_s']:.1f} s, "
                  f"by every worker {c['all_workers_by_s']:.1f} s" for c in swap["convergence"]
                  if c["first_seen_s"] is not None) + "."]
    mem = results["memory"]
    probe = mem["model_private"]
    step = {key: (probe[key] - probe["anonymous_before"]) / 2**20 for key in ("after_load", "after_gets")}
    lines += ["", f"Memory: model arrays (.npy) {mem['array_bytes'] / 2**20:.1f} MiB, vectorizer file "
              f"{mem['vectorizer_bytes'] / 2**20:.1f} MiB (its arrays memory-mapped too). Private (anonymous) "
              f"memory a running app gains: loading the model {step['after_load']:.1f} MiB "
              f"({step['after_load'] * 2**20 / mem['array_bytes']:.0%} of the arrays); plus caching the "
              f"{results['ids']:,} GET answers {step['after_gets']:.1f} MiB in all; plus scoring the drafts "
              f"{probe['gain'] / 2**20:.1f} MiB in all ({probe['ratio']:.0%}). The mapped model files are "
              "page cache shared by all workers.",
              "", "| Worker | RSS MiB | PSS MiB | private written (Private_Dirty) MiB | model files resident "
              "(page cache) MiB |", "| --- | --- | --- | --- | --- |"]
    for w in mem["workers"]:
        lines.append(f"| {w['pid']} | {w['rss'] / 2**20:.1f} | {w['pss'] / 2**20:.1f} | "
                     f"{w['private_dirty'] / 2**20:.1f} | {w['model_files_resident'] / 2**20:.1f} |")
    return "\n".join(lines) + "\n"


@click.group(invoke_without_command=True)
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Serve this model store instead of training on the Reuters pool.")
@click.option("--corpus", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Corpus of --models-dir, to train the versions published during the swap run.")
@click.option("--duration", type=float, default=10.0, show_default=True, help="Seconds per wrk run.")
@click.option("--rounds", type=int, default=3, show_default=True, help="Interleaved rounds per configuration.")
@click.option("--swap-duration", type=float, default=20.0, show_default=True, help="Seconds of the swap run.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write JSON results here.")
@click.pass_context
def main(ctx: click.Context, models_dir: Path | None, corpus: Path | None, duration: float, rounds: int,
         swap_duration: float, out: Path | None) -> None:
    """Run the serving benchmark and print the Markdown tables."""
    if ctx.invoked_subcommand is not None:
        return
    if shutil.which("wrk") is None:
        raise click.ClickException("wrk is not installed (Debian: apt-get install wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    servers: list[Server] = []
    try:
        if models_dir is None:
            models_dir, corpus = build_model(workdir)
        else:  # serve a copy: the swap run publishes versions into the served store
            shutil.copytree(models_dir, workdir / "models", ignore=shutil.ignore_patterns(".tmp*"))
            models_dir = workdir / "models"
        results = run(models_dir, corpus, workdir, duration, rounds, swap_duration, servers)
    except Exception:
        for server in servers:
            click.echo(f"--- {server.name} (exit {server.process.poll()}) log tail:\n"
                       f"{server.log_path.read_text(errors='replace')[-3000:]}", err=True)
        raise
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    text = markdown(results)
    click.echo(text)
    if out is not None:
        out.write_text(json.dumps(results, indent=2, default=str) + "\n")


def run(models_dir: Path, corpus: Path | None, workdir: Path, duration: float, rounds: int,
        swap_duration: float, servers: list[Server]) -> dict[str, Any]:
    """Start the three servers, run every measurement, return the results."""
    from service.model import load_version

    model = load_version(models_dir, (models_dir / "CURRENT").read_text().strip(), cache_size=0)
    # the versions published during the swap run, trained before any server starts
    staged = stage_versions(corpus, workdir, 3) if corpus else stage_copies(models_dir, workdir, 3)
    ids = model.article_ids.tolist()
    paths = [f"/articles/{i}/related?k={K}" for i in random.Random(0).sample(ids, min(N_IDS, len(ids)))]
    get_script = workdir / "get.lua"
    get_script.write_text(WRK_GET % ",".join(lua_string(p) for p in paths))
    drafts = make_drafts(models_dir)
    post_script = workdir / "post.lua"
    post_script.write_text(WRK_POST % ",".join(lua_string(json.dumps(d)) for d in drafts))

    related = str(Path(sys.executable).with_name("related"))
    serve = [related, "serve"] if Path(related).exists() else [
        sys.executable, "-c", "import sys; from service.cli import serve; sys.exit(serve())"]
    env = {"RELATED_RELOAD_INTERVAL": "1"}
    ports = {name: free_port() for name in ("bare", "related", "nocache")}
    paths_file = workdir / "paths.json"
    paths_file.write_text(json.dumps(paths))
    servers.append(Server("bare", [sys.executable, __file__, "bare", "--models-dir", str(models_dir),
                                   "--port", str(ports["bare"]), "--paths", str(paths_file)], ports["bare"], workdir))
    servers.append(Server("related", [*serve, "--models-dir", str(models_dir), "--port", str(ports["related"]),
                                      "--workers", "2"], ports["related"], workdir, env))
    servers.append(Server("nocache", [*serve, "--models-dir", str(models_dir), "--port", str(ports["nocache"]),
                                      "--workers", "2"], ports["nocache"], workdir,
                          {**env, "RELATED_CACHE_SIZE": "0"}))
    servers[0].wait_ready(paths[0].split("?")[0])
    for server in servers[1:]:
        server.wait_ready("/readyz")
        wait_all_workers_loaded(server.port, 2)
    bare_body = http_get(ports["bare"], paths[0].split("?")[0])[2]
    assert http_get(ports["related"], paths[0])[2] == bare_body, "ceiling and service bodies differ"

    for name, port in ports.items():  # warm up: fill every worker's caches
        wrk(port, get_script, 32, 3)
    get: dict[str, dict[str, Any]] = {name: {} for name in ports}
    runs: dict[tuple[str, str], list] = {}
    for _ in range(rounds):
        for conns in (1, 32):
            for name, port in ports.items():
                server = next(server for server in servers if server.name == name)
                runs.setdefault((name, str(conns)), []).append(measure_run(server, get_script, conns, duration))
    for (name, conns), measured in runs.items():
        get[name][conns] = median_runs(measured)

    post = wrk(ports["related"], post_script, 1, duration)
    post["breakdown"] = post_breakdown(models_dir, drafts)

    servers[0].stop()
    servers[2].stop()
    version_dir = models_dir / model.version
    memory = memory_report(servers[1], version_dir, model.array_bytes)
    memory["vectorizer_bytes"] = (version_dir / "vectorizer.joblib").stat().st_size
    cost = model_private_cost(models_dir, paths, drafts)
    gain = cost["anonymous_after"] - cost["anonymous_before"]
    memory["model_private"] = {**cost, "gain": gain, "ratio": gain / model.array_bytes}

    seen: list[tuple[float, str]] = []
    published: list[tuple[float, str]] = []
    stop = threading.Event()
    at = [swap_duration * f for f in (0.2, 0.45, 0.7)]
    poller = threading.Thread(target=publish_during_run,
                              args=(models_dir, staged, at, seen, published, ports["related"], stop))
    check_script = workdir / "swap.lua"
    check_script.write_text(get_script.read_text() + WRK_CHECK)
    poller.start()
    try:
        swap_wrk = wrk(ports["related"], check_script, 32, swap_duration)
    finally:
        stop.set()
        poller.join()
    swap = {"duration": swap_duration, "wrk": swap_wrk, "published": published,
            "convergence": convergence(published, seen), "readyz_failures": sum(v == "readyz failed" for _, v in seen)}
    load = os.getloadavg()
    return {"get": get, "post": post, "swap": swap, "memory": memory, "k": K, "ids": len(paths),
            "model": {"version": model.version, "articles": model.n_articles}, "loadavg": load,
            "cpus": os.cpu_count()}


@main.command("bare")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--port", type=int, required=True)
@click.option("--paths", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="JSON list of the request paths to precompute.")
def bare(models_dir: Path, port: int, paths: Path) -> None:
    """Run the ceiling server (used by the benchmark itself)."""
    run_bare_server(models_dir, port, json.loads(paths.read_text()))


if __name__ == "__main__":
    main()
