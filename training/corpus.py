"""Stream article corpora (JSON Lines or CSV, optionally gzip) into validated Article records."""

from __future__ import annotations

import csv
import gzip
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Union

from training.model_dir import sha256_file as file_sha256  # re-exported: the corpus checksum

__all__ = ["Article", "CorpusError", "FieldMap", "file_sha256", "read_articles"]

PathLike = Union[str, "os.PathLike[str]"]

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_TAG_SEPARATOR = "|"
_SNIFF_LIMIT = 1 << 20
_CSV_FIELD_LIMIT = 2**31 - 1
_JSON_KINDS = {type(None): "null", bool: "boolean", int: "number", float: "number",
               str: "string", list: "array", dict: "object"}


class CorpusError(ValueError):
    """A corpus problem at ``path:line`` (line/field None when not applicable)."""

    def __init__(self, path: PathLike, line: int | None, field: str | None, reason: str):
        self.path, self.line, self.field, self.reason = os.fspath(path), line, field, reason
        super().__init__(self.path, line, field, reason)

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.reason}" if self.field is None else f"{where}: {self.field}: {self.reason}"


class _Bad(Exception):
    """Internal: a record-level problem, args (field, reason); the caller adds path and line."""


@dataclass(frozen=True)
class FieldMap:
    """Which record fields hold the id, texts, tags, date, url and displayed title."""

    id_field: str = "id"
    text_fields: tuple[str, ...] = ("title", "body")
    tag_fields: tuple[str, ...] = ("tags",)
    date_field: str | None = "published_at"
    url_field: str = "url"
    title_field: str = "title"

    def __post_init__(self) -> None:
        for name in ("text_fields", "tag_fields"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
                raise ValueError(f"FieldMap.{name} must be a sequence of non-empty strings, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for name in ("id_field", "url_field", "title_field", "date_field"):
            value = getattr(self, name)
            if not (isinstance(value, str) and value) and not (name == "date_field" and value is None):
                raise ValueError(f"FieldMap.{name} must be a non-empty string, got {value!r}")
        roles = [self.id_field, *self.text_fields, *self.tag_fields, self.url_field]
        roles += [self.date_field] if self.date_field else []
        roles += [] if self.title_field in self.text_fields else [self.title_field]
        clashes = sorted({name for name in roles if roles.count(name) > 1})
        if clashes:
            raise ValueError(f"FieldMap gives several roles to the same field(s): {clashes}")

    def names(self) -> frozenset[str]:
        """Return every field name this map reads (the rest of a record goes to ``extra``).

        Returns
        -------
        frozenset of str
        """
        names = {self.id_field, *self.text_fields, *self.tag_fields, self.url_field, self.title_field}
        return frozenset(names | ({self.date_field} if self.date_field else set()))


@dataclass
class Article:
    """One validated corpus record (or a deletion marker when ``deleted``)."""

    id: str
    texts: dict[str, str]
    tags: list[str]
    published_at: str | None
    published_ts: float | None
    url: str | None
    title: str
    extra: dict[str, Any]
    line: int
    deleted: bool = False


def read_articles(path: PathLike, fields: FieldMap = FieldMap(), *, skip_invalid: bool = False,
                  allow_deletions: bool = False,
                  skipped: list[CorpusError] | None = None) -> Iterator[Article]:
    """Stream the articles of a JSON Lines or CSV corpus file, validating every record.

    The file is checked (exists, known format, CSV header has the id column) when this is
    called; records are read lazily while iterating, keeping only the ids seen in memory.

    Parameters
    ----------
    path : str or os.PathLike
        ``.jsonl``/``.json``/``.ndjson``/``.csv``, each optionally ``.gz``; gzip is detected by
        its magic bytes, other extensions are sniffed (JSON Lines when the first byte is ``{``).
    fields : FieldMap
        Which record fields hold the id, texts, tags, date, url and title.
    skip_invalid : bool
        Skip bad records (appending their error to ``skipped``) instead of raising.
    allow_deletions : bool
        Accept ``{"id": ..., "deleted": true}`` records, yielded as ``Article(deleted=True)``.
    skipped : list of CorpusError, optional
        Receives the errors of skipped records when ``skip_invalid`` is true.

    Returns
    -------
    Iterator[Article]
        In file order.

    Raises
    ------
    CorpusError
        File-level problems always; record-level problems unless ``skip_invalid``.
    """
    gz = _is_gzip(path)
    fmt = _detect_format(path, gz)
    if fmt == "csv":
        _check_csv_header(path, gz, fields)
    return _iter_articles(path, gz, fmt, fields, skip_invalid, allow_deletions, skipped)


def _iter_articles(path: PathLike, gz: bool, fmt: str, fields: FieldMap, skip_invalid: bool,
                   allow_deletions: bool, skipped: list[CorpusError] | None) -> Iterator[Article]:
    rows = _jsonl_rows(path, gz) if fmt == "jsonl" else _csv_rows(path, gz, fields)
    used = fields.names()
    seen: dict[str, int] = {}
    for item in rows:
        if isinstance(item, CorpusError):
            error = item
        else:
            line, record = item
            try:
                article = _article(record, fields, used, line, allow_deletions)
                if article.id in seen:
                    first = seen[article.id]
                    raise _Bad(fields.id_field, f"duplicate id {article.id!r} (first at line {first})")
            except _Bad as bad:
                error = CorpusError(path, line, *bad.args)
            else:
                seen[article.id] = line
                yield article
                continue
        if not skip_invalid:
            raise error
        if skipped is not None:
            skipped.append(error)


def _is_gzip(path: PathLike) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(2) == _GZIP_MAGIC
    except OSError as exc:
        raise CorpusError(path, None, None, f"cannot open corpus: {exc.strerror or exc}") from exc


def _detect_format(path: PathLike, gz: bool) -> str:
    name = os.fspath(path).lower()
    name = name[:-3] if name.endswith(".gz") else name
    fmt = _EXTENSIONS.get(os.path.splitext(name)[1])
    if fmt:
        return fmt
    with (gzip.open if gz else open)(path, "rb") as stream:
        try:
            head = stream.read(_SNIFF_LIMIT).removeprefix(_BOM).lstrip()
        except (OSError, EOFError, zlib.error) as exc:
            raise CorpusError(path, None, None, f"cannot read corpus: {exc}") from exc
    if head.startswith(b"{"):
        return "jsonl"
    known = ", ".join(sorted(_EXTENSIONS))
    raise CorpusError(path, None, None, f"unknown corpus format: use one of {known} (optionally .gz) "
                                        "or JSON Lines content starting with '{'")


def _raw_lines(path: PathLike, gz: bool) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, bytes) of the possibly gzipped file, BOM removed."""
    number = 0
    with (gzip.open if gz else open)(path, "rb") as stream:
        try:
            for number, raw in enumerate(stream, 1):
                yield number, raw.removeprefix(_BOM) if number == 1 else raw
        except (OSError, EOFError, zlib.error) as exc:
            raise CorpusError(path, number + 1, None, f"cannot read corpus: {exc}") from exc


def _utf8_error(path: PathLike, line: int, exc: UnicodeDecodeError) -> CorpusError:
    return CorpusError(path, line, None, f"invalid UTF-8 at byte {exc.start + 1} of the line")


def _jsonl_rows(path: PathLike, gz: bool) -> Iterator[tuple[int, Any] | CorpusError]:
    for line, raw in _raw_lines(path, gz):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield _utf8_error(path, line, exc)
            continue
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield CorpusError(path, line, None, f"malformed JSON: {exc.msg} at column {exc.colno}")
        except (ValueError, RecursionError) as exc:
            yield CorpusError(path, line, None, f"malformed JSON: {exc}")
        else:
            if isinstance(record, dict):
                yield line, record
            else:
                yield CorpusError(path, line, None, f"expected a JSON object, got {_kind(record)}")


def _csv_lines(path: PathLike, gz: bool, bad_lines: list[CorpusError]) -> Iterator[str]:
    """Yield decoded physical lines; undecodable ones are noted in ``bad_lines`` (and replaced)."""
    for line, raw in _raw_lines(path, gz):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_lines.append(_utf8_error(path, line, exc))
            yield raw.decode("utf-8", "replace")


def _csv_header(reader: Any, path: PathLike, fields: FieldMap, bad_lines: list[CorpusError]) -> list[str]:
    """Read and check the header row: it must decode, parse and name the id column once."""
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise CorpusError(path, 1, fields.id_field, "empty CSV file: no header row") from None
    except csv.Error as exc:
        raise CorpusError(path, 1, None, f"bad CSV header: {exc}") from exc
    if bad_lines:
        raise bad_lines[0]
    if fields.id_field not in header:
        raise CorpusError(path, 1, fields.id_field, f"CSV header has no {fields.id_field!r} column "
                                                    f"(columns: {header})")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise CorpusError(path, 1, None, f"CSV header repeats column(s) {repeated}")
    return header


def _check_csv_header(path: PathLike, gz: bool, fields: FieldMap) -> None:
    bad_lines: list[CorpusError] = []
    lines = _csv_lines(path, gz, bad_lines)
    try:
        _csv_header(csv.reader(lines, strict=True), path, fields, bad_lines)
    finally:
        lines.close()


def _csv_rows(path: PathLike, gz: bool, fields: FieldMap) -> Iterator[tuple[int, Any] | CorpusError]:
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:  # article bodies can exceed the 128 KiB default
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    bad_lines: list[CorpusError] = []
    reader = csv.reader(_csv_lines(path, gz, bad_lines), strict=True)
    header = _csv_header(reader, path, fields, bad_lines)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            bad_lines.clear()
            yield CorpusError(path, start, None, f"bad CSV: {exc}")
            continue
        if bad_lines:
            error = bad_lines[0]
            bad_lines.clear()
            yield error
        elif len(cells) > 1 or (cells and cells[0].strip()):
            if len(cells) != len(header):
                yield CorpusError(path, start, None, f"row has {len(cells)} cells but the header has "
                                                     f"{len(header)} columns")
            else:
                yield start, _from_csv(dict(zip(header, cells)), fields)


def _from_csv(row: dict[str, Any], fields: FieldMap) -> dict[str, Any]:
    """Turn CSV cells into JSON-like values: tags split on ``|``, a boolean ``deleted``."""
    for name in fields.tag_fields:
        if name in row:
            row[name] = row[name].split(_TAG_SEPARATOR) if row[name].strip() else None
    flag = str(row.get("deleted", "")).strip().lower()
    if "deleted" in row and flag in ("", "false", "0", "true", "1"):
        row["deleted"] = flag in ("true", "1")
    return row


def _kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _article(record: dict[str, Any], fields: FieldMap, used: frozenset[str], line: int,
             allow_deletions: bool) -> Article:
    ident = _parse_id(record, fields.id_field)
    if record.get("deleted") is True or (allow_deletions and "deleted" in record):
        if not allow_deletions:
            raise _Bad("deleted", "deletion record, but deletions are not allowed here (allow_deletions)")
        if not isinstance(record["deleted"], bool):
            raise _Bad("deleted", f"expected true or false, got {_short(record['deleted'])}")
        if record["deleted"]:
            return Article(ident, {name: "" for name in fields.text_fields}, [], None, None, None, "",
                           {}, line, deleted=True)
    texts = {name: _parse_str(record, name) or "" for name in fields.text_fields}
    title = texts.get(fields.title_field, _parse_str(record, fields.title_field) or "")
    published_at, published_ts = _parse_date(record, fields.date_field) if fields.date_field else (None, None)
    return Article(id=ident, texts=texts, tags=_parse_tags(record, fields.tag_fields),
                   published_at=published_at, published_ts=published_ts,
                   url=_parse_str(record, fields.url_field, blank_is_none=True), title=title,
                   extra={key: value for key, value in record.items() if key not in used}, line=line)


def _parse_id(record: dict[str, Any], name: str) -> str:
    if name not in record:
        raise _Bad(name, "missing id")
    value = record[name]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Bad(name, f"expected a string or integer id, got {_kind(value)} {_short(value)}")
    ident = str(value)
    if not ident.strip():
        raise _Bad(name, "empty id")
    return ident


def _parse_str(record: dict[str, Any], name: str, blank_is_none: bool = False) -> str | None:
    value = record.get(name)
    if value is not None and not isinstance(value, str):
        raise _Bad(name, f"expected a string or null, got {_kind(value)} {_short(value)}")
    return None if blank_is_none and value is not None and not value.strip() else value


def _parse_tags(record: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    tags: dict[str, None] = {}  # insertion-ordered set
    for name in names:
        value = record.get(name)
        if value is None:
            continue
        if not isinstance(value, list):
            raise _Bad(name, f"expected a list of strings or null, got {_kind(value)} {_short(value)}")
        for position, tag in enumerate(value):
            if not isinstance(tag, str):
                raise _Bad(name, f"item {position} is {_kind(tag)} {_short(tag)}, expected a string")
            if tag.strip():
                tags[tag.strip()] = None
    return list(tags)


def _parse_date(record: dict[str, Any], name: str) -> tuple[str | None, float | None]:
    value = record.get(name)
    if value is None:
        return None, None
    if not isinstance(value, str):
        raise _Bad(name, f"expected an ISO 8601 date string or null, got {_kind(value)} {_short(value)}")
    text = value.strip()
    if not text:
        return None, None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return day.isoformat(), datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "zZ" else text)
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
        return moment.isoformat(), aware.timestamp()
    except ValueError:
        raise _Bad(name, f"not an ISO 8601 date or date-time: {_short(value)}") from None
