"""The plain vectorizer gives scikit-learn's vectors bit for bit, alone or in a batch, after a round trip."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training import model_dir
from training.corpus import read_articles
from training.features import ArticleVectorizer
from training.pipeline import read_rows
from training.plain_vectorizer import PlainVectorizer

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "wikinews-sample.jsonl.gz"


def sklearn_transform(vec: ArticleVectorizer, records: list[dict]) -> tuple[sp.csr_matrix, np.ndarray]:
    """The transform as scikit-learn and scipy compute it (the arithmetic the plain one repeats)."""
    return vec.transform_sklearn(records)


def assert_same(a: tuple[sp.csr_matrix, np.ndarray], b: tuple[np.ndarray, ...]) -> None:
    sparse, dense = a
    indptr, indices, data, plain_dense = b
    assert np.array_equal(sparse.indptr, indptr)
    assert np.array_equal(sparse.indices, indices)
    assert np.array_equal(sparse.data, data)  # bits, not a tolerance
    assert plain_dense.dtype == np.float32 and np.array_equal(dense, plain_dense)


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return [{"title": r["title"], "body": r["body"], "tags": r.get("tags") or []} for r in rows]


@pytest.fixture(scope="module")
def fitted(sample) -> tuple[ArticleVectorizer, tuple[sp.csr_matrix, np.ndarray]]:
    vec = ArticleVectorizer(ignore_tags=("Published",))
    return vec, vec.fit_transform(sample)


def test_every_sample_article_equals_fit_transform(sample, fitted):
    vec, (sparse, dense) = fitted
    assert_same((sparse, dense), vec.plain().transform_arrays(sample))


def test_equals_the_sklearn_arithmetic(sample, fitted):
    vec, _ = fitted
    assert_same(sklearn_transform(vec, sample[:300]), vec.plain().transform_arrays(sample[:300]))


def test_a_row_alone_equals_the_row_in_a_batch(sample, fitted):
    vec, (sparse, dense) = fitted
    plain = vec.plain()
    for i in range(0, len(sample), 97):
        indptr, indices, data, one = plain.transform_arrays([sample[i]])
        row = sparse[i]
        assert np.array_equal(row.indices, indices) and np.array_equal(row.data, data)
        assert np.array_equal(dense[i], one[0])


def test_transform_returns_the_plain_vectors(sample, fitted):
    vec, _ = fitted
    sparse, dense = vec.transform(sample[:50])
    assert_same((sparse, dense), vec.plain().transform_arrays(sample[:50]))


texts = st.text(alphabet=st.sampled_from(list("abc xyz ÉéßİıΣς日本 the and of 1234.,;-\n")), max_size=80)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.fixed_dictionaries({
    "title": texts, "body": texts,
    "tags": st.lists(st.sampled_from(["Oil", "oil ", "  OIL", "Published", "energy", "É", ""]), max_size=4),
}), min_size=1, max_size=5))
def test_arbitrary_text_equals_sklearn(records):
    corpus = [{"title": "abc xyz the", "body": "abc and xyz ÉÉ éé ßß 日本 1234 of", "tags": ["oil", "energy"]},
              {"title": "xyz xyz", "body": "abc abc ıı İİ ΣΣ ςς 12 34", "tags": ["Energy", "é"]},
              {"title": "other", "body": "nothing shared at all here", "tags": []}]
    vec = ArticleVectorizer(min_df=1, n_components=2, stop_words=["the"], ignore_tags=("published",)).fit(corpus)
    assert_same(sklearn_transform(vec, records), vec.plain().transform_arrays(records))


def test_without_lsa_the_dense_part_is_empty(sample):
    vec = ArticleVectorizer(n_components=0)
    sparse, dense = vec.fit_transform(sample[:200])
    got = vec.plain().transform_arrays(sample[:200])
    assert got[3].shape == (200, 0)
    assert_same((sparse, dense), got)


def test_a_trained_version_stores_the_plain_vectorizer(tmp_path, tiny_corpus, train_tiny):
    corpus, _ = tiny_corpus
    models = tmp_path / "models"
    train_tiny(corpus, models)
    version = model_dir.resolve(models)
    manifest = json.loads((version / "manifest.json").read_text())
    for name in model_dir.PLAIN_VECTORIZER:
        assert name in manifest["files"], name  # checksummed like every other file
    docs = read_rows(read_articles(corpus)).records
    plain = PlainVectorizer.load(version).transform_arrays(docs)
    assert_same(joblib.load(version / model_dir.VECTORIZER).transform(docs), plain)
    assert np.array_equal(np.load(version / "update_latent.npy"), plain[3])
    assert np.array_equal(np.load(version / "vectors_sparse_data.npy"), plain[2])
