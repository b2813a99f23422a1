"""Numpy twins of the compiled kernels: the same float32 scores, without numba or scipy.

`related update` scores a few rows; importing numba and scipy would cost more than that work.
Each twin repeats its kernel's float operations in the kernel's order (float32 products,
added one by one from 0), so its results are the kernel's bit for bit (tests/test_twins.py).
"""

from __future__ import annotations

import numpy as np

#: Base columns per block of :func:`latent_dots` (keeps the accumulator in cache).
_COLUMNS = 1024
#: Floats of the dense rows one block of :func:`pair_dots` scatters.
_DENSE = 1 << 22
#: Dense floats per pair entry above which :func:`pair_dots` searches the shared columns instead.
_SEARCH_ABOVE = 16


def latent_dots(q: np.ndarray, base_t: np.ndarray) -> np.ndarray:
    """``q @ base_t`` as :func:`training.first_pass.latent_dots` computes it.

    Each score is summed in float32 from 0 over the dimensions in order.

    Parameters
    ----------
    q : numpy.ndarray of float32, shape (a, d)
    base_t : numpy.ndarray of float32, shape (d, b)

    Returns
    -------
    numpy.ndarray of float32, shape (a, b)
    """
    q = np.ascontiguousarray(q, dtype=np.float32)
    base_t = np.asarray(base_t, dtype=np.float32)
    rows, dims = q.shape
    n = base_t.shape[1]
    out = np.empty((rows, n), dtype=np.float32)
    tmp = np.empty((rows, min(_COLUMNS, n)), dtype=np.float32)
    for j0 in range(0, n, _COLUMNS):
        m = min(_COLUMNS, n - j0)
        acc = np.zeros((rows, m), dtype=np.float32)
        part = tmp[:, :m]
        for k in range(dims):
            np.multiply(q[:, k : k + 1], base_t[k, j0 : j0 + m], out=part)
            acc += part
        out[:, j0 : j0 + m] = acc
    return out


def take_rows(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row pointers and entry positions of the CSR rows ``rows``, in that order.

    Parameters
    ----------
    indptr : numpy.ndarray of int
        Row pointers of a CSR matrix.
    rows : numpy.ndarray of int

    Returns
    -------
    ptr : numpy.ndarray of int64, shape (len(rows) + 1,)
        Row pointers of the gathered rows.
    pos : numpy.ndarray of int64
        Positions of their entries in the matrix's ``indices`` and ``data``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    lengths = indptr[rows + 1] - indptr[rows]
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=ptr[1:])
    return ptr, np.repeat(indptr[rows] - ptr[:-1], lengths) + np.arange(int(ptr[-1]))


def pair_dots(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, a: np.ndarray, b: np.ndarray,
              n_features: int) -> np.ndarray:
    """Sparse dot products ``x_a[p] . x_b[p]`` as :func:`training.kernels.pair_dots` computes them.

    The kernel adds float32 products over the columns the two rows share, from 0, in
    ascending column order (other columns add exact zeros), which is symmetric in the pair.

    Parameters
    ----------
    indptr, indices, data : the CSR arrays of the vectors (rows with sorted columns)
    a, b : numpy.ndarray of int, shape (p,)
        The rows of each pair (-1 in ``b``: score 0).
    n_features : int
        Columns of the vectors.

    Returns
    -------
    numpy.ndarray of float32, shape (p,)
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    out = np.zeros(len(a), dtype=np.float32)
    live = np.flatnonzero((a >= 0) & (b >= 0))
    if not live.size:
        return out
    live = live[np.argsort(a[live], kind="stable")]  # pairs grouped by their row a
    starts = np.flatnonzero(np.r_[True, a[live][1:] != a[live][:-1]])
    entries = live.size * max(1, len(indices) // max(len(indptr) - 1, 1))
    if len(starts) * n_features > _SEARCH_ABOVE * entries:  # scattered pairs: search the shared columns
        out[live] = _searched_pair_dots(indptr, indices, data, a[live], b[live], n_features)
        return out
    per_block = max(1, _DENSE // max(n_features, 1))  # rows a scattered densely at once
    for c in range(0, len(starts), per_block):
        stop = starts[c + per_block] if c + per_block < len(starts) else live.size
        _pair_block(indptr, indices, data, a, b, live[starts[c]:stop], n_features, out)
    return out


def scatter_rows(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, rows: np.ndarray,
                 n_features: int) -> np.ndarray:
    """The CSR rows ``rows`` as dense float32 rows (for :func:`dense_pair_dots`).

    Parameters
    ----------
    indptr, indices, data : the CSR arrays
    rows : numpy.ndarray of int
    n_features : int

    Returns
    -------
    numpy.ndarray of float32, shape (len(rows), n_features)
    """
    dense = np.zeros((len(rows), n_features), dtype=np.float32)
    ptr, pos = take_rows(indptr, rows)
    dense[np.repeat(np.arange(len(rows)), np.diff(ptr)), indices[pos]] = data[pos]
    return dense


def dense_pair_dots(dense: np.ndarray, local: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
                    data: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x_a[p] . x_b[p]`` for rows ``a`` given densely (``dense[local[p]]``), as the kernel sums them.

    Parameters
    ----------
    dense : numpy.ndarray of float32, shape (r, n_features)
        Rows from :func:`scatter_rows`.
    local : numpy.ndarray of int, shape (p,)
        Each pair's row of ``dense``.
    indptr, indices, data : the CSR arrays of the rows ``b`` (sorted columns)
    b : numpy.ndarray of int, shape (p,)
        Each pair's CSR row (not -1).

    Returns
    -------
    numpy.ndarray of float32, shape (p,)
    """
    ptr, pos = take_rows(indptr, b)
    pair_of = np.repeat(np.arange(len(b)), np.diff(ptr))
    prod = data[pos] * dense[np.asarray(local)[pair_of], indices[pos]]
    hit = prod != 0  # a shared column (the data are positive): zeros add nothing to the sum
    return _sums_in_order(pair_of[hit], prod[hit], len(b))


def _sums_in_order(pair_of: np.ndarray, prod: np.ndarray, pairs: int) -> np.ndarray:
    """Per pair, the float32 sum of its products from 0, one after another (``pair_of`` ascending)."""
    out = np.zeros(pairs, dtype=np.float32)
    if not prod.size:
        return out
    counts = np.bincount(pair_of, minlength=pairs)
    first = np.cumsum(counts) - counts
    padded = np.zeros((pairs, int(counts.max())), dtype=np.float32)
    padded[pair_of, np.arange(prod.size) - first[pair_of]] = prod  # in ascending column order
    out[:] = np.cumsum(padded, axis=1)[:, -1]  # float32, one addition after another
    return out


def _searched_pair_dots(indptr, indices, data, a, b, n_features) -> np.ndarray:
    """:func:`pair_dots` of pairs with few shared rows: each entry of ``a`` looked up in ``b``."""
    ptr_a, pos_a = take_rows(indptr, a)
    ptr_b, pos_b = take_rows(indptr, b)
    pair_a = np.repeat(np.arange(len(a), dtype=np.int64), np.diff(ptr_a))
    key_b = np.repeat(np.arange(len(b), dtype=np.int64), np.diff(ptr_b)) * n_features + indices[pos_b]
    key_a = pair_a * n_features + indices[pos_a]  # both ascending: pairs in order, columns sorted
    if not key_b.size:
        return np.zeros(len(a), dtype=np.float32)
    at = np.minimum(np.searchsorted(key_b, key_a), key_b.size - 1)
    shared = key_b[at] == key_a
    prod = data[pos_b[at[shared]]] * data[pos_a[shared]]
    hit = prod != 0
    return _sums_in_order(pair_a[shared][hit], prod[hit], len(a))


def _pair_block(indptr, indices, data, a, b, pairs, n_features, out) -> None:
    rows_a, local = np.unique(a[pairs], return_inverse=True)
    dense = scatter_rows(indptr, indices, data, rows_a, n_features)
    out[pairs] = dense_pair_dots(dense, local, indptr, indices, data, b[pairs])
