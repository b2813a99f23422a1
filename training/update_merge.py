"""Merge a chunk of rows' stored latent candidates with the changed rows, and patch their first passes.

`related update` runs :func:`merge_chunk` on row chunks in threads (numpy releases the GIL);
a row's result never depends on its chunk, so the chunking changes only the time and the
memory the work touches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from training import twins
from training.lists import MIN_SCORE, NO_KEY, order_keys, select_lists
from training.update_state import FirstPass


@dataclass
class MergeInputs:
    """What every chunk reads: the parent's state, the changes and the output to fill.

    ``map_old`` maps a parent row to its new row (-1: it left) and has one more entry, -1,
    so that padding (-1) maps to -1; ``n_old`` counts the parent's rows.
    ``fresh_keys`` / ``fresh_sparse`` are the changed rows' rescored pairs, keyed by
    ``changed rank * n + other row`` and sorted; ``lat_changed`` holds the changed rows'
    latent scores to every row, ``changed_dense`` their sparse vectors as dense rows (None
    when too large).
    """

    state: dict[str, np.ndarray]
    map_old: np.ndarray
    n_old: int
    changed: np.ndarray
    vec: Any
    lat_changed: np.ndarray
    fresh_keys: np.ndarray
    fresh_sparse: np.ndarray
    changed_dense: np.ndarray | None
    out: FirstPass
    depth: int
    candidates: int
    n_first: int


def merge_chunk(m: MergeInputs, kept_old: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Write the new state and first pass of the kept rows ``kept`` (parent rows ``kept_old``) into ``m.out``.

    Each row's stored candidates lose the rows that left and gain the changed rows whose
    latent score beats the last stored one; when its top ``candidates`` are unchanged its
    first pass is kept, otherwise it is chosen again from stored and new score parts.

    Parameters
    ----------
    m : MergeInputs
    kept_old, kept : numpy.ndarray of int
        The rows in parent and in new numbering.

    Returns
    -------
    numpy.ndarray of int8
        Per row: 0 kept, 1 patched, 2 undecided (a tie with the last stored entry, or too
        few candidates left: the caller recomputes it).
    """
    state, map_old, changed, out, depth = m.state, m.map_old, m.changed, m.out, m.depth
    n = len(out.indices)
    t_lat = m.lat_changed[:, kept].T  # latent scores are symmetric: lat(i, t) = lat(t, i)
    cand = np.asarray(state["update_candidates"][kept_old])
    lat = np.asarray(state["update_candidate_latent"][kept_old], dtype=np.float32)
    csp = np.asarray(state["update_candidate_sparse"][kept_old], dtype=np.float32)
    width = cand.shape[1]
    mapped = map_old[cand]  # padding maps to -1
    stored = (cand >= 0).sum(axis=1)
    floor = np.where((stored > 0) & (stored < m.n_old - 1),
                     lat[np.arange(len(kept)), np.maximum(stored - 1, 0)], -np.inf).astype(np.float32)
    enter = t_lat > floor[:, None]
    tie = (t_lat == floor[:, None]).any(axis=1)
    dead = (cand >= 0) & (mapped < 0)
    touched = np.flatnonzero(dead.any(axis=1) | enter.any(axis=1))

    w = min(width, depth)
    out.candidates[kept, :w], out.latent[kept, :w] = mapped[:, :w], lat[:, :w]
    c0 = csp.shape[1]
    c = min(c0, out.candidate_sparse.shape[1])
    out.candidate_sparse[kept, :c] = csp[:, :c]
    out.indices[kept] = map_old[np.asarray(state["update_first_indices"][kept_old])]
    out.scores[kept] = state["update_first_scores"][kept_old]
    out.first_sparse[kept] = state["update_first_sparse"][kept_old]
    status = np.zeros(len(kept), np.int8)
    if not touched.size:
        return status

    # merge: the stored entries still there and the entrants, by (latent desc, row asc)
    ent = enter[touched]
    n_ent = ent.sum(axis=1)
    r_e, c_e = np.nonzero(ent)  # each row's entrants, ascending
    slot = np.arange(len(r_e)) - (np.cumsum(n_ent) - n_ent)[r_e]
    e_rows = np.full((len(touched), int(n_ent.max())), -1, np.int32)
    e_lat = np.zeros(e_rows.shape, np.float32)
    e_rows[r_e, slot] = changed[c_e]
    e_lat[r_e, slot] = t_lat[touched[r_e], c_e]
    rows_all = np.concatenate([mapped[touched], e_rows], axis=1)  # -1: gone, or not an entrant
    lat_all = np.concatenate([lat[touched], e_lat], axis=1)
    neg = np.where(rows_all >= 0, -lat_all, np.float32(np.inf))
    # stable: equal scores keep the stored order (row asc), then the entrants' (row asc) ...
    order_all = np.argsort(neg, axis=1, kind="stable")
    ranked = np.take_along_axis(neg, order_all, axis=1)
    entrant = order_all >= width
    mixed = ((ranked[:, 1:] == ranked[:, :-1]) & (entrant[:, 1:] != entrant[:, :-1])
             & np.isfinite(ranked[:, 1:])).any(axis=1)
    tied = np.flatnonzero(mixed)  # ... but a stored entry tied with an entrant: compare rows
    if tied.size:
        ok = rows_all[tied] >= 0
        keys = np.where(ok, order_keys(np.where(ok, lat_all[tied], 0), np.maximum(rows_all[tied], 0)), NO_KEY)
        order_all[tied] = np.argsort(keys, axis=1, kind="stable")
    order = order_all[:, :depth]
    new_rows = np.take_along_axis(rows_all, order, axis=1)
    new_lat = np.take_along_axis(lat_all, order, axis=1)
    new_lat[new_rows < 0] = 0
    length = (new_rows >= 0).sum(axis=1)
    k = min(m.candidates, depth)
    same = (order[:, :k] == np.arange(k)).all(axis=1)  # the stored top, all still there, in place
    status[touched] = np.where(tie[touched] | (length < k), 2, np.where(same, 0, 1))

    decided = np.flatnonzero(status[touched] != 2)  # the merged list is exact: it is the new state
    out.candidates[kept[touched[decided]]] = new_rows[decided]
    out.latent[kept[touched[decided]]] = new_lat[decided]
    moved = np.flatnonzero(status[touched] == 1)
    if not moved.size:
        return status
    rows_m = touched[moved]
    top, src = new_rows[moved, :k], order[moved, :k]
    known = src < c0  # an entry of the stored top: its sparse part is stored
    top_sparse = np.take_along_axis(csp[rows_m], np.minimum(src, c0 - 1), axis=1)
    top_sparse[~known] = 0
    need = np.nonzero(~known & (top >= 0))
    a, b = kept[rows_m][need[0]], top[need].astype(np.int64)
    values = np.zeros(len(a), np.float32)
    rank = np.searchsorted(changed, b)
    is_changed = rank < len(changed)
    is_changed[is_changed] = changed[rank[is_changed]] == b[is_changed]
    key = rank * n + a
    if len(m.fresh_keys):
        at = np.minimum(np.searchsorted(m.fresh_keys, key), len(m.fresh_keys) - 1)
        hit = is_changed & (m.fresh_keys[at] == key)
        values[hit] = m.fresh_sparse[at[hit]]
    else:
        hit = np.zeros(len(a), bool)
    if m.changed_dense is not None:  # the same floats: a sparse part is symmetric in the pair
        via = np.flatnonzero(~hit & is_changed)
        values[via] = twins.dense_pair_dots(m.changed_dense, rank[via], m.vec.indptr, m.vec.indices, m.vec.data,
                                            a[via])
        hit[via] = True
    values[~hit] = m.vec.pair_dots(a[~hit], b[~hit, None])[:, 0]
    top_sparse[need] = values
    out.candidate_sparse[kept[rows_m]] = top_sparse
    # stored top entries that left the top (pushed below it by entrants, or gone): the stored
    # entries keep their order, so those in the new top are the first ones still there
    alive = mapped[rows_m, :c0] >= 0
    left = alive & (np.cumsum(alive, axis=1, dtype=np.int32) > known.sum(axis=1, dtype=np.int32)[:, None])
    n_left = left.sum(axis=1)
    pushed = np.full((len(moved), max(1, int(n_left.max()))), -2, np.int64)
    r_i = np.nonzero(left)[0]
    pushed[r_i, np.arange(r_i.size) - (np.cumsum(n_left) - n_left)[r_i]] = mapped[rows_m, :c0][left]
    first_raw = np.asarray(state["update_first_indices"][kept_old[rows_m]])
    gone = ((first_raw >= 0) & (out.indices[kept[rows_m]] < 0)).any(axis=1)
    _patch_first(out, kept[rows_m], top, new_lat[moved, :k] + top_sparse, top_sparse, ~known, pushed, gone,
                 m.n_first)
    return status


def _patch_first(out: FirstPass, rows: np.ndarray, top: np.ndarray, total: np.ndarray, top_sparse: np.ndarray,
                 fresh: np.ndarray, pushed: np.ndarray, gone: np.ndarray, n_first: int) -> None:
    """New first passes of ``rows``, whose top candidates changed, written into ``out``.

    A first pass that lost a member (gone, or pushed out of the top) is chosen again from
    the whole top; otherwise it stays the best of the old top, and only the fresh entries
    that beat its last member (or fill it) join: the same list, fewer entries ranked.
    """
    f_idx, f_val, f_sp = out.indices[rows], out.scores[rows], out.first_sparse[rows]
    # a member pushed out of the top: (row, member) keys of the pushed entries, searched
    width = np.int64(max(int(f_idx.max(initial=0)), int(pushed.max(initial=0))) + 1)
    local = np.arange(len(rows), dtype=np.int64)[:, None]
    pushed_keys = np.sort((local * width + pushed)[pushed >= 0])
    member_keys = local * width + f_idx
    at = np.minimum(np.searchsorted(pushed_keys, member_keys), max(len(pushed_keys) - 1, 0))
    hit = (pushed_keys[at] == member_keys) & (f_idx >= 0) if len(pushed_keys) else np.zeros(f_idx.shape, bool)
    lost = gone | hit.any(axis=1)
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
