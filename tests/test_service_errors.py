"""Every failure path answers the one JSON error shape, and no input makes the service answer 500."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_service_api import assert_error

FAILURES = [
    ("get", "/nothing", {}, 404, "not_found"),
    ("get", "/articles//related", {}, 404, "not_found"),
    ("get", "/articles/energy-0/related/", {}, 404, "not_found"),
    ("get", "/articles/energy-0", {}, 404, "not_found"),
    ("get", "/articles/nope/related", {}, 404, "unknown_article"),
    ("get", "/articles/%FF%FE/related", {}, 404, "unknown_article"),
    ("get", "/articles/%00/related", {}, 404, "unknown_article"),
    ("get", "/articles/energy-0/related?k=abc", {}, 400, "invalid_k"),
    ("delete", "/healthz", {}, 405, "method_not_allowed"),
    ("get", "/related", {}, 405, "method_not_allowed"),
    ("post", "/articles/energy-0/related", {}, 405, "method_not_allowed"),
    ("put", "/related", {"json": {}}, 405, "method_not_allowed"),
    ("post", "/related", {"data": b"{"}, 400, "invalid_json"),
    ("post", "/related", {"json": {"title": 1}}, 400, "invalid_draft"),
    ("post", "/related", {"data": b"x" * 200_000}, 413, "request_entity_too_large"),
]


@pytest.mark.parametrize(("method", "url", "kwargs", "status", "code"), FAILURES)
def test_failure_paths_answer_the_error_shape(client, method, url, kwargs, status, code):
    response = getattr(client, method)(url, **kwargs)
    assert_error(response, status, code)
    assert response.headers["Cache-Control"] == "no-store"


def test_405_keeps_the_allow_header(client):
    response = client.delete("/healthz")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}


def test_head_of_unknown_route_is_404_without_body(client):
    response = client.head("/nothing")
    assert response.status_code == 404 and response.data == b""


def test_unexpected_errors_answer_500_in_the_shape_and_are_logged(app, client, monkeypatch, caplog):
    model = app.extensions["related"].store.model

    def explode(records):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(model.vectorizer, "transform", explode)
    with caplog.at_level(logging.ERROR):
        response = client.post("/related", json={"body": "oil"})
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in error["message"]
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


def test_503_answers_the_shape(tmp_path):
    from service import create_app

    client = create_app({"models_dir": str(tmp_path / "none")}).test_client()
    assert_error(client.get("/articles/x/related"), 503, "model_unavailable")
    assert_error(client.get("/readyz"), 503, "not_ready")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(article_id=st.text(min_size=1, max_size=300), k=st.one_of(st.none(), st.text(max_size=12),
                                                                 st.integers(-10**6, 10**6).map(str)))
def test_no_article_id_or_k_gives_500(client, article_id, k):
    url = f"/articles/{quote(article_id, safe='')}/related" + ("" if k is None else f"?k={quote(k, safe='')}")
    response = client.get(url)
    assert response.status_code in {200, 400, 404}, (url, response.data[:200])
    if response.status_code != 200:
        assert set(response.get_json()["error"]) == {"status", "code", "message"}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20)
DRAFTS = st.fixed_dictionaries({}, optional={
    "title": JSON_VALUES, "body": JSON_VALUES, "tags": JSON_VALUES, "k": JSON_VALUES, "extra": JSON_VALUES})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(DRAFTS, JSON_VALUES))
def test_no_json_body_gives_500(client, payload):
    response = client.post("/related", data=json.dumps(payload), content_type="application/json")
    assert response.status_code in {200, 400}, (payload, response.data[:200])
    if response.status_code == 400:
        assert response.get_json()["error"]["code"] in {"invalid_draft", "invalid_k"}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_no_bytes_body_gives_500(client, data):
    response = client.post("/related", data=data, content_type="application/json")
    assert response.status_code in {200, 400}
