"""Tests for training.corpus CSV reading: quoting, multi-line cells, gzip/BOM/CRLF, field maps, round trips."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_corpus import assert_located
from training.corpus import CorpusError, FieldMap, read_articles


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
