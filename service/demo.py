"""The demo site: article list (GET /), article pages with the related box, and the widget's files."""

from __future__ import annotations

import json
import math
import re
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
from flask import Blueprint, Response, current_app, render_template, request, send_from_directory

from service.errors import ApiError
from service.model import LoadedModel
from service.state import get_state, require_model

bp = Blueprint("demo", __name__)
PAGE_SIZE = 20
MAX_QUERY_CHARS = 200
MAX_PAGE = 1_000_000
WIDGET_MAX_AGE = 300
# Demo pages load nothing from elsewhere; the widget's styles are a stylesheet, not inline.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_HTML = {"text/html": {"schema": {"type": "string"}}}
OPENAPI_PATHS: dict[str, Any] = {
    "/": {"get": {
        "operationId": "demoIndex", "summary": "Demo site: the served articles, newest first (HTML)",
        "parameters": [
            {"name": "q", "in": "query", "required": False, "description": "Words every listed title contains",
             "schema": {"type": "string", "maxLength": MAX_QUERY_CHARS}},
            {"name": "page", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}}],
        "responses": {"200": {"description": f"An HTML page of up to {PAGE_SIZE} articles", "content": _HTML},
                      "400": {"description": "Bad q or page (HTML page)", "content": _HTML},
                      "503": {"description": "No model loaded yet (HTML page)", "content": _HTML}}}},
    "/demo/articles/{article_id}": {"get": {
        "operationId": "demoArticle", "summary": "Demo site: one article with the related box (HTML)",
        "parameters": [{"name": "article_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The article page", "content": _HTML},
                      "404": {"description": "Unknown article id (HTML page)", "content": _HTML},
                      "503": {"description": "No model loaded yet (HTML page)", "content": _HTML}}}},
    "/widget.js": {"get": {
        "operationId": "widgetScript", "summary": "The embeddable related-articles widget (docs/embed.md)",
        "responses": {"200": {"description": "Plain JavaScript",
                              "content": {"text/javascript": {"schema": {"type": "string"}}}}}}},
    "/widget.css": {"get": {
        "operationId": "widgetStylesheet", "summary": "The widget's default styles (zero specificity)",
        "responses": {"200": {"description": "CSS", "content": {"text/css": {"schema": {"type": "string"}}}}}}},
}
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)]))\s+(?=[\"'“‘(]?[A-Z0-9])")


@dataclass(frozen=True)
class _Index:
    """Per-model listing data: rows newest first and their case-folded titles."""

    newest_first: np.ndarray
    titles: list[str]


_indexes: weakref.WeakKeyDictionary[LoadedModel, _Index] = weakref.WeakKeyDictionary()
_indexes_lock = threading.Lock()


def listing_index(model: LoadedModel) -> _Index:
    """Return (building once per model version) the newest-first order and searchable titles.

    Parameters
    ----------
    model : LoadedModel
        The served version.

    Returns
    -------
    _Index
        Rows sorted by publication time, newest first, undated last, ties by row; and each
        row's case-folded title.
    """
    with _indexes_lock:
        index = _indexes.get(model)
        if index is None:
            published = np.asarray(model.published, dtype=np.float64)
            key = np.where(np.isnan(published), -np.inf, published)
            order = np.argsort(-key, kind="stable")
            titles = [str(model.article(row).get("title") or "").casefold() for row in range(model.n_articles)]
            index = _indexes[model] = _Index(newest_first=order, titles=titles)
    return index


def search_rows(index: _Index, query: str) -> np.ndarray:
    """Rows (newest first) whose title contains every word of ``query``, case-insensitively.

    Parameters
    ----------
    index : _Index
        From :func:`listing_index`.
    query : str
        Words separated by white space; empty matches everything.

    Returns
    -------
    numpy.ndarray
        Matching rows, newest first.
    """
    words = query.casefold().split()
    if not words:
        return index.newest_first
    titles = index.titles
    return np.asarray([row for row in index.newest_first.tolist() if all(w in titles[row] for w in words)],
                      dtype=np.int64)


def article_body(model: LoadedModel, row: int) -> str | None:
    """Return the display body of ``row`` from texts.jsonl (None when the version has no texts).

    Parameters
    ----------
    model : LoadedModel
        The served version.
    row : int
        Article row.

    Returns
    -------
    str or None
        The stored body text.
    """
    reader = getattr(model, "text", None)
    if callable(reader):  # the service's own accessor, when the model offers one
        record = reader(row)
        return record.get("body") if isinstance(record, dict) else None
    texts, offsets_path = model.path / "texts.jsonl", model.path / "texts_offsets.npy"
    if not texts.is_file() or not offsets_path.is_file():
        return None
    offsets = np.load(offsets_path, mmap_mode="r", allow_pickle=False)
    if offsets.shape != (model.n_articles + 1,):
        raise ApiError(500, "invalid_model", f"{offsets_path}: shape {offsets.shape}, "
                       f"expected ({model.n_articles + 1},)")
    start, end = int(offsets[row]), int(offsets[row + 1])
    with open(texts, "rb") as handle:
        handle.seek(start)
        record = json.loads(handle.read(end - start))
    if record.get("id") != model.article_ids[row]:
        raise ApiError(500, "invalid_model", f"{texts}: line {row + 1} is not article {model.article_ids[row]!r}")
    return record.get("body")


def paragraphs(body: str | None, sentences_per_paragraph: int = 3) -> list[str]:
    """Split a body into paragraphs: at blank lines, or every few sentences when it has none.

    Parameters
    ----------
    body : str or None
        Stored body text.
    sentences_per_paragraph : int
        Sentences grouped per paragraph when the text has no paragraph breaks.

    Returns
    -------
    list of str
        Non-empty paragraphs with white space collapsed.
    """
    if not body or not body.strip():
        return []
    blocks = [" ".join(block.split()) for block in re.split(r"\n\s*\n", body) if block.strip()]
    if len(blocks) > 1:
        return blocks
    sentences = _SENTENCE_END.split(blocks[0])
    return [" ".join(sentences[i:i + sentences_per_paragraph])
            for i in range(0, len(sentences), sentences_per_paragraph)]


def display_date(value: Any) -> str | None:
    """Format an ISO 8601 date or date-time as e.g. ``13 November 2004`` (None when absent or unparsable)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return f"{when.day} {when:%B %Y}"


def safe_url(value: Any) -> str | None:
    """Return ``value`` when it is an absolute http(s) URL, else None (never a javascript: link)."""
    if isinstance(value, str) and urlsplit(value).scheme in {"http", "https"} and urlsplit(value).netloc:
        return value
    return None


def _page_number() -> int:
    values = request.args.getlist("page")
    if not values:
        return 1
    raw = values[0]
    if len(values) > 1 or not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise ApiError(400, "invalid_page", f"query parameter page must be given once, as an integer in "
                       f"1..{MAX_PAGE}, got {raw[:40]!r}")
    return int(raw)


def _entry(model: LoadedModel, row: int) -> dict[str, Any]:
    record = model.public_article(row)
    return {"id": record["id"], "title": record["title"] or record["id"], "tags": record["tags"] or [],
            "date": display_date(record["published_at"]), "published_at": record["published_at"]}


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html",
                    headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store",
                             "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"})


@bp.get("/")
def index() -> Response:
    """The served model's articles, newest first, paged, optionally filtered by title words."""
    model = require_model(get_state())
    query = request.args.get("q", "").strip()
    if len(query) > MAX_QUERY_CHARS:
        raise ApiError(400, "invalid_query", f"query parameter q is {len(query)} characters; "
                       f"at most {MAX_QUERY_CHARS}")
    page = _page_number()
    rows = search_rows(listing_index(model), query)
    pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
    shown = rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE].tolist()
    return _html(render_template(
        "demo_index.html", model=model, query=query, page=page, pages=pages, total=len(rows),
        articles=[_entry(model, row) for row in shown]))


@bp.get("/demo/articles/<path:article_id>")
def article(article_id: str) -> Response:
    """One article like a news page, with the related box rendered by the widget under it."""
    model = require_model(get_state())
    row = model.row_of.get(article_id)
    if row is None:
        shown = article_id if len(article_id) <= 80 else article_id[:80] + "..."
        raise ApiError(404, "unknown_article", f"No article with id {shown!r} in the served model.")
    record = model.article(row)
    source_url = safe_url(record.get("url"))
    source_label = unquote(source_url.split("://", 1)[1]) if source_url else None
    return _html(render_template(
        "demo_article.html", model=model, article=_entry(model, row), source_url=source_url,
        source_label=source_label, licence=record.get("license") or record.get("licence"),
        paragraphs=paragraphs(article_body(model, row)), k=get_state().settings["default_k"]))


@bp.errorhandler(ApiError)
def _demo_error(exc: ApiError) -> Response:
    """Demo pages answer errors as HTML pages (the API's JSON shape is for machines)."""
    response = _html(render_template("demo_error.html", status=exc.code, message=exc.description),
                     status=exc.code or 500)
    response.headers.update(exc.extra_headers)
    return response


def _static_file(name: str, mimetype: str) -> Response:
    folder = Path(current_app.static_folder or Path(__file__).parent / "static")
    response = send_from_directory(folder, name, mimetype=mimetype, max_age=WIDGET_MAX_AGE)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Access-Control-Allow-Origin"] = "*"  # public, credential-free files
    return response


@bp.get("/widget.js")
def widget_js() -> Response:
    """The embeddable widget (plain JavaScript, no dependencies)."""
    return _static_file("widget.js", "text/javascript")


@bp.get("/widget.css")
def widget_css() -> Response:
    """The widget's stylesheet, which widget.js links from the host page."""
    return _static_file("widget.css", "text/css")
