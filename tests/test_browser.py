"""The reader's journey in a real browser: headless Chromium, network off, through every page of the built book.

Each page is served from localhost and loaded with every other host unresolvable. The test fails on a page error in
the console, a resource that failed to load, raw TeX left untypeset, an image or internal link that does not resolve,
a widget whose saved state did not render, or a search that finds nothing. A screenshot of every page is saved under
``_build/screenshots`` (an artifact of the test run).
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import tempfile
import threading
import urllib.parse

import pytest
from conftest import toc_files

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Headless flags that work as root on these machines; the resolver rule is what turns the network off.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=15000",
]
BAD_CONSOLE = re.compile(r"Uncaught|Failed to load resource|net::ERR_|is not defined|SyntaxError|TypeError", re.I)
CONSOLE = re.compile(r"CONSOLE[^\]]*\]\s*(.*)")


@pytest.fixture(scope="module")
def server(html):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))

    class Quiet(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):  # broken pipes from the browser are not failures
            pass

    http.server.SimpleHTTPRequestHandler.log_message = lambda *args: None
    httpd = Quiet(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _chromium(*args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `make test` installs it (Debian package chromium)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )


def _console_errors(stderr: str) -> list[str]:
    messages = [m.group(1) for m in map(CONSOLE.search, stderr.splitlines()) if m]
    return [m for m in messages if BAD_CONSOLE.search(m)]


@pytest.fixture(scope="module")
def pages(html, repo_root, server):
    """Each toc page's rendered DOM (after scripts ran) and console errors, plus a saved screenshot."""
    shots = repo_root / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    rendered = {}
    for name in toc_files(repo_root):
        url = f"{server}/{name}.html"
        dom = _chromium("--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-2000:]
        shot = shots / (name.replace("/", "__") + ".png")
        _chromium("--window-size=1280,2400", f"--screenshot={shot}", url)
        rendered[name] = (dom.stdout, _console_errors(dom.stderr), shot)
    return rendered


def test_no_page_errors(pages):
    errors = {name: errs for name, (_, errs, _) in pages.items() if errs}
    assert not errors, errors


def test_math_is_typeset(pages, html):
    for name, (dom, _, _) in pages.items():
        source = (html / f"{name}.html").read_text(encoding="utf-8")
        if 'class="math' in source:
            assert "<mjx-container" in dom, f"{name}: MathJax did not typeset"
        body = dom.split('<div class="bd-article-container', 1)[-1]
        visible = re.sub(r"<script.*?</script>|<style.*?</style>|<mjx-.*?</mjx-[^>]*>", "", body, flags=re.S)
        assert "$$" not in visible and "\\begin{" not in visible, f"{name}: raw TeX left on the page"


def test_screenshots_saved(pages):
    for name, (_, _, shot) in pages.items():
        assert shot.is_file() and shot.stat().st_size > 10_000, name


def test_widgets_render_their_saved_state(pages, html):
    for name, (dom, _, _) in pages.items():
        source = (html / f"{name}.html").read_text(encoding="utf-8")
        if "application/vnd.jupyter.widget-state+json" in source:
            assert re.search(r'class="[^"]*\bwidget-', dom), f"{name}: no widget was rendered from its saved state"


def test_images_and_internal_links_resolve(pages, html):
    for name, (dom, _, _) in pages.items():
        page_dir = (html / name).parent
        for attr, target in re.findall(r'<(?:img|a)\b[^>]*?\b(src|href)="([^"]+)"', dom):
            if target.startswith(("http:", "https:", "mailto:", "#", "data:", "javascript:")):
                continue
            path = urllib.parse.unquote(target.split("#")[0].split("?")[0])
            if path:
                assert (page_dir / path).resolve().exists(), f"{name}: {attr}={target} does not resolve"


def test_search_finds_a_page(server):
    dom = _chromium("--dump-dom", f"{server}/search.html?q=roofline").stdout
    results = re.findall(r'<li[^>]*>\s*<a[^>]*href="[^"]+\.html', dom.split('id="search-results"', 1)[-1])
    assert results, "searching the book for 'roofline' found nothing"
