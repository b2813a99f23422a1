"""Wall time of each step of the chosen recipe on the Reuters test pool, next to the baseline job.

Run: /work/main/.venv/bin/python benchmarks/experiments/components_time.py [--pool test|val] [--repeat 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sparse_dot_topn import sp_matmul_topn
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import post  # noqa: E402
from lab import Recipe, _rows_top, build_x, build_z, load_split  # noqa: E402

CHOSEN = Recipe(joint_text=True, w_title_extra=0.5, dims=100, n_iter=2, blend=0.35)


def fit_only(pool: list[dict]) -> dict[str, float]:
    """Time only the fit steps (x, z) of the chosen recipe."""
    t = {}
    s = time.perf_counter()
    x = build_x(pool, CHOSEN)
    t["chosen: x (text + title spaces)"] = time.perf_counter() - s
    s = time.perf_counter()
    build_z(x, CHOSEN)
    t["chosen: z (SVD 100, n_iter 2)"] = time.perf_counter() - s
    return t


def once(pool: list[dict]) -> dict[str, float]:
    """Time every step once; return seconds per step."""
    t = {}
    s = time.perf_counter()
    xb = TfidfVectorizer(sublinear_tf=True, stop_words="english", min_df=2, dtype=np.float32
                         ).fit_transform([r["title"] + "\n" + r["body"] for r in pool])
    t["baseline: TF-IDF fit"] = time.perf_counter() - s
    s = time.perf_counter()
    sp_matmul_topn(xb, xb.T, top_n=11, sort=True, n_threads=2)
    t["baseline: sparse_dot_topn top-10, 2 threads"] = time.perf_counter() - s
    s = time.perf_counter()
    x = build_x(pool, CHOSEN)
    t["chosen: x (text + title spaces)"] = time.perf_counter() - s
    s = time.perf_counter()
    z = build_z(x, CHOSEN)
    t["chosen: z (SVD 100, n_iter 2)"] = time.perf_counter() - s
    s = time.perf_counter()
    n, c = z.shape[0], 200
    cand = np.empty((n, c), np.int32)
    for a in range(0, n, 2048):
        e = min(n, a + 2048)
        sc = z[a:e] @ z.T
        sc[np.arange(e - a), np.arange(a, e)] = -np.inf
        cand[a:e] = np.argpartition(-sc, c, axis=1)[:, :c]
    t["chosen: dense latent top-200 candidates"] = time.perf_counter() - s
    s = time.perf_counter()
    sp_matmul_topn(x, x.T, top_n=201, sort=True, n_threads=2)
    t["chosen: sparse_dot_topn top-200 on x, 2 threads"] = time.perf_counter() - s
    s = time.perf_counter()
    sx = post.pair_cosines(x, cand)
    t["chosen: x.x for the 200 candidates (scipy row products)"] = time.perf_counter() - s
    s = time.perf_counter()
    zz = np.einsum("nd,nmd->nm", z, z[cand])
    i, v = _rows_top(0.35 * sx + 0.65 * zz, 50)
    idx = np.take_along_axis(cand, i, 1)
    t["chosen: blend + top-50 of candidates"] = time.perf_counter() - s
    s = time.perf_counter()
    zq = post.alpha_qe(z, idx, v, 5, 1.0)
    post.rescore_lists(idx, post.pair_cosines(x, idx), zq, 0.35)
    t["chosen: alpha-QE + re-rank top-50"] = time.perf_counter() - s
    return t


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pool", default="test", choices=["test", "val"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--synthetic", type=int, default=0,
                    help="grow the pool to N articles with synthetic text; times the fit only")
    a = ap.parse_args()
    pool, _ = load_split(a.pool)
    if a.synthetic:
        from build_time import _synthetic
        pool = _synthetic(pool, a.synthetic)
    with threadpool_limits(2):
        runs = [(fit_only if a.synthetic else once)(pool) for _ in range(a.repeat)]
    print(f"pool {a.pool}: {len(pool)} articles; median of {a.repeat} runs")
    print("| step | s |\n|---|---|")
    for k in runs[0]:
        print(f"| {k} | {np.median([r[k] for r in runs]):.2f} |")
