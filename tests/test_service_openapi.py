"""The OpenAPI document is valid, covers exactly the app's routes, and real responses match it."""

from __future__ import annotations

import re

import pytest

openapi_spec_validator = pytest.importorskip(
    "openapi_spec_validator", reason="openapi-spec-validator (test dependency) is not installed")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (with openapi-spec-validator) is not installed")


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_document_is_valid_openapi(spec):
    openapi_spec_validator.validate(spec)
    assert spec["openapi"].startswith("3.")


def test_document_covers_exactly_the_routes(app, spec):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert documented == routes


def test_k_bounds_follow_the_settings(models_dir):
    from service import create_app

    spec = create_app({"models_dir": str(models_dir), "max_k": 7}).test_client().get("/openapi.json").get_json()
    parameters = spec["paths"]["/articles/{article_id}/related"]["get"]["parameters"]
    assert next(p for p in parameters if p["name"] == "k")["schema"]["maximum"] == 7


def check_against_spec(spec: dict, path: str, method: str, response) -> None:
    """Validate a test-client response's status and JSON body against the document."""
    operation = spec["paths"][path][method]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method.upper()} {path} answered undocumented {response.status_code}"
    content = documented.get("content", {})
    if response.status_code == 304:
        assert not content and response.data == b""
        return
    if "application/json" in content:
        schema = {**content["application/json"]["schema"], "components": spec["components"]}
        jsonschema.Draft202012Validator(schema).validate(response.get_json())
    for name in documented.get("headers", {}):
        assert name in response.headers, f"{name} documented but missing"


def test_responses_match_the_document(client, spec):
    cases = [
        ("/articles/{article_id}/related", "get", lambda: client.get("/articles/energy-0/related?k=3")),
        ("/articles/{article_id}/related", "get", lambda: client.get("/articles/a/b/related")),
        ("/articles/{article_id}/related", "get", lambda: client.get("/articles/nope/related")),
        ("/articles/{article_id}/related", "get", lambda: client.get("/articles/energy-0/related?k=0")),
        ("/related", "post", lambda: client.post("/related", json={"title": "oil", "body": "crude oil", "k": 2})),
        ("/related", "post", lambda: client.post("/related", json={"title": 3})),
        ("/related", "post", lambda: client.post("/related", data=b"x" * 200_000)),
        ("/healthz", "get", lambda: client.get("/healthz")),
        ("/readyz", "get", lambda: client.get("/readyz")),
        ("/model", "get", lambda: client.get("/model")),
        ("/metrics", "get", lambda: client.get("/metrics")),
        ("/openapi.json", "get", lambda: client.get("/openapi.json")),
    ]
    for path, method, call in cases:
        check_against_spec(spec, path, method, call())
    etag = client.get("/articles/energy-0/related?k=3").headers["ETag"]
    not_modified = client.get("/articles/energy-0/related?k=3", headers={"If-None-Match": etag})
    check_against_spec(spec, "/articles/{article_id}/related", "get", not_modified)


def test_not_ready_responses_match_the_document(tmp_path):
    from service import create_app

    client = create_app({"models_dir": str(tmp_path / "none")}).test_client()
    spec = client.get("/openapi.json").get_json()
    check_against_spec(spec, "/readyz", "get", client.get("/readyz"))
    check_against_spec(spec, "/model", "get", client.get("/model"))
    check_against_spec(spec, "/related", "post", client.post("/related", json={}))
    check_against_spec(spec, "/articles/{article_id}/related", "get", client.get("/articles/x/related"))
