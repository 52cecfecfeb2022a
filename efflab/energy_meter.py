"""``EnergyMeter``: joules and average watts of a block of code, from a hardware counter or, if none, a stated estimate.

Sources, tried in order (``source="auto"``):

- ``"nvml"``: NVIDIA's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, millijoules since the driver
  loaded; Volta and newer), read after ``torch.cuda.synchronize()`` at both edges so queued kernels fall inside the
  window. On A100/H100 the counter is fed by a power sensor that samples only about 25 ms of every 100 ms (Yang et
  al., SC'24, arXiv 2312.02741), so a window must span many 100 ms periods: under ``NVML_MIN_WINDOW_S`` a warning
  says so.
- ``"rapl"``: Linux powercap RAPL package counters, ``/sys/class/powercap/intel-rapl:N/energy_uj`` (also used for AMD
  CPUs), summed over packages; the counter wraps at ``max_energy_range_uj``, handled by :func:`counter_delta`.
- ``"estimated"``: no readable counter. The meter then needs work to estimate from -- ``EnergyMeter(estimate_from=
  profile)`` with an :class:`efflab.profile.OpProfile`, or ``meter.estimate(flops=..., bytes_moved=...)`` -- and
  applies :func:`efflab.energy.energy_estimate` (Horowitz 45 nm per-operation energies). It never falls back
  silently: ``source`` says "estimated", ``reason`` says why no counter was read, a :class:`EnergyEstimateWarning` is
  issued, and without anything to estimate from ``energy_j`` stays None.
"""

from __future__ import annotations

import glob
import os
import sys
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from efflab import _validate as v
from efflab.style import format_si, wrap_text

if TYPE_CHECKING:
    from efflab.energy import EnergyEstimate

__all__ = ["EnergyMeter", "EnergyEstimateWarning", "ShortWindowWarning", "counter_delta", "rapl_zones"]

# NVML's total-energy counter on A100/H100 integrates a power sensor that samples ~25 ms of every 100 ms (Yang et al.,
# "Part-time Power Measurements: nvidia-smi's Lack of Attention", SC'24, arXiv 2312.02741): a window of ten 100 ms
# periods keeps the unsampled share of a bursty workload's energy an average over many periods.
NVML_MIN_WINDOW_S = 1.0
POWERCAP_ROOT = "/sys/class/powercap"
# Energy figures for dtypes missing from Horowitz's table: the nearest entry of the same width (an estimate, stated).
_ESTIMATE_DTYPE = {"fp32": "fp32", "fp16": "fp16", "bf16": "fp16", "tf32": "fp32", "int8": "int8", "int32": "int32"}


class EnergyEstimateWarning(UserWarning):
    """No energy counter could be read: the energy is a model estimate (or unknown)."""


class ShortWindowWarning(UserWarning):
    """The measured window is too short for the counter's update period."""


def counter_delta(start: int, end: int, max_range: int) -> int:
    """Increase of a counter that wraps to 0 after ``max_range``: ``end - start``, or ``end + max_range - start``.

    Assumes at most one wrap in the window (a RAPL package counter wraps after ~2^32 uJ, about 70 min at 1 kW).

    Parameters
    ----------
    start, end : int
        Counter readings (e.g. microjoules), 0 <= value <= max_range.
    max_range : int
        Value at which the counter wraps (``max_energy_range_uj``), > 0.

    Examples
    --------
    >>> counter_delta(1_000, 4_500, 10_000)
    3500
    >>> counter_delta(9_000, 500, 10_000)  # wrapped: 1000 to the top, then 500
    1500
    """
    for name, value in (("start", start), ("end", end)):
        v.integer(value, name, "counter units", low=0, high=max_range)
    v.integer(max_range, "max_range", "counter units", low=1)
    return int(end - start) if end >= start else int(end + max_range - start)


def rapl_zones(root: str = POWERCAP_ROOT) -> dict[str, tuple[str, int]]:
    """Readable top-level RAPL zones: ``{name: (energy_uj path, max_energy_range_uj)}`` (empty when none).

    Examples
    --------
    >>> isinstance(rapl_zones("/nonexistent"), dict)
    True
    """
    zones = {}
    for zone in sorted(glob.glob(os.path.join(root, "intel-rapl:*"))):
        if os.path.basename(zone).count(":") != 1:  # intel-rapl:0:0 etc. are sub-zones of a package
            continue
        try:
            with open(os.path.join(zone, "name")) as f:
                name = f.read().strip()
            with open(os.path.join(zone, "max_energy_range_uj")) as f:
                max_range = int(f.read())
            with open(os.path.join(zone, "energy_uj")) as f:
                int(f.read())
        except (OSError, ValueError):
            continue
        zones[f"{os.path.basename(zone)} ({name})"] = (os.path.join(zone, "energy_uj"), max_range)
    return zones


def _read_int(path: str) -> int:
    with open(path) as f:
        return int(f.read())


def _cuda_in_use() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized())


def _sync() -> None:
    if _cuda_in_use():
        sys.modules["torch"].cuda.synchronize()


def _nvml_handle(index: int):
    """NVML handle of CUDA device ``index``, matched by UUID (CUDA_VISIBLE_DEVICES renumbers devices).

    Raises ``RuntimeError`` for a MIG slice (NVML's energy counter covers the whole GPU, other tenants included) and
    when no NVML device has the UUID: NVML's own index may name another GPU, whose energy is not this work's.
    """
    import pynvml

    pynvml.nvmlInit()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        from efflab.hardware import is_mig_slice

        name = torch.cuda.get_device_name(index)
        uuid = str(torch.cuda.get_device_properties(index).uuid)
        if is_mig_slice(name) or uuid.startswith("MIG-"):
            raise RuntimeError(
                f"{name} is a MIG slice: NVML's energy counter is the whole GPU's, other tenants included"
            )
        try:
            return pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
        except pynvml.NVMLError as exc:
            raise RuntimeError(
                f"no NVML device has CUDA device {index}'s UUID ({uuid}): {exc}; NVML's own numbering may name "
                "another GPU, so none is read"
            ) from exc
    return pynvml.nvmlDeviceGetHandleByIndex(index)


class EnergyMeter:
    """Measure the energy of a ``with`` block: ``energy_j``, average ``power_w = energy_j / time_s`` and ``source``.

    Parameters
    ----------
    source : {"auto", "nvml", "rapl", "estimated"}
        Which counter to read; "auto" tries NVML (when CUDA is in use), then RAPL, then the estimate. Naming a counter
        that cannot be read raises ``RuntimeError`` with the reason.
    device : int
        CUDA device index for NVML.
    estimate_from : OpProfile, optional
        Work to estimate from when no counter is readable (see :meth:`estimate`).
    memory : str
        Memory level for the estimate's bytes ("dram", ...; see :func:`efflab.energy.energy_estimate`).

    References
    ----------
    NVML API reference (``nvmlDeviceGetTotalEnergyConsumption``); Linux powercap documentation (RAPL); Zeus
    (ml.energy) for window synchronisation and wraparound; Horowitz, ISSCC 2014, for the estimate.

    Examples
    --------
    >>> with EnergyMeter(source="estimated") as m:
    ...     total = sum(range(1000))
    >>> m.source, m.energy_j is None, m.time_s > 0
    ('estimated', True, True)
    >>> round(m.estimate(flops=1e9, bytes_moved=1e8).energy_j, 4)  # 1e9 * 2.3 pJ + 1e8 * 162.5 pJ
    0.0186
    """

    def __init__(self, source: str = "auto", device: int = 0, estimate_from=None, memory: str = "dram"):
        self.requested = v.choice(source, "source", ("auto", "nvml", "rapl", "estimated"))
        self.device = v.integer(device, "device", "CUDA device index", low=0)
        self.estimate_from = estimate_from
        self.memory = memory
        self.source: str | None = None
        self.reason = ""
        self.energy_j: float | None = None
        self.time_s: float | None = None
        self.estimate_detail: tuple[EnergyEstimate, ...] | None = None  # EnergyEstimate(s) behind an estimate
        self.zones: dict[str, float] = {}
        self._read: Callable[[], dict[str, float]]  # counter readings (J for NVML, uJ for RAPL), set by _open_counter
        self._start: dict[str, float] = {}  # the readings at __enter__ (empty for an estimate)

    def _open_counter(self) -> None:
        reasons = []
        if self.requested in ("auto", "nvml"):
            try:
                if self.requested == "auto" and not _cuda_in_use():
                    raise RuntimeError("CUDA is not in use in this process")
                import pynvml

                handle = _nvml_handle(self.device)
                self._read = lambda: {"gpu": pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) * 1e-3}  # mJ -> J
                self._read()
                self.source = "nvml"
                return
            except Exception as exc:  # no library, no driver, a GPU older than Volta, CUDA unused
                reasons.append(f"NVML: {exc or type(exc).__name__}")  # the reason, not a traceback's wording
        if self.requested == "auto" and _cuda_in_use():
            # The work runs on the GPU, whose counter could not be read: RAPL would report the CPU package's energy
            # under the same name. Never switch the source silently: estimate, and say why.
            reasons.append("RAPL not used: CUDA is in use, and RAPL counts the CPU package, not the GPU doing the work")
        elif self.requested in ("auto", "rapl"):
            zones = rapl_zones()
            if zones:
                self._zones = zones
                self._read = lambda: {name: _read_int(path) for name, (path, _) in zones.items()}
                self.source = "rapl"
                return
            reasons.append(f"RAPL: no readable {POWERCAP_ROOT}/intel-rapl:*/energy_uj")
        if self.requested in ("nvml", "rapl"):
            raise RuntimeError(f"energy counter {self.requested!r} is not readable: {'; '.join(reasons)}")
        self.source = "estimated"
        self.reason = "; ".join(reasons) if reasons else "estimate requested"
        if self.requested == "auto":
            warnings.warn(
                f"no energy counter readable ({self.reason}); energy will be a model estimate (source='estimated')",
                EnergyEstimateWarning,
                stacklevel=3,
            )

    def __enter__(self) -> EnergyMeter:
        self._open_counter()
        _sync()
        self._start = self._read() if self.source != "estimated" else {}
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        _sync()
        self.time_s = time.perf_counter() - self._t0
        if self.source == "nvml":
            end = self._read()
            self.zones = {"gpu": end["gpu"] - self._start["gpu"]}
            if self.time_s < NVML_MIN_WINDOW_S:
                warnings.warn(
                    f"window of {self.time_s * 1e3:.1f} ms is short: NVML's counter samples power ~25 ms in every "
                    f"100 ms (Yang et al., SC'24); repeat the work to last >= {NVML_MIN_WINDOW_S:g} s",
                    ShortWindowWarning,
                    stacklevel=2,
                )
        elif self.source == "rapl":
            end = self._read()
            self.zones = {
                # RAPL readings are ints (energy_uj); int() only states it for the checker
                name: counter_delta(int(self._start[name]), int(end[name]), max_range) * 1e-6  # uJ -> J
                for name, (_, max_range) in self._zones.items()
            }
        if self.zones:
            self.energy_j = float(sum(self.zones.values()))
        elif self.estimate_from is not None:
            self.estimate(profile=self.estimate_from)
        return False

    def estimate(self, flops=None, bytes_moved=None, profile=None, dtype: str = "fp32") -> EnergyMeter:
        """Estimate the energy from work done, when no counter was read: from a profile or from totals.

        ``E = sum over dtypes of flops * (e_mult + e_add)/2 + bytes_moved * e_byte`` (:func:`efflab.energy.
        energy_estimate`); bf16 uses the fp16 figures and tf32 the fp32 ones (same operand width), other dtypes
        the fp32 figures -- each substitution is listed in ``reason``.

        Parameters
        ----------
        flops, bytes_moved : float, optional
            Totals (FLOP, bytes), with ``dtype``.
        profile : OpProfile, optional
            Per-op FLOPs and bytes from :func:`efflab.profile.profile_ops`, grouped by dtype.
        """
        from efflab.energy import energy_estimate

        if self.source not in (None, "estimated"):
            raise RuntimeError(f"energy was measured by {self.source}; an estimate would replace a measurement")
        groups: dict[str, list[float]] = {}
        if profile is not None:
            for r in profile.records:
                g = groups.setdefault(r.dtype, [0.0, 0.0])
                g[0] += r.flops
                g[1] += r.bytes_moved
        elif flops is not None and bytes_moved is not None:
            groups[dtype] = [flops, bytes_moved]
        else:
            raise ValueError("estimate needs profile=..., or both flops (FLOP) and bytes_moved (bytes)")
        estimates, notes = [], []
        for name, (f, b) in groups.items():
            if f == 0 and b == 0:
                continue
            key = _ESTIMATE_DTYPE.get(name, "fp32")
            if key != name:
                notes.append(f"{name} estimated with {key} figures")
            estimates.append(energy_estimate(f, b, dtype=key, memory=self.memory))
        self.source = "estimated"
        self.estimate_detail = tuple(estimates)
        self.energy_j = float(sum(e.total_j for e in estimates))
        if notes:
            self.reason = "; ".join(filter(None, [self.reason, *notes]))
        return self

    @property
    def power_w(self) -> float | None:
        """Average power over the window (W), when energy and time are known."""
        if self.energy_j is None or not self.time_s:
            return None
        return self.energy_j / self.time_s

    def to_text(self) -> str:
        """What was measured, how, and why if it is an estimate."""
        if self.source is None:
            return "EnergyMeter: not run yet"
        if self.energy_j is None:
            return (
                f"energy unknown (source=estimated): {self.reason}; nothing to estimate from -- pass "
                "estimate_from=profile or call .estimate(flops=..., bytes_moved=...)"
            )
        energy = format_si(self.energy_j, "J", 4)
        power = self.power_w  # None only without a measured window (or a zero-length one)
        rate = "average power unknown" if power is None else f"{format_si(power, 'W', 4)} average"
        if self.time_s is None:  # .estimate() called outside a `with` block: there is no window to report
            text = f"{energy} estimated (a model, not a counter); no time window was measured"
        elif self.source == "estimated":
            text = (
                f"{energy} estimated (a model, not a counter) over a measured {format_si(self.time_s, 's', 4)}: "
                f"{rate}, estimated"
            )
        else:
            text = f"{energy} over {format_si(self.time_s, 's', 4)} = {rate} (source={self.source})"
        if self.source == "estimated":
            text += f"\nmodel: {self.estimate_detail[0].formula}" if self.estimate_detail else ""
            text += f"\nwhy estimated: {self.reason}" if self.reason else ""
        return wrap_text(text)

    def __repr__(self) -> str:
        return f"<EnergyMeter {self.to_text()}>"
