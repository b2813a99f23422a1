"""Browser tests: headless Chromium (Playwright) against the real gunicorn server and a cross-origin host page."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (pip install -e '.[test]')")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "wikinews-sample.jsonl.gz"
# Written by every run (gitignored); docs/img/demo-article.png is a committed copy of it.
SCREENSHOT = ROOT / "test-artifacts" / "demo-article.png"
CORPUS_SIZE = 300
SHOWCASE_ID = "wikinews-12287"  # short story with a clear related list: the README screenshot
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    """Return a TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def related_command() -> list[str]:
    """The ``related`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("related")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from training.cli import main; main()"]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def wait_until_ready(url: str, process: subprocess.Popen, log_path: Path, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"related serve exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout} s:\n{log_path.read_text()[-3000:]}")


class QuietHandler(SimpleHTTPRequestHandler):
    """Static files for the host pages, without request logging on stderr."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The first CORPUS_SIZE articles of the bundled Wikinews sample."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for _, line in zip(range(CORPUS_SIZE), handle)]


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"api": free_port(), "host": free_port(), "dead": free_port()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, records: list[dict], ports: dict[str, int]) -> Iterator[dict]:
    """``related serve`` (gunicorn, 1 worker) on a model trained on the sample, CORS open to the host site."""
    from training.pipeline import train

    work = tmp_path_factory.mktemp("browser")
    corpus = work / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    version = train(corpus, work / "models", neighbors=20, n_jobs=1).version
    env = {**os.environ, "RELATED_EVENTS_DIR": str(work / "events"),
           "RELATED_CORS_ORIGINS": f"http://127.0.0.1:{ports['host']}", "RELATED_RELOAD_INTERVAL": "60"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = work / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*related_command(), "serve", "--models-dir", str(work / "models"), "--port", str(ports["api"]),
             "--workers", "1"], env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{ports['api']}"
    try:
        wait_until_ready(base + "/readyz", process, log_path)
        yield {"base": base, "version": version, "events": work / "events"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def host_site(tmp_path_factory: pytest.TempPathFactory, ports: dict[str, int]) -> Iterator[dict]:
    """A plain http.server on another port (another origin) serving host pages written by the tests."""
    root = tmp_path_factory.mktemp("host-site")
    httpd = ThreadingHTTPServer(("127.0.0.1", ports["host"]), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"root": root, "base": f"http://127.0.0.1:{ports['host']}"}
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def hanging_api() -> Iterator[str]:
    """A port that accepts connections (kernel backlog) and never answers: a stuck API."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    playwright = sync_api.sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


class Watched:
    """A page plus everything it reported: uncaught errors, console messages, requests."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.console: list[tuple[str, str]] = []
        self.requests: list[str] = []
        self.failed: list[tuple[str, str]] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda message: self.console.append((message.type, message.text)))
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("requestfailed", lambda request: self.failed.append((request.url, request.failure or "")))

    def script_messages(self) -> list[tuple[str, str]]:
        """Console messages not produced by the browser's own network error reporting."""
        return [(kind, text) for kind, text in self.console
                if not (kind == "error" and ("Failed to load resource" in text or "CORS policy" in text))]


@pytest.fixture
def watched(browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 900, "height": 700})
    try:
        yield Watched(context.new_page())
    finally:
        context.close()


def related_titles(server: dict, article_id: str, k: int) -> list[str]:
    body = get_json(f"{server['base']}/articles/{quote(article_id, safe='/')}/related?k={k}")
    return [item["title"] for item in body["related"]]


def box_links(page, selector: str = "[data-related-article]") -> list[dict]:
    return page.eval_on_selector_all(
        f"{selector} .related-box__link", "links => links.map(a => ({title: a.textContent, href: a.href}))")


def show_box(page, selector: str, k: int) -> None:
    page.locator(selector).scroll_into_view_if_needed()
    page.wait_for_function(
        "([sel, k]) => document.querySelectorAll(sel + ' .related-box__link').length === k", arg=[selector, k],
        timeout=10_000)


def write_host_page(host_site: dict, name: str, body: str, script: str) -> str:
    html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host {name}</title></head>
<body><h1 id="host-title">A host newspaper</h1><p id="host-text">Host content stays.</p>
{body}
{script}
<script>window.hostScriptRan = true;</script></body></html>"""
    (host_site["root"] / name).write_text(html, encoding="utf-8")
    return f"{host_site['base']}/{name}"


def read_events(server: dict) -> list[dict]:
    records = []
    for path in sorted(server["events"].glob("events-*.jsonl")):
        records.extend(json.loads(line) for line in path.read_text(encoding="ascii").splitlines())
    return records


def wait_for_events(server: dict, predicate, count: int, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = [event for event in read_events(server) if predicate(event)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_demo_article_renders_the_models_related_list(server, watched, records):
    page = watched.page
    page.goto(f"{server['base']}/demo/articles/{SHOWCASE_ID}")
    show_box(page, "[data-related-article]", 5)
    links = box_links(page)
    assert [link["title"] for link in links] == related_titles(server, SHOWCASE_ID, 5)
    expected_ids = [item["id"] for item in get_json(f"{server['base']}/articles/{SHOWCASE_ID}/related?k=5")["related"]]
    for position, (link, article_id) in enumerate(zip(links, expected_ids), start=1):
        url = urlsplit(link["href"])
        assert url.path == f"/demo/articles/{article_id}"
        assert parse_qs(url.query) == {"related_origin": [SHOWCASE_ID], "related_position": [str(position)],
                                       "related_model": [server["version"]]}
    assert page.locator(".related-box h2").inner_text().lower() == "related articles"
    assert page.locator(".related-box time").count() == 5
    page.wait_for_timeout(300)  # let the stylesheet settle before the picture
    bottom = page.evaluate("(() => { const r = document.querySelector('.related-box').getBoundingClientRect();"
                           " return r.bottom + window.scrollY; })()")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True, clip={"x": 0, "y": 0, "width": 900, "height": bottom + 32})
    assert SCREENSHOT.stat().st_size > 10_000
    assert watched.errors == [] and watched.script_messages() == []


def test_cross_origin_host_page_renders_each_box_lazily(server, host_site, watched, records):
    first, second = records[10]["id"], records[20]["id"]
    url = write_host_page(host_site, "two-boxes.html", f"""
<div id="box-a" data-related-article="{first}" data-related-k="3"><p>fallback A</p></div>
<div style="height: 2500px">long story</div>
<div id="box-b" data-related-article="{second}" data-related-k="5"></div>
<div id="box-c" data-related-article="{second}" data-related-k="2" data-related-max-age-days="36500"></div>""",
                          f'<script src="{server["base"]}/widget.js" async></script>')
    page = watched.page
    page.goto(url)
    page.wait_for_selector("#box-a .related-box", timeout=10_000)
    assert [link["title"] for link in box_links(page, "#box-a")] == related_titles(server, first, 3)
    assert "fallback A" not in page.inner_text("#box-a")
    page.wait_for_timeout(300)
    assert page.locator("#box-b .related-box").count() == 0  # far below the fold: not loaded yet
    assert not any(f"/articles/{second}/related" in request for request in watched.requests)
    show_box(page, "#box-b", 5)
    assert [link["title"] for link in box_links(page, "#box-b")] == related_titles(server, second, 5)
    page.locator("#box-c").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    assert any(f"/articles/{second}/related?k=2&max_age_days=36500" in request for request in watched.requests)
    assert len({page.locator(f"{box} .related-box h2").get_attribute("id") for box in ("#box-a", "#box-b")}) == 2
    assert page.evaluate("window.hostScriptRan") is True
    assert watched.errors == [] and watched.script_messages() == []


def test_click_navigates_and_logs_impressions_and_the_click(server, watched, records):
    origin = records[30]["id"]
    page = watched.page
    page.goto(f"{server['base']}/demo/articles/{origin}")
    show_box(page, "[data-related-article]", 5)
    target = get_json(f"{server['base']}/articles/{origin}/related?k=5")["related"][1]
    impressions = wait_for_events(server, lambda e: e["origin"] == origin and e["type"] == "impression", 5)
    shown = get_json(f"{server['base']}/articles/{origin}/related?k=5")["related"]
    assert sorted((e["position"], e["article"], e["model_version"]) for e in impressions) == [
        (position, item["id"], server["version"]) for position, item in enumerate(shown, start=1)]
    with page.expect_navigation():
        page.locator(".related-box__link").nth(1).click()
    assert urlsplit(page.url).path == f"/demo/articles/{target['id']}"
    assert page.locator("h1").inner_text() == target["title"]
    [click] = wait_for_events(server, lambda e: e["origin"] == origin and e["type"] == "click", 1)
    assert {k: v for k, v in click.items() if k != "received_at"} == {
        "type": "click", "origin": origin, "article": target["id"], "position": 2, "model_version": server["version"]}
    assert watched.errors == [] and watched.script_messages() == []


@pytest.mark.parametrize("case", ["unknown_id", "bad_parameter", "api_down", "api_hangs", "script_down", "not_allowed"])
def test_failures_leave_the_host_page_intact(server, host_site, hanging_api, ports, watched, records, case):
    article, api, script_base = records[40]["id"], "", server["base"]
    attributes = 'data-related-k="3"'
    if case == "unknown_id":
        article = "no-such-article"
    elif case == "bad_parameter":
        attributes = 'data-related-k="0"'  # the API answers 400
    elif case == "api_down":
        api = f"http://127.0.0.1:{ports['dead']}"
    elif case == "api_hangs":
        api = hanging_api
    elif case == "script_down":
        script_base = f"http://127.0.0.1:{ports['dead']}"
    url = write_host_page(host_site, f"{case}.html",
                          f'<div id="box" data-related-article="{article}" {attributes}><p>fallback</p></div>',
                          f'<script src="{script_base}/widget.js" data-timeout="400" '
                          f'{f"data-api={api!r}" if api else ""} async></script>')
    if case == "not_allowed":  # same page, but from an origin missing from the CORS allow-list
        url = url.replace("127.0.0.1", "localhost")
    page = watched.page
    page.goto(url)
    page.wait_for_timeout(1200)  # past the widget's 400 ms timeout
    assert page.locator(".related-box").count() == 0
    assert page.inner_text("#box") == "fallback"
    assert page.inner_text("#host-text") == "Host content stays."
    assert page.evaluate("window.hostScriptRan") is True
    assert watched.errors == [], watched.errors
    assert watched.script_messages() == []
    if case == "api_hangs":
        assert any(url.startswith(hanging_api) and "ABORTED" in failure for url, failure in watched.failed)


def test_keyboard_reaches_every_link_in_order(server, watched, records):
    origin = records[50]["id"]
    page = watched.page
    page.goto(f"{server['base']}/demo/articles/{origin}")
    show_box(page, "[data-related-article]", 5)
    wanted = [link["href"] for link in box_links(page)]
    page.evaluate("window.scrollTo(0, 0); document.activeElement && document.activeElement.blur()")
    focused = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement && document.activeElement.href || null"))
        if focused[-1] == wanted[-1]:
            break
    reached = [href for href in focused if href in wanted]
    assert reached == wanted
    page.keyboard.press("Enter")
    page.wait_for_url(wanted[-1])


def test_widget_renders_untrusted_fields_safely(host_site, watched):
    fake = host_site["root"] / "fake-api" / "articles" / "x" / "related"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(json.dumps({"model_version": "v1", "related": [
        {"id": "a", "title": "<img src=z onerror=window.pwned=1>", "url": "https://news.example/a",
         "published_at": "2004-11-13", "explanation": ["shared: nuclear", "Iran"]},
        {"id": "b", "title": "Bad link", "url": "javascript:window.pwned=2"},
        {"id": "c", "title": "", "url": "https://news.example/c"},
        {"id": "d", "title": "No date", "url": "https://news.example/d", "published_at": "soon"},
    ]}), encoding="utf-8")
    script = (Path(__file__).resolve().parents[1] / "service" / "static" / "widget.js").read_text(encoding="utf-8")
    (host_site["root"] / "widget.js").write_text(script, encoding="utf-8")
    url = write_host_page(host_site, "untrusted.html", '<div id="box" data-related-article="x"></div>',
                          f'<script src="/widget.js" data-api="{host_site["base"]}/fake-api" '
                          'data-events="off"></script>')
    page = watched.page
    page.goto(url)
    page.wait_for_selector("#box .related-box", timeout=10_000)
    links = box_links(page, "#box")
    assert [link["title"] for link in links] == ["<img src=z onerror=window.pwned=1>", "No date"]
    assert [urlsplit(link["href"]).netloc for link in links] == ["news.example", "news.example"]
    assert page.evaluate("window.pwned") is None
    why = page.locator(".related-box__why")
    assert why.count() == 1 and why.inner_text() == "shared: nuclear, Iran"
    assert page.locator(".related-box__link").first.get_attribute("aria-describedby") == why.get_attribute("id")
    page.locator(".related-box__item").first.hover()
    page.wait_for_function("parseFloat(getComputedStyle(document.querySelector('.related-box__why')).opacity) > 0.5")
    assert page.locator(".related-box time").get_attribute("datetime") == "2004-11-13"
    assert watched.errors == [] and watched.script_messages() == []
