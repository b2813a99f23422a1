"""`related update`'s list arithmetic in numpy: patch the stored first passes, re-rank what changed.

Every score is computed by the numpy twins of training's kernels (training.twins), and every
list is cut by the same functions as in training (training.lists, training.expansion), so
a patched row equals the row a full `train --features-from` computes, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training import twins, update_state
from training.expansion import dense_scores, expand_dense, rank_lists
from training.lists import MIN_SCORE, NO_KEY, first_pass_from_latent, order_keys, select_lists
from training.update_state import FirstPass

#: Latent multiply-adds (rows x changed rows x dims) above which the compiled kernels pay for
#: numba's import and cache load (about 1 s): the same floats, 5-6x faster per score.
COMPILED_ABOVE = 1e9


@dataclass
class Vectors:
    """The updated corpus's vectors: CSR arrays of the sparse part and the unexpanded latent part.

    ``compiled`` picks training's numba kernels over their numpy twins (training.twins);
    both give the same floats, so only the time differs.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    dense: np.ndarray
    n_features: int
    compiled: bool = False

    def latent_dots(self, q: np.ndarray, base_t: np.ndarray) -> np.ndarray:
        """Latent scores ``q @ base_t``, summed in float32 in order (training's floats)."""
        if self.compiled:
            from training.first_pass import latent_dots

            return latent_dots(q, base_t)
        return twins.latent_dots(q, base_t)

    def pair_dots(self, rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """Sparse parts of the scores of each of ``rows`` with its row of ``cand`` (-1: 0)."""
        rows, cand = np.asarray(rows, dtype=np.int64), np.asarray(cand, dtype=np.int64)
        if not self.compiled:
            return twins.pair_dots(self.indptr, self.indices, self.data, np.repeat(rows, cand.shape[1]),
                                   cand.ravel(), self.n_features).reshape(cand.shape)
        from types import SimpleNamespace

        from training.kernels import pair_dots

        ptr, pos = twins.take_rows(self.indptr, rows)
        queries = SimpleNamespace(indptr=ptr, indices=self.indices[pos], data=self.data[pos])
        base = SimpleNamespace(indptr=self.indptr, indices=self.indices, data=self.data,
                               shape=(len(self.indptr) - 1, self.n_features))
        return pair_dots(queries, base, cand)


def first_pass_rows(vec: Vectors, rows: np.ndarray, lat: np.ndarray, n_first: int, candidates: int) -> FirstPass:
    """The first pass of ``rows`` from their latent scores to every row, as training computes it.

    Parameters
    ----------
    vec : Vectors
    rows : numpy.ndarray of int, shape (r,)
    lat : numpy.ndarray of float32, shape (r, n)
        Their latent scores (twins.latent_dots); the own column is set to -inf here.
    n_first, candidates : int
        First-pass length and candidates rescored.

    Returns
    -------
    FirstPass
    """
    depth = min(candidates + update_state.RESERVE, lat.shape[1] - 1)
    idx, val, first_sparse, cand, cand_lat, top_sparse = first_pass_from_latent(
        rows, lat, depth, candidates, n_first, lambda top: vec.pair_dots(rows, top))
    return FirstPass(idx, val, cand, cand_lat, first_sparse, top_sparse)


def patch_first_pass(state: dict[str, np.ndarray], map_old: np.ndarray, changed: np.ndarray, vec: Vectors,
                     n_first: int, candidates: int) -> tuple[FirstPass, dict[str, int], np.ndarray]:
    """Every row's first pass from the parent's state: merged where that is exact, else recomputed.

    A kept row's stored candidates lose the rows that left and gain the changed rows whose
    latent score beats the last stored one; when its top ``candidates`` are unchanged its
    first pass is kept, otherwise it is chosen again from stored and new score parts. A
    row whose candidates cannot be decided from the state (a tie with the last stored
    entry, or too few left), and every changed row, is recomputed.

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

    Returns
    -------
    first : FirstPass
        Every row's first pass.
    counts : dict
        Rows ``kept``, ``patched`` and ``recomputed`` (of which ``undecided``: kept rows
        whose candidates the state could not decide).
    lat_changed : numpy.ndarray of float32, shape (len(changed), n)
        The changed rows' latent scores.
    """
    n = vec.dense.shape[0]
    depth = min(candidates + update_state.RESERVE, n - 1)
    kept_old = np.flatnonzero(map_old >= 0)
    kept = map_old[kept_old]
    dense_t = np.ascontiguousarray(vec.dense.T)
    lat_changed = vec.latent_dots(vec.dense[changed], dense_t)
    t_lat = lat_changed[:, kept].T  # latent scores are symmetric: lat(i, t) = lat(t, i)
    fresh = first_pass_rows(vec, changed, lat_changed, n_first, candidates)  # sets own scores to -inf
    # their rescored pairs, by key (changed row's rank) * n + other row: sparse parts are symmetric too
    fresh_keys = (np.arange(len(changed))[:, None] * n + fresh.candidates[:, :fresh.candidate_sparse.shape[1]]).ravel()
    fresh_order = np.argsort(fresh_keys)
    fresh_keys, fresh_sparse = fresh_keys[fresh_order], fresh.candidate_sparse.ravel()[fresh_order]
    cand = np.asarray(state["update_candidates"][kept_old], dtype=np.int64)
    lat = np.asarray(state["update_candidate_latent"][kept_old], dtype=np.float32)
    csp = np.asarray(state["update_candidate_sparse"][kept_old], dtype=np.float32)
    width = cand.shape[1]
    mapped = np.where(cand >= 0, map_old[np.maximum(cand, 0)], -1)
    stored = (cand >= 0).sum(axis=1)
    floor = np.where((stored > 0) & (stored < len(map_old) - 1),
                     lat[np.arange(len(kept)), np.maximum(stored - 1, 0)], -np.inf).astype(np.float32)
    enter = t_lat > floor[:, None]
    tie = (t_lat == floor[:, None]).any(axis=1)
    dead = (cand >= 0) & (mapped < 0)
    touched = np.flatnonzero(dead.any(axis=1) | enter.any(axis=1))

    out = FirstPass(np.full((n, n_first), -1, np.int32), np.zeros((n, n_first), np.float32),
                    np.full((n, depth), -1, np.int32), np.zeros((n, depth), np.float32),
                    np.zeros((n, n_first), np.float32), np.zeros((n, min(candidates, depth)), np.float32))
    w = min(width, depth)
    out.candidates[kept, :w], out.latent[kept, :w] = mapped[:, :w], lat[:, :w]
    c = min(csp.shape[1], out.candidate_sparse.shape[1])
    out.candidate_sparse[kept, :c] = csp[:, :c]
    old_first = np.asarray(state["update_first_indices"][kept_old], dtype=np.int64)
    out.indices[kept] = np.where(old_first >= 0, map_old[np.maximum(old_first, 0)], -1)
    out.scores[kept] = state["update_first_scores"][kept_old]
    out.first_sparse[kept] = state["update_first_sparse"][kept_old]
    status = np.zeros(len(kept), np.int8)

    if touched.size:
        # merge: the stored entries still there and the entrants, by (latent desc, row asc)
        ent = enter[touched]
        pick = np.argsort(~ent, axis=1, kind="stable")[:, : int(ent.sum(axis=1).max())]
        e_ok = np.take_along_axis(ent, pick, axis=1)
        e_rows = np.where(e_ok, changed[pick], -1)
        e_lat = np.take_along_axis(t_lat[touched], pick, axis=1)
        rows_all = np.concatenate([mapped[touched], e_rows], axis=1)  # -1: gone, or not an entrant
        lat_all = np.concatenate([lat[touched], e_lat], axis=1)
        neg = np.where(rows_all >= 0, -lat_all, np.inf).astype(np.float32)
        # stable: equal scores keep the stored order (row asc), then the entrants' (row asc) ...
        order_all = np.argsort(neg, axis=1, kind="stable")
        ranked = np.take_along_axis(neg, order_all, axis=1)
        entrant = order_all >= width
        mixed = ((ranked[:, 1:] == ranked[:, :-1]) & (entrant[:, 1:] != entrant[:, :-1])
                 & np.isfinite(ranked[:, 1:])).any(axis=1)
        for r in np.flatnonzero(mixed):  # ... but a stored entry tied with an entrant: compare rows
            ok = rows_all[r] >= 0
            keys = np.where(ok, order_keys(lat_all[r], np.maximum(rows_all[r], 0)), NO_KEY)
            order_all[r] = np.argsort(keys, kind="stable")
        order = order_all[:, :depth]
        new_rows = np.take_along_axis(rows_all, order, axis=1).astype(np.int32)
        new_lat = np.where(new_rows >= 0, np.take_along_axis(lat_all, order, axis=1), 0).astype(np.float32)
        length = (new_rows >= 0).sum(axis=1)
        k = min(candidates, depth)
        same = (order[:, :k] == np.arange(k)).all(axis=1)  # the stored top, all still there, in place
        status[touched] = np.where(tie[touched] | (length < k), 2, np.where(same, 0, 1))

        decided = np.flatnonzero(status[touched] != 2)  # the merged list is exact: it is the new state
        out.candidates[kept[touched[decided]]] = new_rows[decided]
        out.latent[kept[touched[decided]]] = new_lat[decided]
        moved = np.flatnonzero(status[touched] == 1)
        rows_m = touched[moved]
        top, src = new_rows[moved, :k], order[moved, :k]
        c0 = csp.shape[1]
        known = src < c0  # an entry of the stored top: its sparse part is stored
        top_sparse = np.where(known, np.take_along_axis(csp[rows_m], np.minimum(src, c0 - 1), axis=1), 0)
        need = np.nonzero(~known & (top >= 0))
        a, b = kept[rows_m][need[0]], top[need]
        values = np.zeros(len(a), np.float32)
        rank = np.searchsorted(changed, b)
        is_fresh = rank < len(changed)
        is_fresh[is_fresh] = changed[rank[is_fresh]] == b[is_fresh]
        key = rank * n + a
        at = np.minimum(np.searchsorted(fresh_keys, key), len(fresh_keys) - 1)
        hit = is_fresh & (fresh_keys[at] == key) if len(fresh_keys) else np.zeros(len(a), bool)
        values[hit] = fresh_sparse[at[hit]]
        values[~hit] = vec.pair_dots(a[~hit], b[~hit, None])[:, 0]
        top_sparse[need] = values
        top_sparse = top_sparse.astype(np.float32)
        out.candidate_sparse[kept[rows_m]] = top_sparse
        # stored top entries that left the top (pushed below it by entrants, or gone): the stored
        # entries keep their order, so those in the new top are the first ones still there
        alive = mapped[rows_m, :c0] >= 0
        left = alive & (np.cumsum(alive, axis=1) > known.sum(axis=1)[:, None])
        n_left = left.sum(axis=1)
        pushed = np.full((len(moved), max(1, int(n_left.max()))), -2, np.int64)
        r_i = np.nonzero(left)[0]
        pushed[r_i, np.arange(r_i.size) - (np.cumsum(n_left) - n_left)[r_i]] = mapped[rows_m, :c0][left]
        first_raw = np.asarray(state["update_first_indices"][kept_old[rows_m]])
        gone = ((first_raw >= 0) & (out.indices[kept[rows_m]] < 0)).any(axis=1)
        _patch_first(out, kept[rows_m], top, new_lat[moved, :k] + top_sparse, top_sparse, ~known, pushed, gone,
                     n_first)

    redo_kept = kept[status == 2]
    for rows, part in ((changed, fresh), (redo_kept, None)):
        if rows.size:
            part = part or first_pass_rows(vec, rows, vec.latent_dots(vec.dense[rows], dense_t), n_first, candidates)
            for name in ("indices", "scores", "candidates", "latent", "first_sparse", "candidate_sparse"):
                getattr(out, name)[rows] = getattr(part, name)
    redo = np.union1d(redo_kept, changed)
    counts = {"kept": int((status == 0).sum()), "patched": int((status == 1).sum()), "recomputed": int(redo.size),
              "undecided": int(redo_kept.size)}
    return out, counts, lat_changed


def _patch_first(out: FirstPass, rows: np.ndarray, top: np.ndarray, total: np.ndarray, top_sparse: np.ndarray,
                 fresh: np.ndarray, pushed: np.ndarray, gone: np.ndarray, n_first: int) -> None:
    """New first passes of ``rows``, whose top candidates changed, written into ``out``.

    A first pass that lost a member (gone, or pushed out of the top) is chosen again from
    the whole top; otherwise it stays the best of the old top, and only the fresh entries
    that beat its last member (or fill it) join: the same list, fewer entries ranked.
    """
    f_idx, f_val, f_sp = out.indices[rows], out.scores[rows], out.first_sparse[rows]
    lost = gone | ((pushed[:, None, :] == f_idx[:, :, None]) & (f_idx >= 0)[:, :, None]).any(axis=(1, 2))
    full = np.flatnonzero(lost)
    if full.size:
        picked = select_lists(top[full], total[full].copy(), n_first, extra=top_sparse[full])
        out.indices[rows[full]], out.scores[rows[full]], out.first_sparse[rows[full]] = picked
    rest = np.flatnonzero(~lost)
    count = (f_idx[rest] >= 0).sum(axis=1)
    last = np.maximum(count - 1, 0)[:, None]
    last_val = np.take_along_axis(f_val[rest], last, axis=1)
    last_idx = np.take_along_axis(f_idx[rest], last, axis=1)
    t, v = top[rest], total[rest]
    enter = fresh[rest] & (t >= 0) & (v > MIN_SCORE) & np.isfinite(v) & (
        (count[:, None] < n_first) | (v > last_val) | ((v == last_val) & (t < last_idx)))
    grow = np.flatnonzero(enter.any(axis=1))
    if grow.size:
        g = rest[grow]
        e = enter[grow]
        cols = np.argsort(~e, axis=1, kind="stable")[:, : int(e.sum(axis=1).max())]  # the entrants first
        ok = np.take_along_axis(e, cols, axis=1)
        picked = select_lists(
            np.concatenate([f_idx[g], np.where(ok, np.take_along_axis(t[grow], cols, axis=1), -1)], axis=1),
            np.concatenate([f_val[g], np.take_along_axis(v[grow], cols, axis=1)], axis=1), n_first,
            extra=np.concatenate([f_sp[g], np.take_along_axis(top_sparse[g], cols, axis=1)], axis=1))
        out.indices[rows[g]], out.scores[rows[g]], out.first_sparse[rows[g]] = picked


def patch_final_lists(first: FirstPass, old_first: FirstPass, old_lists: tuple[np.ndarray, np.ndarray],
                      old_expanded: np.ndarray, map_old: np.ndarray, changed: np.ndarray, vec: Vectors,
                      neighbors: int, expand_neighbors: int, expand_alpha: float,
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
    cand = first.indices[rerank]
    val = first.first_sparse[rerank] + dense_scores(expanded, rerank, cand)
    indices[rerank], scores[rerank] = rank_lists(cand, val, neighbors)
    return indices, scores, expanded, int(rerank.size)
