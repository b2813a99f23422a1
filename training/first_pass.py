"""The first pass of the neighbour job: each article's latent candidates and first-pass list.

Shared by training (`training.pipeline`) and `related update`, so both compute every row
with the same code and the same float arithmetic (a row's result never depends on which
other rows are computed with it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from numba import njit

from training import update_state
from training.expansion import dense_scores, expand_dense, rank_lists
from training.kernels import pair_dots
from training.lists import first_pass_from_latent
from training.neighbors import top_neighbors
from training.update_state import FirstPass, exhaustive, state_arrays  # noqa: F401 - re-exported


#: Bytes of latent score matrix one block of the first pass may use (float32).
BLOCK_BYTES = 32 * 1024 * 1024
#: Query rows and base columns per tile of the latent-score kernel.
_ROWS, _TILE = 8, 256
#: Rows per block when re-scoring first-pass lists.
_RESCORE = 2048


@njit(cache=True, nogil=True, error_model="numpy")
def _latent_dots(q, base_t, out):  # pragma: no cover - compiled
    rows, dims = q.shape
    n = base_t.shape[1]
    acc = np.empty((_ROWS, _TILE), dtype=np.float32)
    w = np.empty(_ROWS, dtype=np.float32)
    for j0 in range(0, n, _TILE):
        m = min(n - j0, _TILE)
        for i in range(0, rows, _ROWS):
            r = min(_ROWS, rows - i)
            acc[:, :m] = 0
            for k in range(dims):
                for s in range(_ROWS):
                    w[s] = q[i + s, k] if s < r else np.float32(0)
                b_row = base_t[k, j0:j0 + m]
                for j in range(m):
                    for s in range(_ROWS):
                        acc[s, j] += w[s] * b_row[j]
            for s in range(r):
                out[i + s, j0:j0 + m] = acc[s, :m]


def latent_dots(q: np.ndarray, base_t: np.ndarray) -> np.ndarray:
    """Latent scores ``q @ base_t``, each the same float whatever the shapes of the operands.

    Every score is summed in float32 from 0 over the dimensions in order (no fused
    multiply-add, no reordering), so a pair's score does not depend on the block that
    computes it; BLAS picks kernels by shape and rounds differently (one-row operands,
    small problems).

    Parameters
    ----------
    q : numpy.ndarray of float32, shape (a, d)
    base_t : numpy.ndarray of float32, shape (d, b)
        The base rows transposed, C-contiguous.

    Returns
    -------
    numpy.ndarray of float32, shape (a, b)
    """
    out = np.empty((q.shape[0], base_t.shape[1]), dtype=np.float32)
    _latent_dots(np.ascontiguousarray(q, dtype=np.float32), np.ascontiguousarray(base_t, dtype=np.float32), out)
    return out


def _candidate_block(q_sparse, q_dense, sparse, dense_t, self_rows, depth, n_cand, n_first):
    return first_pass_from_latent(self_rows, latent_dots(q_dense, dense_t), depth, n_cand, n_first,
                                  lambda top: pair_dots(q_sparse, sparse, top))


def compute_first_pass(
    sparse: sp.csr_matrix, dense: np.ndarray, n_first: int, candidates: int, *,
    rows: np.ndarray | None = None, n_jobs: int = -1, progress: Callable[[int], None] | None = None,
) -> FirstPass:
    """First-pass lists (and update state) of ``rows`` among all articles, deterministically.

    Exhaustive mode is :func:`training.neighbors.top_neighbors`. In candidate mode each
    row's ``candidates`` best rows by latent score (plus ``update_state.RESERVE`` kept as state) are
    rescored exactly; both cut-offs break ties to the lower row, and every score is the same
    float for a pair whichever block computes it, so a row's result never depends on the
    other rows asked for (what :func:`update` relies on).

    Parameters
    ----------
    sparse, dense : the article vectors (dense part unexpanded)
    n_first : int
        List length.
    candidates : int
        Latent candidates rescored per row (0: exhaustive).
    rows : numpy.ndarray of int, optional
        The rows to compute (default: all).
    n_jobs : int
        Threads (-1: all cores).
    progress : callable, optional
        Called with the number of rows finished after each block.

    Returns
    -------
    FirstPass
    """
    n = sparse.shape[0]
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    if exhaustive(n, dense.shape[1], candidates):
        q_sparse, q_dense = (sparse, dense) if len(rows) == n else (sparse[rows], dense[rows])
        idx, val = top_neighbors(q_sparse, q_dense, sparse, dense, n_first, self_rows=rows,
                                 n_jobs=n_jobs, progress=progress)
        return FirstPass(idx, val, np.zeros((len(rows), 0), np.int32), np.zeros((len(rows), 0), np.float32))
    depth = min(candidates + update_state.RESERVE, n - 1)
    size = max(1, min(4096, BLOCK_BYTES // (4 * n)))
    starts = range(0, len(rows), size)
    dense_t = np.ascontiguousarray(dense.T)
    tasks = (delayed(_candidate_block)(sparse[rows[a:a + size]], dense[rows[a:a + size]], sparse, dense_t,
                                       rows[a:a + size], depth, candidates, n_first) for a in starts)
    k = len(rows)
    out = FirstPass(np.full((k, n_first), -1, np.int32), np.zeros((k, n_first), np.float32),
                    np.zeros((k, depth), np.int32), np.zeros((k, depth), np.float32),
                    np.zeros((k, n_first), np.float32), np.zeros((k, min(candidates, depth)), np.float32))
    arrays = (out.indices, out.scores, out.first_sparse, out.candidates, out.latent, out.candidate_sparse)
    for a, block in zip(starts, Parallel(n_jobs=n_jobs, return_as="generator", prefer="threads")(tasks)):
        for array, part in zip(arrays, block):
            array[a:a + len(part)] = part
        if progress is not None:
            progress(len(block[0]))
    return out


def compute_final_lists(
    sparse: sp.csr_matrix, dense: np.ndarray, first: FirstPass, neighbors: int,
    expand_neighbors: int, expand_alpha: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stored lists and latent vectors from the first pass: query expansion, then re-ranking.

    Parameters
    ----------
    sparse, dense : the article vectors (dense part unexpanded)
    first : FirstPass
        Every row's first pass.
    neighbors : int
        N, the stored list length.
    expand_neighbors, expand_alpha : int, float
        :func:`training.expansion.expand_dense` parameters (0 neighbours: no expansion).

    Returns
    -------
    indices, scores : numpy.ndarray, shape (n, neighbors)
    dense : numpy.ndarray
        The latent vectors to store (expanded when expansion is on).
    """
    if not expand_neighbors or dense.shape[1] == 0:
        return first.indices, first.scores, dense
    expanded = expand_dense(dense, first.indices, first.scores, expand_neighbors, expand_alpha)
    safe = np.maximum(first.indices, 0).astype(np.int64)
    if first.first_sparse is not None:
        sparse_part = first.first_sparse
    else:  # exhaustive first pass: the sparse parts were not kept
        sparse_part = np.zeros(safe.shape, np.float32)
        for a in range(0, len(safe), _RESCORE):
            sparse_part[a:a + _RESCORE] = pair_dots(sparse[a:a + _RESCORE], sparse, safe[a:a + _RESCORE])
    val = sparse_part + dense_scores(expanded, np.arange(len(safe)), first.indices)
    return (*rank_lists(first.indices, val, neighbors), expanded)
