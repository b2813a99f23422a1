"""Validation grid over how x (TF-IDF) and z (LSA) are built, scored at several blend weights.

Run: /work/main/.venv/bin/python benchmarks/experiments/explore_features.py [--only NAME ...]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab import ALPHA_PATTERN, Recipe, Timer, build_x, build_z, labels_of, load_split, score, top_n_multi  # noqa: E402

BASE = Recipe()  # separate title/body spaces, weight 1 each, no tags, LSA 200
T = replace(BASE, w_title=0.4)
J = replace(BASE, joint_text=True)
CLEAN = replace(T, token_pattern=ALPHA_PATTERN, drop_signoff=True)
VARIANTS: dict[str, Recipe] = {
    "joint title+body (EVALUATION baseline)": J,
    "fields title 1, body 1": BASE,
    "fields, tags 0.2": replace(BASE, w_tags=0.2),
    "fields, tags 0.5": replace(BASE, w_tags=0.5),
    "fields, title 0.2": replace(BASE, w_title=0.2),
    "fields, title 0.3": replace(BASE, w_title=0.3),
    "fields, title 0.4": T,
    "fields, title 0.5": replace(BASE, w_title=0.5),
    "fields, title 0.7": replace(BASE, w_title=0.7),
    "title 0.4, tags 0.05": replace(T, w_tags=0.05),
    "title 0.4, tags 0.1": replace(T, w_tags=0.1),
    "title 0.4, tags 0.2": replace(T, w_tags=0.2),
    "title 0.4, alpha tokens, no sign-off (clean)": CLEAN,
    "joint, alpha tokens, no sign-off": replace(J, token_pattern=ALPHA_PATTERN, drop_signoff=True),
    "joint, no sign-off": replace(J, drop_signoff=True),
    "joint + title space 0.2": replace(J, w_title_extra=0.2),
    "joint + title space 0.35": replace(J, w_title_extra=0.35),
    "joint + title space 0.5": replace(J, w_title_extra=0.5),
    "joint + title space 0.7": replace(J, w_title_extra=0.7),
    "joint + title space 1.0": replace(J, w_title_extra=1.0),
    "joint + title 0.7, LSA 100": replace(J, w_title_extra=0.7, dims=100),
    "joint + title 0.7, LSA 150": replace(J, w_title_extra=0.7, dims=150),
    "joint + tags 0.05": replace(J, w_tags=0.05),
    "joint + tags 0.1": replace(J, w_tags=0.1),
    "joint, max_df 0.5": replace(J, max_df=0.5),
    "joint, min_df 1": replace(J, min_df=1),
    "joint, min_df 3": replace(J, min_df=3),
    "joint, no sublinear tf": replace(J, sublinear_tf=False),
    "joint, no stop words": replace(J, stop_words=None),
    "joint, LSA 100": replace(J, dims=100),
    "joint, LSA 300": replace(J, dims=300),
    "joint, LSA 400": replace(J, dims=400),
    "joint, z = U S^0.5": replace(J, svd_power=0.5),
    "joint, z = U (whitened)": replace(J, svd_power=0.0),
    "joint, z = U S^1.5": replace(J, svd_power=1.5),
    "joint, SVD n_iter 2": replace(J, n_iter=2),
    "joint, SVD n_iter 10": replace(J, n_iter=10),
}
for _t in (0.5, 0.7, 1.0):
    for _d in (100, 150, 200):
        for _it in (2, 5):
            VARIANTS[f"joint + title {_t}, LSA {_d}, n_iter {_it}"] = replace(
                J, w_title_extra=_t, dims=_d, n_iter=_it)
for _t in (0.4, 0.5, 0.6):
    for _d in (80, 100, 120):
        for _it in (1, 2):
            VARIANTS[f"j+t{_t} LSA {_d} n_iter {_it}"] = replace(J, w_title_extra=_t, dims=_d, n_iter=_it)
for _seed in (1, 2, 3):
    VARIANTS[f"seed {_seed}: joint + title 0.5, LSA 100, n_iter 2"] = replace(
        J, w_title_extra=0.5, dims=100, n_iter=2, extra={"random_state": _seed})
C = replace(J, w_title_extra=0.5, dims=100, n_iter=2)  # the chosen features
VARIANTS["chosen: joint + title 0.5, LSA 100, n_iter 2"] = C
VARIANTS["chosen, alpha tokens, no sign-off"] = replace(C, token_pattern=ALPHA_PATTERN, drop_signoff=True)
VARIANTS["chosen, no sign-off"] = replace(C, drop_signoff=True)
VARIANTS["chosen, max_df 0.5"] = replace(C, max_df=0.5)
VARIANTS["chosen, z = U S^1.5"] = replace(C, svd_power=1.5)
VARIANTS["chosen, tags 0.05"] = replace(C, w_tags=0.05)
for _lw in (0.3, 0.5):
    for _ln in (30, 60):
        VARIANTS[f"chosen + lead {_ln} words {_lw}"] = replace(C, w_lead=_lw, lead_words=_ln)
BLENDS = [0.0, 0.2, 0.35, 0.5]


def run(names: list[str], protocol: str, blends: list[float]) -> None:
    """Print one markdown row per (variant, blend) on ``protocol``."""
    pool, queries = load_split(protocol)
    labels = labels_of(pool)
    print(f"pool {len(pool)}, queries {len(queries)}, protocol {protocol}")
    print("| variant | w | P@10 | MAP@10 | nDCG@10 | coverage | fit s (x + svd) |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        recipe = VARIANTS[name]
        with Timer() as t:
            x = build_x(pool, recipe)
            z = build_z(x, recipe)
        res = top_n_multi(x, z, blends)
        for b in blends:
            m = score(res[b][0], labels, queries)
            print(f"| {name} | {b} | {m['P@10']:.4f} | {m['MAP@10']:.4f} | {m['nDCG@10']:.4f} "
                  f"| {m['coverage']:.3f} | {t.s:.1f} |", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="*", default=None, help="variant names (default: all)")
    ap.add_argument("--prefix", default=None, help="run every variant whose name starts with this")
    ap.add_argument("--protocol", default="val", choices=["val"], help="tuning is on val only")
    ap.add_argument("--blends", nargs="*", type=float, default=BLENDS, help="TF-IDF weights w")
    a = ap.parse_args()
    names = a.only or [n for n in VARIANTS if a.prefix is None or n.startswith(a.prefix)]
    run(names, a.protocol, a.blends)
