"""Roofline and iron law against hand-computed cases, brute force and the source's worked numbers; bad input for
the op costs too, imported from here as before efflab.opcost existed (the names are a contract)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from efflab.roofline import (
    Ceiling,
    OpCost,
    Roofline,
    arithmetic_intensity,
    attainable_flops_per_s,
    attention_cost,
    classify,
    conv2d_cost,
    elementwise_cost,
    embedding_cost,
    iron_law_time_s,
    layernorm_cost,
    matmul_cost,
    remedies,
    ridge_point,
    softmax_cost,
)

H100_BF16_FLOPS_PER_S = 989.4e12  # H100 SXM datasheet, dense bf16 (the sparse figure is 1979)
H100_BW_BYTES_PER_S = 3.35e12  # H100 SXM HBM3


# --- hand-computed cases on both sides of the ridge --------------------------------------------------------------------


def test_hand_computed_both_sides_of_ridge():
    # A toy machine: 100 FLOP/s, 10 bytes/s -> ridge 10 FLOP/byte.
    assert ridge_point(100.0, 10.0) == 10.0
    assert attainable_flops_per_s(5.0, 100.0, 10.0) == 50.0  # below the ridge: 5 FLOP/B * 10 B/s
    assert attainable_flops_per_s(20.0, 100.0, 10.0) == 100.0  # above: the compute roof
    assert attainable_flops_per_s(10.0, 100.0, 10.0) == 100.0  # at the ridge both roofs meet
    # 50 FLOPs over 10 bytes: memory 1 s, compute 0.5 s -> memory-bound, 1 s overlapped, 1.5 s serialized.
    c = classify(50.0, 10.0, 100.0, 10.0)
    assert (c.regime, c.memory_time_s, c.compute_time_s, c.time_s) == ("memory", 1.0, 0.5, 1.0)
    assert c.intensity_flops_per_byte == 5.0 and c.ridge_point_flops_per_byte == 10.0
    assert iron_law_time_s(50.0, 10.0, 100.0, 10.0, overlap=False) == 1.5
    # 200 FLOPs over 10 bytes: compute 2 s > memory 1 s -> compute-bound; at 50 % efficiency compute takes 4 s.
    c = classify(200.0, 10.0, 100.0, 10.0)
    assert (c.regime, c.compute_time_s, c.time_s) == ("compute", 2.0, 2.0)
    assert iron_law_time_s(200.0, 10.0, 100.0, 10.0, efficiency=0.5) == 4.0
    # 3 s of launch latency dominates both.
    c = classify(200.0, 10.0, 100.0, 10.0, latency_s=3.0)
    assert (c.regime, c.time_s) == ("latency", 5.0)
    assert c.attainable_flops_per_s == pytest.approx(40.0)


def test_arithmetic_intensity_hand_case():
    assert arithmetic_intensity(2 * 4096**3, 3 * 4096**2 * 2) == pytest.approx(4096 / 3)
    assert arithmetic_intensity(0, 8) == 0.0


@pytest.mark.parametrize("seed", range(10))
def test_attainable_matches_brute_force_min(seed):
    rng = np.random.default_rng(seed)
    intensity = rng.uniform(0, 1e3, 64)
    peak = rng.uniform(1e9, 1e15, 64)
    bw = rng.uniform(1e9, 1e13, 64)
    expected = [min(p, i * b) for i, p, b in zip(intensity, peak, bw, strict=True)]
    np.testing.assert_allclose(attainable_flops_per_s(intensity, peak, bw), expected, rtol=1e-15)
    # never above either roof, and a kernel below the ridge is exactly on the slanted roof
    ridge = ridge_point(peak, bw)
    below = intensity < ridge
    np.testing.assert_allclose(attainable_flops_per_s(intensity, peak, bw)[below], (intensity * bw)[below])


@pytest.mark.parametrize("seed", range(10))
def test_iron_law_overlap_vs_serial(seed):
    rng = np.random.default_rng(seed)
    flops, nbytes = rng.uniform(0, 1e12, 50), rng.uniform(0, 1e10, 50)
    peak, bw = rng.uniform(1e11, 1e15, 50), rng.uniform(1e10, 1e13, 50)
    eta, lat = rng.uniform(0.01, 1, 50), rng.uniform(0, 1e-3, 50)
    mem, comp = nbytes / bw, flops / (peak * eta)
    overlapped = iron_law_time_s(flops, nbytes, peak, bw, efficiency=eta, latency_s=lat)
    serial = iron_law_time_s(flops, nbytes, peak, bw, efficiency=eta, latency_s=lat, overlap=False)
    np.testing.assert_allclose(overlapped, np.maximum(mem, comp) + lat, rtol=1e-14)
    np.testing.assert_allclose(serial, mem + comp + lat, rtol=1e-14)
    assert (overlapped <= serial).all()
    assert (serial - lat <= 2 * (overlapped - lat) * (1 + 1e-12)).all()  # overlap saves at most half


def test_classify_arrays_and_ties():
    c = classify([50.0, 200.0, 200.0], 10.0, 100.0, 10.0, latency_s=[0.0, 0.0, 3.0])
    assert list(c.regime) == ["memory", "compute", "latency"]
    assert isinstance(c.regime, np.ndarray) and c.time_s.shape == (3,)
    assert classify(100.0, 10.0, 100.0, 10.0).regime == "memory"  # exactly at the ridge: ties go to memory
    with pytest.raises(TypeError, match="scalar"):
        _ = c.remedies


# --- MLSysBook's worked numbers ---------------------------------------------------------------------------------


def test_h100_ridge_point():
    assert ridge_point(H100_BF16_FLOPS_PER_S, H100_BW_BYTES_PER_S) == pytest.approx(295.34, abs=0.01)


def test_7b_fp16_decode_on_h100():
    weights_bytes = 7e9 * 2  # 7B parameters, fp16
    flops_per_token = 2 * 7e9  # one multiply-add per parameter per token at batch 1
    bound_s = iron_law_time_s(flops_per_token, weights_bytes, H100_BF16_FLOPS_PER_S, H100_BW_BYTES_PER_S)
    assert bound_s == pytest.approx(14e9 / 3.35e12) and round(bound_s * 1e3, 2) == 4.18  # >= 4.2 ms/token
    assert classify(flops_per_token, weights_bytes, H100_BF16_FLOPS_PER_S, H100_BW_BYTES_PER_S).regime == "memory"
    achieved = flops_per_token / 50e-3  # 50 ms/token
    assert achieved == pytest.approx(0.28e12)
    assert achieved / H100_BF16_FLOPS_PER_S == pytest.approx(2.83e-4, rel=1e-2)  # eta ~ 0.03 %
    # the matmul-vector view of the same step gives the same bytes and FLOPs
    gemv = matmul_cost(1, 4096, 4096, "fp16")
    assert gemv.intensity_flops_per_byte < 1.01


def test_remedies_table():
    assert remedies("memory").works == ("quantization", "pruning", "batching")
    assert remedies("memory").wasted == ("faster GPU (more FLOP/s)",)
    assert remedies("compute").wasted == ("more memory bandwidth",)
    assert "kernel fusion" in remedies("latency").works
    assert remedies("latency").dominant_term == "L_lat"
    assert remedies("Memory-Bound") == remedies("memory")
    assert classify(1.0, 1.0, 1.0, 1.0).remedies.regime == "memory"


# --- Roofline and Ceiling ---------------------------------------------------------------------------------------------


def test_roofline_multiple_ceilings():
    roof = Roofline(
        compute={"fp32": 67e12, "bf16": Ceiling("bf16", "compute", 798e12, spec=989.4e12, measured=798e12)},
        memory={"l2": 12e12, "dram": 3.35e12},
        latency_s=5e-6,
        name="H100",
    )
    assert roof.default_dtype == "fp32"
    assert roof.bandwidth_bytes_per_s() == 3.35e12  # the slowest level sets the roof
    assert roof.bandwidth_bytes_per_s("l2") == 12e12
    assert roof.peak_flops_per_s("BF16") == 798e12
    assert roof.ridge_point == pytest.approx(67e12 / 3.35e12)
    assert roof.ridge("bf16", "l2") == pytest.approx(798e12 / 12e12)
    np.testing.assert_allclose(roof.attainable([1.0, 1e4], dtype="bf16"), [3.35e12, 798e12])
    assert roof.compute["bf16"].fraction_of_spec == pytest.approx(798 / 989.4)
    assert roof.compute["fp32"].fraction_of_spec is None
    assert roof.time_s(0.0, 3.35e12) == pytest.approx(1.0 + 5e-6)
    assert roof.classify(1.0, 8.0).regime == "latency"
    with pytest.raises(ValueError, match="dtype"):
        roof.peak_flops_per_s("fp8")
    with pytest.raises(ValueError, match="level"):
        roof.bandwidth_bytes_per_s("hbm")
    with pytest.raises(ValueError, match="memory"):
        Roofline(compute={"fp32": 1.0}, memory={"dram": Ceiling("dram", "compute", 1.0)})
    with pytest.raises(TypeError, match="compute"):
        Roofline(compute={}, memory={"dram": 1.0})


def test_roofline_from_device_duck_typed():
    class FakeDevice:
        name, estimated = "toy", False
        peak_flops_per_s = {"fp32": 100.0}
        bandwidth_bytes_per_s = 10.0
        sources = {"peak_flops_per_s.fp32": "hand", "bandwidth_bytes_per_s": "hand"}

    roof = Roofline.from_device(FakeDevice())
    assert roof.ridge_point == 10.0 and roof.compute["fp32"].source == "hand" and roof.name == "toy (datasheet)"


# --- bad input: only ValueError/TypeError naming the argument, never NaN ----------------------------------------------

NEG = st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False)
COMMON = st.sampled_from([math.nan, math.inf, -math.inf, "3", None, 1 + 2j, [[1.0], [1.0, 2.0]], object()])
BAD = {
    "pos": st.one_of(NEG, st.just(0.0), COMMON),
    "nonneg": st.one_of(NEG, COMMON),
    "eff": st.one_of(NEG, st.just(0.0), st.floats(min_value=1.0001, max_value=1e6), COMMON),
    "int": st.one_of(st.integers(max_value=0), st.just(1.5), st.just(True), COMMON),
    "int0": st.one_of(st.integers(max_value=-1), st.just(2.5), st.just(False), COMMON),
    "bool": st.sampled_from([1, 0, "yes", None, 1.0]),
    "dtype": st.one_of(st.sampled_from(["fp8", "float32", "", "int2"]), NEG, st.just(0.0), COMMON),
    "regime": st.sampled_from(["io", "", "memoryish", 3, None]),
    "name": st.sampled_from(["", 3, None]),
    # optional arguments, where None means "not given"
    "pos_opt": st.one_of(NEG, st.just(0.0), st.sampled_from([math.nan, math.inf, "3", 1 + 2j])),
    "int_opt": st.one_of(st.integers(max_value=0), st.just(1.5), st.just(True), st.just(math.nan), st.just("4")),
}
R = {"flops": 1e9, "bytes_moved": 1e6, "peak_flops_per_s": 1e12, "bandwidth_bytes_per_s": 1e11}
CASES = {
    "arithmetic_intensity": (arithmetic_intensity, {"flops": (1.0, "nonneg"), "bytes_moved": (1.0, "pos")}),
    "ridge_point": (ridge_point, {"peak_flops_per_s": (1.0, "pos"), "bandwidth_bytes_per_s": (1.0, "pos")}),
    "attainable": (
        attainable_flops_per_s,
        {"intensity": (1.0, "nonneg"), "peak_flops_per_s": (1.0, "pos"), "bandwidth_bytes_per_s": (1.0, "pos")},
    ),
    "iron_law": (
        iron_law_time_s,
        {
            "flops": (R["flops"], "nonneg"),
            "bytes_moved": (R["bytes_moved"], "nonneg"),
            "peak_flops_per_s": (R["peak_flops_per_s"], "pos"),
            "bandwidth_bytes_per_s": (R["bandwidth_bytes_per_s"], "pos"),
            "efficiency": (0.5, "eff"),
            "latency_s": (0.0, "nonneg"),
            "overlap": (True, "bool"),
        },
    ),
    "classify": (
        classify,
        {
            "flops": (R["flops"], "nonneg"),
            "bytes_moved": (R["bytes_moved"], "pos"),
            "peak_flops_per_s": (R["peak_flops_per_s"], "pos"),
            "bandwidth_bytes_per_s": (R["bandwidth_bytes_per_s"], "pos"),
            "efficiency": (0.5, "eff"),
            "latency_s": (0.0, "nonneg"),
        },
    ),
    "remedies": (remedies, {"regime": ("memory", "regime")}),
    "OpCost": (OpCost, {"flops": (1.0, "nonneg"), "bytes_moved": (1.0, "nonneg")}),
    "Ceiling": (
        Ceiling,
        {"name": ("fp32", "name"), "kind": ("compute", "regime"), "value": (1.0, "pos"), "spec": (1.0, "pos_opt")},
    ),
    "matmul_cost": (matmul_cost, {"m": (2, "int"), "n": (3, "int"), "k": (4, "int"), "dtype_bytes": (2, "dtype")}),
    "elementwise_cost": (
        elementwise_cost,
        {"numel": (8, "int"), "dtype_bytes": (4, "dtype"), "flops_per_element": (1.0, "nonneg"), "inputs": (1, "int0")},
    ),
    "conv2d_cost": (
        conv2d_cost,
        {
            "batch": (1, "int"),
            "in_channels": (2, "int"),
            "out_channels": (2, "int"),
            "height": (5, "int"),
            "width": (5, "int"),
            "kernel_size": (3, "int"),
            "stride": (1, "int"),
            "padding": (0, "int0"),
            "groups": (1, "int"),
            "dtype_bytes": (4, "dtype"),
            "bias": (False, "bool"),
        },
    ),
    "attention_cost": (
        attention_cost,
        {
            "batch": (1, "int"),
            "heads": (2, "int"),
            "seq_len": (4, "int"),
            "head_dim": (8, "int"),
            "kv_seq_len": (4, "int_opt"),
            "kv_heads": (2, "int_opt"),
            "dtype_bytes": (2, "dtype"),
            "causal": (False, "bool"),
        },
    ),
    "embedding_cost": (
        embedding_cost,
        {"num_tokens": (4, "int"), "embedding_dim": (8, "int"), "dtype_bytes": (4, "dtype"), "index_bytes": (8, "int")},
    ),
    "softmax_cost": (softmax_cost, {"numel": (4, "int"), "dtype_bytes": (4, "dtype")}),
    "layernorm_cost": (
        layernorm_cost,
        {"numel": (8, "int"), "normalized_size": (4, "int"), "dtype_bytes": (4, "dtype"), "affine": (True, "bool")},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_bad_input_names_the_argument(case, data):
    fn, spec = CASES[case]
    arg = data.draw(st.sampled_from(sorted(spec)), label="argument")
    bad = data.draw(BAD[spec[arg][1]], label="bad value")
    kwargs = {name: good for name, (good, _) in spec.items()}
    kwargs[arg] = bad
    with pytest.raises((ValueError, TypeError)) as info:
        fn(**kwargs)
    assert arg in str(info.value)


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (arithmetic_intensity, (np.ones(2), np.ones(3))),
        (ridge_point, (np.ones(2), np.ones(3))),
        (attainable_flops_per_s, (np.ones(2), np.ones(3), 1.0)),
        (iron_law_time_s, (1.0, 1.0, np.ones(2), np.ones(3))),
        (classify, (np.ones(2), np.ones(3), 1.0, 1.0)),
    ],
)
def test_wrong_shapes_name_the_arguments(fn, args):
    with pytest.raises(ValueError, match="broadcast") as info:
        fn(*args)
    assert "(2,)" in str(info.value) and "(3,)" in str(info.value)


def test_structural_errors():
    with pytest.raises(ValueError, match="groups"):
        conv2d_cost(1, 3, 4, 8, 8, 3, groups=2)
    with pytest.raises(ValueError, match="kernel_size"):
        conv2d_cost(1, 3, 4, 2, 2, 5)
    with pytest.raises(ValueError, match="kv_heads"):
        attention_cost(1, 4, 2, 8, kv_heads=3)
    with pytest.raises(ValueError, match="normalized_size"):
        layernorm_cost(10, 4)
    with pytest.raises(ValueError, match="kernel_size"):
        conv2d_cost(1, 3, 4, 8, 8, (3, 3, 3))
    with pytest.raises(ValueError, match="dtype_bytes"):
        matmul_cost(2, 2, 2, [2, 4])
    with pytest.raises(ValueError, match="latency_s"):
        Roofline(compute={"fp32": 1.0}, memory={"dram": 1.0}, latency_s=-1.0)
    with pytest.raises(ValueError, match="default_dtype"):
        Roofline(compute={"fp32": 1.0}, memory={"dram": 1.0}, default_dtype="bf16")
    roof = Roofline(compute={"fp32": 1.0}, memory={"dram": 1.0})
    with pytest.raises(TypeError, match="dtype"):
        roof.attainable(1.0, dtype=3)
    with pytest.raises(ValueError, match="intensity"):
        roof.attainable(math.nan)
    with pytest.raises(ValueError, match="kind"):
        Ceiling("x", "disk", 1.0)


@settings(max_examples=50, deadline=None)
@given(
    flops=st.floats(0, 1e20),
    nbytes=st.floats(1e-3, 1e15),
    peak=st.floats(1e-3, 1e18),
    bw=st.floats(1e-3, 1e15),
    eta=st.floats(1e-6, 1.0),
    lat=st.floats(0, 1e3),
)
def test_valid_input_never_nan(flops, nbytes, peak, bw, eta, lat):
    c = classify(flops, nbytes, peak, bw, latency_s=lat, efficiency=eta)
    values = [c.memory_time_s, c.compute_time_s, c.time_s, c.intensity_flops_per_byte, c.ridge_point_flops_per_byte]
    assert all(math.isfinite(x) and x >= 0 for x in values)
    assert c.regime in ("memory", "compute", "latency")
    assert math.isfinite(attainable_flops_per_s(flops / nbytes, peak, bw))


def test_op_costs_are_still_served_from_roofline():
    import efflab.opcost as opcost
    import efflab.roofline as roofline

    for name in opcost.__all__:
        assert getattr(roofline, name) is getattr(opcost, name) and name in roofline.__all__


def test_optional_law_arguments_are_keyword_only_and_in_one_order():
    """A positional latency once became the efficiency of iron_law_time_s (compute time x 1e6, silently)."""
    import inspect

    with pytest.raises(TypeError):
        iron_law_time_s(1e12, 1e9, 1e12, 1e11, 1e-6)
    with pytest.raises(TypeError):
        classify(1e12, 1e9, 1e12, 1e11, 1e-6)
    law = inspect.signature(iron_law_time_s).parameters
    regime = inspect.signature(classify).parameters
    optional = [name for name, p in law.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert optional[:2] == [name for name, p in regime.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert iron_law_time_s(1e12, 1e9, 1e12, 1e11, latency_s=1.0, efficiency=0.5) == 3.0  # 1e12 / (1e12 * 0.5) + 1
