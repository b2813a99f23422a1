"""Shared helpers for the Reuters model-selection experiments: data splits, features, top-N, scoring."""
from __future__ import annotations

import gzip
import json
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

REUTERS = Path(__file__).resolve().parents[3] / "shared" / "data" / "reuters21578.jsonl.gz"
SIGNOFF = re.compile(r"\s*\breuter\b\s*$", re.IGNORECASE)
ALPHA_PATTERN = r"(?u)\b[^\W\d_][^\W\d_]+\b"
DEFAULT_PATTERN = r"(?u)\b\w\w+\b"


def load_split(protocol: str) -> tuple[list[dict], list[int]]:
    """Return (pool records, query row indices) for ``protocol`` "val" or "test".

    Parameters
    ----------
    protocol : str
        "val": pool = ModApte train with >= 1 topic, queries = random.Random(0) sample of 2,000 ids.
        "test": pool = ModApte train+test with >= 1 topic, queries = the test records.
    """
    if not REUTERS.exists():
        raise FileNotFoundError(f"Reuters corpus not found at {REUTERS}")
    with gzip.open(REUTERS, "rt", encoding="utf-8") as fh:
        recs = [json.loads(line) for line in fh]
    if protocol == "val":
        pool = [r for r in recs if r["modapte"] == "train" and r["topics"]]
        pool.sort(key=lambda r: int(r["id"]))
        ids = sorted((r["id"] for r in pool), key=int)
        chosen = set(random.Random(0).sample(ids, 2000))
        queries = [i for i, r in enumerate(pool) if r["id"] in chosen]
    elif protocol == "test":
        pool = [r for r in recs if r["modapte"] in ("train", "test") and r["topics"]]
        queries = [i for i, r in enumerate(pool) if r["modapte"] == "test"]
    else:
        raise ValueError(f"protocol must be 'val' or 'test', got {protocol!r}")
    return pool, queries


def tags_analyzer(tags: list[str]) -> list[str]:
    """Return the tags as whole case-folded tokens (never split into words)."""
    return [t.strip().casefold() for t in tags if t and t.strip()]


@dataclass
class Recipe:
    """Every knob of the feature + neighbour pipeline tried in the experiments."""

    token_pattern: str = DEFAULT_PATTERN
    drop_signoff: bool = False
    stop_words: str | None = "english"
    min_df: int = 2
    max_df: float = 1.0
    sublinear_tf: bool = True
    ngram_max: int = 1
    joint_text: bool = False  # True: title + body in one "text" TF-IDF space (weight w_body)
    w_title_extra: float = 0.0  # with joint_text: weight of an extra title-only space
    w_lead: float = 0.0  # weight of an extra space on the body's first lead_words words
    lead_words: int = 50
    w_title: float = 1.0
    w_body: float = 1.0
    w_tags: float = 0.0
    dims: int = 200
    n_iter: int = 5
    svd_power: float = 1.0  # z = U * S**svd_power (1.0 = TruncatedSVD.transform)
    blend: float = 0.35  # w: weight of the TF-IDF cosine
    extra: dict = field(default_factory=dict)


def _field_space(texts, recipe: Recipe, analyzer=None) -> sp.csr_matrix:
    if analyzer is not None:
        vec = TfidfVectorizer(analyzer=analyzer, min_df=1, sublinear_tf=recipe.sublinear_tf,
                              dtype=np.float32)
    else:
        vec = TfidfVectorizer(token_pattern=recipe.token_pattern, stop_words=recipe.stop_words,
                              min_df=recipe.min_df, max_df=recipe.max_df,
                              sublinear_tf=recipe.sublinear_tf, ngram_range=(1, recipe.ngram_max),
                              dtype=np.float32)
    try:
        return vec.fit_transform(texts).tocsr()
    except ValueError:  # empty vocabulary
        return sp.csr_matrix((len(texts), 0), dtype=np.float32)


def build_x(pool: list[dict], recipe: Recipe) -> sp.csr_matrix:
    """Return the row-normalised, field-weighted, hstacked TF-IDF matrix X."""
    bodies = [r["body"] for r in pool]
    if recipe.drop_signoff:
        bodies = [SIGNOFF.sub("", b) for b in bodies]
    titles = [r["title"] for r in pool]
    blocks = []
    if recipe.joint_text:
        blocks.append((_field_space([t + "\n" + b for t, b in zip(titles, bodies)], recipe), recipe.w_body))
        if recipe.w_title_extra > 0:
            blocks.append((_field_space(titles, recipe), recipe.w_title_extra))
    else:
        blocks.append((_field_space(titles, recipe), recipe.w_title))
        blocks.append((_field_space(bodies, recipe), recipe.w_body))
    if recipe.w_lead > 0:
        leads = [" ".join(b.split()[: recipe.lead_words]) for b in bodies]
        blocks.append((_field_space(leads, recipe), recipe.w_lead))
    if recipe.w_tags > 0:
        blocks.append((_field_space([r["tags"] for r in pool], recipe, tags_analyzer), recipe.w_tags))
    x = sp.hstack([normalize(b) * np.float32(wt) for b, wt in blocks if wt > 0], format="csr")
    return normalize(x).astype(np.float32)


def build_z(x: sp.csr_matrix, recipe: Recipe) -> np.ndarray:
    """Return the row-normalised LSA matrix Z (randomized TruncatedSVD, seed 0)."""
    svd = TruncatedSVD(recipe.dims, algorithm="randomized", n_iter=recipe.n_iter,
                       random_state=recipe.extra.get("random_state", 0))
    z = svd.fit_transform(x)
    if recipe.svd_power != 1.0:
        s = svd.singular_values_
        z = z * (s ** (recipe.svd_power - 1.0))
    return normalize(z).astype(np.float32)


def _rows_top(s: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    part = np.argpartition(-s, n, axis=1)[:, :n]
    pv = np.take_along_axis(s, part, 1)
    order = np.lexsort((part, -pv), axis=1)
    return np.take_along_axis(part, order, 1), np.take_along_axis(pv, order, 1)


def top_n_multi(x: sp.csr_matrix | None, z: np.ndarray | None, blends: list[float], n: int = 50,
                block: int = 1024) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Exact top-``n`` under b * X X^T + (1 - b) * Z Z^T for every b in ``blends`` (self excluded)."""
    rows = (x if x is not None else z).shape[0]
    need_x = x is not None and any(b > 0 for b in blends)
    need_z = z is not None and any(b < 1 for b in blends)
    xt = x.T.tocsr() if need_x else None
    out = {b: (np.empty((rows, n), np.int32), np.empty((rows, n), np.float32)) for b in blends}
    for a in range(0, rows, block):
        e = min(rows, a + block)
        sx = (x[a:e] @ xt).toarray() if need_x else 0.0
        sz = z[a:e] @ z.T if need_z else 0.0
        for b in blends:
            s = np.asarray(b * sx + (1 - b) * sz, dtype=np.float32)
            s[np.arange(e - a), np.arange(a, e)] = -np.inf
            i, v = _rows_top(s, n)
            out[b][0][a:e], out[b][1][a:e] = i, v
    return out


def top_n(x: sp.csr_matrix | None, z: np.ndarray | None, blend: float, n: int = 50,
          block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``n`` under blend * X X^T + (1 - blend) * Z Z^T, self excluded, best first."""
    return top_n_multi(x, z, [blend], n, block)[blend]


def labels_of(pool: list[dict]) -> list[set[str]]:
    """Return each pool record's topic set (the hidden ground truth)."""
    return [set(r["topics"]) for r in pool]


def score(idx: np.ndarray, labels: list[set[str]], queries: list[int], k: int = 10) -> dict:
    """Scratch EVALUATION.md scorer: P@k, MAP@k, nDCG@k over queries, coverage over the pool."""
    topics = sorted(set().union(*labels))
    col = {t: j for j, t in enumerate(topics)}
    t = sp.lil_matrix((len(labels), len(topics)), dtype=np.float32)
    for i, ls in enumerate(labels):
        for lab in ls:
            t[i, col[lab]] = 1
    t = t.tocsr()
    size = np.asarray(t.sum(1)).ravel()
    q = np.asarray(queries)
    inter = (t[q] @ t.T).toarray()
    jac = inter / (size[q][:, None] + size[None, :] - inter)
    jac[np.arange(len(q)), q] = 0.0
    top = idx[q, :k]
    valid = top >= 0
    gain = np.where(valid, np.take_along_axis(jac, np.where(valid, top, 0), 1), 0.0)
    rel = gain > 0
    r_q = (jac > 0).sum(1)
    prec_i = np.cumsum(rel, 1) / np.arange(1, k + 1)
    ap = (prec_i * rel).sum(1) / np.maximum(np.minimum(r_q, k), 1)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (gain * disc).sum(1)
    ideal = -np.sort(-jac, axis=1)[:, :k]
    idcg = (ideal * disc).sum(1)
    ndcg = np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1), 0.0)
    all_top = idx[:, :k]
    cov = np.unique(all_top[all_top >= 0]).size / idx.shape[0]
    return {"P@10": rel.sum(1).mean() / k,
            "MAP@10": ap.mean(), "nDCG@10": ndcg.mean(), "coverage": cov}


class Timer:
    """Context manager that records elapsed wall seconds in ``.s``."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.s = time.perf_counter() - self.t0
