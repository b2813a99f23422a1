"""Reuters-21578 ModApte evaluation pool, labels, test queries and validation split (EVALUATION.md)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path

import click
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "reuters21578.jsonl.gz"

POOL_SIZE = 10_794
TEST_QUERIES = 3_019
VAL_POOL_SIZE = 7_775
VAL_QUERIES = 2_000
VAL_SEED = 0

# Fields the model must never see: topics are the hidden labels, the rest are split
# attributes or the category fields already folded into `tags`.
HIDDEN_FIELDS = ("topics", "places", "people", "orgs", "exchanges", "lewissplit", "topics_attr", "modapte")


def load_records(path: str | Path = DEFAULT_DATA) -> list[dict]:
    """Read every record of the Reuters JSONL.gz file.

    Parameters
    ----------
    path : str or Path
        ``reuters21578.jsonl.gz`` as described in ``../shared/data/README.md``.

    Returns
    -------
    list[dict]
        The 21,578 records in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Reuters data not found at {path} (see ../shared/data/README.md)")
    records = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
    return records


def pool(records: Iterable[dict]) -> list[dict]:
    """The pool P: ModApte train or test records with at least one topic (10,794)."""
    return [r for r in records if r["modapte"] in ("train", "test") and r["topics"]]


def query_ids(pool_records: Iterable[dict]) -> list[str]:
    """The queries Q: ids of the pool records with ``modapte == "test"`` (3,019)."""
    return [r["id"] for r in pool_records if r["modapte"] == "test"]


def val_pool(pool_records: Iterable[dict]) -> list[dict]:
    """The validation pool: the ModApte train records of the pool (7,775)."""
    return [r for r in pool_records if r["modapte"] == "train"]


def val_query_ids(val_records: list[dict], n: int = VAL_QUERIES, seed: int = VAL_SEED) -> list[str]:
    """A seeded random sample of validation queries, in pool order.

    Parameters
    ----------
    val_records : list[dict]
        The validation pool.
    n : int
        Number of queries.
    seed : int
        Seed of ``numpy.random.default_rng``; the sample is
        ``sorted(default_rng(seed).choice(len(val_records), n, replace=False))``.

    Returns
    -------
    list[str]
        The sampled ids.
    """
    if not 0 < n <= len(val_records):
        raise ValueError(f"n must be in 1..{len(val_records)}, got {n}")
    picked = np.sort(np.random.default_rng(seed).choice(len(val_records), size=n, replace=False))
    return [val_records[i]["id"] for i in picked]


def strip(record: dict) -> dict:
    """The record without its labels and split fields (what the model may see)."""
    return {key: value for key, value in record.items() if key not in HIDDEN_FIELDS}


def label_record(record: dict) -> dict:
    """The id and topics of a record (the hidden ground truth)."""
    return {"id": record["id"], "topics": record["topics"]}


def _write_jsonl_gz(path: Path, rows: Iterable[dict]) -> int:
    """Write rows as gzip JSON Lines; return the number written."""
    count = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def _write_ids(path: Path, ids: list[str]) -> int:
    """Write one id a line; return the number written."""
    path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    return len(ids)


def _check(name: str, got: int, expected: int) -> None:
    """Fail loudly when a count differs from EVALUATION.md."""
    if got != expected:
        raise click.ClickException(f"{name}: got {got}, EVALUATION.md says {expected}")


def write_pool(out: Path, data: Path = DEFAULT_DATA) -> dict[str, int]:
    """Write the pool, labels, test queries and validation split files into ``out``.

    Parameters
    ----------
    out : Path
        Output directory (created); must lie outside the repository.
    data : Path
        The Reuters JSONL.gz file.

    Returns
    -------
    dict[str, int]
        Records or ids written per file name.
    """
    out = Path(out).resolve()
    if out == REPO or REPO in out.parents:
        raise click.ClickException(
            f"--out {out} is inside the repository {REPO}: Reuters is research-only and must"
            " never be copied into the repo; use a directory outside it, e.g. /tmp/reuters"
        )
    records = pool(load_records(data))
    tests = query_ids(records)
    val = val_pool(records)
    val_queries = val_query_ids(val)
    _check("pool", len(records), POOL_SIZE)
    _check("test queries", len(tests), TEST_QUERIES)
    _check("validation pool", len(val), VAL_POOL_SIZE)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "reuters-pool.jsonl.gz": _write_jsonl_gz(out / "reuters-pool.jsonl.gz", map(strip, records)),
        "reuters-labels.jsonl.gz": _write_jsonl_gz(
            out / "reuters-labels.jsonl.gz", map(label_record, records)
        ),
        "reuters-test-queries.txt": _write_ids(out / "reuters-test-queries.txt", tests),
        "reuters-val-pool.jsonl.gz": _write_jsonl_gz(out / "reuters-val-pool.jsonl.gz", map(strip, val)),
        "reuters-val-labels.jsonl.gz": _write_jsonl_gz(
            out / "reuters-val-labels.jsonl.gz", map(label_record, val)
        ),
        "reuters-val-queries.txt": _write_ids(out / "reuters-val-queries.txt", val_queries),
    }


@click.group()
def cli() -> None:
    """Reuters-21578 ModApte evaluation files (research use only, never into the repo)."""


@cli.command("pool")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory, outside the repository.")
@click.option("--data", "data", default=DEFAULT_DATA, show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="reuters21578.jsonl.gz")
def pool_command(out: Path, data: Path) -> None:
    """Write pool, labels, test queries and the validation split into OUT."""
    try:
        written = write_pool(out, data)
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    for name, count in written.items():
        click.echo(f"{count:>6}  {Path(out) / name}")


if __name__ == "__main__":
    cli()
