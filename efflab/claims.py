"""Claims a page makes about its own measurements, checked on the numbers it just measured.

A chapter may say what the reader should *expect* ("the fused GELU is faster because it moves fewer bytes"); only the
measurement beside it can say whether that held on the reader's machine. :func:`check` evaluates a claim on the
page's own figures and returns a :class:`Verdict` that prints the outcome with the figures it used::

    held here: fusing the GELU makes it faster (time unfused/fused 9.3x for 9x fewer bytes)
    not here: int8 weights make the matvec about 4x faster (1.3x for 4x fewer bytes)
      why: both weight sets fit in the 480 MiB L3 the OS reports: the fp32 layer is not streamed from DRAM

When a claim does not hold, the first of its ``reasons`` that applies names the physical cause: the working set fits
a cache level (:func:`fits_cache`), the effect is inside the noise of the measurement (:func:`within_noise`), the op
is overhead-dominated (:func:`overhead_dominated`), other processes contend for the cores (:func:`cores_contended`),
or a different hardware path ran. A claim that neither holds nor is diagnosed is *unexplained*: the verdict says so,
and with ``EFFLAB_STRICT_CLAIMS=1`` (set by ``make test`` for every notebook) :func:`check` raises
:class:`UnexplainedClaim`, so CI fails instead of the page telling the reader something false.

This module needs only the standard library and numpy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from efflab.style import TEXT_WIDTH_CHARS, wrap_lines

__all__ = [
    "Reason",
    "UnexplainedClaim",
    "Verdict",
    "bytes_text",
    "cache_level",
    "check",
    "cores_contended",
    "cores_deliver",
    "fits_cache",
    "overhead_dominated",
    "parallel_capacity",
    "physical_cores",
    "cpu_times",
    "hypervisor_steal",
    "hyperthreads",
    "others_busy",
    "reason",
    "rounds_disagree",
    "within_noise",
]

STRICT_ENV = "EFFLAB_STRICT_CLAIMS"  # "1": an unexplained claim raises UnexplainedClaim (CI runs every notebook so)
# Verdict lines wrap at the course's text width: they fit the book's column and a notebook's output without scrolling.
TEXT_WIDTH = TEXT_WIDTH_CHARS
# A load average above this many runnable tasks per core means other work shares the cores (Linux load counts
# runnable and uninterruptible tasks; 1 per core is a fully busy machine).
CONTENDED_LOAD_PER_CORE = 1.0
# Hypervisor steal above this share of the CPU time of an experiment means a virtual CPU was not running for part of
# it (Linux /proc/stat "steal": time the host gave this VM's vCPU to other guests).
STEAL_SHARE_ABOVE = 0.05
# Repeated rounds of one measurement that differ by more than this (slowest / fastest - 1) show a machine whose speed
# changed during the experiment (2-6 % is the usual spread of a quiet 2-core VM, measured while writing this).
ROUNDS_SPREAD_ABOVE = 0.2


class UnexplainedClaim(AssertionError):
    """A page's claim neither held on its measurement nor matched any diagnosed reason."""


@dataclass(frozen=True)
class Reason:
    """A candidate physical cause for a claim that did not hold: ``applies`` on this run's figures, and its text."""

    applies: bool
    text: str


def reason(applies, text: str) -> Reason:
    """A :class:`Reason` from a condition evaluated on the measurement and its explanation.

    Examples
    --------
    >>> reason(64 << 20 <= 480 << 20, "the 64 MiB working set fits the 480 MiB L3").applies
    True
    """
    if not isinstance(text, str) or not text:
        raise TypeError(f"text must be a non-empty string; got {text!r}")
    return Reason(bool(applies), text)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one claim: ``held`` or not, the ``figures`` it was judged on, and ``why`` when it did not hold
    (None when it held, or when no reason applied: then ``explained`` is False)."""

    statement: str
    held: bool
    figures: str
    why: str | None = None

    @property
    def explained(self) -> bool:
        """True when the claim held, or when a diagnosed reason says why it did not."""
        return self.held or self.why is not None

    def to_text(self, width: int = TEXT_WIDTH) -> str:
        """``held here: ...`` or ``not here: ...`` with the figures, and the reason below, wrapped at ``width``."""
        head = f"{'held here' if self.held else 'not here'}: {self.statement} ({self.figures})"
        lines = wrap_lines(head, width, subsequent_indent="  ")
        if not self.held:
            why = self.why or "UNEXPLAINED -- no diagnosed reason applies to these figures"
            lines += wrap_lines(why, width, initial_indent="  why: ", subsequent_indent="       ")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_pretty_(self, p, cycle) -> None:  # IPython shows the text, not the dataclass repr
        p.text(self.to_text())


def check(statement: str, held, figures: str, reasons: Iterable[Reason] = ()) -> Verdict:
    """Judge a claim on the page's own figures.

    Parameters
    ----------
    statement : str
        What the page expects, in words ("fusing the GELU makes it faster").
    held : bool
        The claim evaluated on this run's measurement.
    figures : str
        The numbers it was judged on, as the reader should see them ("9.3x faster for 9x fewer bytes").
    reasons : iterable of Reason
        Candidate causes, most specific first; the first that applies explains a claim that did not hold.

    Returns
    -------
    Verdict

    Raises
    ------
    UnexplainedClaim
        With ``EFFLAB_STRICT_CLAIMS=1``, when the claim did not hold and no reason applies.

    Examples
    --------
    >>> print(check("the second core speeds up the matmul", 1.9 > 1.3, "x1.90"))
    held here: the second core speeds up the matmul (x1.90)
    >>> v = check("the second core speeds up the add", 1.02 > 1.3, "x1.02",
    ...           [reason(False, "other processes use the cores"), reason(True, "one core saturates DRAM")])
    >>> print(v)
    not here: the second core speeds up the add (x1.02)
      why: one core saturates DRAM
    """
    if not isinstance(statement, str) or not statement:
        raise TypeError(f"statement must be a non-empty string; got {statement!r}")
    if not isinstance(figures, str):
        raise TypeError(f"figures must be a string (the numbers the claim was judged on); got {type(figures).__name__}")
    reasons = list(reasons)
    for r in reasons:
        if not isinstance(r, Reason):
            raise TypeError(f"reasons must hold Reason objects (efflab.claims.reason(...)); got {type(r).__name__}")
    held = bool(held)
    why = None if held else next((r.text for r in reasons if r.applies), None)
    verdict = Verdict(statement, held, figures, why)
    if not verdict.explained and os.environ.get(STRICT_ENV) == "1":
        raise UnexplainedClaim(verdict.to_text())
    return verdict


def bytes_text(n: float) -> str:
    """A byte count in binary units, three significant digits: ``bytes_text(64 << 20) == '64 MiB'``."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def cache_level(working_set_bytes: float, caches: Mapping[str, int] | None = None) -> tuple[str, int] | None:
    """The smallest cache level the OS reports that holds ``working_set_bytes``, as ``(level, size_bytes)``; None
    when none does. ``caches`` defaults to :func:`efflab._sysinfo.cache_sizes_bytes` (per core; an L3 shared by all
    cores is reported whole, and a VM may report its host's).

    Examples
    --------
    >>> cache_level(64 << 20, {"l2": 2 << 20, "l3": 480 << 20})
    ('l3', 503316480)
    >>> cache_level(1 << 30, {"l2": 2 << 20, "l3": 480 << 20}) is None
    True
    """
    if caches is None:
        from efflab._sysinfo import cache_sizes_bytes

        caches = cache_sizes_bytes()
    size = float(working_set_bytes)
    if not size > 0:
        raise ValueError(f"working_set_bytes must be > 0 (bytes); got {working_set_bytes!r}")
    fitting = sorted((bytes_, level) for level, bytes_ in caches.items() if bytes_ >= size)
    return (fitting[0][1], fitting[0][0]) if fitting else None


def fits_cache(working_set_bytes: float, caches: Mapping[str, int] | None = None) -> Reason:
    """Reason "the working set fits a cache level": the smallest level the OS reports that holds it
    (:func:`cache_level`).

    Examples
    --------
    >>> fits_cache(256 << 20, {"l2": 2 << 20, "l3": 480 << 20}).text
    'the 256 MiB working set fits in the l3 the OS reports (480 MiB): it is not streamed from DRAM'
    >>> fits_cache(1 << 30, {"l2": 2 << 20, "l3": 480 << 20}).applies
    False
    """
    if caches is None:
        from efflab._sysinfo import cache_sizes_bytes

        caches = cache_sizes_bytes()
    found = cache_level(working_set_bytes, caches)
    size = float(working_set_bytes)
    if found is None:
        largest = max(caches.values(), default=0)
        return Reason(False, f"the {bytes_text(size)} working set exceeds every cache ({bytes_text(largest)})")
    level, level_bytes = found
    return Reason(
        True,
        f"the {bytes_text(size)} working set fits in the {level} the OS reports ({bytes_text(level_bytes)}): "
        "it is not streamed from DRAM",
    )


def within_noise(ratio: float, spread: float) -> Reason:
    """Reason "the effect is inside the noise": ``|ratio - 1| <= spread`` (a relative run-to-run spread, e.g. the
    IQR over the median of the slower measurement).

    Examples
    --------
    >>> within_noise(1.04, 0.06).applies, within_noise(1.5, 0.06).applies
    (True, False)
    """
    ratio, spread = float(ratio), float(spread)
    if not ratio > 0 or spread < 0:
        raise ValueError(f"ratio must be > 0 and spread >= 0 (fractions); got ratio={ratio!r}, spread={spread!r}")
    return Reason(
        abs(ratio - 1) <= spread + 1e-12,  # 1.05 - 1 is 0.05000000000000004 in binary
        f"the ratio {ratio:.3g} is within the measurement's run-to-run spread (±{spread:.0%})",
    )


def overhead_dominated(time_s: float, latency_floor_s: float, factor: float = 10.0) -> Reason:
    """Reason "the op is overhead-dominated": its time is under ``factor`` x the dispatch floor, so fixed per-call
    costs, not bytes or FLOPs, set it.

    Examples
    --------
    >>> overhead_dominated(4e-6, 1e-6).applies, overhead_dominated(1e-3, 1e-6).applies
    (True, False)
    """
    time_s, floor = float(time_s), float(latency_floor_s)
    if not time_s > 0 or not floor > 0:
        raise ValueError(f"time_s and latency_floor_s must be > 0 (s); got {time_s!r}, {floor!r}")
    return Reason(
        time_s < factor * floor,
        f"at {time_s * 1e6:.3g} µs the op takes under {factor:g}x the {floor * 1e6:.3g} µs dispatch floor: "
        "fixed per-call overhead sets its time",
    )


def cores_contended(load_per_core: float | None = None) -> Reason:
    """Reason "other processes contend for the cores": the 1-minute load average per core is above
    ``CONTENDED_LOAD_PER_CORE`` (read from ``os.getloadavg`` unless given).

    Examples
    --------
    >>> cores_contended(2.5).applies, cores_contended(0.2).applies
    (True, False)
    """
    if load_per_core is None:
        if not hasattr(os, "getloadavg"):
            return Reason(False, "the load average is unknown on this platform")
        load_per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    load = float(load_per_core)
    return Reason(
        load > CONTENDED_LOAD_PER_CORE,
        f"other processes share the cores (load average {load:.2f} per core): threads wait for each other",
    )


def cpu_times() -> tuple | None:
    """``(total, steal, busy, own_s)``: CPU time of all CPUs so far in clock ticks (total, stolen by the hypervisor,
    busy running any process), from the first line of ``/proc/stat``, and this process's own CPU time in seconds
    (threads included; ``os.times``); None where ``/proc/stat`` cannot be read. Take one before and one after an
    experiment for :func:`hypervisor_steal` and :func:`others_busy`.

    Examples
    --------
    >>> t = cpu_times()
    >>> t is None or t[0] >= t[2] >= 0 and t[1] >= 0 and t[3] >= 0
    True
    """
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    ticks = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]
    own = os.times()
    return sum(ticks), ticks[7], busy, own.user + own.system


# Other processes using more than this share of all CPUs during an experiment contend with it (one busy neighbour on
# a 2-vCPU machine is 50 %).
OTHERS_BUSY_ABOVE = 0.2


def others_busy(before, after) -> Reason:
    """Reason "other processes used the cores during the experiment": between two :func:`cpu_times` samples, the CPU
    time of every process but this one is above ``OTHERS_BUSY_ABOVE`` of all CPUs' time. Unlike the load average
    (a one-minute mean) it sees a burst of a few seconds.

    Examples
    --------
    >>> ticks_per_s = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    >>> before, after = (0, 0, 0, 0.0), (4 * ticks_per_s, 0, 3 * ticks_per_s, 1.0)  # 2 s on 2 CPUs; we used 1 s
    >>> print(others_busy(before, after).text)
    other processes used 50% of the CPUs during the experiment: they competed with it for the cores
    >>> others_busy(None, after).applies
    False
    """
    if before is None or after is None or len(before) < 4 or len(after) < 4 or after[0] <= before[0]:
        return Reason(False, "other processes' CPU time is not readable here")
    ticks_per_s = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total_s = (after[0] - before[0]) / ticks_per_s
    others_s = (after[2] - before[2]) / ticks_per_s - (after[3] - before[3])
    share = max(others_s, 0.0) / total_s
    return Reason(
        share > OTHERS_BUSY_ABOVE,
        f"other processes used {share:.0%} of the CPUs during the experiment: they competed with it for the cores",
    )


def hypervisor_steal(before, after) -> Reason:
    """Reason "the hypervisor took the vCPUs away": the steal share of the CPU time between two :func:`cpu_times`
    samples is above ``STEAL_SHARE_ABOVE``.

    Examples
    --------
    >>> hypervisor_steal((1000, 10), (2000, 110)).text
    'the hypervisor ran other guests on these vCPUs for 10% of the experiment (steal time): threads waited'
    >>> hypervisor_steal(None, (2000, 110)).applies
    False
    """
    if before is None or after is None or after[0] <= before[0]:
        return Reason(False, "steal time is not readable here")
    share = (after[1] - before[1]) / (after[0] - before[0])
    return Reason(
        share > STEAL_SHARE_ABOVE,
        f"the hypervisor ran other guests on these vCPUs for {share:.0%} of the experiment (steal time): threads "
        "waited",
    )


def rounds_disagree(*rounds_s) -> Reason:
    """Reason "the machine's speed changed during the experiment": some series of repeated times (s) has its slowest
    round more than ``ROUNDS_SPREAD_ABOVE`` above its fastest.

    Examples
    --------
    >>> rounds_disagree([1.0, 1.05, 1.02], [2.0, 2.9, 2.1]).text
    "repeated rounds of the same measurement differ by up to 45%: the machine's speed changed during the experiment"
    >>> rounds_disagree([1.0, 1.05], [2.0, 2.1]).applies
    False
    """
    spreads = []
    for series in rounds_s:
        times = [float(t) for t in series]
        if not times or min(times) <= 0:
            raise ValueError(f"rounds_s must be sequences of times > 0 (s); got {series!r}")
        spreads.append(max(times) / min(times) - 1)
    worst = max(spreads, default=0.0)
    return Reason(
        worst > ROUNDS_SPREAD_ABOVE,
        f"repeated rounds of the same measurement differ by up to {worst:.0%}: the machine's speed changed during "
        "the experiment",
    )


def physical_cores() -> int | None:
    """Distinct physical cores among the CPUs this process may run on, from ``/sys/devices/system/cpu/cpuN/topology``
    (package id, core id); None where the topology cannot be read.

    Examples
    --------
    >>> n = physical_cores()
    >>> n is None or 1 <= n <= (os.cpu_count() or 1)
    True
    """
    try:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
        cores = set()
        for cpu in cpus:
            base = f"/sys/devices/system/cpu/cpu{cpu}/topology"
            with open(f"{base}/physical_package_id") as fh, open(f"{base}/core_id") as gh:
                cores.add((fh.read().strip(), gh.read().strip()))
    except (OSError, ValueError):
        return None
    return len(cores) or None


def hyperthreads(logical_cpus: int | None = None, cores: int | None = None) -> Reason:
    """Reason "the CPUs are hyper-threads of fewer cores": a second thread on the same core shares its vector units,
    so compute-bound work gains little from it (Colab's 2 vCPUs are one core's two hyper-threads). Reads
    :func:`physical_cores` and the CPUs this process may use unless given.

    Examples
    --------
    >>> print(hyperthreads(2, 1).text)
    the 2 CPUs are hyper-threads of 1 physical core: a second thread shares the first one's vector units
    >>> hyperthreads(2, 2).applies
    False
    """
    if logical_cpus is None:
        logical_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores is None:
        cores = physical_cores()
    if cores is None:
        return Reason(False, "the core topology is not readable here")
    return Reason(
        cores < logical_cpus,
        f"the {logical_cpus} CPUs are hyper-threads of {cores} physical core{'s' * (cores != 1)}: a second thread "
        "shares the first one's vector units",
    )


# A fixed loop of pure-Python additions that takes ~0.1-0.3 s on one core: long enough to dwarf process start-up.
_SPIN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range({n}):\n    x += i\nprint(time.perf_counter() - t)"
SPIN_ITERATIONS = 2_000_000
# All vCPUs together delivering under this share of (count x one alone) means they do not behave as separate cores.
CAPACITY_SHARE_BELOW = 0.7


def parallel_capacity(cpus: int | None = None, iterations: int = SPIN_ITERATIONS) -> float | None:
    """How many CPUs' worth of work ``cpus`` busy processes get done together, measured now: the same fixed loop
    runs alone, then in ``cpus`` processes at once, and each process's time alone over its time together is summed
    (``cpus`` on separate idle cores; about 1 when they are hyper-threads of one core or the host gives the vCPUs one
    core's time). None where processes cannot be started.

    Examples
    --------
    >>> c = parallel_capacity(1, iterations=200_000)
    >>> c is None or 0.5 < c < 1.5
    True
    """
    import subprocess
    import sys

    n = _cpus(
        cpus
        if cpus is not None
        else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    )
    code = _SPIN.format(n=int(iterations))

    def run(k):
        procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(k)]
        return [float(p.communicate(timeout=120)[0]) for p in procs]

    try:
        alone = min(run(1)[0], run(1)[0])
        together = run(n)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return sum(alone / t for t in together)


def _cpus(n) -> int:
    n = int(n)
    if n < 1:
        raise ValueError(f"cpus must be >= 1 (CPUs); got {n}")
    return n


def cores_deliver(cpus: int | None = None) -> Reason:
    """Reason "these vCPUs are not separate cores": :func:`parallel_capacity` measured now is under
    ``CAPACITY_SHARE_BELOW`` of the CPU count (hyper-threads of one core, or a host that gives the vCPUs less than a
    core each). Explains more threads that did not speed up compute-bound work. Takes about a second: evaluate it
    only for a claim that did not hold.

    Examples
    --------
    >>> cores_deliver(1).applies
    False
    """
    n = _cpus(
        cpus
        if cpus is not None
        else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    )
    if n < 2:
        return Reason(False, "one CPU: nothing to share")
    capacity = parallel_capacity(n)
    if capacity is None:
        return Reason(False, "the CPUs' capacity could not be measured here")
    return Reason(
        capacity < CAPACITY_SHARE_BELOW * n,
        f"all {n} CPUs busy at once got {capacity:.2f} CPUs' worth of work done (measured just now with a fixed loop "
        "per CPU): the host gives them less than a core each, so more threads cannot add compute",
    )
