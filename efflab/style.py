"""The course's one look: a colour per regime, the shared matplotlib style, SI number formatting, the width of
every plain-text report, and :class:`Table`, the small tables chapters print (HTML in a notebook, aligned text
elsewhere).

Every plot and widget takes its colours from here, so "memory-bound" is the same blue on the roofline, in the iron-law
bars, in the energy split (data movement) and in every widget. The palette is Okabe and Ito's colour-blind-safe set
(M. Okabe, K. Ito, "Color Universal Design", 2008, https://jfly.uni-koeln.de/color/).

matplotlib is imported lazily (only :func:`style_context` needs it), so importing this module stays cheap.
"""

from __future__ import annotations

import html
import math
import re
import textwrap
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "COMPUTE_UNITS",
    "DOMINATED_COLOR",
    "FRONT_COLOR",
    "CHOSEN_COLOR",
    "FIGSIZE_IN",
    "REGIME_COLORS",
    "DATA_COLOR",
    "STAGE_COLORS",
    "REGIME_LABELS",
    "STYLE_RC",
    "Table",
    "TEXT_WIDTH_CHARS",
    "format_si",
    "style_context",
    "wrap_lines",
    "wrap_text",
]

# One colour per regime (Okabe-Ito): memory = blue, compute = vermillion, latency = reddish purple.
REGIME_COLORS: Mapping[str, str] = MappingProxyType({"memory": "#0072B2", "compute": "#D55E00", "latency": "#CC79A7"})
REGIME_LABELS: Mapping[str, str] = MappingProxyType(
    {"memory": "memory-bound", "compute": "compute-bound", "latency": "latency-bound"}
)
# Pareto plots are not about regimes, so they use the palette's other hues: front orange, dominated grey, chosen black.
# The input (data) stage, which has no roofline regime: Okabe-Ito's bluish green; the input pipeline's stages: decode
# sky blue, augment bluish green (both input), the model step in the compute colour.
DATA_COLOR = "#009E73"
STAGE_COLORS: Mapping[str, str] = MappingProxyType(
    {"decode": "#56B4E9", "augment": DATA_COLOR, "model": REGIME_COLORS["compute"]}
)
FRONT_COLOR = "#E69F00"
DOMINATED_COLOR = "#999999"
CHOSEN_COLOR = "#000000"

# A figure that fits the book's text column (about 7.3 in at 96 dpi) without shrinking its fonts.
FIGSIZE_IN = (7.0, 4.5)

# Integer dtypes count operations, not floating-point ones: their peaks read "OP/s" in labels.
COMPUTE_UNITS: Mapping[str, str] = MappingProxyType({"int8": "OP/s", "int4": "OP/s", "int32": "OP/s"})

STYLE_RC: Mapping[str, object] = MappingProxyType(
    {
        "figure.figsize": FIGSIZE_IN,
        "figure.dpi": 100,
        "savefig.dpi": 110,
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "legend.fontsize": 8.5,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "grid.linewidth": 0.6,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
    }
)

_PREFIXES = {-15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}


def format_si(
    value: float,
    unit: str = "",
    digits: int = 3,
    *,
    trailing_zeros: bool = False,
    prefixes: tuple[str, str] = ("f", "E"),
) -> str:
    """Format a number with an SI prefix for display: ``format_si(1.2e11, "FLOP/s") == "120 GFLOP/s"``.

    The prefix is the power of 1000 at or below ``|value|``, between ``prefixes`` (smallest, largest; "" is no
    prefix); the mantissa keeps ``digits`` significant figures. Zero prints as ``"0"`` plus the unit. Every number
    efflab prints with a unit goes through here: :func:`efflab.timing.format_time_s` is ``format_si(t, "s", 4,
    trailing_zeros=True, prefixes=("n", ""))``.

    Parameters
    ----------
    value : float
        The number in base SI units (seconds, bytes, FLOP/s, joules ...).
    unit : str
        Unit appended after the prefix ("" for a bare prefix, as on tick labels).
    digits : int
        Significant figures (>= 1).
    trailing_zeros : bool, keyword-only
        Keep them ("500.0 ms" rather than "500 ms"), so that a column of figures shows its precision.
    prefixes : (str, str), keyword-only
        The smallest and largest prefix to use, from "f" (1e-15) to "E" (1e18).

    Examples
    --------
    >>> format_si(1.2e11, "FLOP/s"), format_si(3.35e12, "B/s"), format_si(4.2e-6, "s"), format_si(0.5)
    ('120 GFLOP/s', '3.35 TB/s', '4.2 µs', '500 m')
    >>> format_si(0.5, "s", 4, trailing_zeros=True), format_si(2e-13, "J", 4, prefixes=("p", ""))
    ('500.0 ms', '0.2 pJ')
    """
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"value must be finite to format; got {value}")
    if not isinstance(digits, int) or isinstance(digits, bool) or digits < 1:
        raise ValueError(f"digits must be an integer number of significant figures >= 1; got {digits!r}")
    by_prefix = {prefix: exp for exp, prefix in _PREFIXES.items()}
    try:
        low, high = (by_prefix[p] for p in prefixes)
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"prefixes must be two of {list(by_prefix)} (smallest, largest); got {prefixes!r}") from None
    if value == 0:
        return f"0 {unit}".strip()
    exp = int(math.floor(math.log10(abs(value)) / 3) * 3)
    exp = min(max(exp, low), high)
    mantissa = float(f"{value / 10**exp:.{digits}g}")
    if abs(mantissa) >= 1000 and exp < high:  # rounding carried into the next prefix (999.96 -> 1000)
        exp, mantissa = exp + 3, mantissa / 1000
    shown = f"{mantissa:#.{digits}g}".rstrip(".") if trailing_zeros else f"{mantissa:g}"
    return f"{shown} {_PREFIXES[exp]}{unit}".strip()


# Plain-text reports (claims, diagnoses, summaries, doctor) wrap at this many characters. The book's code and output
# column holds 77 monospace characters at a 1280 px window (tests/test_browser.py measures it and fails on any line
# that scrolls); Colab's and JupyterLab's output areas are wider, so what fits the book fits everywhere.
TEXT_WIDTH_CHARS = 76


def wrap_text(text: str, width: int = TEXT_WIDTH_CHARS) -> str:
    """Wrap each line of a plain-text report at ``width`` characters; a wrapped line continues two spaces deeper than
    its own indentation, so the structure of an indented report survives.

    Lines that fit are kept as they are (aligned columns included); words longer than ``width`` are not broken.

    Examples
    --------
    >>> print(wrap_text("  scorecard: idle 12 % of the wall time, above the 10 % rule", width=30))
      scorecard: idle 12 % of the
        wall time, above the 10 %
        rule
    >>> print(wrap_text("energy: 11.41 mJ over a measured 52.03 ms: 219.2 mW average", width=50))
    energy: 11.41 mJ over a measured 52.03 ms:
      219.2 mW average
    >>> wrap_text("short line") == "short line"
    True
    """
    if not isinstance(width, int) or width < 20:
        raise ValueError(f"width must be an integer number of characters >= 20; got {width!r}")
    out: list[str] = []
    for line in str(text).split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip(" "))]
        out += wrap_lines(line, width, subsequent_indent=indent + "  ") or [line]
    return "\n".join(out)


def wrap_lines(text: str, width: int = TEXT_WIDTH_CHARS, initial_indent: str = "", subsequent_indent: str = ""):
    """``textwrap.wrap`` as the reports need it: a number and its unit ("219.2 mW", "12 %") are never split, nor a
    hyphenated word ("memory-bound"), nor a long word.

    >>> wrap_lines("the model says 57 µJ per inference", 20, subsequent_indent="  ")
    ['the model says 57 µJ', '  per inference']
    """
    glued = _NUMBER_UNIT_SPACE.sub(_GLUE, text)
    wrapped = textwrap.wrap(
        glued,
        width,
        initial_indent=initial_indent,
        subsequent_indent=subsequent_indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [part.replace(_GLUE, " ") for part in wrapped]


# A number and the unit after it are one word to wrap_text: the space between them becomes this private-use character
# (not whitespace to textwrap) while lines are broken, and a space again after.
_GLUE = "\ue000"
_NUMBER_UNIT_SPACE = re.compile(r"(?<=\d) (?=[^\W\d_]|[%°])")


@contextmanager
def style_context():
    """Draw with the course style: a ``matplotlib.rc_context`` that leaves interactive mode as the body left it.

    Use it for your own figures so they match: ``with style_context(): fig, ax = plt.subplots()``. Plain
    ``rc_context`` would be wrong here: in a notebook the first figure makes IPython activate the inline backend,
    which turns interactive mode on, and restoring the old rcParams on exit would turn it off again -- every later
    figure would then silently not be shown.

    Examples
    --------
    >>> with style_context():
    ...     import matplotlib
    ...     matplotlib.rcParams["axes.spines.top"]
    False
    """
    import matplotlib

    interactive = matplotlib.is_interactive()
    try:
        with matplotlib.rc_context(dict(STYLE_RC)):
            try:
                yield
            finally:
                interactive = matplotlib.is_interactive()
    finally:
        matplotlib.interactive(interactive)


# Cells up to this many characters (a number with its unit, a short name) are kept on one line in HTML.
SHORT_CELL_CHARS = 16


@dataclass(frozen=True)
class Table:
    """A small table of already-formatted cells that shows as HTML in a notebook and as aligned text elsewhere.

    Chapters print their numbers through it so that wide tables wrap in the book instead of scrolling.

    Examples
    --------
    >>> t = Table(("op", "time"), [("add", "1 ms"), ("matmul", "20 ms")])
    >>> print(t)
    op      time
    add     1 ms
    matmul  20 ms
    >>> t._repr_html_().count("<th ")
    2
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""

    def __post_init__(self):
        header = tuple(str(h) for h in self.header)
        rows = tuple(tuple(str(c) for c in row) for row in self.rows)
        for i, row in enumerate(rows):
            if len(row) != len(header):
                raise ValueError(f"rows[{i}] must have {len(header)} cells (one per header entry); got {len(row)}")
        object.__setattr__(self, "header", header)
        object.__setattr__(self, "rows", rows)

    def __str__(self) -> str:
        widths = [max(len(r[k]) for r in (self.header, *self.rows)) for k in range(len(self.header))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in (self.header, *self.rows)
        ]
        return "\n".join(([self.caption] if self.caption else []) + lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        esc = html.escape

        # Inline cell padding: the book's theme, Jupyter and Colab would otherwise run adjacent columns together.
        # Short cells (numbers with units) never wrap, so "1.05 µs" stays on one line; long text wraps. At 0.9em and
        # 0.6em padding an eight-column op table fits the book's column at 1280 px (tests/test_browser.py checks it).
        def cell(tag: str, text: str) -> str:
            wrap = " white-space: nowrap;" if len(text) <= SHORT_CELL_CHARS else ""
            style = f"padding: 0.15em 0.6em 0.15em 0; text-align: left; vertical-align: top;{wrap}"
            return f'<{tag} style="{style}">{esc(text)}</{tag}>'

        head = "".join(cell("th", h) for h in self.header)
        body = "".join("<tr>" + "".join(cell("td", c) for c in r) + "</tr>" for r in self.rows)
        caption = f'<caption style="caption-side: top; text-align: left">{esc(self.caption)}</caption>'
        return (
            f'<table class="table" style="font-size: 0.9em">{caption if self.caption else ""}'
            f"<thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )
