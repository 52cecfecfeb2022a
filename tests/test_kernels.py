"""The homes of the old efflab.kernels -- roofline_cases, op_bench, roofline_claims, style.Table and
ceilings.ceiling_table -- against hand-computed costs, the hardware catalog, MLSysBook's worked decode case and the
sizes of the tensors the workloads really build; and efflab.kernels, the facade that re-exports them."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from efflab.ceilings import ceiling_table
from efflab.hardware import CATALOG
from efflab.op_bench import (
    MeasuredOp,
    Workload,
    kernel_workloads,
    measure_op,
    measure_ops,
    num_threads,
    regime_workloads,
)
from efflab.roofline import OpCost, Roofline
from efflab.roofline_cases import annual_growth, decode_floor, kernel_catalog, memory_wall
from efflab.style import Table

# --- the facade -------------------------------------------------------------------------------------------------------


def test_kernels_facade_re_exports_each_name_from_its_home():
    import importlib

    from efflab import kernels, timing

    homes = [importlib.import_module(f"efflab.{m}") for m in ("roofline_cases", "op_bench", "roofline_claims")]
    homes += [importlib.import_module("efflab.style"), importlib.import_module("efflab.ceilings")]
    for name in kernels.__all__:
        owners = [home for home in homes if name in home.__all__]
        assert len(owners) == 1, (name, [h.__name__ for h in owners])
        assert getattr(kernels, name) is getattr(owners[0], name), name
        assert name in (kernels.__doc__ or ""), f"the facade's docstring must say where {name} lives"
    assert kernels.num_threads is timing.torch_threads


# --- the analytic catalog ---------------------------------------------------------------------------------------------


def test_catalog_hand_costs():
    cases = {k.name: k for k in kernel_catalog("fp16")}
    linear = cases["batch-1 linear"].cost
    assert linear.flops == 2 * 4096 * 4096
    assert linear.bytes_moved == (4096 + 4096 * 4096 + 4096) * 2  # x, W read once; y written once
    emb = cases["embedding lookup"].cost
    assert (emb.flops, emb.bytes_moved) == (0.0, 2048 * 8 + 2 * 2048 * 4096 * 2)
    soft = cases["softmax (scores)"].cost
    assert soft.intensity_flops_per_byte == pytest.approx(5 / 4)  # 5 FLOPs per element, 2 bytes in + 2 out


def test_catalog_scales_with_dtype():
    half, full = kernel_catalog("fp16"), kernel_catalog("fp32")
    for h, f in zip(half, full, strict=True):
        assert f.flops == h.flops
        if h.name != "embedding lookup":  # int64 indices do not shrink with the dtype
            assert f.bytes_moved == pytest.approx(2 * h.bytes_moved)


@pytest.mark.parametrize("gpu", ["T4", "V100 SXM2", "A100 80GB SXM", "H100 SXM"])
def test_low_reuse_kernels_are_memory_bound_and_high_reuse_compute_bound(gpu):
    # MLSysBook: low-reuse kernels sit left of the ridge; dense matmuls at scale sit right of it.
    roof = Roofline.from_device(CATALOG[gpu])
    for case in kernel_catalog("fp16"):
        regime = roof.classify(case.flops, case.bytes_moved, dtype="fp16").regime
        assert regime == ("memory" if case.reuse == "low" else "compute"), (gpu, case.name)


def test_catalog_rejects_unknown_dtype():
    with pytest.raises(ValueError, match="dtype"):
        kernel_catalog("fp8")


# --- memory wall ------------------------------------------------------------------------------------------------------


def test_memory_wall_matches_catalog_and_is_sorted():
    rows = memory_wall("fp16")
    assert len(rows) == sum(1 for d in CATALOG.values() if "fp16" in d.peak_flops_per_s)
    assert [r.year for r in rows] == sorted(r.year for r in rows)
    by_name = {d.name: d for d in CATALOG.values()}
    for r in rows:
        d = by_name[r.name]
        assert r.ridge_flops_per_byte == pytest.approx(d.peak_flops_per_s["fp16"] / d.bandwidth_bytes_per_s)


def test_memory_wall_skips_devices_without_the_dtype():
    names = {r.name for r in memory_wall("bf16")}
    assert "NVIDIA T4" not in names and "NVIDIA V100 SXM2" not in names
    with pytest.raises(ValueError, match="dtype"):
        memory_wall("fp64")


def test_catalog_peak_grows_faster_than_bandwidth():
    # The memory wall in the catalog itself: Tensor Core peak outgrows bandwidth across generations.
    rows = memory_wall("fp16")
    years = [r.year for r in rows]
    assert annual_growth(years, [r.peak_flops_per_s for r in rows]) > annual_growth(
        years, [r.bandwidth_bytes_per_s for r in rows]
    )


def test_annual_growth_recovers_an_exponential():
    years = np.arange(2010, 2020)
    assert annual_growth(years, 3.0 * 1.5 ** (years - 2010)) == pytest.approx(1.5)
    assert annual_growth([2000, 2010], [5.0, 5.0]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("years", "values", "match"),
    [([2000, 2001], [1.0, 0.0], "values"), ([2000], [1.0], "two distinct"), ([2000, 2001], [1.0], "same length")],
)
def test_annual_growth_bad_input(years, values, match):
    with pytest.raises(ValueError, match=match):
        annual_growth(years, values)


# --- batch-1 decode ---------------------------------------------------------------------------------------------------


def test_decode_floor_source_case():
    # MLSysBook: 14 GB at 3.35 TB/s >= 4.2 ms/token; 50 ms/token is ~0.28 TFLOP/s, eta ~0.03 % of 989 TFLOP/s.
    d = decode_floor(7e9, "fp16", "h100", time_per_token_s=0.05)
    assert d.weight_bytes == 14e9
    assert d.floor_time_s == pytest.approx(14e9 / 3.35e12)
    assert d.achieved_flops_per_s == pytest.approx(2 * 7e9 / 0.05)
    assert d.efficiency == pytest.approx(2.8e11 / 989.4e12)
    assert d.max_tokens_per_s == pytest.approx(3.35e12 / 14e9)


def test_decode_at_50_ms_is_overhead_not_memory():
    # The iron law T = max(D/BW, O/R) + L_lat, by hand: the memory floor is 4.18 ms, so 45.8 ms of the 50 is L_lat.
    d = decode_floor(7e9, "fp16", "h100", time_per_token_s=0.05)
    memory_s, compute_s = 14e9 / 3.35e12, 1.4e10 / 989.4e12
    assert d.compute_floor_s == pytest.approx(compute_s)
    assert d.overhead_s == pytest.approx(0.05 - memory_s)
    assert d.bandwidth_fraction == pytest.approx(memory_s / 0.05)  # 8.4 % of 3.35 TB/s
    assert d.floor_efficiency == pytest.approx(1.4e10 / memory_s / 989.4e12)  # 0.34 %: memory-bound at best
    c = d.classify()
    assert c.regime == "latency" and c.latency_s == pytest.approx(0.05 - memory_s)
    # Within twice the memory floor the overhead is smaller than the floor: memory-bound.
    assert decode_floor(7e9, "fp16", "h100", time_per_token_s=1.9 * memory_s).classify().regime == "memory"
    assert decode_floor(7e9, "fp16", "h100", time_per_token_s=2.1 * memory_s).classify().regime == "latency"


def test_decode_floor_t4_and_no_time():
    d = decode_floor(7e9, "fp16", CATALOG["T4"])
    assert d.floor_time_s == pytest.approx(14e9 / 320e9)
    assert d.achieved_flops_per_s is None and d.efficiency is None
    assert d.overhead_s is None and d.bandwidth_fraction is None and d.classify().regime == "memory"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"params": 0}, "params"),
        ({"params": 7e9, "dtype": "bf16", "device": "T4"}, "dtype"),
        ({"params": 7e9, "time_per_token_s": -1.0}, "time_per_token_s"),
    ],
)
def test_decode_floor_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        decode_floor(**kwargs)


# --- measurement ------------------------------------------------------------------------------------------------------


def test_measured_op_properties_and_regime():
    m = MeasuredOp("x", flops=2e9, bytes_moved=1e9, time_s=0.5)
    assert (m.intensity_flops_per_byte, m.achieved_flops_per_s, m.achieved_bytes_per_s) == (2.0, 4e9, 2e9)
    roof = Roofline(compute={"fp32": 1e12}, memory={"dram": 1e10}, latency_s=1e-6)
    assert m.regime(roof) == "memory"  # I = 2 < ridge 100
    assert MeasuredOp("t", 64, 768, 1e-6).regime(roof) == "latency"  # 77 ns of traffic < 1 us of dispatch


def _tensor_bytes(t) -> int:
    return t.numel() * t.element_size()


def test_regime_workloads_costs_match_their_tensors():
    pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    tiny, large, mm = regime_workloads("cpu", tiny_numel=100)
    for w in (tiny, large):
        x, y = w.args
        out = w.kwargs["out"]
        assert w.cost.bytes_moved == _tensor_bytes(x) + _tensor_bytes(y) + _tensor_bytes(out)
        assert w.cost.flops == out.numel()
    a, b = mm.args
    with FlopCounterMode(display=False) as counter:
        mm.fn(*mm.args)
    assert mm.cost.flops == counter.get_total_flops()
    assert mm.cost.bytes_moved == 3 * _tensor_bytes(a)


def test_kernel_workloads_costs_match_their_tensors():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    for w in kernel_workloads("cpu"):
        out = w.fn(*w.args, **w.kwargs)
        tensors = [a for a in w.args if isinstance(a, torch.Tensor)]
        if w.label == "embedding":
            idx = tensors[0]
            read = _tensor_bytes(idx) + _tensor_bytes(out)  # only the gathered rows are read
        else:
            read = sum(_tensor_bytes(t) for t in tensors)
        assert w.cost.bytes_moved == read + _tensor_bytes(out), w.label
        if w.label in ("batch-1 linear", "depthwise conv"):
            with FlopCounterMode(display=False) as counter:
                w.fn(*w.args, **w.kwargs)
            assert w.cost.flops == counter.get_total_flops(), w.label


def test_measure_op_times_a_workload():
    w = Workload("sorted", sorted, (list(range(1000, 0, -1)),), OpCost(0.0, 8000.0))
    m = measure_op(w, min_run_s=0.01)
    assert m.label == "sorted" and m.bytes_moved == 8000.0
    assert 0 < m.time_s < 1 and math.isfinite(m.iqr_s)


def test_num_threads_restores():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    with num_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        with num_threads(0):
            pass


def test_workloads_reject_bad_device():
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="device"):
        regime_workloads("meta")


@pytest.mark.timing_comparison
def test_measure_ops_keeps_the_fastest_round_in_order():
    import time

    state = {"fast": False}

    def varying():
        time.sleep(0.0005 if state["fast"] else 0.004)

    def switch():  # runs after "varying" in each round: every later round of "varying" is fast
        state["fast"] = True

    ws = [Workload("varying", varying, (), OpCost(1.0, 8.0)), Workload("switch", switch, (), OpCost(0.0, 8.0))]
    first = measure_ops(ws, rounds=1, min_run_s=0.02)[0]
    state["fast"] = False
    ops = measure_ops(ws, rounds=2, min_run_s=0.02)
    assert [m.label for m in ops] == ["varying", "switch"]
    assert first.time_s >= 0.004
    assert ops[0].time_s < first.time_s / 2
    assert all(m.threads is None for m in ops)


def test_measure_ops_records_the_thread_count():
    pytest.importorskip("torch")
    (m,) = measure_ops([Workload("len", len, ([0] * 10,), OpCost(0.0, 8.0))], threads=(1, 2), min_run_s=0.005)
    assert m.threads in (1, 2)
    assert measure_op(Workload("len", len, ([0],), OpCost(0.0, 8.0)), min_run_s=0.005, threads=1).threads == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rounds": 0}, ValueError, "rounds"),
        ({"threads": 0}, ValueError, "threads"),
        ({"threads": ()}, ValueError, "threads"),
    ],
)
def test_measure_ops_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        measure_ops([Workload("len", len, ([0],), OpCost(0.0, 8.0))], min_run_s=0.001, **kwargs)
    with pytest.raises(TypeError, match="Workload"):
        measure_ops([len])


def test_table_text_html_and_bad_rows():
    t = Table(("a", "b<"), [(1, "x&y"), ("long", 2.5)], caption="cap")
    assert str(t).splitlines() == ["cap", "a     b<", "1     x&y", "long  2.5"]
    page = t._repr_html_()
    assert ">b&lt;</th>" in page and ">x&amp;y</td>" in page and ">cap</caption>" in page
    assert page.count("<tr>") == 3
    wide = Table(("x",), [("a" * 40,), ("9.5 µs",)])._repr_html_()
    assert wide.count("nowrap") == 2  # the header and the short cell; the 40-character cell may wrap
    with pytest.raises(ValueError, match="rows\\[0\\]"):
        Table(("a", "b"), [("only one",)])


def test_ceiling_table_rows_follow_the_roofline():
    roof = Roofline.from_device(CATALOG["H100 SXM"])
    t = ceiling_table(roof)
    assert [r[0] for r in t.rows] == [f"compute {d}" for d in CATALOG["H100 SXM"].peak_flops_per_s] + ["memory dram"]
    assert all(r[1] == "-" and r[2].endswith("(spec)") for r in t.rows)  # datasheet only: nothing measured
    assert "ridge point 20 FLOP/B (fp32 over dram)" in t.caption  # 67e12 / 3.35e12 = 20


# --- the cores experiment's claim ----------------------------------------------------------------------------------------


def test_more_cores_claim_held_and_diagnosed(monkeypatch):
    from efflab import claims, op_bench
    from efflab.claims import UnexplainedClaim
    from efflab.roofline_claims import more_cores_claim

    monkeypatch.setenv(claims.STRICT_ENV, "1")
    monkeypatch.setattr(claims, "cores_deliver", lambda *a: claims.Reason(False, "two real cores"))
    monkeypatch.setattr(op_bench, "threads_scale_now", lambda threads: claims.Reason(False, "no better now"))
    dram_only = {"l2": 1 << 20, "l3": 8 << 20}
    add_bytes, dram = 2e8, 2e10  # one core at 10 ms moves 20 GB/s: the whole DRAM roof
    assert more_cores_claim((10e-3, 9.8e-3), (0.1, 0.052), add_bytes, dram, dram_only).held
    # The add gains as much as the matmul because one core reached only half of DRAM: diagnosed from the numbers.
    v = more_cores_claim((20e-3, 10e-3), (0.1, 0.052), add_bytes, dram, dram_only)
    assert not v.held and "50% of the measured 20 GB/s" in v.why
    # The add's 191 MiB fit a reported 480 MiB L3: cache bandwidth grows with cores.
    v = more_cores_claim((10e-3, 5e-3), (0.1, 0.052), add_bytes, dram, {"l3": 480 << 20})
    assert "fits in the l3" in v.why
    # The matmul gained nothing: contention is the diagnosis when the load says so, otherwise nothing explains it.
    monkeypatch.setattr(claims.os, "getloadavg", lambda: (8.0, 8.0, 8.0))
    v = more_cores_claim((10e-3, 9.9e-3), (0.1, 0.095), add_bytes, dram, dram_only)
    assert "other processes share the cores" in v.why
    monkeypatch.setattr(claims.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    with pytest.raises(UnexplainedClaim):  # two cores made the matmul slower while the add did not move
        more_cores_claim((10e-3, 9.9e-3), (0.1, 0.125), add_bytes, dram, dram_only)
    # ... unless a matmul timed just after does scale: the second CPU was lent elsewhere during the experiment.
    monkeypatch.setattr(op_bench, "threads_scale_now", lambda threads: claims.Reason(True, "x1.9 now"))
    assert more_cores_claim((10e-3, 9.9e-3), (0.1, 0.125), add_bytes, dram, dram_only).why == "x1.9 now"
    monkeypatch.setattr(op_bench, "threads_scale_now", lambda threads: claims.Reason(False, "no better now"))
    # Round times: the fastest counts, and rounds 45 % apart are a machine that changed speed mid-experiment.
    v = more_cores_claim(([10e-3, 10.2e-3], [9.9e-3]), ([0.1], [0.125, 0.17]), add_bytes, dram, dram_only)
    assert "differ by up to 36%" in v.why
    # The CI failure of this session: matmul x1.28, add x1.73 -- the add beat the DRAM ceiling measured earlier.
    v = more_cores_claim((10e-3, 10e-3 / 1.73), (0.1, 0.1 / 1.28), add_bytes, dram, dram_only)
    assert "above the 20 GB/s DRAM ceiling measured earlier" in v.why
    # Steal time between two /proc/stat samples: the sample after is taken inside the call.
    monkeypatch.setattr(claims, "cpu_times", lambda: (2000, 300))
    v = more_cores_claim((10e-3, 9.9e-3), (0.1, 0.095), add_bytes, dram, dram_only, cpu_times_before=(1000, 100))
    assert "for 20% of the experiment (steal time)" in v.why
    # This session's ch03: matmul x1.28, add x1.24 on an idle-looking VM: the second CPU gave both the same.
    monkeypatch.setattr(claims, "cpu_times", lambda: None)
    v = more_cores_claim((10e-3, 10e-3 / 1.24), (0.1, 0.1 / 1.28), add_bytes, dram, dram_only)
    assert "gave both ops the same small gain (x1.28 and x1.24)" in v.why
    with pytest.raises(ValueError, match="add_times_s"):
        more_cores_claim((0.0, 1e-3), (0.1, 0.05), add_bytes, dram, dram_only)


# --- the unit that runs a kernel, the level its data lives in, and the roofline's claims ---------------------------------


def test_vector_and_sfu_ceilings_follow_from_sms_and_clock():
    # Hand-computed: H100 SXM 132 SMs x 16 exp/clock x 1.83 GHz = 3.865e12 exp/s (FlashAttention-3 quotes 3.9e12);
    # vector FP16 is twice FP32 on Hopper, Ampere's non-Tensor BF16 runs at the FP32 rate x2 = 39 TFLOP/s.
    h100, a100, t4 = CATALOG["H100 SXM"], CATALOG["A100 80GB SXM"], CATALOG["T4"]
    assert h100.exp_per_s == pytest.approx(132 * 16 * 1.83e9)
    assert abs(h100.exp_per_s - 3.9e12) / 3.9e12 < 0.01
    assert h100.vector_flops_per_s["fp16"] == pytest.approx(2 * h100.vector_flops_per_s["fp32"])
    assert a100.vector_flops_per_s["bf16"] == pytest.approx(2 * a100.vector_flops_per_s["fp32"])
    assert t4.exp_per_s == pytest.approx(40 * 16 * 1.59e9)
    for device in CATALOG.values():  # every figure carries its source, and no vector unit beats the Tensor Cores
        assert device.exp_per_s and device.sources["exp_per_s"]
        for dtype, peak in device.vector_flops_per_s.items():
            assert device.sources[f"vector_flops_per_s.{dtype}"]
            assert peak <= device.peak_flops_per_s.get(dtype, math.inf)


def test_unit_classify_softmax_on_the_sfus_and_matmuls_on_tensor_cores():
    from efflab.roofline_cases import unit_classify

    cases = {k.name: k for k in kernel_catalog("fp16")}
    soft = unit_classify(cases["softmax (scores)"], "H100 SXM")
    n = 32 * 2048 * 2048
    assert soft.sfu_time_s == pytest.approx(n / (132 * 16 * 1.83e9))
    assert soft.vector_time_s == pytest.approx(5 * n / 133.8e12)  # softmax counts 5 FLOPs per element
    assert soft.ceiling == "SFU (exp)" and soft.regime == "memory"
    assert soft.memory_time_s == pytest.approx(cases["softmax (scores)"].bytes_moved / 3.35e12)
    prefill = unit_classify(cases["prefill linear"], "H100 SXM")
    assert prefill.ceiling == "Tensor Cores" and prefill.regime == "compute"
    assert prefill.compute_time_s == pytest.approx(2 * 2048 * 4096**2 / 989.4e12)
    # The T4 has no bf16 at all: named, not a KeyError.
    with pytest.raises(ValueError, match="bf16"):
        unit_classify(cases["prefill linear"], "T4", "bf16")
    with pytest.raises(TypeError, match="KernelCase"):
        unit_classify("softmax", "H100 SXM")


def test_resident_level_picks_the_smallest_measured_level_that_holds_the_data():
    from efflab.op_bench import resident_level

    roof = Roofline({"fp32": 1e11}, {"dram": 2e10, "l2": 6e10, "l3": 9e10})
    caches = {"l1": 32 << 10, "l2": 512 << 10, "l3": 8 << 20}
    assert resident_level(roof, 16 << 10, caches) == "l2"  # l1 fits but has no measured ceiling
    assert resident_level(roof, 1 << 20, caches) == "l3"
    assert resident_level(roof, 9 << 20, caches) == "dram"
    assert resident_level(roof, 1 << 20, {}) == "dram"  # a GPU: the OS reports no levels
    with pytest.raises(ValueError, match="working_set_bytes"):
        resident_level(roof, 0, caches)


def test_bound_claim_uses_the_level_and_diagnoses_a_partly_cached_op(monkeypatch):
    from efflab import claims
    from efflab.claims import UnexplainedClaim
    from efflab.roofline_claims import bound_claim

    monkeypatch.setenv(claims.STRICT_ENV, "1")
    monkeypatch.setattr(claims.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    roof = Roofline({"fp32": 1e11}, {"dram": 2e10, "l3": 8e10}, latency_s=3e-6)
    caches = {"l3": 8 << 20}
    # 4 MiB in the L3 at 80 GB/s: 52.4 µs + the 3 µs latency = 55.4 µs, 92 % of the 60 µs measured. Judged on DRAM
    # it would have "beaten" a 213 µs bound 3.5x.
    in_l3 = MeasuredOp("small add", 1e5, 4 << 20, 60e-6)
    assert bound_claim([in_l3], roof, caches).held
    assert "92% of its bound" in bound_claim([in_l3], roof, caches).figures
    # 20 MiB (over the 8 MiB L3, under 4x it) faster than DRAM allows: STREAM's rule explains it.
    v = bound_claim([MeasuredOp("embedding", 0.0, 20 << 20, 0.5e-3)], roof, caches)
    assert not v.held and "under 4x the 8 MiB last-level cache" in v.why
    # 200 MiB past 4x the LLC and still faster than the bound: nothing explains it.
    with pytest.raises(UnexplainedClaim):
        bound_claim([MeasuredOp("add", 0.0, 200 << 20, 5e-3)], roof, caches)


def test_proportional_claim_held_and_the_cache_crossing_diagnosed(monkeypatch):
    from efflab import claims
    from efflab.claims import UnexplainedClaim
    from efflab.roofline_claims import proportional_claim

    monkeypatch.setenv(claims.STRICT_ENV, "1")
    sizes = [2**21, 2**22, 2**23, 2**24]
    v = proportional_claim(sizes, [1.3e-3, 2.75e-3, 5.26e-3, 10.6e-3], 12, caches={"l3": 8 << 20})
    assert v.held and "x1.91" in v.figures and "x2.02" in v.figures
    # The Xeon: x2.78 where 48 MiB sat in a reported 480 MiB L3.
    v = proportional_claim(sizes, [0.5e-3, 1.0e-3, 2.78e-3, 6.2e-3], 12, caches={"l3": 480 << 20})
    assert not v.held and "48 MiB working set fits in the l3" in v.why
    # x1.55 inside a 30 % spread is noise; with a 5 % spread nothing explains it.
    times = [1e-3, 2e-3, 3.1e-3, 6.2e-3]
    assert (
        "within the measurement's run-to-run spread" in proportional_claim(sizes, times, 12, {"l3": 8 << 20}, 0.3).why
    )
    with pytest.raises(UnexplainedClaim):
        proportional_claim(sizes, times, 12, {"l3": 8 << 20}, 0.05)
    with pytest.raises(ValueError, match="double"):
        proportional_claim([1, 2, 3], [1e-3, 2e-3, 3e-3], 12, {"l3": 8 << 20})


def test_op_bound_adds_the_exponentials_and_needs_their_rate():
    from efflab.op_bench import op_bound

    roof = Roofline({"fp32": 1e11}, {"dram": 2e10, "l3": 8e10}, latency_s=3e-6)
    n = 2**22  # a softmax over 4 Mi fp32 elements: 32 MiB in and out, 5 FLOPs and one exp each
    soft = MeasuredOp("softmax", 5 * n, 8 * n, 6e-3, exps=n)
    b = op_bound(soft, roof, {"l3": 8 << 20}, exp_per_s=7e8)
    # by hand: memory 32 MiB / 20 GB/s = 1.68 ms, compute 21 MFLOP / 100 GFLOP/s = 0.21 ms, exp 4.19e6 / 7e8 = 5.99 ms
    assert b.terms["dram"] == pytest.approx(8 * n / 2e10)
    assert b.terms["exp"] == pytest.approx(n / 7e8)
    assert b.bound_by == "exp" and b.time_s == pytest.approx(n / 7e8 + 3e-6)
    with pytest.raises(ValueError, match="exp_per_s"):
        op_bound(soft, roof, {"l3": 8 << 20})
    with pytest.raises(TypeError, match="MeasuredOp"):
        op_bound("softmax", roof)


def test_measured_exp_rate_agrees_with_timing_exp_directly():
    import time

    import torch

    from efflab.ceilings import EXP_ELEMENTS, measure_exp_rate

    c = measure_exp_rate(budget_s=0.02)
    assert c.name == "exp" and c.kind == "compute" and c.value > 0
    from efflab.timing import torch_threads

    x = torch.rand(EXP_ELEMENTS) - 0.5
    out = torch.empty_like(x)
    best = math.inf
    with torch_threads(1):
        for _ in range(200):
            start = time.perf_counter()
            torch.exp(x, out=out)
            best = min(best, time.perf_counter() - start)
    # The ceiling keeps the faster of one thread and all: at least about the one-thread rate timed here, and at most
    # what every CPU could add (a noisy VM moves single timings by tens of percent, hence the slack).
    ratio = c.value / (EXP_ELEMENTS / best)
    assert 0.5 < ratio < 2 * (os.cpu_count() or 1), ratio


def test_flat_claim_on_tiny_doublings(monkeypatch):
    from efflab import claims
    from efflab.claims import UnexplainedClaim
    from efflab.roofline_claims import flat_claim

    monkeypatch.setenv(claims.STRICT_ENV, "1")
    monkeypatch.setattr(claims.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    sizes = [8, 16, 32, 64, 128]
    v = flat_claim(sizes, [3.04e-6, 3.05e-6, 3.1e-6, 3.04e-6, 3.15e-6])
    assert v.held and v.figures == "8 -> 16 x1.00, 64 -> 128 x1.04"
    slow = [3e-6, 6e-6, 6e-6, 6e-6, 12e-6]  # every doubling doubles: not flat, and far outside a 5 % spread
    with pytest.raises(UnexplainedClaim):
        flat_claim(sizes, slow, spread=0.05)
    assert (
        "within the measurement's run-to-run spread"
        in flat_claim(sizes, [3e-6, 4e-6, 4e-6, 4e-6, 4e-6], spread=0.2).why
    )
    with pytest.raises(ValueError, match="small_sizes"):
        flat_claim([8, 32], [1e-6, 1e-6])


def test_bound_claim_a_tiny_op_at_the_dispatch_floor_is_diagnosed(monkeypatch):
    from efflab import claims
    from efflab.roofline_claims import bound_claim

    monkeypatch.setenv(claims.STRICT_ENV, "1")
    monkeypatch.setattr(claims.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    roof = Roofline({"fp32": 1e11}, {"dram": 2e10}, latency_s=3e-6)
    # This session's ch03 run: a 64-element add at 2.72 µs against a 2.97 µs floor measured earlier.
    v = bound_claim([MeasuredOp("tiny add (64)", 64, 768, 2.72e-6)], roof, {"l3": 8 << 20})
    assert not v.held and "dispatch floor" in v.why


def test_regimes_claim_on_the_introductions_probes(monkeypatch):
    from efflab import claims
    from efflab.claims import UnexplainedClaim
    from efflab.roofline_claims import regimes_claim

    monkeypatch.setenv(claims.STRICT_ENV, "1")
    monkeypatch.setattr(claims.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    roof = Roofline({"fp32": 6.3e10}, {"dram": 1.86e10}, latency_s=3e-6)
    tiny = MeasuredOp("tiny add (64)", 64, 768, 2.76e-6)
    add = MeasuredOp("large add (16M)", 2**24, 12 * 2**24, 12.6e-3)  # bound 10.8 ms: 86 % by hand
    mm = MeasuredOp("matmul 1024^3", 2 * 1024**3, 12 * 2**20, 50.2e-3)  # bound 34.1 ms: 68 %
    v = regimes_claim([tiny, add, mm], roof)
    assert v.held and "memory-bound at 86%" in v.figures and "compute-bound at 68%" in v.figures
    slow = MeasuredOp("matmul 1024^3", 2 * 1024**3, 12 * 2**20, 0.2)  # 17 % of its roof on an idle machine
    with pytest.raises(UnexplainedClaim):
        regimes_claim([tiny, add, slow], roof)
    monkeypatch.setattr(claims.os, "getloadavg", lambda: (6.0, 6.0, 6.0))
    assert "other processes share the cores" in regimes_claim([tiny, add, slow], roof).why
    with pytest.raises(ValueError, match="one MeasuredOp per expected regime"):
        regimes_claim([tiny], roof)
    # This session's ch01: the matmul at 121 % of a bound measured in a slow minute. Drift measured now explains it.
    monkeypatch.setattr(claims.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    fast = MeasuredOp("matmul 1024^3", 2 * 1024**3, 12 * 2**20, 28.2e-3)
    from efflab import op_bench

    monkeypatch.setattr(op_bench, "speed_drift", lambda roofline: claims.Reason(True, "the machine got faster"))
    v = regimes_claim([tiny, add, fast], roof)
    assert not v.held and "compute-bound at 121%" in v.figures and v.why == "the machine got faster"
    monkeypatch.setattr(op_bench, "speed_drift", lambda roofline: claims.Reason(False, "same speed"))
    with pytest.raises(UnexplainedClaim):
        regimes_claim([tiny, add, fast], roof)


def test_lever_claims_of_lab1(monkeypatch):
    from efflab import claims
    from efflab.claims import UnexplainedClaim
    from efflab.claims import cores_deliver as real_cores_deliver
    from efflab.roofline_claims import lever_claims

    monkeypatch.setenv(claims.STRICT_ENV, "1")
    monkeypatch.setattr(claims.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(claims, "cores_deliver", lambda *a: claims.Reason(False, "two real cores"))
    items = [[1, 32, 1], [1024, 4096, 1024]]
    good = [[3.64e-3, 17.9e-3, 3.54e-3], [23.5e-3, 93.5e-3, 11.2e-3]]  # this session's stored run
    assert all(v.held for v in lever_claims(items, good))
    # Colab: two hyper-threads of one core, so the second thread barely helps the matmul.
    colab = [[3.64e-3, 17.9e-3, 3.54e-3], [23.5e-3, 93.5e-3, 21.0e-3]]
    monkeypatch.setattr(claims, "physical_cores", lambda: 1)
    monkeypatch.setattr(claims.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert "hyper-threads of 1 physical core" in lever_claims(items, colab)[1].why
    monkeypatch.setattr(claims, "physical_cores", lambda: 2)
    with pytest.raises(UnexplainedClaim):
        lever_claims(items, colab)
    # The memory-bound op gained x1.8 from a second thread: one thread streamed 64 MiB at 35 % of DRAM.
    weak = [[3.64e-3, 17.9e-3, 2.0e-3], [23.5e-3, 93.5e-3, 11.2e-3]]
    v = lever_claims(items, weak, weight_bytes=64 << 20, dram_bytes_per_s=5.2e10)[1]
    assert "one thread streamed the weights at 35%" in v.why
    with pytest.raises(ValueError, match="shape"):
        lever_claims([[1, 2]], [[1.0, 2.0]])
    # make test's one-thread run: lever B goes from 1 thread to 1 thread, and says so.
    flat = [[3.64e-3, 17.9e-3, 3.8e-3], [23.5e-3, 93.5e-3, 22.8e-3]]
    assert "lever B (1 -> 1 thread) added no FLOP/s" in lever_claims(items, flat, threads=1)[1].why
    # A host that gives the two vCPUs one core's time: measured, it explains the matmul that did not speed up.
    monkeypatch.setattr(claims, "parallel_capacity", lambda cpus=None, iterations=0: 1.1)
    monkeypatch.setattr(claims, "cores_deliver", real_cores_deliver)
    assert "got 1.10 CPUs' worth of work done" in lever_claims(items, colab)[1].why
    # CI, 2026-12-03: two threads gave the matmul x1.22 while a matmul timed just after scaled: a busy host, for a while.
    from efflab import op_bench

    monkeypatch.setattr(claims, "cores_deliver", lambda *a: claims.Reason(False, "two real cores"))
    burst = [[3.64e-3, 17.9e-3, 3.68e-3], [23.5e-3, 93.5e-3, 19.3e-3]]
    monkeypatch.setattr(op_bench, "threads_scale_now", lambda threads: claims.Reason(threads == 2, "x1.9 just now"))
    assert lever_claims(items, burst, threads=2)[1].why == "x1.9 just now"
    monkeypatch.setattr(op_bench, "threads_scale_now", lambda threads: claims.Reason(False, "x1.1 just now too"))
    with pytest.raises(UnexplainedClaim):
        lever_claims(items, burst, threads=2)
    # CI again: batching gave the compute-bound op x0.69 while the same matmuls timed just after were flat.
    slow_batch = [[3.64e-3, 17.9e-3, 3.54e-3], [23.5e-3, 136.2e-3, 11.2e-3]]
    calls = []

    def flat_now(rows, n):
        calls.append((rows, n))
        return claims.Reason(True, "x0.98 just now")

    monkeypatch.setattr(op_bench, "batching_flat_now", flat_now)
    assert lever_claims(items, slow_batch, threads=2)[0].why == "x0.98 just now"
    assert calls == [((1024, 4096), 1024)]  # the compute-bound op's own rows and weight
    monkeypatch.setattr(op_bench, "batching_flat_now", lambda rows, n: claims.Reason(False, "x0.7 just now too"))
    with pytest.raises(UnexplainedClaim):
        lever_claims(items, slow_batch, threads=2)
