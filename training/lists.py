"""Choosing lists from scores with numpy alone: the best n per row, ties to the lower row.

Shared by training and `related update`, so both cut every list the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Scores at or below this are float noise between unrelated articles, never neighbours.
MIN_SCORE = 1e-6


def select_top(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pick the ``n`` best columns of every row, best first, ties to the lower column.

    Entries that are not finite or not above ``MIN_SCORE`` are never picked; missing slots are
    padded with index -1 and score 0.

    Parameters
    ----------
    scores : numpy.ndarray, shape (rows, cols)
        Scores, modified in place (non-positive entries set to -inf).
    n : int
        How many columns to keep per row.

    Returns
    -------
    indices : numpy.ndarray of int32, shape (rows, n)
    values : numpy.ndarray of float32, shape (rows, n)
    """
    rows, cols = scores.shape
    out_idx = np.full((rows, n), -1, dtype=np.int32)
    out_val = np.zeros((rows, n), dtype=np.float32)
    if rows == 0 or cols == 0 or n == 0:
        return out_idx, out_val
    scores[~((scores > MIN_SCORE) & np.isfinite(scores))] = -np.inf
    m = min(n, cols)
    if m < cols:
        part = np.argpartition(-scores, m - 1, axis=1)[:, :m]
    else:
        part = np.broadcast_to(np.arange(cols), (rows, cols)).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    # Ties at the cut-off: the partition may have taken any of them; take the lowest columns.
    cut = vals.min(axis=1)
    finite_cut = np.isfinite(cut)
    above = (scores > cut[:, None]).sum(axis=1)
    at = (scores == cut[:, None]).sum(axis=1)
    for r in np.flatnonzero(finite_cut & (above + at > m)):
        tied = np.flatnonzero(scores[r] == cut[r])[: m - above[r]]
        keep = np.concatenate([np.flatnonzero(scores[r] > cut[r]), tied])
        part[r] = keep
        vals[r] = scores[r, keep]
    row_of = np.repeat(np.arange(rows), m)
    order = np.lexsort((part.ravel(), -vals.ravel(), row_of)).reshape(rows, m)
    flat_part, flat_vals = part.ravel()[order], vals.ravel()[order]
    good = np.isfinite(flat_vals)
    out_idx[:, :m] = np.where(good, flat_part, -1)
    out_val[:, :m] = np.where(good, flat_vals, 0.0)
    return out_idx, out_val


def top_latent(lat: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns of every row by (score descending, column ascending).

    Parameters
    ----------
    lat : numpy.ndarray, shape (rows, n)
    k : int

    Returns
    -------
    columns : numpy.ndarray of int32, shape (rows, k)
    scores : numpy.ndarray, shape (rows, k)
    """
    n = lat.shape[1]
    part = np.argpartition(lat, n - k, axis=1)[:, n - k:]
    vals = np.take_along_axis(lat, part, axis=1)
    cut = vals.min(axis=1)
    for r in np.flatnonzero(np.count_nonzero(lat >= cut[:, None], axis=1) > k):
        above = np.flatnonzero(lat[r] > cut[r])  # ties at the cut: the lowest columns
        part[r] = np.concatenate([above, np.flatnonzero(lat[r] == cut[r])[: k - above.size]])
        vals[r] = lat[r, part[r]]
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(part, order, axis=1).astype(np.int32), np.take_along_axis(vals, order, axis=1)


def first_pass_from_latent(
    rows: np.ndarray, lat: np.ndarray, depth: int, candidates: int, n_first: int,
    sparse_dots: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, ...]:
    """The first pass of ``rows`` from their latent scores to every row (training and update).

    The ``depth`` best rows by latent score are the candidates; the first ``candidates`` of
    them are rescored with their sparse parts, and the best ``n_first`` by the sum form the
    first-pass list.

    Parameters
    ----------
    rows : numpy.ndarray of int, shape (r,)
    lat : numpy.ndarray of float32, shape (r, n)
        Their latent scores; the own column is set to -inf here.
    depth, candidates, n_first : int
    sparse_dots : callable
        ``sparse_dots(top)``: the sparse parts of the scores of ``rows`` with ``top``
        (shape (r, candidates)), as float32.

    Returns
    -------
    indices, scores, first_sparse : numpy.ndarray, shape (r, n_first)
    candidates, latent : numpy.ndarray, shape (r, depth)
    candidate_sparse : numpy.ndarray, shape (r, candidates)
    """
    lat[np.arange(len(rows)), rows] = -np.inf
    cand, cand_lat = top_latent(lat, depth)
    top = cand[:, :candidates]
    top_sparse = sparse_dots(top)
    idx, val, first_sparse = select_lists(top, cand_lat[:, :candidates] + top_sparse, n_first, extra=top_sparse)
    return idx, val, first_sparse, cand, cand_lat, top_sparse


def order_keys(scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """uint64 keys that sort entries by (score descending, row ascending), one comparison each.

    Parameters
    ----------
    scores : numpy.ndarray of float32
        Finite scores.
    rows : numpy.ndarray of int, same shape
        Non-negative rows (below 2**32).

    Returns
    -------
    numpy.ndarray of uint64
    """
    bits = np.ascontiguousarray(scores, dtype=np.float32).view(np.uint32)
    ascending = np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000))
    return ((~ascending).astype(np.uint64) << np.uint64(32)) | np.asarray(rows).astype(np.uint64)


#: The key of an entry that is never picked.
NO_KEY = np.iinfo(np.uint64).max


def select_lists(
    cand: np.ndarray, total: np.ndarray, n: int, extra: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """Each row's best ``n`` candidates by (score descending, row ascending), above MIN_SCORE.

    Parameters
    ----------
    cand : numpy.ndarray of int, shape (rows, c)
        Candidate rows, -1 for none.
    total : numpy.ndarray of float32, shape (rows, c)
        Their scores.
    n : int
        List length.
    extra : numpy.ndarray of float32, shape (rows, c), optional
        A value per candidate carried along (the sparse part of its score).

    Returns
    -------
    indices : numpy.ndarray of int32, shape (rows, n), -1 padded
    scores : numpy.ndarray of float32, shape (rows, n), 0 padded
    extra : numpy.ndarray of float32, shape (rows, n), 0 padded (only when given)
    """
    rows, c = cand.shape
    total = np.asarray(total, dtype=np.float32)
    good = (cand >= 0) & (total > MIN_SCORE) & np.isfinite(total)
    keys = np.where(good, order_keys(np.where(good, total, 0), np.maximum(cand, 0)), NO_KEY)
    m = min(n, c)
    if 0 < m < c:
        part = np.argpartition(keys, m - 1, axis=1)[:, :m]
    else:
        part = np.broadcast_to(np.arange(m), (rows, m))
    sel = np.take_along_axis(part, np.argsort(np.take_along_axis(keys, part, axis=1), axis=1), axis=1)
    ok = np.take_along_axis(keys, sel, axis=1) != NO_KEY
    idx = np.full((rows, n), -1, np.int32)
    val = np.zeros((rows, n), np.float32)
    idx[:, :m] = np.where(ok, np.take_along_axis(cand, sel, axis=1), -1)
    val[:, :m] = np.where(ok, np.take_along_axis(total, sel, axis=1), 0)
    if extra is None:
        return idx, val
    carried = np.zeros((rows, n), np.float32)
    carried[:, :m] = np.where(ok, np.take_along_axis(extra, sel, axis=1), 0)
    return idx, val, carried
