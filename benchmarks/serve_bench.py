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

Its parts: serve_control.py (the ceiling app, server processes), serve_wrk.py (wrk scripts,
runs and parsing), serve_memory.py (worker memory, the model's private cost), serve_swap.py
(publishing under load); measure.py holds the measuring helpers shared by every benchmark.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import click

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.serve_control import (  # noqa: E402
    Server, free_port, http_get, run_bare_server, wait_all_workers_loaded)
from benchmarks.serve_memory import memory_report, model_private_cost  # noqa: E402
from benchmarks.serve_swap import convergence, publish_during_run, stage_copies, stage_versions  # noqa: E402
from benchmarks.serve_wrk import (  # noqa: E402
    WRK_CHECK, WRK_GET, WRK_POST, lua_string, measure_run, median_runs, wrk)

SHARED_DATA = REPO.parent / "shared" / "data" / "reuters21578.jsonl.gz"
K = 10
N_IDS = 1000
DRAFT_WORDS = 500


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


def markdown(results: dict[str, Any]) -> str:
    """Render the results as the Serving section's tables."""
    lines = ["| Server | Connections | req/s (median) | p50 ms | p99 ms | errors | vs ceiling | "
             "requests per server CPU-second | vs ceiling (CPU) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for conns in ("1", "32"):
        ceiling = results["get"]["bare"][conns]
        threads = results.get("threads", 2)
        service = "`related serve --workers 2`" + (f" `--threads {threads}`" if threads != 2 else "")
        for name, label in (("bare", "ceiling: bare WSGI, gthread 2x4"), ("related", service),
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
@click.option("--threads", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Threads per worker of the service under test (`related serve --threads`).")
@click.pass_context
def main(ctx: click.Context, models_dir: Path | None, corpus: Path | None, duration: float, rounds: int,
         swap_duration: float, out: Path | None, threads: int) -> None:
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
        results = run(models_dir, corpus, workdir, duration, rounds, swap_duration, servers, threads)
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
        swap_duration: float, servers: list[Server], threads: int = 2) -> dict[str, Any]:
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
                                      "--workers", "2", "--threads", str(threads)], ports["related"], workdir, env))
    servers.append(Server("nocache", [*serve, "--models-dir", str(models_dir), "--port", str(ports["nocache"]),
                                      "--workers", "2", "--threads", str(threads)], ports["nocache"], workdir,
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
    return {"get": get, "post": post, "swap": swap, "memory": memory, "k": K, "ids": len(paths), "threads": threads,
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
