"""The one test-protocol measurement: chosen recipe beside the baselines (pool 10,794, 3,019 test queries).

Run: /work/main/.venv/bin/python benchmarks/experiments/final_test.py [--protocol test|val]
Scores with training.evaluate.evaluate (the repo's scorer) and checks the scratch scorer agrees.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import post  # noqa: E402
from lab import Recipe, build_x, build_z, labels_of, load_split, score, top_n  # noqa: E402
from training.evaluate import evaluate  # noqa: E402

CHOSEN = Recipe(joint_text=True, w_title_extra=0.5, w_tags=0.0, dims=100, n_iter=2, blend=0.35)
QE_M, QE_ALPHA = 5, 1.0
SYSTEMS = {
    "plain TF-IDF title+body, cosine (EVALUATION baseline)": (Recipe(joint_text=True, blend=1.0), False),
    "0.35 TF-IDF + 0.65 LSA-200 (EVALUATION quick-experiment baseline)": (
        Recipe(joint_text=True, dims=200, n_iter=5, blend=0.35), False),
    "chosen features, no post-processing": (CHOSEN, False),
    f"chosen features + alpha-QE on z (m={QE_M}, alpha={QE_ALPHA}), re-rank top-50": (CHOSEN, True),
}


def run(protocol: str) -> None:
    """Print one markdown row per system on ``protocol``."""
    pool, queries = load_split(protocol)
    labels = labels_of(pool)
    ids = [r["id"] for r in pool]
    label_map = dict(zip(ids, labels))
    qids = [ids[i] for i in queries]
    print(f"protocol {protocol}: pool {len(pool)}, queries {len(queries)}")
    print("| system | P@10 | MAP@10 | nDCG@10 | coverage |")
    print("|---|---|---|---|---|")
    for name, (recipe, qe) in SYSTEMS.items():
        x = build_x(pool, recipe)
        z = build_z(x, recipe) if recipe.blend < 1 else None
        idx, val = top_n(x, z, recipe.blend)
        if qe:
            zq = post.alpha_qe(z, idx, val, QE_M, QE_ALPHA)
            idx, val = post.rescore_lists(idx, post.pair_cosines(x, idx), zq, recipe.blend)
        related = {ids[i]: [ids[j] for j in row[:10] if j >= 0] for i, row in enumerate(idx)}
        m = evaluate(related, label_map, qids, k=10)
        mine = score(idx, labels, queries)
        pairs = (("P@10", "precision_at_k"), ("MAP@10", "map_at_k"), ("nDCG@10", "ndcg_at_k"),
                 ("coverage", "coverage"))
        for key, other in pairs:
            if abs(m[other] - mine[key]) > 1e-6:
                raise AssertionError(f"scorers disagree on {key}: {m[other]} vs {mine[key]}")
        print(f"| {name} | {mine['P@10']:.4f} | {mine['MAP@10']:.4f} | {mine['nDCG@10']:.4f} "
              f"| {mine['coverage']:.3f} |", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--protocol", default="test", choices=["test", "val"])
    run(ap.parse_args().protocol)
