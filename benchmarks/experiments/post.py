"""Cheap post-processing of exact top-N neighbour lists: query expansion, hubness reduction, SNN."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import ndtr
from sklearn.preprocessing import normalize


def _sorted(idx: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort every row by score descending, ties by lower index; -1 slots last."""
    s = np.where(idx >= 0, s, -np.inf)
    order = np.lexsort((idx, -s), axis=1)
    return np.take_along_axis(idx, order, 1), np.take_along_axis(s, order, 1).astype(np.float32)


def alpha_qe(z: np.ndarray, idx: np.ndarray, val: np.ndarray, m: int, alpha: float,
             self_weight: float = 1.0) -> np.ndarray:
    """Return alpha-QE latent vectors: normalise(self_weight * z_i + sum_{r<m} max(s_ir, 0)^alpha z_j).

    Parameters
    ----------
    z : (n, d) row-normalised latent vectors.
    idx, val : (n, N) exact top-N lists (best first) and their similarities.
    m : neighbours used; alpha : similarity exponent.
    """
    w = np.maximum(val[:, :m], 0.0) ** alpha
    w = np.where(idx[:, :m] >= 0, w, 0.0).astype(np.float32)
    nb = z[np.maximum(idx[:, :m], 0)]  # (n, m, d)
    out = self_weight * z + np.einsum("nm,nmd->nd", w, nb)
    return normalize(out).astype(np.float32)


def rescore_lists(idx: np.ndarray, sx: np.ndarray | None, z: np.ndarray, blend: float,
                  z_query: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Re-score each candidate list with blend * sx + (1 - blend) * zq_i . z_j and re-sort it.

    ``sx`` holds the TF-IDF cosines of the candidate pairs (same shape as idx) or None;
    ``z_query`` (default ``z``) is the query-side latent matrix (one-sided expansion).
    """
    zq = z if z_query is None else z_query
    zz = np.einsum("nd,nmd->nm", zq, z[np.maximum(idx, 0)])
    s = (1 - blend) * zz + (blend * sx if sx is not None else 0.0)
    return _sorted(idx, s)


def pair_cosines(x: sp.csr_matrix, idx: np.ndarray, block: int = 512) -> np.ndarray:
    """Return x_i . x_j for every candidate j = idx[i, r] (sparse rows), in row blocks."""
    out = np.empty(idx.shape, dtype=np.float32)
    c = idx.shape[1]
    for a in range(0, idx.shape[0], block):
        sub = idx[a:a + block]
        rows = np.repeat(np.arange(a, a + sub.shape[0]), c)
        prod = x[rows].multiply(x[np.maximum(sub.ravel(), 0)])
        out[a:a + block] = np.asarray(prod.sum(1)).reshape(sub.shape)
    return out


def csls(idx: np.ndarray, val: np.ndarray, k: int, beta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """CSLS hubness reduction: s'_ij = 2 s_ij - beta * (r_i + r_j), r = mean of the top-k scores."""
    r = val[:, :k].mean(1)
    s = 2 * val - beta * (r[:, None] + r[np.maximum(idx, 0)])
    return _sorted(idx, s)


def mutual_proximity(idx: np.ndarray, val: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian mutual proximity with local stats (mean/std of each row's top-k scores)."""
    mu = val[:, :k].mean(1)
    sd = val[:, :k].std(1) + 1e-6
    j = np.maximum(idx, 0)
    s = ndtr((val - mu[:, None]) / sd[:, None]) * ndtr((val - mu[j]) / sd[j])
    return _sorted(idx, s + 1e-6 * val)


def snn(idx: np.ndarray, val: np.ndarray, k: int, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Shared-nearest-neighbour bonus: s'_ij = s_ij + beta * |N_k(i) & N_k(j)| / k."""
    n = idx.shape[0]
    a = sp.csr_matrix((np.ones(n * k, np.float32), idx[:, :k].ravel(), np.arange(0, n * k + 1, k)),
                      shape=(n, n))
    a = a + sp.identity(n, dtype=np.float32, format="csr")
    rows = np.repeat(np.arange(n), idx.shape[1])
    cols = np.maximum(idx.ravel(), 0)
    shared = np.asarray(a[rows].multiply(a[cols]).sum(1)).reshape(idx.shape)
    return _sorted(idx, val + beta * shared / (k + 1))


def reciprocal(idx: np.ndarray, val: np.ndarray, k: int, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """k-reciprocal bonus: s'_ij = s_ij + beta when i is also in j's top-k."""
    n = idx.shape[0]
    a = sp.csr_matrix((np.ones(n * k, np.float32), idx[:, :k].ravel(), np.arange(0, n * k + 1, k)),
                      shape=(n, n))
    rows = np.repeat(np.arange(n), idx.shape[1])
    cols = np.maximum(idx.ravel(), 0)
    back = np.asarray(a[cols, rows]).reshape(idx.shape)
    return _sorted(idx, val + beta * back)


def alpha_qe_sparse(x: sp.csr_matrix, idx: np.ndarray, val: np.ndarray, m: int, alpha: float,
                    self_weight: float = 1.0) -> sp.csr_matrix:
    """Return alpha-QE sparse vectors: normalise(self_weight * x_i + sum_{r<m} max(s_ir, 0)^alpha x_j)."""
    n = idx.shape[0]
    w = np.maximum(val[:, :m], 0.0) ** alpha
    ok = idx[:, :m] >= 0
    rows = np.repeat(np.arange(n), m)[ok.ravel()]
    mix = sp.csr_matrix((w[ok].astype(np.float32), (rows, idx[:, :m][ok])), shape=(n, n))
    mix = mix + self_weight * sp.identity(n, dtype=np.float32, format="csr")
    return normalize(mix @ x).astype(np.float32).tocsr()


def draft_style(z: np.ndarray, zq: np.ndarray, idx: np.ndarray, sx: np.ndarray | None, blend: float,
                m: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Score every article as an unsaved draft would be, seeing only the stored x and z' = QE(z).

    The draft's own top-m come from blend * sx + (1 - blend) * z_i . z'_j, its expansion uses
    the neighbours' stored z', and the final score is blend * sx + (1 - blend) * z''_i . z'_j.
    """
    i1, v1 = rescore_lists(idx, sx, zq, blend, z_query=z)
    w = (np.maximum(v1[:, :m], 0.0) ** alpha).astype(np.float32)
    z2 = normalize(z + np.einsum("nm,nmd->nd", w, zq[np.maximum(i1[:, :m], 0)])).astype(np.float32)
    return rescore_lists(idx, sx, zq, blend, z_query=z2)
