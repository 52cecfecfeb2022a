"""Hardware catalog against the NVIDIA datasheets' dense figures, name matching, and the CPU estimate's formula.

The oracle table cites the primary sources listed in chapters/references.md (one datasheet per GPU).
"""

from __future__ import annotations

import math
import sys
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from efflab.hardware import (
    ALL_GPUS,
    CATALOG,
    Device,
    cpu_bandwidth_bytes_per_s,
    cpu_device,
    cpu_peak_flops_per_s,
    detect,
    fp32_lanes_from_flags,
    get_device,
    match_gpu_name,
    parse_cpuinfo,
)

# The oracle: each GPU's dense figures typed in from its NVIDIA datasheet, independently of the catalog. Turing and
# Volta datasheets print dense Tensor Core peaks; Ampere, Ada and Hopper ones print sparse peaks (marked *, 2x dense),
# halved here. key -> (fp32 TFLOP/s, fp16/bf16 Tensor Core TFLOP/s, bandwidth GB/s, TDP W, ridge FLOP/B = fp16 / bw)
REFERENCE = {
    "T4": (8.1, 65, 320, 70, 203),  # NVIDIA T4 datasheet (dense); 320 GB/s: NVIDIA T4 product page (GDDR6)
    "L4": (30.3, 121, 300, 72, 403),  # NVIDIA L4 datasheet (FP16 242* sparse, dense 121)
    "V100 SXM2": (15.7, 125, 900, 300, 139),  # NVIDIA Tesla V100 datasheet (SXM2, dense)
    "A100 40GB SXM": (19.5, 312, 1555, 400, 201),  # NVIDIA A100 datasheet (SXM, dense; FP16 624* sparse)
    "A100 80GB SXM": (19.5, 312, 2039, 400, 153),  # NVIDIA A100 datasheet (80GB SXM, dense; HBM2e)
    "H100 SXM": (67, 989.4, 3350, 700, 295),  # NVIDIA H100 datasheet (SXM, dense; FP16 1979* sparse)
}


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_catalog_matches_reference_dense_figures(key):
    fp32, tensor, bw_gb, tdp, ridge = REFERENCE[key]
    dev = CATALOG[key]
    assert dev.peak_flops_per_s["fp32"] == pytest.approx(fp32 * 1e12)
    assert dev.peak_flops_per_s["fp16"] == pytest.approx(tensor * 1e12)
    assert dev.bandwidth_bytes_per_s == pytest.approx(bw_gb * 1e9)
    assert dev.tdp_w == tdp
    assert dev.ridge_point("fp16") == pytest.approx(ridge, abs=0.5)
    # never a sparse figure (2x dense) stored as dense
    for dtype in ("fp16", "bf16"):
        if dtype in dev.peak_flops_per_s:
            assert dev.peak_flops_per_s[dtype] != pytest.approx(2 * tensor * 1e12)


def test_h100_bf16_is_dense_and_ridge_is_295():
    h100 = get_device("H100")
    assert h100.peak_flops_per_s["bf16"] == 989.4e12  # not the sparse 1979e12
    assert h100.peak_flops_per_s["tf32"] == 494.7e12  # not the sparse 989
    assert h100.ridge_point("bf16") == pytest.approx(295.3, abs=0.05)
    assert get_device("h200").bandwidth_bytes_per_s == 4.8e12


@pytest.mark.parametrize("key", sorted(ALL_GPUS))
def test_every_entry_is_complete_and_sourced(key):
    dev = ALL_GPUS[key]
    assert dev.kind == "gpu" and not dev.estimated
    assert all(p > 0 for p in dev.peak_flops_per_s.values())
    assert dev.bandwidth_bytes_per_s > 0 and dev.tdp_w > 0 and 2015 <= dev.year <= 2025
    assert dev.l2_bytes is not None or key not in CATALOG  # the course's GPUs all state their L2
    figures = [f"peak_flops_per_s.{d}" for d in dev.peak_flops_per_s]
    figures += ["bandwidth_bytes_per_s", "tdp_w", "year"] + (["l2_bytes"] if dev.l2_bytes else [])
    for figure in figures:
        assert dev.sources.get(figure, "").strip(), f"{key}: no source for {figure}"
    for dtype, peak in dev.peak_flops_per_s.items():
        assert dev.ridge_point(dtype) == pytest.approx(peak / dev.bandwidth_bytes_per_s)
    roof = dev.roofline()
    assert roof.ridge_point == pytest.approx(dev.ridge_point("fp32"))
    assert roof.compute["fp32"].source == dev.sources["peak_flops_per_s.fp32"]


def test_catalog_is_frozen():
    with pytest.raises(AttributeError):
        CATALOG["T4"].name = "x"
    with pytest.raises(TypeError):
        CATALOG["T4"].peak_flops_per_s["fp32"] = 1.0


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("h100", "H100 SXM"),
        ("H100 SXM", "H100 SXM"),
        ("a100-80gb", "A100 80GB SXM"),
        ("A100_40GB_SXM", "A100 40GB SXM"),
        ("  Tesla T4 ", "T4"),
        ("v100", "V100 SXM2"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA A100-SXM4-80GB", "A100 80GB SXM"),
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("Tesla V100-SXM2-16GB", "V100 SXM2"),
        ("NVIDIA H200", "H200 SXM"),
    ],
)
def test_get_device_aliases(name, key):
    assert get_device(name) is CATALOG[key]


def test_get_device_error_lists_known_names():
    with pytest.raises(ValueError, match="name") as info:
        get_device("RTX 4090")
    for key in CATALOG:
        assert key in str(info.value)
    with pytest.raises(TypeError, match="name"):
        get_device(4090)


@pytest.mark.parametrize(
    ("torch_name", "key"),
    [
        ("Tesla T4", "T4"),
        ("NVIDIA A100-SXM4-40GB", "A100 40GB SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),  # other clocks and bandwidth than SXM: its own entry
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("NVIDIA H200 NVL", "H200 NVL"),
        ("NVIDIA A100-PCIE-40GB", "A100 40GB PCIe"),
        ("NVIDIA A100 80GB PCIe", "A100 80GB PCIe"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA A10", "A10"),
        ("NVIDIA A10G", None),  # AWS's part: no NVIDIA datasheet
        ("NVIDIA GeForce RTX 4090", None),
        ("Tesla V100-PCIE-32GB", None),
        ("NVIDIA GH200 480GB", None),
    ],
)
def test_match_gpu_name(torch_name, key):
    assert match_gpu_name(torch_name) == key


# --- CPU estimate -----------------------------------------------------------------------------------------------------

CPUINFO = """processor\t: 0
model name\t: AMD EPYC
cpu MHz\t\t: 2596.140
siblings\t: 4
cpu cores\t: 2
flags\t\t: fpu sse2 fma avx avx2 avx512f avx512dq
processor\t: 1
model name\t: AMD EPYC
"""


def test_cpu_peak_formula_hand_computed():
    # 2 cores x 2.6e9 Hz x 16 lanes x 2 FLOP/FMA x 2 FMA units = 332.8e9
    assert cpu_peak_flops_per_s(2, 2.6e9, 16) == pytest.approx(332.8e9)
    assert cpu_peak_flops_per_s(8, 3e9, 8, fma_units=1) == pytest.approx(8 * 3e9 * 8 * 2)
    assert cpu_bandwidth_bytes_per_s(2, 4.8e9) == pytest.approx(76.8e9)  # two DDR5-4800 channels


def test_parse_cpuinfo_and_lanes():
    facts = parse_cpuinfo(CPUINFO)
    assert facts["model_name"] == "AMD EPYC" and facts["clock_hz"] == pytest.approx(2596.14e6)
    assert facts["threads_per_core"] == 2
    assert fp32_lanes_from_flags(facts["flags"]) == 16
    assert fp32_lanes_from_flags("sse2 avx2") == 8
    assert fp32_lanes_from_flags(["neon"]) == 4
    assert parse_cpuinfo("")["clock_hz"] is None


def test_cpu_device_from_text():
    dev = cpu_device(CPUINFO, logical_cpus=4)  # 4 threads, 2 per core -> 2 cores
    assert dev.kind == "cpu" and dev.estimated
    assert dev.peak_flops_per_s["fp32"] == pytest.approx(2 * 2596.14e6 * 16 * 2 * 2)
    assert dev.peak_flops_per_s["fp64"] == pytest.approx(dev.peak_flops_per_s["fp32"] / 2)
    assert "assumed" in dev.sources["peak_flops_per_s.fp32"] and "estimate" in dev.sources["bandwidth_bytes_per_s"]
    assert all(c.estimated for c in dev.roofline().compute.values())
    with pytest.raises(ValueError, match="clock_hz"):
        cpu_device("model name : x\n", logical_cpus=1)


def test_detect_on_this_machine(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    dev = detect()
    assert dev.kind == "cpu" and dev.estimated
    assert dev.peak_flops_per_s["fp32"] > 0 and dev.bandwidth_bytes_per_s > 0
    for figure in ("peak_flops_per_s.fp32", "bandwidth_bytes_per_s"):
        assert "estimate" in dev.sources[figure]


def _fake_torch(monkeypatch, gpu_name):
    cuda = types.SimpleNamespace(is_available=lambda: True, get_device_name=lambda index=0: gpu_name)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))


def test_detect_known_gpu(monkeypatch):
    _fake_torch(monkeypatch, "NVIDIA H100 80GB HBM3")
    assert detect() is CATALOG["H100 SXM"]


def test_detect_unknown_gpu_warns_and_estimates_cpu(monkeypatch):
    _fake_torch(monkeypatch, "NVIDIA GeForce RTX 4090")
    with pytest.warns(UserWarning, match="not in the efflab catalog"):
        dev = detect()
    assert dev.kind == "cpu" and dev.estimated


def test_detect_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    assert detect().kind == "cpu"


# --- bad input ----------------------------------------------------------------------------------------------------------

NEG = st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False)
COMMON = st.sampled_from([math.nan, math.inf, -math.inf, "3", None, 1 + 2j, object()])
BAD_POS = st.one_of(NEG, st.just(0.0), COMMON)
BAD_INT = st.one_of(st.integers(max_value=0), st.just(1.5), st.just(True), COMMON)

GOOD_DEVICE = {
    "name": "toy",
    "kind": "gpu",
    "peak_flops_per_s": {"fp32": 1e12},
    "bandwidth_bytes_per_s": 1e11,
    "tdp_w": 100.0,
    "l2_bytes": 1024,
    "year": 2020,
}
DEVICE_BAD = {
    "name": st.sampled_from(["", "  ", 3, None]),
    "kind": st.sampled_from(["tpu", "", 1, None]),
    "peak_flops_per_s": st.one_of(
        st.sampled_from([{}, {"fp8": 1e12}, {"FP33": 1.0}, [1e12], None, 1e12]),
        BAD_POS.map(lambda x: {"fp32": x}),
    ),
    "bandwidth_bytes_per_s": BAD_POS,
    "tdp_w": st.one_of(NEG, st.just(0.0), st.just(math.nan)),
    "l2_bytes": st.one_of(st.integers(max_value=0), st.just(1.5), st.just("1")),
    "year": st.sampled_from([1800, 3000, 2020.5, "2020"]),
}


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_device_bad_input_names_the_argument(data):
    arg = data.draw(st.sampled_from(sorted(DEVICE_BAD)), label="argument")
    kwargs = dict(GOOD_DEVICE, **{arg: data.draw(DEVICE_BAD[arg], label="bad value")})
    with pytest.raises((ValueError, TypeError)) as info:
        Device(**kwargs)
    assert arg in str(info.value) or (arg == "peak_flops_per_s" and "dtype" in str(info.value))


@settings(max_examples=50, deadline=None)
@given(
    which=st.sampled_from(["cores", "clock_hz", "fp32_lanes", "fma_units", "channels", "transfers_per_s"]),
    bad=st.one_of(BAD_POS, BAD_INT),
)
def test_cpu_model_bad_input(which, bad):
    good = {"cores": 2, "clock_hz": 2.6e9, "fp32_lanes": 16, "fma_units": 2}
    fn = cpu_peak_flops_per_s
    if which in ("channels", "transfers_per_s"):
        fn, good = cpu_bandwidth_bytes_per_s, {"channels": 1, "transfers_per_s": 3.2e9}
    kwargs = dict(good, **{which: bad})
    try:
        result = fn(**kwargs)
    except (ValueError, TypeError) as exc:
        assert which in str(exc)
    else:  # a float like 2.0 is an acceptable integer; anything accepted must give a finite positive figure
        assert math.isfinite(result) and result > 0


@settings(max_examples=50, deadline=None)
@given(bad=st.one_of(st.text(max_size=12), st.integers(), st.none(), st.floats()))
def test_get_device_bad_names(bad):
    try:
        dev = get_device(bad)
    except (ValueError, TypeError) as exc:
        assert "name" in str(exc)
    else:
        assert dev in CATALOG.values()


def test_other_bad_input():
    with pytest.raises(ValueError, match="dtype"):
        CATALOG["T4"].ridge_point("bf16")  # a T4 has no bf16
    with pytest.raises(TypeError, match="name"):
        match_gpu_name(None)
    with pytest.raises(TypeError, match="text"):
        parse_cpuinfo(b"bytes")
    with pytest.raises(ValueError, match="logical_cpus"):
        cpu_device(CPUINFO, logical_cpus=0)
    with pytest.raises(TypeError, match="estimated"):
        Device(**GOOD_DEVICE, estimated="yes")
    with pytest.raises(TypeError, match="sources"):
        Device(**GOOD_DEVICE, sources={"fp32": 3})
