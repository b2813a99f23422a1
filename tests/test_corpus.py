"""Tests for training.corpus: formats, validation errors with locations, and the real corpora."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


BAD_JSONL = [
    # (case id, bad line, expected field, expected words in the reason)
    ("id missing", '{"title": "t"}', "id", "missing"),
    ("id null", '{"id": null}', "id", "null"),
    ("id empty", '{"id": ""}', "id", "empty"),
    ("id blank", '{"id": "  \\t"}', "id", "empty"),
    ("id float", '{"id": 1.5}', "id", "number"),
    ("id bool", '{"id": true}', "id", "boolean"),
    ("id list", '{"id": ["a"]}', "id", "array"),
    ("id object", '{"id": {"a": 1}}', "id", "object"),
    ("duplicate id", '{"id": "a1"}', "id", "first at line 1"),
    ("duplicate int id", '{"id": "7"}', "id", "first at line 2"),
    ("title number", '{"id": "b", "title": 5}', "title", "number"),
    ("body list", '{"id": "b", "body": ["x"]}', "body", "array"),
    ("body bool", '{"id": "b", "body": false}', "body", "boolean"),
    ("tags string", '{"id": "b", "tags": "x|y"}', "tags", "string"),
    ("tags object", '{"id": "b", "tags": {"x": 1}}', "tags", "object"),
    ("tags number item", '{"id": "b", "tags": ["x", 3]}', "tags", "item 1 is number"),
    ("tags null item", '{"id": "b", "tags": [null]}', "tags", "item 0 is null"),
    ("tags list item", '{"id": "b", "tags": [["x"]]}', "tags", "item 0 is array"),
    ("date garbage", '{"id": "b", "published_at": "yesterday"}', "published_at", "ISO 8601"),
    ("date impossible", '{"id": "b", "published_at": "2020-02-30"}', "published_at", "ISO 8601"),
    ("date number", '{"id": "b", "published_at": 20200101}', "published_at", "number"),
    ("date with bad offset", '{"id": "b", "published_at": "2020-01-01T00:00:00+25:00"}', "published_at",
     "ISO 8601"),
    ("url number", '{"id": "b", "url": 12}', "url", "number"),
    ("url list", '{"id": "b", "url": ["http://x"]}', "url", "array"),
    ("deletion not allowed", '{"id": "b", "deleted": true}', "deleted", "allow_deletions"),
    ("malformed json", '{"id": "b", "title": "unterminated}', None, "malformed JSON"),
    ("trailing garbage", '{"id": "b"} x', None, "malformed JSON"),
    ("deep nesting", '{"id": ' + "[" * 100_000 + "]" * 100_000 + "}", None, "malformed JSON"),
    ("json array", '["id", "b"]', None, "got array"),
    ("json string", '"just text"', None, "got string"),
    ("json number", "42", None, "got number"),
    ("json null", "null", None, "got null"),
]


@pytest.mark.parametrize(("bad", "field", "reason"), [case[1:] for case in BAD_JSONL],
                         ids=[case[0] for case in BAD_JSONL])
def test_bad_jsonl_record_names_file_line_and_field(tmp_path, bad, field, reason):
    path = write(tmp_path / "corpus.jsonl", [GOOD, '{"id": 7}', "", "   ", bad, '{"id": "after"}'])
    with pytest.raises(CorpusError) as caught:
        list(read_articles(path))
    assert_located(caught.value, path, 5, field)
    assert reason in caught.value.reason
    skipped: list[CorpusError] = []
    ids = [a.id for a in read_articles(path, skip_invalid=True, skipped=skipped)]
    assert ids == ["a1", "7", "after"]
    assert [(e.line, e.field) for e in skipped] == [(5, field)]


@pytest.mark.parametrize("bad", [b'{"id": "b", "title": "caf\xe9"}', b"\xff\xfe{}", b'{"id": "\xc3"}'])
def test_undecodable_utf8_names_the_line(tmp_path, bad):
    path = write(tmp_path / "corpus.jsonl", [GOOD, bad, '{"id": "c"}'])
    with pytest.raises(CorpusError, match="invalid UTF-8") as caught:
        list(read_articles(path))
    assert_located(caught.value, path, 2, None)
    assert [a.id for a in read_articles(path, skip_invalid=True)] == ["a1", "c"]


def test_skip_invalid_collects_every_bad_line_in_order(tmp_path):
    lines = [GOOD, "not json", '{"id": "b"}', '{"id": "b"}', '{"id": "c", "tags": 1}', "[]",
             '{"id": "d", "published_at": "2020-13-01"}', '{"id": "e"}']
    path = write(tmp_path / "corpus.jsonl", lines)
    skipped: list[CorpusError] = []
    articles = list(read_articles(path, skip_invalid=True, skipped=skipped))
    assert [(a.id, a.line) for a in articles] == [("a1", 1), ("b", 3), ("e", 8)]
    assert [(e.line, e.field) for e in skipped] == [(2, None), (4, "id"), (5, "tags"), (6, None),
                                                     (7, "published_at")]
    assert all(str(e).startswith(f"{path}:{e.line}: ") for e in skipped)
    assert len(list(read_articles(path, skip_invalid=True))) == 3  # skipped list is optional


def test_reading_is_lazy_and_stops_at_the_first_error(tmp_path):
    path = write(tmp_path / "corpus.jsonl", [GOOD, "{broken", '{"id": "z"}'])
    articles = read_articles(path)
    assert next(articles).id == "a1"
    with pytest.raises(CorpusError, match=r"corpus\.jsonl:2: malformed JSON"):
        next(articles)


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


def test_truncated_gzip_is_a_located_error(tmp_path):
    data = gzip.compress(("\n".join([GOOD] + [f'{{"id": "n{i}", "body": "{i}"}}' for i in range(3000)])).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match="cannot read corpus") as caught:
        list(read_articles(path, skip_invalid=True))
    assert caught.value.path == str(path) and caught.value.line > 1


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


@pytest.mark.parametrize(("name", "content"), [
    ("corpus.txt", b"id,title\n1,x\n"), ("corpus.xml", b"<doc/>"), ("corpus.dat", b""),
    ("corpus.tsv.gz", gzip.compress(b"id\ttitle\n")),
])
def test_unknown_format_raises_at_call_time(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CorpusError, match="unknown corpus format") as caught:
        read_articles(path, skip_invalid=True)
    assert_located(caught.value, path, None, None)


def test_missing_file_raises_at_call_time(tmp_path):
    with pytest.raises(CorpusError, match="cannot open corpus") as caught:
        read_articles(tmp_path / "nope.jsonl", skip_invalid=True)
    assert_located(caught.value, tmp_path / "nope.jsonl", None, None)


def test_csv_quoted_multiline_cells_report_record_start_line(tmp_path):
    text = ('id,title,body,tags,published_at,section\n'
            '1,"First","line one\nline two\n\nline four",a|b| a |,2020-01-01,World\n'
            '\n'
            '2,"Second, with comma","say ""hi""",,,\n'
            '3,"Third\nstill third",body,c,not-a-date,Sport\n'
            '4,Fourth,"multi\nline",,2020-01-04T10:00:00Z,\n')
    path = tmp_path / "corpus.csv"
    path.write_text(text, encoding="utf-8")
    skipped: list[CorpusError] = []
    articles = list(read_articles(path, skip_invalid=True, skipped=skipped))
    assert [(a.id, a.line) for a in articles] == [("1", 2), ("2", 7), ("4", 10)]
    assert [(e.line, e.field) for e in skipped] == [(8, "published_at")]
    first, second, fourth = articles
    assert first.texts == {"title": "First", "body": "line one\nline two\n\nline four"}
    assert first.tags == ["a", "b"] and first.extra == {"section": "World"}
    assert (second.title, second.texts["body"], second.tags, second.published_at) == (
        "Second, with comma", 'say "hi"', [], None)
    assert fourth.published_ts == datetime(2020, 1, 4, 10, tzinfo=timezone.utc).timestamp()
    with pytest.raises(CorpusError) as caught:
        list(read_articles(path))
    assert_located(caught.value, path, 8, "published_at")


BAD_CSV = [
    # (case id, bad record text, expected field, words in the reason)
    ("empty id", ',"multi\nline",', "id", "empty"),
    ("blank id", '  ,x,', "id", "empty"),
    ("duplicate id", '1,"again\nand again",', "id", "first at line 2"),
    ("too many cells", '5,x,y,z', None, "4 cells"),
    ("too few cells", '5', None, "1 cells"),
    ("bad date", '5,"x\ny",nope', "published_at", "ISO 8601"),
    ("bad quote", '5,"x"y,2020-01-01', None, "bad CSV"),
    ("deletion not allowed", '5,,,true', "deleted", "allow_deletions"),
]


@pytest.mark.parametrize(("bad", "field", "reason"), [case[1:] for case in BAD_CSV],
                         ids=[case[0] for case in BAD_CSV])
def test_bad_csv_record_names_file_line_and_field(tmp_path, bad, field, reason):
    deleted = bad.endswith("true")
    header = "id,title,published_at" + (",deleted" if deleted else "")
    first = '1,"two\nlines",2020-01-01' + ("," if deleted else "")
    path = tmp_path / "corpus.csv"
    path.write_text(f'{header}\n{first}\n\n{bad}\n7,after,\n' if not deleted
                    else f'{header}\n{first}\n\n{bad}\n7,after,,\n', encoding="utf-8")
    with pytest.raises(CorpusError) as caught:
        list(read_articles(path))
    assert_located(caught.value, path, 5, field)
    assert reason in caught.value.reason
    skipped: list[CorpusError] = []
    assert [a.id for a in read_articles(path, skip_invalid=True, skipped=skipped)] == ["1", "7"]
    assert [e.line for e in skipped] == [5]


def test_csv_undecodable_bytes_name_the_physical_line(tmp_path):
    data = b'id,body\n1,"ok\nfine"\n2,"starts fine\nbad \xff byte\nends"\n3,last\n'
    path = tmp_path / "corpus.csv"
    path.write_bytes(data)
    with pytest.raises(CorpusError, match="invalid UTF-8") as caught:
        list(read_articles(path))
    assert_located(caught.value, path, 5, None)
    assert [(a.id, a.line) for a in read_articles(path, skip_invalid=True)] == [("1", 2), ("3", 7)]


def test_csv_unclosed_quote_is_an_error_not_a_swallowed_file(tmp_path):
    path = tmp_path / "corpus.csv"
    path.write_text('id,body\n1,ok\n2,"never closed\n3,lost\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="bad CSV") as caught:
        list(read_articles(path))
    assert_located(caught.value, path, 3, None)


@pytest.mark.parametrize(("content", "field", "reason"), [
    (b"title,body\nx,y\n", "id", "no 'id' column"),
    (b"", "id", "no header"),
    (b"id,title,id\n1,x,2\n", None, "repeats"),
    (b'id,"title\n', None, "bad CSV header"),
    (b"id,t\xffitle\n1,x\n", None, "invalid UTF-8"),
])
def test_csv_header_problems_always_raise_at_line_1(tmp_path, content, field, reason):
    path = tmp_path / "corpus.csv.gz"
    path.write_bytes(gzip.compress(content))
    with pytest.raises(CorpusError) as caught:
        read_articles(path, skip_invalid=True, skipped=[])
    assert_located(caught.value, path, 1, field)
    assert reason in caught.value.reason


def test_csv_gzip_bom_crlf_and_deletions(tmp_path):
    text = '\ufeff id ,title,tags,deleted,url\r\n1,"A\r\nB",x| y ,false,\r\n2,,,TRUE,\r\n3,C,,,http://c\r\n'
    path = tmp_path / "feed.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    articles = list(read_articles(path, allow_deletions=True))
    assert [(a.id, a.deleted, a.line) for a in articles] == [("1", False, 2), ("2", True, 4), ("3", False, 5)]
    assert articles[0].texts["title"] == "A\r\nB" and articles[0].tags == ["x", "y"]
    assert articles[0].url is None and articles[2].url == "http://c"
    assert articles[0].extra == {"deleted": False}


def test_csv_field_mapping_and_long_cells(tmp_path):
    body = "word " * 60_000  # over the csv module's default 128 KiB field limit
    path = tmp_path / "feed.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["guid", "headline", "content", "section"])
        writer.writerow(["g1", "Head", body, "Biz"])
    fields = FieldMap(id_field="guid", text_fields=("headline", "content"), title_field="headline")
    (article,) = read_articles(path, fields)
    assert (article.id, article.title, article.texts["content"], article.extra) == ("g1", "Head", body,
                                                                                     {"section": "Biz"})
    assert (article.tags, article.published_at, article.url) == ([], None, None)


def test_file_sha256_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_sha256(str(path)) != file_sha256(write(tmp_path / "other", ["x"]))


texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
tags = st.lists(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="|"), min_size=1,
                        max_size=8).map(str.strip).filter(bool), unique=True, max_size=4)
records = st.lists(st.tuples(texts, texts, tags), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=records, gz=st.booleans())
def test_round_trip_jsonl_and_csv(tmp_path, rows, gz):
    expected = [(f"id-{i}", title, body, tag_list) for i, (title, body, tag_list) in enumerate(rows)]
    jsonl = io.BytesIO()
    for ident, title, body, tag_list in expected:
        jsonl.write(json.dumps({"id": ident, "title": title, "body": body, "tags": tag_list},
                               ensure_ascii=False).encode() + b"\n")
    out = io.StringIO(newline="")
    writer = csv.writer(out)  # "\r\n" line ends; fields holding \r or \n are quoted
    writer.writerow(["id", "title", "body", "tags"])
    starts, line = [], 2
    for ident, title, body, tag_list in expected:
        before = out.tell()
        writer.writerow([ident, title, body, "|".join(tag_list)])
        starts.append(line)
        line += out.getvalue()[before:].count("\n")
    for name, data in (("r.jsonl", jsonl.getvalue()), ("r.csv", out.getvalue().encode())):
        path = tmp_path / (name + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data) if gz else data)
        got = [(a.id, a.texts["title"], a.texts["body"], a.tags) for a in read_articles(path)]
        assert got == expected
        lines = [a.line for a in read_articles(path)]
        assert lines == (starts if name.endswith(".csv") else list(range(1, len(expected) + 1)))


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
