"""The D·A·M diagnosis: which term of a measured workload dominates, and which fixes would work or be wasted.

MLSysBook's taxonomy asks three questions in order: **Data** -- is the work necessary? (moves ``D_vol/BW`` and
the input pipeline); **Algorithm** -- can it be simplified? (moves ``O``); **Machine** -- how to do it faster? (moves
``R_peak*eta`` and ``L_lat``). :func:`diagnose` takes the measured time split of a workload (time the device waited on
input, time it computed, time it sat idle between dispatches) and, when given, its FLOPs, bytes and device peaks, and
returns the dominant axis and regime, MLSysBook's scorecard, the levers that work and those that are wasted, and
the anti-pattern a proposed fix would fall into.

Axes: input- and memory-bound -> data; latency-bound -> machine (``L_lat`` is dispatch, not operations: the levers
that shorten it -- batching, fusion, asynchronous dispatch -- remove no operation); compute-bound -> machine while MFU
fails the rubric, else algorithm. MLSysBook's appendix puts its latency-cliff case on the Algorithm axis and its
compute-wall case on Machine; chapter 6 states the difference and why this module follows the appendix's iron-law
mapping instead.

Regimes: ``"input"`` (the device waits on the data pipeline: input-bound), ``"latency"`` (idle/dispatch time
dominates), and, when device time dominates, the roofline's ``"memory"`` or ``"compute"`` -- or ``"device"`` when no
FLOPs/bytes were given to tell those two apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from efflab import _validate as v
from efflab.roofline import Classification, Remedies, classify, remedies
from efflab.style import wrap_text

__all__ = ["FIXES", "Check", "Diagnosis", "Scorecard", "diagnose"]

# MLSysBook's scorecard thresholds (Part III, the D·A·M taxonomy).
IO_OVERHEAD_PASS_BELOW = 0.01  # I/O overhead < 1 % passes
IO_OVERHEAD_FAIL_ABOVE = 0.10  # I/O overhead > 10 % fails
MFU_FAIL_BELOW = 0.30  # model-FLOPs utilization < 30 % fails
MFU_PASS_ABOVE = 0.50  # MFU > 50 % passes
UTILIZATION_WARN_BELOW = 0.80  # rule of thumb: accelerator busy < 80 % of the time suggests data-bound
ACTIVE_PARAMS_PASS_BELOW = 0.50  # non-zero / total parameters < 50 % (sparse) passes the Algorithm row
ACTIVE_PARAMS_FAIL_AT = 1.00  # 100 % (dense) fails it; the rubric grades nothing in between (efflab: "warn")

# Proposed fixes: the regimes in which each one shortens the dominant term, and what kind of fix it is (hardware fixes
# that miss become the hardware crutch; model changes while input-bound, the model twiddle).
FIXES = {
    "faster_gpu": (("compute",), "hardware"),
    "more_bandwidth": (("memory",), "hardware"),
    "quantize": (("memory", "compute"), "model"),
    "prune": (("memory", "compute"), "model"),
    "change_model": (("memory", "compute"), "model"),
    "fuse_kernels": (("memory", "latency"), "software"),
    "async_dispatch": (("latency",), "software"),
    "bigger_batch": (("memory", "latency"), "software"),
    "better_kernel": (("compute",), "software"),
    "more_loader_workers": (("input",), "software"),
    "cache_dataset": (("input",), "software"),
}

# Not in MLSysBook's Table 1 (which covers device-side regimes): the input-bound row, and the row used when
# device time dominates but no FLOPs/bytes were given to split it into memory and compute.
_INPUT = Remedies(
    "input",
    "T_data (input pipeline)",
    ("more data-loader workers and prefetching", "caching decoded data", "removing unneeded data (dedup, filtering)"),
    ("faster GPU (more FLOP/s)", "more memory bandwidth", "changing the model"),
)
_DEVICE = Remedies(
    "device",
    "T_compute (memory or compute: unsplit)",
    ("profile per op (efflab.profile_ops), or pass flops and bytes_moved to split memory from compute",),
    ("more data-loader workers",),
)
_AXIS = {"input": "data", "memory": "data", "latency": "machine", "device": "machine"}


@dataclass(frozen=True)
class Check:
    """One scorecard line: a measured ``value`` (in ``unit``), its ``verdict`` ("pass"/"warn"/"fail") and the rule."""

    name: str
    value: float
    unit: str
    verdict: str
    rule: str


@dataclass(frozen=True)
class Scorecard:
    """MLSysBook's scorecard; ``mfu`` and ``intensity`` are None when FLOPs, bytes or peaks were not given."""

    io_overhead: Check
    utilization: Check
    mfu: Check | None = None
    intensity: Check | None = None
    active_params: Check | None = None  # MLSysBook's Algorithm row: non-zero / total parameters

    @property
    def checks(self) -> tuple[Check, ...]:
        """The checks that could be computed, in order."""
        rows = (self.io_overhead, self.utilization, self.mfu, self.intensity, self.active_params)
        return tuple(c for c in rows if c is not None)


@dataclass(frozen=True)
class Diagnosis:
    """The result of :func:`diagnose`: dominant axis and regime, scorecard, levers, and the anti-pattern if any."""

    axis: str
    regime: str
    dominant_term: str
    wall_time_s: float
    data_fraction: float
    compute_fraction: float
    idle_fraction: float
    scorecard: Scorecard
    works: tuple[str, ...]
    wasted: tuple[str, ...]
    proposed_fix: str | None
    anti_pattern: str | None
    reason: str
    classification: Classification | None

    def to_text(self) -> str:
        """A plain-text report a notebook can print."""
        lines = [
            f"D·A·M diagnosis: axis = {self.axis}, regime = {self.regime}-bound (dominant term: {self.dominant_term})",
            f"  time: data {self.data_fraction:.1%} | compute {self.compute_fraction:.1%} | "
            f"idle {self.idle_fraction:.1%} of {self.wall_time_s:.4g} s",
            "  scorecard:",
        ]
        for c in self.scorecard.checks:
            shown = f"{c.value * 100:.3g} %" if c.unit == "fraction" else f"{c.value:.3g} {c.unit}"
            lines.append(f"    [{c.verdict.upper():4}] {c.name} {shown}  ({c.rule})")
        lines.append(f"  works:  {'; '.join(self.works)}")
        lines.append(f"  wasted: {'; '.join(self.wasted)}")
        if self.proposed_fix is not None:
            verdict = f"the {self.anti_pattern}" if self.anti_pattern else "addresses the bottleneck"
            lines.append(f"  proposed fix {self.proposed_fix!r}: {verdict}. {self.reason}")
        return wrap_text("\n".join(lines))


def _scalar(value: float, name: str, unit: str, *, positive: bool = False) -> float:
    arr = v.positive(value, name, unit) if positive else v.nonnegative(value, name, unit)
    if arr.ndim:
        raise ValueError(f"{name} must be a single number ({unit}); got shape {arr.shape}")
    return float(arr)


def _optional(value: float | None, name: str, unit: str, *, positive: bool = True) -> float | None:
    return None if value is None else _scalar(value, name, unit, positive=positive)


def _verdict(value: float, pass_if: Callable[[float], bool], fail_if: Callable[[float], bool]) -> str:
    return "pass" if pass_if(value) else "fail" if fail_if(value) else "warn"


def _anti_pattern(fix: str, regime: str, dominant_term: str) -> tuple[str | None, str]:
    works_in, kind = FIXES[fix]
    if regime == "device" and {"memory", "compute"} <= set(works_in):
        return None, "It shortens device time whether it is memory- or compute-bound."
    if regime == "device" and {"memory", "compute"} & set(works_in):
        return None, "It may help: device time dominates, but without flops and bytes_moved the regime is unsplit."
    if regime in works_in:
        return None, f"It shortens the dominant term ({dominant_term})."
    if kind == "hardware":
        return "hardware crutch", f"Buying hardware does not shorten {dominant_term} of a {regime}-bound job."
    if kind == "model" and regime == "input":
        return "model twiddle", "Changing the model does not help while the device waits on the input pipeline."
    return "premature optimizer", f"It optimizes a part that is not the bottleneck ({regime}-bound, {dominant_term})."


def diagnose(
    *,
    data_time_s: float,
    compute_time_s: float,
    idle_time_s: float = 0.0,
    flops: float | None = None,
    bytes_moved: float | None = None,
    peak_flops_per_s: float | None = None,
    bandwidth_bytes_per_s: float | None = None,
    wall_time_s: float | None = None,
    proposed_fix: str | None = None,
    params_total: int | None = None,
    params_nonzero: int | None = None,
) -> Diagnosis:
    """Diagnose a measured workload along the D·A·M axes and score it.

    The wall time ``T`` is ``wall_time_s`` or, if omitted, ``data + compute + idle`` (serial). The dominant term is the
    largest of the three. I/O overhead ``= data/T`` (pass < 1 %, fail > 10 %); utilization ``= compute/T`` (< 80 %
    suggests data-bound); MFU ``= flops/(T*R_peak)`` (fail < 30 %, pass > 50 %); intensity ``I = flops/bytes`` against
    the ridge ``I* = R_peak/BW``, scored by the roof it allows, ``min(1, I/I*)``, on the MFU thresholds. When device
    time dominates, the roofline (:func:`efflab.roofline.classify`) splits it into memory- and compute-bound.
    Axis: input and memory -> data; compute -> machine while MFU fails (eta is low), otherwise algorithm (only fewer
    operations help); latency -> machine.

    Parameters
    ----------
    data_time_s : float
        Time the device waited on input (loading, decoding, host-to-device copies not hidden by overlap), s >= 0.
    compute_time_s : float
        Time the device spent running kernels, s >= 0.
    idle_time_s : float
        Time the device sat idle between dispatches (launch and framework overhead), s >= 0.
    flops, bytes_moved : float, optional
        Work done and bytes moved over the measured interval (FLOP >= 0, at most ``R_peak * T``; bytes > 0).
    peak_flops_per_s, bandwidth_bytes_per_s : float, optional
        Device ceilings (FLOP/s, bytes/s, > 0).
    wall_time_s : float, optional
        Measured wall time, s, at least the largest term (overlapped terms may sum to more).
    proposed_fix : str, optional
        One of ``FIXES``: checked for the anti-pattern it would fall into.
    params_total, params_nonzero : int, optional
        The model's parameter count and how many of them are non-zero (both or neither): the scorecard's
        active-parameters row, ``nonzero / total`` (fail at 100 %, dense; pass < 50 %, sparse).

    Returns
    -------
    Diagnosis

    References
    ----------
    MLSysBook, Part III: the D·A·M taxonomy, its scorecard and anti-patterns.

    Examples
    --------
    7B fp16 decode on an H100 at its memory floor (14 GB / 3.35 TB/s = 4.18 ms/token): memory-bound, and a faster GPU
    is the hardware crutch.

    >>> d = diagnose(data_time_s=0.0, compute_time_s=14e9 / 3.35e12, flops=1.4e10, bytes_moved=1.4e10,
    ...              peak_flops_per_s=989.4e12, bandwidth_bytes_per_s=3.35e12, proposed_fix="faster_gpu")
    >>> d.regime, d.axis, d.anti_pattern, f"{d.scorecard.mfu.value:.2%}"
    ('memory', 'data', 'hardware crutch', '0.34%')

    The same decode at 50 ms/token: the iron law leaves 45.8 ms that neither floor explains (``L_lat``), so the
    device waits on dispatch, not memory.

    >>> d = diagnose(data_time_s=0.0, compute_time_s=14e9 / 3.35e12, idle_time_s=0.05 - 14e9 / 3.35e12,
    ...              flops=1.4e10, bytes_moved=1.4e10, peak_flops_per_s=989.4e12, bandwidth_bytes_per_s=3.35e12)
    >>> d.regime, d.axis, f"{d.scorecard.mfu.value:.2%}"
    ('latency', 'machine', '0.03%')
    """
    terms = {
        "data": _scalar(data_time_s, "data_time_s", "s"),
        "compute": _scalar(compute_time_s, "compute_time_s", "s"),
        "idle": _scalar(idle_time_s, "idle_time_s", "s"),
    }
    flops = _optional(flops, "flops", "FLOP", positive=False)
    bytes_moved = _optional(bytes_moved, "bytes_moved", "bytes")
    peak = _optional(peak_flops_per_s, "peak_flops_per_s", "FLOP/s")
    bw = _optional(bandwidth_bytes_per_s, "bandwidth_bytes_per_s", "bytes/s")
    if proposed_fix is not None:
        proposed_fix = v.choice(proposed_fix, "proposed_fix", FIXES)
    if wall_time_s is None:
        wall = sum(terms.values())
        if wall <= 0:
            raise ValueError("data_time_s + compute_time_s + idle_time_s must be > 0 (in s); got 0")
    else:
        wall = _scalar(wall_time_s, "wall_time_s", "s", positive=True)
        if wall < max(terms.values()) * (1 - 1e-9):
            raise ValueError(
                f"wall_time_s must be >= each measured term (in s); got {wall:g} < {max(terms.values()):g}"
            )

    dominant = max(terms, key=terms.__getitem__)  # ties: data, then compute, then idle
    classification = None
    if flops is not None and bytes_moved is not None and peak is not None and bw is not None:
        classification = classify(flops, bytes_moved, peak, bw)
    mfu = None
    if flops is not None and peak is not None:
        mfu = flops / (wall * peak)
        if mfu > 1 + 1e-9:
            raise ValueError(
                f"flops must be <= peak_flops_per_s * wall time ({peak * wall:.4g} FLOP); got {flops:.4g} "
                f"(MFU {mfu:.3g} > 1: check the units, or the peak's dtype)"
            )

    if dominant == "data":
        regime = "input"
    elif dominant == "idle":
        regime = "latency"
    else:
        # scalar inputs give a scalar classification, whose regime is a str; str() only states it for the checker
        regime = str(classification.regime) if classification is not None else "device"
    table = {"input": _INPUT, "device": _DEVICE}.get(regime) or remedies(regime)
    axis = _AXIS.get(regime) or ("machine" if mfu is not None and mfu < MFU_FAIL_BELOW else "algorithm")

    io = terms["data"] / wall
    busy = min(terms["compute"] / wall, 1.0)
    checks = {
        "io_overhead": Check(
            "I/O overhead",
            io,
            "fraction",
            _verdict(io, lambda x: x < IO_OVERHEAD_PASS_BELOW, lambda x: x > IO_OVERHEAD_FAIL_ABOVE),
            "pass < 1 %, fail > 10 %",
        ),
        "utilization": Check(
            "accelerator utilization",
            busy,
            "fraction",
            "pass" if busy >= UTILIZATION_WARN_BELOW else "warn",
            "< 80 % busy suggests data-bound",
        ),
    }
    if (params_total is None) != (params_nonzero is None):
        raise ValueError("params_total and params_nonzero go together (parameters): give both or neither")
    if params_total is not None:
        total = v.integer(params_total, "params_total", "parameters", low=1)
        nonzero = v.integer(params_nonzero, "params_nonzero", "parameters", low=0, high=total)
        active = nonzero / total
        verdict = _verdict(active, lambda x: x < ACTIVE_PARAMS_PASS_BELOW, lambda x: x >= ACTIVE_PARAMS_FAIL_AT)
        checks["active_params"] = Check(
            "active params", active, "fraction", verdict, "fail at 100 % (dense), pass < 50 % (sparse)"
        )
    if mfu is not None:
        verdict = _verdict(mfu, lambda x: x > MFU_PASS_ABOVE, lambda x: x < MFU_FAIL_BELOW)
        checks["mfu"] = Check("MFU", mfu, "fraction", verdict, "fail < 30 %, pass > 50 %")
    if flops is not None and bytes_moved is not None and peak is not None and bw is not None:
        intensity, ridge = flops / bytes_moved, peak / bw
        roof = min(1.0, intensity / ridge)
        verdict = _verdict(roof, lambda x: x >= MFU_PASS_ABOVE, lambda x: x < MFU_FAIL_BELOW)
        rule = f"ridge {ridge:.3g} FLOP/B; roof allows {roof:.1%} of peak (fail < 30 %, pass >= 50 %)"
        checks["intensity"] = Check("arithmetic intensity", intensity, "FLOP/B", verdict, rule)

    anti_pattern, reason = None, ""
    if proposed_fix is not None:
        anti_pattern, reason = _anti_pattern(proposed_fix, regime, table.dominant_term)
    return Diagnosis(
        axis=axis,
        regime=regime,
        dominant_term=table.dominant_term,
        wall_time_s=wall,
        data_fraction=terms["data"] / wall,
        compute_fraction=terms["compute"] / wall,
        idle_fraction=terms["idle"] / wall,
        scorecard=Scorecard(**checks),
        works=table.works,
        wasted=table.wasted,
        proposed_fix=proposed_fix,
        anti_pattern=anti_pattern,
        reason=reason,
        classification=classification,
    )
