"""POST /events: validated, size- and rate-limited widget impression/click events, appended to daily JSONL logs."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from service.errors import ApiError
from service.responses import JSON_TYPE, json_bytes
from service.state import get_state

log = logging.getLogger(__name__)

bp = Blueprint("events", __name__)
EXTENSION_KEY = "related.events"
EVENT_TYPES = frozenset({"impression", "click"})
EVENT_FIELDS = ("type", "origin", "article", "position", "model_version")
MAX_EVENTS_PER_REQUEST = 100
MAX_ID_CHARS = 512
MAX_VERSION_CHARS = 128
MAX_POSITION = 1000

_EVENT_ERROR = {"content": {JSON_TYPE: {"schema": {"$ref": "#/components/schemas/Error"}}}}
OPENAPI_SCHEMAS: dict[str, Any] = {
    "Event": {"type": "object", "additionalProperties": False, "required": list(EVENT_FIELDS),
              "description": "One widget event; the log line adds received_at (UTC).",
              "properties": {"type": {"enum": sorted(EVENT_TYPES)},
                             "origin": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS,
                                        "description": "Article whose box showed the link"},
                             "article": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS,
                                         "description": "The related article shown or clicked"},
                             "position": {"type": "integer", "minimum": 1, "maximum": MAX_POSITION,
                                          "description": "1-based rank in the box"},
                             "model_version": {"type": "string", "minLength": 1, "maxLength": MAX_VERSION_CHARS}}},
}
_EVENT_BODY = {"oneOf": [{"$ref": "#/components/schemas/Event"},
                         {"type": "array", "minItems": 1, "maxItems": MAX_EVENTS_PER_REQUEST,
                          "items": {"$ref": "#/components/schemas/Event"}}]}
OPENAPI_PATHS: dict[str, Any] = {"/events": {"post": {
    "operationId": "postEvents", "summary": "Record widget impression and click events",
    "description": "Any content type is parsed as JSON (the widget's beacons send text/plain). Each event "
                   "becomes one line of events-YYYY-MM-DD.jsonl in the events directory; nothing is "
                   "written unless every event is valid.",
    "requestBody": {"required": True, "content": {JSON_TYPE: {"schema": _EVENT_BODY},
                                                  "text/plain": {"schema": _EVENT_BODY}}},
    "responses": {
        "202": {"description": "Every event was appended to the log", "content": {JSON_TYPE: {"schema": {
            "type": "object", "required": ["accepted"], "properties": {"accepted": {"type": "integer"}}}}}},
        "400": {"description": "Not JSON, or an invalid event (the message names which and why)", **_EVENT_ERROR},
        "413": {"description": "Body larger than events_max_body_bytes", **_EVENT_ERROR},
        "429": {"description": "More than events_rate_limit events a minute from this client",
                "headers": {"Retry-After": {"schema": {"type": "string"}}}, **_EVENT_ERROR},
        "503": {"description": "The event log cannot be written",
                "headers": {"Retry-After": {"schema": {"type": "string"}}}, **_EVENT_ERROR}}}}}


class RateLimiter:
    """A token bucket per client key: ``per_minute`` tokens a minute, bursts of up to ``per_minute``.

    Parameters
    ----------
    per_minute : int
        Refill rate and bucket size; 0 disables the limit.
    max_clients : int
        Buckets kept (least recently used dropped first), so memory stays bounded.
    clock : callable
        Monotonic time in seconds (injectable for tests).
    """

    def __init__(self, per_minute: int, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, tokens: int) -> float:
        """Spend ``tokens`` from ``key``'s bucket.

        Parameters
        ----------
        key : str
            Client key, e.g. its address.
        tokens : int
            Events in the request.

        Returns
        -------
        float
            0 when allowed (tokens spent); otherwise seconds until they would be (nothing spent).
        """
        if self.capacity <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            level, stamp = self._buckets.pop(key, (self.capacity, now))
            level = min(self.capacity, level + (now - stamp) * self.rate)
            wait = 0.0
            if tokens > level:
                wait = (tokens - level) / self.rate if tokens <= self.capacity else float("inf")
            else:
                level -= tokens
            self._buckets[key] = (level, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait


class EventLog:
    """Append events to ``directory/events-YYYY-MM-DD.jsonl`` (UTC day of receipt), one JSON object a line.

    Each request's lines are written with a single ``O_APPEND`` write, so gunicorn workers
    appending to the same file never interleave within a line; a new file starts each UTC
    day (daily rotation without a rotating handler racing across processes).

    Parameters
    ----------
    directory : str or Path
        Where the logs go; created when first needed.
    clock : callable
        Returns the current aware UTC datetime (injectable for tests).
    """

    def __init__(self, directory: str | Path,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.directory = Path(directory)
        self._clock = clock

    def path_for(self, when: datetime) -> Path:
        """Return the log file of ``when``'s UTC day."""
        return self.directory / f"events-{when.astimezone(timezone.utc):%Y-%m-%d}.jsonl"

    def append(self, events: list[dict[str, Any]]) -> Path:
        """Stamp ``events`` with ``received_at`` and append them; return the file written.

        Parameters
        ----------
        events : list of dict
            Validated events (see :func:`parse_events`).

        Returns
        -------
        Path
            The day's log file.
        """
        now = self._clock()
        stamp = now.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        # ASCII-only lines: no raw U+2028 or other characters that some readers take for line breaks
        data = "".join(json.dumps({"received_at": stamp, **event}, separators=(",", ":")) + "\n"
                       for event in events).encode("ascii")
        path = self.path_for(now)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        return path


def _invalid(where: str, message: str) -> ApiError:
    return ApiError(400, "invalid_event", f"{where}: {message}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def _check_text(event: dict[str, Any], name: str, limit: int, where: str) -> None:
    value = event[name]
    if not isinstance(value, str) or not value:
        raise _invalid(where, f"field {name!r} must be a non-empty string, got {_shown(value)}")
    if len(value) > limit:
        raise _invalid(where, f"field {name!r} is {len(value)} characters long; at most {limit}")


def validate_event(event: Any, where: str = "event") -> dict[str, Any]:
    """Check one event and return it with its fields in the canonical order.

    Parameters
    ----------
    event : Any
        A decoded JSON value.
    where : str
        How to name it in error messages, e.g. ``"event 3"``.

    Returns
    -------
    dict
        ``{"type", "origin", "article", "position", "model_version"}``.

    Raises
    ------
    ApiError
        400 ``invalid_event`` naming the event and field.
    """
    if not isinstance(event, dict):
        raise _invalid(where, f"must be a JSON object, got {type(event).__name__}")
    missing = [name for name in EVENT_FIELDS if name not in event]
    unknown = sorted(set(event) - set(EVENT_FIELDS))
    if missing or unknown:
        parts = [f"missing field(s) {missing}"] if missing else []
        parts += [f"unknown field(s) {unknown}"] if unknown else []
        raise _invalid(where, "; ".join(parts) + f"; expected exactly {list(EVENT_FIELDS)}")
    if not isinstance(event["type"], str) or event["type"] not in EVENT_TYPES:
        raise _invalid(where, f"field 'type' must be one of {sorted(EVENT_TYPES)}, got {_shown(event['type'])}")
    _check_text(event, "origin", MAX_ID_CHARS, where)
    _check_text(event, "article", MAX_ID_CHARS, where)
    _check_text(event, "model_version", MAX_VERSION_CHARS, where)
    position = event["position"]
    if isinstance(position, bool) or not isinstance(position, int) or not 1 <= position <= MAX_POSITION:
        raise _invalid(where, f"field 'position' must be an integer in 1..{MAX_POSITION}, got {_shown(position)}")
    return {name: event[name] for name in EVENT_FIELDS}


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """Decode a request body holding one event object or an array of them, all valid.

    Parameters
    ----------
    body : bytes
        The raw request body (any content type; the widget's beacons send text/plain).

    Returns
    -------
    list of dict
        The validated events, in order.

    Raises
    ------
    ApiError
        400 ``invalid_json`` or ``invalid_event``; nothing is accepted unless every event is valid.
    """
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"The request body is not valid UTF-8 JSON: {exc}") from None
    if isinstance(payload, dict):
        return [validate_event(payload)]
    if not isinstance(payload, list):
        raise _invalid("body", f"must be an event object or an array of events, got {type(payload).__name__}")
    if not 1 <= len(payload) <= MAX_EVENTS_PER_REQUEST:
        raise _invalid("body", f"holds {len(payload)} events; send 1..{MAX_EVENTS_PER_REQUEST}")
    return [validate_event(event, f"event {number}") for number, event in enumerate(payload, start=1)]


def _read_body(limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise ApiError(413, "event_too_large", f"The event body is {length} bytes; at most {limit} are accepted.")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise ApiError(413, "event_too_large", f"The event body exceeds {limit} bytes.")
    return body


def client_key(header: str) -> str:
    """Return the address the event rate limit counts against.

    Parameters
    ----------
    header : str
        The ``events_client_header`` setting: a header set by a trusted reverse proxy (its
        last comma-separated entry is used), or empty for the connection's address.

    Returns
    -------
    str
        The client address (``"unknown"`` when there is none).
    """
    if header:
        forwarded = request.headers.get(header, "").rsplit(",", 1)[-1].strip()
        if forwarded:
            return forwarded
    return request.remote_addr or "unknown"


@bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    """Create the app's event log and rate limiter from its settings."""
    settings = state.app.extensions["related"].settings
    state.app.extensions[EXTENSION_KEY] = (EventLog(settings["events_dir"]),
                                           RateLimiter(settings["events_rate_limit"]))


@bp.post("/events")
def post_events() -> Response:
    """Accept widget events: 202 ``{"accepted": n}`` once every one is appended to the day's log."""
    settings = get_state().settings
    event_log, limiter = current_app.extensions[EXTENSION_KEY]
    events = parse_events(_read_body(settings["events_max_body_bytes"]))
    wait = limiter.take(client_key(settings["events_client_header"]), len(events))
    if wait:
        retry = "60" if wait == float("inf") else str(max(1, int(wait + 0.999)))
        raise ApiError(429, "rate_limited", f"Too many events from this client; at most "
                       f"{settings['events_rate_limit']} a minute.", headers={"Retry-After": retry})
    try:
        event_log.append(events)
    except OSError as exc:
        log.error("cannot append %d event(s) to %s: %s", len(events), event_log.directory, exc)
        raise ApiError(503, "events_unavailable", "Events cannot be stored right now; retry later.",
                       headers={"Retry-After": "60"}) from None
    return Response(json_bytes({"accepted": len(events)}), status=202, mimetype=JSON_TYPE,
                    headers={"Cache-Control": "no-store"})
