"""Timing that is correct on the CPU and on CUDA: ``benchmark``, ``Measurement`` and the ``timer`` context manager.

The classic mistake is ``time.time()`` around an unsynchronised CUDA call: the call returns as soon as the kernel is
*queued*, so the clock measures launch overhead, not work. Here:

- **CPU**: ``time.perf_counter_ns`` around *blocks* of calls, the block sized so that one sample lasts at least
  ``1000 x`` the fixed cost of a sample (<= 0.1 % bias) and ``min_run_s / 1000`` (as
  ``torch.utils.benchmark.Timer.blocked_autorange`` does).
- **CUDA**: one pair of ``torch.cuda.Event(enable_timing=True)`` per call, read only after ``synchronize``; an optional
  L2 flush (a buffer of twice the device's *actual* ``L2_cache_size`` zeroed before each call, outside the events —
  ``triton.testing.do_bench`` flushes a fixed 256 MB); the host-side launch overhead is measured separately.

Statistics follow ``torch.utils.benchmark``: the median and the inter-quartile range (numpy's linear-interpolation
percentiles), a warning when ``IQR / median > 10 %``, plus a distribution-free confidence interval of the median.
torch is imported lazily, only when a CUDA tensor or device is involved.
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from efflab import _validate as v
from efflab.style import format_si, wrap_text

__all__ = ["Measurement", "HighVarianceWarning", "benchmark", "timer", "median_ci", "format_time_s", "torch_threads"]

# torch.utils.benchmark's Measurement flags IQR/median above 10 % ("could indicate system fluctuation").
IQR_WARN_FRACTION = 0.10
# One CPU sample must last >= 1000x the fixed cost of a sample (two clock reads, loop set-up), so the clock biases it
# by <= 0.1 %, and >= min_run_s/1000 (blocked_autorange's second criterion), so at most ~1000 samples are kept.
TIMER_OVERHEAD_FACTOR = 1000
MAX_SAMPLES_PER_MIN_RUN = 1000
# Fewest samples a benchmark takes unless max_run_s runs out. Two, so that a ~100 ms workload costs what
# Timer.blocked_autorange spends on it (one untimed call + 2 samples vs its calibration call + 2 samples); the median
# of two is their mean and the IQR half their gap. Faster workloads get ~min_run_s / t samples anyway.
MIN_SAMPLES = 2
# CUDA warm-up lasts at least this long, whatever warmup_s says: GPU clocks ramp up over tens of milliseconds
# (triton.testing.do_bench warms up for 25 ms).
CUDA_MIN_WARMUP_S = 0.025
# At most this many host-side launch-overhead probes on CUDA (fewer when a call is long: they share the budget).
LAUNCH_PROBES = 10


class HighVarianceWarning(UserWarning):
    """IQR / median of a measurement exceeded 10 %: other processes, frequency scaling or a noisy workload."""


def median_ci(sorted_times, confidence: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    For ``n`` independent samples, the number below the true median is Binomial(n, 1/2), so
    ``P(x_(j) <= median <= x_(n+1-j)) = 1 - 2 * P(B <= j - 1)``. We take the largest ``j`` whose coverage is still
    ``>= confidence`` (binomial terms from log-gamma, no normal approximation). With too few samples (n < 6 at 95 %) the
    widest interval ``[min, max]`` is returned with its lower, actual coverage ``1 - 2^(1-n)``.

    Parameters
    ----------
    sorted_times : sequence of float
        Samples in ascending order (seconds).
    confidence : float
        Wanted coverage, 0 < confidence < 1.

    Returns
    -------
    (low, high, coverage) : tuple of float
        Interval bounds (seconds) and the exact coverage achieved.

    References
    ----------
    Conover, *Practical Nonparametric Statistics*, 3rd ed., section 3.2 (confidence interval for a quantile).

    Examples
    --------
    >>> median_ci([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    (2.0, 9.0, 0.978515625)
    """
    xs = list(sorted_times)
    n = len(xs)
    if n == 0:
        raise ValueError("sorted_times must hold at least one sample (in s)")
    conf = float(v.real(confidence, "confidence", "fraction of 1", low=0, high=1, low_open=True, high_open=True))
    alpha_half = (1 - conf) / 2
    log_norm = math.lgamma(n + 1) - n * math.log(2.0)

    def pmf(i: int) -> float:  # P(B = i) for B ~ Binomial(n, 1/2), via log-gamma so large n cannot overflow
        return math.exp(log_norm - math.lgamma(i + 1) - math.lgamma(n - i + 1))

    j, cdf = 1, pmf(0)  # cdf = P(B <= j - 1)
    while j + 1 <= (n + 1) // 2:
        nxt = cdf + pmf(j)
        if nxt > alpha_half:
            break
        cdf, j = nxt, j + 1
    coverage = 1 - 2 * cdf
    return float(xs[j - 1]), float(xs[n - j]), float(coverage)


def format_time_s(seconds: float) -> str:
    """Format seconds with a human unit (ns, µs, ms, s), 4 significant digits (:func:`efflab.style.format_si`).

    Examples
    --------
    >>> format_time_s(1.234e-5), format_time_s(0.5), format_time_s(3e-9)
    ('12.34 µs', '500.0 ms', '3.000 ns')
    """
    return format_si(seconds, "s", 4, trailing_zeros=True, prefixes=("n", ""))


@dataclass(frozen=True)
class Measurement:
    """Per-call times of a workload and their statistics (all times in seconds).

    ``raw_times_s[i]`` is one sample: a timed block of ``block_size`` calls divided by ``block_size`` (CPU), or one
    call between two CUDA events. Statistics are computed from the samples: ``median_s``, ``iqr_s = p75 - p25``
    (numpy linear interpolation), ``mean_s`` and ``ci_low_s``/``ci_high_s`` (see :func:`median_ci`).

    Examples
    --------
    >>> m = Measurement((103e-6, 101e-6, 100e-6, 104e-6, 102e-6))
    >>> m.median_s, round(m.iqr_s, 9), m.count, m.has_warnings
    (0.000102, 2e-06, 5, False)
    >>> print(m)
    median 102.0 µs (IQR 2.000 µs, 94% CI 100.0 µs-104.0 µs), 5 samples x 1 call, cpu
    """

    raw_times_s: tuple[float, ...]
    device: str = "cpu"
    flushed_l2: bool = False
    block_size: int = 1
    timer_overhead_s: float | None = None
    launch_overhead_s: float | None = None
    confidence: float = 0.95
    label: str = ""
    _sorted: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _ci: tuple[float, float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        times = v.nonnegative(np.asarray(self.raw_times_s, dtype=float).ravel(), "raw_times_s", "s")
        if times.size == 0:
            raise ValueError("raw_times_s must hold at least one sample (in s)")
        object.__setattr__(self, "raw_times_s", tuple(float(t) for t in times))
        object.__setattr__(self, "_sorted", tuple(sorted(self.raw_times_s)))
        object.__setattr__(self, "block_size", v.integer(self.block_size, "block_size", "calls", low=1))
        object.__setattr__(self, "_ci", median_ci(self._sorted, self.confidence))

    @property
    def count(self) -> int:
        """Number of samples."""
        return len(self.raw_times_s)

    @property
    def median_s(self) -> float:
        """Median per-call time (s)."""
        return float(np.median(self._sorted))

    @property
    def mean_s(self) -> float:
        """Mean per-call time (s); pulled up by outliers, prefer the median."""
        return float(np.mean(self._sorted))

    @property
    def iqr_s(self) -> float:
        """Inter-quartile range ``p75 - p25`` (s)."""
        p25, p75 = np.percentile(self._sorted, [25, 75])
        return float(p75 - p25)

    @property
    def min_s(self) -> float:
        """Fastest sample (s)."""
        return self._sorted[0]

    @property
    def ci_low_s(self) -> float:
        """Lower bound of the confidence interval of the median (s)."""
        return self._ci[0]

    @property
    def ci_high_s(self) -> float:
        """Upper bound of the confidence interval of the median (s)."""
        return self._ci[1]

    @property
    def ci_coverage(self) -> float:
        """Exact coverage of ``[ci_low_s, ci_high_s]`` (below ``confidence`` only with very few samples)."""
        return self._ci[2]

    @property
    def relative_iqr(self) -> float:
        """``IQR / median`` (inf for a zero median with spread)."""
        med = self.median_s
        return self.iqr_s / med if med > 0 else (0.0 if self.iqr_s == 0 else math.inf)

    @property
    def has_warnings(self) -> bool:
        """True when ``IQR / median > 10 %``."""
        return self.relative_iqr > IQR_WARN_FRACTION

    @property
    def warnings(self) -> tuple[str, ...]:
        """What to distrust in this measurement, recorded here as ``torch.utils.benchmark.Measurement`` does (empty
        when nothing); :func:`benchmark` also issues it as :class:`HighVarianceWarning` only when ``warn=True``."""
        if not self.has_warnings:
            return ()
        return (f"IQR/median = {self.relative_iqr:.0%} > 10 %: could indicate system fluctuation",)

    def to_text(self) -> str:
        """One line with human units."""
        f = format_time_s
        calls = "call" if self.block_size == 1 else "calls"
        text = (
            f"median {f(self.median_s)} (IQR {f(self.iqr_s)}, {self.ci_coverage:.0%} CI "
            f"{f(self.ci_low_s)}-{f(self.ci_high_s)}), {self.count} samples x {self.block_size} {calls}, {self.device}"
        )
        if self.flushed_l2:
            text += ", L2 flushed"
        if self.launch_overhead_s is not None:
            text += f", launch overhead {f(self.launch_overhead_s)}"
        if self.label:
            text = f"{self.label}: {text}"
        if self.warnings:
            text += f"  [{self.warnings[0]}]"
        return wrap_text(text)

    def __str__(self) -> str:
        return self.to_text()


def _find_cuda_device(args, kwargs):
    """The first CUDA device among tensor arguments (None if torch is not loaded or none is on CUDA)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor) and a.is_cuda:
            return a.device
        if isinstance(a, torch.nn.Module):
            for p in a.parameters():
                return p.device if p.is_cuda else None
    return None


def _captured(fn) -> list:
    """What ``fn`` works on without taking it as an argument: a partial's bound arguments, a method's object, the
    cells of a closure and the module globals its code names (``lambda: a @ b`` in a notebook reads ``a`` and ``b``
    from the notebook's globals)."""
    found, f = [], fn
    if isinstance(f, functools.partial):
        found += [*f.args, *f.keywords.values()]
        f = f.func
    if inspect.ismethod(f):
        found.append(f.__self__)
        f = f.__func__
    for cell in getattr(f, "__closure__", None) or ():
        try:
            found.append(cell.cell_contents)
        except ValueError:  # an empty cell (a variable assigned later)
            continue
    code, names = getattr(f, "__code__", None), getattr(f, "__globals__", {})
    if code is not None:
        found += [names[n] for n in code.co_names if n in names]
    return found


def _resolve_device(device, fn, args, kwargs) -> str:
    """The device to time on: ``device``; else the first CUDA tensor among the arguments or what ``fn`` captures;
    else "cuda" whenever torch has initialised CUDA (work may be queued there, and a host clock alone would time the
    enqueue: ``torch.utils.benchmark`` synchronises whenever CUDA is in use, for the same reason); else "cpu"."""
    if device is not None:
        text = str(device)
        if not (text == "cpu" or text.startswith("cuda")):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
        return text
    found = _find_cuda_device((fn, *args), kwargs)
    if found is None:
        found = _find_cuda_device(tuple(_captured(fn)), {})
    if found is not None:
        return str(found)
    if _cuda_in_use():
        return f"cuda:{sys.modules['torch'].cuda.current_device()}"
    return "cpu"


def _run_block(fn, args, kwargs, n: int) -> int:
    clock = time.perf_counter_ns
    if kwargs:
        t0 = clock()
        for _ in range(n):
            fn(*args, **kwargs)
        return clock() - t0
    t0 = clock()
    for _ in range(n):
        fn(*args)
    return clock() - t0


def _benchmark_cpu(fn, args, kwargs, warmup_s, min_run_s, max_run_s):
    # Fixed cost of one sample (two clock reads and an empty loop), like Timer's timeit(0).
    overhead_ns = float(max(np.median([_run_block(fn, args, kwargs, 0) for _ in range(51)]), 1.0))
    start = time.perf_counter()
    # Calibrate (after one untimed call, which pays lazy initialisation): grow the block until one block lasts
    # target_ns; this also warms up.
    first_ns = _run_block(fn, args, kwargs, 1)
    block, elapsed_ns = 1, _run_block(fn, args, kwargs, 1) if first_ns * 1e-9 < max_run_s else first_ns
    target_ns = max(TIMER_OVERHEAD_FACTOR * overhead_ns, min_run_s * 1e9 / MAX_SAMPLES_PER_MIN_RUN)
    while elapsed_ns < target_ns and elapsed_ns * 1e-9 < max_run_s:
        block = max(block * 2, int(block * target_ns / max(elapsed_ns, 1)) + 1)
        elapsed_ns = _run_block(fn, args, kwargs, block)
    samples, measured_s = [], 0.0
    if time.perf_counter() - start - elapsed_ns * 1e-9 >= warmup_s:
        # Warm-up was over before the last calibration block, which was timed exactly like a sample: keep it.
        samples, measured_s = [elapsed_ns * 1e-9 / block], elapsed_ns * 1e-9
    while time.perf_counter() - start < warmup_s:
        _run_block(fn, args, kwargs, block)
    start = time.perf_counter()
    while measured_s < min_run_s or len(samples) < MIN_SAMPLES:
        ns = _run_block(fn, args, kwargs, block)
        samples.append(ns * 1e-9 / block)
        measured_s += ns * 1e-9
        if time.perf_counter() - start >= max_run_s:
            break
    return samples, block, overhead_ns * 1e-9, None


def _benchmark_cuda(fn, args, kwargs, warmup_s, min_run_s, max_run_s, flush_l2, device):
    import torch

    dev = torch.device(device)
    with torch.cuda.device(dev):
        flush = None
        if flush_l2:
            # Twice the device's actual L2 so every line of the previous call's data is evicted.
            l2_bytes = torch.cuda.get_device_properties(dev).L2_cache_size
            flush = torch.empty(max(2 * l2_bytes, 1 << 20) // 4, dtype=torch.int32, device=dev)
        torch.cuda.synchronize(dev)
        # Everything below counts against max_run_s: a 0.25 s call on a T4 must not cost 13 calls before sampling.
        start = time.perf_counter()
        fn(*args, **kwargs)  # first call: lazy init, autotuning, allocator growth
        torch.cuda.synchronize(dev)
        while time.perf_counter() - start < max(warmup_s, CUDA_MIN_WARMUP_S):
            fn(*args, **kwargs)
            torch.cuda.synchronize(dev)
            if time.perf_counter() - start >= max_run_s / 4:
                break
        # Host-side launch overhead: time to *enqueue* one call (no sync inside), reported separately; up to
        # LAUNCH_PROBES calls, as long as they fit in the first half of the budget (at least one).
        host = []
        while len(host) < LAUNCH_PROBES and (not host or time.perf_counter() - start < max_run_s / 2):
            t0 = time.perf_counter()
            fn(*args, **kwargs)
            host.append(time.perf_counter() - t0)
            torch.cuda.synchronize(dev)
        launch_s = float(np.median(host))
        samples, measured_s = [], 0.0
        batch = 1
        while measured_s < min_run_s or len(samples) < MIN_SAMPLES:
            pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(batch)]
            for begin, end in pairs:
                if flush is not None:
                    flush.zero_()  # outside the events: the flush itself is not timed
                begin.record()
                fn(*args, **kwargs)
                end.record()
            torch.cuda.synchronize(dev)
            times = [begin.elapsed_time(end) * 1e-3 for begin, end in pairs]  # elapsed_time is in ms
            samples.extend(times)
            measured_s += sum(times)
            if time.perf_counter() - start >= max_run_s:
                break
            batch = min(batch * 2, 256)  # one sync per batch keeps sync cost out of the loop
    return samples, 1, None, launch_s


def benchmark(
    fn: Callable,
    *args,
    warmup_s: float = 0.01,
    min_run_s: float = 0.2,
    max_run_s: float = 2.0,
    flush_l2: bool = False,
    device: str | None = None,
    warn: bool = False,
    **kwargs,
) -> Measurement:
    """Time ``fn(*args, **kwargs)`` per call, correctly on the CPU and on CUDA.

    The reported figure is the median per-call time ``median_i(T_block_i / block_size)``; sampling stops once the
    measured time reaches ``min_run_s`` with at least 2 samples, or when ``max_run_s`` of wall time has passed.

    Parameters
    ----------
    fn : callable
        The workload. Its return value is ignored.
    *args, **kwargs
        Passed to ``fn`` (names below are reserved for ``benchmark``).
    warmup_s : float
        Seconds of untimed calls first (s, >= 0; the block calibration counts as warm-up too).
    min_run_s : float
        Measured time to collect (s, >= 0).
    max_run_s : float
        Wall-time cap (s, > 0). On CUDA it covers everything: the first call, the warm-up (at least
        ``CUDA_MIN_WARMUP_S``), the launch-overhead probes and the sampling; a call longer than the whole budget costs
        three calls: the first (untimed), one probe and one sample.
    flush_l2 : bool
        CUDA only: zero a buffer of twice the device's L2 before every call (cold-cache timing).
    device : str, optional
        "cpu", "cuda" or "cuda:N". Default: the device of the first CUDA tensor among the arguments or what ``fn``
        captures (closure, partial, method, the globals it names); else "cuda" when torch has initialised CUDA, so
        that a closure over GPU work is never timed by the host clock alone; else "cpu".
    warn : bool
        Also issue :class:`HighVarianceWarning` when ``IQR / median > 10 %``; either way the measurement records it
        in ``Measurement.warnings`` (and its text says so).

    Returns
    -------
    Measurement
        Samples and statistics, with ``warnings``.

    References
    ----------
    ``torch.utils.benchmark.Timer.blocked_autorange`` (block sizing, IQR warning); ``triton.testing.do_bench``
    (per-call CUDA events, L2 flush).

    Examples
    --------
    >>> import time
    >>> m = benchmark(time.sleep, 0.002, min_run_s=0.02)
    >>> 0.002 <= m.median_s < 0.05, m.device, m.count >= 2
    (True, 'cpu', True)
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable; got {type(fn).__name__}")
    warn = v.boolean(warn, "warn")
    warmup_s = float(v.nonnegative(warmup_s, "warmup_s", "s"))
    min_run_s = float(v.nonnegative(min_run_s, "min_run_s", "s"))
    max_run_s = float(v.positive(max_run_s, "max_run_s", "s"))
    if not isinstance(flush_l2, (bool, np.bool_)):
        raise TypeError(f"flush_l2 must be a bool; got {flush_l2!r}")
    dev = _resolve_device(device, fn, args, kwargs)
    if dev.startswith("cuda"):
        samples, block, overhead_s, launch_s = _benchmark_cuda(
            fn, args, kwargs, warmup_s, min_run_s, max_run_s, bool(flush_l2), dev
        )
    else:
        samples, block, overhead_s, launch_s = _benchmark_cpu(fn, args, kwargs, warmup_s, min_run_s, max_run_s)
    m = Measurement(
        tuple(samples),
        device=dev,
        flushed_l2=bool(flush_l2) and dev.startswith("cuda"),
        block_size=block,
        timer_overhead_s=overhead_s,
        launch_overhead_s=launch_s,
        label=getattr(fn, "__name__", ""),
    )
    if warn and m.warnings:
        warnings.warn(f"{m.label or 'fn'}: {m.warnings[0]}", HighVarianceWarning, stacklevel=2)
    return m


@dataclass
class TimerResult:
    """What :func:`timer` yields; ``elapsed_s`` is filled in when the block exits."""

    device: str = "cpu"
    elapsed_s: float | None = None

    @property
    def seconds(self) -> float:
        """``elapsed_s`` once the block has exited (s); ``RuntimeError`` while it is still running."""
        if self.elapsed_s is None:
            raise RuntimeError("elapsed_s is set when the timer's with-block exits; the block is still running")
        return self.elapsed_s

    def __str__(self) -> str:
        shown = "running" if self.elapsed_s is None else format_time_s(self.elapsed_s)
        return f"{shown} ({self.device})"


def _cuda_in_use() -> bool:
    torch = sys.modules.get("torch")  # torch not imported yet: nothing can be queued on a GPU
    return bool(torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized())


@contextmanager
def timer(sync: bool | None = None) -> Iterator[TimerResult]:
    """Time a region of notebook code; synchronises CUDA at entry and exit when CUDA is in use.

    ``elapsed_s = t_exit - t_entry`` with ``perf_counter``, after ``torch.cuda.synchronize()`` at both edges so that
    work queued before the block is not charged to it and work queued inside it is.

    Parameters
    ----------
    sync : bool, optional
        Force (True) or skip (False) the CUDA synchronisation; default: when torch has initialised CUDA. True without
        a CUDA device raises ``ValueError``.

    Yields
    ------
    TimerResult
        ``elapsed_s`` (s) is set when the block exits.

    Examples
    --------
    >>> import time
    >>> with timer() as t:
    ...     time.sleep(0.01)
    >>> 0.01 <= t.elapsed_s < 1.0
    True
    """
    if sync is not None and not isinstance(sync, bool):
        raise TypeError(f"sync must be True, False or None; got {sync!r}")
    do_sync = _cuda_in_use() if sync is None else sync
    cuda = None
    if do_sync:
        try:
            import torch
        except ImportError:
            raise ValueError("sync=True needs torch with CUDA; torch is not installed") from None
        if not torch.cuda.is_available():
            raise ValueError("sync=True needs a CUDA device; torch sees none (use sync=None or False on a CPU)")
        cuda = torch.cuda
    result = TimerResult(device="cuda" if do_sync else "cpu")
    if cuda is not None:
        cuda.synchronize()
    start = time.perf_counter()
    try:
        yield result
    finally:
        if cuda is not None:
            cuda.synchronize()
        result.elapsed_s = time.perf_counter() - start


@contextmanager
def torch_threads(n: int | None) -> Iterator[int]:
    """Run a block with ``torch.set_num_threads(n)`` and restore the previous count after (``None``: unchanged).

    Examples
    --------
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1) as n:
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(v.integer(n, "n", "threads", low=1))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
