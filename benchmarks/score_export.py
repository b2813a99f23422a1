"""Score a `related export` file against hidden labels with the EVALUATION.md protocol."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

try:
    from training.evaluate import evaluate, load_labels, read_export
except ImportError:  # run as a script from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from training.evaluate import evaluate, load_labels, read_export


def read_queries(path: Path) -> list[str]:
    """Read query ids, one a line (blank lines ignored).

    Parameters
    ----------
    path : Path
        Text file of ids.

    Returns
    -------
    list[str]
        The ids in file order.
    """
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    ids = [i for i in ids if i]
    if not ids:
        raise ValueError(f"{path}: no query ids")
    return ids


@click.command()
@click.option("--export", "export", required=True, help="JSONL(.gz) written by `related export`.",
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--labels", "labels", required=True, help="JSONL(.gz) of id + labels; its ids are the pool.",
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--label-field", default="topics", show_default=True, help="Labels field of --labels.")
@click.option("--id-field", default="id", show_default=True, help="Id field of --labels.")
@click.option("--queries", "queries", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Query ids, one a line (default: the whole pool).")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(min=1), help="Cut-off rank.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the figures to this JSON file.")
def main(export: Path, labels: Path, label_field: str, id_field: str, queries: Path | None,
         k: int, json_out: Path | None) -> None:
    """Print P@k, MAP@k, nDCG@k and coverage of EXPORT against LABELS."""
    try:
        result = evaluate(
            read_export(export),
            load_labels(labels, label_field, id_field),
            read_queries(queries) if queries else None,
            k,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    result.update({"export": str(export), "labels": str(labels),
                   "queries_file": str(queries) if queries else None})
    click.echo(f"queries {result['queries']}  k {k}")
    for key in ("precision_at_k", "map_at_k", "ndcg_at_k", "coverage"):
        click.echo(f"{key.replace('_at_k', f'@{k}'):<12} {result[key]:.4f}")
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
