"""Every notebook's Markdown reads cleanly where students open it: Colab, JupyterLab and Notebook 7 render CommonMark
(plus math), not MyST. No directive, role, label or option may show there as raw text; equation numbers are written
with ``\\tag`` so that the book and Colab show the same ones; a takeaway is a block quote, which the book (only) turns
into a tip box (``efflab/_sphinx.py``)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for folder in ("chapters", "labs", "labs/masters") for p in (ROOT / folder).glob("*.ipynb"))
# What MyST-only syntax looks like once a CommonMark renderer has passed it through as text.
RAW_MYST = re.compile(
    r":::+\s*\{[\w-]+\}"  # colon-fence directives
    r"|```+\s*\{[\w-]+\}"  # backtick directives
    r"|\{(?:eq|ref|numref|cite|doc|term|download|math|abbr|sub|sup)\}`"  # roles (rendered as text + code)
    r"|\{(?:eq|ref|numref|cite|doc|term|download|math|abbr|sub|sup)\}<code>"
    r"|^\s*:(?:class|name|label|width|align):\s"  # directive options
    r"|^\s*\(\w[\w-]*\)=\s*$"  # MyST targets
    r"|\$\$\s*\(\w[\w-]*\)",  # labelled display math
    re.M,
)
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)


def _markdown_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def _rendered_text(source: str) -> str:
    """What a CommonMark renderer shows (tags dropped), with the math left as its TeX source as Jupyter does."""
    masked, maths = [], []

    def keep(match):
        maths.append(match.group(0))
        return f"MATH{len(maths) - 1}X"

    masked = MATH.sub(keep, source)
    rendered = MarkdownIt("commonmark").render(masked)
    text = html.unescape(re.sub(r"<(?!code>)[^>]+>", "", rendered))
    return re.sub(r"MATH(\d+)X", lambda m: maths[int(m.group(1))], text)


def test_every_notebook_has_markdown():
    assert len(NOTEBOOKS) >= 17 and all(_markdown_cells(p) for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_myst_markup_shows_in_a_plain_renderer(path):
    found = []
    for number, source in enumerate(_markdown_cells(path)):
        text = _rendered_text(source)
        found += [f"markdown cell {number}: {m.group(0)!r}" for m in RAW_MYST.finditer(text)]
        found += [f"markdown cell {number}: {m.group(0)!r}" for m in RAW_MYST.finditer(MATH.sub("", source))]
    assert not found, found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_equation_numbers_are_tags_and_every_reference_has_its_equation(path):
    text = "\n".join(_markdown_cells(path))
    tags = re.findall(r"\\tag\{([^}]*)\}", text)
    assert len(tags) == len(set(tags)), f"an equation number used twice: {tags}"
    chapter = re.match(r"(\d\d)_", path.name)
    if chapter:
        assert all(t.split(".")[0] == str(int(chapter.group(1))) for t in tags), tags
    prose = MATH.sub("", text)
    # "(5.2)" in chapter 5's prose is a reference to its equation 5.2 ("(0.9)" there is a fraction, not a reference)
    number = str(int(chapter.group(1))) if chapter else None
    references = {r for r in re.findall(r"\((\d+\.\d+)\)", prose) if r.split(".")[0] == number}
    assert references <= set(tags), f"references to equations this page does not number: {references - set(tags)}"


def test_the_book_turns_a_takeaway_quote_into_a_tip_box():
    from docutils import nodes
    from docutils.core import publish_doctree
    from myst_parser.docutils_ import Parser

    from efflab._sphinx import _takeaways

    source = "> **Takeaway**\n>\n> - one\n> - two\n\n> **Not a takeaway** but a quote.\n"
    doctree = publish_doctree(source, parser=Parser(), settings_overrides={"report_level": 4})
    _takeaways(None, doctree)
    boxes = list(doctree.findall(nodes.admonition))
    assert len(boxes) == 1 and "tip" in boxes[0]["classes"]
    assert boxes[0][0].astext() == "Takeaway" and isinstance(boxes[0][1], nodes.bullet_list)
    assert len(list(doctree.findall(nodes.block_quote))) == 1  # the other quote stays a quote


def test_the_book_marks_saved_widgets_as_snapshots():
    from docutils import nodes

    from efflab._sphinx import WIDGET_VIEW, _static_widgets

    document = nodes.document(None, None)
    output = nodes.container(classes=["cell_output"])
    output += nodes.raw("", f'<script type="{WIDGET_VIEW}">{{"model_id": "x"}}</script>', format="html")
    document += output
    document += nodes.container("", nodes.raw("", "<p>plain output</p>", format="html"), classes=["cell_output"])
    _static_widgets(None, document)
    assert "efflab-static-widget" in output["classes"] and "snapshot" in output[0].astext()
    assert len(list(document.findall(nodes.raw))) == 3  # one note, before the widget only


# A cell tagged hide-input is shown inside a collapsible box whose padding takes about two characters of the column.
HIDDEN_INPUT_MARGIN_CHARS = 2


def _shown_code_cells(path: Path) -> list[tuple[int, str, int]]:
    """Code cells a reader sees (the managed setup cell is hidden in the book, tag ``remove-cell``), each with the
    characters its line may hold."""
    from efflab.style import TEXT_WIDTH_CHARS

    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    shown = []
    for i, c in enumerate(cells):
        tags = c.get("metadata", {}).get("tags", [])
        if c["cell_type"] == "code" and "remove-cell" not in tags:
            width = TEXT_WIDTH_CHARS - (HIDDEN_INPUT_MARGIN_CHARS if "hide-input" in tags else 0)
            shown.append((i, "".join(c["source"]), width))
    return shown


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_fits_the_book_column(path):
    """No code line is wider than the book's code column (TEXT_WIDTH_CHARS, two fewer in a hide-input box; the browser
    test measures the column), so nothing scrolls sideways. ``ruff format --line-length 76`` on a cell does most of it;
    long strings and comments are split by hand."""
    wide = [
        f"cell {i}: {len(line)} chars (at most {width}): {line}"
        for i, source, width in _shown_code_cells(path)
        for line in source.splitlines()
        if len(line) > width
    ]
    assert not wide, "\n".join(wide)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_printed_text_fits_the_book_column(path):
    """Stored text outputs (prints, reports, verdicts) wrap at TEXT_WIDTH_CHARS too: efflab's reports call
    ``efflab.style.wrap_text``; a notebook's own prints are written to fit."""
    from efflab.style import TEXT_WIDTH_CHARS

    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    wide = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code" or "remove-cell" in cell.get("metadata", {}).get("tags", []):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text = "".join(out["text"])
            elif "text/html" in out.get("data", {}) or "application/vnd.jupyter.widget-view+json" in out.get(
                "data", {}
            ):
                continue  # the book shows the HTML or the widget, not the plain-text fallback
            else:
                text = "".join(out.get("data", {}).get("text/plain", ""))
            wide += [f"cell {i}: {line}" for line in text.splitlines() if len(line) > TEXT_WIDTH_CHARS]
    assert not wide, "\n".join(wide)
