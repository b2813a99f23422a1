"""Article metadata as comparable text sets (tags, any corpus field), columns cached per model version."""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any

import numpy as np

from service.model import LoadedModel

#: Below this many rows a lookup parses the rows themselves instead of building a whole column.
COLUMN_THRESHOLD = 256
TAGS = "\x00tags"  # the case-folded tags column

_columns: weakref.WeakKeyDictionary[LoadedModel, dict[str, list[frozenset[str]]]] = weakref.WeakKeyDictionary()
_orders: weakref.WeakKeyDictionary[LoadedModel, np.ndarray] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def field_values(value: Any) -> frozenset[str]:
    """Return a metadata value as a set of texts: a list gives its items, null or missing nothing.

    Parameters
    ----------
    value : any JSON value
        A field of an article record. Strings stay as they are, booleans are ``true``/``false``,
        numbers and objects their compact JSON.

    Returns
    -------
    frozenset of str
    """
    items = value if isinstance(value, list) else [value]
    return frozenset(text for text in map(_text, items) if text is not None)


def _tags(record: dict[str, Any]) -> frozenset[str]:
    tags = record.get("tags")
    return frozenset(t.casefold() for t in tags if isinstance(t, str)) if isinstance(tags, list) else frozenset()


def _extract(record: dict[str, Any], name: str) -> frozenset[str]:
    return _tags(record) if name == TAGS else field_values(record.get(name))


def column_values(model: LoadedModel, rows: np.ndarray, name: str) -> list[frozenset[str]]:
    """Return the text values of field ``name`` of every row in ``rows``.

    Few rows are parsed from articles.jsonl directly; many build (once per model version and
    worker) the field's whole column.

    Parameters
    ----------
    model : LoadedModel
    rows : ndarray of int
    name : str
        A record field, or :data:`TAGS` for the case-folded tags.

    Returns
    -------
    list of frozenset of str
    """
    columns = _columns.get(model)
    column = columns.get(name) if columns is not None else None
    if column is None and len(rows) < COLUMN_THRESHOLD:
        return [_extract(model.article(row), name) for row in np.asarray(rows).tolist()]
    if column is None:
        column = [_extract(model.article(row), name) for row in range(model.n_articles)]
        with _lock:
            _columns.setdefault(model, {})[name] = column
    return [column[row] for row in np.asarray(rows).tolist()]


def tag_set(model: LoadedModel, rows: np.ndarray) -> list[frozenset[str]]:
    """Return the case-folded tags of every row in ``rows``."""
    return column_values(model, rows, TAGS)


def newest_first(model: LoadedModel) -> np.ndarray:
    """Return (once per model version) every row, newest first, undated last, ties by lower row."""
    order = _orders.get(model)
    if order is None:
        published = np.asarray(model.published, dtype=np.float64)
        order = np.lexsort((np.arange(model.n_articles), -np.where(np.isnan(published), -np.inf, published)))
        with _lock:
            _orders[model] = order
    return order
