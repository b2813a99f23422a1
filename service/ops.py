"""Operational endpoints: liveness, readiness, the served manifest and Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response

from service.errors import ApiError
from service.responses import JSON_TYPE, json_bytes
from service.state import get_state, require_model

bp = Blueprint("ops", __name__)


def _json(payload: object, **headers: str) -> Response:
    return Response(json_bytes(payload), mimetype=JSON_TYPE,
                    headers={"Cache-Control": "no-store", **{k.replace("_", "-"): v for k, v in headers.items()}})


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive (says nothing about the model)."""
    return _json({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """200 with the model version when a valid model is loaded, 503 otherwise."""
    state = get_state()
    model = state.store.current()
    if model is None:
        refused = len(state.store.failures)
        detail = f" ({refused} version(s) refused; see the log)" if refused else ""
        raise ApiError(503, "not_ready", f"No valid model version is loaded yet{detail}.",
                       headers={"Retry-After": str(state.settings["retry_after"])})
    return _json({"status": "ready", "model_version": model.version, "articles": model.n_articles},
                 X_Model_Version=model.version)


@bp.get("/model")
def model_manifest() -> Response:
    """The manifest of the served model version."""
    model = require_model(get_state())
    return _json(model.manifest, X_Model_Version=model.version)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition, summed over gunicorn workers in multiprocess mode."""
    state = get_state()
    state.store.current()  # let a scrape notice a new version too
    body, content_type = state.metrics.render()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
