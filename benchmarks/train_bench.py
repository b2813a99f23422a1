"""Training benchmark: `related train` beside a plain TF-IDF + sparse_dot_topn baseline (time, memory, P@10)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
try:
    from benchmarks.measure import Run, last_line, machine, measure, wait_for_load
except ImportError:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(REPO))
    from benchmarks.measure import Run, last_line, machine, measure, wait_for_load

OUT_DIR = REPO / "benchmarks" / "out"
TARGETS = {"reuters_ratio": 2.5, "reuters_peak_mib": 600, "synthetic_100k_s": 150, "synthetic_100k_mib": 3072}


def baseline_job(corpus: Path, out: Path, k: int = 10, n_threads: int = 2) -> dict[str, float]:
    """The baseline: TfidfVectorizer on title + body, sparse_dot_topn top k + 1, self dropped.

    Parameters
    ----------
    corpus : Path
        JSONL.gz with ``id``, ``title``, ``body``.
    out : Path
        ``.npz`` written with ``ids`` (n,) and ``indices`` (n, k), -1 padded.
    k : int
        Related articles per article.
    n_threads : int
        Threads of ``sp_matmul_topn``.

    Returns
    -------
    dict of str to float
        Phase timings in seconds (``read_s``, ``fit_s``, ``topn_s``).
    """
    import gzip

    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sparse_dot_topn import sp_matmul_topn

    t0 = time.perf_counter()
    ids, texts = [], []
    with gzip.open(corpus, "rt", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            ids.append(record["id"])
            texts.append(f"{record.get('title') or ''}\n{record.get('body') or ''}")
    t1 = time.perf_counter()
    x = TfidfVectorizer(sublinear_tf=True, stop_words="english", min_df=2).fit_transform(texts)
    t2 = time.perf_counter()
    top = sp_matmul_topn(x, x.T, top_n=k + 1, sort=True, n_threads=n_threads)
    n = x.shape[0]
    cols = np.full((n, k + 1), -1, dtype=np.int64)
    lengths = np.diff(top.indptr)
    rows = np.repeat(np.arange(n), lengths)
    slots = np.arange(top.indptr[-1]) - np.repeat(top.indptr[:-1], lengths)
    cols[rows, slots] = top.indices
    cols[cols == np.arange(n)[:, None]] = -1
    order = np.argsort(cols < 0, axis=1, kind="stable")  # keep rank order, empty slots last
    indices = np.take_along_axis(cols, order, axis=1)[:, :k]
    t3 = time.perf_counter()
    np.savez(out, ids=np.array(ids), indices=indices)
    return {"read_s": t1 - t0, "fit_s": t2 - t1, "topn_s": t3 - t2, "vocabulary": x.shape[1]}


def score(related: dict[str, list[str]], labels: Path, queries: Path) -> dict:
    """P@10, MAP@10, nDCG@10 and coverage of ``related`` by the EVALUATION.md protocol."""
    from training.evaluate import evaluate, load_labels

    query_ids = [q for q in queries.read_text(encoding="utf-8").split() if q]
    return evaluate(related, load_labels(labels, "topics"), query_ids, k=10)


def related_executable() -> str:
    """The `related` console script of this interpreter's environment."""
    beside = Path(sys.executable).with_name("related")
    found = str(beside) if beside.exists() else shutil.which("related")
    if not found:
        raise click.ClickException("`related` not found: pip install -e . into this environment")
    return found


def run_train(corpus: Path, work: Path, timeout: float, echo: bool) -> tuple[Run, Path]:
    """Measure `related train` on ``corpus`` into a fresh model store under ``work``."""
    models = Path(tempfile.mkdtemp(prefix="models-", dir=work))
    run = measure([related_executable(), "train", "--corpus", str(corpus), "--models-dir", str(models)],
                  timeout, echo)
    current = models / "CURRENT"
    if run.returncode == 0 and current.exists():
        manifest = json.loads((models / current.read_text().strip() / "manifest.json").read_text())
        run.extra = {key: manifest.get(key) for key in ("timings", "counts", "params")}
    return run, models


def run_baseline(corpus: Path, work: Path, timeout: float) -> tuple[Run, Path]:
    """Measure the baseline job on ``corpus`` in its own interpreter."""
    out = Path(tempfile.mkdtemp(prefix="baseline-", dir=work)) / "top10.npz"
    run = measure([sys.executable, str(Path(__file__).resolve()), "baseline", "--corpus", str(corpus),
                   "--out", str(out)], timeout)
    if run.returncode == 0:
        run.extra = json.loads(run.stdout)
    return run, out


def train_lists(models: Path) -> dict[str, list[str]]:
    """Top-10 lists of the CURRENT version, through `related export -k 10`."""
    from training.evaluate import read_export

    export = models / "export.jsonl"
    subprocess.run([related_executable(), "export", "--models-dir", str(models), "-k", "10",
                    "--out", str(export)], check=True)
    return read_export(export)


def baseline_lists(npz: Path) -> dict[str, list[str]]:
    """Top-10 lists written by :func:`baseline_job`."""
    import numpy as np

    data = np.load(npz, allow_pickle=False)
    ids = [str(i) for i in data["ids"]]
    return {ids[r]: [ids[j] for j in row if j >= 0] for r, row in enumerate(data["indices"])}


def _row(corpus: str, system: str, n: int, run: Run, quality: dict | None) -> dict:
    """One table row."""
    return {"corpus": corpus, "system": system, "articles": n, "run": asdict(run), "quality": quality}


def print_table(rows: list[dict]) -> None:
    """Print every measured row: wall time, memory, quality."""
    click.echo(f"\n{'corpus':<18}{'system':<9}{'articles':>9}{'wall s':>8}{'RSS MiB':>8}{'PSS':>6}"
               f"{'maxrss':>7}{'P@10':>7}{'nDCG@10':>8}{'cov':>6}  note")
    for r in rows:
        run, q = r["run"], r["quality"] or {}
        fmt = lambda key: f"{q[key]:.3f}" if key in q else "-"  # noqa: E731
        note = "TIMED OUT" if run["timed_out"] else ("" if run["returncode"] == 0 else f"exit {run['returncode']}")
        click.echo(f"{r['corpus']:<18}{r['system']:<9}{r['articles']:>9}{run['wall_s']:>8.2f}"
                   f"{run['peak_rss_mib']:>8.0f}{run['peak_pss_mib']:>6.0f}{run['maxrss_mib'] or 0:>7.0f}"
                   f"{fmt('precision_at_k')[:5]:>7}{fmt('ndcg_at_k')[:5]:>8}{fmt('coverage')[:5]:>6}  {note}")


def bench_corpus(name: str, corpus: Path, n: int, work: Path, opts: dict, labels=None, queries=None,
                 repeats: int = 1) -> tuple[list[dict], dict]:
    """Measure the baseline and `related train` on one corpus ``repeats`` times; summarise medians."""
    rows = []
    for rep in range(repeats):
        for system in ("baseline", "related"):
            wait_for_load(opts["max_load"], opts["max_wait"])
            click.echo(f"[{name} {rep + 1}/{repeats}] {system} (load {os.getloadavg()[0]:.2f}) ...", err=True)
            if system == "related":
                run, where = run_train(corpus, work, opts["timeout"], opts["echo"])
            else:
                run, where = run_baseline(corpus, work, opts["timeout"])
            quality = None
            if labels is not None and run.returncode == 0:
                lists = train_lists(where) if system == "related" else baseline_lists(where)
                quality = score(lists, labels, queries)
            shutil.rmtree(where if system == "related" else where.parent, ignore_errors=True)
            if run.returncode != 0:
                run.extra["last_stderr_line"] = last_line(run.stderr_tail)
                click.echo(f"  {system} {'timed out' if run.timed_out else 'failed'} after {run.wall_s:.0f} s;"
                           f" last stderr line: {run.extra['last_stderr_line']}", err=True)
            rows.append(_row(name, system, n, run, quality))
    summary = {}
    for system in ("baseline", "related"):
        runs = [r["run"] for r in rows if r["system"] == system and r["run"]["returncode"] == 0]
        if runs:
            summary[system] = {key: statistics.median(r[key] for r in runs)
                               for key in ("wall_s", "peak_rss_mib", "peak_pss_mib", "maxrss_mib")}
            scores = [r["quality"] for r in rows if r["system"] == system and r["quality"]]
            if scores:
                summary[system]["quality"] = scores[0]
                summary[system]["quality_same_every_run"] = all(q == scores[0] for q in scores)
    if len(summary) == 2:
        summary["ratio_wall"] = round(summary["related"]["wall_s"] / summary["baseline"]["wall_s"], 2)
    return rows, summary


def report_targets(summary: dict) -> None:
    """Print each corpus's medians, the wall-time ratio, and the issue's targets met or missed."""
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    for name, s in summary.items():
        parts = [f"{system} {s[system]['wall_s']:.2f} s / {s[system]['peak_rss_mib']:.0f} MiB"
                 for system in ("related", "baseline") if system in s]
        ratio = f"  ratio {s['ratio_wall']:.2f}x" if "ratio_wall" in s else ""
        click.echo(f"{name} (median): " + ", ".join(parts) + ratio)
        related = s.get("related")
        if name == "reuters-pool" and related and "ratio_wall" in s:
            click.echo(f"  target ratio <= {TARGETS['reuters_ratio']}: {verdict(s['ratio_wall'] <= TARGETS['reuters_ratio'])};"
                       f" peak <= {TARGETS['reuters_peak_mib']} MiB:"
                       f" {verdict(related['peak_rss_mib'] <= TARGETS['reuters_peak_mib'])}")
        if name == "synthetic-100000":
            ok_t = bool(related) and related["wall_s"] <= TARGETS["synthetic_100k_s"]
            ok_m = bool(related) and related["peak_rss_mib"] <= TARGETS["synthetic_100k_mib"]
            click.echo(f"  target <= {TARGETS['synthetic_100k_s']} s: {verdict(ok_t)};"
                       f" peak <= {TARGETS['synthetic_100k_mib']} MiB: {verdict(ok_m)}")


@click.group(invoke_without_command=True)
@click.option("--sizes", default="100000", show_default=True,
              help="Comma-separated synthetic corpus sizes ('' for none).")
@click.option("--skip-reuters", is_flag=True, help="Skip the Reuters pool pair.")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1), help="Reuters pair repeats.")
@click.option("--out", "out", default="train_bench.json", show_default=True, type=click.Path(path_type=Path),
              help="Results JSON (a bare file name goes under benchmarks/out/).")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds before a run is killed.")
@click.option("--max-load", type=float, help="Wait for the 1-min load average to fall below this.")
@click.option("--max-wait", default=300.0, show_default=True, help="Longest wait for --max-load, s.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep generated corpora here (outside the repo) and reuse them; default: a temp dir.")
@click.option("--echo", is_flag=True, help="Show `related train`'s stderr (progress bar) live.")
@click.pass_context
def main(ctx, sizes, skip_reuters, repeats, out, timeout, max_load, max_wait, workdir, echo) -> None:
    """Time, peak memory and quality of `related train` beside the plain TF-IDF baseline."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        from benchmarks import reuters, synthetic
    except ImportError:  # run as a script: the repository root is not on sys.path
        sys.path.insert(0, str(REPO))
        from benchmarks import reuters, synthetic
    try:
        size_list = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {sizes!r}", param_hint="--sizes")
    if any(n < 2 for n in size_list):
        raise click.BadParameter(f"sizes must be >= 2, got {sizes!r}", param_hint="--sizes")
    work = Path(workdir or tempfile.mkdtemp(prefix="train-bench-")).resolve()
    if work == REPO or REPO in work.parents:
        raise click.BadParameter(f"{work} is inside the repository; corpora must stay out of it",
                                 param_hint="--workdir")
    work.mkdir(parents=True, exist_ok=True)
    out = out if out.is_absolute() or out.parent != Path(".") else OUT_DIR / out
    opts = {"timeout": timeout, "max_load": max_load, "max_wait": max_wait, "echo": echo}
    results = {"command": "python benchmarks/train_bench.py " + " ".join(sys.argv[1:]),
               "machine": machine(), "targets": TARGETS, "summary": {}, "rows": []}
    try:
        if not skip_reuters:
            pool_dir = work / "reuters"
            if not (pool_dir / "reuters-test-queries.txt").exists():
                reuters.write_pool(pool_dir)
            rows, summary = bench_corpus(
                "reuters-pool", pool_dir / "reuters-pool.jsonl.gz", reuters.POOL_SIZE, work, opts,
                pool_dir / "reuters-labels.jsonl.gz", pool_dir / "reuters-test-queries.txt", repeats)
            results["rows"] += rows
            results["summary"]["reuters-pool"] = summary
        for n in size_list:
            corpus = work / f"synthetic-{n}-seed0.jsonl.gz"
            if not corpus.exists():
                click.echo(f"generating {n} synthetic articles ...", err=True)
                synthetic.write_corpus(corpus, n, seed=0)
            rows, summary = bench_corpus(f"synthetic-{n}", corpus, n, work, opts)
            results["rows"] += rows
            results["summary"][f"synthetic-{n}"] = summary
    except FileNotFoundError as exc:  # no ../shared: both the pool and the synthetic text need Reuters
        raise click.ClickException(f"{exc}; this benchmark needs the Reuters data") from None
    finally:
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results["rows"])
    report_targets(results["summary"])
    click.echo(f"results: {out}")
    if any(r["run"]["returncode"] != 0 for r in results["rows"]):
        sys.exit(1)


@main.command(hidden=True)
@click.option("--corpus", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def baseline(corpus: Path, out: Path) -> None:
    """Run the baseline job (as its own process, so its peak memory is its own)."""
    click.echo(json.dumps(baseline_job(corpus, out)))


if __name__ == "__main__":
    main()
