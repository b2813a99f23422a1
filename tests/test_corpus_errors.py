"""Tests for training.corpus errors: bad JSONL and CSV records located by file, line and field; skip_invalid."""

from __future__ import annotations

import gzip

import pytest

from tests.test_corpus import GOOD, assert_located, write
from training.corpus import CorpusError, read_articles


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


def test_truncated_gzip_is_a_located_error(tmp_path):
    data = gzip.compress(("\n".join([GOOD] + [f'{{"id": "n{i}", "body": "{i}"}}' for i in range(3000)])).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match="cannot read corpus") as caught:
        list(read_articles(path, skip_invalid=True))
    assert caught.value.path == str(path) and caught.value.line > 1


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
