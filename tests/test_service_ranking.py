"""Tests of the query functions: precomputed lookups, exact scans, tie-breaks and exclusions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from service.model import load_version
from service.ranking import score_vectors, similar_to_row, similar_to_vectors, top_k


@pytest.fixture(scope="module")
def model(trained_models):
    return load_version(trained_models, (trained_models / "CURRENT").read_text().strip())


def test_similar_to_row_reads_the_stored_list(model):
    rows, scores = similar_to_row(model, 3, 7)
    assert rows.tolist() == model.neighbors_indices[3, :7].tolist()
    assert np.array_equal(scores, model.neighbors_scores[3, :7])
    assert 3 not in rows.tolist()
    assert len(similar_to_row(model, 3, 1000)[0]) == model.n_neighbors


def test_similar_to_row_rejects_bad_arguments(model):
    with pytest.raises(IndexError, match="row 32"):
        similar_to_row(model, 32, 3)
    with pytest.raises(ValueError, match="k must be >= 1"):
        similar_to_row(model, 0, 0)


def test_stored_article_scores_itself_highest_and_matches_its_neighbours(model):
    """Scoring a stored vector against all stored vectors reproduces the precomputed neighbours."""
    for row in (0, 9, 20):
        sparse = model.vectors_sparse[row]
        dense = model.vectors_dense[row]
        rows, scores = similar_to_vectors(model, sparse, dense, 6, exclude_rows=[row])
        assert rows.tolist() == model.neighbors_indices[row, :6].tolist()
        assert np.allclose(scores, model.neighbors_scores[row, :6], atol=1e-5)
        assert score_vectors(model, sparse, dense).argmax() == row


def test_query_columns_beyond_the_stored_width_are_ignored(model):
    width = model.vectors_sparse.shape[1]
    wide = sp.csr_matrix((np.array([1.0], dtype=np.float32), np.array([width + 5]), np.array([0, 1])),
                         shape=(1, width + 10))
    dense = np.zeros(model.vectors_dense.shape[1], dtype=np.float32)
    assert not score_vectors(model, wide, dense).any()
    with pytest.raises(ValueError, match="dims"):
        score_vectors(model, wide, np.zeros(3))


def test_top_k_breaks_ties_by_lower_row_and_skips_non_positive():
    scores = np.array([0.5, 0.9, 0.5, 0.0, -1.0, 0.9, 0.5], dtype=np.float32)
    rows, values = top_k(scores, 4)
    assert rows.tolist() == [1, 5, 0, 2]
    assert values.tolist() == pytest.approx([0.9, 0.9, 0.5, 0.5])
    assert top_k(scores, 10)[0].tolist() == [1, 5, 0, 2, 6]
    assert top_k(scores, 3, exclude_rows=[1, 0])[0].tolist() == [5, 2, 6]
    assert top_k(np.zeros(5), 3)[0].tolist() == []


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(-3, 5), min_size=1, max_size=60), k=st.integers(1, 70),
       excluded=st.lists(st.integers(0, 59), max_size=5))
def test_top_k_equals_a_full_sort(values, k, excluded):
    scores = np.array(values, dtype=np.float32) / 4
    excluded = [e for e in excluded if e < len(values)]
    expected = sorted((r for r in range(len(values)) if scores[r] > 0 and r not in excluded),
                      key=lambda r: (-scores[r], r))[:k]
    assert top_k(scores, k, excluded)[0].tolist() == expected
