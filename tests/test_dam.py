"""D·A·M diagnosis on hand-built scenarios (starving input, latency cliff, compute wall, 7B decode) and oracle tables.

The oracles are worked by hand from the rules in efflab/dam.py's docstrings: the regime is the largest time term
(data -> input, idle -> latency, compute -> the roofline's memory/compute, or "device" without FLOPs and bytes); a fix
addresses the bottleneck when it shortens that term (FIXES), else it is the hardware crutch (hardware), the model
twiddle (a model change while input-bound) or the premature optimizer (anything else).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from efflab.dam import FIXES, diagnose
from efflab.roofline import remedies

H100 = {"peak_flops_per_s": 989.4e12, "bandwidth_bytes_per_s": 3.35e12}  # H100 SXM datasheet, dense bf16


def test_starving_input_pipeline():
    # 60 % of each step waits on the data loader.
    kwargs = {"data_time_s": 0.6, "compute_time_s": 0.35, "idle_time_s": 0.05}
    d = diagnose(**kwargs, proposed_fix="change_model")
    assert (d.axis, d.regime, d.wall_time_s) == ("data", "input", 1.0)
    assert d.data_fraction == pytest.approx(0.6) and d.compute_fraction == pytest.approx(0.35)
    assert d.scorecard.io_overhead.verdict == "fail" and d.scorecard.io_overhead.value == pytest.approx(0.6)
    assert d.scorecard.utilization.verdict == "warn"  # busy 35 % < 80 %
    assert d.scorecard.mfu is None and d.scorecard.intensity is None
    assert d.anti_pattern == "model twiddle"
    assert any("workers" in lever for lever in d.works)
    assert diagnose(**kwargs, proposed_fix="faster_gpu").anti_pattern == "hardware crutch"
    assert diagnose(**kwargs, proposed_fix="fuse_kernels").anti_pattern == "premature optimizer"
    assert diagnose(**kwargs, proposed_fix="more_loader_workers").anti_pattern is None


def test_latency_cliff():
    # Thousands of tiny kernels: the device idles between dispatches 80 % of the time.
    kwargs = {"data_time_s": 0.0, "compute_time_s": 0.02, "idle_time_s": 0.08, "flops": 1e9, "bytes_moved": 1e8, **H100}
    d = diagnose(**kwargs, proposed_fix="faster_gpu")
    assert (d.axis, d.regime, d.dominant_term) == ("machine", "latency", "L_lat")
    assert d.works == remedies("latency").works and d.wasted == remedies("latency").wasted
    assert d.anti_pattern == "hardware crutch"
    assert diagnose(**kwargs, proposed_fix="fuse_kernels").anti_pattern is None
    assert diagnose(**kwargs, proposed_fix="better_kernel").anti_pattern == "premature optimizer"
    # MFU is computed on the wall time: 1e9 / (0.1 s * 989.4e12)
    assert d.scorecard.mfu.value == pytest.approx(1e9 / (0.1 * 989.4e12)) and d.scorecard.mfu.verdict == "fail"


def test_compute_wall():
    # An 8192^3 bf16 matmul chain near peak: compute-bound, MFU passes -> only fewer operations (algorithm) help.
    flops = 2 * 8192**3 * 100
    nbytes = 3 * 8192**2 * 2 * 100
    time_s = flops / (0.8 * H100["peak_flops_per_s"])
    kwargs = {"data_time_s": 0.0, "compute_time_s": time_s, "flops": flops, "bytes_moved": nbytes, **H100}
    d = diagnose(**kwargs, proposed_fix="more_bandwidth")
    assert (d.regime, d.axis) == ("compute", "algorithm")
    assert d.classification.regime == "compute"
    assert d.scorecard.mfu.value == pytest.approx(0.8) and d.scorecard.mfu.verdict == "pass"
    assert d.scorecard.intensity.value == pytest.approx(8192 / 3) and d.scorecard.intensity.verdict == "pass"
    assert d.anti_pattern == "hardware crutch"
    assert diagnose(**kwargs, proposed_fix="faster_gpu").anti_pattern is None
    assert diagnose(**kwargs, proposed_fix="more_loader_workers").anti_pattern == "premature optimizer"
    # the same work at 10 % of peak: compute-bound with a failing MFU -> the machine axis (eta is low)
    slow = diagnose(**{**kwargs, "compute_time_s": flops / (0.1 * H100["peak_flops_per_s"])})
    assert (slow.regime, slow.axis, slow.scorecard.mfu.verdict) == ("compute", "machine", "fail")


def test_7b_decode_memory_bound():
    # At its memory floor (14 GB / 3.35 TB/s = 4.18 ms/token) a batch-1 decode is memory-bound, MFU 0.34 %.
    floor_s = 14e9 / 3.35e12
    kwargs = {"data_time_s": 0.0, "compute_time_s": floor_s, "flops": 1.4e10, "bytes_moved": 1.4e10, **H100}
    d = diagnose(**kwargs, proposed_fix="faster_gpu")
    assert (d.regime, d.axis, d.anti_pattern) == ("memory", "data", "hardware crutch")
    assert d.scorecard.mfu.value == pytest.approx(1.4e10 / floor_s / 989.4e12)  # 3.35 TFLOP/s -> 0.34 %
    assert d.scorecard.intensity.verdict == "fail"  # 1 FLOP/B against a ridge of 295
    for fix in ("quantize", "prune", "bigger_batch", "fuse_kernels"):
        assert diagnose(**kwargs, proposed_fix=fix).anti_pattern is None


def test_7b_decode_at_50_ms_is_latency_bound():
    # MLSysBook's 50 ms/token: the floor explains 4.18 ms, the other 45.8 ms are dispatch overhead (L_lat).
    floor_s = 14e9 / 3.35e12
    kwargs = {"data_time_s": 0.0, "compute_time_s": floor_s, "idle_time_s": 0.05 - floor_s}
    d = diagnose(**kwargs, flops=1.4e10, bytes_moved=1.4e10, **H100, proposed_fix="faster_gpu")
    assert (d.regime, d.axis, d.anti_pattern) == ("latency", "machine", "hardware crutch")
    assert d.scorecard.mfu.value == pytest.approx(1.4e10 / 0.05 / 989.4e12)  # 0.28 TFLOP/s -> 0.03 %
    assert diagnose(**kwargs, proposed_fix="fuse_kernels").anti_pattern is None


def test_fixes_follow_the_source_table():
    # MLSysBook's Table 1: what works must not be flagged, what is wasted must be.
    base = {"data_time_s": 0.0, **H100}
    memory = {**base, "compute_time_s": 1.0, "flops": 1e9, "bytes_moved": 1e9}
    compute = {**base, "compute_time_s": 1.0, "flops": 5e14, "bytes_moved": 1e9}
    latency = {**base, "compute_time_s": 0.1, "idle_time_s": 1.0}
    cases = [
        (memory, ("quantize", "prune", "bigger_batch"), ("faster_gpu",)),
        (compute, ("better_kernel", "faster_gpu"), ("more_bandwidth",)),
        (latency, ("fuse_kernels", "async_dispatch", "bigger_batch"), ("faster_gpu", "more_bandwidth")),
    ]
    for kwargs, works, wasted in cases:
        for fix in works:
            assert diagnose(**kwargs, proposed_fix=fix).anti_pattern is None, fix
        for fix in wasted:
            assert diagnose(**kwargs, proposed_fix=fix).anti_pattern == "hardware crutch", fix


# --- the oracle: every fix in every regime, worked by hand ------------------------------------------------------------

# A toy device: 1 TFLOP/s and 100 GB/s, so the ridge is 10 FLOP/B.
TOY = {"peak_flops_per_s": 1e12, "bandwidth_bytes_per_s": 1e11}
# One workload per regime; each regime follows from the largest term (and, for device time, the roofline) by hand.
WORKLOADS = {
    # data 0.6 s > compute 0.3 s > idle 0.1 s: the device waits on its input.
    "input": {"data_time_s": 0.6, "compute_time_s": 0.3, "idle_time_s": 0.1},
    # idle 0.8 s > compute 0.15 s > data 0.05 s: dispatch overhead dominates.
    "latency": {"data_time_s": 0.05, "compute_time_s": 0.15, "idle_time_s": 0.8},
    # compute dominates; 1e10 FLOP over 1e10 B = 1 FLOP/B < ridge 10: memory-bound (MFU 1e10 / 1e12 = 1 %).
    "memory": {"data_time_s": 0.0, "compute_time_s": 1.0, "flops": 1e10, "bytes_moved": 1e10, **TOY},
    # compute dominates; 6e11 FLOP over 6e9 B = 100 FLOP/B > ridge 10: compute-bound (MFU 60 %).
    "compute": {"data_time_s": 0.0, "compute_time_s": 1.0, "flops": 6e11, "bytes_moved": 6e9, **TOY},
    # compute dominates, and no FLOPs or bytes split it into memory and compute.
    "device": {"data_time_s": 0.1, "compute_time_s": 0.9},
}
REGIMES = ("input", "latency", "memory", "compute", "device")
C, T, P = "hardware crutch", "model twiddle", "premature optimizer"
# fix -> expected anti-pattern per regime (None: it shortens the dominant term). A hardware fix that misses is the
# crutch; a model change misses only while input-bound (the twiddle); a software fix that misses is premature. Device
# time unsplit: any fix that helps memory- or compute-bound time may help.
# fmt: off
EXPECTED = {
    #                      input latency memory compute device
    "faster_gpu":          (C,    C,     C,     None,   None),  # more FLOP/s: only compute time
    "more_bandwidth":      (C,    C,     None,  C,      None),  # more bytes/s: only memory time
    "quantize":            (T,    P,     None,  None,   None),  # fewer bytes and cheaper FLOPs
    "prune":               (T,    P,     None,  None,   None),
    "change_model":        (T,    P,     None,  None,   None),
    "fuse_kernels":        (P,    None,  None,  P,      None),  # fewer trips to memory, fewer dispatches
    "async_dispatch":      (P,    None,  P,     P,      P),     # hides dispatch only
    "bigger_batch":        (P,    None,  None,  P,      None),  # amortizes weights' bytes and dispatches
    "better_kernel":       (P,    P,     P,     None,   None),  # closer to peak FLOP/s
    "more_loader_workers": (None, P,     P,     P,      P),     # the input pipeline only
    "cache_dataset":       (None, P,     P,     P,      P),
}
# fmt: on
AXES = {"input": "data", "latency": "machine", "memory": "data", "compute": "algorithm", "device": "machine"}


def test_oracle_covers_every_fix_and_every_anti_pattern():
    assert set(EXPECTED) == set(FIXES)
    seen = {verdict for row in EXPECTED.values() for verdict in row}
    assert seen == {None, C, T, P}
    for i, regime in enumerate(REGIMES):  # in every regime at least one fix works and at least one is wasted
        column = [row[i] for row in EXPECTED.values()]
        assert None in column and any(column), regime


@pytest.mark.parametrize("regime", REGIMES)
def test_regime_and_axis_of_each_workload(regime):
    d = diagnose(**WORKLOADS[regime])
    assert (d.regime, d.axis) == (regime, AXES[regime])
    assert d.proposed_fix is None and d.anti_pattern is None and d.reason == ""


@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize("fix", sorted(EXPECTED))
def test_anti_pattern_oracle(fix, regime):
    expected = EXPECTED[fix][REGIMES.index(regime)]
    d = diagnose(**WORKLOADS[regime], proposed_fix=fix)
    assert d.regime == regime and d.proposed_fix == fix
    assert d.anti_pattern == expected
    assert d.reason
    if expected is None and regime != "device":
        assert d.dominant_term in d.reason  # "It shortens the dominant term (...)"
    if expected in (C, P):
        assert regime in d.reason  # names the regime it misses
    text = " ".join(d.to_text().split())
    assert (f"the {expected}" if expected else "addresses the bottleneck") in text


def test_unsplit_device_time_says_whether_the_fix_is_sure():
    # Fixes for both memory and compute time shorten device time for sure; one-sided fixes only may help.
    for fix in ("quantize", "prune", "change_model"):
        assert "whether it is memory- or compute-bound" in diagnose(**WORKLOADS["device"], proposed_fix=fix).reason
    for fix in ("faster_gpu", "more_bandwidth", "fuse_kernels", "bigger_batch", "better_kernel"):
        assert "It may help" in diagnose(**WORKLOADS["device"], proposed_fix=fix).reason


# --- boundaries -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "compute", "idle", "regime"),
    [
        (0.5, 0.5, 0.0, "input"),  # data ties compute: data wins
        (0.4, 0.2, 0.4, "input"),  # data ties idle: data wins
        (0.0, 0.5, 0.5, "device"),  # compute ties idle: compute wins
        (1.0, 1.0, 1.0, "input"),  # all three tie
        (0.0, 0.0, 1.0, "latency"),  # nothing but dispatch
        (1e-9, 0.0, 0.0, "input"),  # nothing but a wait on input, however short
    ],
)
def test_ties_go_data_then_compute_then_idle(data, compute, idle, regime):
    assert diagnose(data_time_s=data, compute_time_s=compute, idle_time_s=idle).regime == regime


def test_intensity_at_the_ridge_is_memory_bound():
    # Ridge 10 FLOP/B: 1e10 FLOP over 1e9 B takes 0.01 s on either roof; the roofline breaks the tie to memory.
    at = {"data_time_s": 0.0, "compute_time_s": 1.0, "bytes_moved": 1e9, **TOY}
    assert diagnose(**at, flops=1e10).regime == "memory"
    assert diagnose(**at, flops=1.001e10).regime == "compute"
    assert diagnose(**at, flops=0.0).regime == "memory"  # no FLOPs at all: only bytes
    assert diagnose(**at, flops=1e10, proposed_fix="faster_gpu").anti_pattern == C
    assert diagnose(**at, flops=1.001e10, proposed_fix="faster_gpu").anti_pattern is None


def test_compute_axis_turns_at_mfu_30_percent():
    # Compute-bound (100 FLOP/B > ridge 10): machine while MFU < 30 % (eta is low), algorithm from 30 % on.
    wall = {"data_time_s": 0.0, "compute_time_s": 1.0, **TOY}
    at = diagnose(**wall, flops=3e11, bytes_moved=3e9)
    assert (at.regime, at.axis) == ("compute", "algorithm")
    assert (at.scorecard.mfu.value, at.scorecard.mfu.verdict) == (0.3, "warn")  # 3e11 / 1e12: exactly the threshold
    below = diagnose(**wall, flops=2.99e11, bytes_moved=2.99e9)
    assert (below.regime, below.axis, below.scorecard.mfu.verdict) == ("compute", "machine", "fail")
    # The axis moves, the verdicts do not: a faster GPU shortens compute-bound time either way.
    for kwargs in ({"flops": 3e11, "bytes_moved": 3e9}, {"flops": 2.99e11, "bytes_moved": 2.99e9}):
        assert diagnose(**wall, **kwargs, proposed_fix="faster_gpu").anti_pattern is None
        assert diagnose(**wall, **kwargs, proposed_fix="more_bandwidth").anti_pattern == C


def test_partial_counts_leave_device_time_unsplit():
    # FLOPs and a peak give an MFU but no roofline: the regime stays "device", on the machine axis even at MFU 90 %.
    d = diagnose(data_time_s=0.0, compute_time_s=1.0, flops=9e11, peak_flops_per_s=1e12, proposed_fix="faster_gpu")
    assert (d.regime, d.axis, d.classification, d.anti_pattern) == ("device", "machine", None, None)
    assert d.scorecard.mfu.value == pytest.approx(0.9) and d.scorecard.intensity is None
    d = diagnose(data_time_s=0.0, compute_time_s=1.0, flops=1e10, bytes_moved=1e10, proposed_fix="async_dispatch")
    assert (d.regime, d.anti_pattern) == ("device", P)


def test_overlapped_terms_are_judged_by_the_largest():
    # Loading overlapped with compute: 0.7 s data, 0.9 s compute in a 1 s wall. Compute is the larger term.
    d = diagnose(data_time_s=0.7, compute_time_s=0.9, wall_time_s=1.0, proposed_fix="more_loader_workers")
    assert (d.regime, d.anti_pattern) == ("device", P)
    assert d.scorecard.io_overhead.verdict == "fail"  # 70 % > 10 %: the scorecard still flags the wait
    d = diagnose(data_time_s=0.9, compute_time_s=0.7, wall_time_s=1.0, proposed_fix="quantize")
    assert (d.regime, d.anti_pattern) == ("input", T)


@pytest.mark.parametrize(
    ("data_s", "verdict"), [(0.005, "pass"), (0.01, "warn"), (0.05, "warn"), (0.10, "warn"), (0.2, "fail")]
)
def test_io_overhead_thresholds(data_s, verdict):
    d = diagnose(data_time_s=data_s, compute_time_s=1.0 - data_s)
    assert d.scorecard.io_overhead.value == pytest.approx(data_s)
    assert d.scorecard.io_overhead.verdict == verdict


@pytest.mark.parametrize(
    ("mfu", "verdict"), [(0.2, "fail"), (0.3, "warn"), (0.4, "warn"), (0.5, "warn"), (0.6, "pass")]
)
def test_mfu_thresholds(mfu, verdict):
    d = diagnose(data_time_s=0.0, compute_time_s=1.0, flops=mfu * 1e12, peak_flops_per_s=1e12)
    assert d.scorecard.mfu.value == pytest.approx(mfu) and d.scorecard.mfu.verdict == verdict


@pytest.mark.parametrize(("fraction", "verdict"), [(2.0, "pass"), (0.5, "pass"), (0.4, "warn"), (0.1, "fail")])
def test_intensity_against_ridge(fraction, verdict):
    # ridge 10 FLOP/B; intensity = fraction * ridge
    d = diagnose(
        data_time_s=0.0,
        compute_time_s=1.0,
        flops=fraction * 10,
        bytes_moved=1.0,
        peak_flops_per_s=100.0,
        bandwidth_bytes_per_s=10.0,
    )
    assert d.scorecard.intensity.value == pytest.approx(fraction * 10)
    assert d.scorecard.intensity.verdict == verdict


def test_wall_time_and_unsplit_device():
    # overlapped loading: terms sum to more than the wall
    d = diagnose(data_time_s=0.3, compute_time_s=0.9, wall_time_s=1.0, proposed_fix="quantize")
    assert d.wall_time_s == 1.0 and d.data_fraction == pytest.approx(0.3)
    assert d.regime == "device" and d.anti_pattern is None  # no flops/bytes: memory vs compute unknown
    assert diagnose(data_time_s=0.0, compute_time_s=1.0, proposed_fix="faster_gpu").anti_pattern is None
    assert diagnose(data_time_s=0.0, compute_time_s=1.0, proposed_fix="cache_dataset").anti_pattern == (
        "premature optimizer"
    )
    with pytest.raises(ValueError, match="wall_time_s"):
        diagnose(data_time_s=0.3, compute_time_s=0.9, wall_time_s=0.5)
    with pytest.raises(ValueError, match="> 0"):
        diagnose(data_time_s=0.0, compute_time_s=0.0)


def test_to_text():
    d = diagnose(
        data_time_s=0.0, compute_time_s=0.05, flops=1.4e10, bytes_moved=1.4e10, **H100, proposed_fix="faster_gpu"
    )
    text = d.to_text()
    assert "memory-bound" in text and "hardware crutch" in text and "[FAIL] MFU" in text and "quantization" in text
    assert "0.0283 %" in text


# --- bad input --------------------------------------------------------------------------------------------------------

NEG = st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False)
COMMON = st.sampled_from([math.nan, math.inf, -math.inf, "3", 1 + 2j, [1.0, 2.0], object()])
GOOD = {
    "data_time_s": 0.1,
    "compute_time_s": 0.5,
    "idle_time_s": 0.1,
    "flops": 1e12,
    "bytes_moved": 1e9,
    "peak_flops_per_s": 1e14,
    "bandwidth_bytes_per_s": 1e12,
    "wall_time_s": 1.0,
    "proposed_fix": "quantize",
}
BAD = {
    "data_time_s": st.one_of(NEG, COMMON, st.none()),
    "compute_time_s": st.one_of(NEG, COMMON, st.none()),
    "idle_time_s": st.one_of(NEG, COMMON, st.none()),
    "flops": st.one_of(NEG, COMMON),
    "bytes_moved": st.one_of(NEG, st.just(0.0), COMMON),
    "peak_flops_per_s": st.one_of(NEG, st.just(0.0), COMMON),
    "bandwidth_bytes_per_s": st.one_of(NEG, st.just(0.0), COMMON),
    "wall_time_s": st.one_of(NEG, st.just(0.0), st.just(0.4), COMMON),
    "proposed_fix": st.sampled_from(["buy_tpu", "", "faster gpu!", 3, 1.0]),
}


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_bad_input_names_the_argument(data):
    arg = data.draw(st.sampled_from(sorted(BAD)), label="argument")
    kwargs = dict(GOOD, **{arg: data.draw(BAD[arg], label="bad value")})
    with pytest.raises((ValueError, TypeError)) as info:
        diagnose(**kwargs)
    assert arg in str(info.value)


@settings(max_examples=50, deadline=None)
@given(
    data_s=st.floats(0, 1e4),
    compute_s=st.floats(0, 1e4),
    idle_s=st.floats(0, 1e4),
    mfu=st.floats(0, 1),
    nbytes=st.floats(1, 1e15),
)
def test_valid_input_never_nan(data_s, compute_s, idle_s, mfu, nbytes):
    wall_s = data_s + compute_s + idle_s
    if wall_s == 0:
        return
    flops = mfu * wall_s * H100["peak_flops_per_s"]
    d = diagnose(
        data_time_s=data_s, compute_time_s=compute_s, idle_time_s=idle_s, flops=flops, bytes_moved=nbytes, **H100
    )
    assert all(math.isfinite(c.value) for c in d.scorecard.checks)
    assert math.isclose(d.data_fraction + d.compute_fraction + d.idle_fraction, 1.0, rel_tol=1e-9)
    assert d.axis in ("data", "algorithm", "machine")


def test_mfu_above_one_is_rejected():
    with pytest.raises(ValueError, match="flops must be <= peak_flops_per_s"):
        diagnose(data_time_s=0.0, compute_time_s=1e-3, flops=1e15, peak_flops_per_s=1e14)


def test_active_params_row_of_the_rubric():
    from efflab.dam import diagnose

    def row(total, nonzero):
        card = diagnose(data_time_s=0.0, compute_time_s=1.0, params_total=total, params_nonzero=nonzero).scorecard
        return card.active_params.value, card.active_params.verdict

    assert row(100, 100) == (1.0, "fail")  # dense
    assert row(100, 40) == (0.4, "pass")  # sparse below half
    assert row(100, 70) == (0.7, "warn")  # the rubric grades nothing in between
    assert diagnose(data_time_s=0.0, compute_time_s=1.0).scorecard.active_params is None
    with pytest.raises(ValueError, match="params_total and params_nonzero"):
        diagnose(data_time_s=0.0, compute_time_s=1.0, params_total=10)
    with pytest.raises(ValueError, match="params_nonzero"):
        diagnose(data_time_s=0.0, compute_time_s=1.0, params_total=10, params_nonzero=11)


def test_scenarios_report_their_parameters():
    from efflab.roofline import Roofline
    from efflab.scenarios import ComputeWall

    roof = Roofline(compute={"fp32": 1e11}, memory={"dram": 2e10}, latency_s=1e-6)
    wall = ComputeWall(n=64, device="cpu", roofline=roof, min_run_s=0.01)
    run, pruned = wall.run(), wall.run("prune")
    assert (run.params_total, run.params_nonzero) == (64 * 64 + 64, 64 * 64 + 64)  # randn: no exact zeros
    assert pruned.params_total == 64 * 32 + 32  # structured pruning removes columns: still dense
    assert run.diagnose().scorecard.active_params.verdict == "fail"
