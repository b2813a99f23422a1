"""Query functions over a LoadedModel: related rows for a stored article or for new vectors."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from service.model import LoadedModel
from training.expansion import expand_from_scores


def similar_to_row(model: LoadedModel, row: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``k`` stored articles most related to article ``row``, best first.

    Reads the precomputed neighbour list, so the cost does not depend on the model size.

    Parameters
    ----------
    model : LoadedModel
        The model version to query.
    row : int
        Row of the query article (``model.row_of[article_id]``).
    k : int
        Largest number of results; at most ``model.n_neighbors`` are available.

    Returns
    -------
    rows : ndarray of int64
        Related rows, never ``row`` itself.
    scores : ndarray of float32
        Their similarities, non-increasing.
    """
    if not 0 <= row < model.n_articles:
        raise IndexError(f"row {row} outside 0..{model.n_articles - 1}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rows = np.asarray(model.neighbors_indices[row, :k], dtype=np.int64)
    scores = np.asarray(model.neighbors_scores[row, :k], dtype=np.float32)
    keep = (rows >= 0) & (rows != row)
    return rows[keep], scores[keep]


def row_scores(model: LoadedModel, row: int) -> np.ndarray:
    """Return the model similarity of stored article ``row`` to every stored article (exact scan).

    Uses the stored (already expanded) vectors, so the scores equal those of the
    precomputed lists: ``s_row . s_j + z_row . z_j``.

    Parameters
    ----------
    model : LoadedModel
        The model version to scan.
    row : int
        Row of the query article.

    Returns
    -------
    ndarray of float32, shape (n_articles,)
    """
    if not 0 <= row < model.n_articles:
        raise IndexError(f"row {row} outside 0..{model.n_articles - 1}")
    sparse = model.vectors_sparse
    start, end = sparse.indptr[row], sparse.indptr[row + 1]
    weights = np.zeros(sparse.shape[1], dtype=np.float32)
    weights[sparse.indices[start:end]] = sparse.data[start:end]
    return np.asarray(sparse @ weights, dtype=np.float32) + model.vectors_dense @ model.vectors_dense[row]


def score_vectors(model: LoadedModel, sparse: sp.spmatrix, dense: np.ndarray) -> np.ndarray:
    """Return the model similarity of one query vector ``[sparse, dense]`` to every stored article.

    Parameters
    ----------
    model : LoadedModel
        The model version to score against.
    sparse : sparse matrix, shape (1, V)
        Sparse part of the query, as returned by the model's vectorizer.
    dense : ndarray, shape (1, d) or (d,)
        Dense (latent) part of the query.

    Returns
    -------
    ndarray of float32, shape (n_articles,)
    """
    query = sp.csr_matrix(sparse)
    latent = np.asarray(dense, dtype=np.float32).reshape(-1)
    if query.shape[0] != 1:
        raise ValueError(f"expected one query row, got sparse shape {query.shape}")
    if latent.shape[0] != model.vectors_dense.shape[1]:
        raise ValueError(f"dense part has {latent.shape[0]} dims, the model {model.vectors_dense.shape[1]}")
    width = model.vectors_sparse.shape[1]
    columns = query.indices
    inside = columns < width  # columns no stored article uses contribute nothing
    weights = np.zeros(width, dtype=np.float32)
    weights[columns[inside]] = query.data[inside]
    sparse_scores = np.asarray(model.vectors_sparse @ weights, dtype=np.float32)
    expansion = model.manifest.get("params", {}).get("expansion", {})
    if expansion.get("neighbors") and latent.size:
        # Latent query expansion, as training applied to every stored article.
        first = sparse_scores + model.vectors_dense @ latent
        latent = expand_from_scores(latent[None, :], first[None, :], model.vectors_dense,
                                    expansion["neighbors"], expansion.get("alpha", 1.0))[0]
    return sparse_scores + model.vectors_dense @ latent


def top_k(scores: np.ndarray, k: int, exclude_rows: Iterable[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Return the rows of the ``k`` highest positive scores, best first, ties by lower row.

    Parameters
    ----------
    scores : ndarray, shape (n,)
        One score per row.
    k : int
        Largest number of results.
    exclude_rows : iterable of int
        Rows never returned.

    Returns
    -------
    rows : ndarray of int64
    scores : ndarray of float32
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    scores = np.array(scores, dtype=np.float32)
    excluded = np.fromiter(exclude_rows, dtype=np.int64)
    if excluded.size:
        scores[excluded] = -np.inf
    candidates = np.flatnonzero(scores > 0)
    if candidates.size > k:
        # keep everything tied with the k-th best so the row tie-break below is exact
        kth = np.partition(scores[candidates], candidates.size - k)[candidates.size - k]
        candidates = candidates[scores[candidates] >= kth]
    order = np.lexsort((candidates, -scores[candidates]))[:k]
    rows = candidates[order].astype(np.int64)
    return rows, scores[rows]


def similar_to_vectors(model: LoadedModel, sparse: sp.spmatrix, dense: np.ndarray, k: int,
                       exclude_rows: Iterable[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``k`` stored articles most similar to a query vector, scanning them all exactly.

    Only articles with a positive similarity are returned (an empty draft relates to nothing).

    Parameters
    ----------
    model : LoadedModel
        The model version to query.
    sparse, dense
        The query as returned by ``model.vectorizer.transform([record])``.
    k : int
        Largest number of results.
    exclude_rows : iterable of int
        Rows never returned.

    Returns
    -------
    rows : ndarray of int64
        Best first, ties broken by lower row.
    scores : ndarray of float32
    """
    return top_k(score_vectors(model, sparse, dense), k, exclude_rows)
