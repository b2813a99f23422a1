"""Application factory: settings, logging, model store, blueprints, error handlers, fast path."""

from __future__ import annotations

import importlib
import logging
import logging.config
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, request

from service.errors import register_error_handlers
from service.fastpath import ROUTE_ENVIRON_KEY, UNMATCHED_ROUTE, FastPathMiddleware
from service.metrics import Metrics
from service.responses import cors_headers
from service.settings import load_settings
from service.state import EXTENSION_KEY, ServiceState
from service.store import ModelStore

# Modules whose ``bp`` blueprint create_app registers, in order. The reader-facing widget
# (service.demo, service.events) registers by adding its modules here.
BLUEPRINT_MODULES: tuple[str, ...] = ("service.api", "service.ops", "service.openapi",
                                      "service.events", "service.demo")


def configure_logging(level: str) -> None:
    """Configure the ``service`` loggers with dictConfig before the app exists.

    Logs go to stderr (gunicorn's error log stream) unless the root logger already has
    handlers (a host application or pytest), in which case records propagate to them.

    Parameters
    ----------
    level : str
        Level name of the ``service`` logger, e.g. ``"INFO"``.
    """
    host_configured = bool(logging.getLogger().handlers)
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"format": "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default",
                                "stream": "ext://sys.stderr"}},
        "loggers": {"service": {"level": level, "handlers": [] if host_configured else ["stderr"],
                                "propagate": host_configured}},
    })


def _split_config(config: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate service settings (lower case) from Flask config keys (upper case, e.g. TESTING)."""
    settings, flask_config = {}, {}
    for key, value in (config or {}).items():
        (flask_config if key.isupper() else settings)[key] = value
    return settings, flask_config


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the related-articles Flask app.

    Parameters
    ----------
    config : mapping, optional
        Setting overrides by name (see ``service.settings.SETTINGS``; they win over
        ``RELATED_*`` variables) and upper-case Flask config keys such as ``TESTING``.

    Returns
    -------
    Flask
        The app; its ``wsgi_app`` is wrapped by the metrics and cached-answer fast path.
    """
    settings_config, flask_config = _split_config(config)
    settings = load_settings(settings_config)
    configure_logging(settings["log_level"])
    app = Flask(__name__)
    app.config.update(flask_config)
    app.config["MAX_CONTENT_LENGTH"] = settings["max_body_bytes"]
    app.url_map.merge_slashes = False  # ids are opaque strings; never rewrite them

    store: ModelStore | None = None
    metrics = Metrics(lambda: store.model if store is not None else None)
    store = ModelStore(settings["models_dir"], reload_interval=settings["reload_interval"],
                       cache_size=settings["cache_size"], on_load=metrics.model_loaded,
                       on_failure=metrics.model_refused)
    if store.refresh() is None:
        app.logger.warning("no valid model in %s yet; answering 503 until one appears", settings["models_dir"])
    app.extensions[EXTENSION_KEY] = ServiceState(settings=settings, store=store, metrics=metrics)

    register_error_handlers(app)
    for module_name in BLUEPRINT_MODULES:
        app.register_blueprint(importlib.import_module(module_name).bp)

    @app.before_request
    def _label_route() -> None:
        rule = request.url_rule
        request.environ[ROUTE_ENVIRON_KEY] = rule.rule if rule is not None else UNMATCHED_ROUTE

    @app.after_request
    def _add_cors(response: Response) -> Response:
        origins = settings["cors_origins"]
        for name, value in cors_headers(request.headers.get("Origin"), origins):
            response.headers[name] = value
        if origins and request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, If-None-Match"
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    app.wsgi_app = FastPathMiddleware(app.wsgi_app, store, metrics, settings["cors_origins"])
    return app
