"""WSGI middleware: request metrics for every route, and cached GET related answers served without Flask."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from service.api import ARTICLE_ROUTE
from service.metrics import Metrics
from service.responses import cors_headers
from service.store import ModelStore

ROUTE_ENVIRON_KEY = "related.route"
UNMATCHED_ROUTE = "<unmatched>"
RELATED_ROUTE = ARTICLE_ROUTE
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REASONS = {200: "200 OK", 304: "304 Not Modified"}

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class FastPathMiddleware:
    """Wrap the Flask WSGI app: answer cache hits of ``GET /articles/<id>/related`` directly.

    A hit is a (PATH_INFO, QUERY_STRING) pair the Flask view already answered with 200 for
    the served model version, so the bytes, ETag and headers are exactly what the view
    would produce. Everything else goes to Flask. Both paths are counted in the metrics.

    Parameters
    ----------
    app : WSGI callable
        The Flask ``wsgi_app``.
    store : ModelStore
        Gives the served model, whose response cache holds the answers.
    metrics : Metrics
        Where requests and latencies are counted.
    cors_origins : sequence of str
        Allowed CORS origins (see settings).
    """

    def __init__(self, app: WSGIApp, store: ModelStore, metrics: Metrics, cors_origins: tuple[str, ...]) -> None:
        self.app = app
        self.store = store
        self.metrics = metrics
        self.cors_origins = cors_origins

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "")
        if method == "GET":
            path = environ.get("PATH_INFO", "")
            if path.startswith("/articles/") and path.endswith("/related"):
                answer = self._cached(environ, path)
                if answer is not None:
                    status, headers, body = answer
                    start_response(_REASONS[status], headers)
                    self.metrics.observe(RELATED_ROUTE, "GET", status, time.perf_counter() - started)
                    return [body]
        seen: list[str] = []

        def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen.append(status)
            return start_response(status, headers, exc_info)

        result = self.app(environ, _start_response)
        status_code = int(seen[-1][:3]) if seen else 500
        route = environ.get(ROUTE_ENVIRON_KEY, UNMATCHED_ROUTE)
        label = method if method in KNOWN_METHODS else "other"
        self.metrics.observe(route, label, status_code, time.perf_counter() - started)
        return result

    def _cached(self, environ: dict[str, Any], path: str) -> tuple[int, list[tuple[str, str]], bytes] | None:
        model = self.store.current()
        if model is None:
            return None
        cached = model.responses.get((path, environ.get("QUERY_STRING", "")))
        if cached is None:
            return None
        status, headers, body = cached.answer(environ.get("HTTP_IF_NONE_MATCH"))
        extra = cors_headers(environ.get("HTTP_ORIGIN"), self.cors_origins)
        return status, [*headers, *extra], body
