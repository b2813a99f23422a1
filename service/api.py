"""The data endpoints: related articles for a stored article (GET) and for a draft (POST)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import sklearn
from flask import Blueprint, Response, request

from service.errors import ApiError
from service.model import LoadedModel
from service.ranking import similar_to_row, similar_to_vectors
from service.responses import JSON_TYPE, CachedResponse, json_bytes, make_etag
from service.state import get_state, require_model

bp = Blueprint("api", __name__)
ARTICLE_ROUTE = "/articles/<path:article_id>/related"
MAX_TAGS = 100


def parse_k(values: list[Any], default: int, max_k: int, where: str = "query parameter k",
            from_text: bool = True) -> int:
    """Validate ``k`` given as query-string text (or, with ``from_text=False``, a JSON integer).

    Parameters
    ----------
    values : list
        Every value given for ``k`` (empty when absent).
    default : int
        Used when ``k`` is absent.
    max_k : int
        Largest allowed value.
    where : str
        Where ``k`` came from, for the error message.
    from_text : bool
        ``k`` is text of ASCII digits (query string); otherwise it must be a JSON integer.

    Returns
    -------
    int
        An integer in ``1..max_k``.

    Raises
    ------
    ApiError
        400 ``invalid_k`` when ``k`` is repeated, not an integer, or out of range.
    """
    if not values:
        return default
    if len(values) > 1:
        raise ApiError(400, "invalid_k", f"{where} is given {len(values)} times; give it once")
    raw = values[0]
    if from_text and isinstance(raw, str) and raw.isascii() and raw.isdigit():
        k = int(raw)
    elif not from_text and isinstance(raw, int) and not isinstance(raw, bool):
        k = raw
    else:
        shown = raw if len(repr(raw)) <= 40 else repr(raw)[:40] + "..."
        raise ApiError(400, "invalid_k", f"{where} must be an integer in 1..{max_k}, got {shown!r}")
    if not 1 <= k <= max_k:
        raise ApiError(400, "invalid_k", f"{where} must be an integer in 1..{max_k}, got {k}")
    return k


def _items(model: LoadedModel, rows: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
    items = []
    for row, score in zip(rows.tolist(), scores.tolist()):
        item = model.public_article(row)
        item["score"] = round(score, 6)
        items.append(item)
    return items


def _unknown(article_id: str) -> ApiError:
    shown = article_id if len(article_id) <= 80 else article_id[:80] + "..."
    return ApiError(404, "unknown_article", f"No article with id {shown!r} in the served model.")


@bp.get(ARTICLE_ROUTE)
def related_for_article(article_id: str) -> Response:
    """Related articles for a stored article, best first; cached as bytes per model version."""
    state = get_state()
    model = require_model(state)
    settings = state.settings
    k = parse_k(request.args.getlist("k"), settings["default_k"], settings["max_k"])
    row = model.row_of.get(article_id)
    if row is None:
        state.metrics.unknown_articles.inc()
        raise _unknown(article_id)
    query_key = f"{article_id}\x00k={k}"
    cached = model.responses.get(query_key)
    if cached is None:
        rows, scores = similar_to_row(model, row, k)
        body = json_bytes({"article": model.public_article(row), "model_version": model.version,
                           "related": _items(model, rows, scores)})
        cached = CachedResponse.build(body, make_etag(model.version, query_key), model.version,
                                      settings["cache_max_age"])
        model.responses.put(query_key, cached)
    # the raw key lets the WSGI fast path answer the next identical request without Flask
    model.responses.put((request.environ.get("PATH_INFO", ""), request.environ.get("QUERY_STRING", "")), cached)
    status, headers, body = cached.answer(request.headers.get("If-None-Match"))
    return Response(body, status=status, headers=list(headers))


def _parse_draft(model: LoadedModel, max_k: int, default_k: int) -> tuple[dict[str, Any], int]:
    try:
        payload = json.loads(request.get_data(cache=False))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"The request body is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_draft", f"The body must be a JSON object, got {type(payload).__name__}")
    text_fields = model.text_fields
    allowed = {*text_fields, "tags", "k"}
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise ApiError(400, "invalid_draft", f"Unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    record: dict[str, Any] = {}
    for name in text_fields:
        value = payload.get(name, "")
        if not isinstance(value, str):
            raise ApiError(400, "invalid_draft", f"Field {name!r} must be a string, got {type(value).__name__}")
        record[name] = value
    tags = payload.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ApiError(400, "invalid_draft", "Field 'tags' must be a list of strings")
    if len(tags) > MAX_TAGS:
        raise ApiError(400, "invalid_draft", f"Field 'tags' holds {len(tags)} tags; at most {MAX_TAGS}")
    record[getattr(model.vectorizer, "tag_field", "tags")] = tags
    k = parse_k([payload["k"]] if "k" in payload else [], default_k, max_k, where="field k", from_text=False)
    return record, k


@bp.post("/related")
def related_for_draft() -> Response:
    """Related articles for a draft that is not in the model, scored live against every stored vector."""
    state = get_state()
    model = require_model(state)
    record, k = _parse_draft(model, state.settings["max_k"], state.settings["default_k"])
    with sklearn.config_context(assume_finite=True):  # text in, finite by construction
        sparse, dense = model.vectorizer.transform([record])
    rows, scores = similar_to_vectors(model, sparse, dense, k)
    body = json_bytes({"model_version": model.version, "related": _items(model, rows, scores)})
    return Response(body, status=200, mimetype=JSON_TYPE,
                    headers={"X-Model-Version": model.version, "Cache-Control": "no-store"})
