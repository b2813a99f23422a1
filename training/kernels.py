"""Compiled kernels (numba) for the hot loops of the neighbour job."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _pair_dots(qp, qi, qd, bp, bi, bd, cand, n_features):  # pragma: no cover - compiled
    b, c = cand.shape
    out = np.zeros((b, c), dtype=np.float32)
    acc = np.zeros(n_features, dtype=np.float32)
    for r in range(b):
        for t in range(qp[r], qp[r + 1]):
            acc[qi[t]] = qd[t]
        for k in range(c):
            j = cand[r, k]
            if j < 0:
                continue
            s = np.float32(0.0)
            for t in range(bp[j], bp[j + 1]):
                s += bd[t] * acc[bi[t]]
            out[r, k] = s
        for t in range(qp[r], qp[r + 1]):
            acc[qi[t]] = 0.0
    return out


def pair_dots(q_sparse, base_sparse, cand: np.ndarray) -> np.ndarray:
    """Sparse dot products of every query row with its own candidate base rows.

    Runs without the GIL, so blocks can run in threads.

    Parameters
    ----------
    q_sparse : scipy.sparse.csr_matrix, shape (B, features)
    base_sparse : scipy.sparse.csr_matrix, shape (n_base, features)
    cand : numpy.ndarray of int, shape (B, C)
        Base rows per query row; -1 entries give 0.

    Returns
    -------
    numpy.ndarray of float32, shape (B, C)
    """
    return _pair_dots(
        q_sparse.indptr, q_sparse.indices, q_sparse.data.astype(np.float32, copy=False),
        base_sparse.indptr, base_sparse.indices, base_sparse.data.astype(np.float32, copy=False),
        np.ascontiguousarray(cand, dtype=np.int64), base_sparse.shape[1],
    )
