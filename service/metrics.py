"""Prometheus metrics: requests, latency, unknown ids, model version and age; gunicorn multiprocess aware."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess, values
from prometheus_client.core import GaugeMetricFamily

from service.model import LoadedModel

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class _ModelAgeCollector:
    """Computes the served model's age at scrape time (a gauge cannot tick by itself)."""

    def __init__(self, current_model: Callable[[], LoadedModel | None]) -> None:
        self._current_model = current_model

    def collect(self) -> Iterator[GaugeMetricFamily]:
        model = self._current_model()
        if model is not None:
            yield GaugeMetricFamily("related_model_age_seconds",
                                    "Seconds since the served model version was created (scraping worker).",
                                    value=time.time() - model.created_at)


class Metrics:
    """The service's metrics; in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set) summed over workers.

    Parameters
    ----------
    current_model : callable
        Returns the served model, for the age gauge computed at scrape time.
    """

    def __init__(self, current_model: Callable[[], LoadedModel | None]) -> None:
        self.multiproc_dir = os.environ.get(MULTIPROC_ENV) or None
        if self.multiproc_dir and values.ValueClass.__name__ != "MmapedValue":
            raise RuntimeError(f"{MULTIPROC_ENV} was set after prometheus_client was imported; "
                               "set it before starting the server (related serve does)")
        if self.multiproc_dir:
            # a worker (re)booting after the directory was cleaned away must still start
            os.makedirs(self.multiproc_dir, exist_ok=True)
        self._current_model = current_model
        self.registry = CollectorRegistry()
        registry = None if self.multiproc_dir else self.registry
        self.requests = Counter("related_http_requests", "HTTP requests answered, by route, method and status.",
                                ["route", "method", "status"], registry=registry)
        self.latency = Histogram("related_http_request_duration_seconds",
                                 "Time to produce a response, by route.", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=registry)
        self.unknown_articles = Counter("related_unknown_article",
                                        "Requests for article ids not in the served model.", registry=registry)
        self.load_failures = Counter("related_model_load_failures",
                                     "Model versions refused (invalid manifest, checksum, arrays).",
                                     registry=registry)
        self.model_info = Gauge("related_model_info", "1 for the model version each worker serves.",
                                ["version"], registry=registry, multiprocess_mode="liveall")
        self.model_articles = Gauge("related_model_articles", "Articles in the served model.",
                                    registry=registry, multiprocess_mode="livemax")
        if registry is not None:
            registry.register(_ModelAgeCollector(current_model))
        self._served_version: str | None = None
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (route, method, str(status))
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.latency.labels(route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def model_loaded(self, model: LoadedModel) -> None:
        """Record that this worker now serves ``model``."""
        if self._served_version is not None:
            self.model_info.labels(self._served_version).set(0)
        self.model_info.labels(model.version).set(1)
        self.model_articles.set(model.n_articles)
        self._served_version = model.version

    def model_refused(self, version: str, message: str) -> None:
        """Record a refused model version."""
        self.load_failures.inc()

    def render(self) -> tuple[bytes, str]:
        """Return the exposition text and its content type (all workers in multiprocess mode)."""
        if self.multiproc_dir:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiproc_dir)
            registry.register(_ModelAgeCollector(self._current_model))
        else:
            registry = self.registry
        return generate_latest(registry), CONTENT_TYPE_LATEST


def child_exit(server: object, worker: object) -> None:
    """gunicorn ``child_exit`` hook: drop a dead worker's live gauges from the multiprocess files."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(worker.pid)
