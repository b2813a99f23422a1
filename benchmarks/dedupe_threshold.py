"""Measure the model similarity of textual near-duplicates vs ordinary neighbours (the dedupe default)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.store import ModelStore  # noqa: E402

SHINGLE = 5
THRESHOLDS = (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99)
WORD = re.compile(r"\w+")


def shingles(text: str, size: int = SHINGLE) -> frozenset[int]:
    """Hashes of the word ``size``-grams of ``text`` (the whole text when shorter).

    Parameters
    ----------
    text : str
    size : int

    Returns
    -------
    frozenset of int
    """
    words = WORD.findall(text.lower())
    if len(words) < size:
        return frozenset({hash(tuple(words))}) if words else frozenset()
    return frozenset(hash(tuple(words[i:i + size])) for i in range(len(words) - size + 1))


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    """Jaccard similarity of two sets (0 when both are empty)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def measure(models_dir: Path, depth: int, near: float, far: float) -> dict:
    """Label every (article, top-``depth`` neighbour) pair by text overlap and tabulate thresholds.

    Parameters
    ----------
    models_dir : Path
        Model store whose CURRENT version is measured.
    depth : int
        Neighbours per article looked at.
    near : float
        Shingle Jaccard at or above which a pair is a textual near-duplicate.
    far : float
        Shingle Jaccard below which a pair is an ordinary neighbour (different text).

    Returns
    -------
    dict
        Counts, similarity percentiles of both classes, and per threshold the share of each
        class at or above it.
    """
    model = ModelStore(models_dir).refresh()
    if model is None:
        raise click.ClickException(f"no valid model in {models_dir}")
    with open(model.path / "texts.jsonl", encoding="utf-8") as handle:
        texts = [json.loads(line) for line in handle]
    sets = [shingles(f"{t.get('title') or ''} {t.get('body') or ''}") for t in texts]
    dup_sims, other_sims = [], []
    for row in range(model.n_articles):
        for col, sim in zip(model.neighbors_indices[row, :depth].tolist(), model.neighbors_scores[row, :depth].tolist()):
            if col <= row:  # each unordered pair once (and skip padding)
                continue
            overlap = jaccard(sets[row], sets[col])
            if overlap >= near:
                dup_sims.append(sim)
            elif overlap < far:
                other_sims.append(sim)
    dup, other = np.asarray(dup_sims), np.asarray(other_sims)
    pct = (1, 5, 10, 50, 90, 95, 99, 99.9)
    return {
        "version": model.version, "articles": model.n_articles, "depth": depth,
        "near_duplicate_pairs": int(dup.size), "ordinary_pairs": int(other.size),
        "near_duplicate_percentiles": dict(zip(map(str, pct), np.round(np.percentile(dup, pct), 4).tolist()))
        if dup.size else {},
        "ordinary_percentiles": dict(zip(map(str, pct), np.round(np.percentile(other, pct), 4).tolist())),
        "thresholds": {str(t): {"near_duplicates_caught": round(float((dup >= t).mean()), 4) if dup.size else None,
                                "ordinary_dropped": round(float((other >= t).mean()), 5),
                                "ordinary_dropped_count": int((other >= t).sum())} for t in THRESHOLDS},
    }


@click.command()
@click.option("--models-dir", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--depth", default=10, show_default=True, help="Neighbours per article looked at.")
@click.option("--near", default=0.5, show_default=True, help="Shingle Jaccard of a textual near-duplicate.")
@click.option("--far", default=0.2, show_default=True, help="Shingle Jaccard below which a pair is ordinary.")
def main(models_dir: Path, depth: int, near: float, far: float) -> None:
    """Print the measurement as JSON."""
    print(json.dumps(measure(models_dir, depth, near, far), indent=1))


if __name__ == "__main__":
    main()
