"""Parse and validate the newsroom rule parameters (query string or JSON body) into one frozen RuleParams."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.errors import ApiError

FALLBACKS = ("none", "recent", "recent_same_tag")
MAX_LIST_ITEMS = 100
MAX_ITEM_CHARS = 300
MAX_DAYS = 1e6
#: Every rule parameter besides ``k``, in the order the docs and /openapi.json list them.
RULE_PARAMETERS = ("max_age_days", "past_only", "half_life_days", "require_tags", "exclude_tags", "same",
                   "filter", "exclude", "min_score", "fallback", "dedupe", "diversity", "explain")
LIST_PARAMETERS = frozenset({"require_tags", "exclude_tags", "same", "filter", "exclude"})


@dataclass(frozen=True)
class RuleParams:
    """Every rule of one request, validated; defaults mean "rule off" (see docs/rules.md)."""

    k: int
    max_age_days: float | None = None
    past_only: bool = False
    half_life_days: float | None = None
    require_tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    same: tuple[str, ...] = ()
    filters: tuple[tuple[str, str], ...] = ()
    exclude: tuple[str, ...] = ()
    min_score: float | None = None
    fallback: str = "none"
    dedupe: float | None = None
    diversity: float = 0.0
    explain: bool = False

    @property
    def uses_time(self) -> bool:
        """True when a freshness rule reads the query's publication time."""
        return self.max_age_days is not None or self.past_only or self.half_life_days is not None

    def cache_key(self) -> str:
        """Return a canonical text of every value (equal for equal parameters, however spelled)."""
        parts = [f"k={self.k}"]
        for name in RULE_PARAMETERS:
            value = getattr(self, "filters" if name == "filter" else name)
            parts.append(f"{name}={value!r}")
        return "&".join(parts)


def _fail(name: str, where: str, expected: str, got: Any) -> ApiError:
    shown = repr(got) if len(repr(got)) <= 60 else repr(got)[:60] + "..."
    return ApiError(400, "invalid_parameter", f"{where} {name} must be {expected}, got {shown}")


def _number(name: str, where: str, raw: Any, low: float, high: float, from_text: bool,
            open_low: bool = False) -> float:
    expected = f"a number in {'(' if open_low else '['}{low:g}, {high:g}]"
    if from_text and isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            raise _fail(name, where, expected, raw) from None
    elif not from_text and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    else:
        raise _fail(name, where, expected, raw)
    if not math.isfinite(value) or value < low or value > high or (open_low and value == low):
        raise _fail(name, where, expected, raw)
    return value


def _boolean(name: str, where: str, raw: Any, from_text: bool) -> bool:
    if from_text and raw in ("true", "false"):
        return raw == "true"
    if not from_text and isinstance(raw, bool):
        return raw
    raise _fail(name, where, "true or false", raw)


def _items(name: str, where: str, raw: Any, from_text: bool) -> list[str]:
    if from_text:
        if not isinstance(raw, str):
            raise _fail(name, where, "comma-separated text", raw)
        items = [part.strip() for part in raw.split(",")] if name != "filter" else [raw.strip()]
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        items = [item.strip() for item in raw]
    else:
        raise _fail(name, where, "an array of strings", raw)
    if any(not item or len(item) > MAX_ITEM_CHARS for item in items):
        raise _fail(name, where, f"non-empty items of at most {MAX_ITEM_CHARS} characters", raw)
    return items


def _filter_pair(where: str, item: str) -> tuple[str, str]:
    name, sep, value = item.partition(":")
    if not sep or not name.strip():
        raise _fail("filter", where, "FIELD:VALUE", item)
    return name.strip(), value


def _dedupe(where: str, raw: Any, from_text: bool) -> float | None:
    if raw == "off":
        return None
    try:
        return _number("dedupe", where, raw, 0.0, 1.0, from_text, open_low=True)
    except ApiError:
        raise _fail("dedupe", where, 'a number in (0, 1] or "off"', raw) from None


def _fallback(where: str, raw: Any) -> str:
    if raw not in FALLBACKS:
        raise _fail("fallback", where, " or ".join(FALLBACKS), raw)
    return raw


Parser = Callable[[str, Any, bool], Any]
_SCALARS: dict[str, Parser] = {
    "max_age_days": lambda where, raw, text: _number("max_age_days", where, raw, 0.0, MAX_DAYS, text),
    "half_life_days": lambda where, raw, text: _number("half_life_days", where, raw, 0.0, MAX_DAYS, text,
                                                       open_low=True),
    "min_score": lambda where, raw, text: _number("min_score", where, raw, 0.0, 1.0, text),
    "diversity": lambda where, raw, text: _number("diversity", where, raw, 0.0, 1.0, text),
    "past_only": lambda where, raw, text: _boolean("past_only", where, raw, text),
    "explain": lambda where, raw, text: _boolean("explain", where, raw, text),
    "dedupe": _dedupe,
    "fallback": lambda where, raw, text: _fallback(where, raw),
}


def parse_rules(values: Mapping[str, list[Any]], k: int, default_dedupe: float | None,
                from_text: bool) -> RuleParams:
    """Validate every rule parameter into a :class:`RuleParams`.

    Parameters
    ----------
    values : mapping of str to list
        Each given parameter name (other than ``k``) and all the values given for it: the
        query string's repeated values, or a one-element list holding the JSON body's value.
    k : int
        The already validated ``k``.
    default_dedupe : float or None
        The service's dedupe threshold when the request gives none (None: off).
    from_text : bool
        Values are query-string text (lists comma-separated, booleans ``true|false``);
        otherwise JSON values (arrays of strings, booleans, numbers).

    Returns
    -------
    RuleParams

    Raises
    ------
    ApiError
        400 ``unknown_parameter`` for a name that is not a rule, 400 ``invalid_parameter``
        for a bad value or a repeated scalar, each naming the parameter.
    """
    where = "query parameter" if from_text else "field"
    unknown = sorted(set(values) - set(RULE_PARAMETERS))
    if unknown:
        raise ApiError(400, "unknown_parameter", f"Unknown {where}(s) {unknown}; allowed: "
                       f"{sorted(('k', *RULE_PARAMETERS))}")
    parsed: dict[str, Any] = {"dedupe": default_dedupe}
    for name, given in values.items():
        if name in LIST_PARAMETERS:
            items = [item for raw in given for item in _items(name, where, raw, from_text)]
            if len(items) > MAX_LIST_ITEMS:
                raise _fail(name, where, f"at most {MAX_LIST_ITEMS} items", f"{len(items)} items")
            if name == "filter":
                parsed["filters"] = tuple(sorted(set(_filter_pair(where, item) for item in items)))
            elif name.endswith("tags"):
                parsed[name] = tuple(sorted({item.casefold() for item in items}))
            else:
                parsed[name] = tuple(sorted(set(items)))
            continue
        if len(given) != 1:
            raise ApiError(400, "invalid_parameter", f"{where} {name} is given {len(given)} times; give it once")
        parsed[name] = _SCALARS[name](where, given[0], from_text)
    return RuleParams(k=k, **parsed)


def openapi_parameters() -> list[dict[str, Any]]:
    """Return the OpenAPI query parameters of every rule (``k`` is documented beside them).

    Returns
    -------
    list of dict
        OpenAPI 3.1 parameter objects, in :data:`RULE_PARAMETERS` order.
    """
    out = []
    for name in RULE_PARAMETERS:
        schema = dict(SCHEMAS[name])
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": False,
                                     "description": DESCRIPTIONS[name]}
        if name in LIST_PARAMETERS:
            parameter.update(style="form", explode=name == "filter")
            schema = {"type": "array", "items": schema["items"]}
        parameter["schema"] = schema
        out.append(parameter)
    return out


_TEXTS = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": MAX_ITEM_CHARS},
          "maxItems": MAX_LIST_ITEMS}
SCHEMAS: dict[str, dict[str, Any]] = {
    "max_age_days": {"type": "number", "minimum": 0, "maximum": MAX_DAYS},
    "past_only": {"type": "boolean", "default": False},
    "half_life_days": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DAYS},
    "require_tags": _TEXTS, "exclude_tags": _TEXTS, "same": _TEXTS, "exclude": _TEXTS,
    "filter": {**_TEXTS, "items": {**_TEXTS["items"], "pattern": "^[^:]+:"}},
    "min_score": {"type": "number", "minimum": 0, "maximum": 1},
    "fallback": {"type": "string", "enum": list(FALLBACKS), "default": "none"},
    "dedupe": {"oneOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 1}, {"const": "off"}]},
    "diversity": {"type": "number", "minimum": 0, "maximum": 1, "default": 0},
    "explain": {"type": "boolean", "default": False},
}
DESCRIPTIONS: dict[str, str] = {
    "max_age_days": "Keep candidates published within N days of the query article (a draft: its "
                    "published_at, else now); undated candidates are dropped.",
    "past_only": "Keep only candidates published no later than the query article; undated ones are dropped.",
    "half_life_days": "Multiply each similarity by 0.5^(|age gap in days| / H) before ranking; "
                      "undated candidates keep their similarity.",
    "require_tags": "Keep candidates sharing at least one of these tags (comma-separated; case-insensitive).",
    "exclude_tags": "Drop candidates carrying any of these tags (comma-separated; case-insensitive).",
    "same": "Keep candidates with the same value of these metadata fields as the query article, "
            "e.g. section (comma-separated; list fields must share an element).",
    "filter": "FIELD:VALUE, repeatable: keep candidates whose FIELD equals VALUE (or, for a list "
              "field, contains it); values for one field are alternatives, fields all apply.",
    "exclude": "Article ids never returned (comma-separated).",
    "min_score": "Drop candidates whose similarity is below S.",
    "fallback": "Fill the list up to k when too few candidates remain: recent = newest first, "
                "recent_same_tag = newest sharing a tag with the query article; every exclusion holds.",
    "dedupe": "Skip a candidate whose similarity to the query article or to an item already chosen "
              "is at least this (off disables); the default is the service setting dedupe.",
    "diversity": "Maximal marginal relevance: 0 ranks by relevance only, 1 by novelty only.",
    "explain": "Add per item the strongest shared terms and the shared tags.",
}
