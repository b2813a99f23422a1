"""Tests of /metrics in one process: request counts by route and status, latency, unknown ids, model gauges."""

from __future__ import annotations

import shutil

from prometheus_client.parser import text_string_to_metric_families

ROUTE = "/articles/<path:article_id>/related"


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_latency_and_unknown_ids_are_counted(client):
    for _ in range(3):
        client.get("/articles/energy-0/related?k=2")  # first through Flask, then the cache
    client.get("/articles/nope/related")
    client.get("/articles/energy-0/related?k=0")
    client.get("/no/such/route")
    client.post("/related", json={"body": "oil"})
    samples = scrape(client)
    assert value(samples, "related_http_requests_total", route=ROUTE, method="GET", status="200") == 3
    assert value(samples, "related_http_requests_total", route=ROUTE, method="GET", status="404") == 1
    assert value(samples, "related_http_requests_total", route=ROUTE, method="GET", status="400") == 1
    assert value(samples, "related_http_requests_total", route="<unmatched>", method="GET", status="404") == 1
    assert value(samples, "related_http_requests_total", route="/related", method="POST", status="200") == 1
    assert value(samples, "related_unknown_article_total") == 1
    assert value(samples, "related_http_request_duration_seconds_count", route=ROUTE) == 5
    assert value(samples, "related_http_request_duration_seconds_bucket", route=ROUTE, le="+Inf") == 5
    assert value(samples, "related_http_request_duration_seconds_sum", route=ROUTE) > 0


def test_304_is_counted_with_its_status(client):
    etag = client.get("/articles/energy-0/related").headers["ETag"]
    client.get("/articles/energy-0/related", headers={"If-None-Match": etag})
    samples = scrape(client)
    assert value(samples, "related_http_requests_total", route=ROUTE, method="GET", status="304") == 1


def test_odd_methods_share_one_label(client):
    client.open("/healthz", method="BREW")
    samples = scrape(client)
    assert value(samples, "related_http_requests_total", route="<unmatched>", method="other", status="405") == 1


def test_model_gauges_and_load_failures(app, client, models_dir):
    store = app.extensions["related"].store
    version = store.model.version
    samples = scrape(client)
    assert value(samples, "related_model_info", version=version) == 1
    assert value(samples, "related_model_articles") == 32
    assert 0 <= value(samples, "related_model_age_seconds") < 3600
    assert value(samples, "related_model_load_failures_total") == 0
    bad = "20990101T000000Z-00000000"
    shutil.copytree(store.model.path, models_dir / bad)
    (models_dir / "CURRENT").write_text(bad)
    store.refresh()
    samples = scrape(client)
    assert value(samples, "related_model_load_failures_total") == 1
    assert value(samples, "related_model_info", version=version) == 1


def test_multiprocess_mode_survives_a_removed_directory(tmp_path, monkeypatch):
    """A worker booting after the metrics directory was cleaned away recreates it."""
    from prometheus_client import values

    from service.metrics import Metrics

    directory = tmp_path / "gone"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())
    metrics = Metrics(lambda: None)
    metrics.observe("/x", "GET", 200, 0.001)
    body, _ = metrics.render()
    assert b'related_http_requests_total{method="GET",route="/x",status="200"} 1.0' in body
    assert directory.is_dir()
