"""Validation grid over cheap post-processing of the exact top-50 lists of one feature recipe.

Run: /work/main/.venv/bin/python benchmarks/experiments/explore_post.py --recipe "NAME" --blend 0.35
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import post  # noqa: E402
from explore_features import VARIANTS  # noqa: E402
from lab import Timer, build_x, build_z, labels_of, load_split, score, top_n  # noqa: E402


def _row(name: str, idx, labels, queries, secs: float) -> None:
    m = score(idx, labels, queries)
    print(f"| {name} | {m['P@10']:.4f} | {m['MAP@10']:.4f} | {m['nDCG@10']:.4f} "
          f"| {m['coverage']:.3f} | {secs:.2f} |", flush=True)


def run(recipe_name: str, blend: float, full_qe: bool) -> None:
    """Print one markdown row per post-processing variant."""
    pool, queries = load_split("val")
    labels = labels_of(pool)
    recipe = VARIANTS[recipe_name]
    x = build_x(pool, recipe)
    z = build_z(x, recipe)
    idx, val = top_n(x, z, blend)
    sx = post.pair_cosines(x, idx) if blend > 0 else None
    print(f"recipe {recipe_name!r}, blend {blend}, val pool {len(pool)}, queries {len(queries)}")
    print("| post-processing | P@10 | MAP@10 | nDCG@10 | coverage | post s |")
    print("|---|---|---|---|---|---|")
    _row("none", idx, labels, queries, 0.0)
    for k in (5, 10, 20):
        for beta in (0.5, 1.0):
            with Timer() as t:
                i2, _ = post.csls(idx, val, k, beta)
            _row(f"CSLS k={k} beta={beta}", i2, labels, queries, t.s)
    for k in (10, 20, 50):
        with Timer() as t:
            i2, _ = post.mutual_proximity(idx, val, k)
        _row(f"mutual proximity k={k}", i2, labels, queries, t.s)
    for k in (10, 20):
        for beta in (0.05, 0.1, 0.2):
            with Timer() as t:
                i2, _ = post.snn(idx, val, k, beta)
            _row(f"SNN k={k} beta={beta}", i2, labels, queries, t.s)
    for k in (10, 20):
        for beta in (0.02, 0.05):
            with Timer() as t:
                i2, _ = post.reciprocal(idx, val, k, beta)
            _row(f"k-reciprocal k={k} beta={beta}", i2, labels, queries, t.s)
    for m in (3, 5, 10, 20):
        for alpha in (1.0, 3.0):
            with Timer() as t:
                zq = post.alpha_qe(z, idx, val, m, alpha)
                i2, v2 = post.rescore_lists(idx, sx, zq, blend)
            _row(f"alpha-QE on z m={m} alpha={alpha}, re-rank top-50", i2, labels, queries, t.s)
            if full_qe:
                with Timer() as t:
                    i3, v3 = top_n(x, zq, blend)
                _row(f"alpha-QE on z m={m} alpha={alpha}, exact recompute", i3, labels, queries, t.s)
                i4, _ = post.csls(i3, v3, 10, 1.0)
                _row(f"alpha-QE m={m} alpha={alpha} recompute + CSLS k=10", i4, labels, queries, t.s)


def run_qe(recipe_name: str, blend: float, with_x_qe: bool) -> None:
    """Focused grid: alpha-QE on z only vs on x and z, with and without an SNN bonus."""
    pool, queries = load_split("val")
    labels = labels_of(pool)
    recipe = VARIANTS[recipe_name]
    x = build_x(pool, recipe)
    z = build_z(x, recipe)
    idx, val = top_n(x, z, blend)
    sx = post.pair_cosines(x, idx)
    print(f"recipe {recipe_name!r}, blend {blend}, val pool {len(pool)}, queries {len(queries)}")
    print("| post-processing | P@10 | MAP@10 | nDCG@10 | coverage | post s |")
    print("|---|---|---|---|---|---|")
    _row("none", idx, labels, queries, 0.0)
    for m, alpha in ((5, 1.0), (10, 3.0)):
        with Timer() as t:
            zq = post.alpha_qe(z, idx, val, m, alpha)
            i2, v2 = post.rescore_lists(idx, sx, zq, blend)
        _row(f"QE z m={m} alpha={alpha}, re-rank top-50", i2, labels, queries, t.s)
        i5, _ = post.rescore_lists(idx, sx, zq, blend, z_query=z)
        _row(f"QE z m={m} alpha={alpha}, database side only (query z unexpanded)", i5, labels,
             queries, t.s)
        i8, _ = post.draft_style(z, zq, idx, sx, blend, m, alpha)
        _row(f"QE z m={m} alpha={alpha}, scored as a draft (stored x, z' only)", i8, labels,
             queries, t.s)
        if m == 5:
            for sw in (0.5, 2.0):
                i6, _ = post.rescore_lists(idx, sx, post.alpha_qe(z, idx, val, m, alpha, sw), blend)
                _row(f"QE z m={m} alpha={alpha} self weight {sw}", i6, labels, queries, t.s)
            i7, _ = post.rescore_lists(idx, sx, post.alpha_qe(zq, idx, val, m, alpha), blend)
            _row(f"QE z m={m} alpha={alpha} applied twice", i7, labels, queries, t.s)
        with Timer() as t:
            i3, _ = post.snn(i2, v2, 10, 0.1)
        _row(f"QE z m={m} alpha={alpha} + SNN k=10 beta=0.1", i3, labels, queries, t.s)
        if not with_x_qe:
            continue
        with Timer() as t:
            xq = post.alpha_qe_sparse(x, idx, val, m, alpha)
            i4, _ = post.rescore_lists(idx, post.pair_cosines(xq, idx), zq, blend)
        _row(f"QE x and z m={m} alpha={alpha}, re-rank top-50", i4, labels, queries, t.s)

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--recipe", required=True, choices=list(VARIANTS))
    ap.add_argument("--blend", type=float, default=0.35)
    ap.add_argument("--full-qe", action="store_true", help="also recompute exact top-50 after QE")
    ap.add_argument("--qe-only", action="store_true", help="run the focused QE grid instead")
    ap.add_argument("--with-x-qe", action="store_true", help="qe grid: also expand x (slow, 4 GB)")
    a = ap.parse_args()
    if a.qe_only:
        run_qe(a.recipe, a.blend, a.with_x_qe)
    else:
        run(a.recipe, a.blend, a.full_qe)
