"""Tests of the data endpoints: GET /articles/<id>/related and POST /related, answers and bad input."""

from __future__ import annotations

import json
from urllib.parse import quote

import numpy as np
import pytest

from tests.conftest import ODD_IDS, TOPICS
from training.expansion import expand_queries

ARTICLE_KEYS = {"id", "title", "url", "published_at", "tags"}


def assert_error(response, status: int, code: str) -> dict:
    """Check the one error shape and return its inner object."""
    assert response.status_code == status, response.data[:300]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message"}
    assert body["error"]["status"] == status
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def url_for_id(article_id: str, query: str = "") -> str:
    return f"/articles/{quote(article_id, safe='/')}/related" + (f"?{query}" if query else "")


def served(app):
    return app.extensions["related"].store.model


# -- GET /articles/<id>/related ---------------------------------------------------------

@pytest.mark.parametrize("article_id", ["energy-0", "space-5", *ODD_IDS])
def test_related_for_article_shape_and_order(client, app, article_id):
    model = served(app)
    response = client.get(url_for_id(article_id, "k=5"))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"article", "model_version", "related"}
    assert body["article"]["id"] == article_id and set(body["article"]) == ARTICLE_KEYS
    assert body["model_version"] == model.version == response.headers["X-Model-Version"]
    related = body["related"]
    assert len(related) == 5
    assert all(set(item) == ARTICLE_KEYS | {"score", "reason"} for item in related)
    assert {item["reason"] for item in related} == {"similar"}
    ids = [item["id"] for item in related]
    assert article_id not in ids and len(set(ids)) == len(ids)
    assert all(i in model.row_of for i in ids)
    scores = [item["score"] for item in related]
    assert scores == sorted(scores, reverse=True)
    row = model.row_of[article_id]
    expected = [model.article_ids[r] for r in model.neighbors_indices[row, :5]]
    assert ids == expected
    assert response.headers["Cache-Control"] == "public, max-age=300"


def test_related_are_from_the_same_planted_topic(client):
    for topic in TOPICS:
        body = client.get(f"/articles/{topic}-0/related?k=5").get_json()
        assert [item["tags"] for item in body["related"]] == [[topic]] * 5


def test_default_k_and_max_k(client, app):
    assert len(client.get("/articles/energy-0/related").get_json()["related"]) == 5
    # k above the stored neighbour count (20 here) returns what is stored
    body = client.get("/articles/energy-0/related?k=50").get_json()
    assert len(body["related"]) == served(app).n_neighbors == 20


def test_configured_k_bounds(models_dir):
    from service import create_app

    client = create_app({"default_k": 2, "max_k": 3, "models_dir": str(models_dir)}).test_client()
    assert len(client.get("/articles/energy-0/related").get_json()["related"]) == 2
    assert client.get("/articles/energy-0/related?k=3").status_code == 200
    assert_error(client.get("/articles/energy-0/related?k=4"), 400, "invalid_k")


@pytest.mark.parametrize("article_id", [
    "nope", "energy-0/x", "../energy-0", "energy-0.", "ENERGY-0", "a/b/c", "ünknown", "x" * 10_000,
    "%00", "energy-0 ", "<script>", "..", "a\\b",
])
def test_unknown_article_is_404(client, article_id):
    error = assert_error(client.get(url_for_id(article_id)), 404, "unknown_article")
    assert len(error["message"]) < 200  # long ids are shortened in the message


@pytest.mark.parametrize("k", ["0", "-1", "51", "abc", "", "1.5", "1e1", " 5", "５", "99999999999999999999", "0x5"])
def test_bad_k_is_400(client, k):
    error = assert_error(client.get(f"/articles/energy-0/related?k={quote(k)}"), 400, "invalid_k")
    assert "k" in error["message"]


def test_repeated_k_is_400(client):
    assert_error(client.get("/articles/energy-0/related?k=1&k=2"), 400, "invalid_k")


def test_head_request(client):
    response = client.head("/articles/energy-0/related")
    assert response.status_code == 200 and response.data == b""
    assert response.headers["ETag"]


# -- ETag and 304 ------------------------------------------------------------------------

def test_etag_depends_on_query_and_version(client, app, tiny_corpus, train_tiny, models_dir):
    first = client.get("/articles/energy-0/related?k=3")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert client.get("/articles/energy-0/related?k=3").headers["ETag"] == etag
    assert client.get("/articles/energy-0/related?k=03").headers["ETag"] == etag  # same normalised query
    assert client.get("/articles/energy-0/related?k=3&utm=x").status_code == 400  # unknown_parameter
    assert client.get("/articles/energy-0/related?k=4").headers["ETag"] != etag
    assert client.get("/articles/energy-3/related?k=3").headers["ETag"] != etag
    train_tiny(tiny_corpus[0], models_dir, n_components=3)  # a new version
    app.extensions["related"].store.refresh()
    again = client.get("/articles/energy-0/related?k=3")
    assert again.headers["X-Model-Version"] != first.headers["X-Model-Version"]
    assert again.headers["ETag"] != etag


@pytest.mark.parametrize("header", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
def test_if_none_match_gives_304(client, header):
    etag = client.get("/articles/energy-0/related?k=3").headers["ETag"]
    for _ in range(2):  # the second time from the response cache (fast path)
        response = client.get("/articles/energy-0/related?k=3", headers={"If-None-Match": header.format(etag=etag)})
        assert response.status_code == 304
        assert response.data == b""
        assert response.headers["ETag"] == etag
        assert response.headers["X-Model-Version"]


def test_if_none_match_other_tag_gives_200(client):
    response = client.get("/articles/energy-0/related?k=3", headers={"If-None-Match": '"0000"'})
    assert response.status_code == 200 and response.get_json()["related"]


# -- the cached fast path ------------------------------------------------------------------

def test_repeated_request_is_answered_from_cache_without_flask(models_dir):
    from service import create_app

    app = create_app({"models_dir": str(models_dir)})
    calls = []
    app.before_request(lambda: calls.append(1))
    client = app.test_client()
    first = client.get("/articles/dots.in.id/related?k=4")
    second = client.get("/articles/dots.in.id/related?k=4")
    assert calls == [1]
    assert second.data == first.data
    assert second.headers["ETag"] == first.headers["ETag"]
    assert second.headers["Content-Length"] == str(len(first.data))
    client.get("/articles/dots.in.id/related?k=5")  # another query goes through Flask again
    assert calls == [1, 1]


def test_cache_disabled_still_answers(models_dir):
    from service import create_app

    client = create_app({"models_dir": str(models_dir), "cache_size": 0}).test_client()
    bodies = {client.get("/articles/energy-0/related").data for _ in range(3)}
    assert len(bodies) == 1


def test_cors_headers_on_both_paths(models_dir):
    from service import create_app

    client = create_app({"models_dir": str(models_dir), "cors_origins": "https://news.example.org"}).test_client()
    for _ in range(2):
        response = client.get("/articles/energy-0/related", headers={"Origin": "https://news.example.org"})
        assert response.headers["Access-Control-Allow-Origin"] == "https://news.example.org"
        assert "Origin" in response.headers["Vary"]
        other = client.get("/articles/energy-0/related", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
    preflight = client.options("/related", headers={"Origin": "https://news.example.org",
                                                    "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]


# -- POST /related ---------------------------------------------------------------------------

def test_draft_gets_related_articles_of_its_topic(client, app):
    draft = {"title": "Oil prices", "body": "crude oil barrel opec refinery pipeline gasoline", "tags": [], "k": 4}
    response = client.post("/related", json=draft)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"model_version", "related"}
    assert body["model_version"] == served(app).version == response.headers["X-Model-Version"]
    assert len(body["related"]) == 4
    assert all(item["tags"] == ["energy"] for item in body["related"])
    scores = [item["score"] for item in body["related"]]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0


def test_draft_scores_are_exact_against_every_stored_vector(client, app):
    model = served(app)
    draft = {"title": "Rocket launch", "body": "nasa satellite orbit launch mission football", "tags": ["space"]}
    sparse, dense = model.vectorizer.transform([draft])
    full = np.asarray(model.vectors_sparse.toarray(), dtype=np.float64)
    query = np.zeros(full.shape[1])
    query[: min(full.shape[1], sparse.shape[1])] = sparse.toarray()[0, : full.shape[1]]
    # The draft's latent part is expanded against the stored vectors, as training did.
    expansion = model.manifest["params"]["expansion"]
    assert expansion["neighbors"] > 0
    dense = expand_queries(sparse[:, : full.shape[1]], dense, model.vectors_sparse, np.asarray(model.vectors_dense),
                           expansion["neighbors"], expansion["alpha"])
    expected = full @ query + np.asarray(model.vectors_dense, dtype=np.float64) @ np.asarray(dense[0], dtype=np.float64)
    order = sorted(range(len(expected)), key=lambda r: (-expected[r], r))[:10]
    body = client.post("/related", json={**draft, "k": 10}).get_json()
    assert [item["id"] for item in body["related"]] == [model.article_ids[r] for r in order]
    assert np.allclose([item["score"] for item in body["related"]], expected[order], atol=1e-5)


def test_empty_draft_relates_to_nothing(client):
    body = client.post("/related", json={}).get_json()
    assert body["related"] == []


def test_draft_default_k(client):
    assert len(client.post("/related", json={"body": "election vote ballot"}).get_json()["related"]) == 5


@pytest.mark.parametrize(("data", "code"), [
    (b"{", "invalid_json"), (b"not json", "invalid_json"), (b"\xff\xfe", "invalid_json"), (b"", "invalid_json"),
    (b"[" * 50_000, "invalid_json"),
    (b"[]", "invalid_draft"), (b'"text"', "invalid_draft"), (b"3", "invalid_draft"), (b"null", "invalid_draft"),
    (b'{"title": 3}', "invalid_draft"), (b'{"body": ["a"]}', "invalid_draft"), (b'{"body": null}', "invalid_draft"),
    (b'{"tags": "energy"}', "invalid_draft"), (b'{"tags": [1]}', "invalid_draft"),
    (json.dumps({"tags": ["t"] * 101}).encode(), "invalid_draft"),
    (b'{"text": "unknown field"}', "invalid_draft"),
    (b'{"k": "5"}', "invalid_k"), (b'{"k": 5.0}', "invalid_k"), (b'{"k": true}', "invalid_k"),
    (b'{"k": 0}', "invalid_k"), (b'{"k": 51}', "invalid_k"), (b'{"k": -1}', "invalid_k"), (b'{"k": null}', "invalid_k"),
])
def test_bad_drafts_are_400(client, data, code):
    assert_error(client.post("/related", data=data, content_type="application/json"), 400, code)


def test_any_content_type_is_parsed_as_json(client):
    response = client.post("/related", data=b'{"body": "oil"}', content_type="text/plain")
    assert response.status_code == 200


def test_too_large_body_is_413(models_dir):
    from service import create_app

    client = create_app({"max_body_bytes": 1000, "models_dir": str(models_dir)}).test_client()
    assert client.post("/related", json={"body": "oil " * 200}).status_code == 200
    assert_error(client.post("/related", json={"body": "oil " * 300}), 413, "request_entity_too_large")


def test_too_large_body_with_default_limit(client):
    assert_error(client.post("/related", data=b"x" * 200_000, content_type="application/json"),
                 413, "request_entity_too_large")


# -- operational endpoints ------------------------------------------------------------------

def test_healthz_readyz_model(client, app):
    model = served(app)
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "model_version": model.version, "articles": model.n_articles}
    manifest = client.get("/model")
    assert manifest.get_json() == json.loads((model.path / "manifest.json").read_text())
    assert manifest.headers["X-Model-Version"] == model.version
