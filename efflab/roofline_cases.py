"""Roofline cases on datasheets: operators at the sizes of real models placed against catalog GPUs, analytically.

One job: the worked cases of the roofline chapter (``chapters/03_roofline``; the decode floor also in
``chapters/01_introduction``), computed from costs (:mod:`efflab.opcost`) and datasheets (:mod:`efflab.hardware`),
with no measurement and no torch:

- :func:`kernel_catalog` -- the operators MLSysBook names as memory-bound (embedding lookup, normalization,
  softmax, depthwise convolution, small-batch inference) beside high-reuse contrasts, at Llama-2-7B and MobileNetV2
  sizes, as :class:`KernelCase`; :func:`unit_classify` places one on the unit that runs it (Tensor Cores, vector
  units, special-function units).
- :func:`memory_wall` and :func:`annual_growth` -- ridge points of the hardware catalog by launch year: peak FLOP/s
  has grown faster than bandwidth, so the ridge rises and more kernels fall on the memory side.
- :func:`decode_floor` -- the bandwidth floor of one batch-1 decode step (every weight read once per token).

The measured counterparts of these kernels are in :mod:`efflab.op_bench` (``kernel_workloads``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from efflab import _validate as v
from efflab.opcost import (
    DTYPE_BYTES,
    OpCost,
    attention_cost,
    conv2d_cost,
    embedding_cost,
    layernorm_cost,
    matmul_cost,
    softmax_cost,
)

__all__ = [
    "DecodeFloor",
    "KernelCase",
    "MemoryWallRow",
    "UnitClassification",
    "annual_growth",
    "decode_floor",
    "kernel_catalog",
    "memory_wall",
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
        from efflab.hardware import CATALOG

        devices = CATALOG
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
