"""Explanations: the strongest shared terms (from the stored TF-IDF rows) and the shared tags of two articles."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from service.model import LoadedModel

#: Shared terms given per item.
TOP_TERMS = 5

_terms: weakref.WeakKeyDictionary[LoadedModel, tuple[np.ndarray, np.ndarray]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def term_columns(model: LoadedModel) -> tuple[np.ndarray, np.ndarray]:
    """Return (built once per model version) each sparse column's term and whether it may explain.

    Columns of the tag field are left out (tags are reported as shared tags).

    Parameters
    ----------
    model : LoadedModel

    Returns
    -------
    terms : ndarray of str
        The term of every column, without its ``field:`` prefix.
    usable : ndarray of bool
        False for the tag field's columns.
    """
    with _lock:
        found = _terms.get(model)
        if found is None:
            names = np.asarray(model.vectorizer.feature_names(), dtype=str)
            fields, _, terms = np.char.partition(names, ":").T
            tag_field = getattr(model.vectorizer, "tag_field", "tags")
            found = _terms[model] = (terms, fields != tag_field)
    return found


def shared_terms(model: LoadedModel, query: sp.csr_matrix, row: int, top: int = TOP_TERMS) -> list[list[Any]]:
    """Return the terms contributing most to the sparse similarity of ``query`` and stored ``row``.

    A term's weight is the sum over the spaces it occurs in (all_text, title, ...) of the
    elementwise product of the two stored rows.

    Parameters
    ----------
    model : LoadedModel
    query : csr_matrix, shape (1, V)
        The query's sparse vector (a stored row, or a draft's transformed vector).
    row : int
        The candidate's row.
    top : int
        Largest number of terms.

    Returns
    -------
    list of [term, weight]
        Strongest first (ties by term), weights rounded to 6 decimals, only positive ones.
    """
    terms, usable = term_columns(model)
    candidate = model.vectors_sparse[row]
    width = min(query.shape[1], candidate.shape[1], terms.size)
    product = query[:, :width].multiply(candidate[:, :width]).tocoo()
    weights: dict[str, float] = {}
    for column, value in zip(product.col.tolist(), product.data.tolist()):
        if value > 0 and usable[column]:
            term = str(terms[column])
            weights[term] = weights.get(term, 0.0) + value
    best = sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [[term, round(weight, 6)] for term, weight in best]


def shared_tags(query_tags: Sequence[str], tags: Sequence[str] | None) -> list[str]:
    """Return the candidate's tags that the query also has (case-insensitive), in its order.

    Parameters
    ----------
    query_tags : sequence of str
    tags : sequence of str or None
        The candidate's tags.

    Returns
    -------
    list of str
    """
    wanted = {tag.casefold() for tag in query_tags}
    return [tag for tag in (tags or []) if isinstance(tag, str) and tag.casefold() in wanted]


def explanation(model: LoadedModel, query: sp.csr_matrix, query_tags: Sequence[str], row: int,
                tags: Sequence[str] | None) -> dict[str, Any]:
    """Return ``{"shared_terms": [[term, weight], ...], "shared_tags": [...]}`` for one item.

    Parameters
    ----------
    model : LoadedModel
    query : csr_matrix, shape (1, V)
        The query's sparse vector.
    query_tags : sequence of str
        The query's tags.
    row : int
        The item's row.
    tags : sequence of str or None
        The item's tags.

    Returns
    -------
    dict
    """
    return {"shared_terms": shared_terms(model, query, row), "shared_tags": shared_tags(query_tags, tags)}
