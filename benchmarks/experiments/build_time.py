"""Wall time and peak RSS of the baseline TF-IDF job vs the candidate recipe, each in a fresh process.

Run: /work/main/.venv/bin/python benchmarks/experiments/build_time.py [--pool test|val] [--repeat 3]
(--synthetic N appends N - len(pool) synthetic articles drawn from the pool's word distribution.)
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab import Recipe, build_x, build_z, load_split, top_n  # noqa: E402

HERE = Path(__file__).resolve()


def _synthetic(pool: list[dict], n: int, seed: int = 0) -> list[dict]:
    """Return pool plus synthetic records whose words and lengths are drawn from the pool's."""
    rng = np.random.default_rng(seed)
    words, lengths, titles = [], [], []
    for r in pool:
        w = r["body"].split()
        words.extend(w)
        lengths.append(len(w))
        titles.append(len(r["title"].split()))
    words = np.array(words, dtype=object)
    out = list(pool)
    for i in range(n - len(pool)):
        k = lengths[rng.integers(len(lengths))]
        t = titles[rng.integers(len(titles))]
        out.append({"id": f"syn{i}", "title": " ".join(rng.choice(words, t)),
                    "body": " ".join(rng.choice(words, k)), "tags": []})
    return out


def baseline(pool: list[dict]) -> dict:
    """Plain TfidfVectorizer(sublinear_tf, english, min_df=2) on title+body + sparse_dot_topn top-10."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sparse_dot_topn import sp_matmul_topn
    t0 = time.perf_counter()
    x = TfidfVectorizer(sublinear_tf=True, stop_words="english", min_df=2, dtype=np.float32
                        ).fit_transform([r["title"] + "\n" + r["body"] for r in pool])
    t1 = time.perf_counter()
    sp_matmul_topn(x, x.T, top_n=11, sort=True, n_threads=2)
    t2 = time.perf_counter()
    return {"fit_s": t1 - t0, "neighbors_s": t2 - t1}


def latent_candidates(x, z, blend: float, n: int = 50, c: int = 200, block: int = 2048):
    """Top-``n`` by the blend among each row's top-``c`` latent candidates (the repo's default)."""
    import post
    from lab import _rows_top
    rows = z.shape[0]
    cand = np.empty((rows, c), np.int32)
    for a in range(0, rows, block):
        e = min(rows, a + block)
        s = z[a:e] @ z.T
        s[np.arange(e - a), np.arange(a, e)] = -np.inf
        cand[a:e] = np.argpartition(-s, c, axis=1)[:, :c]
    sx = post.pair_cosines(x, cand)
    zz = np.einsum("nd,nmd->nm", z, z[cand])
    i, v = _rows_top(blend * sx + (1 - blend) * zz, n)
    return np.take_along_axis(cand, i, 1), v


def candidate(pool: list[dict], recipe: Recipe, qe_m: int, qe_alpha: float, recompute: bool,
              exhaustive: bool) -> dict:
    """The candidate recipe: x, z, top-50, alpha-QE on z (+ optional recompute)."""
    import post
    t0 = time.perf_counter()
    x = build_x(pool, recipe)
    z = build_z(x, recipe)
    t1 = time.perf_counter()
    if exhaustive or recipe.blend == 0:
        idx, val = top_n(x if recipe.blend > 0 else None, z, recipe.blend)
    else:
        idx, val = latent_candidates(x, z, recipe.blend)
    t2 = time.perf_counter()
    if qe_m > 0:
        zq = post.alpha_qe(z, idx, val, qe_m, qe_alpha)
        if recompute:
            top_n(x if recipe.blend > 0 else None, zq, recipe.blend)
        else:
            sx = post.pair_cosines(x, idx) if recipe.blend > 0 else None
            post.rescore_lists(idx, sx, zq, recipe.blend)
    t3 = time.perf_counter()
    return {"fit_s": t1 - t0, "neighbors_s": t2 - t1, "post_s": t3 - t2}


def child(args: argparse.Namespace) -> None:
    """Run one system in this process and print its timings and peak RSS as JSON."""
    pool, _ = load_split(args.pool)
    if args.synthetic:
        pool = _synthetic(pool, args.synthetic)
    t0 = time.perf_counter()
    if args.system == "baseline":
        res = baseline(pool)
    else:
        recipe = Recipe(**json.loads(args.recipe))
        res = candidate(pool, recipe, args.qe_m, args.qe_alpha, args.recompute, args.exhaustive)
    res["total_s"] = time.perf_counter() - t0
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["articles"] = len(pool)
    print(json.dumps(res))


def main() -> None:
    """Run baseline and candidate alternately ``--repeat`` times in fresh processes; print medians."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pool", default="test", choices=["test", "val"])
    ap.add_argument("--synthetic", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--system", choices=["baseline", "candidate"], default=None)
    ap.add_argument("--recipe", default=json.dumps({"joint_text": True, "w_title_extra": 0.5,
                                                    "dims": 100, "n_iter": 2, "blend": 0.35}))
    ap.add_argument("--qe-m", type=int, default=5)
    ap.add_argument("--qe-alpha", type=float, default=1.0)
    ap.add_argument("--recompute", action="store_true")
    ap.add_argument("--exhaustive", action="store_true",
                    help="exact blocked scipy top-N instead of 200 latent candidates + exact rescoring")
    args = ap.parse_args()
    if args.system:
        child(args)
        return
    runs: dict[str, list[dict]] = {"baseline": [], "candidate": []}
    for _ in range(args.repeat):
        for system in runs:
            cmd = [sys.executable, str(HERE), "--system", system, "--pool", args.pool,
                   "--synthetic", str(args.synthetic), "--recipe", args.recipe,
                   "--qe-m", str(args.qe_m), "--qe-alpha", str(args.qe_alpha)]
            cmd += ["--recompute"] if args.recompute else []
            cmd += ["--exhaustive"] if args.exhaustive else []
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs[system].append(json.loads(out.strip().splitlines()[-1]))
    print(f"recipe {args.recipe}, QE m={args.qe_m} alpha={args.qe_alpha} recompute={args.recompute}"
          f" exhaustive={args.exhaustive}, pool {args.pool}, synthetic {args.synthetic}")
    for system, rs in runs.items():
        med = {k: float(np.median([r[k] for r in rs])) for k in rs[0]}
        print(system, json.dumps({k: round(v, 2) for k, v in med.items()}))
    ratio = np.median([c["total_s"] / b["total_s"] for b, c in zip(runs["baseline"], runs["candidate"])])
    print(f"candidate / baseline wall time (median of paired runs): {ratio:.2f}x")


if __name__ == "__main__":
    main()
