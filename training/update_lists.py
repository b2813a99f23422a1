"""`related update`'s list arithmetic: patch the stored first passes, re-rank what changed.

Every score is computed as training's kernels compute it, by the compiled loops
(training._update_kernels) or their numpy twins (training.twins), and every list is cut by
the same functions as in training (training.lists, training.expansion), so a patched row
equals the row a full `train --features-from` computes, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from training import twins, update_state

try:  # the optional compiled loops (setup.py): the same floats as the numpy code below
    from training import _update_kernels as LOOPS
except ImportError:  # pragma: no cover - built wherever a C compiler is present
    LOOPS = None
from training.expansion import dense_scores, expand_dense, rank_lists
from training.lists import first_pass_from_latent
from training.update_merge import MergeInputs, merge_chunk
from training.update_state import FirstPass

#: Latent multiply-adds (rows x changed rows x dims) above which the compiled kernels pay for
#: numba's import and cache load (about 1 s): the same floats, 5-6x faster per score.
COMPILED_ABOVE = 1e9
#: Rows per chunk of the merge: their temporaries stay in cache.
CHUNK_ROWS = 1024
#: Rows per chunk of the re-ranking: their gathered latent candidates (5 MiB) reuse freed memory.
RERANK_ROWS = 256
#: Floats of the changed rows' sparse vectors held densely for the merge (128 MiB).
CHANGED_DENSE = 1 << 25


def each(func: Callable[[Any], None], items: Iterable[Any], threads: int) -> None:
    """Call ``func`` on every item, in ``threads`` threads (numpy releases the GIL).

    Parameters
    ----------
    func : callable
    items : iterable
    threads : int
    """
    items = list(items)
    if threads <= 1 or len(items) <= 1:
        for item in items:
            func(item)
        return
    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        for _ in pool.map(func, items):  # re-raises the first error
            pass


def _parts(n: int, threads: int, least: int = 64) -> list[slice]:
    """``threads`` slices of ``range(n)``, each at least ``least`` long (one when ``n`` is short)."""
    parts = max(1, min(threads, n // least))
    bounds = np.linspace(0, n, parts + 1).astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


@dataclass
class Vectors:
    """The updated corpus's vectors: CSR arrays of the sparse part and the unexpanded latent part.

    Scores come from the compiled loops when they are built, else from their numpy twins
    (training.twins); ``compiled`` picks training's numba kernels instead. All give the same
    floats, so only the time differs.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    dense: np.ndarray
    n_features: int
    compiled: bool = False

    def __post_init__(self) -> None:
        self.indptr = np.asarray(self.indptr, dtype=np.int64)
        self.indices = np.asarray(self.indices, dtype=np.int32)
        self.data = np.asarray(self.data, dtype=np.float32)

    def latent_dots(self, q: np.ndarray, base_t: np.ndarray, threads: int = 1) -> np.ndarray:
        """Latent scores ``q @ base_t``, summed in float32 in order (training's floats)."""
        if self.compiled:
            from training.first_pass import latent_dots

            return latent_dots(q, base_t)
        out = np.empty((q.shape[0], base_t.shape[1]), np.float32)
        q = np.ascontiguousarray(q, dtype=np.float32)

        def part(cols: slice) -> None:  # a score does not depend on the columns computed with it
            if LOOPS is not None:
                block = np.empty((q.shape[0], cols.stop - cols.start), np.float32)
                LOOPS.latent_dots(q, np.ascontiguousarray(base_t[:, cols]), block)
                out[:, cols] = block
            else:
                out[:, cols] = twins.latent_dots(q, base_t[:, cols])

        each(part, _parts(base_t.shape[1], threads), threads)
        return out

    def pair_dots(self, rows: np.ndarray, cand: np.ndarray, threads: int = 1) -> np.ndarray:
        """Sparse parts of the scores of each of ``rows`` with its row of ``cand`` (-1: 0)."""
        rows, cand = np.asarray(rows, dtype=np.int64), np.asarray(cand, dtype=np.int64)
        if not self.compiled:
            out = np.empty(cand.shape, np.float32)

            def part(r: slice) -> None:
                a, b = np.repeat(rows[r], cand.shape[1]), cand[r].ravel()
                if LOOPS is not None:
                    flat = np.empty(len(a), np.float32)
                    LOOPS.pair_dots(self.indptr, self.indices, self.data, a, b, flat)
                    out[r] = flat.reshape(cand[r].shape)
                else:
                    out[r] = twins.pair_dots(self.indptr, self.indices, self.data, a, b,
                                             self.n_features).reshape(cand[r].shape)

            each(part, _parts(len(rows), threads), threads)
            return out
        from types import SimpleNamespace

        from training.kernels import pair_dots

        ptr, pos = twins.take_rows(self.indptr, rows)
        queries = SimpleNamespace(indptr=ptr, indices=self.indices[pos], data=self.data[pos])
        base = SimpleNamespace(indptr=self.indptr, indices=self.indices, data=self.data,
                               shape=(len(self.indptr) - 1, self.n_features))
        return pair_dots(queries, base, cand)


def first_pass_rows(vec: Vectors, rows: np.ndarray, lat: np.ndarray, n_first: int, candidates: int,
                    threads: int = 1) -> FirstPass:
    """The first pass of ``rows`` from their latent scores to every row, as training computes it.

    Parameters
    ----------
    vec : Vectors
    rows : numpy.ndarray of int, shape (r,)
    lat : numpy.ndarray of float32, shape (r, n)
        Their latent scores (twins.latent_dots); the own column is set to -inf here.
    n_first, candidates : int
        First-pass length and candidates rescored.
    threads : int

    Returns
    -------
    FirstPass
    """
    depth = min(candidates + update_state.RESERVE, lat.shape[1] - 1)
    parts = _parts(len(rows), threads, least=8)
    results: dict[int, tuple[np.ndarray, ...]] = {}

    def part(i: int) -> None:  # a row's first pass does not depend on the rows computed with it
        r = parts[i]
        results[i] = first_pass_from_latent(rows[r], lat[r], depth, candidates, n_first,
                                            lambda top: vec.pair_dots(rows[r], top))

    each(part, range(len(parts)), threads)
    idx, val, first_sparse, cand, cand_lat, top_sparse = (
        np.concatenate([results[i][j] for i in range(len(parts))]) for j in range(6))
    return FirstPass(idx, val, cand, cand_lat, first_sparse, top_sparse)


def patch_first_pass(state: dict[str, np.ndarray], map_old: np.ndarray, changed: np.ndarray, vec: Vectors,
                     n_first: int, candidates: int, threads: int = 1) -> tuple[FirstPass, dict[str, int]]:
    """Every row's first pass from the parent's state: merged where that is exact, else recomputed.

    A kept row's stored candidates lose the rows that left and gain the changed rows whose
    latent score beats the last stored one (:func:`training.update_merge.merge_chunk`, on
    chunks of ``CHUNK_ROWS`` rows in ``threads`` threads). A row whose candidates cannot be
    decided from the state (a tie with the last stored entry, or too few left), and every
    changed row, is recomputed.

    Parameters
    ----------
    state : dict of file stem to array
        The parent's update state (training.update_state.STATE).
    map_old : numpy.ndarray of int, shape (n_old,)
        Parent row -> new row of its unchanged vector, -1 when it left (deleted, re-vectorised).
    changed : numpy.ndarray of int
        New rows with new vectors, ascending.
    vec : Vectors
    n_first, candidates : int
    threads : int
        Threads for the merge and the scores.

    Returns
    -------
    first : FirstPass
        Every row's first pass.
    counts : dict
        Rows ``kept``, ``patched`` and ``recomputed`` (of which ``undecided``: kept rows
        whose candidates the state could not decide).
    """
    n = vec.dense.shape[0]
    depth = min(candidates + update_state.RESERVE, n - 1)
    kept_old = np.flatnonzero(map_old >= 0)
    kept = map_old[kept_old]
    dense_t = np.ascontiguousarray(vec.dense.T)
    lat_changed = vec.latent_dots(vec.dense[changed], dense_t, threads)
    fresh = first_pass_rows(vec, changed, lat_changed, n_first, candidates, threads)  # -inf: own columns
    # their rescored pairs, by key (changed row's rank) * n + other row: sparse parts are symmetric too
    fresh_keys = (np.arange(len(changed))[:, None] * n + fresh.candidates[:, :fresh.candidate_sparse.shape[1]]).ravel()
    fresh_order = np.argsort(fresh_keys)
    out = FirstPass(np.full((n, n_first), -1, np.int32), np.zeros((n, n_first), np.float32),
                    np.full((n, depth), -1, np.int32), np.zeros((n, depth), np.float32),
                    np.zeros((n, n_first), np.float32), np.zeros((n, min(candidates, depth)), np.float32))
    inputs = MergeInputs(state, np.append(map_old, -1).astype(np.int32), len(map_old), changed.astype(np.int32),
                         vec, lat_changed, fresh_keys[fresh_order], fresh.candidate_sparse.ravel()[fresh_order],
                         twins.scatter_rows(vec.indptr, vec.indices, vec.data, changed, vec.n_features)
                         if LOOPS is None and len(changed) * vec.n_features <= CHANGED_DENSE else None,
                         out, depth, candidates, n_first)
    status = np.zeros(len(kept), np.int8)

    if LOOPS is not None:
        t_lat = np.ascontiguousarray(lat_changed.T)
        st = {name: state[name] for name in ("update_candidates", "update_candidate_latent", "update_candidate_sparse",
                                            "update_first_indices", "update_first_scores", "update_first_sparse")}

    def chunk(a: int) -> None:
        if LOOPS is None:
            status[a:a + CHUNK_ROWS] = merge_chunk(inputs, kept_old[a:a + CHUNK_ROWS], kept[a:a + CHUNK_ROWS])
            return
        LOOPS.merge_rows(kept_old[a:a + CHUNK_ROWS], kept[a:a + CHUNK_ROWS], inputs.map_old, inputs.n_old,
                         *st.values(), t_lat, inputs.changed, inputs.fresh_keys, inputs.fresh_sparse,
                         vec.indptr, vec.indices, vec.data, out.candidates, out.latent, out.candidate_sparse,
                         out.indices, out.scores, out.first_sparse, depth, candidates, status[a:a + CHUNK_ROWS])

    each(chunk, range(0, len(kept), CHUNK_ROWS), threads)
    redo_kept = kept[status == 2]
    for rows, part in ((changed, fresh), (redo_kept, None)):
        if rows.size:
            part = part or first_pass_rows(vec, rows, vec.latent_dots(vec.dense[rows], dense_t, threads),
                                           n_first, candidates, threads)
            for name in ("indices", "scores", "candidates", "latent", "first_sparse", "candidate_sparse"):
                getattr(out, name)[rows] = getattr(part, name)
    redo = np.union1d(redo_kept, changed)
    counts = {"kept": int((status == 0).sum()), "patched": int((status == 1).sum()), "recomputed": int(redo.size),
              "undecided": int(redo_kept.size)}
    return out, counts


def patch_final_lists(first: FirstPass, old_first: FirstPass, old_lists: tuple[np.ndarray, np.ndarray],
                      old_expanded: np.ndarray, map_old: np.ndarray, changed: np.ndarray, vec: Vectors,
                      neighbors: int, expand_neighbors: int, expand_alpha: float, threads: int = 1,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The stored lists and expanded vectors: recomputed for the rows whose inputs changed.

    A row's expanded vector changes with its own vector or its first ``m`` first-pass
    entries (rows, scores or vectors); its list changes with its first pass or the expanded
    vector of itself or of a first-pass member. Other rows keep the parent's.

    Parameters
    ----------
    first : FirstPass
        Every new row's first pass (:func:`patch_first_pass`).
    old_first : FirstPass
        The parent's first-pass indices and scores, in parent rows.
    old_lists : (indices, scores)
        The parent's stored lists, in parent rows.
    old_expanded : numpy.ndarray
        The parent's stored (expanded) latent vectors.
    map_old, changed : as for :func:`patch_first_pass`
    vec : Vectors
    neighbors, expand_neighbors, expand_alpha : the model's parameters
    threads : int
        Threads for the re-ranking.

    Returns
    -------
    indices, scores : numpy.ndarray, shape (n, neighbors)
    expanded : numpy.ndarray of float32, shape (n, d)
    reranked : int
        Rows whose list was computed again.
    """
    n = vec.dense.shape[0]
    if not expand_neighbors or vec.dense.shape[1] == 0:
        return first.indices, first.scores, vec.dense, n
    m = expand_neighbors
    kept_old = np.flatnonzero(map_old >= 0)
    kept = map_old[kept_old]
    prev_idx = np.full(first.indices.shape, -2, np.int64)  # -2: no parent row, differs from anything
    prev_val = np.full(first.scores.shape, np.nan, np.float32)
    old_idx = np.asarray(old_first.indices[kept_old], dtype=np.int64)
    prev_idx[kept] = np.where(old_idx >= 0, map_old[np.maximum(old_idx, 0)], -1)
    prev_val[kept] = old_first.scores[kept_old]
    differs = (first.indices != prev_idx) | (first.scores != prev_val)
    is_changed = np.zeros(n + 1, bool)  # index -1 (padding) reads the last, False entry
    is_changed[changed] = True
    top_m = first.indices[:, :m]
    expand = np.flatnonzero(differs[:, :m].any(axis=1) | is_changed[:n] | is_changed[top_m].any(axis=1))
    expanded = np.empty(vec.dense.shape, np.float32)
    expanded[kept] = old_expanded[kept_old]
    expanded[expand] = expand_dense(vec.dense, first.indices[expand], first.scores[expand], m, expand_alpha,
                                    rows=expand)
    moved = np.zeros(n + 1, bool)
    moved[expand] = True
    rerank = np.flatnonzero(differs.any(axis=1) | moved[:n] | moved[first.indices].any(axis=1))
    indices = np.full((n, neighbors), -1, np.int32)
    scores = np.zeros((n, neighbors), np.float32)
    old_i, old_s = old_lists
    keep = np.ones(n, bool)
    keep[rerank] = False
    keep_new = np.flatnonzero(keep)
    from_old = np.full(n, -1, np.int64)
    from_old[kept] = kept_old
    src = from_old[keep_new]
    prev = np.asarray(old_i[src], dtype=np.int64)
    indices[keep_new] = np.where(prev >= 0, map_old[np.maximum(prev, 0)], -1)
    scores[keep_new] = old_s[src]

    def chunk(a: int) -> None:  # a row's scores and list do not depend on the rows ranked with it
        rows = rerank[a:a + RERANK_ROWS]
        cand = first.indices[rows]
        val = first.first_sparse[rows] + dense_scores(expanded, rows, cand)
        indices[rows], scores[rows] = rank_lists(cand, val, neighbors)

    each(chunk, range(0, len(rerank), RERANK_ROWS), threads)
    return indices, scores, expanded, int(rerank.size)
