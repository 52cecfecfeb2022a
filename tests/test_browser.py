"""The reader's journey in a real browser: headless Chromium at 1280 px, network off, through every page of the book.

Each page is served from localhost and loaded with every other host unresolvable. Two small scripts are injected into
every page as it is served (the built files are not changed): the first, at the top of ``<head>``, records every
console error and warning, uncaught error and failed resource; the second, once the page has loaded and MathJax has
typeset, audits what a reader sees and leaves its findings in the DOM as JSON.

The tests fail on a console error or warning, a request the server answered with an error (fonts, favicon), raw TeX
or MyST markup left visible, a code cell, output, table or display equation wider than its column (its content
scrolls sideways or spills out of the article), an image or internal link that does not resolve, a widget whose saved
state did not render, a search that finds nothing, or a site heavier than 15 MB. A full-page screenshot of every page
and the audit (``audit.json``) are saved under ``_build/screenshots``, the artifact of the test run.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
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
WIDTH_PX = 1280  # the reader's window: a laptop browser, the width the book's layout is checked at
MAX_SHOT_HEIGHT_PX = 16_000  # full-page screenshots are cut here (Chromium's own limit is 16384 px)
MAX_SITE_BYTES = 15 * 2**20  # the whole built site, fonts and MathJax included
# Headless flags that work as root on these machines; the resolver rule is what turns the network off.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--hide-scrollbars",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=20000",
]
BAD_CONSOLE = re.compile(r"Uncaught|Failed to load resource|net::ERR_|is not defined|SyntaxError|TypeError", re.I)
CONSOLE = re.compile(r"CONSOLE[^\]]*\]\s*(.*)")

# First in <head>: keep every console error/warning, uncaught error, rejected promise and failed resource.
RECORDER_JS = """<script>(function () {
  var seen = window.__efflabSeen = [];
  ["error", "warn"].forEach(function (level) {
    var original = console[level];
    console[level] = function () {
      seen.push(level + ": " + Array.prototype.map.call(arguments, String).join(" "));
      return original.apply(console, arguments);
    };
  });
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) seen.push("failed resource: " + (t.src || t.href));
    else seen.push("uncaught: " + e.message);
  }, true);
  window.addEventListener("unhandledrejection", function (e) { seen.push("unhandled rejection: " + e.reason); });
})();</script>"""

# Last in <body>: after load, MathJax and the widget manager, measure what overflows and what is left raw.
AUDIT_JS = """<script>(function () {
  function describe(el) {
    var text = (el.innerText || el.textContent || "").replace(/\\s+/g, " ").trim();
    return el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined && el.className
      ? "." + String(el.className).trim().split(/\\s+/).join(".") : "") + " | " + text.slice(0, 80);
  }
  function kind(el) {
    if (el.closest("mjx-container, .math")) return "equation";
    if (el.closest(".cell_output, .output")) return el.closest("table") ? "table" : "output";
    if (el.closest(".cell_input, .highlight")) return "code";
    if (el.closest("table")) return "table";
    return "other";
  }
  // How many characters a line of code may have: the code column's width over one monospace character's.
  function codeColumnChars() {
    var pre = document.querySelector(".cell_input pre, div.highlight pre");
    if (!pre) return null;
    var probe = document.createElement("span");
    probe.textContent = "0123456789".repeat(10);
    pre.appendChild(probe);
    var charPx = probe.getBoundingClientRect().width / 100;
    probe.remove();
    var style = getComputedStyle(pre);
    var inner = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return Math.floor(inner / charPx);
  }
  function audit() {
    var article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
    var box = article.getBoundingClientRect();
    var overflow = [];
    var seen = new Set();
    article.querySelectorAll("*").forEach(function (el) {
      // inline math never wraps and its glyphs overhang their box by a pixel or two: judge the paragraph, not it
      if (el.closest("script, style, .efflab-audit, span.math, mjx-assistive-mml")) return;
      var style = getComputedStyle(el);
      if (style.display === "none" || style.visibility === "hidden") return;
      var scrolls = /auto|scroll|hidden/.test(style.overflowX) && el.scrollWidth > el.clientWidth + 1;
      var r = el.getBoundingClientRect();
      var spills = r.width > 0 && (r.right > box.right + 1 || r.left < box.left - 1);
      if (!scrolls && !spills) return;
      for (var p = el.parentElement; p && p !== article; p = p.parentElement) if (seen.has(p)) return;
      seen.add(el);
      overflow.push({kind: kind(el), how: scrolls ? "scrolls" : "spills",
                     hidden_px: Math.round(scrolls ? el.scrollWidth - el.clientWidth
                                                   : Math.max(r.right - box.right, box.left - r.left)),
                     what: describe(el)});
    });
    var clone = article.cloneNode(true);
    clone.querySelectorAll("pre, code, script, style, mjx-container, .efflab-audit").forEach(function (n) { n.remove(); });
    var visible = clone.textContent;
    var raw = [];
    var patterns = [/:::\\{/, /\\{(eq|ref|numref|cite|doc|math|admonition|note|tip)\\}/, /\\$\\$/, /\\\\begin\\{/,
                    /\\\\(frac|tag|text|mathrm)\\{/];
    patterns.forEach(function (re) { var m = visible.match(re); if (m) raw.push(m[0] + " near: " +
      visible.slice(Math.max(0, m.index - 40), m.index + 40).replace(/\\s+/g, " ")); });
    var counts = {
      code: article.querySelectorAll(".cell_input").length,
      output: article.querySelectorAll(".cell_output").length,
      table: article.querySelectorAll("table").length,
      equation: article.querySelectorAll("mjx-container[display='true']").length
    };
    var out = document.createElement("script");
    out.type = "application/json";
    out.id = "efflab-audit";
    out.className = "efflab-audit";
    out.textContent = JSON.stringify({overflow: overflow, raw: raw, counts: counts, seen: window.__efflabSeen,
      height_px: document.documentElement.scrollHeight,
      code_column_chars: codeColumnChars(), typeset: !!document.querySelector("mjx-container")});
    document.body.appendChild(out);
  }
  window.addEventListener("load", function () {
    var ready = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise
      ? window.MathJax.startup.promise : Promise.resolve();
    ready.then(function () { setTimeout(audit, 4000); }, function () { setTimeout(audit, 4000); });
  });
})();</script>"""
AUDIT = re.compile(r'<script type="application/json" id="efflab-audit"[^>]*>(.*?)</script>', re.S)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the built book, injecting the recorder and the audit into every page, and keeps every failed request."""

    failed: list[str]  # set per server

    def log_message(self, *args):  # quiet
        pass

    def log_request(self, code="-", size="-"):
        if str(code).isdigit() and int(code) >= 400:
            self.failed.append(f"{code} {urllib.parse.unquote(self.path)}")

    def do_GET(self):
        path = self.translate_path(self.path)
        if not path.endswith(".html") or not os.path.isfile(path):
            return super().do_GET()
        with open(path, encoding="utf-8") as f:
            page = f.read()
        page = page.replace("<head>", "<head>" + RECORDER_JS, 1).replace("</body>", AUDIT_JS + "</body>", 1)
        body = page.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server(html):
    failed: list[str] = []
    handler = functools.partial(type("Handler", (_Handler,), {"failed": failed}), directory=str(html))

    class Quiet(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):  # broken pipes from the browser are not failures
            pass

    httpd = Quiet(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", failed
    httpd.shutdown()


def _chromium(*args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `make test` installs it (Debian package chromium)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=180,
        )


def _console_errors(stderr: str) -> list[str]:
    messages = [m.group(1) for m in map(CONSOLE.search, stderr.splitlines()) if m]
    return [m for m in messages if BAD_CONSOLE.search(m)]


@pytest.fixture(scope="module")
def pages(html, repo_root, server):
    """Each toc page's rendered DOM, its audit, console errors and failed requests, and a full-page screenshot."""
    url_root, failed = server
    shots = repo_root / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    rendered = {}
    for name in toc_files(repo_root):
        url = f"{url_root}/{name}.html"
        del failed[:]
        dom = _chromium(f"--window-size={WIDTH_PX},1000", "--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-2000:]
        found = AUDIT.search(dom.stdout)
        assert found, f"{name}: the audit script did not run (page never finished loading?)"
        audit = json.loads(found.group(1))
        audit["console"] = _console_errors(dom.stderr)
        audit["failed_requests"] = sorted(set(failed))
        shot = shots / (name.replace("/", "__") + ".png")
        height_px = min(max(int(audit["height_px"]), 800), MAX_SHOT_HEIGHT_PX)
        _chromium(f"--window-size={WIDTH_PX},{height_px}", f"--screenshot={shot}", url)
        rendered[name] = (dom.stdout, audit, shot)
    (shots / "audit.json").write_text(json.dumps({n: a for n, (_, a, _) in rendered.items()}, indent=1))
    return rendered


# Console messages that are known, harmless and not ours to fix, each with its reason. Nothing else may appear.
KNOWN_CONSOLE = {
    # @jupyter-widgets/html-manager 1.0.15 compiles its widget-state JSON schema with ajv in strict mode, which warns
    # about a union type in the schema itself once per page; the state validates and every widget renders.
    "warn: strict mode: use allowUnionTypes to allow union type keyword at "
    '"#/properties/state/additionalProperties/properties/buffers/items/properties/path/items" (strictTypes)',
}


def test_no_page_errors(pages):
    errors = {
        name: [m for m in a["console"] + a["seen"] if m not in KNOWN_CONSOLE] for name, (_, a, _) in pages.items()
    }
    errors = {name: found for name, found in errors.items() if found}
    assert not errors, errors


def test_no_failed_requests(pages):
    failed = {name: a["failed_requests"] for name, (_, a, _) in pages.items() if a["failed_requests"]}
    assert not failed, failed


def test_nothing_wider_than_its_column(pages):
    """No code cell, output, table or display equation scrolls sideways or spills out of the article at 1280 px."""
    wide = {name: a["overflow"] for name, (_, a, _) in pages.items() if a["overflow"]}
    assert not wide, json.dumps(wide, indent=1)


def test_no_raw_markup(pages):
    raw = {name: a["raw"] for name, (_, a, _) in pages.items() if a["raw"]}
    assert not raw, raw


def test_math_is_typeset(pages, html):
    for name, (_, audit, _) in pages.items():
        source = (html / f"{name}.html").read_text(encoding="utf-8")
        if 'class="math' in source:
            assert audit["typeset"], f"{name}: MathJax did not typeset"


def test_screenshots_saved(pages):
    for name, (_, _, shot) in pages.items():
        assert shot.is_file() and shot.stat().st_size > 10_000, name


def test_widgets_render_their_saved_state(pages, html):
    for name, (dom, _, _) in pages.items():
        source = (html / f"{name}.html").read_text(encoding="utf-8")
        if "application/vnd.jupyter.widget-state+json" in source:
            assert re.search(r'class="[^"]*\bwidget-', dom), f"{name}: no widget was rendered from its saved state"


def test_site_size(html):
    """The whole site, as a reader downloads or a host serves it, stays small: only what pages load is copied."""
    total = sum(f.stat().st_size for f in html.rglob("*") if f.is_file())
    largest = sorted((f.stat().st_size, str(f.relative_to(html))) for f in html.rglob("*") if f.is_file())[-5:]
    assert total <= MAX_SITE_BYTES, f"site is {total / 2**20:.1f} MiB; largest files: {largest}"


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
    dom = _chromium("--dump-dom", f"{server[0]}/search.html?q=roofline").stdout
    results = re.findall(r'<li[^>]*>\s*<a[^>]*href="[^"]+\.html', dom.split('id="search-results"', 1)[-1])
    assert results, "searching the book for 'roofline' found nothing"
    snippets = re.findall(r'<p class="context">(.*?)</p>', dom, re.S)
    assert snippets and not [s for s in snippets if "import " in s], snippets  # prose, not a page's import cell
