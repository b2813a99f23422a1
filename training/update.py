"""`related update`: publish a delta (added, edited, deleted articles) without refitting."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy.sparse as sp
from numba import njit

from training import model_dir
from training.corpus import FieldMap, file_sha256
from training.delta import Delta, read_delta
from training.duplicates import duplicate_report
from training import first_pass
from training.kernels import pair_dots
from training.first_pass import (
    STATE,
    FirstPass,
    compute_final_lists,
    compute_first_pass,
    exhaustive,
    latent_dots,
    select_lists,
    state_arrays,
)
from training.neighbors import MIN_SCORE


@dataclass
class UpdateResult:
    """What an update published; ``rows`` counts first passes kept, patched and recomputed."""

    version: str
    path: Path
    parent: str
    articles: int
    added: int
    edited: int
    deleted: int
    rows: dict[str, int]
    timings: dict[str, float]


@njit(cache=True, nogil=True)
def _merge(cand, lat, rows, map_old, t_rows, t_lat, n_cand, out_idx, out_lat, status):  # pragma: no cover
    """Merge the stored candidate lists of ``rows`` (old numbering) with the changed rows.

    Stored entries are mapped to new rows (``map_old``, -1: removed); a changed row joins
    when its latent score beats the list's last entry. status: 0 top ``n_cand`` unchanged,
    1 changed, 2 undecidable here (a changed row ties the last entry, or fewer than
    ``n_cand`` candidates left): recompute the row.
    """
    width = cand.shape[1]
    depth = out_idx.shape[1]
    entrants = np.empty(t_rows.shape[0], dtype=np.int64)
    for r in range(rows.shape[0]):
        row = rows[r]
        stored = 0
        while stored < width and cand[row, stored] >= 0:
            stored += 1
        floor = lat[row, stored - 1] if 0 < stored < map_old.shape[0] - 1 else -np.inf  # complete: no floor
        found = 0
        tie = False
        for t in range(t_rows.shape[0]):
            v = t_lat[r, t]
            if v > floor:  # insert by (score desc, row asc); t_rows ascend
                b = found
                while b > 0 and t_lat[r, entrants[b - 1]] < v:
                    entrants[b] = entrants[b - 1]
                    b -= 1
                entrants[b] = t
                found += 1
            elif v == floor:
                tie = True
        if tie:
            status[r] = 2
            continue
        i = 0
        e = 0
        o = 0
        same = True
        while o < depth:
            while i < stored and map_old[cand[row, i]] < 0:
                i += 1
            if i < stored and e < found:
                tv = t_lat[r, entrants[e]]
                take_t = tv > lat[row, i] or (tv == lat[row, i] and t_rows[entrants[e]] < map_old[cand[row, i]])
            elif e < found:
                take_t = True
            elif i < stored:
                take_t = False
            else:
                break
            if take_t:
                out_idx[r, o] = t_rows[entrants[e]]
                out_lat[r, o] = t_lat[r, entrants[e]]
                e += 1
            else:
                out_idx[r, o] = map_old[cand[row, i]]
                out_lat[r, o] = lat[row, i]
                i += 1
            if o < n_cand and (o >= stored or cand[row, o] < 0 or out_idx[r, o] != map_old[cand[row, o]]):
                same = False  # the top differs from the stored top (mapped) at position o
            o += 1
        status[r] = 2 if o < n_cand else (0 if same else 1)


@njit(cache=True, nogil=True)
def _top_changes(cand, rows, map_old, new_top, first, n_rows, is_new, left):  # pragma: no cover
    """Mark the new top's rows that were not in the stored top, and rows whose list lost a member."""
    mark = np.full(n_rows, -1, dtype=np.int64)
    for r in range(rows.shape[0]):
        for c in range(new_top.shape[1]):
            j = cand[rows[r], c]
            if j >= 0 and map_old[j] >= 0:
                mark[map_old[j]] = 2 * r
        for c in range(new_top.shape[1]):
            j = new_top[r, c]
            if j >= 0:
                is_new[r, c] = mark[j] != 2 * r
                mark[j] = 2 * r + 1
        for c in range(first.shape[1]):
            j = first[r, c]
            if j == -2 or (j >= 0 and mark[j] != 2 * r + 1):
                left[r] = True


def _patch_first_pass(state, map_old, changed, sparse, dense, n_first, candidates, n_jobs):
    """Every row's first pass from the parent's: merged where that is exact, else recomputed."""
    n = sparse.shape[0]
    kept_old = np.flatnonzero(map_old >= 0)
    kept = map_old[kept_old]
    cand, lat = np.asarray(state["update_candidates"]), np.asarray(state["update_candidate_latent"])
    depth = min(candidates + first_pass.RESERVE, n - 1)
    out_idx = np.full((len(kept), depth), -1, np.int32)
    out_lat = np.zeros((len(kept), depth), np.float32)
    status = np.zeros(len(kept), np.int8)
    _merge(cand, lat, kept_old, map_old, changed.astype(np.int32), latent_dots(dense[kept], dense[changed].T),
           candidates, out_idx, out_lat, status)

    old_first = np.asarray(state["update_first_indices"][kept_old])
    first_map = np.where(old_first >= 0, map_old[np.maximum(old_first, 0)], -1)
    first_map[(old_first >= 0) & (first_map < 0)] = -2  # a member that left
    first_idx = first_map.astype(np.int32)
    first_val = np.array(state["update_first_scores"][kept_old], dtype=np.float32)
    moved = np.flatnonzero(status == 1)
    is_new = np.zeros((len(moved), candidates), bool)
    left = np.zeros(len(moved), bool)
    _top_changes(cand, kept_old[moved], map_old, out_idx[moved, :candidates], first_idx[moved], n, is_new, left)
    redo_all = moved[left]  # a first-pass member left the top: rescore the whole top
    if redo_all.size:
        top = out_idx[redo_all, :candidates]
        total = out_lat[redo_all, :candidates] + pair_dots(sparse[kept[redo_all]], sparse, top)
        first_idx[redo_all], first_val[redo_all] = select_lists(top, total, n_first)
    merge = moved[~left]  # the old list stays the best of the old top: add the newcomers
    if merge.size:
        fresh = is_new[~left]
        order = np.argsort(~fresh, axis=1, kind="stable")[:, : max(1, int(fresh.sum(axis=1).max()))]
        cand = np.where(np.take_along_axis(fresh, order, axis=1),
                        np.take_along_axis(out_idx[merge, :candidates], order, axis=1), -1)
        total = np.take_along_axis(out_lat[merge, :candidates], order, axis=1)
        total = total + pair_dots(sparse[kept[merge]], sparse, cand)
        last_val, last_idx = first_val[merge, -1:], first_idx[merge, -1:]
        enter = ((cand >= 0) & (total > MIN_SCORE) & np.isfinite(total) & (
            (last_idx < 0) | (total > last_val) | ((total == last_val) & (cand < last_idx)))).any(axis=1)
        grow = merge[enter]  # the others' newcomers all rank below a full list
        first_idx[grow], first_val[grow] = select_lists(
            np.concatenate([first_idx[grow], cand[enter]], axis=1),
            np.concatenate([first_val[grow], total[enter]], axis=1), n_first)

    redo = np.union1d(kept[status == 2], changed)
    out = FirstPass(np.full((n, n_first), -1, np.int32), np.zeros((n, n_first), np.float32),
                    np.full((n, depth), -1, np.int32), np.zeros((n, depth), np.float32))
    out.indices[kept], out.scores[kept] = first_idx, first_val
    out.candidates[kept], out.latent[kept] = out_idx, out_lat
    if redo.size:
        again = compute_first_pass(sparse, dense, n_first, candidates, rows=redo, n_jobs=n_jobs)
        out.indices[redo], out.scores[redo] = again.indices, again.scores
        out.candidates[redo], out.latent[redo] = again.candidates, again.latent
    counts = {"kept": int((status == 0).sum()), "patched": int(moved.size), "recomputed": int(redo.size)}
    return out, counts


def _load_state(parent: Path, manifest: dict[str, Any], n: int) -> dict[str, np.ndarray]:
    missing = [name for name in STATE if f"{name}.npy" not in manifest.get("files", {})]
    if missing:
        raise model_dir.ModelDirError(
            f"{parent}: no update state ({missing[0]}.npy; the version predates `related update`): "
            "publish a version with `related train` first")
    state = {name: model_dir.load_array(parent, name) for name in STATE}
    for name, array in state.items():
        if array.ndim != 2 or array.shape[0] != n:
            raise model_dir.ModelDirError(f"{parent / (name + '.npy')}: shape {array.shape}, expected ({n}, ...)")
    return state


def _jsonl_lines(path: Path) -> list[bytes]:
    return [line + b"\n" for line in path.read_bytes().split(b"\n")[:-1]]


def _vectors(parent: Path, manifest: dict[str, Any], state: dict[str, np.ndarray], plan: Delta,
             records: list[dict[str, Any]]) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """The updated rows' vectors, the old row -> new row map of unchanged vectors, the changed rows."""
    n_old = state["update_latent"].shape[0]
    old_sparse = sp.csr_matrix(tuple(model_dir.load_array(parent, f"vectors_sparse_{k}")
                                     for k in ("data", "indices", "indptr")),
                               shape=(n_old, manifest["counts"]["vocabulary"]))
    old_dense = state["update_latent"]
    if records:
        new_sparse, new_dense = joblib.load(parent / model_dir.VECTORIZER).transform(records)
    else:
        new_sparse = sp.csr_matrix((0, old_sparse.shape[1]), dtype=np.float32)
        new_dense = np.zeros((0, old_dense.shape[1]), np.float32)
    take = plan.source.copy()
    take[plan.changed_rows] = n_old + np.arange(len(plan.changed))
    sparse = sp.vstack([old_sparse, new_sparse], format="csr")[take]
    dense = np.ascontiguousarray(np.concatenate([old_dense, new_dense])[take], dtype=np.float32)
    map_old = np.full(n_old, -1, np.int64)
    map_old[plan.source[plan.source >= 0]] = np.flatnonzero(plan.source >= 0)
    vectors_changed = np.ones(len(plan.changed), bool)
    for t, old in enumerate(plan.edited_from):  # an edit of metadata only keeps its vectors
        if old >= 0 and np.array_equal(old_dense[old], new_dense[t]):
            a, b = old_sparse[old], new_sparse[t]
            if np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data):
                vectors_changed[t] = False
                map_old[old] = plan.changed_rows[t]
    return sparse, dense, map_old, plan.changed_rows[vectors_changed]


def update(
    models_dir: str | os.PathLike, delta: str | os.PathLike, *, keep: int = 3, n_jobs: int = -1,
) -> UpdateResult:
    """Apply a delta to the current version and publish the result, without refitting.

    The lists are those ``train(..., features_from=<current version>)`` gives on the updated
    corpus (see :func:`read_delta` for its row order): rows whose first pass the delta
    cannot change keep it, the others merge their candidates with the changed rows or are
    recomputed (docs/update.md); expansion and re-ranking then run as in training. Nothing
    is published unless the whole update succeeds.

    Parameters
    ----------
    models_dir : path-like
        The model store; its ``CURRENT`` version is updated.
    delta : path-like
        Corpus file of new, edited (known id) and deleted (``"deleted": true``) records.
    keep : int
        Versions kept in the store.
    n_jobs : int
        Threads (-1: all cores).

    Returns
    -------
    UpdateResult
    """
    from training.pipeline import Rows, library_versions  # the pipeline imports this module

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    parent = model_dir.resolve(models_dir)
    manifest = model_dir.verify(parent)
    fields = FieldMap(**manifest["fields"])
    ids = model_dir.load_array(parent, "article_ids", mmap=False)
    state = _load_state(parent, manifest, len(ids))
    plan = read_delta(delta, fields, ids)
    rows = Rows(title_field=fields.title_field)
    for article in plan.changed:
        rows.add(article)
    timings["read_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sparse, dense, map_old, changed = _vectors(parent, manifest, state, plan, rows.records)
    timings["fit_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    n, params = sparse.shape[0], manifest["params"]
    expansion = params["expansion"]
    n_first, candidates = int(expansion["first_pass"]), int(params["candidates"])
    if exhaustive(n, dense.shape[1], candidates) or state["update_candidates"].shape[1] == 0:
        first = compute_first_pass(sparse, dense, n_first, candidates, n_jobs=n_jobs)
        counts = {"kept": 0, "patched": 0, "recomputed": n}
    else:
        first, counts = _patch_first_pass(state, map_old, changed, sparse, dense, n_first, candidates, n_jobs)
    indices, scores, stored_dense = compute_final_lists(
        sparse, dense, first, int(params["neighbors"]), int(expansion["neighbors"]), float(expansion["alpha"]))
    timings["neighbors_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    slot = np.full(n, -1, np.int64)
    slot[plan.changed_rows] = np.arange(len(plan.changed))
    article_ids = np.asarray([ids[o] if o >= 0 else rows.ids[s] for o, s in zip(plan.source, slot)], dtype=str)
    published = np.asarray(model_dir.load_array(parent, "published"))[np.maximum(plan.source, 0)]
    published[plan.changed_rows] = np.asarray(rows.published, dtype=np.float64)
    old_articles = _jsonl_lines(parent / model_dir.ARTICLES)
    raw_texts = (parent / model_dir.TEXTS).read_bytes()
    offsets = model_dir.load_array(parent, "texts_offsets")
    new_articles = [model_dir.jsonl_line(a) for a in rows.articles]
    new_texts = [model_dir.jsonl_line(t) for t in rows.texts]
    arrays = {
        "article_ids": article_ids, "neighbors_indices": indices, "neighbors_scores": scores,
        "vectors_sparse_data": sparse.data.astype(np.float32, copy=False),
        "vectors_sparse_indices": sparse.indices.astype(np.int32, copy=False),
        "vectors_sparse_indptr": sparse.indptr.astype(np.int64, copy=False),
        "vectors_dense": stored_dense, "published": published, **state_arrays(first, dense),
    }
    new_manifest = {
        "parent_version": parent.name,
        "features_from": str(parent),
        "corpus": {"path": str(delta), "sha256": file_sha256(delta), "records": len(plan.changed) + plan.deleted,
                   "skipped": 0, "skipped_lines": []},
        "update": {"added": plan.added, "edited": plan.edited, "deleted": plan.deleted, "rows": counts},
        "counts": {**manifest["counts"], "articles": n},
        "params": params,
        "fields": manifest["fields"],
        "libraries": library_versions(),
        "duplicates": duplicate_report(indices, scores, article_ids),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    if model_dir.current_version(models_dir) != parent.name:  # another run published meanwhile
        raise model_dir.ModelDirError(f"{models_dir}: CURRENT moved away from {parent.name} during the "
                                      "update; run it again on the new version")
    version = model_dir.publish(
        models_dir, arrays=arrays,
        articles=(old_articles[o] if o >= 0 else new_articles[s] for o, s in zip(plan.source, slot)),
        texts=(raw_texts[offsets[o]:offsets[o + 1]] if o >= 0 else new_texts[s] for o, s in zip(plan.source, slot)),
        vectorizer=parent / model_dir.VECTORIZER, manifest=new_manifest, keep=keep,
    )
    timings["write_s"] = time.perf_counter() - t0
    return UpdateResult(version, Path(models_dir) / version, parent.name, n, plan.added, plan.edited,
                        plan.deleted, counts, timings)
