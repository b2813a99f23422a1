"""Exact top-N neighbours under the model similarity, computed in blocks on all cores."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from training.kernels import pair_dots
from training.lists import MIN_SCORE, select_top  # noqa: F401 - re-exported
#: Bytes of dense score matrix one block may use (float32), bounding memory per worker.
BLOCK_BYTES = 32 * 1024 * 1024


def _block_size(n_base: int, block_size: int | None) -> int:
    if block_size is not None:
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        return int(block_size)
    return int(max(16, min(4096, BLOCK_BYTES // (4 * max(n_base, 1)))))


def block_scores(
    q_sparse: sp.csr_matrix, q_dense: np.ndarray, base_sparse_t: sp.csr_matrix, base_dense: np.ndarray
) -> np.ndarray:
    """Dense (queries x base) similarity block: sparse dot products plus dense ones.

    Parameters
    ----------
    q_sparse, q_dense : query vectors (sparse part, dense part)
    base_sparse_t : transposed sparse part of the base, CSR of shape (features, n_base)
    base_dense : dense part of the base, shape (n_base, dims)

    Returns
    -------
    numpy.ndarray of float32, shape (n_queries, n_base)
    """
    out = (q_sparse @ base_sparse_t).toarray().astype(np.float32, copy=False)
    if base_dense.shape[1]:
        out += q_dense @ base_dense.T
    return out


def _exhaustive(candidates: int | None, base_dense: np.ndarray) -> bool:
    return candidates is None or base_dense.shape[1] == 0 or candidates >= base_dense.shape[0]


def _block_task(q_sparse, q_dense, base_sparse, base_dense, self_rows, n, candidates):
    hit = self_rows >= 0
    n_base = base_dense.shape[0]
    if _exhaustive(candidates, base_dense):  # base_sparse is then the transposed base
        scores = block_scores(q_sparse, q_dense, base_sparse, base_dense)
        scores[np.flatnonzero(hit), self_rows[hit]] = -np.inf
        return select_top(scores, n)
    dense = q_dense @ base_dense.T
    dense[np.flatnonzero(hit), self_rows[hit]] = -np.inf
    cand = np.argpartition(dense, n_base - candidates, axis=1)[:, n_base - candidates :]
    total = np.take_along_axis(dense, cand, axis=1) + pair_dots(q_sparse, base_sparse, cand)
    idx, val = select_top(total, n)
    mapped = np.where(idx >= 0, np.take_along_axis(cand, np.maximum(idx, 0), axis=1), -1)
    # select_top broke ties by candidate position; re-sort ties by base row.
    order = np.lexsort((np.where(mapped >= 0, mapped, np.iinfo(np.int32).max), -val), axis=1)
    return (np.take_along_axis(mapped, order, axis=1).astype(np.int32),
            np.take_along_axis(val, order, axis=1))


def top_neighbors(
    query_sparse: sp.csr_matrix,
    query_dense: np.ndarray,
    base_sparse: sp.csr_matrix,
    base_dense: np.ndarray,
    n_neighbors: int,
    *,
    self_rows: np.ndarray | None = None,
    n_jobs: int = -1,
    block_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    candidates: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-N base rows for every query row under ``sim = s.s' + z.z'``.

    With ``candidates``, each query's ``candidates`` best base rows by the dense part are
    re-scored with the full similarity (the sparse part by a compiled kernel), which is
    far cheaper than scoring every pair; without, every pair is scored (exhaustive).
    Each block of query rows is an independent joblib task (so any joblib backend, such
    as dask, can run it), run in threads by default (the kernels release the GIL) with
    BLAS limited to one thread per task; memory per task is bounded by ``BLOCK_BYTES``.

    Parameters
    ----------
    query_sparse, query_dense : the queries' vectors
    base_sparse, base_dense : the candidates' vectors
    n_neighbors : int
        N, neighbours kept per query (padded with -1 when fewer have a positive score).
    self_rows : numpy.ndarray of int, optional
        For each query, the base row never to return (itself), or -1.
    n_jobs : int
        joblib workers (-1: all cores).
    block_size : int, optional
        Query rows per task; by default from ``BLOCK_BYTES``.
    progress : callable, optional
        Called with the number of query rows finished after each block.
    candidates : int, optional
        Dense-part candidates re-scored per query (None: exhaustive).

    Returns
    -------
    indices : numpy.ndarray of int32, shape (n_queries, n_neighbors)
    scores : numpy.ndarray of float32, shape (n_queries, n_neighbors)
    """
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
    n_q = query_sparse.shape[0]
    if self_rows is None:
        self_rows = np.full(n_q, -1, dtype=np.int64)
    self_rows = np.asarray(self_rows, dtype=np.int64)
    size = _block_size(base_sparse.shape[0], block_size)
    if _exhaustive(candidates, base_dense):
        base_sparse = base_sparse.T.tocsr()
    starts = range(0, n_q, size)
    tasks = (
        delayed(_block_task)(
            query_sparse[a : a + size], query_dense[a : a + size], base_sparse, base_dense,
            self_rows[a : a + size], n_neighbors, candidates,
        )
        for a in starts
    )
    idx = np.full((n_q, n_neighbors), -1, dtype=np.int32)
    val = np.zeros((n_q, n_neighbors), dtype=np.float32)
    parallel = Parallel(n_jobs=n_jobs, return_as="generator", prefer="threads")
    with threadpool_limits(limits=1 if n_jobs != 1 else None, user_api="blas"):
        for a, (bi, bv) in zip(starts, parallel(tasks)):
            idx[a : a + len(bi)] = bi
            val[a : a + len(bv)] = bv
            if progress is not None:
                progress(len(bi))
    return idx, val
