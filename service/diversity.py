"""Near-duplicate skipping and maximal marginal relevance over stored article vectors."""

from __future__ import annotations

import numpy as np

from service.model import LoadedModel

#: Up to this many rows, pairwise similarities are computed on a gathered dense block.
SMALL_POOL = 64

def pair_similarities(model: LoadedModel, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """Return the model similarity ``s_i . s_j + z_i . z_j`` of every pair of stored rows.

    Parameters
    ----------
    model : LoadedModel
        The served version.
    rows_a, rows_b : ndarray of int
        Rows of the two sets.

    Returns
    -------
    ndarray of float32, shape (len(rows_a), len(rows_b))
    """
    rows_a = np.asarray(rows_a, dtype=np.int64)
    rows_b = np.asarray(rows_b, dtype=np.int64)
    sparse = model.vectors_sparse
    dense = model.vectors_dense
    out = np.asarray((sparse[rows_a] @ sparse[rows_b].T).toarray(), dtype=np.float32)
    out += np.asarray(dense[rows_a], dtype=np.float32) @ np.asarray(dense[rows_b], dtype=np.float32).T
    return out


def similarity_matrix(model: LoadedModel, rows: np.ndarray) -> np.ndarray:
    """Return the model similarity of every pair of ``rows`` (square, one sparse product).

    Parameters
    ----------
    model : LoadedModel
    rows : ndarray of int

    Returns
    -------
    ndarray of float64, shape (len(rows), len(rows))
    """
    rows = np.asarray(rows, dtype=np.int64)
    latent = np.asarray(model.vectors_dense[rows], dtype=np.float32)
    if rows.size > SMALL_POOL:
        sub = model.vectors_sparse[rows]
        return np.asarray((sub @ sub.T).toarray() + latent @ latent.T, dtype=np.float64)
    # few rows: gather them into a dense block over the columns they use (no scipy overhead)
    sparse = model.vectors_sparse
    starts = sparse.indptr[rows]
    lengths = sparse.indptr[rows + 1] - starts
    positions = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
    columns, where = np.unique(sparse.indices[positions], return_inverse=True)
    block = np.zeros((rows.size, columns.size), dtype=np.float32)
    block[np.repeat(np.arange(rows.size), lengths), where] = sparse.data[positions]
    return np.asarray(block @ block.T + latent @ latent.T, dtype=np.float64)


def select(model: LoadedModel, pool: np.ndarray, relevance: np.ndarray, query_sims: np.ndarray, needed: int,
           chosen: np.ndarray, dedupe: float | None, diversity: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedily pick up to ``needed`` rows of ``pool``: skip near-duplicates, re-rank by MMR.

    At each step every remaining candidate is worth
    ``(1 - diversity) * relevance - diversity * max(0, max similarity to the rows chosen so far)``
    and the best one (first in pool order on ties) is taken. A candidate whose similarity to
    the query or to a chosen row is at least ``dedupe`` is never taken. The values taken are
    non-increasing, since each candidate's worth only falls as rows are chosen.

    Parameters
    ----------
    model : LoadedModel
        Gives the stored vectors for the pairwise similarities.
    pool : ndarray of int
        Candidate rows, ordered by relevance (best first, ties by lower row).
    relevance : ndarray of float
        The relevance of each pool row (similarity, decayed by age when asked).
    query_sims : ndarray of float
        The undecayed similarity of each pool row to the query.
    needed : int
        Largest number of rows to pick.
    chosen : ndarray of int
        Rows already in the list (editor pins): they count as chosen for both rules.
    dedupe : float or None
        Near-duplicate threshold; None disables the skipping.
    diversity : float
        MMR trade-off in [0, 1]; 0 is pure relevance.

    Returns
    -------
    rows : ndarray of int64
        The picked rows, in the order picked.
    values : ndarray of float64
        The worth of each when it was picked (the relevance when ``diversity`` is 0).
    """
    pool = np.asarray(pool, dtype=np.int64)
    relevance = np.asarray(relevance, dtype=np.float64)
    alive = np.ones(pool.size, dtype=bool)
    if dedupe is not None:
        alive &= np.asarray(query_sims) < dedupe
    if needed < 1 or not alive.any():
        return np.empty(0, dtype=np.int64), np.empty(0)
    if dedupe is None and diversity == 0:
        picked = np.flatnonzero(alive)[:needed]
        return pool[picked], relevance[picked]
    chosen = np.asarray(chosen, dtype=np.int64)
    # Pure relevance picks in pool order, so a prefix of the pool gives the same picks as the
    # whole pool as long as it yields enough; MMR needs every candidate at each step.
    size = pool.size if diversity > 0 else min(pool.size, 2 * needed + 4)
    while True:
        rows, values = _greedy(model, pool[:size], relevance[:size], alive[:size].copy(), needed, chosen,
                               dedupe, diversity)
        if rows.size >= needed or size >= pool.size:
            return rows, values
        size = min(pool.size, 4 * size)


def _greedy(model: LoadedModel, pool: np.ndarray, relevance: np.ndarray, alive: np.ndarray, needed: int,
            chosen: np.ndarray, dedupe: float | None, diversity: float) -> tuple[np.ndarray, np.ndarray]:
    """The greedy loop of :func:`select` over one pool, with all pairwise similarities computed at once."""
    everything = np.concatenate([chosen, pool])
    matrix = similarity_matrix(model, everything)
    max_sim = matrix[chosen.size:, :chosen.size].max(axis=1) if chosen.size else np.full(pool.size, -np.inf)
    matrix = matrix[chosen.size:, chosen.size:]
    rows, values = [], []
    while len(rows) < needed:
        if dedupe is not None:
            alive &= max_sim < dedupe
        if not alive.any():
            break
        worth = relevance if diversity == 0 else (1 - diversity) * relevance - diversity * np.maximum(max_sim, 0)
        best = int(np.argmax(np.where(alive, worth, -np.inf)))
        rows.append(int(pool[best]))
        values.append(float(worth[best]))
        alive[best] = False
        max_sim = np.maximum(max_sim, matrix[:, best])
    return np.asarray(rows, dtype=np.int64), np.asarray(values, dtype=np.float64)
