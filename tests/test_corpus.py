"""Tests for training.corpus: JSON Lines records, fields, dates, formats, hashing and the real corpora."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from training.corpus import Article, CorpusError, FieldMap, file_sha256, read_articles

REPO = Path(__file__).resolve().parents[1]


SHARED_DATA = REPO.parent / "shared" / "data"


GOOD = '{"id": "a1", "title": "Good", "body": "Fine text.", "tags": ["x"], "published_at": "2020-01-02"}'


def write(path: Path, lines: list[str | bytes], gz: bool = False) -> Path:
    """Write lines (str encoded as UTF-8, bytes as is), each ended by a newline."""
    data = b"".join((line.encode() if isinstance(line, str) else line) + b"\n" for line in lines)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def assert_located(error: CorpusError, path: Path, line: int | None, field: str | None) -> None:
    """The error names the file, the line and (when given) the field, in attributes and message."""
    assert (error.path, error.line, error.field) == (str(path), line, field)
    message = str(error)
    assert message.startswith(f"{path}:{line}: " if line is not None else f"{path}: ")
    if field is not None:
        assert f": {field}: " in message



def test_valid_record_fields_are_normalised(tmp_path):
    record = {"id": 42, "title": "T", "body": None, "tags": [" a ", "", "b", "a", "  "],
              "published_at": " 2004-11-13 ", "url": "https://example.org/x", "section": "World",
              "related_ids": ["1", "2"], "score": 1.5, "nested": {"k": [1, None]}}
    path = write(tmp_path / "corpus.jsonl", [json.dumps(record), '{"id": "no-optional-fields"}'])
    first, second = read_articles(path)
    assert first == Article(id="42", texts={"title": "T", "body": ""}, tags=["a", "b"],
                            published_at="2004-11-13", published_ts=1100304000.0,
                            url="https://example.org/x", title="T",
                            extra={"section": "World", "related_ids": ["1", "2"], "score": 1.5,
                                   "nested": {"k": [1, None]}}, line=1)
    assert second == Article(id="no-optional-fields", texts={"title": "", "body": ""}, tags=[],
                             published_at=None, published_ts=None, url=None, title="", extra={},
                             line=2)


@pytest.mark.parametrize(("raw", "published_at", "utc"), [
    ("2004-11-13", "2004-11-13", datetime(2004, 11, 13, tzinfo=timezone.utc)),
    ("1987-02-26T15:01:01.790", "1987-02-26T15:01:01.790000",
     datetime(1987, 2, 26, 15, 1, 1, 790000, tzinfo=timezone.utc)),
    ("2020-06-01T12:30:00Z", "2020-06-01T12:30:00+00:00", datetime(2020, 6, 1, 12, 30, tzinfo=timezone.utc)),
    ("2020-06-01T12:30:00z", "2020-06-01T12:30:00+00:00", datetime(2020, 6, 1, 12, 30, tzinfo=timezone.utc)),
    ("2020-06-01T12:30:00+02:00", "2020-06-01T12:30:00+02:00",
     datetime(2020, 6, 1, 10, 30, tzinfo=timezone.utc)),
    ("2020-06-01 23:00-05:00", "2020-06-01T23:00:00-05:00", datetime(2020, 6, 2, 4, 0, tzinfo=timezone.utc)),
    ("1950-01-01", "1950-01-01", datetime(1950, 1, 1, tzinfo=timezone.utc)),
    ("", None, None),
    ("   ", None, None),
    (None, None, None),
])
def test_dates(tmp_path, raw, published_at, utc):
    path = write(tmp_path / "corpus.jsonl", [json.dumps({"id": "x", "published_at": raw})])
    (article,) = read_articles(path)
    assert article.published_at == published_at
    assert article.published_ts == (utc.timestamp() if utc else None)


def test_date_field_none_ignores_the_date(tmp_path):
    path = write(tmp_path / "corpus.jsonl", ['{"id": "x", "published_at": "garbage"}'])
    (article,) = read_articles(path, FieldMap(date_field=None))
    assert (article.published_at, article.extra) == (None, {"published_at": "garbage"})


def test_field_mapping(tmp_path):
    record = {"guid": "g-1", "headline": "Big news", "content": "Body", "kw": ["k1"], "cats": ["k2", "k1"],
              "when": "2021-03-04T05:06:07", "link": "https://x", "title": "not the headline"}
    path = write(tmp_path / "feed.ndjson", [json.dumps(record), '{"guid": "g-1"}'])
    fields = FieldMap(id_field="guid", text_fields=("headline", "content"), tag_fields=("kw", "cats"),
                      date_field="when", url_field="link", title_field="headline")
    with pytest.raises(CorpusError) as caught:
        list(read_articles(path, fields))
    assert_located(caught.value, path, 2, "guid")
    article = next(read_articles(path, fields))
    assert article.id == "g-1"
    assert article.texts == {"headline": "Big news", "content": "Body"}
    assert article.title == "Big news"
    assert article.tags == ["k1", "k2"]
    assert article.published_at == "2021-03-04T05:06:07"
    assert article.url == "https://x"
    assert article.extra == {"title": "not the headline"}
    path_id = write(tmp_path / "other.jsonl", ['{"id": "x", "headline": "h"}'])
    with pytest.raises(CorpusError, match="other.jsonl:1: guid: missing"):
        list(read_articles(path_id, fields))


def test_title_field_outside_text_fields_is_validated(tmp_path):
    fields = FieldMap(text_fields=("body",), title_field="headline")
    path = write(tmp_path / "c.jsonl", ['{"id": "1", "headline": "H", "body": "B"}', '{"id": "2", "headline": 3}'])
    articles = read_articles(path, fields)
    first = next(articles)
    assert (first.title, first.texts, first.extra) == ("H", {"body": "B"}, {})
    with pytest.raises(CorpusError) as caught:
        next(articles)
    assert_located(caught.value, path, 2, "headline")


@pytest.mark.parametrize("kwargs", [
    {"text_fields": "body"}, {"tag_fields": ("tags", "")}, {"id_field": ""}, {"date_field": 3},
    {"tag_fields": ("body",)}, {"url_field": "id"}, {"title_field": "tags"},
])
def test_fieldmap_rejects_bad_configuration(kwargs):
    with pytest.raises(ValueError, match="FieldMap"):
        FieldMap(**kwargs)


def test_fieldmap_accepts_lists_and_is_hashable():
    fields = FieldMap(text_fields=["title"], tag_fields=[])  # type: ignore[arg-type]
    assert fields.text_fields == ("title",) and fields.tag_fields == ()
    assert hash(fields) == hash(FieldMap(text_fields=("title",), tag_fields=()))


def test_deletions(tmp_path):
    lines = [GOOD, '{"id": "gone", "deleted": true, "title": 5}', '{"id": "kept", "deleted": false}',
             '{"id": "odd", "deleted": "yes"}', '{"deleted": true}']
    path = write(tmp_path / "delta.jsonl", lines)
    skipped: list[CorpusError] = []
    articles = list(read_articles(path, allow_deletions=True, skip_invalid=True, skipped=skipped))
    assert [(a.id, a.deleted) for a in articles] == [("a1", False), ("gone", True), ("kept", False)]
    gone = articles[1]
    assert (gone.texts, gone.tags, gone.title, gone.url, gone.published_ts, gone.extra, gone.line) == (
        {"title": "", "body": ""}, [], "", None, None, {}, 2)
    assert [(e.line, e.field) for e in skipped] == [(4, "deleted"), (5, "id")]


def test_gzip_is_detected_by_magic_bytes_not_name(tmp_path):
    real_gz = write(tmp_path / "a.jsonl", [GOOD, '{"id": "b"}'], gz=True)
    fake_gz = write(tmp_path / "b.jsonl.gz", [GOOD, '{"id": "b"}'])
    named_gz = write(tmp_path / "c.jsonl.gz", [GOOD, "", '{"id": "b", "tags": 3}'], gz=True)
    assert [a.id for a in read_articles(real_gz)] == ["a1", "b"]
    assert [a.id for a in read_articles(fake_gz)] == ["a1", "b"]
    with pytest.raises(CorpusError) as caught:
        list(read_articles(named_gz))
    assert_located(caught.value, named_gz, 3, "tags")


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("corpus.txt", b'  \n{"id": "s"}\n', ["s"]),
    ("corpus", b'\xef\xbb\xbf{"id": "bom"}\n', ["bom"]),
    ("corpus.JSONL", b'{"id": "upper"}\n', ["upper"]),
    ("corpus.json", b'{"id": "j"}\n', ["j"]),
    ("corpus.jsonl", b"", []),
])
def test_format_detection(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    assert [a.id for a in read_articles(path)] == expected


def test_file_sha256_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_sha256(str(path)) != file_sha256(write(tmp_path / "other", ["x"]))


def test_bundled_wikinews_sample_reads_2000_articles():
    path = REPO / "data" / "wikinews-sample.jsonl.gz"
    skipped: list[CorpusError] = []
    articles = list(read_articles(path, skip_invalid=True, skipped=skipped))
    assert skipped == [] and len(articles) == 2000
    assert len({a.id for a in articles}) == 2000
    assert all(a.published_ts is not None and a.title and a.texts["body"] and a.url for a in articles)
    assert {t for a in articles for t in a.tags} == {"Economy and business", "Politics and conflicts"}
    assert all(a.extra == {"license": "CC BY 2.5"} for a in articles)


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent (shared research data is not part of the repo)")
    return path


@pytest.mark.shared
def test_shared_wikinews_reads_cleanly():
    path = shared_file("wikinews.jsonl.gz")
    articles = list(read_articles(path))
    assert len(articles) == 2000 and len({a.id for a in articles}) == 2000


@pytest.mark.shared
def test_shared_reuters_reads_cleanly():
    path = shared_file("reuters21578.jsonl.gz")
    articles = list(read_articles(path))
    assert len(articles) == 21578
    assert [a.id for a in articles if a.published_at is None] == ["17192"]
    first = articles[0]
    assert (first.id, first.published_at) == ("1", "1987-02-26T15:01:01.790000")
    assert set(first.extra) == {"topics", "places", "people", "orgs", "exchanges", "lewissplit",
                                "topics_attr", "modapte"}
