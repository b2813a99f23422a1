"""Per-app service state (settings, model store, metrics) and the model-or-503 accessor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app

from service.errors import ApiError
from service.metrics import Metrics
from service.model import LoadedModel
from service.store import ModelStore

EXTENSION_KEY = "related"


@dataclass(frozen=True)
class ServiceState:
    """What the views need: typed settings, the model store and the metrics."""

    settings: dict[str, Any]
    store: ModelStore
    metrics: Metrics


def get_state() -> ServiceState:
    """Return the state of the current Flask app (set up by ``create_app``)."""
    return current_app.extensions[EXTENSION_KEY]


def require_model(state: ServiceState) -> LoadedModel:
    """Return the served model, or raise a 503 ``model_unavailable`` error while there is none.

    Parameters
    ----------
    state : ServiceState
        The app's state.

    Returns
    -------
    LoadedModel
        The version to answer this request with (kept for the whole request).
    """
    model = state.store.current()
    if model is None:
        retry = str(state.settings["retry_after"])
        raise ApiError(503, "model_unavailable", "No valid model version is loaded yet; retry later.",
                       headers={"Retry-After": retry})
    return model
