"""The Arithmetic Intensity Law: roofline, iron law, regime and the remedy that works in each regime.

A kernel that performs ``O`` FLOPs while moving ``D_vol`` bytes between memory and the chip has arithmetic intensity
``I = O / D_vol`` (FLOP/byte). On a machine with peak compute ``R_peak`` (FLOP/s) and memory bandwidth ``BW``
(bytes/s) it can attain at most::

    R(I) = min(R_peak, I * BW)                                     (roofline)

and takes at least::

    T = max(D_vol / BW, O / (R_peak * eta_hw)) + L_lat             (iron law, transfer and compute overlapped)
    T = D_vol / BW + O / (R_peak * eta_hw) + L_lat                 (iron law, serialized)

The largest of the three terms names the regime (memory-, compute- or latency-bound) and so the remedy that works.
The ridge point ``I* = R_peak / BW`` separates the memory-bound side (``I < I*``) from the compute-bound side.

One vocabulary for it, in FLOP/byte: ``ridge_point(peak, bw)`` of two numbers; ``Roofline.ridge(dtype, level)`` and
``Device.ridge(dtype)`` for a chosen ceiling pair; ``Roofline.ridge_point``, the property, at the roofline's
defaults (``Roofline.default_dtype`` against the slowest memory level). ``Device.ridge_point(dtype)`` is the older
name of ``Device.ridge``. Optional arguments of the laws are keyword-only, in one order: ``latency_s``, then
``efficiency``.

The FLOPs and bytes of common ML operators (``matmul_cost``, ``attention_cost``, ...) live in :mod:`efflab.opcost`;
they stay importable from here too.

References: S. Williams, A. Waterman, D. Patterson, "Roofline: an insightful visual performance model for multicore
architectures", CACM 52(4), 2009; MLSysBook's Part III, Principle 2 and its Table 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from efflab import _validate as v
from efflab import opcost as _opcost
from efflab.opcost import *  # noqa: F403 -- the op-cost helpers lived here before efflab.opcost; old imports keep working

__all__ = [
    "Ceiling",
    "Classification",
    "Remedies",
    "Roofline",
    "attainable_flops_per_s",
    "classify",
    "iron_law_time_s",
    "remedies",
    "ridge_point",
] + _opcost.__all__

REGIMES = ("memory", "compute", "latency")


def ridge_point(peak_flops_per_s: ArrayLike, bandwidth_bytes_per_s: ArrayLike) -> float | np.ndarray:
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
    peak, bw = v.broadcast(peak_flops_per_s=peak, bandwidth_bytes_per_s=bw)
    return v.scalar_or_array(peak / bw)


def attainable_flops_per_s(
    intensity: ArrayLike, peak_flops_per_s: ArrayLike, bandwidth_bytes_per_s: ArrayLike
) -> float | np.ndarray:
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
    intensity, peak, bw = v.broadcast(intensity=intensity, peak_flops_per_s=peak, bandwidth_bytes_per_s=bw)
    return v.scalar_or_array(np.minimum(peak, intensity * bw))


def _terms(
    flops: ArrayLike,
    bytes_moved: ArrayLike,
    peak_flops_per_s: ArrayLike,
    bandwidth_bytes_per_s: ArrayLike,
    efficiency: ArrayLike,
    latency_s: ArrayLike,
    bytes_low_open: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    flops = v.nonnegative(flops, "flops", "FLOP")
    if bytes_low_open:
        bytes_moved = v.positive(bytes_moved, "bytes_moved", "bytes")
    else:
        bytes_moved = v.nonnegative(bytes_moved, "bytes_moved", "bytes")
    peak = v.positive(peak_flops_per_s, "peak_flops_per_s", "FLOP/s")
    bw = v.positive(bandwidth_bytes_per_s, "bandwidth_bytes_per_s", "bytes/s")
    efficiency = v.fraction(efficiency, "efficiency", open_low=True)
    latency_s = v.nonnegative(latency_s, "latency_s", "s")
    arrays = v.broadcast(
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
    flops: ArrayLike,
    bytes_moved: ArrayLike,
    peak_flops_per_s: ArrayLike,
    bandwidth_bytes_per_s: ArrayLike,
    *,
    latency_s: ArrayLike = 0.0,
    efficiency: ArrayLike = 1.0,
    overlap: bool = True,
) -> float | np.ndarray:
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
    latency_s : float or array_like, keyword-only
        Fixed dispatch/launch latency ``L_lat`` (s, >= 0).
    efficiency : float or array_like, keyword-only
        Fraction ``eta_hw`` of the compute peak the kernel reaches (0 < eta <= 1).
    overlap : bool, keyword-only
        Whether transfer and compute overlap (max) or serialize (sum).

    Returns
    -------
    float or ndarray
        Time in seconds.

    References
    ----------
    MLSysBook, Part III, Principle 2 (the iron law of a workload).

    Examples
    --------
    A 7B-parameter fp16 model reads 14e9 bytes of weights per token on an H100 (3.35 TB/s): >= 4.18 ms/token.

    >>> round(iron_law_time_s(2 * 7e9, 14e9, 989.4e12, 3.35e12) * 1e3, 2)
    4.18
    """
    overlap = v.boolean(overlap, "overlap")
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
        """MLSysBook's table row for this regime (scalar inputs only)."""
        if not isinstance(self.regime, str):
            raise TypeError("remedies needs a scalar classification; call remedies(regime) per element")
        return remedies(self.regime)


def classify(
    flops: ArrayLike,
    bytes_moved: ArrayLike,
    peak_flops_per_s: ArrayLike,
    bandwidth_bytes_per_s: ArrayLike,
    *,
    latency_s: ArrayLike = 0.0,
    efficiency: ArrayLike = 1.0,
) -> Classification:
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
    latency_s : float or array_like, keyword-only
        Dispatch latency ``L_lat`` (s, >= 0).
    efficiency : float or array_like, keyword-only
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
    """What works and what is wasted for one regime (MLSysBook's Table 1)."""

    regime: str
    dominant_term: str
    works: tuple[str, ...]
    wasted: tuple[str, ...]


# MLSysBook, Part III, Table 1: the bottleneck, its dominant iron-law term (written as the chapters print it, with
# the symbols of the iron law), the optimization that works and the one that is wasted.
_TABLE = {
    "memory": Remedies(
        "memory",
        "D_vol / BW",
        ("quantization", "pruning", "batching"),
        ("faster GPU (more FLOP/s)",),
    ),
    "compute": Remedies(
        "compute",
        "O / (R_peak · η_hw)",
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
    """The optimizations that work and those that are wasted for a regime (MLSysBook's Table 1).

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

    def __post_init__(self) -> None:
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
        object.__setattr__(self, "estimated", v.boolean(self.estimated, "estimated"))

    @property
    def fraction_of_spec(self) -> float | None:
        """``measured / spec`` (None when either is missing)."""
        if self.measured is None or self.spec is None:
            return None
        return self.measured / self.spec


def _ceilings(mapping: object, name: str, kind: str) -> Mapping[str, Ceiling]:
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


class _DeviceSpec(Protocol):
    """What :meth:`Roofline.from_device` reads from a :class:`efflab.hardware.Device` (a layer above this module)."""

    @property
    def name(self) -> str: ...
    @property
    def peak_flops_per_s(self) -> Mapping[str, float]: ...
    @property
    def bandwidth_bytes_per_s(self) -> float: ...
    @property
    def sources(self) -> Mapping[str, str]: ...
    @property
    def estimated(self) -> bool: ...


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

    def __post_init__(self) -> None:
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
    def _key(key: object, mapping: Mapping[str, Ceiling], name: str) -> str:
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

    def attainable(
        self, intensity: ArrayLike, dtype: str | None = None, level: str | None = None
    ) -> float | np.ndarray:
        """``min(R_peak, I * BW)`` in FLOP/s for intensity in FLOP/byte; broadcasts."""
        return attainable_flops_per_s(intensity, self.peak_flops_per_s(dtype), self.bandwidth_bytes_per_s(level))

    def ridge(self, dtype: str | None = None, level: str | None = None) -> float:
        """Ridge point ``R_peak[dtype] / BW[level]`` (FLOP/byte); ``default_dtype`` and the slowest level when None."""
        return self.peak_flops_per_s(dtype) / self.bandwidth_bytes_per_s(level)

    @property
    def ridge_point(self) -> float:
        """``ridge()`` at the defaults: ``default_dtype`` against the slowest memory level (FLOP/byte)."""
        return self.ridge()

    def time_s(
        self,
        flops: ArrayLike,
        bytes_moved: ArrayLike,
        *,
        dtype: str | None = None,
        level: str | None = None,
        efficiency: ArrayLike = 1.0,
        overlap: bool = True,
    ) -> float | np.ndarray:
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

    def classify(
        self,
        flops: ArrayLike,
        bytes_moved: ArrayLike,
        *,
        dtype: str | None = None,
        level: str | None = None,
        efficiency: ArrayLike = 1.0,
    ) -> Classification:
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
    def from_device(cls, device: _DeviceSpec, default_dtype: str | None = None) -> Roofline:
        """A spec-only roofline from a :class:`efflab.hardware.Device` catalog entry (main memory as "dram").

        ``default_dtype`` is the dtype that ``peak_flops_per_s()``, ``ridge()`` and ``ridge_point`` use when given
        none: by default the device's first, which is "fp32" for every catalog GPU (an H100's fp32 ridge point is
        20 FLOP/byte, its bf16 one 295).

        >>> from efflab.hardware import get_device
        >>> h100 = get_device("h100")
        >>> Roofline.from_device(h100).default_dtype, round(Roofline.from_device(h100, "bf16").ridge_point)
        ('fp32', 295)
        """
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
        return cls(compute=compute, memory=memory, name=f"{device.name} ({label})", default_dtype=default_dtype)
