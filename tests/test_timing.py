"""Tests for efflab.timing: statistics against numpy and hand-computed order statistics; benchmark structure on
known-cost workloads (sanity bands, never a speed threshold); the timer context manager; the CUDA path on a GPU."""

from __future__ import annotations

import math
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from efflab.timing import HighVarianceWarning, Measurement, benchmark, format_time_s, median_ci, timer


@pytest.mark.parametrize("seed", range(20))
def test_statistics_match_numpy(seed):
    rng = np.random.default_rng(seed)
    samples = rng.lognormal(mean=-9, sigma=0.05, size=rng.integers(1, 200))
    m = Measurement(tuple(samples))
    assert m.count == samples.size
    assert m.median_s == pytest.approx(np.median(samples), rel=1e-12)
    assert m.mean_s == pytest.approx(np.mean(samples), rel=1e-12)
    p25, p75 = np.percentile(samples, [25, 75])
    assert m.iqr_s == pytest.approx(p75 - p25, rel=1e-9, abs=1e-18)
    assert m.ci_low_s <= m.median_s <= m.ci_high_s


def test_hand_computed_sample():
    # Sorted: 1 2 3 4 10. Median 3; numpy linear percentiles p25 = 2, p75 = 4 -> IQR 2; mean 4.
    m = Measurement((4.0, 1.0, 10.0, 3.0, 2.0))
    assert (m.median_s, m.iqr_s, m.mean_s, m.min_s) == (3.0, 2.0, 4.0, 1.0)
    # n = 5 is too few for 95 %: [min, max] with coverage 1 - 2 / 2^5 = 0.9375.
    assert (m.ci_low_s, m.ci_high_s, m.ci_coverage) == (1.0, 10.0, 0.9375)
    assert m.has_warnings and len(m.warnings) == 1  # IQR / median = 67 %


@pytest.mark.parametrize("n", [6, 10, 20, 50, 101, 1000])
def test_median_ci_against_brute_force_binomial(n):
    # Oracle: coverage of [x_(j), x_(n+1-j)] is 1 - 2 P(B <= j-1), B ~ Bin(n, 1/2), from exact integer combinations.
    xs = list(range(1, n + 1))
    low, high, coverage = median_ci(xs, 0.95)
    j = int(low)
    assert high == n + 1 - j
    cover = lambda j: 1 - 2 * sum(math.comb(n, i) for i in range(j)) / 2**n  # noqa: E731
    assert coverage == pytest.approx(cover(j), rel=1e-9)
    assert coverage >= 0.95
    assert j + 1 > (n + 1) // 2 or cover(j + 1) < 0.95  # the narrowest interval that still covers


def test_median_ci_published_table():
    # Conover's table: n = 10 at 95 % uses ranks 2 and 9 (coverage 97.85 %); n = 20 uses ranks 6 and 15.
    assert median_ci(range(1, 11))[:2] == (2.0, 9.0)
    assert median_ci(range(1, 21))[:2] == (6.0, 15.0)


def test_bad_input():
    with pytest.raises(ValueError, match="raw_times_s"):
        Measurement(())
    with pytest.raises(ValueError, match="raw_times_s"):
        Measurement((-1.0,))
    with pytest.raises(ValueError, match="NaN"):
        Measurement((float("nan"),))
    with pytest.raises(TypeError, match="fn must be callable"):
        benchmark(3)
    with pytest.raises(ValueError, match="min_run_s"):
        benchmark(time.sleep, 0, min_run_s=-1)
    with pytest.raises(ValueError, match="max_run_s"):
        benchmark(time.sleep, 0, max_run_s=0)
    with pytest.raises(ValueError, match="device"):
        benchmark(time.sleep, 0, device="tpu")


def test_frozen():
    m = Measurement((1.0,))
    with pytest.raises(AttributeError):
        m.raw_times_s = (2.0,)


@pytest.mark.filterwarnings("ignore::efflab.timing.HighVarianceWarning")
def test_sleep_is_timed_within_band():
    m = benchmark(time.sleep, 0.01, warmup_s=0, min_run_s=0.1)
    # sleep(0.01) takes at least 10 ms; the OS adds a little, never 5x.
    assert 0.01 <= m.median_s < 0.05
    assert m.count >= 3 and m.block_size == 1 and m.device == "cpu" and not m.flushed_l2
    assert len(m.raw_times_s) == m.count


@pytest.mark.filterwarnings("ignore::efflab.timing.HighVarianceWarning")
def test_slow_call_costs_what_timer_spends():
    """A call longer than min_run_s: one untimed first call, then the 2-sample floor (MIN_SAMPLES), no more --
    blocked_autorange spends a calibration call plus one sample there."""
    from efflab.timing import MIN_SAMPLES

    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.02)

    m = benchmark(slow, warmup_s=0, min_run_s=0.01)
    assert MIN_SAMPLES == 2 and m.count == 2 and m.block_size == 1
    assert len(calls) == 1 + m.count  # the untimed first call, then the calibration call kept as the first sample
    assert m.median_s == pytest.approx(sum(m.raw_times_s) / 2)  # the median of two is their mean


@pytest.mark.filterwarnings("ignore::efflab.timing.HighVarianceWarning")  # a shared CI machine
def test_known_cost_scales_linearly():
    # Summing k numbers costs ~k x one; the ratio of medians must be near 10 (wide band: a shared machine).
    small, big = list(range(1_000)), list(range(10_000))
    r = benchmark(sum, big, min_run_s=0.05).median_s / benchmark(sum, small, min_run_s=0.05).median_s
    assert 4 < r < 25


@pytest.mark.filterwarnings("ignore::efflab.timing.HighVarianceWarning")  # a shared CI machine
def test_blocks_amortise_timer_overhead():
    m = benchmark(abs, -1, min_run_s=0.05)
    assert m.block_size > 100  # a ~50 ns call is timed in blocks
    # A block was sized to last >= 1000x the fixed per-sample cost when calibrated (allow 2x for a warmer cache later).
    assert m.timer_overhead_s is not None and m.timer_overhead_s * 500 <= m.median_s * m.block_size
    assert m.median_s < 1e-5


def test_kwargs_are_forwarded():
    calls = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HighVarianceWarning)
        benchmark(lambda x, y=0: calls.append((x, y)), 1, y=2, warmup_s=0, min_run_s=0)
    assert calls and set(calls) == {(1, 2)}


def test_high_variance_warns():
    state = {"i": 0}

    def jittery():
        state["i"] += 1
        time.sleep(0.002 if state["i"] % 2 else 0.006)

    with warnings.catch_warnings():
        warnings.simplefilter("error", HighVarianceWarning)  # recorded, not warned, by default
        m = benchmark(jittery, warmup_s=0, min_run_s=0.05)
    assert (
        m.has_warnings and "system fluctuation" in m.warnings[0] and m.warnings[0] in m.to_text().replace("\n  ", " ")
    )
    with pytest.warns(HighVarianceWarning, match="system fluctuation"):
        benchmark(jittery, warmup_s=0, min_run_s=0.05, warn=True)
    with pytest.raises(TypeError, match="warn"):
        benchmark(jittery, warn="yes")


def test_text_has_units():
    text = Measurement((1.5e-6, 1.5e-6, 1.5e-6)).to_text()
    assert "1.500 µs" in text and "3 samples" in text
    assert format_time_s(2.5) == "2.500 s"


def test_timer_context_manager():
    with timer() as t:
        time.sleep(0.02)
    assert 0.02 <= t.elapsed_s < 0.5
    assert t.device == "cpu"


def test_import_does_not_import_torch():
    code = "import sys, efflab.timing; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_torch_cpu_workload():
    torch = pytest.importorskip("torch")
    a = torch.randn(256, 256)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HighVarianceWarning)
        m = benchmark(torch.matmul, a, a, min_run_s=0.05)
    assert m.device == "cpu" and m.median_s > 0 and m.launch_overhead_s is None


@pytest.mark.gpu
def test_cuda_events_and_l2_flush():
    torch = pytest.importorskip("torch")
    a = torch.randn(2048, 2048, device="cuda")
    m = benchmark(torch.matmul, a, a, min_run_s=0.05)
    assert m.device.startswith("cuda") and m.launch_overhead_s is not None and m.block_size == 1
    flushed = benchmark(torch.matmul, a, a, min_run_s=0.05, flush_l2=True)
    assert flushed.flushed_l2
    # An unsynchronised host clock would see only the launch (~10 us); the events see the ~1 ms of work.
    flops_per_s = 2 * 2048**3 / m.median_s
    assert flops_per_s < 2e15  # no GPU does 2 PFLOP/s of dense fp32: the events waited for the kernel
    with timer() as t:
        torch.matmul(a, a)
    assert t.device == "cuda" and t.elapsed_s >= m.min_s * 0.5


def test_timer_sync_true_without_cuda_names_the_argument(monkeypatch):
    """sync=True once raised KeyError: 'torch' when torch was not imported yet; now it says what it needs."""
    import torch

    from efflab.timing import timer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="sync=True needs a CUDA device"):
        with timer(sync=True):
            pass
    with pytest.raises(TypeError, match="sync"):
        with timer(sync="yes"):
            pass
    with timer(sync=False) as t:
        pass
    assert t.device == "cpu" and t.elapsed_s >= 0
