"""The book builds with -W (no warnings) and renders offline: no external script or stylesheet, local MathJax and
widget manager, a Colab launch button on every notebook page pointing at that notebook in the configured repository."""

from __future__ import annotations

import re

import pytest
from conftest import toc_files as _toc_files

from efflab.notebooks import colab_url, read_repo_config

pytestmark = pytest.mark.slow

EXTERNAL_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=[\"']?(?:https?:)?//", re.IGNORECASE)
EXTERNAL_STYLE = re.compile(r"<link\b[^>]*\brel=[\"']?stylesheet[^>]*\bhref=[\"']?(?:https?:)?//", re.IGNORECASE)


def test_every_toc_page_is_built(html, repo_root):
    for name in _toc_files(repo_root):
        assert (html / f"{name}.html").is_file(), name


def test_no_external_scripts_or_stylesheets(html):
    pages = list(html.rglob("*.html"))
    assert pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not EXTERNAL_SCRIPT.search(text), f"{page.name} loads a script from the network"
        assert not EXTERNAL_STYLE.search(text), f"{page.name} loads a stylesheet from the network"


def test_mathjax_is_served_locally(html):
    page = (html / "chapters" / "00_welcome.html").read_text(encoding="utf-8")
    match = re.search(r"<script[^>]*src=\"([^\"?]*mathjax/tex-mml-chtml\.js)(\?[^\"]*)?\"", page)
    assert match, "the welcome page (it has math) must load the local MathJax"
    assert (html / "chapters" / match.group(1)).resolve().is_file()
    fonts = list((html / "_static" / "mathjax" / "output" / "chtml" / "fonts").rglob("*.woff"))
    assert fonts, "MathJax's fonts must ship with the book"


def test_widget_manager_is_local(html):
    assert (html / "_static" / "require.js").is_file()
    assert (html / "_static" / "html-manager" / "embed-amd.js").is_file()
    for page in html.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if "application/vnd.jupyter.widget-state+json" in text:
            assert "_static/html-manager/embed-amd.js" in text and "_static/require.js" in text, page.name


def test_colab_button_points_at_each_notebook(html, repo_root):
    repo = read_repo_config(repo_root)
    notebooks = [f for f in _toc_files(repo_root) if (repo_root / f"{f}.ipynb").exists()]
    assert notebooks
    for name in notebooks:
        page = (html / f"{name}.html").read_text(encoding="utf-8")
        assert colab_url(repo, f"{name}.ipynb") in page, name
