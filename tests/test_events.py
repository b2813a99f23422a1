"""Tests of POST /events: validation, size and rate limits, and the daily JSON Lines event log."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.events import MAX_EVENTS_PER_REQUEST, EventLog, RateLimiter, parse_events
from tests.test_service_api import assert_error

CLICK = {"type": "click", "origin": "energy-0", "article": "energy-3", "position": 2,
         "model_version": "20240101T000000Z-abcdef12"}
TINY = {"type": "click", "origin": "a", "article": "b", "position": 1, "model_version": "v"}


@pytest.fixture
def events_dir(tmp_path: Path) -> Path:
    return tmp_path / "events"


@pytest.fixture
def app_config(models_dir: Path, events_dir: Path) -> dict:
    return {"models_dir": str(models_dir), "events_dir": str(events_dir), "TESTING": True}


def logged(events_dir: Path) -> list[dict]:
    """Every event line written so far, in order (and check each line is one JSON object)."""
    lines = []
    for path in sorted(events_dir.glob("events-*.jsonl")):
        text = path.read_bytes().decode("ascii")  # non-ASCII is escaped, so no line breaks inside values
        assert text.endswith("\n")
        lines.extend(json.loads(line) for line in text.split("\n")[:-1])
    return lines


def post(client, payload, **kwargs):
    data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload, separators=(",", ":"))
    return client.post("/events", data=data, **kwargs)


def test_click_event_is_appended_as_one_json_line(client, events_dir):
    before = datetime.now(timezone.utc)
    response = post(client, CLICK, content_type="text/plain;charset=UTF-8")  # what sendBeacon sends
    assert response.status_code == 202, response.data
    assert response.get_json() == {"accepted": 1}
    [path] = events_dir.iterdir()
    assert path.name in {f"events-{day:%Y-%m-%d}.jsonl" for day in (before, datetime.now(timezone.utc))}
    [line] = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    received = datetime.fromisoformat(record.pop("received_at").replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= received <= datetime.now(timezone.utc)
    assert record == CLICK
    assert list(record) == ["type", "origin", "article", "position", "model_version"]


def test_impression_batch_keeps_order(client, events_dir):
    batch = [{**CLICK, "type": "impression", "article": f"energy-{i}", "position": i} for i in range(1, 6)]
    response = post(client, batch)
    assert response.status_code == 202 and response.get_json() == {"accepted": 5}
    post(client, CLICK)
    records = logged(events_dir)
    assert [r["position"] for r in records] == [1, 2, 3, 4, 5, 2]
    assert [r["type"] for r in records] == ["impression"] * 5 + ["click"]


@pytest.mark.parametrize(("payload", "code", "fragment"), [
    (b"{not json", "invalid_json", "not valid UTF-8 JSON"),
    (b"\xff\xfe", "invalid_json", "not valid UTF-8 JSON"),
    ("42", "invalid_event", "got int"),
    ([], "invalid_event", "holds 0 events"),
    ([TINY] * (MAX_EVENTS_PER_REQUEST + 1), "invalid_event", f"holds {MAX_EVENTS_PER_REQUEST + 1} events"),
    ({**CLICK, "type": "view"}, "invalid_event", "field 'type' must be one of"),
    ({**CLICK, "type": ["click"]}, "invalid_event", "field 'type' must be one of"),
    ({k: v for k, v in CLICK.items() if k != "origin"}, "invalid_event", "missing field(s) ['origin']"),
    ({**CLICK, "extra": 1}, "invalid_event", "unknown field(s) ['extra']"),
    ({**CLICK, "position": 0}, "invalid_event", "'position' must be an integer in 1..1000"),
    ({**CLICK, "position": "2"}, "invalid_event", "'position' must be an integer"),
    ({**CLICK, "position": True}, "invalid_event", "'position' must be an integer"),
    ({**CLICK, "position": 2.0}, "invalid_event", "'position' must be an integer"),
    ({**CLICK, "article": ""}, "invalid_event", "'article' must be a non-empty string"),
    ({**CLICK, "origin": 7}, "invalid_event", "'origin' must be a non-empty string"),
    ({**CLICK, "article": "x" * 513}, "invalid_event", "at most 512"),
    ({**CLICK, "model_version": None}, "invalid_event", "'model_version' must be a non-empty string"),
    ([CLICK, {**CLICK, "position": -1}], "invalid_event", "event 2: field 'position'"),
])
def test_malformed_events_are_400_and_nothing_is_written(client, events_dir, payload, code, fragment):
    error = assert_error(post(client, payload), 400, code)
    assert fragment in error["message"]
    assert not events_dir.exists()


def test_oversized_body_is_413_and_nothing_is_written(client, events_dir):
    big = json.dumps({**CLICK, "origin": "x" * 9000})
    error = assert_error(post(client, big), 413, "event_too_large")
    assert "8192" in error["message"]
    assert not events_dir.exists()


def test_oversized_body_without_content_length_is_413(client, events_dir):
    import io

    body = json.dumps([{**CLICK, "origin": "o" * 100}] * 90).encode()  # sent like a chunked request
    assert len(body) > 8192
    response = client.post("/events", input_stream=io.BytesIO(body),
                           environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""})
    assert_error(response, 413, "event_too_large")
    assert not events_dir.exists()


def test_body_limit_is_configurable(models_dir, events_dir):
    from service import create_app

    client = create_app({"models_dir": str(models_dir), "events_dir": str(events_dir),
                         "events_max_body_bytes": 100}).test_client()
    assert len(json.dumps(CLICK)) > 100
    assert_error(post(client, CLICK), 413, "event_too_large")
    small = {**CLICK, "origin": "a", "article": "b", "model_version": "v"}
    assert len(json.dumps(small)) <= 100
    assert post(client, small).status_code == 202
    assert [r["origin"] for r in logged(events_dir)][-1] == "a"


def test_rate_limit_per_client(models_dir, events_dir):
    from service import create_app

    client = create_app({"models_dir": str(models_dir), "events_dir": str(events_dir),
                         "events_rate_limit": 3}).test_client()
    assert post(client, [CLICK, CLICK]).status_code == 202
    assert post(client, CLICK).status_code == 202
    response = post(client, CLICK)
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 20
    other = post(client, CLICK, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 202
    assert len(logged(events_dir)) == 4


def test_rate_limit_key_from_a_proxy_header_only_when_configured(models_dir, events_dir):
    from service import create_app

    def client_for(**settings):
        return create_app({"models_dir": str(models_dir), "events_dir": str(events_dir), "events_rate_limit": 1,
                           **settings}).test_client()

    proxied = client_for(events_client_header="X-Forwarded-For")
    for address in ("203.0.113.1", "198.51.100.9, 203.0.113.2"):
        assert post(proxied, CLICK, headers={"X-Forwarded-For": address}).status_code == 202
    assert post(proxied, CLICK, headers={"X-Forwarded-For": "spoofed, 203.0.113.2"}).status_code == 429
    direct = client_for()  # the header is ignored: readers cannot pick their own bucket
    assert post(direct, CLICK, headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 202
    assert post(direct, CLICK, headers={"X-Forwarded-For": "203.0.113.3"}).status_code == 429


def test_unwritable_log_directory_is_503(models_dir, tmp_path):
    from service import create_app

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the events directory should be")
    client = create_app({"models_dir": str(models_dir), "events_dir": str(blocker / "events")}).test_client()
    response = post(client, CLICK)
    assert_error(response, 503, "events_unavailable")
    assert response.headers["Retry-After"] == "60"


def test_events_need_no_model(tmp_path, events_dir):
    from service import create_app

    client = create_app({"models_dir": str(tmp_path / "empty"), "events_dir": str(events_dir)}).test_client()
    assert post(client, CLICK).status_code == 202
    assert len(logged(events_dir)) == 1


def test_only_post(client):
    assert_error(client.get("/events"), 405, "method_not_allowed")


def test_cors_for_allowed_origin(models_dir, events_dir):
    from service import create_app

    client = create_app({"models_dir": str(models_dir), "events_dir": str(events_dir),
                         "cors_origins": "https://news.example.org"}).test_client()
    origin = {"Origin": "https://news.example.org"}
    preflight = client.options("/events", headers={**origin, "Access-Control-Request-Method": "POST",
                                                   "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://news.example.org"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    response = post(client, CLICK, headers=origin, content_type="application/json")
    assert response.status_code == 202
    assert response.headers["Access-Control-Allow-Origin"] == "https://news.example.org"


def test_event_log_rotates_daily(tmp_path):
    days = iter([datetime(2024, 3, 1, 23, 59, 59, tzinfo=timezone.utc),
                 datetime(2024, 3, 2, 0, 0, 1, tzinfo=timezone.utc)])
    log = EventLog(tmp_path / "ev", clock=lambda: next(days))
    first = log.append([CLICK])
    second = log.append([CLICK, CLICK])
    assert (first.name, second.name) == ("events-2024-03-01.jsonl", "events-2024-03-02.jsonl")
    assert len(first.read_text().splitlines()) == 1 and len(second.read_text().splitlines()) == 2
    assert json.loads(second.read_text().splitlines()[0])["received_at"] == "2024-03-02T00:00:01.000Z"


def test_rate_limiter_refills_over_time():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one token a second, bursts of 60
    assert limiter.take("a", 60) == 0
    assert limiter.take("a", 1) == pytest.approx(1.0)
    now[0] = 2.5
    assert limiter.take("a", 2) == 0
    assert limiter.take("a", 1) == pytest.approx(0.5)
    assert limiter.take("a", 61) == float("inf")  # larger than the bucket: never
    assert RateLimiter(0).take("a", 10**6) == 0  # disabled


def test_rate_limiter_memory_is_bounded():
    limiter = RateLimiter(10, max_clients=3)
    for key in "abcde":
        limiter.take(key, 10)
    assert len(limiter._buckets) == 3
    assert limiter.take("a", 10) == 0  # forgotten, so it starts with a full bucket again


_ids = st.text(min_size=1, max_size=40)
_events = st.fixed_dictionaries({
    "type": st.sampled_from(["impression", "click"]), "origin": _ids, "article": _ids,
    "position": st.integers(1, 1000), "model_version": st.text(min_size=1, max_size=30)})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(_events, min_size=1, max_size=8))
def test_valid_events_round_trip_exactly(client, events_dir, batch):
    before = len(logged(events_dir)) if events_dir.exists() else 0
    assert post(client, batch).status_code == 202
    written = logged(events_dir)[before:]
    assert [{k: v for k, v in r.items() if k != "received_at"} for r in written] == batch


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=12)


@settings(max_examples=80, deadline=None)
@given(payload=_json_values | st.fixed_dictionaries({k: _json_values for k in CLICK}))
def test_arbitrary_json_is_accepted_only_when_valid(payload):
    from service.errors import ApiError

    try:
        events = parse_events(json.dumps(payload).encode())
    except ApiError as exc:
        assert exc.code == 400 and exc.description
    else:
        for event in events:
            assert list(event) == list(CLICK)
            assert event["type"] in {"impression", "click"}
            assert all(isinstance(event[k], str) and event[k] for k in ("origin", "article", "model_version"))
            assert type(event["position"]) is int and 1 <= event["position"] <= 1000


def test_event_responses_match_the_openapi_document(models_dir, events_dir):
    pytest.importorskip("jsonschema", reason="jsonschema (with openapi-spec-validator) is not installed")
    from service import create_app
    from tests.test_service_openapi import check_against_spec

    client = create_app({"models_dir": str(models_dir), "events_dir": str(events_dir),
                         "events_rate_limit": 2}).test_client()
    spec = client.get("/openapi.json").get_json()
    responses = [post(client, CLICK), post(client, {**CLICK, "position": 0}), post(client, "x" * 9000),
                 post(client, [CLICK, CLICK])]  # one token is left, two are asked for
    assert [response.status_code for response in responses] == [202, 400, 413, 429]
    for response in responses:
        check_against_spec(spec, "/events", "post", response)
