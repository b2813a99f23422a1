"""The OpenAPI 3.1 document of every endpoint, served at /openapi.json (validated in the tests)."""

from __future__ import annotations

import sys
from typing import Any

from flask import Blueprint, Response, current_app

from service.params import SCHEMAS as RULE_SCHEMAS
from service.params import openapi_parameters
from service.responses import JSON_TYPE, json_bytes
from service.state import get_state

bp = Blueprint("openapi", __name__)

_STR_OR_NULL = {"type": ["string", "null"]}
_ARTICLE = {
    "type": "object",
    "required": ["id", "title", "url", "published_at", "tags"],
    "properties": {"id": {"type": "string"}, "title": _STR_OR_NULL, "url": _STR_OR_NULL,
                   "published_at": {**_STR_OR_NULL, "description": "ISO 8601 date or date-time"},
                   "tags": {"type": ["array", "null"], "items": {"type": "string"}}},
}
_SCHEMAS: dict[str, Any] = {
    "Article": _ARTICLE,
    "RelatedArticle": {"allOf": [{"$ref": "#/components/schemas/Article"}, {
        "type": "object", "required": ["score", "reason"],
        "properties": {"score": {"type": "number", "description": "The value the item was ranked by: the model "
                                 "similarity, times the age decay (half_life_days), less the diversity penalty"},
                       "reason": {"enum": ["editor", "similar", "fallback"],
                                  "description": "editor: a pin from related_ids; similar: ranked by the model; "
                                                 "fallback: filled in by the fallback rule"},
                       "explanation": {"$ref": "#/components/schemas/Explanation"}}}]},
    "Explanation": {"type": "object", "required": ["shared_terms", "shared_tags"],
                    "description": "Only with explain=true",
                    "properties": {"shared_terms": {"type": "array", "items": {
                        "type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}],
                        "minItems": 2, "maxItems": 2}, "description": "[term, weight], strongest first"},
                        "shared_tags": {"type": "array", "items": {"type": "string"}}}},
    "RelatedList": {"type": "array", "description": "Best first; never the query article",
                    "items": {"$ref": "#/components/schemas/RelatedArticle"}},
    "RelatedForArticle": {"type": "object", "required": ["article", "model_version", "related"],
                          "properties": {"article": {"$ref": "#/components/schemas/Article"},
                                         "model_version": {"type": "string"},
                                         "related": {"$ref": "#/components/schemas/RelatedList"}}},
    "RelatedForDraft": {"type": "object", "required": ["model_version", "related"],
                        "properties": {"model_version": {"type": "string"},
                                       "related": {"$ref": "#/components/schemas/RelatedList"}}},
    "Draft": {"type": "object", "additionalProperties": False,
              "description": "An unsaved story. Text fields are the model's (title and body by default).",
              "properties": {"title": {"type": "string"}, "body": {"type": "string"},
                             "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 100},
                             "k": {"type": "integer", "minimum": 1},
                             "published_at": {"type": "string", "description": "ISO 8601 date or date-time "
                                              "(UTC when no offset): the reference of the freshness rules"},
                             "related_ids": {"type": "array", "items": {"type": "string"}, "maxItems": 100,
                                             "description": "Editor pins, put first in this order"},
                             "metadata": {"type": "object", "description": "Metadata fields read by same=FIELD"},
                             **RULE_SCHEMAS}},
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["status", "code", "message"],
        "properties": {"status": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"}}}}},
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
    "Ready": {"type": "object", "required": ["status", "model_version", "articles"],
              "properties": {"status": {"const": "ready"}, "model_version": {"type": "string"},
                             "articles": {"type": "integer"}}},
    "Manifest": {"type": "object", "required": ["format_version", "version", "files"],
                 "description": "The served manifest.json (docs/model-format.md)"},
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {JSON_TYPE: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description,
                                "content": {JSON_TYPE: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}
    if headers:
        response["headers"] = headers
    return response


def build_spec(max_k: int, default_k: int, extra_paths: dict[str, Any] | None = None,
               extra_schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document for this service.

    Parameters
    ----------
    max_k, default_k : int
        The configured bounds of ``k``, written into the parameter schemas.
    extra_paths, extra_schemas : dict, optional
        Paths and component schemas contributed by other blueprints (see
        :func:`contributions`); a clash with a built-in name raises ``ValueError``.

    Returns
    -------
    dict
        The OpenAPI document (JSON-serialisable).
    """
    header = {"schema": {"type": "string"}}
    version_header = {"X-Model-Version": {**header, "description": "Model version that answered"}}
    cache_headers = {**version_header, "ETag": {**header, "description": "Changes with model version and query"},
                     "Cache-Control": header}
    k_schema = {"type": "integer", "minimum": 1, "maximum": max_k, "default": default_k}
    unavailable = _error("No valid model is loaded yet (see Retry-After)")
    spec_paths: dict[str, Any] = {
        "/articles/{article_id}/related": {"get": {
            "operationId": "relatedForArticle", "summary": "Related articles for a stored article",
            "parameters": [
                {"name": "article_id", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "k", "in": "query", "required": False, "schema": k_schema},
                *openapi_parameters(),
                {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}}],
            "responses": {"200": _ok("Related articles, best first", "RelatedForArticle", cache_headers),
                          "304": {"description": "Not modified (If-None-Match matched the ETag)",
                                  "headers": cache_headers},
                          "400": _error("k or a rule parameter is invalid (invalid_k, invalid_parameter) "
                                        "or unknown (unknown_parameter)"),
                          "404": _error("Unknown article id"), "503": unavailable}}},
        "/related": {"post": {
            "operationId": "relatedForDraft", "summary": "Related articles for an unsaved draft",
            "requestBody": {"required": True, "content": {JSON_TYPE: {"schema": {
                "allOf": [{"$ref": "#/components/schemas/Draft"},
                          {"properties": {"k": {"maximum": max_k, "default": default_k}}}]}}}},
            "responses": {"200": _ok("Related articles, best first", "RelatedForDraft", version_header),
                          "400": _error("Body is not JSON, has wrong types or an invalid rule parameter"),
                          "413": _error("Body larger than the limit"), "503": unavailable}}},
        "/healthz": {"get": {"operationId": "healthz", "summary": "The process is alive",
                             "responses": {"200": _ok("Alive", "Health")}}},
        "/readyz": {"get": {"operationId": "readyz", "summary": "A valid model is loaded",
                            "responses": {"200": _ok("Ready", "Ready", version_header),
                                          "503": _error("Not ready")}}},
        "/model": {"get": {"operationId": "model", "summary": "The served model manifest",
                           "responses": {"200": _ok("Manifest", "Manifest", version_header), "503": unavailable}}},
        "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics",
                             "responses": {"200": {"description": "Prometheus text format",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document",
                                  "responses": {"200": {"description": "OpenAPI 3.1 document",
                                                        "content": {JSON_TYPE: {"schema": {"type": "object"}}}}}}},
    }
    for name, extra, base in (("path", extra_paths, spec_paths), ("schema", extra_schemas, _SCHEMAS)):
        clash = sorted(set(extra or {}) & set(base))
        if clash:
            raise ValueError(f"OpenAPI {name}(s) {clash} are defined twice")
    spec_paths.update(extra_paths or {})
    default_errors = {"404": _error("Unknown route"), "405": _error("Method not allowed"),
                      "500": _error("Unexpected error")}
    for operations in spec_paths.values():
        for operation in operations.values():
            for status, response in default_errors.items():
                operation["responses"].setdefault(status, response)
    return {"openapi": "3.1.0",
            "info": {"title": "related-articles", "version": "1",
                     "description": "Related articles for news stories. Every error answers "
                                    '{"error": {"status", "code", "message"}}.'},
            "paths": spec_paths, "components": {"schemas": {**_SCHEMAS, **(extra_schemas or {})}}}


def contributions(blueprint_modules: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Collect ``OPENAPI_PATHS`` and ``OPENAPI_SCHEMAS`` from the modules of other blueprints.

    A blueprint module documents its own endpoints by defining those two dicts (OpenAPI path
    items and component schemas); every route must be documented (a test checks it).

    Parameters
    ----------
    blueprint_modules : list of str
        Import names of the registered blueprints' modules.

    Returns
    -------
    (paths, schemas) : tuple of dict
    """
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for name in blueprint_modules:
        module = sys.modules.get(name)
        paths.update(getattr(module, "OPENAPI_PATHS", {}))
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    return paths, schemas


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """Serve the OpenAPI document for the configured k bounds, with other blueprints' paths."""
    settings = get_state().settings
    others = [b.import_name for b in current_app.blueprints.values() if b.import_name != __name__]
    paths, schemas = contributions(others)
    body = json_bytes(build_spec(settings["max_k"], settings["default_k"], paths, schemas))
    return Response(body, mimetype=JSON_TYPE, headers={"Cache-Control": "public, max-age=300"})
