"""Kernels to reason about and to measure: the low-reuse catalog, the memory wall and the batch-1 decode floor.

Three things the roofline chapter (``chapters/03_roofline``) and the labs share:

- :func:`kernel_catalog` -- the operators MLSysBook names as memory-bound (embedding lookup, normalization,
  softmax, depthwise convolution, small-batch inference) beside high-reuse contrasts, at the sizes of real models, as
  :class:`~efflab.roofline.OpCost` (analytic; no torch).
- :func:`memory_wall` and :func:`annual_growth` -- ridge points of the hardware catalog by launch year: peak FLOP/s
  has grown faster than bandwidth, so the ridge rises and more kernels fall on the memory side.
- :func:`decode_floor` -- the bandwidth floor of one batch-1 decode step (every weight read once per token).

and, for measurement (torch imported inside the functions only), :func:`regime_workloads` and
:func:`kernel_workloads` (ready-to-run ops with their costs), :func:`measure_op` and :func:`measure_ops` (a
:class:`MeasuredOp`, which :func:`efflab.plots.plot_roofline` places at its achieved FLOP/s; ``measure_ops``
interleaves workloads over rounds and keeps each one's fastest median, for shared machines) and :func:`num_threads`.
"""

from __future__ import annotations

import contextlib
import html
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from efflab import _validate as v
from efflab.claims import Reason
from efflab.hardware import fp32_math
from efflab.opcost import (
    DTYPE_BYTES,
    OpCost,
    attention_cost,
    conv2d_cost,
    elementwise_cost,
    embedding_cost,
    layernorm_cost,
    matmul_cost,
    softmax_cost,
)
from efflab.roofline import Roofline
from efflab.timing import torch_threads

__all__ = [
    "DecodeFloor",
    "KernelCase",
    "MeasuredOp",
    "MemoryWallRow",
    "UnitClassification",
    "Table",
    "Workload",
    "annual_growth",
    "ceiling_table",
    "decode_floor",
    "kernel_catalog",
    "kernel_workloads",
    "measure_op",
    "measure_ops",
    "memory_wall",
    "num_threads",
    "regime_workloads",
    "more_cores_claim",
    "threads_scale_now",
    "batching_flat_now",
    "OpBound",
    "bound_claim",
    "flat_claim",
    "lever_claims",
    "op_bound",
    "proportional_claim",
    "regimes_claim",
    "speed_drift",
    "resident_level",
    "unit_classify",
]

# Shapes of Llama-2-7B (Touvron et al., 2023, Table 1 and the released config): d_model 4096, 32 heads of 128,
# vocabulary 32000; a 2048-token prompt (the model's context window is 4096).
D_MODEL, HEADS, HEAD_DIM, VOCAB, CONTEXT = 4096, 32, 128, 32000, 2048
# A MobileNetV2 inverted-residual block at 56x56: 24 channels expanded 6x to 144 (Sandler et al., 2018, Table 2).
DW_CHANNELS, DW_SIZE = 144, 56


@dataclass(frozen=True)
class KernelCase:
    """One operator at a representative size: its cost, the shape in words and whether it reuses its data."""

    name: str
    cost: OpCost
    shape: str
    reuse: str  # "low": each byte is used about once; "high": each byte feeds many FLOPs
    # The GPU unit that runs its arithmetic: "tensor" (matrix multiplies: Tensor Cores) or "vector" (elementwise,
    # reductions, gathers, depthwise convolution: the CUDA cores).
    unit: str = "tensor"
    sfu_ops: float = 0.0  # exponentials and reciprocal square roots, which the special-function units compute

    @property
    def flops(self) -> float:
        return self.cost.flops

    def classify(self, device, dtype: str = "fp16"):
        """Regime on a catalog GPU against the ceiling of the unit that runs this kernel (:func:`unit_classify`)."""
        return unit_classify(self, device, dtype)

    @property
    def bytes_moved(self) -> float:
        return self.cost.bytes_moved


def kernel_catalog(dtype: str = "fp16") -> tuple[KernelCase, ...]:
    """MLSysBook's memory-bound kernels, and high-reuse contrasts, at Llama-2-7B / MobileNetV2 sizes.

    Each cost comes from :mod:`efflab.roofline` (compulsory bytes, an FMA = 2 FLOPs), so ``I = O / D_vol`` is the
    best any kernel can reach.

    Parameters
    ----------
    dtype : str
        Storage dtype of activations and weights ("fp32", "fp16", "bf16", ...); indices are int64.

    Returns
    -------
    tuple of KernelCase
        Low-reuse kernels first, then the high-reuse ones.

    Examples
    --------
    >>> {k.name: round(k.cost.intensity_flops_per_byte, 2) for k in kernel_catalog("fp16")}["batch-1 linear"]
    1.0
    >>> [k.name for k in kernel_catalog() if k.reuse == "high"]
    ['prefill linear', 'attention prefill']
    """
    v.choice(dtype, "dtype", list(DTYPE_BYTES))
    tokens = CONTEXT * D_MODEL
    return (
        KernelCase(
            "embedding lookup",
            embedding_cost(CONTEXT, D_MODEL, dtype),
            f"{CONTEXT} tokens x {D_MODEL}",
            "low",
            unit="vector",
        ),
        KernelCase(
            "layer norm",
            layernorm_cost(tokens, D_MODEL, dtype),
            f"{CONTEXT} x {D_MODEL}",
            "low",
            unit="vector",
            sfu_ops=CONTEXT,  # one reciprocal square root per row
        ),
        KernelCase(
            "softmax (scores)",
            softmax_cost(HEADS * CONTEXT * CONTEXT, dtype),
            f"{HEADS} heads x {CONTEXT} x {CONTEXT}",
            "low",
            unit="vector",
            sfu_ops=HEADS * CONTEXT * CONTEXT,  # one exponential per score
        ),
        KernelCase(
            "depthwise conv 3x3",
            conv2d_cost(
                1, DW_CHANNELS, DW_CHANNELS, DW_SIZE, DW_SIZE, 3, padding=1, groups=DW_CHANNELS, dtype_bytes=dtype
            ),
            f"{DW_CHANNELS} ch x {DW_SIZE}x{DW_SIZE}",
            "low",
            unit="vector",
        ),
        KernelCase(
            "batch-1 linear", matmul_cost(1, D_MODEL, D_MODEL, dtype), f"1 x {D_MODEL} @ {D_MODEL} x {D_MODEL}", "low"
        ),
        KernelCase(
            "attention decode",
            attention_cost(1, HEADS, 1, HEAD_DIM, kv_seq_len=CONTEXT, dtype_bytes=dtype),
            f"1 query vs {CONTEXT}-token KV cache",
            "low",
        ),
        KernelCase(
            "prefill linear",
            matmul_cost(CONTEXT, D_MODEL, D_MODEL, dtype),
            f"{CONTEXT} x {D_MODEL} @ {D_MODEL} x {D_MODEL}",
            "high",
        ),
        KernelCase(
            "attention prefill",
            attention_cost(1, HEADS, CONTEXT, HEAD_DIM, dtype_bytes=dtype, causal=True),
            f"{HEADS} heads x {CONTEXT} tokens, causal",
            "high",
        ),
    )


@dataclass(frozen=True)
class UnitClassification:
    """A kernel's iron-law terms on one GPU, the compute term taken on the unit that runs it.

    ``compute_time_s = max(O / R_unit[dtype], sfu_ops / R_exp)``: vector kernels are bounded by the CUDA cores' peak
    and by the special-function units' rate, matrix multiplies by the Tensor Cores. ``ceiling`` names the binding
    compute ceiling ("Tensor Cores", "vector units" or "SFU (exp)").
    """

    regime: str
    ceiling: str
    memory_time_s: float
    compute_time_s: float
    vector_time_s: float
    sfu_time_s: float


def unit_classify(case: KernelCase, device, dtype: str = "fp16") -> UnitClassification:
    """Classify a :class:`KernelCase` on a catalog GPU against the ceiling of the unit that runs it.

    Softmax and normalization never touch Tensor Cores: their FLOPs run on the vector units
    (``Device.vector_flops_per_s``) and their exponentials on the special-function units (``Device.exp_per_s``).
    Comparing them with the Tensor Core peak understates their compute time 7x (H100: 989.4 vs 133.8 TFLOP/s fp16)
    and ignores the exponentials altogether.

    Examples
    --------
    >>> softmax = next(k for k in kernel_catalog("fp16") if k.name == "softmax (scores)")
    >>> c = unit_classify(softmax, "H100 SXM")
    >>> c.regime, c.ceiling, round(c.memory_time_s * 1e6), round(c.vector_time_s * 1e6, 1), round(c.sfu_time_s * 1e6)
    ('memory', 'SFU (exp)', 160, 5.0, 35)
    """
    from efflab.hardware import Device, get_device

    if not isinstance(case, KernelCase):
        raise TypeError(f"case must be a KernelCase (kernel_catalog()); got {type(case).__name__}")
    device = device if isinstance(device, Device) else get_device(device)
    memory_s = case.bytes_moved / device.bandwidth_bytes_per_s
    sfu_s = 0.0
    if case.unit == "tensor":
        peak, name = device.peak_flops_per_s.get(dtype), "Tensor Cores"
    else:
        peak, name = device.vector_flops_per_s.get(dtype) or device.vector_flops_per_s.get("fp32"), "vector units"
        if case.sfu_ops and device.exp_per_s:
            sfu_s = case.sfu_ops / device.exp_per_s
    if peak is None:
        raise ValueError(
            f"dtype {dtype!r}: {device.name} has no {name} peak for it; use one of "
            f"{sorted(device.peak_flops_per_s if case.unit == 'tensor' else device.vector_flops_per_s)}"
        )
    vector_s = case.flops / peak
    compute_s = max(vector_s, sfu_s)
    ceiling = "SFU (exp)" if sfu_s > vector_s else name
    return UnitClassification(
        "memory" if memory_s >= compute_s else "compute", ceiling, memory_s, compute_s, vector_s, sfu_s
    )


@dataclass(frozen=True)
class MemoryWallRow:
    """One device of the catalog: launch year, peak (FLOP/s), bandwidth (bytes/s) and ridge point (FLOP/byte)."""

    name: str
    year: int
    dtype: str
    peak_flops_per_s: float
    bandwidth_bytes_per_s: float

    @property
    def ridge_flops_per_byte(self) -> float:
        return self.peak_flops_per_s / self.bandwidth_bytes_per_s


def memory_wall(dtype: str = "fp16", devices: Mapping | None = None) -> tuple[MemoryWallRow, ...]:
    """Ridge points ``I* = R_peak[dtype] / BW`` of catalog devices, sorted by launch year (then name).

    Devices without a ``year`` or without a peak for ``dtype`` are left out.

    Parameters
    ----------
    dtype : str
        Which compute peak to use ("fp16" for the Tensor Core peak every catalog GPU has, "fp32" for the CUDA cores).
    devices : mapping of name -> Device, optional
        Defaults to :data:`efflab.hardware.CATALOG`.

    Examples
    --------
    >>> rows = memory_wall("fp16")
    >>> rows[0].name, rows[0].year, round(rows[0].ridge_flops_per_byte, 1)
    ('NVIDIA V100 SXM2', 2017, 138.9)
    """
    if devices is None:
        from efflab.hardware import CATALOG as devices
    rows = [
        MemoryWallRow(d.name, d.year, dtype, d.peak_flops_per_s[dtype], d.bandwidth_bytes_per_s)
        for d in devices.values()
        if d.year is not None and dtype in d.peak_flops_per_s
    ]
    if not rows:
        raise ValueError(f"dtype {dtype!r}: no device with a launch year has a peak for it")
    return tuple(sorted(rows, key=lambda r: (r.year, r.name)))


def annual_growth(years, values) -> float:
    """Average growth factor per year of a quantity, from a least-squares fit of ``ln(value) = a + b*year``: ``e^b``.

    Parameters
    ----------
    years : array_like
        Years (at least two distinct ones).
    values : array_like
        Positive values of the same length (any unit).

    Examples
    --------
    A quantity that doubles every year grows 2x per year:

    >>> round(annual_growth([2016, 2017, 2018], [1.0, 2.0, 4.0]), 6)
    2.0
    """
    x = np.asarray(v.real(years, "years", "years"), dtype=float).ravel()
    y = np.asarray(v.positive(values, "values"), dtype=float).ravel()
    if x.size != y.size:
        raise ValueError(f"years and values must have the same length; got {x.size} and {y.size}")
    if np.unique(x).size < 2:
        raise ValueError("years must hold at least two distinct years")
    slope = np.polyfit(x, np.log(y), 1)[0]
    return float(np.exp(slope))


@dataclass(frozen=True)
class DecodeFloor:
    """One batch-1 decode step of a dense model: every weight read once per token, 2 FLOPs per weight.

    ``floor_time_s = weight_bytes / BW`` (the memory floor), ``compute_floor_s = flops / R_peak``; with a measured
    ``time_per_token_s``, ``achieved = flops / t``, ``efficiency = achieved / R_peak`` and, by the iron law
    ``t = max(floors) + L_lat``, ``overhead_s = t - max(floors)``: the part of the time neither memory nor arithmetic
    explains. :meth:`classify` names the regime from the largest of the three terms.
    """

    params: float
    dtype: str
    device: str
    weight_bytes: float
    flops_per_token: float
    bandwidth_bytes_per_s: float
    peak_flops_per_s: float
    time_per_token_s: float | None = None

    @property
    def floor_time_s(self) -> float:
        return self.weight_bytes / self.bandwidth_bytes_per_s

    @property
    def max_tokens_per_s(self) -> float:
        return 1.0 / self.floor_time_s

    @property
    def achieved_flops_per_s(self) -> float | None:
        return None if self.time_per_token_s is None else self.flops_per_token / self.time_per_token_s

    @property
    def efficiency(self) -> float | None:
        a = self.achieved_flops_per_s
        return None if a is None else a / self.peak_flops_per_s

    @property
    def compute_floor_s(self) -> float:
        """``flops / R_peak``: the least time the arithmetic takes (s)."""
        return self.flops_per_token / self.peak_flops_per_s

    @property
    def floor_efficiency(self) -> float:
        """``flops / (floor_time_s * R_peak)``: the fraction of peak FLOP/s a decode *at the memory floor* reaches."""
        return self.flops_per_token / (max(self.floor_time_s, self.compute_floor_s) * self.peak_flops_per_s)

    @property
    def overhead_s(self) -> float | None:
        """``t - max(memory floor, compute floor)``: the iron law's ``L_lat`` of the measured time (s), never < 0."""
        if self.time_per_token_s is None:
            return None
        return max(0.0, self.time_per_token_s - max(self.floor_time_s, self.compute_floor_s))

    @property
    def bandwidth_fraction(self) -> float | None:
        """``floor_time_s / t``: the fraction of the bandwidth the measured time achieves (weights read once)."""
        return None if self.time_per_token_s is None else self.floor_time_s / self.time_per_token_s

    def classify(self):
        """The iron law's regime of this decode: the largest of the memory floor, the compute floor and the overhead
        (``latency_s = overhead_s``, 0 when no time was measured).

        Examples
        --------
        >>> decode_floor(7e9, "fp16", "H100 SXM", time_per_token_s=0.050).classify().regime
        'latency'
        >>> decode_floor(7e9, "fp16", "H100 SXM", time_per_token_s=0.005).classify().regime
        'memory'
        """
        from efflab.roofline import classify

        return classify(
            self.flops_per_token,
            self.weight_bytes,
            self.peak_flops_per_s,
            self.bandwidth_bytes_per_s,
            latency_s=self.overhead_s or 0.0,
        )


def decode_floor(params: float, dtype: str = "fp16", device="H100 SXM", time_per_token_s: float | None = None):
    """The memory-bandwidth floor of a batch-1 decode step: ``t >= params * s / BW``.

    Parameters
    ----------
    params : float
        Number of weights (> 0), e.g. 7e9.
    dtype : str
        Weight dtype; its size ``s`` in bytes and its peak FLOP/s on the device are used.
    device : str or Device
        A catalog name ("H100 SXM", "t4", ...) or a :class:`~efflab.hardware.Device`.
    time_per_token_s : float, optional
        A measured time per token (s, > 0), for the achieved FLOP/s and the efficiency.

    Examples
    --------
    MLSysBook's case: 7B fp16 weights on an H100 at 50 ms/token.

    >>> d = decode_floor(7e9, "fp16", "H100 SXM", time_per_token_s=0.050)
    >>> d.weight_bytes, round(d.floor_time_s * 1e3, 2), f"{d.efficiency:.2%}"
    (14000000000.0, 4.18, '0.03%')

    The memory floor explains 4.18 ms of the 50: the weights move at 8.4 % of the bandwidth, and 45.8 ms is overhead
    (``L_lat``), the largest term. A decode that ran at the memory floor would reach 0.34 % of peak FLOP/s.

    >>> f"{d.bandwidth_fraction:.1%}", round(d.overhead_s * 1e3, 1), d.classify().regime, f"{d.floor_efficiency:.2%}"
    ('8.4%', 45.8, 'latency', '0.34%')
    """
    from efflab.hardware import get_device

    dev = get_device(device) if isinstance(device, str) else device
    params = float(v.positive(params, "params", "weights"))
    dtype = v.choice(dtype, "dtype", list(dev.peak_flops_per_s))
    if time_per_token_s is not None:
        time_per_token_s = float(v.positive(time_per_token_s, "time_per_token_s", "s"))
    return DecodeFloor(
        params,
        dtype,
        dev.name,
        params * DTYPE_BYTES[dtype],
        2.0 * params,  # one multiply-add per weight per token
        dev.bandwidth_bytes_per_s,
        dev.peak_flops_per_s[dtype],
        time_per_token_s,
    )


# Cells up to this many characters (a number with its unit, a short name) are kept on one line in HTML.
SHORT_CELL_CHARS = 16


@dataclass(frozen=True)
class Table:
    """A small table of already-formatted cells that shows as HTML in a notebook and as aligned text elsewhere.

    Chapters print their numbers through it so that wide tables wrap in the book instead of scrolling.

    Examples
    --------
    >>> t = Table(("op", "time"), [("add", "1 ms"), ("matmul", "20 ms")])
    >>> print(t)
    op      time
    add     1 ms
    matmul  20 ms
    >>> t._repr_html_().count("<th ")
    2
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""

    def __post_init__(self):
        header = tuple(str(h) for h in self.header)
        rows = tuple(tuple(str(c) for c in row) for row in self.rows)
        for i, row in enumerate(rows):
            if len(row) != len(header):
                raise ValueError(f"rows[{i}] must have {len(header)} cells (one per header entry); got {len(row)}")
        object.__setattr__(self, "header", header)
        object.__setattr__(self, "rows", rows)

    def __str__(self) -> str:
        widths = [max(len(r[k]) for r in (self.header, *self.rows)) for k in range(len(self.header))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in (self.header, *self.rows)
        ]
        return "\n".join(([self.caption] if self.caption else []) + lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        esc = html.escape

        # Inline cell padding: the book's theme, Jupyter and Colab would otherwise run adjacent columns together.
        # Short cells (numbers with units) never wrap, so "1.05 µs" stays on one line; long text wraps. At 0.9em and
        # 0.6em padding an eight-column op table fits the book's column at 1280 px (tests/test_browser.py checks it).
        def cell(tag: str, text: str) -> str:
            wrap = " white-space: nowrap;" if len(text) <= SHORT_CELL_CHARS else ""
            style = f"padding: 0.15em 0.6em 0.15em 0; text-align: left; vertical-align: top;{wrap}"
            return f'<{tag} style="{style}">{esc(text)}</{tag}>'

        head = "".join(cell("th", h) for h in self.header)
        body = "".join("<tr>" + "".join(cell("td", c) for c in r) + "</tr>" for r in self.rows)
        caption = f'<caption style="caption-side: top; text-align: left">{esc(self.caption)}</caption>'
        return (
            f'<table class="table" style="font-size: 0.9em">{caption if self.caption else ""}'
            f"<thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )


def ceiling_table(roofline: Roofline) -> Table:
    """Every ceiling of a roofline with its measured value beside its spec (datasheet or estimate) and the ratio.

    Rows: compute ceilings per dtype, memory ceilings per level, the latency floor when known; the caption names the
    ridge point ``R_peak / BW`` of the default dtype over the slowest memory.

    Examples
    --------
    >>> from efflab.roofline import Ceiling
    >>> roof = Roofline({"fp32": Ceiling("fp32", "compute", 1e11, spec=2e11, measured=1e11, estimated=True)},
    ...                 {"dram": 2e10}, latency_s=1e-6, name="test")
    >>> print(ceiling_table(roof))
    test: ridge point 5 FLOP/B (fp32 over dram)
    ceiling        measured      spec                    measured / spec
    compute fp32   100 GFLOP/s   200 GFLOP/s (estimate)  50 %
    memory dram    -             20 GB/s (spec)          -
    latency floor  1 µs          -                       -
    """
    from efflab.style import format_si

    def row(c, unit):
        spec = "-" if c.spec is None else f"{format_si(c.spec, unit)} ({'estimate' if c.estimated else 'spec'})"
        frac = "-" if c.fraction_of_spec is None else f"{100 * c.fraction_of_spec:.0f} %"
        measured = "-" if c.measured is None else format_si(c.measured, unit)
        return (f"{c.kind} {c.name}", measured, spec, frac)

    rows = [row(c, "FLOP/s") for c in roofline.compute.values()]
    rows += [row(c, "B/s") for c in roofline.memory.values()]
    if roofline.latency_s is not None:
        rows.append(("latency floor", format_si(roofline.latency_s, "s"), "-", "-"))
    slowest = min(roofline.memory.values(), key=lambda c: c.value).name
    caption = (
        f"{roofline.name}: ridge point {roofline.ridge_point:.3g} FLOP/B ({roofline.default_dtype} over {slowest})"
    )
    return Table(("ceiling", "measured", "spec", "measured / spec"), rows, caption=caption)


# --------------------------------------------------------------------------------------------------------------------
# Measurement (torch imported inside the functions).
# --------------------------------------------------------------------------------------------------------------------


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
        return roofline.classify(self.flops, self.bytes_moved, dtype=dtype).regime


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
        raise TypeError("workloads must be a sequence of efflab.kernels.Workload")
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
            f"tiny add ({tiny_numel})", torch.add, tiny[:2], elementwise_cost(tiny_numel, 4, 1, 2), {"out": tiny[2]}
        ),
        Workload("large add (16M)", torch.add, big[:2], elementwise_cost(n_big, 4, 1, 2), {"out": big[2]}),
        Workload(f"matmul {n_mm}^3", torch.matmul, (a, b), matmul_cost(n_mm, n_mm, n_mm, 4)),
    )


def kernel_workloads(device=None) -> tuple[Workload, ...]:
    """The low-reuse kernels of :func:`kernel_catalog`, in fp32 at sizes a 2-core CPU times in ~0.1 s each.

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


# A gain of the matmul from more cores below this is no gain at all on a shared VM (one busy neighbour costs ~30 %).
CORES_GAIN_FLOOR = 0.3
# Gains of the two ops within this much of each other (x1.28 and x1.24) are "alike": the second CPU, not the roofline,
# limited both.
ALIKE_GAIN = 0.1
# One core that moves the add's bytes at under this fraction of the measured DRAM bandwidth cannot saturate memory.
ONE_CORE_BANDWIDTH_SHARE = 0.7


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
            threads_scale_now(_torch_threads())
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


# An op counts as beating its bound when it runs more than this much faster than the iron law allows: the ceilings
# are the best of a few repeats and the ops medians, so a few percent either way is the measurement's own spread.
BOUND_TOLERANCE = 0.1
# An op under this many dispatch floors is overhead-dominated (claims.overhead_dominated uses the same factor).
OVERHEAD_FACTOR = 10
# STREAM's rule: each array must be at least 4x the last-level cache for the bytes to come from main memory
# (McCalpin, STREAM FAQ; chapters/references.md).
STREAM_LLC_FACTOR = 4


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
        return max(self.terms, key=self.terms.get)

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
    terms = {level: c.memory_time_s, roofline.default_dtype: c.compute_time_s}
    if op.exps:
        if exp_per_s is None:
            raise ValueError(f"{op.label} computes {op.exps:.3g} exponentials: pass exp_per_s (exp/s, > 0)")
        terms["exp"] = op.exps / float(v.positive(exp_per_s, "exp_per_s", "exp/s"))
    latency = roofline.latency_s or 0.0
    terms["latency"] = latency
    return OpBound(level, max(t for k, t in terms.items() if k != "latency") + latency, MappingProxyType(terms))


def bound_claim(ops, roofline: Roofline, caches: Mapping | None = None, exp_per_s=None, cpu_times_before=None):
    """The roofline's promise, judged on measured ops (:mod:`efflab.claims`): no op runs faster than its iron-law
    bound (:func:`op_bound`: the memory level its data lives in, the compute peak, the exp rate), within
    ``BOUND_TOLERANCE``.

    Diagnoses, in this order: the op is overhead-dominated (its bound is the dispatch floor, measured separately);
    its working set is under STREAM's 4x the last-level cache, so part of it stays cached between repeats although
    it does not fit whole; the hypervisor took the vCPUs (steal); other processes used the cores.

    Examples
    --------
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
            speed_drift(roofline) if share > 1 + BOUND_TOLERANCE and op.flops > 0 else reason(False, "not needed"),
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


# Drift check: a matmul this size (512^3: 268 MFLOP, ~5-10 ms on one 2020s core) timed now, against the fp32 ceiling.
DRIFT_MATMUL_N = 512
DRIFT_ABOVE = 0.1  # faster than the ceiling by more than this: the machine's speed changed since it was measured


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


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


# An op "sits under its roof" when it reaches at least this share of its iron-law bound (MLSysBook's MFU fail line).
UNDER_ROOF_SHARE = 0.3


def regimes_claim(ops, roofline: Roofline, expected=("latency", "memory", "compute"), cpu_times_before=None):
    """The introduction's expectation for :func:`regime_workloads`, judged on their measurements
    (:mod:`efflab.claims`): the three probes land in the three regimes, each at ``UNDER_ROOF_SHARE`` or more of
    its own iron-law bound (the tiny add at the dispatch floor, the large add under the memory roof, the matmul
    under the compute roof).

    Diagnoses: the machine got faster since its ceilings were measured (:func:`speed_drift`, measured only when an
    op beat its bound); the hypervisor took the vCPUs (steal); other processes used the cores (an op far below its
    roof on an idle machine is unexplained: the roofline or the op's cost would be wrong).

    Examples
    --------
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
            speed_drift(roofline) if above else reason(False, "not needed"),
            hypervisor_steal(cpu_times_before, after),
            others_busy(cpu_times_before, after),
            cores_contended(),
        ],
    )


# Lab 1's levers: batching "works" on the memory-bound op when it gains at least this much and twice what it gains
# the compute-bound op (one thread's ridge caps the gain: 32 rows reach ~16 FLOP/B, past a CPU's ridge of a few
# FLOP/B, so x3 on a Zen 1 core and x6 on a faster one), and is "wasted" on the compute-bound one inside this band;
# more FLOP/s "works" above CORES_GAIN_FLOOR (x1.3).
BATCHING_GAIN_ABOVE = 1.5
WASTED_GAIN_BAND = (0.8, 1.25)


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
                batching_flat_now((int(items[1, 0]), int(items[1, 1])), int(items[1, 0]))
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
                threads_scale_now(threads)
                if b_cmp <= 1 + CORES_GAIN_FLOOR and threads and threads > 1 and b_mem <= 1 + CORES_GAIN_FLOOR
                else reason(False, "not needed"),
            ],
        ),
    )
