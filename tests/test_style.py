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
