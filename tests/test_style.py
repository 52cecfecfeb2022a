"""wrap_text, the one width of every plain-text report: exact layouts (doctests normalise whitespace, these do not)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from efflab.style import TEXT_WIDTH_CHARS, wrap_text


def test_a_number_keeps_its_unit_and_indentation_survives():
    text = "11.41 mJ estimated (a model, not a counter) over a measured 52.03 ms: 219.2 mW average, estimated"
    assert wrap_text(text) == (
        "11.41 mJ estimated (a model, not a counter) over a measured 52.03 ms:\n  219.2 mW average, estimated"
    )
    assert wrap_text("  [PASS] idle 12 % of the wall time, " * 3, width=40).splitlines()[1].startswith("    ")


@given(
    st.lists(st.sampled_from(["12", "%", "ms", "memory-bound", "x1.91", "(µs)", "a", "longer", "words"]), max_size=60)
)
def test_wrapping_keeps_every_word_and_the_width(words):
    text = " ".join(words)
    out = wrap_text(text)
    assert out.split() == text.split()  # nothing lost, nothing added
    assert all(len(line) <= TEXT_WIDTH_CHARS for line in out.splitlines())


def test_width_is_checked():
    with pytest.raises(ValueError, match="width"):
        wrap_text("x", width=5)


def test_one_si_formatter_serves_times_and_energies():
    """format_time_s and the energy reports are format_si with a prefix range; rounding carries into the next unit
    (the old time formatter printed 0.99999 s as "1000. ms")."""
    from efflab.energy import _fmt_j
    from efflab.style import format_si
    from efflab.timing import format_time_s

    assert format_time_s(0.99999) == "1.000 s" and format_time_s(1.234e-5) == "12.34 µs"
    assert format_time_s(2e-12) == "0.002000 ns" and format_time_s(1234.0) == "1234 s"
    assert _fmt_j(1.5e-3) == "1.5 mJ" and _fmt_j(2e-13) == "0.2 pJ" and _fmt_j(0.0) == "0 J"
    with pytest.raises(ValueError, match="prefixes"):
        format_si(1.0, "s", prefixes=("x", ""))
    with pytest.raises(ValueError, match="digits"):
        format_si(1.0, "s", 0)
