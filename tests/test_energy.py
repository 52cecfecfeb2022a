"""Energy table and estimate against the primary sources' figures and hand-computed cases.

Sources (chapters/references.md): Horowitz, ISSCC 2014 (45 nm per-operation energies) and Han et al., NeurIPS 2015
(per-32-bit SRAM and DRAM access energies).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import raises_naming
from hypothesis import given, settings
from hypothesis import strategies as st

from efflab.energy import (
    HAN_2015_PJ_PER_32BIT,
    HOROWITZ_45NM_PJ,
    MEMORY_LEVELS,
    EnergyEstimate,
    energy_estimate,
    op_energy_j,
)

# Horowitz ISSCC 2014, 45 nm, transcribed independently from the paper's table (pJ; chapters/references.md).
SOURCE_TABLE_PJ = {
    "int8_add": 0.03,
    "fp16_add": 0.4,
    "int32_add": 0.1,
    "fp32_add": 0.9,
    "int8_mult": 0.2,
    "fp16_mult": 1.1,
    "int32_mult": 3.1,
    "fp32_mult": 3.7,
    "sram_64bit_8kb": 10,
    "sram_64bit_32kb": 20,
    "sram_64bit_1mb": 100,
    "dram_64bit_low": 1300,
    "dram_64bit_high": 2600,
}


def test_table_matches_source():
    assert dict(HOROWITZ_45NM_PJ) == pytest.approx(SOURCE_TABLE_PJ)
    for op, pj in SOURCE_TABLE_PJ.items():
        assert op_energy_j(op) == pytest.approx(pj * 1e-12)
    with pytest.raises(TypeError):
        HOROWITZ_45NM_PJ["fp32_add"] = 0.0  # frozen


def test_fma_is_multiply_plus_add():
    assert op_energy_j("fp32_fma") == pytest.approx(4.6e-12)  # 3.7 + 0.9, not 3.7
    for d in ("fp32", "fp16", "int32", "int8"):
        assert op_energy_j(f"{d}_fma") == pytest.approx(op_energy_j(f"{d}_mult") + op_energy_j(f"{d}_add"))
        est = energy_estimate(2.0, 0.0 + 1.0, dtype=d)
        assert est.energy_per_flop_j == pytest.approx(op_energy_j(f"{d}_fma") / 2)


def test_dram_over_fma_ratio_from_han():
    # Widely quoted: a 32-bit DRAM access (640 pJ) costs ~139 fp32 multiply-adds (4.6 pJ).
    ratio = HAN_2015_PJ_PER_32BIT["dram_32bit"] / (op_energy_j("fp32_fma") * 1e12)
    assert ratio == pytest.approx(139.13, abs=0.01)
    # the default DRAM figure per byte agrees with Han's per-32-bit figure to within 2 %
    assert MEMORY_LEVELS["dram"][0] == pytest.approx(HAN_2015_PJ_PER_32BIT["dram_32bit"] / 4, rel=0.02)
    assert op_energy_j("dram_64bit") == op_energy_j("dram_64bit_low")
    for op in ("int32_add", "fp32_add", "int32_mult", "fp32_mult"):  # Han's arithmetic rows repeat Horowitz
        assert HAN_2015_PJ_PER_32BIT[op] == HOROWITZ_45NM_PJ[op]


def test_count_scales_and_broadcasts():
    assert op_energy_j("int8_add", 1e9) == pytest.approx(0.03e-3)
    out = op_energy_j("fp16_mult", np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(out, 1.1e-12 * np.array([[1, 2], [3, 4]]))
    assert op_energy_j("FP32_Add", 0) == 0.0


def test_estimate_hand_computed():
    # 1 GFLOP fp32 and 1 GB from DRAM: compute 1e9 * 2.3 pJ = 2.3 mJ; movement 1e9 * 162.5 pJ = 162.5 mJ.
    est = energy_estimate(1e9, 1e9)
    assert isinstance(est, EnergyEstimate)
    assert est.compute_j == pytest.approx(2.3e-3)
    assert est.movement_j == pytest.approx(0.1625)
    assert est.total_j == pytest.approx(0.1648)
    assert est.movement_to_compute_ratio == pytest.approx(162.5 / 2.3)
    assert (est.dtype, est.memory) == ("fp32", "dram")
    text = est.to_text()
    for piece in ("3.7 pJ mult + 0.9 pJ add", "162.5 pJ/B", "2.3 mJ", "162.5 mJ", "Horowitz"):
        assert piece in text, text
    assert "flops" in est.formula and str(est) == text
    with pytest.raises(AttributeError):
        est.total_j = 0  # frozen


@pytest.mark.parametrize(
    ("memory", "pj_per_64bit"),
    [("dram", 1300), ("dram_high", 2600), ("sram_1mb", 100), ("sram_32kb", 20), ("sram_8kb", 10)],
)
def test_memory_levels(memory, pj_per_64bit):
    est = energy_estimate(0, 8, memory=memory)
    assert est.movement_j == pytest.approx(pj_per_64bit * 1e-12)
    assert est.movement_to_compute_ratio == math.inf


def test_estimate_arrays():
    flops = np.array([1e6, 2e6, 0.0])
    est = energy_estimate(flops, 4e6, dtype="int8", memory="sram_32kb")
    e_flop = (0.2 + 0.03) / 2 * 1e-12
    np.testing.assert_allclose(est.compute_j, flops * e_flop)
    np.testing.assert_allclose(est.movement_j, 4e6 * 2.5e-12)
    assert est.movement_to_compute_ratio[2] == math.inf
    assert "shape (3,)" in " ".join(est.to_text().split())  # lines wrap at the text width


def test_bf16_is_rejected_with_the_alternative():
    with pytest.raises(ValueError, match="fp16"):
        energy_estimate(1, 1, dtype="bf16")


# ---- bad input ---------------------------------------------------------------------------------------------------

BAD_NUMBERS = st.one_of(
    st.just(math.nan),
    st.just(math.inf),
    st.just(-math.inf),
    st.floats(max_value=-1e-12, allow_nan=False, allow_infinity=False),
    st.just("1"),
    st.just(None),
    st.just(False),
    st.just([[1.0], [1.0, 2.0]]),
)
BAD_NAMES = st.one_of(st.text(max_size=12), st.none(), st.integers())


@settings(max_examples=50, deadline=None)
@given(bad=BAD_NUMBERS)
def test_bad_numbers(bad):
    raises_naming(op_energy_j, "count", "fp32_add", bad)
    raises_naming(energy_estimate, "flops", bad, 1.0)
    raises_naming(energy_estimate, "bytes_moved", 1.0, bad)


@settings(max_examples=50, deadline=None)
@given(bad=BAD_NAMES)
def test_bad_names(bad):
    if isinstance(bad, str) and bad.strip().lower() in {
        *HOROWITZ_45NM_PJ,
        "dram_64bit",
        "fp32_fma",
        "fp16_fma",
        "int8_fma",
        "int32_fma",
    }:
        return
    raises_naming(op_energy_j, "op", bad)
    if not (isinstance(bad, str) and bad.strip().lower() in {"fp32", "fp16", "int8", "int32"}):
        raises_naming(energy_estimate, "dtype", 1.0, 1.0, dtype=bad)
    if not (isinstance(bad, str) and bad.strip().lower() in MEMORY_LEVELS):
        raises_naming(energy_estimate, "memory", 1.0, 1.0, memory=bad)


def test_unknown_op_lists_names_and_other_errors():
    with pytest.raises(ValueError, match="fp32_mult"):
        op_energy_j("fp32_multiply")
    raises_naming(energy_estimate, "flops and bytes_moved", [1.0, 2.0, 3.0], [1.0, 2.0])
    raises_naming(energy_estimate, "flops and bytes_moved", 0, 0)
    for d in ("tf32", "fp64", "int4"):
        raises_naming(energy_estimate, "dtype", 1, 1, dtype=d)
