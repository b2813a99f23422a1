"""Service settings: declared once with defaults and help, read from RELATED_* variables."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "RELATED_"


@dataclass(frozen=True)
class Setting:
    """One service setting: its name, default, value type and help text."""

    name: str
    default: Any
    type: Callable[[str], Any]
    help: str

    @property
    def env(self) -> str:
        """Name of the environment variable that sets it."""
        return ENV_PREFIX + self.name.upper()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must be >= 0, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"must be >= 0, got {value}")
    return value


def _origins(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _dedupe(text: str) -> float | None:
    if text.strip() == "off":
        return None
    value = float(text)
    if not 0 < value <= 1:  # also rejects NaN
        raise ValueError(f"must be a number in (0, 1] or off, got {text!r}")
    return value


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError(f"unknown log level {text!r}")
    return level


SETTINGS: tuple[Setting, ...] = (
    Setting("models_dir", "models", str,
            "Directory holding the model versions and the CURRENT pointer (docs/model-format.md)."),
    Setting("default_k", 5, _positive_int,
            "Number of related articles returned when the request does not give k."),
    Setting("max_k", 50, _positive_int,
            "Largest k a request may ask for; larger values answer 400. "
            "At most the model's precomputed neighbour count is served by GET."),
    Setting("cors_origins", (), _origins,
            "Comma-separated origins allowed to call the API from a browser "
            "(e.g. https://news.example.org), or * for any; empty disables CORS headers."),
    Setting("max_body_bytes", 131072, _positive_int,
            "Largest request body accepted (bytes); larger bodies answer 413."),
    Setting("cache_max_age", 300, _non_negative_int,
            "Cache-Control max-age (seconds) of related-article responses."),
    Setting("cache_size", 4096, _non_negative_int,
            "Serialised GET responses kept per model version and worker (LRU); 0 disables."),
    Setting("reload_interval", 1.0, _non_negative_float,
            "Seconds between checks of models/CURRENT for a new version."),
    Setting("retry_after", 5, _non_negative_int,
            "Retry-After (seconds) sent with 503 answers while no model is loaded."),
    Setting("log_level", "INFO", _log_level,
            "Log level of the service loggers (DEBUG, INFO, WARNING, ERROR, CRITICAL)."),
    Setting("events_dir", "events", str,
            "Directory of the widget's impression/click logs, one JSON Lines file per UTC day "
            "(events-YYYY-MM-DD.jsonl); created when the first event arrives."),
    Setting("events_max_body_bytes", 8192, _positive_int,
            "Largest POST /events body accepted (bytes); larger bodies answer 413 and nothing is written."),
    Setting("events_rate_limit", 600, _non_negative_int,
            "Events accepted per client address per minute, per worker (token bucket, bursts up to the "
            "same number); more answer 429. 0 disables the limit."),
    Setting("events_client_header", "", str,
            "Request header in which your reverse proxy passes the reader's address (e.g. X-Real-IP, or "
            "X-Forwarded-For whose last entry is used) for the per-client event rate limit; empty uses "
            "the connection's address. Set it only behind a proxy that overwrites the header."),
    Setting("dedupe", 0.9, _dedupe,
            "Default near-duplicate threshold of the related lists: a candidate whose similarity to the "
            "query article or to an item already chosen is at least this is skipped (requests may pass "
            "dedupe=...); off disables. 0.9 was measured on Wikinews and Reuters (docs/rules.md)."),
    Setting("excluded_ids", (), _comma_list,
            "Comma-separated article ids never recommended (by any rule, pins and fallback included)."),
    Setting("excluded_tags", (), _comma_list,
            "Comma-separated tags (case-insensitive) whose articles are never recommended."),
)

_BY_NAME = {setting.name: setting for setting in SETTINGS}


def _coerce(setting: Setting, value: Any, where: str) -> Any:
    """Convert ``value`` to the setting's type, naming ``where`` it came from on error."""
    if setting.type in (_origins, _comma_list) and isinstance(value, (list, tuple)):
        return tuple(str(item) for item in value)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{where}: invalid value {value!r} for {setting.name}: expected text or a number")
    try:
        return setting.type(str(value))
    except ValueError as exc:
        raise ValueError(f"{where}: invalid value {value!r} for {setting.name}: {exc}") from None


def load_settings(config: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Resolve every setting: ``config`` overrides the environment, which overrides defaults.

    Parameters
    ----------
    config : mapping, optional
        Setting names (lower case) to values; unknown names raise ``ValueError``.
    environ : mapping, optional
        Environment to read ``RELATED_*`` variables from; ``os.environ`` by default.

    Returns
    -------
    dict
        Setting name to typed value.
    """
    environ = os.environ if environ is None else environ
    config = dict(config or {})
    unknown = sorted(name for name in config if name not in _BY_NAME)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(_BY_NAME)}")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name in config:
            values[setting.name] = _coerce(setting, config[setting.name], "config")
        elif setting.env in environ:
            values[setting.name] = _coerce(setting, environ[setting.env], setting.env)
        else:
            values[setting.name] = setting.default
    if values["default_k"] > values["max_k"]:
        raise ValueError(f"default_k ({values['default_k']}) must not exceed max_k ({values['max_k']})")
    return values


def settings_markdown() -> str:
    """Render the settings table as the Markdown kept in docs/settings.md.

    Returns
    -------
    str
        A Markdown table: environment variable, setting name, default, help.
    """
    lines = ["| Environment variable | Setting | Default | Meaning |", "| --- | --- | --- | --- |"]
    for setting in SETTINGS:
        default = setting.default
        shown = (f"`{','.join(default) if isinstance(default, tuple) else default}`"
                 if default not in ((), "") else "(empty)")
        lines.append(f"| `{setting.env}` | `{setting.name}` | {shown} | {setting.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m service.settings > the table in docs/settings.md
    print(settings_markdown(), end="")
