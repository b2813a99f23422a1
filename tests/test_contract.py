"""Contract of every model variant on a tiny corpus with planted structure (training.pipeline)."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pytest
import scipy.sparse as sp

from tests.fixtures.planted import planted_corpus, write_jsonl
from training import model_dir
from training.expansion import expand_queries
from training.pipeline import train

PLANTED = planted_corpus()
IDS = PLANTED.ids()
ROW = {a: i for i, a in enumerate(IDS)}
TOPIC = PLANTED.topic_of()
N = 20  # more than the corpus holds: every positive-scoring article is listed
EPS = 1e-5  # float32 rounding of similarities bounded by 1

VARIANTS = [
    pytest.param((w, tags, dims), id=f"latent={w}-tags={'on' if tags else 'off'}-dims={dims}")
    for w in (0.0, 0.65, 1.0)
    for tags in (True, False)
    for dims in ((4,) if w == 0.0 else (2, 4))
]


def fit(tmp_path, name, latent_weight, tags, dims):
    """Train one variant into its own store; return the published version directory."""
    corpus = write_jsonl(tmp_path / "planted.jsonl", PLANTED.records)
    params = {"latent_weight": latent_weight, "n_components": dims}
    if not tags:
        params["field_weights"] = {"tags": 0.0}
    result = train(corpus, tmp_path / name, neighbors=N, n_jobs=1, vectorizer_params=params)
    return result.path


def lists(path):
    """Per article id: its stored list as [(id, score), ...], and the raw arrays."""
    idx = np.asarray(model_dir.load_array(path, "neighbors_indices"))
    scores = np.asarray(model_dir.load_array(path, "neighbors_scores"))
    out = {}
    for i, a in enumerate(IDS):
        out[a] = [(IDS[j], float(s)) for j, s in zip(idx[i], scores[i]) if j >= 0]
    return out, idx, scores


@pytest.fixture(scope="module", params=VARIANTS)
def variant(request, tmp_path_factory):
    """One trained variant, shared by the checks below: (latent_weight, tags, dims, path)."""
    latent_weight, tags, dims = request.param
    path = fit(tmp_path_factory.mktemp("variant"), "models", latent_weight, tags, dims)
    return latent_weight, tags, dims, path


def test_ids_rows_and_shapes(variant):
    *_, path = variant
    assert model_dir.load_array(path, "article_ids").tolist() == IDS
    _, idx, scores = lists(path)
    assert idx.shape == scores.shape == (len(IDS), N)
    assert idx.dtype == np.int32 and scores.dtype == np.float32


def test_never_self_scores_bounded_and_non_increasing(variant):
    *_, path = variant
    by_id, idx, scores = lists(path)
    for i, a in enumerate(IDS):
        listed = idx[i][idx[i] >= 0]
        k = len(listed)
        assert i not in listed, f"{a} lists itself"
        assert len(set(listed.tolist())) == k, f"{a} lists an article twice"
        assert (idx[i, k:] == -1).all() and (scores[i, k:] == 0).all(), f"{a}: padding mid-list"
        assert (scores[i, :k] > 0).all() and (scores[i, :k] <= 1 + EPS).all()
        assert (np.diff(scores[i, :k]) <= 0).all(), f"{a}: scores increase: {by_id[a]}"
        ties = np.flatnonzero(np.diff(scores[i, :k]) == 0)
        assert (listed[ties] < listed[ties + 1]).all(), f"{a}: tie not broken by lower row"


def test_topics_rank_above_the_other_topic(variant):
    latent_weight, tags, _, path = variant
    by_id, _, _ = lists(path)
    for a, topic in TOPIC.items():
        if a == PLANTED.tags_only:
            continue
        listed = [b for b, _ in by_id[a]]
        topics = [TOPIC.get(b) for b in listed]
        same = [t == topic for t in topics]
        # Every same-topic entry comes before every other-topic entry.
        assert same == sorted(same, reverse=True), f"{a}: topics interleave: {by_id[a]}"
        cross = [s for b, s in by_id[a] if TOPIC.get(b) != topic]
        assert all(s < 1e-4 for s in cross), f"{a}: disjoint vocabularies scored {cross}"
        if latent_weight < 1:
            # The TF-IDF part alone makes every text article of the topic a neighbour.
            mates = {b for b, t in TOPIC.items() if t == topic and b not in (a, PLANTED.tags_only)}
            assert mates <= set(listed), f"{a}: misses topic mates {mates - set(listed)}"


def test_duplicate_pair_are_each_others_best(variant):
    *_, path = variant
    by_id, _, _ = lists(path)
    first, second = PLANTED.twins
    for a, twin in ((first, second), (second, first)):
        scores = dict(by_id[a])
        assert twin in scores, f"{a} does not list its duplicate {twin}: {by_id[a]}"
        assert scores[twin] == pytest.approx(1.0, abs=EPS)
        best = by_id[a][0][1]
        assert scores[twin] >= best - EPS, f"{a}: {by_id[a][0]} beats the duplicate"
        if by_id[a][0][0] != twin:  # only an exact tie may come first (lower row)
            assert ROW[by_id[a][0][0]] < ROW[twin]


def test_tags_only_article(variant):
    latent_weight, tags, _, path = variant
    by_id, _, _ = lists(path)
    a = PLANTED.tags_only
    listed = [b for b, _ in by_id[a]]
    mates = set(PLANTED.tag_mates)
    if not tags:  # with the tag field off it has no features at all
        assert listed == []
        assert all(a not in [b for b, _ in items] for items in by_id.values())
        return
    assert mates <= set(listed), f"tag mates {mates} missing from {by_id[a]}"
    if latent_weight == 0:
        assert set(listed) == mates
    elif latent_weight < 1:  # pure LSA (w = 1) may blur the tags with the whole topic
        assert set(listed[: len(mates)]) == mates, by_id[a]
    for b in PLANTED.tag_mates:  # and the tag mates see it back
        assert a in [c for c, _ in by_id[b]]


def test_empty_article_has_no_neighbours_and_is_nobodys(variant):
    *_, path = variant
    by_id, _, _ = lists(path)
    assert by_id[PLANTED.empty] == []
    for a, items in by_id.items():
        assert PLANTED.empty not in [b for b, _ in items], f"{a} lists the empty article"


def test_stored_vectors_reproduce_stored_scores_and_drafts(variant):
    latent_weight, tags, _, path = variant
    n = len(IDS)
    data = model_dir.load_array(path, "vectors_sparse_data")
    indices = model_dir.load_array(path, "vectors_sparse_indices")
    indptr = model_dir.load_array(path, "vectors_sparse_indptr")
    dense = np.asarray(model_dir.load_array(path, "vectors_dense"))
    vectorizer = joblib.load(path / model_dir.VECTORIZER)
    sparse = sp.csr_matrix((data, indices, indptr), shape=(n, vectorizer.n_features_))
    sims = (sparse @ sparse.T).toarray().astype(np.float64) + dense.astype(np.float64) @ dense.T
    _, idx, scores = lists(path)
    for i in range(n):
        k = int((idx[i] >= 0).sum())
        np.testing.assert_allclose(scores[i, :k], sims[i, idx[i, :k]], atol=EPS)
    # Each part carries its weight: |s|^2 = 1 - w and |z|^2 = w for an article with content.
    content = [ROW[a] for a in TOPIC if tags or a != PLANTED.tags_only]
    np.testing.assert_allclose(sparse[content].multiply(sparse[content]).sum(axis=1).A1,
                               1 - latent_weight if dense.shape[1] else 1.0, atol=EPS)
    if dense.shape[1]:
        np.testing.assert_allclose((dense[content] ** 2).sum(axis=1), latent_weight, atol=EPS)
    # A draft is scored by vectorizer.transform([record]) then latent query expansion
    # against the stored vectors: its sparse part is the stored one, and a stored article's
    # text as a draft finds itself (or its identical twin) first.
    records = [{"title": r["title"], "body": r["body"], "tags": r["tags"]} for r in PLANTED.records]
    d_sparse, d_dense = vectorizer.transform(records)
    np.testing.assert_allclose(d_sparse.toarray(), sparse.toarray(), atol=1e-6)
    expansion = model_dir.read_manifest(path)["params"]["expansion"]
    d_dense = expand_queries(d_sparse, d_dense, sparse, dense, expansion["neighbors"],
                             expansion["alpha"])
    if not dense.shape[1]:
        np.testing.assert_allclose(d_dense, dense, atol=1e-6)
    draft_sims = (d_sparse @ sparse.T).toarray() + d_dense @ dense.T
    # (With the latent part alone, 2-4 LSA dimensions cannot tell a topic's articles apart.)
    for a in content if latent_weight < 1 else []:
        best = IDS[int(np.argmax(draft_sims[a]))]
        assert best == IDS[a] or {best, IDS[a]} == set(PLANTED.twins), (IDS[a], best)


@pytest.mark.parametrize("params", VARIANTS)
def test_two_fits_are_identical(tmp_path, params):
    latent_weight, tags, dims = params
    one = fit(tmp_path, "one", latent_weight, tags, dims)
    two = fit(tmp_path, "two", latent_weight, tags, dims)
    for name in ("neighbors_indices", "neighbors_scores", "vectors_sparse_data",
                 "vectors_sparse_indices", "vectors_sparse_indptr", "vectors_dense"):
        np.testing.assert_array_equal(model_dir.load_array(one, name),
                                      model_dir.load_array(two, name), err_msg=name)
    manifests = [json.loads((p / model_dir.MANIFEST).read_text()) for p in (one, two)]
    assert manifests[0]["params"] == manifests[1]["params"]
    assert manifests[0]["counts"] == manifests[1]["counts"]


def test_fit_transform_is_transform_bit_for_bit():
    """Stored vectors (fit_transform) must equal what drafts and updates compute (transform)."""
    from training.features import ArticleVectorizer

    records = [{"title": r["title"], "body": r["body"], "tags": r["tags"]} for r in PLANTED.records]
    vectorizer = ArticleVectorizer(min_df=1, n_components=4)
    s1, d1 = vectorizer.fit_transform(records)
    s2, d2 = vectorizer.transform(records)
    assert (s1 != s2).nnz == 0
    assert np.array_equal(d1, d2)
