"""The one JSON error shape, {"error": {"status", "code", "message"}}, for every failure path."""

from __future__ import annotations

import json
import logging
import re

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


class ApiError(HTTPException):
    """An HTTP error with a machine-readable ``error_code`` and extra response headers.

    Parameters
    ----------
    status : int
        HTTP status code.
    error_code : str
        Stable snake_case code clients can branch on, e.g. ``unknown_article``.
    message : str
        Human-readable explanation naming the offending input.
    headers : dict, optional
        Extra headers, e.g. ``Retry-After``.
    """

    def __init__(self, status: int, error_code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(description=message)
        self.code = status
        self.error_code = error_code
        self.extra_headers = dict(headers or {})


def _code_from_name(exc: HTTPException) -> str:
    """``NotFound`` -> ``not_found``, ``RequestEntityTooLarge`` -> ``request_entity_too_large``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def error_body(status: int, code: str, message: str) -> bytes:
    """Serialise the error shape.

    Parameters
    ----------
    status : int
        HTTP status code.
    code : str
        Machine-readable error code.
    message : str
        Human-readable message.

    Returns
    -------
    bytes
        UTF-8 JSON ``{"error": {"status": ..., "code": ..., "message": ...}}``.
    """
    payload = {"error": {"status": status, "code": code, "message": message}}
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """Build a Flask response carrying the error shape."""
    response = Response(error_body(status, code, message), status=status, mimetype="application/json")
    response.headers.update(headers or {})
    response.headers["Cache-Control"] = "no-store"
    return response


def handle_http_exception(exc: HTTPException) -> Response:
    """Turn any HTTPException (routing 404, 405, 413, ApiError, ...) into the error shape."""
    status = exc.code or 500
    if isinstance(exc, ApiError):
        code, headers = exc.error_code, exc.extra_headers
    else:
        code, headers = _code_from_name(exc), {}
        # keep headers werkzeug computed, e.g. Allow on 405
        for name, value in exc.get_headers():
            if name.lower() not in {"content-type", "content-length"}:
                headers[name] = value
    message = exc.description or exc.name
    return error_response(status, code, message, headers)


def handle_unexpected(exc: Exception) -> Response:
    """Log an unhandled exception and answer 500 in the error shape (never a traceback)."""
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    log.exception("unhandled error")
    return error_response(500, "internal_error", InternalServerError.description)


def register_error_handlers(app: Flask) -> None:
    """Make every failure of ``app`` answer the one error shape."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
