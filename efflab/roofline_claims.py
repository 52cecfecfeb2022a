"""Claims about measured ops: what the roofline expects of them, judged on measurements (:mod:`efflab.claims`).

One job: the sentences ``chapters/01_introduction`` (:func:`regimes_claim`), ``chapters/03_roofline``
(:func:`more_cores_claim`, :func:`bound_claim`, :func:`proportional_claim`, :func:`flat_claim`) and
``labs/lab1_roofline`` (:func:`lever_claims`) print about their measured ops, each a verdict with its figures and,
when it does not hold, the diagnosis. The ops and their bounds come from :mod:`efflab.op_bench`, and so do the
re-timings a diagnosis may cite (``op_bench.threads_scale_now``, ``batching_flat_now``, ``speed_drift``, looked up
there at call time) and the two thresholds they default to, ``CORES_GAIN_FLOOR`` and ``WASTED_GAIN_BAND``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from efflab import _validate as v
from efflab import op_bench
from efflab.op_bench import CORES_GAIN_FLOOR, WASTED_GAIN_BAND, op_bound
from efflab.roofline import Roofline

__all__ = [
    "bound_claim",
    "flat_claim",
    "lever_claims",
    "more_cores_claim",
    "proportional_claim",
    "regimes_claim",
]

# Gains of the two ops within this much of each other (x1.28 and x1.24) are "alike": the second CPU, not the roofline,
# limited both.
ALIKE_GAIN = 0.1
# One core that moves the add's bytes at under this fraction of the measured DRAM bandwidth cannot saturate memory.
ONE_CORE_BANDWIDTH_SHARE = 0.7


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def more_cores_claim(
    add_times_s, matmul_times_s, add_bytes: float, dram_bytes_per_s: float, caches=None, cpu_times_before=None
):
    """The roofline's expectation for more cores, judged on measured times (:mod:`efflab.claims`): they speed up the
    compute-bound matmul (by > 30 %) far more than the memory-bound add (the add gains less than half as much).

    ``add_times_s`` and ``matmul_times_s`` are ``(one core, all cores)`` times (s), each a number or the times of
    repeated rounds (the fastest counts); ``add_bytes`` the add's compulsory bytes; ``dram_bytes_per_s`` the measured
    DRAM ceiling; ``cpu_times_before`` an :func:`efflab.claims.cpu_times` sample taken before the experiment.
    Diagnoses, in this order: the hypervisor took the vCPUs away (steal); other processes use the cores; the add's
    working set fits a cache; the rounds disagree (the machine's speed changed); the add ran above the DRAM ceiling
    measured earlier (it drifted); one core alone moves the add's bytes well below the DRAM ceiling.

    Examples
    --------
    >>> print(more_cores_claim((10e-3, 9.8e-3), (0.1, 0.052), 2e8, 2e10, caches={"l3": 8 << 20}))
    held here: more cores speed up the compute-bound matmul far more than the memory-bound add (matmul
      x1.92, add x1.02)
    >>> v = more_cores_claim((20e-3, 10e-3), (0.1, 0.052), 2e8, 2e10, caches={"l3": 8 << 20})
    >>> print(v.why)
    one core moves the add's bytes at 10 GB/s, 50% of the measured 20 GB/s DRAM bandwidth: it cannot saturate memory alone, so more cores raised the add's bandwidth as well
    """
    from efflab.claims import (
        check,
        cores_contended,
        cores_deliver,
        cpu_times,
        fits_cache,
        hyperthreads,
        hypervisor_steal,
        others_busy,
        reason,
        rounds_disagree,
    )

    def series(pair, name):
        out = [[float(t)] if isinstance(t, (int, float)) else [float(x) for x in t] for t in pair]
        if len(out) != 2 or min(min(s, default=0.0) for s in out) <= 0:
            raise ValueError(f"{name} must hold two times > 0 (s), or two lists of round times; got {pair!r}")
        return out

    add_rounds, mm_rounds = series(add_times_s, "add_times_s"), series(matmul_times_s, "matmul_times_s")
    (add_1, add_n), (mm_1, mm_n) = ([min(s) for s in add_rounds]), ([min(s) for s in mm_rounds])
    add_gain, mm_gain = add_1 / add_n - 1, mm_1 / mm_n - 1
    dram = float(dram_bytes_per_s)
    one_core_bw, all_cores_bw = float(add_bytes) / add_1, float(add_bytes) / add_n
    share = one_core_bw / dram
    contended = cores_contended()  # explains a matmul that gained nothing, not an add that gained too much
    ht = hyperthreads()  # Colab: two hyper-threads of one core share its vector units
    return check(
        "more cores speed up the compute-bound matmul far more than the memory-bound add",
        mm_gain > CORES_GAIN_FLOOR and add_gain < mm_gain / 2,
        f"matmul x{mm_1 / mm_n:.2f}, add x{add_1 / add_n:.2f}",
        [
            hypervisor_steal(cpu_times_before, after := cpu_times() if cpu_times_before is not None else None),
            reason(mm_gain <= CORES_GAIN_FLOOR and contended.applies, contended.text),
            others_busy(cpu_times_before, after),
            reason(mm_gain <= CORES_GAIN_FLOOR and ht.applies, ht.text),
            cores_deliver() if mm_gain <= CORES_GAIN_FLOOR else reason(False, "not needed"),
            op_bench.threads_scale_now(_torch_threads())
            if mm_gain <= CORES_GAIN_FLOOR and add_gain < mm_gain / 2 + CORES_GAIN_FLOOR
            else reason(False, "not needed"),
            reason(
                mm_gain <= CORES_GAIN_FLOOR and abs(add_gain - mm_gain) <= ALIKE_GAIN,
                f"the second CPU gave both ops the same small gain (x{mm_1 / mm_n:.2f} and x{add_1 / add_n:.2f}) "
                "whatever their regime: during the experiment it delivered only part of a core (a host busy "
                "elsewhere, not visible as steal)",
            ),
            fits_cache(add_bytes, caches),
            rounds_disagree(*add_rounds, *mm_rounds),
            reason(
                all_cores_bw > 1.1 * dram,
                f"the add just moved {all_cores_bw / 1e9:.3g} GB/s, above the {dram / 1e9:.3g} GB/s DRAM ceiling "
                "measured earlier: the machine's bandwidth changed between the two measurements",
            ),
            reason(
                share < ONE_CORE_BANDWIDTH_SHARE,
                f"one core moves the add's bytes at {one_core_bw / 1e9:.3g} GB/s, {share:.0%} of the measured "
                f"{dram / 1e9:.3g} GB/s DRAM bandwidth: it cannot saturate memory alone, so more cores raised the "
                "add's bandwidth as well",
            ),
        ],
    )


# An op counts as beating its bound when it runs more than this much faster than the iron law allows: the ceilings
# are the best of a few repeats and the ops medians, so a few percent either way is the measurement's own spread.
BOUND_TOLERANCE = 0.1
# An op under this many dispatch floors is overhead-dominated (claims.overhead_dominated uses the same factor).
OVERHEAD_FACTOR = 10
# STREAM's rule: each array must be at least 4x the last-level cache for the bytes to come from main memory
# (McCalpin, STREAM FAQ; chapters/references.md).
STREAM_LLC_FACTOR = 4


def bound_claim(ops, roofline: Roofline, caches: Mapping | None = None, exp_per_s=None, cpu_times_before=None):
    """The roofline's promise, judged on measured ops (:mod:`efflab.claims`): no op runs faster than its iron-law
    bound (:func:`~efflab.op_bench.op_bound`: the memory level its data lives in, the compute peak, the exp rate), within
    ``BOUND_TOLERANCE``.

    Diagnoses, in this order: the op is overhead-dominated (its bound is the dispatch floor, measured separately);
    its working set is under STREAM's 4x the last-level cache, so part of it stays cached between repeats although
    it does not fit whole; the hypervisor took the vCPUs (steal); other processes used the cores.

    Examples
    --------
    >>> from efflab.op_bench import MeasuredOp
    >>> roof = Roofline({"fp32": 1e11}, {"dram": 2e10}, latency_s=3e-6)
    >>> ops = [MeasuredOp("add", 1e6, 12e6, 7e-4), MeasuredOp("matmul", 2e9, 12e6, 0.03)]
    >>> print(bound_claim(ops, roof, caches={"l3": 8 << 20}))
    held here: no op beats its iron-law bound by more than 10% (the measurement's
      own spread) (closest: add at 86% of its bound)
    >>> fast = [MeasuredOp("embedding", 0.0, 24e6, 9e-4)]
    >>> print(bound_claim(fast, roof, caches={"l3": 8 << 20}).why)  # doctest: +NORMALIZE_WHITESPACE
    the 22.9 MiB working set of embedding is under 4x the 8 MiB last-level cache (STREAM's rule): part of it
    stays cached between repeats, so not every byte comes from DRAM
    """
    from efflab.claims import bytes_text, check, cores_contended, cpu_times, hypervisor_steal, others_busy, reason

    ops = list(ops)
    if not ops:
        raise ValueError("ops must hold at least one MeasuredOp")
    if caches is None:
        from efflab._sysinfo import cache_sizes_bytes

        caches = cache_sizes_bytes()
    shares = []  # bound / measured: 1 at the roof, above 1 faster than the roofline allows
    for op in ops:
        bound = op_bound(op, roofline, caches, exp_per_s)
        shares.append((bound.time_s / op.time_s, op, bound.level))
    share, op, level = max(shares, key=lambda item: item[0])
    llc = max(caches.values(), default=0)
    floor = roofline.latency_s or 0.0
    return check(
        f"no op beats its iron-law bound by more than {BOUND_TOLERANCE:.0%} (the measurement's own spread)",
        share <= 1 + BOUND_TOLERANCE,
        f"closest: {op.label} at {share:.0%} of its bound",
        [
            reason(
                0 < op.time_s < OVERHEAD_FACTOR * floor,
                f"{op.label} takes {op.time_s * 1e6:.3g} µs, under {OVERHEAD_FACTOR}x the {floor * 1e6:.3g} µs "
                "dispatch floor: its bound is that floor, measured earlier on a one-element add, and dispatch time "
                "varies from one measurement to the next",
            ),
            op_bench.speed_drift(roofline)
            if share > 1 + BOUND_TOLERANCE and op.flops > 0
            else reason(False, "not needed"),
            reason(
                level not in caches and 0 < op.bytes_moved < STREAM_LLC_FACTOR * llc,
                f"the {bytes_text(op.bytes_moved)} working set of {op.label} is under {STREAM_LLC_FACTOR}x the "
                f"{bytes_text(llc)} last-level cache (STREAM's rule): part of it stays cached between repeats, so "
                "not every byte comes from DRAM",
            ),
            hypervisor_steal(cpu_times_before, after := cpu_times() if cpu_times_before is not None else None),
            others_busy(cpu_times_before, after),
            cores_contended(),
        ],
    )


# Past the caches an add's time should double with its size; a doubling between these ratios counts as proportional
# (a 2-core VM's repeats spread by 2-6 %, and one doubling may still cross from a cache's tail into DRAM).
PROPORTIONAL_RATIO = (1.6, 2.5)


def proportional_claim(sizes, times_s, bytes_per_element: float, caches: Mapping | None = None, spread: float = 0.0):
    """The iron law's memory regime, judged on a size sweep (:mod:`efflab.claims`): once the working set is past
    every cache, doubling the size doubles the time (each of the last two doublings within ``PROPORTIONAL_RATIO``).

    ``sizes`` are element counts, ascending, each twice the one before at the end; ``times_s`` their measured
    times; ``bytes_per_element`` the bytes each element moves (12 for a fp32 add: two reads, one write); ``spread``
    the relative run-to-run spread of the times. Diagnoses: the smaller working set of a doubling fits a cache level
    (the doubling crosses from cache into DRAM, so time grows faster than size); the ratio is within the spread of 2.

    Examples
    --------
    >>> sizes = [2**22, 2**23, 2**24]
    >>> print(proportional_claim(sizes, [2.75e-3, 5.26e-3, 10.6e-3], 12, caches={"l3": 8 << 20}))
    held here: past the caches, doubling the add's size about doubles its time
      (x1.6 to x2.5) (48 MiB -> 96 MiB x1.91, 96 MiB -> 192 MiB x2.02)
    >>> v = proportional_claim(sizes, [1.0e-3, 2.78e-3, 6.2e-3], 12, caches={"l3": 480 << 20})
    >>> print(v.why)  # doctest: +NORMALIZE_WHITESPACE
    the 48 MiB working set fits in the l3 the OS reports (480 MiB): it is not streamed from DRAM
    """
    from efflab.claims import bytes_text, check, fits_cache, within_noise

    sizes = [float(v.positive(n, "sizes", "elements")) for n in sizes]
    times = [float(v.positive(t, "times_s", "s")) for t in times_s]
    if len(sizes) != len(times) or len(sizes) < 3:
        raise ValueError(
            f"sizes and times_s must have one entry per size, at least 3; got {len(sizes)} and {len(times)}"
        )
    per_element = float(v.positive(bytes_per_element, "bytes_per_element", "bytes"))
    low, high = PROPORTIONAL_RATIO
    steps = [(sizes[i], sizes[i + 1], times[i + 1] / times[i]) for i in (-3, -2)]
    for before, after, _ in steps:
        if after != 2 * before:
            raise ValueError(f"the last three sizes must double each time (elements); got {before!r} -> {after!r}")
    outside = [(before, ratio) for before, _, ratio in steps if not low <= ratio <= high]
    first = outside[0] if outside else steps[0][::2]
    return check(
        f"past the caches, doubling the add's size about doubles its time "
        f"(x{PROPORTIONAL_RATIO[0]:g} to x{PROPORTIONAL_RATIO[1]:g})",
        not outside,
        ", ".join(f"{bytes_text(b * per_element)} -> {bytes_text(a * per_element)} x{r:.2f}" for b, a, r in steps),
        [
            fits_cache(first[0] * per_element, caches),
            within_noise(first[1] / 2, spread),
        ],
    )


# A doubling of a tiny op counts as "barely changing its time" under this ratio: the dispatch floor is fixed, and the
# bytes of 8-128 fp32 elements take nanoseconds.
FLAT_RATIO_BELOW = 1.25


def flat_claim(sizes, times_s, small_sizes=(8, 64), spread: float = 0.0):
    """The iron law's latency regime, judged on a size sweep (:mod:`efflab.claims`): doubling a tiny op's size barely
    changes its time (each doubling from ``small_sizes`` under ``FLAT_RATIO_BELOW``), because the fixed dispatch
    cost, not its bytes, sets it.

    Diagnoses: the ratio is within the run-to-run ``spread`` (relative) of the measurement; other processes share
    the cores.

    Examples
    --------
    >>> sizes = [8, 16, 32, 64, 128]
    >>> print(flat_claim(sizes, [3.04e-6, 3.05e-6, 3.1e-6, 3.04e-6, 3.15e-6]))
    held here: doubling a tiny op's size barely changes its time (8 -> 16 x1.00, 64 -> 128 x1.04)
    """
    from efflab.claims import check, cores_contended, within_noise

    sizes = [int(n) for n in sizes]
    times = [float(v.positive(t, "times_s", "s")) for t in times_s]
    if len(sizes) != len(times):
        raise ValueError(f"sizes and times_s must have one entry per size; got {len(sizes)} and {len(times)}")
    steps = []
    for n in small_sizes:
        if n not in sizes or 2 * n not in sizes:
            raise ValueError(f"small_sizes: {n} and {2 * n} must both be in sizes (elements); got {sizes[:8]}...")
        steps.append((n, times[sizes.index(2 * n)] / times[sizes.index(n)]))
    worst = max(ratio for _, ratio in steps)
    return check(
        "doubling a tiny op's size barely changes its time",
        worst < FLAT_RATIO_BELOW,
        ", ".join(f"{n} -> {2 * n} x{ratio:.2f}" for n, ratio in steps),
        [within_noise(worst, spread + FLAT_RATIO_BELOW - 1), cores_contended()],
    )


# An op "sits under its roof" when it reaches at least this share of its iron-law bound (MLSysBook's MFU fail line).
UNDER_ROOF_SHARE = 0.3


def regimes_claim(ops, roofline: Roofline, expected=("latency", "memory", "compute"), cpu_times_before=None):
    """The introduction's expectation for :func:`~efflab.op_bench.regime_workloads`, judged on their measurements
    (:mod:`efflab.claims`): the three probes land in the three regimes, each at ``UNDER_ROOF_SHARE`` or more of
    its own iron-law bound (the tiny add at the dispatch floor, the large add under the memory roof, the matmul
    under the compute roof).

    Diagnoses: the machine got faster since its ceilings were measured (:func:`~efflab.op_bench.speed_drift`, measured only when an
    op beat its bound); the hypervisor took the vCPUs (steal); other processes used the cores (an op far below its
    roof on an idle machine is unexplained: the roofline or the op's cost would be wrong).

    Examples
    --------
    >>> from efflab.op_bench import MeasuredOp
    >>> roof = Roofline({"fp32": 6.3e10}, {"dram": 1.86e10}, latency_s=3e-6)
    >>> ops = [MeasuredOp("tiny add (64)", 64, 768, 2.76e-6), MeasuredOp("large add (16M)", 2**24, 12 * 2**24, 12.6e-3),
    ...        MeasuredOp("matmul 1024^3", 2 * 1024**3, 12 * 2**20, 50.2e-3)]
    >>> print(regimes_claim(ops, roof))  # doctest: +NORMALIZE_WHITESPACE
    held here: one probe per regime, each under its own roof (tiny add (64) latency-bound at 110% of its
      bound; large add (16M) memory-bound at 86%; matmul 1024^3 compute-bound at 68%)
    """
    from efflab.claims import check, cores_contended, cpu_times, hypervisor_steal, others_busy, reason

    ops = list(ops)
    if len(ops) != len(expected):
        raise ValueError(f"ops must hold one MeasuredOp per expected regime {tuple(expected)}; got {len(ops)}")
    rows = []
    for op in ops:
        c = roofline.classify(op.flops, op.bytes_moved)
        rows.append((op, c.regime, c.time_s / op.time_s))
    parts = [f"{op.label} {regime}-bound at {share:.0%}" for op, regime, share in rows]
    parts[0] += " of its bound"
    short = [op for op, _, share in rows if share < UNDER_ROOF_SHARE]
    # Above its bound: any op but the latency-bound one, whose bound is a dispatch floor measured on another call.
    above = [op for op, regime, share in rows if regime != "latency" and share > 1 + BOUND_TOLERANCE]
    after = cpu_times() if cpu_times_before is not None else None
    return check(
        "one probe per regime, each under its own roof",
        [regime for _, regime, _ in rows] == list(expected) and not short and not above,
        "; ".join(parts),
        [
            op_bench.speed_drift(roofline) if above else reason(False, "not needed"),
            hypervisor_steal(cpu_times_before, after),
            others_busy(cpu_times_before, after),
            cores_contended(),
        ],
    )


# Lab 1's levers: batching "works" on the memory-bound op when it gains at least this much and twice what it gains
# the compute-bound op (one thread's ridge caps the gain: 32 rows reach ~16 FLOP/B, past a CPU's ridge of a few
# FLOP/B, so x3 on a Zen 1 core and x6 on a faster one), and is "wasted" on the compute-bound one inside
# WASTED_GAIN_BAND (in op_bench, beside batching_flat_now, which defaults to it); more FLOP/s "works" above
# CORES_GAIN_FLOOR (x1.3).
BATCHING_GAIN_ABOVE = 1.5


def lever_claims(
    items, times_s, weight_bytes: float | None = None, dram_bytes_per_s: float | None = None, threads: int | None = None
):
    """Lab 1's expectations for its two levers, judged on the recorded measurements (:mod:`efflab.claims`).

    ``items`` and ``times_s`` have shape (2 operators, 3 configurations): rows per call and seconds per call of the
    memory-bound then the compute-bound operator, at baseline, with lever A (batching) and with lever B (more FLOP/s:
    every CPU thread, or TF32 on a GPU). Expectations: batching multiplies the memory-bound op's throughput
    (>= ``BATCHING_GAIN_ABOVE`` and at least twice the compute-bound op's gain) and leaves the compute-bound one's
    inside ``WASTED_GAIN_BAND``; more FLOP/s speeds
    the compute-bound op up by more than ``CORES_GAIN_FLOOR`` and the memory-bound one by less.

    ``threads`` is the thread count lever B ran with on a CPU (None: on a GPU, or unknown).

    Diagnoses: lever B had a single thread to give (torch pinned to one thread), so it added no FLOP/s; the CPUs are
    hyper-threads of fewer cores; other processes share the cores; one thread streams the
    memory-bound op's ``weight_bytes`` well below the measured ``dram_bytes_per_s`` (so a second core raised its
    bandwidth too).

    Examples
    --------
    >>> items = [[1, 32, 1], [1024, 4096, 1024]]
    >>> times = [[3.64e-3, 17.9e-3, 3.54e-3], [23.5e-3, 93.5e-3, 11.2e-3]]
    >>> for verdict in lever_claims(items, times):
    ...     print(verdict)
    held here: batching multiplies the memory-bound op's throughput and not the compute-bound one's (x6.51 and
      x1.01)
    held here: more FLOP/s speed up the compute-bound op and not the memory-bound one (x2.10 and x1.03)
    """
    from efflab.claims import check, cores_contended, cores_deliver, hyperthreads, reason

    items = np.asarray(items, dtype=float)
    times = np.asarray(times_s, dtype=float)
    if items.shape != (2, 3) or times.shape != (2, 3):
        raise ValueError(f"items and times_s must have shape (2, 3) (operators x configurations); got {items.shape}")
    if not (np.all(items > 0) and np.all(times > 0) and np.all(np.isfinite(times))):
        raise ValueError("items (rows) and times_s (s) must be finite and > 0")
    gain = (items[:, 1:] / times[:, 1:]) / (items[:, :1] / times[:, :1])  # throughput over baseline
    (a_mem, b_mem), (a_cmp, b_cmp) = gain
    low, high = WASTED_GAIN_BAND
    if threads is not None:
        threads = v.integer(threads, "threads", "CPU threads of lever B", low=1)
    contended, ht = cores_contended(), hyperthreads()
    one_core = []
    if weight_bytes is not None and dram_bytes_per_s is not None:
        share = float(weight_bytes) / times[0, 0] / float(dram_bytes_per_s)
        one_core.append(
            reason(
                b_mem > 1 + CORES_GAIN_FLOOR and share < ONE_CORE_BANDWIDTH_SHARE,
                f"one thread streamed the weights at {share:.0%} of the measured DRAM bandwidth: it cannot saturate "
                "memory alone, so more threads raised the memory-bound op's bandwidth as well",
            )
        )
    return (
        check(
            "batching multiplies the memory-bound op's throughput and not the compute-bound one's",
            a_mem >= BATCHING_GAIN_ABOVE and a_mem >= 2 * a_cmp and low <= a_cmp <= high,
            f"x{a_mem:.2f} and x{a_cmp:.2f}",
            [
                contended,
                op_bench.batching_flat_now((int(items[1, 0]), int(items[1, 1])), int(items[1, 0]))
                if threads is not None and a_mem >= BATCHING_GAIN_ABOVE and not low <= a_cmp <= high
                else reason(False, "not needed"),
            ],
        ),
        check(
            "more FLOP/s speed up the compute-bound op and not the memory-bound one",
            b_cmp > 1 + CORES_GAIN_FLOOR and b_mem <= 1 + CORES_GAIN_FLOOR,
            f"x{b_cmp:.2f} and x{b_mem:.2f}",
            [
                reason(
                    b_cmp <= 1 + CORES_GAIN_FLOOR and threads == 1,
                    "torch runs one thread here, so lever B (1 -> 1 thread) added no FLOP/s to either op",
                ),
                *one_core,
                reason(b_cmp <= 1 + CORES_GAIN_FLOOR and ht.applies, ht.text),
                contended,
                cores_deliver() if b_cmp <= 1 + CORES_GAIN_FLOOR and threads != 1 else reason(False, "not needed"),
                op_bench.threads_scale_now(threads)
                if b_cmp <= 1 + CORES_GAIN_FLOOR and threads and threads > 1 and b_mem <= 1 + CORES_GAIN_FLOOR
                else reason(False, "not needed"),
            ],
        ),
    )
