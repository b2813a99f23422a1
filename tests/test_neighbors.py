"""Exactness of training.neighbors: top_neighbors and select_top against a brute-force argsort."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from training.corpus import read_articles
from training.features import ArticleVectorizer
from training.neighbors import select_top, top_neighbors

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "wikinews-sample.jsonl.gz"


def brute_force(q_sparse, q_dense, b_sparse, b_dense, n, self_rows=None):
    """Top-n by a full float64 score matrix and a stable sort: best first, ties to lower index."""
    scores = (q_sparse @ b_sparse.T).toarray().astype(np.float64)
    scores += q_dense.astype(np.float64) @ b_dense.astype(np.float64).T
    if self_rows is not None:
        for r, s in enumerate(self_rows):
            if s >= 0:
                scores[r, s] = -np.inf
    idx = np.full((scores.shape[0], n), -1, dtype=np.int64)
    val = np.zeros((scores.shape[0], n))
    for r, row in enumerate(scores):
        cols = np.flatnonzero(row > 0)
        best = cols[np.lexsort((cols, -row[cols]))][:n]
        idx[r, : len(best)] = best
        val[r, : len(best)] = row[best]
    return idx, val, scores


def dyadic_vectors(rng, rows, features=24, dims=3, density=0.15):
    """Sparse + dense vectors whose entries are multiples of 1/4, so every dot product is
    exact in float32 and float64 alike and exact ties are common."""
    sparse = sp.random(rows, features, density=density, format="csr", random_state=rng,
                       data_rvs=lambda k: rng.integers(1, 4, size=k) / 4).astype(np.float32)
    dense = (rng.integers(-2, 3, size=(rows, dims)) / 4).astype(np.float32)
    return sparse, dense


def planted_base(rng):
    """Dyadic base of 60 rows with ten exact copies of one row (ties at any cut-off), and
    queries: 0 equals that row, 1 has no positive score, 2 exactly one positive candidate."""
    b_sparse, b_dense = dyadic_vectors(rng, 51)
    # Row 7 gets a big feature of its own, so a query equal to it scores its copies highest.
    boost = sp.csr_matrix(([2.0], ([7], [0])), shape=(51, 1), dtype=np.float32)
    b_sparse = sp.hstack([b_sparse, boost], format="csr", dtype=np.float32)
    copies = [7, 12, 19, 23, 31, 38, 44, 50, 55, 59]
    others = iter(r for r in range(51) if r != 7)
    order = [7 if r in copies else next(others) for r in range(60)]
    b_sparse, b_dense = b_sparse[order], b_dense[order]
    # A last feature held by base row 41 alone, and by query 2 alone.
    marker = sp.csr_matrix(([1.0], ([41], [0])), shape=(60, 1), dtype=np.float32)
    b_sparse = sp.hstack([b_sparse, marker], format="csr", dtype=np.float32)
    q_sparse, q_dense = dyadic_vectors(rng, 37)
    q_sparse = sp.hstack([q_sparse, sp.csr_matrix((37, 2), dtype=np.float32)], format="csr")
    only = sp.csr_matrix(([0.5], ([0], [b_sparse.shape[1] - 1])), shape=(1, b_sparse.shape[1]),
                         dtype=np.float32)
    q_sparse = sp.vstack([b_sparse[7], sp.csr_matrix((1, b_sparse.shape[1])), only, q_sparse],
                         format="csr", dtype=np.float32)
    q_dense = np.vstack([b_dense[7:8], np.zeros((2, b_dense.shape[1])), q_dense]).astype(np.float32)
    return q_sparse, q_dense, b_sparse, b_dense, copies


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("block_size", [1, 7, 16, None])
@pytest.mark.parametrize("n", [1, 5, 12])
def test_exact_on_dyadic_vectors_with_planted_ties(n_jobs, block_size, n):
    rng = np.random.default_rng(1)
    q_sparse, q_dense, b_sparse, b_dense, copies = planted_base(rng)
    idx, val = top_neighbors(q_sparse, q_dense, b_sparse, b_dense, n,
                             n_jobs=n_jobs, block_size=block_size)
    want_idx, want_val, _ = brute_force(q_sparse, q_dense, b_sparse, b_dense, n)
    assert idx.dtype == np.int32 and val.dtype == np.float32
    assert idx.shape == val.shape == (q_sparse.shape[0], n)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(val, want_val)  # dyadic sums are exact
    # The planted cases really are there.
    top = sorted(copies)[: min(n, len(copies))]
    assert idx[0, : len(top)].tolist() == top  # ten exact ties at the top: lowest rows win
    assert (idx[1] == -1).all() and (val[1] == 0).all()
    assert idx[2, 0] >= 0 and (idx[2, 1:] == -1).all()


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("block_size", [3, None])
def test_self_rows_are_never_returned(n_jobs, block_size):
    rng = np.random.default_rng(2)
    sparse, dense = dyadic_vectors(rng, 45)
    self_rows = np.arange(45)
    self_rows[::4] = -1  # some queries may see themselves
    n = 6
    idx, val = top_neighbors(sparse, dense, sparse, dense, n, self_rows=self_rows,
                             n_jobs=n_jobs, block_size=block_size)
    want_idx, want_val, scores = brute_force(sparse, dense, sparse, dense, n, self_rows)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(val, want_val)
    for r, s in enumerate(self_rows):
        if s >= 0:
            assert s not in idx[r]
    # Where the query may see itself and its self-score is positive, it is listed.
    free = [r for r in range(45) if self_rows[r] < 0 and scores[r, r] > 0]
    assert free and all(r in idx[r] for r in free)


def check_up_to_rounding(idx, val, want_val, scores, tol=1e-5):
    """``idx``/``val`` are a correct top-N of float64 ``scores`` up to float32 rounding."""
    np.testing.assert_allclose(val, want_val, atol=tol)
    for r in range(idx.shape[0]):
        listed = idx[r][idx[r] >= 0]
        assert len(set(listed.tolist())) == len(listed)
        assert (idx[r][len(listed):] == -1).all() and (val[r][len(listed):] == 0).all()
        np.testing.assert_allclose(val[r, : len(listed)], scores[r, listed], atol=tol)
        assert (np.diff(val[r, : len(listed)]) <= 0).all()
        # Equal scores are listed by increasing index.
        same = np.flatnonzero(np.diff(val[r, : len(listed)]) == 0)
        assert (listed[same] < listed[same + 1]).all()


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("block_size", [5, 64, None])
def test_matches_brute_force_on_random_float_vectors(n_jobs, block_size):
    rng = np.random.default_rng(3)
    q_sparse = sp.random(70, 200, density=0.05, format="csr", random_state=rng, dtype=np.float32)
    b_sparse = sp.random(130, 200, density=0.05, format="csr", random_state=rng, dtype=np.float32)
    q_dense = rng.normal(size=(70, 8)).astype(np.float32) * 0.1
    b_dense = rng.normal(size=(130, 8)).astype(np.float32) * 0.1
    self_rows = rng.integers(-1, 130, size=70)
    n = 20
    idx, val = top_neighbors(q_sparse, q_dense, b_sparse, b_dense, n, self_rows=self_rows,
                             n_jobs=n_jobs, block_size=block_size)
    _, want_val, scores = brute_force(q_sparse, q_dense, b_sparse, b_dense, n, self_rows)
    check_up_to_rounding(idx, val, want_val, scores)
    assert all(s < 0 or s not in idx[r] for r, s in enumerate(self_rows))


@pytest.fixture(scope="module")
def sample_vectors():
    if not SAMPLE.is_file():
        pytest.skip(f"bundled sample corpus missing at {SAMPLE}")
    records = [{**a.texts, "tags": a.tags} for a in read_articles(SAMPLE)][:600]
    return ArticleVectorizer(n_components=30).fit_transform(records)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_matches_brute_force_on_a_real_corpus(sample_vectors, n_jobs):
    sparse, dense = sample_vectors
    n = 15
    rows = np.arange(sparse.shape[0])
    idx, val = top_neighbors(sparse, dense, sparse, dense, n, self_rows=rows, n_jobs=n_jobs,
                             block_size=97)
    _, want_val, scores = brute_force(sparse, dense, sparse, dense, n, rows)
    check_up_to_rounding(idx, val, want_val, scores)
    assert not (idx == rows[:, None]).any()
    # Same answer whatever the blocking.
    idx2, val2 = top_neighbors(sparse, dense, sparse, dense, n, self_rows=rows, n_jobs=1)
    np.testing.assert_array_equal(idx, idx2)
    np.testing.assert_array_equal(val, val2)


def test_empty_dense_part_and_more_neighbours_than_rows():
    rng = np.random.default_rng(4)
    sparse, _ = dyadic_vectors(rng, 9)
    no_dense = np.zeros((9, 0), dtype=np.float32)
    idx, val = top_neighbors(sparse, no_dense, sparse, no_dense, 20, self_rows=np.arange(9),
                             n_jobs=1)
    want_idx, want_val, _ = brute_force(sparse, no_dense, sparse, no_dense, 20, np.arange(9))
    assert idx.shape == (9, 20)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(val, want_val)
    assert (idx[:, 8:] == -1).all()


def test_progress_reports_every_row():
    rng = np.random.default_rng(5)
    sparse, dense = dyadic_vectors(rng, 23)
    seen = []
    top_neighbors(sparse, dense, sparse, dense, 3, n_jobs=1, block_size=5, progress=seen.append)
    assert seen == [5, 5, 5, 5, 3]


@pytest.mark.parametrize("kwargs, match", [
    ({"n_neighbors": 0}, "n_neighbors"),
    ({"n_neighbors": 3, "block_size": 0}, "block_size"),
])
def test_bad_arguments_are_named(kwargs, match):
    rng = np.random.default_rng(6)
    sparse, dense = dyadic_vectors(rng, 4)
    with pytest.raises(ValueError, match=match):
        top_neighbors(sparse, dense, sparse, dense, n_jobs=1, **kwargs)


def test_select_top_never_picks_non_finite_or_non_positive_scores():
    scores = np.array([
        [0.5, np.inf, np.nan, -1.0, 0.2, 0.0],
        [-np.inf, np.nan, 0.0, -0.5, np.inf, 0.0],
        [0.3, 0.3, 0.3, 0.3, 0.1, 0.3],
    ], dtype=np.float32)
    idx, val = select_top(scores.copy(), 3)
    assert idx.tolist() == [[0, 4, -1], [-1, -1, -1], [0, 1, 2]]
    np.testing.assert_array_equal(val, np.array([[0.5, 0.2, 0], [0, 0, 0], [0.3, 0.3, 0.3]],
                                                dtype=np.float32))


@pytest.mark.parametrize("n", [1, 2, 4, 7, 10])
def test_select_top_ties_at_the_cut_off_go_to_lower_columns(n):
    rng = np.random.default_rng(n)
    scores = rng.integers(0, 4, size=(50, 9)).astype(np.float32) / 4  # many exact ties, zeros
    idx, val = select_top(scores.copy(), n)
    for r, row in enumerate(scores):
        cols = np.flatnonzero(row > 0)
        best = cols[np.lexsort((cols, -row[cols]))][:n]
        assert idx[r, : len(best)].tolist() == best.tolist()
        assert (idx[r, len(best):] == -1).all()
        np.testing.assert_array_equal(val[r, : len(best)], row[best])
