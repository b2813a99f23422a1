"""Tests of the demo site (article list, article pages) and of how the widget's files are served."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest

from service.demo import PAGE_SIZE, display_date, paragraphs, safe_url
from tests.conftest import ODD_IDS

STATIC = Path(__file__).resolve().parents[1] / "service" / "static"


class PageParser(HTMLParser):
    """Collects the attributes of every tag and the visible text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(response) -> PageParser:
    parser = PageParser()
    parser.feed(response.get_data(as_text=True))
    return parser


def listed_titles(response) -> list[str]:
    html = response.get_data(as_text=True)
    return [re.sub(r"&#39;", "'", t) for t in re.findall(r'class="article-list__title" href="[^"]*">([^<]*)</a>', html)]


def test_index_lists_newest_first_and_pages(client, tiny_corpus):
    records = tiny_corpus[1]
    first = client.get("/")
    assert first.status_code == 200 and first.mimetype == "text/html"
    titles = listed_titles(first)
    assert len(titles) == PAGE_SIZE
    second = listed_titles(client.get("/?page=2"))
    assert len(second) == len(records) - PAGE_SIZE
    date_of = {r["title"]: r["published_at"] for r in records}
    dates = [date_of[t] for t in titles + second]
    assert dates == sorted(dates, reverse=True)
    assert sorted(titles + second) == sorted(date_of)
    assert "page 1 of 2" in first.get_data(as_text=True)
    assert 'rel="next" href="/?page=2"' in first.get_data(as_text=True)


def test_index_search_matches_every_word_of_titles(client, tiny_corpus):
    records = tiny_corpus[1]
    word = records[0]["title"].split()[-1]
    expected = sorted(r["title"] for r in records if word.casefold() in r["title"].casefold())
    response = client.get(f"/?q={word.upper()}")
    assert sorted(listed_titles(response)) == expected
    assert f'value="{word.upper()}"' in response.get_data(as_text=True)
    both = client.get(f"/?q=energy+{word}")
    assert sorted(listed_titles(both)) == sorted(t for t in expected if "energy" in t.casefold())
    nothing = client.get("/?q=zzzzunmatched")
    assert listed_titles(nothing) == [] and "No article title contains" in nothing.get_data(as_text=True)


def test_index_page_past_the_end_is_empty_not_an_error(client):
    response = client.get("/?page=9")
    assert response.status_code == 200
    assert listed_titles(response) == [] and "There is no page 9" in response.get_data(as_text=True)


@pytest.mark.parametrize("query", ["page=0", "page=abc", "page=1&page=2", "page=-1", "q=" + "x" * 201])
def test_bad_index_parameters_are_400_pages(client, query):
    response = client.get(f"/?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert ("query parameter page" in response.get_data(as_text=True)
            or "query parameter q" in response.get_data(as_text=True))


@pytest.mark.parametrize("article_id", ["energy-0", "space-5", *ODD_IDS])
def test_article_page_shows_the_article_and_the_box(client, tiny_corpus, article_id):
    record = next(r for r in tiny_corpus[1] if r["id"] == article_id)
    response = client.get(f"/demo/articles/{quote(article_id, safe='/')}")
    assert response.status_code == 200, response.data[:300]
    page = parse(response)
    text = " ".join(" ".join(page.text).split())
    assert record["title"] in text
    assert " ".join(record["body"].split()) in text
    assert record["tags"][0] in text
    assert display_date(record["published_at"]) in text
    slots = [attrs for tag, attrs in page.tags if "data-related-article" in attrs]
    assert slots == [{"class": "related-slot", "data-related-article": article_id, "data-related-k": "5"}]
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts == [{"src": "/widget.js", "data-link-template": "/demo/articles/{id}", "async": None}]
    assert ("a", {"href": record["url"], "rel": "noopener"}) in page.tags


def test_pages_load_nothing_from_other_origins(client):
    for url in ("/", "/demo/articles/energy-0", "/demo/articles/nope"):
        response = client.get(url)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
        for tag, attrs in parse(response).tags:
            if tag in {"script", "img", "link", "iframe"}:
                target = attrs.get("src") or attrs.get("href") or ""
                assert target.startswith("/") or target.startswith("data:"), (url, tag, attrs)


def test_unknown_article_is_a_404_page(client):
    response = client.get("/demo/articles/no-such-id")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "No article with id &#39;no-such-id&#39;" in response.get_data(as_text=True)


def test_pages_answer_503_until_a_model_exists(tmp_path):
    from service import create_app

    client = create_app({"models_dir": str(tmp_path / "empty")}).test_client()
    for url in ("/", "/demo/articles/energy-0"):
        response = client.get(url)
        assert response.status_code == 503 and response.mimetype == "text/html"
        assert response.headers["Retry-After"] == "5"
        assert "Not ready yet" in response.get_data(as_text=True)


def test_untrusted_corpus_text_is_escaped(tmp_path, train_tiny):
    from service import create_app
    from tests.conftest import make_tiny_corpus

    corpus = tmp_path / "corpus.jsonl"
    records = make_tiny_corpus(corpus)
    records[0].update(title="<script>alert(1)</script> & co", url="javascript:alert(2)",
                      body="<img src=x onerror=alert(3)> text", tags=["<b>tag</b>"])
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    train_tiny(corpus, tmp_path / "models")
    client = create_app({"models_dir": str(tmp_path / "models")}).test_client()
    for url in (f"/demo/articles/{records[0]['id']}", "/?q=alert"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>tag" not in html
        assert "javascript:" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html


def test_widget_files_are_served(client):
    with client.get("/widget.js") as script:
        assert script.status_code == 200
        assert script.mimetype == "text/javascript"
        assert script.headers["Cache-Control"] == "public, max-age=300"
        assert script.get_data() == (STATIC / "widget.js").read_bytes()
    with client.get("/widget.css") as style:
        assert style.status_code == 200 and style.mimetype == "text/css"
        assert style.get_data() == (STATIC / "widget.css").read_bytes()
    with client.get("/static/demo.css") as demo_style:
        assert demo_style.status_code == 200 and demo_style.mimetype == "text/css"


def test_widget_source_never_logs_or_uses_innerhtml():
    source = (STATIC / "widget.js").read_text(encoding="utf-8")
    assert not re.search(r"\bconsole\.", source)
    assert "innerHTML" not in source and "eval(" not in source and "document.write" not in source
    assert "navigator.sendBeacon" in source


@pytest.mark.parametrize(("body", "expected"), [
    (None, []),
    ("  ", []),
    ("First. Second! Third? Fourth.", ["First. Second! Third?", "Fourth."]),
    ("One para.\n\nTwo\n  para.", ["One para.", "Two para."]),
    ("no sentence end at all", ["no sentence end at all"]),
    ('He said "Yes." Then "No!" (Maybe.) Done. Four.', ['He said "Yes." Then "No!" (Maybe.)', "Done. Four."]),
])
def test_paragraphs(body, expected):
    assert paragraphs(body) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("2004-11-13", "13 November 2004"), ("2004-11-13T23:30:00-02:00", "14 November 2004"),
    ("2004-11-13T10:00:00Z", "13 November 2004"), ("yesterday", None), (None, None), ("", None),
])
def test_display_date(value, expected):
    assert display_date(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("https://a.example/x", "https://a.example/x"), ("http://a.example", "http://a.example"),
    ("javascript:alert(1)", None), ("//a.example/x", None), ("/relative", None), (None, None), (3, None),
])
def test_safe_url(value, expected):
    assert safe_url(value) == expected
