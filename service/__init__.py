"""HTTP service for related articles: ``create_app`` builds the Flask app (see service.app)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the related-articles Flask app; see :func:`service.app.create_app`.

    Imported lazily so that ``related serve`` can set ``PROMETHEUS_MULTIPROC_DIR`` before
    prometheus_client is first imported.
    """
    from service.app import create_app as _create_app

    return _create_app(config)
