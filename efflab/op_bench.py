"""Measured ops: ready-to-run workloads, their timing, the iron-law bound each is held to, and quick re-timings.

One job: turning an op into a measured point on a roofline, for ``chapters/01_introduction`` (the three regime
probes), ``chapters/03_roofline`` (the low-reuse kernels, measured) and ``labs/lab1_roofline``:

- :class:`Workload` (``fn(*args, **kwargs)`` with its analytic cost), built by :func:`regime_workloads` and
  :func:`kernel_workloads`; :func:`measure_ops` and :func:`measure_op` time them into :class:`MeasuredOp`, which
  :func:`efflab.plots.plot_roofline` places at its achieved FLOP/s (``measure_ops`` interleaves workloads over rounds
  and keeps each one's fastest median, for shared machines); :func:`num_threads` is
  :func:`efflab.timing.torch_threads`.
- :func:`op_bound` -- the least time a measured op can take on a roofline (:class:`OpBound`): its bytes at the
  bandwidth of the level they live in (:func:`resident_level`), its FLOPs and exponentials at their peaks, plus the
  dispatch latency.
- :func:`threads_scale_now`, :func:`batching_flat_now` and :func:`speed_drift` -- a matmul timed again just now, as a
  :class:`~efflab.claims.Reason` that :mod:`efflab.roofline_claims` cites when a measurement disagrees with the
  roofline.

torch is imported inside the functions only.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from efflab import _validate as v
from efflab.claims import Reason
from efflab.hardware import fp32_math
from efflab.opcost import (
    OpCost,
    conv2d_cost,
    elementwise_cost,
    embedding_cost,
    layernorm_cost,
    matmul_cost,
    softmax_cost,
)
from efflab.roofline import Roofline
from efflab.roofline_cases import D_MODEL, VOCAB
from efflab.timing import torch_threads

__all__ = [
    "MeasuredOp",
    "OpBound",
    "Workload",
    "batching_flat_now",
    "kernel_workloads",
    "measure_op",
    "measure_ops",
    "num_threads",
    "op_bound",
    "regime_workloads",
    "resident_level",
    "speed_drift",
    "threads_scale_now",
]

# --- workloads and their measurement ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """A ready-to-run op: ``fn(*args, **kwargs)`` and its analytic cost."""

    label: str
    fn: Callable
    args: tuple
    cost: OpCost
    kwargs: Mapping = field(default_factory=dict)
    exps: float = 0.0  # exponentials it computes (softmax: one per element), bounded by the measured exp rate


@dataclass(frozen=True)
class MeasuredOp:
    """An op's cost and its measured median time: ``achieved = flops / time_s``, ``bandwidth = bytes / time_s``."""

    label: str
    flops: float
    bytes_moved: float
    time_s: float
    iqr_s: float = 0.0
    threads: int | None = None  # CPU threads of the kept measurement (None: torch's setting)
    exps: float = 0.0  # exponentials the op computes (see Workload.exps)

    @property
    def intensity_flops_per_byte(self) -> float:
        return self.flops / self.bytes_moved

    @property
    def achieved_flops_per_s(self) -> float:
        return self.flops / self.time_s

    @property
    def achieved_bytes_per_s(self) -> float:
        return self.bytes_moved / self.time_s

    def regime(self, roofline: Roofline, dtype: str | None = None) -> str:
        """The regime :meth:`Roofline.classify` assigns to this op's cost on ``roofline``."""
        return str(roofline.classify(self.flops, self.bytes_moved, dtype=dtype).regime)  # scalar inputs: a str


def _thread_counts(threads) -> tuple[int | None, ...]:
    if threads is None:
        return (None,)
    if isinstance(threads, (int, np.integer)) and not isinstance(threads, bool):
        return (v.integer(threads, "threads", "threads", low=1),)
    counts = tuple(v.integer(n, "threads", "threads", low=1) for n in threads)
    if not counts:
        raise ValueError("threads must name at least one thread count (threads >= 1)")
    return counts


def _median(workload: Workload, n_threads: int | None, min_run_s: float, max_run_s: float):
    from efflab.timing import benchmark

    with num_threads(n_threads) if n_threads else contextlib.nullcontext():
        return benchmark(workload.fn, *workload.args, min_run_s=min_run_s, max_run_s=max_run_s, **workload.kwargs)


def measure_ops(
    workloads, *, rounds: int = 1, threads=None, min_run_s: float = 0.1, max_run_s: float = 1.0
) -> tuple[MeasuredOp, ...]:
    """Time several workloads, interleaved, keeping each one's fastest median: ``t = min_(round, threads) median``.

    On a shared machine a neighbour's burst slows whatever runs at that moment. Interleaving the workloads over
    ``rounds`` spreads such bursts over all of them, and the minimum of the medians is the least-disturbed figure.
    With several thread counts the fastest is kept too (a busy core stalls every multi-threaded op at its barrier).

    Parameters
    ----------
    workloads : sequence of Workload
    rounds : int
        Passes over all workloads (>= 1).
    threads : int or sequence of int, optional
        CPU thread counts to try (torch's current setting when None); no effect on CUDA kernels' speed.
    min_run_s, max_run_s : float
        Per-measurement budgets passed to :func:`efflab.timing.benchmark` (s).

    Returns
    -------
    tuple of MeasuredOp
        In the order of ``workloads``; ``threads`` is the count that gave the kept median (None: torch's setting).

    Examples
    --------
    >>> ws = [Workload("sum", sum, ([1.0] * 1000,), OpCost(999.0, 8000.0)), Workload("max", max, ([1.0] * 10,), OpCost(9.0, 80.0))]
    >>> [m.label for m in measure_ops(ws, rounds=2, min_run_s=0.005)]
    ['sum', 'max']
    """
    workloads = list(workloads)
    if not all(isinstance(w, Workload) for w in workloads):
        raise TypeError("workloads must be a sequence of efflab.op_bench.Workload")
    rounds = v.integer(rounds, "rounds", "passes", low=1)
    counts = _thread_counts(threads)
    best: list[tuple[float, float, int | None]] = [(math.inf, 0.0, None)] * len(workloads)
    # fp32 ops are judged against fp32 roofs: true IEEE fp32 on a GPU too (cuDNN would otherwise convolve in TF32)
    with fp32_math(tf32=False):
        for _ in range(rounds):
            for i, w in enumerate(workloads):
                for n in counts:
                    m = _median(w, n, min_run_s, max_run_s)
                    if m.median_s < best[i][0]:
                        best[i] = (m.median_s, m.iqr_s, n)
    return tuple(
        MeasuredOp(w.label, w.cost.flops, w.cost.bytes_moved, t, iqr, n, w.exps)
        for w, (t, iqr, n) in zip(workloads, best, strict=True)
    )


def measure_op(workload: Workload, min_run_s: float = 0.1, max_run_s: float = 1.0, threads=None) -> MeasuredOp:
    """Time one :class:`Workload` with :func:`efflab.timing.benchmark` (median) and pair it with its cost.

    ``threads`` as in :func:`measure_ops` (the fastest of the counts given is kept).

    Examples
    --------
    >>> w = Workload("sum", sum, ([1.0] * 1000,), OpCost(999.0, 8000.0))
    >>> m = measure_op(w, min_run_s=0.01)
    >>> m.label, m.flops, m.time_s > 0
    ('sum', 999.0, True)
    """
    return measure_ops([workload], threads=threads, min_run_s=min_run_s, max_run_s=max_run_s)[0]


# One implementation of "run with n torch threads, then restore": efflab.timing.torch_threads.
num_threads = torch_threads


def _device(device):
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
    return torch, dev


def regime_workloads(device=None, tiny_numel: int = 64) -> tuple[Workload, ...]:
    """Three fp32 ops, one per regime: a tiny add (latency), a large add (memory), a large matmul (compute).

    The large add spans 3 x 64 MiB (beyond any CPU LLC or GPU L2 in the catalog); the matmul is 1024^3 on a CPU
    (about 2 GFLOP, ~0.1 s at tens of GFLOP/s) and 4096^3 on a GPU.
    """
    torch, dev = _device(device)
    tiny_numel = v.integer(tiny_numel, "tiny_numel", "elements", low=1)
    gen = torch.Generator().manual_seed(0)
    n_big, n_mm = 1 << 24, 4096 if dev.type == "cuda" else 1024
    tiny = [torch.rand(tiny_numel, generator=gen).to(dev) for _ in range(3)]
    big = [torch.rand(n_big, generator=gen).to(dev) for _ in range(3)]
    a, b = (torch.rand(n_mm, n_mm, generator=gen).to(dev) for _ in range(2))
    return (
        Workload(
            f"tiny add ({tiny_numel})",
            torch.add,
            tuple(tiny[:2]),
            elementwise_cost(tiny_numel, 4, 1, 2),
            {"out": tiny[2]},
        ),
        Workload("large add (16M)", torch.add, tuple(big[:2]), elementwise_cost(n_big, 4, 1, 2), {"out": big[2]}),
        Workload(f"matmul {n_mm}^3", torch.matmul, (a, b), matmul_cost(n_mm, n_mm, n_mm, 4)),
    )


def kernel_workloads(device=None) -> tuple[Workload, ...]:
    """The low-reuse kernels of :func:`~efflab.roofline_cases.kernel_catalog`, in fp32 at sizes a 2-core CPU times in ~0.1 s each.

    Working sets are 16-130 MiB, beyond a typical 32 MiB LLC, so the bytes really come from DRAM.
    """
    torch, dev = _device(device)
    f = torch.nn.functional
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.rand(*shape, generator=gen).to(dev)

    rows, d, vocab = 4096, 1024, VOCAB
    x, w, b = rand(rows, d), rand(d), rand(d)
    table, idx = rand(vocab, d), torch.randint(0, vocab, (rows,), generator=gen).to(dev)
    img, dw = rand(8, 64, 112, 112), rand(64, 1, 3, 3)
    vec, weight = rand(1, D_MODEL), rand(D_MODEL, D_MODEL)
    return (
        Workload("embedding", f.embedding, (idx, table), embedding_cost(rows, d, 4)),
        Workload("layer norm", f.layer_norm, (x, (d,), w, b), layernorm_cost(rows * d, d, 4)),
        Workload("softmax", torch.softmax, (x, -1), softmax_cost(rows * d, 4), exps=rows * d),
        Workload(
            "depthwise conv",
            f.conv2d,
            (img, dw),
            conv2d_cost(8, 64, 64, 112, 112, 3, padding=1, groups=64, dtype_bytes=4),
            {"padding": 1, "groups": 64},
        ),
        Workload("batch-1 linear", f.linear, (vec, weight), matmul_cost(1, D_MODEL, D_MODEL, 4)),
    )


# --- the bound a measured op is held to -------------------------------------------------------------------------------


def resident_level(roofline: Roofline, working_set_bytes: float, caches: Mapping | None = None) -> str:
    """The memory level an op's data lives in: the smallest cache the OS reports that holds ``working_set_bytes`` and
    that has a measured ceiling in ``roofline.memory``; otherwise the slowest level (main memory).

    A cache level whose set ran at DRAM speed gets no ceiling (:func:`efflab.ceilings.measure_ceilings`), so a VM
    that reports its host's 480 MiB L3 falls back to DRAM here. ``caches`` defaults to
    :func:`efflab._sysinfo.cache_sizes_bytes`; pass ``{}`` on a GPU, whose levels the OS does not report.

    Examples
    --------
    >>> roof = Roofline({"fp32": 1e11}, {"dram": 2e10, "l2": 6e10, "l3": 9e10})
    >>> caches = {"l2": 512 << 10, "l3": 8 << 20}
    >>> [resident_level(roof, n, caches) for n in (48 << 10, 4 << 20, 64 << 20)]
    ['l2', 'l3', 'dram']
    >>> resident_level(Roofline({"fp32": 1e11}, {"dram": 2e10}), 4 << 20, caches)
    'dram'
    """
    size = float(v.positive(working_set_bytes, "working_set_bytes", "bytes"))
    if caches is None:
        from efflab._sysinfo import cache_sizes_bytes

        caches = cache_sizes_bytes()
    fitting = sorted((bytes_, level) for level, bytes_ in caches.items() if bytes_ >= size and level in roofline.memory)
    if fitting:
        return fitting[0][1]
    return min(roofline.memory, key=lambda level: roofline.memory[level].value)


@dataclass(frozen=True)
class OpBound:
    """The iron-law bound of a measured op on the ceilings that apply to it: ``time_s = max(terms) + latency``.

    ``level`` is the memory level its data lives in (:func:`resident_level`); ``terms`` maps each term to seconds:
    the memory level, the compute dtype, "exp" (exponentials over the measured exp rate) and "latency"; ``bound_by``
    names the largest.
    """

    level: str
    time_s: float
    terms: Mapping[str, float]

    @property
    def bound_by(self) -> str:
        return max(self.terms, key=lambda term: self.terms[term])

    @property
    def regime(self) -> str:
        """ "memory" when a memory level bounds it, "latency" for the dispatch floor, else "compute" (a dtype's peak
        or the exponentials, which run on the vector units of a CPU and the special-function units of a GPU)."""
        by = self.bound_by
        return "latency" if by == "latency" else "memory" if by == self.level else "compute"


def op_bound(op: MeasuredOp, roofline: Roofline, caches: Mapping | None = None, exp_per_s: float | None = None):
    """The least time ``op`` can take on ``roofline``: its bytes at the bandwidth of the level they live in, its FLOPs
    at the compute peak, its exponentials at ``exp_per_s`` (exp/s, e.g. :func:`efflab.ceilings.measure_exp_rate`),
    overlapped, plus the dispatch latency.

    Examples
    --------
    >>> roof = Roofline({"fp32": 1e11}, {"dram": 2e10, "l3": 8e10}, latency_s=3e-6)
    >>> soft = MeasuredOp("softmax", 5 * 2**22, 2**25, 6e-3, exps=2**22)
    >>> b = op_bound(soft, roof, caches={"l3": 8 << 20}, exp_per_s=7e8)
    >>> b.level, b.bound_by, b.regime, round(b.time_s * 1e3, 2)
    ('dram', 'exp', 'compute', 6.0)
    """
    if not isinstance(op, MeasuredOp):
        raise TypeError(f"op must be a MeasuredOp (measure_ops()); got {type(op).__name__}")
    level = resident_level(roofline, op.bytes_moved, caches)
    c = roofline.classify(op.flops, op.bytes_moved, level=level)
    # Scalar inputs give float terms; default_dtype is set by Roofline.__post_init__.
    terms: dict[str, float] = {level: float(c.memory_time_s), str(roofline.default_dtype): float(c.compute_time_s)}
    if op.exps:
        if exp_per_s is None:
            raise ValueError(f"{op.label} computes {op.exps:.3g} exponentials: pass exp_per_s (exp/s, > 0)")
        terms["exp"] = op.exps / float(v.positive(exp_per_s, "exp_per_s", "exp/s"))
    latency = roofline.latency_s or 0.0
    terms["latency"] = latency
    return OpBound(level, max(t for k, t in terms.items() if k != "latency") + latency, MappingProxyType(terms))


# --- re-timings: when a claim does not hold, a matmul is timed again now ----------------------------------------------

# A gain of the matmul from more cores below this is no gain at all on a shared VM (one busy neighbour costs ~30 %);
# efflab.roofline_claims judges more cores (and lab 1's lever B) with it too.
CORES_GAIN_FLOOR = 0.3
# Lab 1's batching lever is "wasted" on the compute-bound op when its throughput ratio falls inside this band
# (efflab.roofline_claims.lever_claims; its other thresholds are there).
WASTED_GAIN_BAND = (0.8, 1.25)
# Drift check: a matmul this size (512^3: 268 MFLOP, ~5-10 ms on one 2020s core) timed now, against the fp32 ceiling.
DRIFT_MATMUL_N = 512
DRIFT_ABOVE = 0.1  # faster than the ceiling by more than this: the machine's speed changed since it was measured


def threads_scale_now(threads: int, gain_floor: float | None = None, n: int = 512) -> Reason:
    """Reason "more threads do add FLOP/s here, just not while the experiment ran", measured now: an ``n``^3 fp32
    matmul on the CPU, timed with one thread and with ``threads`` in three interleaved rounds (fastest of each),
    gains more than ``1 + gain_floor`` (``CORES_GAIN_FLOOR`` by default). A host that lends a VM's second vCPU elsewhere
    for a while shows no steal; this shows that the cores themselves scale. Takes about a second: evaluate it only for
    a claim that did not hold.

    Examples
    --------
    >>> threads_scale_now(1).applies  # one thread: nothing to scale
    False
    """

    import torch

    from efflab.timing import benchmark

    threads = v.integer(threads, "threads", "CPU threads", low=1)
    floor = CORES_GAIN_FLOOR if gain_floor is None else float(gain_floor)
    if threads < 2:
        return Reason(False, "one thread: nothing to scale")
    a, b = torch.rand(n, n), torch.rand(n, n)
    best = {1: float("inf"), threads: float("inf")}
    for _ in range(3):  # the fastest sample counts
        for count in best:
            with num_threads(count):
                best[count] = min(best[count], benchmark(torch.mm, a, b, min_run_s=0.05, max_run_s=0.3).min_s)
    gain = best[1] / best[threads]
    return Reason(
        gain > 1 + floor,
        f"timed again just now, {threads} threads give a {n}^3 matmul x{gain:.2f} over one: the cores do add FLOP/s, "
        "so during the experiment another tenant of the host had the second CPU (not visible as steal)",
    )


def batching_flat_now(rows: tuple[int, int], n: int, band: tuple[float, float] | None = None) -> Reason:
    """Reason "batching does leave the compute-bound op's throughput flat here, just not while the experiment ran",
    measured now: ``rows[0]`` and ``rows[1]`` rows times an ``n`` x ``n`` fp32 weight on one CPU thread, in three
    interleaved rounds (fastest of each); the throughput ratio falls inside ``band`` (``WASTED_GAIN_BAND``). A host
    whose speed changes during the experiment moves one configuration's time and not the other's. Takes about a
    second: evaluate it only for a claim that did not hold.

    Examples
    --------
    >>> batching_flat_now((1, 4), 8).applies  # all overhead: four rows cost what one does, so batching is not wasted
    False
    """

    import torch

    from efflab.timing import benchmark

    r1, r2 = (v.integer(r, "rows", "rows per call", low=1) for r in rows)
    n = v.integer(n, "n", "weight size", low=1)
    low, high = WASTED_GAIN_BAND if band is None else band
    w = torch.rand(n, n)
    xs = {r1: torch.rand(r1, n), r2: torch.rand(r2, n)}
    best = {r1: float("inf"), r2: float("inf")}
    with num_threads(1):
        for _ in range(3):  # the fastest sample counts
            for r, x in xs.items():
                best[r] = min(best[r], benchmark(torch.mm, x, w, min_run_s=0.05, max_run_s=0.5).min_s)
    gain = (r2 / best[r2]) / (r1 / best[r1])
    return Reason(
        low <= gain <= high,
        f"timed again just now, {r2} rows instead of {r1} give the compute-bound matmul x{gain:.2f} the throughput: "
        "batching is wasted on it here, and the host's speed changed while the experiment ran",
    )


def speed_drift(roofline: Roofline, device=None) -> Reason:
    """Reason "the machine got faster since its ceilings were measured", measured now: a 512^3 fp32 matmul
    (fastest of its runs, all threads) beats the roofline's fp32 ceiling by more than ``DRIFT_ABOVE``. A shared host
    changes a VM's speed from minute to minute; an op then beats a bound that was measured in a slow minute.

    Examples
    --------
    >>> slow = Roofline({"fp32": 1e6}, {"dram": 1e9})  # a ceiling far below any real matmul
    >>> speed_drift(slow).applies
    True
    """

    import torch

    from efflab.timing import benchmark

    if "fp32" not in roofline.compute:
        return Reason(False, "no fp32 ceiling to compare with")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    n = DRIFT_MATMUL_N if dev.type == "cpu" else 4096
    a, b = torch.rand(n, n, device=dev), torch.rand(n, n, device=dev)
    now = 2 * n**3 / benchmark(torch.mm, a, b, min_run_s=0.05, max_run_s=0.5).min_s
    ceiling = roofline.peak_flops_per_s("fp32")
    return Reason(
        now > (1 + DRIFT_ABOVE) * ceiling,
        f"a {n}^3 fp32 matmul runs at {now / 1e9:.3g} GFLOP/s now, above the {ceiling / 1e9:.3g} GFLOP/s ceiling "
        "measured earlier: the machine's speed changed since (a shared host), so that roof understates it",
    )
