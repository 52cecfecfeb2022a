"""The Arithmetic Intensity Law: roofline, iron law, regime and the cost of common ML operators.

A kernel that performs ``O`` FLOPs while moving ``D_vol`` bytes between memory and the chip has arithmetic intensity
``I = O / D_vol`` (FLOP/byte). On a machine with peak compute ``R_peak`` (FLOP/s) and memory bandwidth ``BW``
(bytes/s) it can attain at most::

    R(I) = min(R_peak, I * BW)                                     (roofline)

and takes at least::

    T = max(D_vol / BW, O / (R_peak * eta_hw)) + L_lat             (iron law, transfer and compute overlapped)
    T = D_vol / BW + O / (R_peak * eta_hw) + L_lat                 (iron law, serialized)

The largest of the three terms names the regime (memory-, compute- or latency-bound) and so the remedy that works.
The ridge point ``I* = R_peak / BW`` separates the memory-bound side (``I < I*``) from the compute-bound side.

Conventions used by the op-cost helpers: a fused multiply-add counts as 2 FLOPs (as ``torch.utils.flop_counter``
counts), and bytes are the *compulsory* traffic: each input read once from main memory and each output written once,
as if on-chip caches were large enough for all reuse. Real kernels move at least this much, so the intensity they
return is an upper bound and the time a lower bound.

References: S. Williams, A. Waterman, D. Patterson, "Roofline: an insightful visual performance model for multicore
architectures", CACM 52(4), 2009; the source book's Part III, Principle 2 and its Table 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from efflab import _validate as v

__all__ = [
    "DTYPE_BYTES",
    "LAYERNORM_AFFINE_FLOPS_PER_ELEMENT",
    "LAYERNORM_FLOPS_PER_ELEMENT",
    "LAYERNORM_FLOPS_PER_ROW",
    "SOFTMAX_FLOPS_PER_ELEMENT",
    "Ceiling",
    "Classification",
    "OpCost",
    "Remedies",
    "Roofline",
    "arithmetic_intensity",
    "attainable_flops_per_s",
    "attention_cost",
    "classify",
    "conv2d_cost",
    "elementwise_cost",
    "embedding_cost",
    "iron_law_time_s",
    "layernorm_cost",
    "matmul_cost",
    "remedies",
    "ridge_point",
    "softmax_cost",
]

REGIMES = ("memory", "compute", "latency")


def _broadcast(**arrays: np.ndarray) -> list[np.ndarray]:
    """Broadcast validated arrays, naming the arguments when their shapes do not fit together."""
    try:
        return list(np.broadcast_arrays(*arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{name} {np.shape(a)}" for name, a in arrays.items())
        raise ValueError(f"arguments must broadcast together like numpy arrays; got shapes {shapes}") from None


def _bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def arithmetic_intensity(flops, bytes_moved):
    """Arithmetic intensity of a kernel, ``I = O / D_vol`` in FLOP/byte.

    Parameters
    ----------
    flops : float or array_like
        Floating-point operations ``O`` performed (FLOP, >= 0; an FMA counts 2).
    bytes_moved : float or array_like
        Bytes ``D_vol`` moved between main memory and the chip (bytes, > 0).

    Returns
    -------
    float or ndarray
        Intensity in FLOP/byte.

    References
    ----------
    Williams, Waterman, Patterson, CACM 2009.

    Examples
    --------
    A 4096^3 fp16 matmul: 2*4096^3 FLOPs over 3*4096^2*2 bytes.

    >>> round(arithmetic_intensity(2 * 4096**3, 3 * 4096**2 * 2), 1)
    1365.3
    """
    flops = v.nonnegative(flops, "flops", "FLOP")
    bytes_moved = v.positive(bytes_moved, "bytes_moved", "bytes")
    flops, bytes_moved = _broadcast(flops=flops, bytes_moved=bytes_moved)
    return v.scalar_or_array(flops / bytes_moved)


def ridge_point(peak_flops_per_s, bandwidth_bytes_per_s):
    """Ridge point of a roofline, ``I* = R_peak / BW`` in FLOP/byte.

    Kernels below ``I*`` are memory-bound; above it they can be compute-bound.

    Parameters
    ----------
    peak_flops_per_s : float or array_like
        Peak compute ``R_peak`` (FLOP/s, > 0).
    bandwidth_bytes_per_s : float or array_like
        Memory bandwidth ``BW`` (bytes/s, > 0; decimal: 3.35 TB/s is 3.35e12).

    Returns
    -------
    float or ndarray
        The intensity in FLOP/byte where the two roofs meet.

    Examples
    --------
    H100 SXM, dense bf16 (989.4 TFLOP/s) over HBM3 (3.35 TB/s):

    >>> round(ridge_point(989.4e12, 3.35e12), 1)
    295.3
    """
    peak = v.positive(peak_flops_per_s, "peak_flops_per_s", "FLOP/s")
    bw = v.positive(bandwidth_bytes_per_s, "bandwidth_bytes_per_s", "bytes/s")
    peak, bw = _broadcast(peak_flops_per_s=peak, bandwidth_bytes_per_s=bw)
    return v.scalar_or_array(peak / bw)


def attainable_flops_per_s(intensity, peak_flops_per_s, bandwidth_bytes_per_s):
    """Attainable throughput under the roofline, ``R(I) = min(R_peak, I * BW)`` in FLOP/s.

    Parameters
    ----------
    intensity : float or array_like
        Arithmetic intensity ``I`` (FLOP/byte, >= 0).
    peak_flops_per_s : float or array_like
        Peak compute ``R_peak`` (FLOP/s, > 0).
    bandwidth_bytes_per_s : float or array_like
        Memory bandwidth ``BW`` (bytes/s, > 0).

    Returns
    -------
    float or ndarray
        The best FLOP/s a kernel of that intensity can reach.

    Examples
    --------
    On an H100 (bf16), a kernel at 10 FLOP/B is held to 33.5 TFLOP/s; one at 1000 FLOP/B reaches the peak.

    >>> attainable_flops_per_s([10.0, 1000.0], 989.4e12, 3.35e12) / 1e12
    array([ 33.5, 989.4])
    """
    intensity = v.nonnegative(intensity, "intensity", "FLOP/byte")
    peak = v.positive(peak_flops_per_s, "peak_flops_per_s", "FLOP/s")
    bw = v.positive(bandwidth_bytes_per_s, "bandwidth_bytes_per_s", "bytes/s")
    intensity, peak, bw = _broadcast(intensity=intensity, peak_flops_per_s=peak, bandwidth_bytes_per_s=bw)
    return v.scalar_or_array(np.minimum(peak, intensity * bw))


def _terms(flops, bytes_moved, peak_flops_per_s, bandwidth_bytes_per_s, efficiency, latency_s, bytes_low_open=False):
    flops = v.nonnegative(flops, "flops", "FLOP")
    if bytes_low_open:
        bytes_moved = v.positive(bytes_moved, "bytes_moved", "bytes")
    else:
        bytes_moved = v.nonnegative(bytes_moved, "bytes_moved", "bytes")
    peak = v.positive(peak_flops_per_s, "peak_flops_per_s", "FLOP/s")
    bw = v.positive(bandwidth_bytes_per_s, "bandwidth_bytes_per_s", "bytes/s")
    efficiency = v.fraction(efficiency, "efficiency", open_low=True)
    latency_s = v.nonnegative(latency_s, "latency_s", "s")
    arrays = _broadcast(
        flops=flops,
        bytes_moved=bytes_moved,
        peak_flops_per_s=peak,
        bandwidth_bytes_per_s=bw,
        efficiency=efficiency,
        latency_s=latency_s,
    )
    flops, bytes_moved, peak, bw, efficiency, latency_s = arrays
    return flops, bytes_moved, peak, bw, efficiency, latency_s, bytes_moved / bw, flops / (peak * efficiency)


def iron_law_time_s(
    flops,
    bytes_moved,
    peak_flops_per_s,
    bandwidth_bytes_per_s,
    efficiency=1.0,
    latency_s=0.0,
    overlap: bool = True,
):
    """Lower bound on a kernel's run time from the iron law, in seconds.

    ``T = max(D_vol/BW, O/(R_peak*eta)) + L_lat`` when transfer and compute overlap, and
    ``T = D_vol/BW + O/(R_peak*eta) + L_lat`` when they are serialized.

    Parameters
    ----------
    flops : float or array_like
        Operations ``O`` (FLOP, >= 0).
    bytes_moved : float or array_like
        Bytes ``D_vol`` moved to and from main memory (bytes, >= 0).
    peak_flops_per_s, bandwidth_bytes_per_s : float or array_like
        ``R_peak`` (FLOP/s, > 0) and ``BW`` (bytes/s, > 0).
    efficiency : float or array_like
        Fraction ``eta_hw`` of the compute peak the kernel reaches (0 < eta <= 1).
    latency_s : float or array_like
        Fixed dispatch/launch latency ``L_lat`` (s, >= 0).
    overlap : bool
        Whether transfer and compute overlap (max) or serialize (sum).

    Returns
    -------
    float or ndarray
        Time in seconds.

    References
    ----------
    The source book, Part III, Principle 2 (the iron law of a workload).

    Examples
    --------
    A 7B-parameter fp16 model reads 14e9 bytes of weights per token on an H100 (3.35 TB/s): >= 4.18 ms/token.

    >>> round(iron_law_time_s(2 * 7e9, 14e9, 989.4e12, 3.35e12) * 1e3, 2)
    4.18
    """
    overlap = _bool(overlap, "overlap")
    *_, latency_s, memory_s, compute_s = _terms(
        flops, bytes_moved, peak_flops_per_s, bandwidth_bytes_per_s, efficiency, latency_s
    )
    body = np.maximum(memory_s, compute_s) if overlap else memory_s + compute_s
    return v.scalar_or_array(body + latency_s)


@dataclass(frozen=True)
class Classification:
    """Which iron-law term dominates a kernel, with every term in seconds (arrays when the inputs were arrays).

    ``regime`` is the largest of ``memory_time_s = D_vol/BW``, ``compute_time_s = O/(R_peak*eta)`` and ``latency_s``;
    ties go to the first in the order memory, compute, latency.
    """

    regime: str | np.ndarray
    memory_time_s: float | np.ndarray
    compute_time_s: float | np.ndarray
    latency_s: float | np.ndarray
    time_s: float | np.ndarray
    intensity_flops_per_byte: float | np.ndarray
    ridge_point_flops_per_byte: float | np.ndarray
    flops: float | np.ndarray
    bytes_moved: float | np.ndarray
    peak_flops_per_s: float | np.ndarray
    bandwidth_bytes_per_s: float | np.ndarray
    efficiency: float | np.ndarray

    @property
    def attainable_flops_per_s(self) -> float | np.ndarray:
        """``flops / time_s``: the throughput the iron law allows, latency included (FLOP/s)."""
        return v.scalar_or_array(np.asarray(self.flops) / np.asarray(self.time_s))

    @property
    def remedies(self) -> Remedies:
        """The source book's table row for this regime (scalar inputs only)."""
        if not isinstance(self.regime, str):
            raise TypeError("remedies needs a scalar classification; call remedies(regime) per element")
        return remedies(self.regime)


def classify(flops, bytes_moved, peak_flops_per_s, bandwidth_bytes_per_s, latency_s=0.0, efficiency=1.0):
    """Classify a kernel as memory-, compute- or latency-bound by its largest iron-law term.

    ``regime = argmax(D_vol/BW, O/(R_peak*eta), L_lat)``; ``time_s`` is the overlapped iron law.

    Parameters
    ----------
    flops : float or array_like
        Operations ``O`` (FLOP, >= 0).
    bytes_moved : float or array_like
        Bytes ``D_vol`` moved (bytes, > 0: every kernel reads or writes something).
    peak_flops_per_s, bandwidth_bytes_per_s : float or array_like
        ``R_peak`` (FLOP/s, > 0) and ``BW`` (bytes/s, > 0).
    latency_s : float or array_like
        Dispatch latency ``L_lat`` (s, >= 0).
    efficiency : float or array_like
        ``eta_hw`` (0 < eta <= 1).

    Returns
    -------
    Classification
        Regime and each term in seconds; for array inputs ``regime`` is an array of str.

    Examples
    --------
    7B fp16 decode at batch 1 on an H100 is memory-bound; a 10 us launch makes a tiny add latency-bound.

    >>> classify(2 * 7e9, 14e9, 989.4e12, 3.35e12).regime
    'memory'
    >>> classify(4096, 3 * 4096 * 4, 989.4e12, 3.35e12, latency_s=10e-6).regime
    'latency'
    """
    flops, bytes_moved, peak, bw, efficiency, latency_s, memory_s, compute_s = _terms(
        flops, bytes_moved, peak_flops_per_s, bandwidth_bytes_per_s, efficiency, latency_s, bytes_low_open=True
    )
    index = np.argmax(np.stack([memory_s, compute_s, latency_s]), axis=0)
    regime = np.asarray(REGIMES)[index]
    out = v.scalar_or_array
    return Classification(
        regime=str(regime) if regime.ndim == 0 else regime,
        memory_time_s=out(memory_s),
        compute_time_s=out(compute_s),
        latency_s=out(latency_s),
        time_s=out(np.maximum(memory_s, compute_s) + latency_s),
        intensity_flops_per_byte=out(flops / bytes_moved),
        ridge_point_flops_per_byte=out(peak / bw),
        flops=out(flops),
        bytes_moved=out(bytes_moved),
        peak_flops_per_s=out(peak),
        bandwidth_bytes_per_s=out(bw),
        efficiency=out(efficiency),
    )


@dataclass(frozen=True)
class Remedies:
    """What works and what is wasted for one regime (the source book's Table 1)."""

    regime: str
    dominant_term: str
    works: tuple[str, ...]
    wasted: tuple[str, ...]


# The source book, Part III, Table 1: the bottleneck, its dominant iron-law term, the optimization that works and the
# one that is wasted.
_TABLE = {
    "memory": Remedies(
        "memory",
        "D_vol/BW",
        ("quantization", "pruning", "batching"),
        ("faster GPU (more FLOP/s)",),
    ),
    "compute": Remedies(
        "compute",
        "O/(R_peak*eta_hw)",
        ("better kernels", "Tensor Cores", "faster GPU"),
        ("more memory bandwidth",),
    ),
    "latency": Remedies(
        "latency",
        "L_lat",
        ("kernel fusion", "async dispatch", "bounded micro-batching under the latency SLO"),
        ("more FLOP/s or bandwidth alone",),
    ),
}


def remedies(regime: str) -> Remedies:
    """The optimizations that work and those that are wasted for a regime (the source book's Table 1).

    Parameters
    ----------
    regime : {"memory", "compute", "latency"}
        Also accepted with a "-bound" suffix, any case.

    Returns
    -------
    Remedies
        ``regime``, ``dominant_term`` (the iron-law term), ``works`` and ``wasted``.

    Examples
    --------
    >>> remedies("memory").wasted
    ('faster GPU (more FLOP/s)',)
    >>> remedies("Compute-bound").works
    ('better kernels', 'Tensor Cores', 'faster GPU')
    """
    if isinstance(regime, str) and regime.strip().lower().endswith("-bound"):
        regime = regime.strip()[: -len("-bound")]
    return _TABLE[v.choice(regime, "regime", REGIMES)]


@dataclass(frozen=True)
class Ceiling:
    """One roof: a compute peak for a dtype (FLOP/s) or a bandwidth for a memory level (bytes/s)."""

    name: str
    kind: str
    value: float
    spec: float | None = None
    measured: float | None = None
    source: str = ""
    estimated: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string; got {self.name!r}")
        kind = v.choice(self.kind, "kind", ("compute", "memory"))
        unit = "FLOP/s" if kind == "compute" else "bytes/s"
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "value", float(v.positive(self.value, "value", unit)))
        for attr in ("spec", "measured"):
            if getattr(self, attr) is not None:
                object.__setattr__(self, attr, float(v.positive(getattr(self, attr), attr, unit)))
        if not isinstance(self.source, str):
            raise TypeError(f"source must be a string; got {type(self.source).__name__}")
        object.__setattr__(self, "estimated", _bool(self.estimated, "estimated"))

    @property
    def fraction_of_spec(self) -> float | None:
        """``measured / spec`` (None when either is missing)."""
        if self.measured is None or self.spec is None:
            return None
        return self.measured / self.spec


def _ceilings(mapping, name: str, kind: str) -> Mapping[str, Ceiling]:
    if not isinstance(mapping, Mapping) or not mapping:
        raise TypeError(f"{name} must be a non-empty mapping of name -> Ceiling (or number); got {mapping!r}")
    out = {}
    for key, ceiling in mapping.items():
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be strings; got {key!r}")
        if not isinstance(ceiling, Ceiling):
            ceiling = Ceiling(key, kind, ceiling, spec=ceiling)
        if ceiling.kind != kind:
            raise ValueError(f"{name}[{key!r}] must be a {kind} ceiling; got kind {ceiling.kind!r}")
        out[key] = ceiling
    return MappingProxyType(out)


@dataclass(frozen=True)
class Roofline:
    """A roofline with one or more compute ceilings (per dtype) and memory ceilings (per level).

    ``attainable(I) = min(R_peak[dtype], I * BW[level])``; the default level is the slowest memory ceiling, which sets
    the roof for data that does not fit on chip. Plain numbers are accepted in place of ``Ceiling`` objects.

    Examples
    --------
    >>> roof = Roofline(compute={"bf16": 989.4e12}, memory={"dram": 3.35e12}, name="H100 SXM")
    >>> round(roof.ridge_point, 1)
    295.3
    >>> roof.classify(2 * 7e9, 14e9).regime
    'memory'
    """

    compute: Mapping[str, Ceiling]
    memory: Mapping[str, Ceiling]
    latency_s: float | None = None
    name: str = ""
    default_dtype: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "compute", _ceilings(self.compute, "compute", "compute"))
        object.__setattr__(self, "memory", _ceilings(self.memory, "memory", "memory"))
        if self.latency_s is not None:
            object.__setattr__(self, "latency_s", float(v.nonnegative(self.latency_s, "latency_s", "s")))
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string; got {type(self.name).__name__}")
        if self.default_dtype is None:
            object.__setattr__(self, "default_dtype", next(iter(self.compute)))
        else:
            object.__setattr__(self, "default_dtype", self._key(self.default_dtype, self.compute, "default_dtype"))

    @staticmethod
    def _key(key, mapping, name):
        if not isinstance(key, str):
            raise TypeError(f"{name} must be a string, one of {list(mapping)}; got {key!r}")
        if key in mapping:
            return key
        return v.choice(key, name, list(mapping))

    def peak_flops_per_s(self, dtype: str | None = None) -> float:
        """Compute ceiling for ``dtype`` (FLOP/s); the default dtype when None."""
        return self.compute[self._key(dtype or self.default_dtype, self.compute, "dtype")].value

    def bandwidth_bytes_per_s(self, level: str | None = None) -> float:
        """Memory ceiling for ``level`` (bytes/s); the slowest level when None."""
        if level is None:
            return min(c.value for c in self.memory.values())
        return self.memory[self._key(level, self.memory, "level")].value

    def attainable(self, intensity, dtype: str | None = None, level: str | None = None):
        """``min(R_peak, I * BW)`` in FLOP/s for intensity in FLOP/byte; broadcasts."""
        return attainable_flops_per_s(intensity, self.peak_flops_per_s(dtype), self.bandwidth_bytes_per_s(level))

    def ridge(self, dtype: str | None = None, level: str | None = None) -> float:
        """Ridge point ``R_peak / BW`` for a dtype and memory level (FLOP/byte)."""
        return self.peak_flops_per_s(dtype) / self.bandwidth_bytes_per_s(level)

    @property
    def ridge_point(self) -> float:
        """Ridge point of the default dtype against the slowest memory level (FLOP/byte)."""
        return self.ridge()

    def time_s(self, flops, bytes_moved, dtype=None, level=None, efficiency=1.0, overlap=True):
        """Iron-law time in seconds on this roofline, adding ``latency_s`` when known."""
        return iron_law_time_s(
            flops,
            bytes_moved,
            self.peak_flops_per_s(dtype),
            self.bandwidth_bytes_per_s(level),
            efficiency=efficiency,
            latency_s=self.latency_s or 0.0,
            overlap=overlap,
        )

    def classify(self, flops, bytes_moved, dtype=None, level=None, efficiency=1.0) -> Classification:
        """Regime of a kernel on this roofline (see :func:`classify`), using ``latency_s`` when known."""
        return classify(
            flops,
            bytes_moved,
            self.peak_flops_per_s(dtype),
            self.bandwidth_bytes_per_s(level),
            latency_s=self.latency_s or 0.0,
            efficiency=efficiency,
        )

    @classmethod
    def from_device(cls, device) -> Roofline:
        """A spec-only roofline from a :class:`efflab.hardware.Device` catalog entry (main memory as "dram")."""
        sources = device.sources
        compute = {
            dtype: Ceiling(
                dtype,
                "compute",
                peak,
                spec=peak,
                source=sources.get(f"peak_flops_per_s.{dtype}", ""),
                estimated=device.estimated,
            )
            for dtype, peak in device.peak_flops_per_s.items()
        }
        memory = {
            "dram": Ceiling(
                "dram",
                "memory",
                device.bandwidth_bytes_per_s,
                spec=device.bandwidth_bytes_per_s,
                source=sources.get("bandwidth_bytes_per_s", ""),
                estimated=device.estimated,
            )
        }
        label = "estimated" if device.estimated else "datasheet"
        return cls(compute=compute, memory=memory, name=f"{device.name} ({label})")


# ---------------------------------------------------------------------------------------------------------------------
# Op costs. FLOP convention: a fused multiply-add is 2 FLOPs, as torch.utils.flop_counter.FlopCounterMode counts.
# Byte convention: compulsory traffic -- every input read once from main memory, every output written once, as if the
# on-chip caches held all reuse. Real kernels move at least this much.
# ---------------------------------------------------------------------------------------------------------------------

# Bytes per element for the package's dtype names; tf32 is stored in 32 bits, int4 packs two values per byte.
DTYPE_BYTES: Mapping[str, float] = MappingProxyType(
    {"fp64": 8, "fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "int8": 1, "int4": 0.5}
)


def _dtype_bytes(value, name: str = "dtype_bytes") -> float:
    if isinstance(value, str):
        return float(DTYPE_BYTES[v.choice(value, name, list(DTYPE_BYTES))])
    arr = v.positive(value, name, "bytes per element")
    if arr.ndim:
        raise ValueError(f"{name} must be a single number (bytes per element) or a dtype name; got shape {arr.shape}")
    return float(arr)


def _count(value, name: str, low: int = 1) -> int:
    return v.integer(value, name, "elements", low=low)


@dataclass(frozen=True)
class OpCost:
    """FLOPs and compulsory bytes of one operator (or, summed with ``+``, of a chain of unfused operators).

    Adding two costs adds both fields: the sum models the ops as separate kernels, each writing its output to memory
    and the next reading it back; fusing them removes that intermediate traffic.

    Examples
    --------
    >>> cost = OpCost(flops=2e9, bytes_moved=1e9) + OpCost(flops=0.0, bytes_moved=1e9)
    >>> cost.flops, cost.bytes_moved, cost.intensity_flops_per_byte
    (2000000000.0, 2000000000.0, 1.0)
    """

    flops: float
    bytes_moved: float

    def __post_init__(self):
        for attr, unit in (("flops", "FLOP"), ("bytes_moved", "bytes")):
            arr = v.nonnegative(getattr(self, attr), attr, unit)
            if arr.ndim:
                raise ValueError(f"{attr} must be a single number ({unit}); got shape {arr.shape}")
            object.__setattr__(self, attr, float(arr))

    @property
    def intensity_flops_per_byte(self) -> float:
        """``flops / bytes_moved`` (FLOP/byte); ValueError when no bytes move."""
        return arithmetic_intensity(self.flops, self.bytes_moved)

    def __add__(self, other: OpCost) -> OpCost:
        if not isinstance(other, OpCost):
            return NotImplemented
        return OpCost(self.flops + other.flops, self.bytes_moved + other.bytes_moved)

    def __radd__(self, other) -> OpCost:
        # sum(costs) starts from the integer 0.
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented


def matmul_cost(m: int, n: int, k: int, dtype_bytes=4, *, batch: int = 1) -> OpCost:
    """Cost of ``(m, k) @ (k, n)``, optionally batched: ``O = 2*b*m*n*k``, ``D_vol = b*(m*k + k*n + m*n)*s``.

    An FMA counts 2 FLOPs (as ``FlopCounterMode`` counts mm/bmm); bytes are compulsory traffic (A and B read once,
    C written once), so the intensity is the best any tiling can reach.

    Parameters
    ----------
    m, n, k : int
        Matrix dimensions (elements, >= 1).
    dtype_bytes : float or str
        Bytes per element ``s`` (e.g. 2 for bf16) or a dtype name ("bf16").
    batch : int
        Number of independent matmuls ``b`` (as in ``torch.bmm``).

    Returns
    -------
    OpCost
        FLOPs and bytes.

    Examples
    --------
    >>> c = matmul_cost(4096, 4096, 4096, "bf16")
    >>> c.flops, c.bytes_moved, round(c.intensity_flops_per_byte, 1)
    (137438953472.0, 100663296.0, 1365.3)
    """
    m, n, k = _count(m, "m"), _count(n, "n"), _count(k, "k")
    batch, size = _count(batch, "batch"), _dtype_bytes(dtype_bytes)
    return OpCost(2.0 * batch * m * n * k, batch * (m * k + k * n + m * n) * size)


def elementwise_cost(numel: int, dtype_bytes=4, flops_per_element=1, inputs: int = 1) -> OpCost:
    """Cost of an elementwise op: ``O = numel*f``, ``D_vol = (inputs + 1)*numel*s``.

    Compulsory traffic: each of ``inputs`` same-sized tensors read once, one output written once.

    Parameters
    ----------
    numel : int
        Elements in the output (>= 1).
    dtype_bytes : float or str
        Bytes per element ``s`` or a dtype name.
    flops_per_element : float
        FLOPs per output element ``f`` (>= 0; 1 for add or ReLU, 0 for a copy).
    inputs : int
        Number of input tensors read (>= 0).

    Examples
    --------
    ``x + y`` on 1e6 fp32 elements: 1 FLOP per 12 bytes, deep in memory-bound territory.

    >>> c = elementwise_cost(10**6, 4, flops_per_element=1, inputs=2)
    >>> c.flops, c.bytes_moved
    (1000000.0, 12000000.0)
    """
    numel, size = _count(numel, "numel"), _dtype_bytes(dtype_bytes)
    f = v.nonnegative(flops_per_element, "flops_per_element", "FLOP per element")
    if f.ndim:
        raise ValueError(f"flops_per_element must be a single number; got shape {f.shape}")
    inputs = v.integer(inputs, "inputs", "tensors", low=0)
    return OpCost(numel * float(f), (inputs + 1) * numel * size)


def _pair(value, name: str, low: int) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (height, width); got {value!r}")
        return v.integer(value[0], name, "elements", low=low), v.integer(value[1], name, "elements", low=low)
    value = v.integer(value, name, "elements", low=low)
    return value, value


def conv2d_cost(
    batch: int,
    in_channels: int,
    out_channels: int,
    height: int,
    width: int,
    kernel_size,
    stride=1,
    padding=0,
    groups: int = 1,
    dtype_bytes=4,
    bias: bool = False,
) -> OpCost:
    """Cost of a 2-D convolution on an NCHW input.

    ``O = 2*N*C_out*H_out*W_out*(C_in/groups)*k_h*k_w`` (+ ``N*C_out*H_out*W_out`` bias adds, which
    ``FlopCounterMode`` does not count); ``D_vol = (N*C_in*H*W + C_out*(C_in/groups)*k_h*k_w [+ C_out]
    + N*C_out*H_out*W_out) * s`` -- compulsory traffic: input, weights (and bias) read once, output written once;
    padding zeros are never read. ``H_out = (H + 2*p_h - k_h) // stride_h + 1``.

    Parameters
    ----------
    batch, in_channels, out_channels, height, width : int
        Input shape and output channels (>= 1).
    kernel_size, stride : int or (int, int)
        Kernel and stride (>= 1).
    padding : int or (int, int)
        Zero padding on each side (>= 0).
    groups : int
        Channel groups; ``groups == in_channels`` is a depthwise convolution.
    dtype_bytes : float or str
        Bytes per element ``s`` or a dtype name.
    bias : bool
        Whether a bias is added.

    Examples
    --------
    A depthwise 3x3 convolution has about 2 FLOP/byte -- memory-bound on any accelerator, as the source book notes:

    >>> c = conv2d_cost(1, 256, 256, 56, 56, 3, padding=1, groups=256)
    >>> c.flops, round(c.intensity_flops_per_byte, 2)
    (14450688.0, 2.25)
    """
    batch, c_in, c_out = (
        _count(batch, "batch"),
        _count(in_channels, "in_channels"),
        _count(out_channels, "out_channels"),
    )
    height, width = _count(height, "height"), _count(width, "width")
    (kh, kw), (sh, sw) = _pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    groups, size, bias = _count(groups, "groups"), _dtype_bytes(dtype_bytes), _bool(bias, "bias")
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups must divide in_channels ({c_in}) and out_channels ({c_out}); got {groups}")
    h_out, w_out = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(
            f"kernel_size ({kh}, {kw}) must fit the padded input ({height + 2 * ph}, {width + 2 * pw}) (in elements)"
        )
    outputs = batch * c_out * h_out * w_out
    weights = c_out * (c_in // groups) * kh * kw
    flops = 2.0 * outputs * (c_in // groups) * kh * kw + (outputs if bias else 0)
    return OpCost(flops, (batch * c_in * height * width + weights + (c_out if bias else 0) + outputs) * size)


def _causal_pairs(seq_len: int, kv_seq_len: int) -> int:
    # torch's is_causal mask is top-left aligned: query i sees keys 0..i, so sum_i min(i + 1, kv_seq_len).
    if seq_len <= kv_seq_len:
        return seq_len * (seq_len + 1) // 2
    return kv_seq_len * (kv_seq_len + 1) // 2 + (seq_len - kv_seq_len) * kv_seq_len


def attention_cost(
    batch: int,
    heads: int,
    seq_len: int,
    head_dim: int,
    kv_seq_len: int | None = None,
    dtype_bytes=2,
    causal: bool = False,
    kv_heads: int | None = None,
) -> OpCost:
    """Cost of scaled dot-product attention ``softmax(Q K^T / sqrt(d)) V`` in the fused (flash) view.

    ``O = 4*b*h*P*d`` with ``P = s*s_kv`` score pairs (``Q K^T`` and ``P V``, 2 FLOPs per FMA, as ``FlopCounterMode``
    counts SDPA; the softmax is not counted). With ``causal`` only the unmasked pairs are counted (torch's top-left
    aligned mask), which ``FlopCounterMode`` does not do. ``D_vol = b*d*(2*h*s + 2*h_kv*s_kv)*s_bytes``: Q, K, V read
    once and O written once; the score matrix never reaches memory, as in a fused (flash) kernel. An unfused kernel
    also writes and reads the ``b*h*s*s_kv`` scores.

    Parameters
    ----------
    batch, heads, seq_len, head_dim : int
        ``b``, ``h`` query heads, ``s`` query positions, ``d`` (>= 1).
    kv_seq_len : int, optional
        Key/value positions ``s_kv`` (defaults to ``seq_len``; a decode step has ``seq_len=1``, ``causal=False``).
    dtype_bytes : float or str
        Bytes per element or a dtype name.
    causal : bool
        Count only query/key pairs the causal mask keeps.
    kv_heads : int, optional
        Key/value heads ``h_kv`` for grouped-query attention (must divide ``heads``; defaults to ``heads``).

    Examples
    --------
    One decode step against a 4096-token fp16 KV cache does about 1 FLOP per byte:

    >>> c = attention_cost(1, 32, 1, 128, kv_seq_len=4096, dtype_bytes="fp16")
    >>> c.flops, round(c.intensity_flops_per_byte, 3)
    (67108864.0, 1.0)
    """
    batch, heads, seq_len = _count(batch, "batch"), _count(heads, "heads"), _count(seq_len, "seq_len")
    head_dim, size, causal = _count(head_dim, "head_dim"), _dtype_bytes(dtype_bytes), _bool(causal, "causal")
    kv_seq_len = seq_len if kv_seq_len is None else _count(kv_seq_len, "kv_seq_len")
    kv_heads = heads if kv_heads is None else _count(kv_heads, "kv_heads")
    if heads % kv_heads:
        raise ValueError(f"kv_heads must divide heads ({heads}); got {kv_heads}")
    pairs = _causal_pairs(seq_len, kv_seq_len) if causal else seq_len * kv_seq_len
    flops = 4.0 * batch * heads * pairs * head_dim
    return OpCost(flops, batch * head_dim * (2 * heads * seq_len + 2 * kv_heads * kv_seq_len) * size)


def embedding_cost(num_tokens: int, embedding_dim: int, dtype_bytes=4, index_bytes: int = 8) -> OpCost:
    """Cost of an embedding lookup: ``O = 0``, ``D_vol = t*i + 2*t*e*s``.

    No arithmetic: ``t`` indices of ``i`` bytes are read, ``t`` rows of ``e`` elements gathered, and the ``(t, e)``
    output written. Compulsory traffic counts one gathered row per token; repeated tokens may hit in cache, so for
    highly repetitive text this is an upper bound on what reaches DRAM.

    Parameters
    ----------
    num_tokens, embedding_dim : int
        ``t`` lookups and row length ``e`` (>= 1).
    dtype_bytes : float or str
        Bytes per table element ``s`` or a dtype name.
    index_bytes : int
        Bytes per index ``i`` (8 for int64, torch's default).

    Examples
    --------
    >>> embedding_cost(2048, 4096, "bf16")
    OpCost(flops=0.0, bytes_moved=33570816.0)
    """
    tokens, dim, size = (
        _count(num_tokens, "num_tokens"),
        _count(embedding_dim, "embedding_dim"),
        _dtype_bytes(dtype_bytes),
    )
    index_bytes = v.integer(index_bytes, "index_bytes", "bytes", low=1)
    return OpCost(0.0, tokens * index_bytes + 2.0 * tokens * dim * size)


# FLOPs per element of a numerically stable softmax: running max (1 compare), x - max (1), exp (1), running sum (1
# add), divide by the sum (1). exp costs several instructions in hardware; one FLOP per transcendental is the usual
# counting convention (FlopCounterMode counts softmax as 0).
SOFTMAX_FLOPS_PER_ELEMENT = 5


def softmax_cost(numel: int, dtype_bytes=4) -> OpCost:
    """Cost of a softmax over ``numel`` elements: ``O = 5*numel``, ``D_vol = 2*numel*s``.

    Five FLOPs per element: max, subtract, exp, sum, divide (see ``SOFTMAX_FLOPS_PER_ELEMENT``). Compulsory traffic
    assumes a fused one-pass (online) kernel: input read once, output written once; a naive three-pass kernel reads the
    input up to three times.

    Parameters
    ----------
    numel : int
        Elements (>= 1).
    dtype_bytes : float or str
        Bytes per element ``s`` or a dtype name.

    Examples
    --------
    >>> c = softmax_cost(10**6, "fp32")
    >>> c.flops, c.bytes_moved, c.intensity_flops_per_byte
    (5000000.0, 8000000.0, 0.625)
    """
    numel = _count(numel, "numel")
    return OpCost(SOFTMAX_FLOPS_PER_ELEMENT * float(numel), 2.0 * numel * _dtype_bytes(dtype_bytes))


# Layer norm FLOPs: per element 5 (sum for the mean, subtract the mean, square, sum for the variance, multiply by
# 1/sigma) plus 2 with the affine transform (scale, shift); per row 4 (mean = sum/n, var = sum/n, var + eps, rsqrt).
LAYERNORM_FLOPS_PER_ELEMENT = 5
LAYERNORM_AFFINE_FLOPS_PER_ELEMENT = 2
LAYERNORM_FLOPS_PER_ROW = 4


def layernorm_cost(numel: int, normalized_size: int, dtype_bytes=4, affine: bool = True) -> OpCost:
    """Cost of layer normalization over the last ``n = normalized_size`` elements.

    ``O = numel*(5 + 2*affine) + 4*numel/n``; ``D_vol = (2*numel + 2*n*affine)*s`` -- compulsory traffic: input read
    once, output written once, weight and bias read once (see the ``LAYERNORM_*`` constants for the FLOP count).

    Parameters
    ----------
    numel : int
        Total elements (>= 1, a multiple of ``normalized_size``).
    normalized_size : int
        Elements per normalized row ``n`` (>= 1).
    dtype_bytes : float or str
        Bytes per element ``s`` or a dtype name.
    affine : bool
        Whether a learned scale and shift are applied.

    Examples
    --------
    >>> layernorm_cost(1024 * 4096, 4096, "bf16")
    OpCost(flops=29364224.0, bytes_moved=16793600.0)
    """
    numel, n = _count(numel, "numel"), _count(normalized_size, "normalized_size")
    size, affine = _dtype_bytes(dtype_bytes), _bool(affine, "affine")
    if numel % n:
        raise ValueError(f"numel must be a multiple of normalized_size ({n}); got {numel}")
    per_element = LAYERNORM_FLOPS_PER_ELEMENT + (LAYERNORM_AFFINE_FLOPS_PER_ELEMENT if affine else 0)
    flops = float(numel * per_element + LAYERNORM_FLOPS_PER_ROW * (numel // n))
    return OpCost(flops, (2.0 * numel + (2 * n if affine else 0)) * size)
