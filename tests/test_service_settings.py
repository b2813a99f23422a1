"""Tests of the service settings: precedence, typing, clear errors, and that all are documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.settings import SETTINGS, load_settings, settings_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_without_environment():
    values = load_settings(environ={})
    assert values == {s.name: s.default for s in SETTINGS}
    assert values["default_k"] == 5 and values["max_k"] == 50


def test_environment_is_read_and_typed():
    env = {"RELATED_MAX_K": "20", "RELATED_CORS_ORIGINS": " https://a.example , https://b.example ",
           "RELATED_RELOAD_INTERVAL": "0.25", "RELATED_LOG_LEVEL": "debug"}
    values = load_settings(environ=env)
    assert values["max_k"] == 20
    assert values["cors_origins"] == ("https://a.example", "https://b.example")
    assert values["reload_interval"] == 0.25
    assert values["log_level"] == "DEBUG"


def test_config_overrides_environment():
    values = load_settings({"max_k": 7, "default_k": "3"}, environ={"RELATED_MAX_K": "20"})
    assert values["max_k"] == 7 and values["default_k"] == 3


@pytest.mark.parametrize(("env", "fragment"), [
    ({"RELATED_MAX_K": "abc"}, "RELATED_MAX_K"),
    ({"RELATED_MAX_K": "0"}, "must be >= 1"),
    ({"RELATED_DEFAULT_K": "-1"}, "RELATED_DEFAULT_K"),
    ({"RELATED_RELOAD_INTERVAL": "nan"}, "RELATED_RELOAD_INTERVAL"),
    ({"RELATED_CACHE_SIZE": "1.5"}, "RELATED_CACHE_SIZE"),
    ({"RELATED_LOG_LEVEL": "loud"}, "unknown log level"),
    ({"RELATED_DEFAULT_K": "10", "RELATED_MAX_K": "5"}, "must not exceed max_k"),
])
def test_invalid_environment_names_the_variable(env, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        load_settings(environ=env)


def test_unknown_or_badly_typed_config_is_refused():
    with pytest.raises(ValueError, match="unknown setting"):
        load_settings({"maxk": 3}, environ={})
    with pytest.raises(ValueError, match="max_k"):
        load_settings({"max_k": True}, environ={})
    with pytest.raises(ValueError, match="max_k"):
        load_settings({"max_k": [3]}, environ={})


def test_every_setting_has_help_and_a_valid_default():
    for setting in SETTINGS:
        assert setting.help.strip().endswith("."), setting.name
        assert setting.env == "RELATED_" + setting.name.upper()
    assert len({s.name for s in SETTINGS}) == len(SETTINGS)


@pytest.mark.parametrize("doc", [DOCS, README], ids=lambda p: p.name)
def test_every_setting_is_documented(doc):
    text = doc.read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert f"`{setting.env}`" in text, f"{setting.env} missing from {doc}"
    block = text.split("<!-- settings:start -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert block == settings_markdown(), f"{doc} is stale: regenerate with python -m service.settings"
