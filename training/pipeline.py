"""The training run: corpus -> features -> neighbours -> a published model version."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from training import model_dir
from training.duplicates import duplicate_report
from training.corpus import CorpusError, FieldMap, file_sha256, read_articles
from training.expansion import DEFAULT_EXPAND_ALPHA, DEFAULT_EXPAND_NEIGHBORS
from training.features import ArticleVectorizer
from training.first_pass import compute_final_lists, compute_first_pass, state_arrays
from training.rows import Rows, library_versions, read_rows  # noqa: F401 - re-exported

#: Neighbours stored per article by default (above the largest k served).
DEFAULT_NEIGHBORS = 50
#: Latent-space candidates rescored exactly per article (0: exhaustive search).
DEFAULT_CANDIDATES = 200
#: First-pass list length re-ranked after query expansion.
FIRST_PASS = 50


@dataclass
class TrainResult:
    """What a training run published."""

    version: str
    path: Path
    articles: int
    vocabulary: int
    latent_dims: int
    skipped: list[CorpusError]
    timings: dict[str, float]
    duplicates: dict[str, Any]


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def train(
    corpus: str | os.PathLike,
    models_dir: str | os.PathLike,
    *,
    fields: FieldMap = FieldMap(),
    skip_invalid: bool = False,
    neighbors: int = DEFAULT_NEIGHBORS,
    candidates: int = DEFAULT_CANDIDATES,
    expand_neighbors: int = DEFAULT_EXPAND_NEIGHBORS,
    expand_alpha: float = DEFAULT_EXPAND_ALPHA,
    n_jobs: int = -1,
    keep: int = 3,
    features_from: str | os.PathLike | None = None,
    vectorizer_params: dict[str, Any] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> TrainResult:
    """Train on a corpus and publish a new model version.

    Nothing is written to the model store until the whole run has succeeded; a failed
    run leaves ``CURRENT`` and every version untouched.

    Parameters
    ----------
    corpus : path-like
        JSON Lines (optionally gzip) or CSV corpus.
    models_dir : path-like
        The model store.
    fields : FieldMap
        Where the id, texts, tags, date and url are in the corpus records.
    skip_invalid : bool
        Skip invalid records (reported in the result) instead of failing.
    neighbors : int
        N, related articles stored per article.
    candidates : int
        Each article's ``candidates`` nearest rows in the latent space are rescored with
        the full similarity; 0 scores every pair (exhaustive, slower).
    expand_neighbors, expand_alpha : int, float
        Latent query expansion (:mod:`training.expansion`): each article's latent vector
        is moved towards its first ``expand_neighbors`` neighbours and its list is
        re-ranked; 0 disables it.
    n_jobs : int
        Workers for the neighbour job (-1: all cores).
    keep : int
        Versions kept in the store.
    features_from : path-like, optional
        A version directory whose fitted vectorizer is reused (no refit).
    vectorizer_params : dict, optional
        :class:`~training.features.ArticleVectorizer` parameters.
    progress : callable, optional
        ``progress(stage, done, total)`` during the neighbour job.

    Returns
    -------
    TrainResult
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    skipped: list[CorpusError] = []
    rows = read_rows(
        read_articles(corpus, fields, skip_invalid=skip_invalid, skipped=skipped), fields.title_field
    )
    if not rows.ids:
        raise CorpusError(corpus, None, None, "no valid articles to train on")
    timings["read_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if features_from is not None:
        source = Path(features_from)
        model_dir.verify(source)
        vectorizer = joblib.load(source / model_dir.VECTORIZER)
        sparse, dense = vectorizer.transform(rows.records)
    else:
        params = dict(vectorizer_params or {})
        params.setdefault("text_fields", fields.text_fields)
        vectorizer = ArticleVectorizer(**params)
        # fit_transform gives exactly what transform gives (tested): the stored vectors are
        # what drafts, `--features-from` and `related update` compute.
        sparse, dense = vectorizer.fit_transform(rows.records)
    rows.records.clear()
    timings["fit_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    n = len(rows.ids)
    done = [0]

    def tick(count: int) -> None:
        done[0] += count
        if progress is not None:
            progress("neighbors", done[0], n)

    expand = bool(expand_neighbors) and dense.shape[1] > 0
    first_pass = max(neighbors, FIRST_PASS) if expand else neighbors
    first = compute_first_pass(sparse, dense, first_pass, candidates, n_jobs=n_jobs, progress=tick)
    indices, scores, stored_dense = compute_final_lists(
        sparse, dense, first, neighbors, expand_neighbors if expand else 0, expand_alpha
    )
    timings["neighbors_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    arrays = {
        "article_ids": np.asarray(rows.ids, dtype=str),
        "neighbors_indices": indices,
        "neighbors_scores": scores,
        "vectors_sparse_data": sparse.data.astype(np.float32, copy=False),
        "vectors_sparse_indices": sparse.indices.astype(np.int32, copy=False),
        "vectors_sparse_indptr": sparse.indptr.astype(np.int64, copy=False),
        "vectors_dense": stored_dense,
        "published": np.asarray(rows.published, dtype=np.float64),
        **state_arrays(first, dense),
    }
    manifest = {
        "parent_version": None,
        "features_from": str(features_from) if features_from is not None else None,
        "corpus": {
            "path": str(corpus), "sha256": file_sha256(corpus), "records": n,
            "skipped": len(skipped), "skipped_lines": [e.line for e in skipped],
        },
        "counts": {
            "articles": n, "vocabulary": int(sparse.shape[1]),
            "latent_dims": int(dense.shape[1]), "neighbors": int(neighbors),
        },
        "params": {
            "vectorizer": _jsonable(vectorizer.get_params()),
            "neighbors": int(neighbors),
            "candidates": int(candidates),
            "expansion": {
                "neighbors": int(expand_neighbors), "alpha": float(expand_alpha),
                "first_pass": int(first_pass),
            },
        },
        "fields": {
            "id_field": fields.id_field, "text_fields": list(fields.text_fields),
            "tag_fields": list(fields.tag_fields), "date_field": fields.date_field,
            "url_field": fields.url_field, "title_field": fields.title_field,
        },
        "libraries": library_versions(),
        "duplicates": duplicate_report(indices, scores, arrays["article_ids"]),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    version = model_dir.publish(
        models_dir, arrays=arrays, articles=rows.articles, texts=rows.texts,
        vectorizer=vectorizer, manifest=manifest, keep=keep,
    )
    timings["write_s"] = time.perf_counter() - t0
    return TrainResult(
        version=version, path=Path(models_dir) / version, articles=n,
        vocabulary=int(sparse.shape[1]), latent_dims=int(dense.shape[1]),
        skipped=skipped, timings=timings, duplicates=manifest["duplicates"],
    )
