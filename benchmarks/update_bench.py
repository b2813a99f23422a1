"""Update benchmark: `related update` with a 1 % Reuters delta against `related train`, and identity with `train --features-from`."""

from __future__ import annotations

import compileall
import gzip
import json
import os
import re
import shutil
import statistics
import sys
from pathlib import Path

import click
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.measure import run_timed  # noqa: E402
from training import model_dir  # noqa: E402

RELATED = Path(sys.executable).parent / "related"
DEFAULT_POOL = Path("/tmp/reuters/reuters-pool.jsonl.gz")
EDIT_NOTE = "\n(Updated: figures revised.)"


def edit(record: dict) -> dict:
    """An edited version of a record: its body cut to two thirds, plus a correction line.

    Parameters
    ----------
    record : dict

    Returns
    -------
    dict
    """
    words = record["body"].split()
    return {**record, "body": " ".join(words[: max(1, 2 * len(words) // 3)]) + EDIT_NOTE}


def make_inputs(pool: list[dict], work: Path, held_out: int, edited: int, seed: int) -> dict[str, Path]:
    """Write the base corpus, the delta and the updated corpus (row order of docs/update.md).

    Parameters
    ----------
    pool : list of dict
        The Reuters pool records.
    work : Path
        Output directory.
    held_out, edited : int
        Articles left out of the base and added by the delta; base articles the delta edits.
    seed : int

    Returns
    -------
    dict of str to Path
    """
    rng = np.random.default_rng(seed)
    long_enough = [i for i, r in enumerate(pool) if len(r["body"].split()) >= 30]
    picked = rng.choice(long_enough, held_out + edited, replace=False)
    added, changed = set(picked[:held_out].tolist()), set(picked[held_out:].tolist())
    base = [r for i, r in enumerate(pool) if i not in added]
    delta = [edit(pool[i]) for i in sorted(changed)] + [pool[i] for i in sorted(added)]
    order = rng.permutation(len(delta))
    delta = [delta[i] for i in order]
    changes = {r["id"]: r for r in delta}
    base_ids = {r["id"] for r in base}
    updated = [changes.get(r["id"], r) for r in base] + [r for r in delta if r["id"] not in base_ids]
    paths = {}
    for name, records in (("base", base), ("delta", delta), ("updated", updated)):
        paths[name] = work / f"{name}.jsonl"
        with open(paths[name], "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return paths


def timed(*args: object) -> dict:
    """Run `related ARGS`; return its wall and CPU seconds, the time it reports and its stdout.

    CPU time (user + system of the process and its threads) depends less on the other jobs
    of a shared machine than wall time does. Fails loudly on a non-zero exit.
    """
    os.sync()  # the setup's writes (a store copied just before) are not the command's to flush
    run = run_timed([str(RELATED), *map(str, args)])
    if run.returncode:
        raise click.ClickException(f"related {' '.join(map(str, args))} failed:\n{run.stderr}")
    reported = re.search(r"  time: (\d+\.\d+) s$", run.stdout, re.M)
    return {"wall_s": run.wall_s, "cpu_s": run.cpu_s,
            "in_process_s": float(reported.group(1)) if reported else None, "stdout": run.stdout}


def compare(a: Path, b: Path) -> dict:
    """Ids, list order and scores of two versions, and whether their `related export`s match.

    Parameters
    ----------
    a, b : Path
        Version directories.

    Returns
    -------
    dict
    """
    load = {p: {k: np.asarray(model_dir.load_array(p, k)) for k in
                ("article_ids", "neighbors_indices", "neighbors_scores")} for p in (a, b)}
    x, y = load[a], load[b]
    same_ids = bool(np.array_equal(x["article_ids"], y["article_ids"]))
    rows = int((x["neighbors_indices"] != y["neighbors_indices"]).any(axis=1).sum()) if same_ids else -1
    exports = [timed("export", "--models-dir", p.parent, "--version", p.name, "-k", 50)["stdout"] for p in (a, b)]
    return {
        "articles": len(x["article_ids"]), "ids_identical": same_ids, "rows_with_other_lists": rows,
        "max_score_diff": float(np.abs(x["neighbors_scores"] - y["neighbors_scores"]).max()) if same_ids else None,
        "exports_identical": exports[0] == exports[1],
    }


def manifest_of(models: Path) -> dict:
    """The manifest of the current version of a store."""
    return model_dir.read_manifest(model_dir.resolve(models))


@click.command()
@click.option("--pool", "pool_path", default=DEFAULT_POOL, show_default=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Pool corpus, JSON Lines, optionally gzip (default: the Reuters pool of "
                   "python benchmarks/reuters.py pool --out /tmp/reuters).")
@click.option("--work", default=Path("/tmp/update-bench"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Scratch directory (replaced).")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1))
@click.option("--held-out", default=54, show_default=True, type=click.IntRange(0), help="Articles the delta adds.")
@click.option("--edited", default=54, show_default=True, type=click.IntRange(0), help="Articles the delta edits.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Write the results here.")
def main(pool_path, work, repeats, held_out, edited, seed, json_out):
    """Time `related update` against `related train` and check it equals `train --features-from`."""
    if not pool_path.is_file():
        raise click.ClickException(f"{pool_path} not found: run `python benchmarks/reuters.py pool --out "
                                   f"{pool_path.parent}` first (needs ../shared/data)")
    gz = pool_path.read_bytes()[:2] == b"\x1f\x8b"
    with (gzip.open if gz else open)(pool_path, "rt", encoding="utf-8") as fh:
        pool = [json.loads(line) for line in fh if line.strip()]
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    compileall.compile_dir(REPO / "training", quiet=1)  # byte-code, as `make install` leaves it
    compileall.compile_dir(REPO / "service", quiet=1)
    paths = make_inputs(pool, work, held_out, edited, seed)
    load_before = os.getloadavg()
    base = timed("train", "--corpus", paths["base"], "--models-dir", work / "base")
    shutil.copytree(work / "base", work / "warm-up")  # the update's code paths once, untimed
    timed("update", "--corpus", paths["delta"], "--models-dir", work / "warm-up")
    runs = []
    for r in range(repeats):  # interleaved, so both commands meet the same machine load
        store = work / f"update-{r}"
        # the store as production leaves it: its current version written in place by `related train`
        # (a copy would be new files, whose checksums an update cannot trust without hashing them)
        timed("train", "--corpus", paths["base"], "--models-dir", store)
        update = timed("update", "--corpus", paths["delta"], "--models-dir", store)
        train = timed("train", "--corpus", paths["updated"], "--models-dir", work / f"train-{r}")
        runs.append({"update": update, "train": train, "rows": manifest_of(store)["update"]["rows"],
                     "load": os.getloadavg()})
    updated_0 = model_dir.resolve(work / "update-0")
    parent_0 = updated_0.parent / model_dir.read_manifest(updated_0)["parent_version"]
    features_from = timed("train", "--corpus", paths["updated"], "--features-from", parent_0,
                          "--models-dir", work / "features-from")
    identity = compare(updated_0, model_dir.resolve(work / "features-from"))
    medians = {f"{cmd}_{key}": statistics.median(r[cmd][key] for r in runs)
               for cmd in ("update", "train") for key in ("wall_s", "cpu_s", "in_process_s")}
    result = {
        "pool": len(pool), "delta": {"added": held_out, "edited": edited}, "repeats": repeats,
        "medians": medians,
        "speedup": {key: round(medians[f"train_{key}"] / medians[f"update_{key}"], 2)
                    for key in ("wall_s", "cpu_s", "in_process_s")},
        "rows": runs[0]["rows"], "base_train_wall_s": base["wall_s"],
        "features_from_train_wall_s": features_from["wall_s"], "identity": identity,
        "runs": [{cmd: {k: v for k, v in r[cmd].items() if k != "stdout"} for cmd in ("update", "train")}
                 | {"load": r["load"]} for r in runs],
        "load_before": load_before, "load_after": os.getloadavg(),
    }
    click.echo(json.dumps(result, indent=2))
    click.echo(f"related update {medians['update_wall_s']:.2f} s vs related train {medians['train_wall_s']:.2f} s "
               f"wall (medians of {repeats}): {result['speedup']['wall_s']:.1f}x (CPU "
               f"{result['speedup']['cpu_s']:.1f}x, in-process {result['speedup']['in_process_s']:.1f}x); lists "
               f"identical to train --features-from: {identity['ids_identical'] and identity['rows_with_other_lists'] == 0} "
               f"(max score diff {identity['max_score_diff']})")
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
