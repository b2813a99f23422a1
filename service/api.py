"""The data endpoints: related articles for a stored article (GET) and for a draft (POST)."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from typing import Any

import scipy.sparse as sp
import sklearn
from flask import Blueprint, Response, request

from service.errors import ApiError
from service.explain import explanation
from service.model import LoadedModel
from service.params import RULE_PARAMETERS, RuleParams, parse_rules
from service.ranking import score_vectors
from service.responses import JSON_TYPE, CachedResponse, json_bytes, make_etag
from service.rules import Item, Query, rank, stored_query
from service.state import get_state, require_model

bp = Blueprint("api", __name__)
ARTICLE_ROUTE = "/articles/<path:article_id>/related"
MAX_TAGS = 100
#: Draft fields besides the text fields and the rule parameters.
DRAFT_FIELDS = ("tags", "k", "published_at", "related_ids", "metadata")
#: Time-dependent answers (an undated query under a freshness rule) use "now" rounded to this.
NOW_STEP_S = 3600


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


def _items(model: LoadedModel, items: list[Item], query: Query, explain: bool) -> list[dict[str, Any]]:
    out = []
    for item in items:
        shown = model.public_article(item.row)
        shown["score"] = round(item.score, 6)
        shown["reason"] = item.reason
        if explain:
            shown["explanation"] = explanation(model, query.vector(model), query.tags, item.row, shown["tags"])
        out.append(shown)
    return out


def _rank(model: LoadedModel, query: Query, params: RuleParams, settings: dict[str, Any]) -> list[Item]:
    now = math.floor(time.time() / NOW_STEP_S) * NOW_STEP_S
    return rank(model, query, params, settings["excluded_ids"], settings["excluded_tags"], now=now)


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
    rules = {name: request.args.getlist(name) for name in request.args if name != "k"}
    params = parse_rules(rules, min(k, model.n_neighbors or k), settings["dedupe"], from_text=True)
    row = model.row_of.get(article_id)
    if row is None:
        state.metrics.unknown_articles.inc()
        raise _unknown(article_id)
    # an undated article under a freshness rule is ranked against "now" (rounded): key on it
    moving = params.uses_time and not math.isfinite(float(model.published[row]))
    query_key = f"{article_id}\x00{params.cache_key()}" + (f"\x00now={time.time() // NOW_STEP_S:.0f}" if moving else "")
    cached = model.responses.get(query_key)
    if cached is None:
        query = stored_query(model, row)
        related = _items(model, _rank(model, query, params, settings), query, params.explain)
        body = json_bytes({"article": model.public_article(row), "model_version": model.version,
                           "related": related})
        cached = CachedResponse.build(body, make_etag(model.version, query_key), model.version,
                                      settings["cache_max_age"])
        model.responses.put(query_key, cached)
    if not moving:
        # the raw key lets the WSGI fast path answer the next identical request without Flask
        model.responses.put((request.environ.get("PATH_INFO", ""), request.environ.get("QUERY_STRING", "")), cached)
    status, headers, body = cached.answer(request.headers.get("If-None-Match"))
    return Response(body, status=status, headers=list(headers))


def _published_ts(value: Any) -> float:
    """An ISO 8601 date or date-time (naive means UTC) as epoch seconds; NaN when absent."""
    if value is None:
        return math.nan
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise ApiError(400, "invalid_draft", f"Field 'published_at' must be an ISO 8601 date or date-time, "
                       f"got {str(value)[:40]!r}")
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _string_list(payload: dict[str, Any], name: str) -> list[str]:
    values = payload.get(name, [])
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise ApiError(400, "invalid_draft", f"Field {name!r} must be a list of strings")
    if len(values) > MAX_TAGS:
        raise ApiError(400, "invalid_draft", f"Field {name!r} holds {len(values)} items; at most {MAX_TAGS}")
    return values


def _parse_draft(model: LoadedModel, settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], RuleParams]:
    try:
        payload = json.loads(request.get_data(cache=False))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"The request body is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_draft", f"The body must be a JSON object, got {type(payload).__name__}")
    text_fields = model.text_fields
    allowed = {*text_fields, *DRAFT_FIELDS, *RULE_PARAMETERS}
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise ApiError(400, "invalid_draft", f"Unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    record: dict[str, Any] = {}
    for name in text_fields:
        value = payload.get(name, "")
        if not isinstance(value, str):
            raise ApiError(400, "invalid_draft", f"Field {name!r} must be a string, got {type(value).__name__}")
        record[name] = value
    tags = _string_list(payload, "tags")
    record[getattr(model.vectorizer, "tag_field", "tags")] = tags
    metadata = payload.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ApiError(400, "invalid_draft", f"Field 'metadata' must be an object, got {type(metadata).__name__}")
    k = parse_k([payload["k"]] if "k" in payload else [], settings["default_k"], settings["max_k"],
                where="field k", from_text=False)
    params = parse_rules({name: [payload[name]] for name in RULE_PARAMETERS if name in payload}, k,
                         settings["dedupe"], from_text=False)
    about = {"published": _published_ts(payload.get("published_at")), "tags": tuple(tags),
             "record": {**metadata, "tags": tags}, "related_ids": tuple(_string_list(payload, "related_ids"))}
    return record, about, params


@bp.post("/related")
def related_for_draft() -> Response:
    """Related articles for a draft that is not in the model, scored live against every stored vector."""
    state = get_state()
    model = require_model(state)
    record, about, params = _parse_draft(model, state.settings)
    with sklearn.config_context(assume_finite=True):  # text in, finite by construction
        sparse, dense = model.vectorizer.transform([record])
    query = Query(row=None, sparse=sp.csr_matrix(sparse), scores_of=lambda: score_vectors(model, sparse, dense),
                  **about)
    related = _items(model, _rank(model, query, params, state.settings), query, params.explain)
    body = json_bytes({"model_version": model.version, "related": related})
    return Response(body, status=200, mimetype=JSON_TYPE,
                    headers={"X-Model-Version": model.version, "Cache-Control": "no-store"})
