"""Draft transform benchmark: the plain vectorizer against scikit-learn's transform, side by side, same bits."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import click
import joblib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.serve_bench import DRAFT_WORDS, make_drafts  # noqa: E402


def timed(func, drafts: list[dict], repeats: int) -> float:
    """Median milliseconds of ``func([draft])`` over ``repeats`` passes of the drafts."""
    func([drafts[0]])  # warm-up (caches, lazy builds)
    times = []
    for _ in range(repeats):
        for draft in drafts:
            t0 = time.perf_counter()
            func([draft])
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


@click.command()
@click.option("--models-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True,
              help="A model store (e.g. trained on the Reuters pool).")
@click.option("--repeats", type=int, default=40, show_default=True, help="Passes over the 5 drafts.")
def main(models_dir: Path, repeats: int) -> None:
    """Time one 500-word draft through both transforms; check they give the same vectors."""
    version = models_dir / (models_dir / "CURRENT").read_text().strip()
    vec = joblib.load(version / "vectorizer.joblib", mmap_mode="r")
    drafts = make_drafts(models_dir)
    for draft in drafts:
        a, b = vec.transform_sklearn([draft]), vec.transform([draft])
        assert np.array_equal(a[0].data, b[0].data) and np.array_equal(a[1], b[1]), "transforms differ"
    base = timed(vec.transform_sklearn, drafts, repeats)
    plain = timed(vec.transform, drafts, repeats)
    click.echo(f"{DRAFT_WORDS}-word draft, median of {repeats * len(drafts)} calls: scikit-learn transform "
               f"{base:.3f} ms, plain vectorizer {plain:.3f} ms ({base / plain:.1f}x faster); same float32 bits")


if __name__ == "__main__":
    main()
