"""`related update`: publish a delta (added, edited, deleted articles) without refitting.

Imports numpy and the project's numpy-only modules, nothing heavier (scikit-learn, scipy,
numba and joblib cost more to import than a 1 % delta costs to compute); versions without
the plain vectorizer or the update state's score parts take the slower path of training.
"""

from __future__ import annotations

import gc
import mmap
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training import model_dir
from training.corpus import FieldMap, file_sha256
from training.delta import Delta, read_delta
from training.duplicates import duplicate_report
from training.plain_vectorizer import PlainVectorizer
from training.rows import Rows
from training.twins import take_rows
from training import update_lists
from training.update_lists import COMPILED_ABOVE, Vectors, patch_final_lists, patch_first_pass
from training.update_state import FirstPass, exhaustive, load_state, state_arrays
from training.version_writer import EncodedLines, VersionWriter, jsonl_line


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


def _mapped(path: Path) -> bytes | mmap.mmap:
    """A file's bytes, memory-mapped (runs of it are written out without a copy in memory)."""
    with open(path, "rb") as fh:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(fh.fileno()).st_size else b""


def _lines(old: bytes | mmap.mmap, old_offsets: np.ndarray | None, source: np.ndarray, slot: np.ndarray,
           new: list[bytes]) -> EncodedLines:
    """The rows of a version's JSON Lines file in new order: runs of parent rows copied as byte ranges."""
    if old_offsets is None:  # encoded rows never hold a raw newline
        old_offsets = np.r_[0, np.flatnonzero(np.frombuffer(old, np.uint8) == 10) + 1]
    new_len = np.asarray([len(line) for line in new], dtype=np.int64)
    safe = np.maximum(source, 0)
    lengths = np.where(source >= 0, old_offsets[safe + 1] - old_offsets[safe], new_len[np.maximum(slot, 0)]
                       if len(new) else 0)
    starts = np.flatnonzero(np.r_[True, (source[1:] != source[:-1] + 1) | (source[1:] < 0) | (source[:-1] < 0)])
    ends = np.r_[starts[1:], len(source)]
    view = memoryview(old)
    chunks = [view[old_offsets[source[a]]:old_offsets[source[b - 1] + 1]] if source[a] >= 0 else new[slot[a]]
              for a, b in zip(starts.tolist(), ends.tolist())]
    return EncodedLines(chunks, np.r_[0, np.cumsum(lengths)])


def _vectorizer_files(listed: dict[str, str]) -> tuple[str, ...]:
    """The files the parent's vectorizer is read from: its plain files, or the pickle of a
    version written before they existed."""
    return model_dir.PLAIN_VECTORIZER if model_dir.PLAIN_VECTORIZER[0] in listed else (model_dir.VECTORIZER,)


def _plain_vectorizer(parent: Path, files: tuple[str, ...]) -> PlainVectorizer:
    if files == model_dir.PLAIN_VECTORIZER:
        return PlainVectorizer.load(parent)
    import joblib  # the pickle imports scikit-learn

    return joblib.load(parent / model_dir.VECTORIZER).plain()


def _take_rows(old: tuple[np.ndarray, ...], new: tuple[np.ndarray, ...], take: np.ndarray):
    """CSR arrays of the rows ``take`` of the old rows followed by the new ones."""
    indptr = np.concatenate([old[0], old[0][-1] + new[0][1:]]).astype(np.int64)
    indices = np.concatenate([old[1], new[1]])
    data = np.concatenate([old[2], new[2]])
    out_ptr, pos = take_rows(indptr, take)
    return out_ptr, indices[pos].astype(np.int32, copy=False), data[pos].astype(np.float32, copy=False)


def _new_vectors(parent: Path, files: tuple[str, ...], records: list[dict[str, Any]],
                 dims: int) -> tuple[np.ndarray, ...]:
    """CSR arrays and latent vectors of the delta's records, from the parent's fitted vectorizer."""
    if records:
        return _plain_vectorizer(parent, files).transform_arrays(records)
    return np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros((0, dims), np.float32)


def _vectors(parent: Path, manifest: dict[str, Any], state: dict[str, np.ndarray], plan: Delta,
             new_vectors: tuple[np.ndarray, ...]) -> tuple[Vectors, np.ndarray, np.ndarray]:
    """The updated rows' vectors, the old row -> new row map of unchanged vectors, the changed rows."""
    old = tuple(np.asarray(model_dir.load_array(parent, f"vectors_sparse_{k}")) for k in ("indptr", "indices", "data"))
    n_old = len(old[0]) - 1
    old_dense = state["update_latent"]
    *new, new_dense = new_vectors
    take = plan.source.copy()
    take[plan.changed_rows] = n_old + np.arange(len(plan.changed))
    indptr, indices, data = _take_rows(old, tuple(new), take)
    dense = np.ascontiguousarray(np.concatenate([old_dense, new_dense])[take], dtype=np.float32)
    map_old = np.full(n_old, -1, np.int64)
    map_old[plan.source[plan.source >= 0]] = np.flatnonzero(plan.source >= 0)
    vectors_changed = np.ones(len(plan.changed), bool)
    for t, source in enumerate(plan.edited_from):  # an edit of metadata only keeps its vectors
        if source >= 0 and np.array_equal(old_dense[source], new_dense[t]):
            a, b = slice(old[0][source], old[0][source + 1]), slice(new[0][t], new[0][t + 1])
            if np.array_equal(old[1][a], new[1][b]) and np.array_equal(old[2][a], new[2][b]):
                vectors_changed[t] = False
                map_old[source] = plan.changed_rows[t]
    changed = np.sort(plan.changed_rows[vectors_changed]).astype(np.int64)
    # numba pays for its import only on huge deltas, and only without the compiled loops
    compiled = update_lists.LOOPS is None and len(dense) * len(changed) * dense.shape[1] > COMPILED_ABOVE
    vec = Vectors(indptr, indices, data, dense, int(manifest["counts"]["vocabulary"]), compiled)
    return vec, map_old, changed


def _full_recomputation(vec: Vectors, n_first: int, candidates: int, params: dict[str, Any], n_jobs: int):
    """Training's own first pass and lists of every row (exhaustive mode, or a parent without score parts)."""
    import scipy.sparse as sp

    from training.first_pass import compute_final_lists, compute_first_pass

    sparse = sp.csr_matrix((vec.data, vec.indices, vec.indptr), shape=(len(vec.indptr) - 1, vec.n_features))
    first = compute_first_pass(sparse, vec.dense, n_first, candidates, n_jobs=n_jobs)
    expansion = params["expansion"]
    lists = compute_final_lists(sparse, vec.dense, first, int(params["neighbors"]), int(expansion["neighbors"]),
                                float(expansion["alpha"]))
    return first, lists


def _lists(parent: Path, state: dict[str, np.ndarray], vec: Vectors, map_old: np.ndarray, changed: np.ndarray,
           params: dict[str, Any], n_jobs: int, writer: VersionWriter,
           ) -> tuple[FirstPass, np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Every row's first pass, stored list and expanded vector: patched from the parent where that is exact.

    The new update state is given to ``writer`` as soon as it is known.
    """
    expansion = params["expansion"]
    n_first, candidates = int(expansion["first_pass"]), int(params["candidates"])
    if exhaustive(len(vec.dense), vec.dense.shape[1], candidates) or state["update_candidate_sparse"].shape[1] == 0:
        first, (indices, scores, stored_dense) = _full_recomputation(vec, n_first, candidates, params, n_jobs)
        writer.add_arrays({k: v for k, v in state_arrays(first, vec.dense).items() if k != "update_latent"})
        return first, indices, scores, stored_dense, {"kept": 0, "patched": 0, "recomputed": len(vec.dense)}
    threads = n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    first, counts = patch_first_pass(state, map_old, changed, vec, n_first, candidates, threads)
    writer.add_arrays({k: v for k, v in state_arrays(first, vec.dense).items() if k != "update_latent"})
    old_first = FirstPass(state["update_first_indices"], state["update_first_scores"], None, None)
    indices, scores, stored_dense, counts["reranked"] = patch_final_lists(
        first, old_first, (model_dir.load_array(parent, "neighbors_indices"),
                           model_dir.load_array(parent, "neighbors_scores")),
        model_dir.load_array(parent, "vectors_dense"), map_old, changed, vec,
        int(params["neighbors"]), int(expansion["neighbors"]), float(expansion["alpha"]), threads)
    return first, indices, scores, stored_dense, counts


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
    collecting = gc.isenabled()
    gc.disable()  # its Python objects die young: passes of the cycle collector over the imported
    try:          # modules' objects would cost more time than the numbers take (docs/update.md)
        return _update(models_dir, delta, keep, n_jobs)
    finally:
        if collecting:
            gc.enable()


def _update(models_dir: str | os.PathLike, delta: str | os.PathLike, keep: int, n_jobs: int) -> UpdateResult:
    t0 = time.perf_counter()
    parent = model_dir.resolve(models_dir)
    listed = model_dir.read_manifest(parent).get("files", {})
    # a corrupt parent is refused before anything of it is read: first the files the delta's
    # reading and vectors need, the others meanwhile (checked before the rest is read); files
    # unchanged since they were written and checked are not hashed again (model_dir.verify)
    vectorizer = _vectorizer_files(listed)
    first = ["article_ids.npy", *(name for name in vectorizer if name in listed)]
    manifest = model_dir.verify(parent, only=first, trust_checked=True)
    timings: dict[str, float] = {}
    fields = FieldMap(**manifest["fields"])
    with ThreadPoolExecutor(max_workers=1) as pool:
        rest = pool.submit(model_dir.verify, parent, skip=first, trust_checked=True)
        ids = model_dir.load_array(parent, "article_ids", mmap=False)
        plan = read_delta(delta, fields, ids)
        rows = Rows(title_field=fields.title_field)
        for article in plan.changed:
            rows.add(article)
        timings["read_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        new_vectors = _new_vectors(parent, vectorizer, rows.records, int(manifest["counts"]["latent_dims"]))
        rest.result()
    state = load_state(parent, manifest, len(ids))
    vec, map_old, changed = _vectors(parent, manifest, state, plan, new_vectors)
    timings["fit_s"] = time.perf_counter() - t0

    n, params = len(vec.dense), manifest["params"]
    slot = np.full(n, -1, np.int64)
    slot[plan.changed_rows] = np.arange(len(plan.changed))
    article_ids = ids[np.maximum(plan.source, 0)]
    if len(rows.ids):
        article_ids = article_ids.astype(np.result_type(article_ids, np.asarray(rows.ids, dtype=str)))
        article_ids[plan.changed_rows] = rows.ids
    published = np.asarray(model_dir.load_array(parent, "published"))[np.maximum(plan.source, 0)]
    published[plan.changed_rows] = np.asarray(rows.published, dtype=np.float64)
    with VersionWriter(models_dir) as writer:  # what is known now is written while the lists are computed
        writer.add_arrays({"article_ids": article_ids, "published": published, "vectors_sparse_data": vec.data,
                           "vectors_sparse_indices": vec.indices, "vectors_sparse_indptr": vec.indptr,
                           "update_latent": vec.dense})
        t0 = time.perf_counter()
        first, indices, scores, stored_dense, counts = _lists(parent, state, vec, map_old, changed, params, n_jobs,
                                                              writer)
        timings["neighbors_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        articles = _lines(_mapped(parent / model_dir.ARTICLES), None, plan.source, slot,
                          [jsonl_line(a) for a in rows.articles])
        texts = _lines(_mapped(parent / model_dir.TEXTS),
                       np.asarray(model_dir.load_array(parent, "texts_offsets")), plan.source, slot,
                       [jsonl_line(t) for t in rows.texts])
        arrays = {"neighbors_indices": indices, "neighbors_scores": scores, "vectors_dense": stored_dense}
        new_manifest = {
            "parent_version": parent.name,
            "features_from": str(parent),
            "corpus": {"path": str(delta), "sha256": file_sha256(delta),
                       "records": len(plan.changed) + plan.deleted, "skipped": 0, "skipped_lines": []},
            "update": {"added": plan.added, "edited": plan.edited, "deleted": plan.deleted, "rows": counts,
                       "loops": "numpy" if update_lists.LOOPS is None else "compiled"},
            "counts": {**manifest["counts"], "articles": n},
            "params": params,
            "fields": manifest["fields"],
            # the features are the parent's (fitted with its libraries); this run used this Python and numpy
            "libraries": {**manifest.get("libraries", {}), "python": platform.python_version(),
                          "numpy": np.__version__},
            "duplicates": duplicate_report(indices, scores, article_ids),
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }
        if model_dir.current_version(models_dir) != parent.name:  # another run published meanwhile
            raise model_dir.ModelDirError(f"{models_dir}: CURRENT moved away from {parent.name} during the "
                                          "update; run it again on the new version")
        version = writer.publish(arrays=arrays, articles=articles, texts=texts,
                                 vectorizer=parent / model_dir.VECTORIZER, manifest=new_manifest, keep=keep)
        timings["write_s"] = time.perf_counter() - t0
    return UpdateResult(version, Path(models_dir) / version, parent.name, n, plan.added, plan.edited,
                        plan.deleted, counts, timings)
