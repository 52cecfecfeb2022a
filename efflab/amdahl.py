"""Amdahl's law and its relatives: how much a partial speedup buys the whole system.

Principle 4 of the course: speeding up part of a workload speeds up the whole only as far as the untouched part
allows. With a fraction ``f`` of the baseline time accelerated ``s`` times,

    S = 1 / ((1 - f) + f / s)                       (Amdahl 1967)

and the speedup can never exceed ``1 / (1 - f)`` however large ``s`` grows. The worked case of MLSysBook:
f = 0.95 at s = 100 gives S = 16.8x, and the cap is 20x.

Also here: Gustafson's scaled speedup (the problem grows with the machine), the Karp-Flatt metric (the serial
fraction implied by a measured speedup) and a chain of pipeline stages, some accelerated, run back to back or
overlapped.

Conventions: ``fraction`` is always the accelerated (parallel) fraction of the *baseline* time, in [0, 1]; speedups
are ratios of times (dimensionless); times are in seconds. Scalars and arrays broadcast like numpy; scalar inputs give
Python floats.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from efflab import _validate as v

__all__ = [
    "amdahl_limit",
    "amdahl_speedup",
    "bound_claim",
    "gustafson_speedup",
    "karp_flatt",
    "pipeline_speedup",
    "pipeline_time_s",
    "prediction_claim",
    "required_speedup",
    "serial_fraction_claim",
]


def amdahl_speedup(fraction: ArrayLike, speedup: ArrayLike) -> float | np.ndarray:
    """Overall speedup when a fraction of the baseline time is accelerated (Amdahl's law).

    ``S = 1 / ((1 - f) + f / s)``

    Parameters
    ----------
    fraction : float or array_like
        ``f``, the fraction of the baseline time that is accelerated, in [0, 1].
    speedup : float or array_like
        ``s``, how many times faster that fraction runs, > 0 (``inf`` allowed: the part takes no time at all).
        ``s < 1`` is a slowdown.

    Returns
    -------
    float or ndarray
        Overall speedup (baseline time / new time), dimensionless. ``inf`` only when ``f = 1`` and ``s = inf``.

    References
    ----------
    G. M. Amdahl, "Validity of the single processor approach to achieving large scale computing capabilities",
    AFIPS 1967.

    Examples
    --------
    MLSysBook's case: 95 % of the time made 100x faster.

    >>> round(amdahl_speedup(0.95, 100), 1)
    16.8
    >>> amdahl_speedup([0.5, 0.9], float("inf"))
    array([ 2., 10.])
    """
    f = v.fraction(fraction, "fraction")
    s = v.positive(speedup, "speedup", "times faster", allow_inf=True)
    f, s = v.broadcast(fraction=f, speedup=s)
    with np.errstate(divide="ignore"):  # f = 1 and s = inf: the whole job takes no time, S = inf
        return v.scalar_or_array(1.0 / ((1.0 - f) + f / s))


def amdahl_limit(fraction: ArrayLike) -> float | np.ndarray:
    """The most any speedup of a fraction can buy: Amdahl's cap.

    ``S_max = lim_{s -> inf} S = 1 / (1 - f)``

    Parameters
    ----------
    fraction : float or array_like
        ``f``, the accelerated fraction of the baseline time, in [0, 1].

    Returns
    -------
    float or ndarray
        The cap on the overall speedup, dimensionless; ``inf`` for ``f = 1``.

    References
    ----------
    G. M. Amdahl, AFIPS 1967.

    Examples
    --------
    >>> round(amdahl_limit(0.95), 6)
    20.0
    >>> amdahl_limit([0.0, 1.0])
    array([ 1., inf])
    """
    f = v.fraction(fraction, "fraction")
    with np.errstate(divide="ignore"):
        return v.scalar_or_array(1.0 / (1.0 - f))


def required_speedup(fraction: ArrayLike, target: ArrayLike) -> float | np.ndarray:
    """The speedup a fraction needs for the whole to reach a target speedup (Amdahl's law solved for ``s``).

    ``s = f / (1/T - (1 - f))``, defined only for ``T < 1 / (1 - f)``.

    Parameters
    ----------
    fraction : float or array_like
        ``f``, the accelerated fraction of the baseline time, in (0, 1]. With ``f = 0`` nothing can be accelerated.
    target : float or array_like
        ``T``, the wanted overall speedup, finite and > 0 (``T < 1`` asks for a slowdown).

    Returns
    -------
    float or ndarray
        Speedup ``s`` needed on the fraction, dimensionless.

    Raises
    ------
    ValueError
        If a target is at or above the cap ``1 / (1 - f)``; the message states the cap.

    Examples
    --------
    >>> round(required_speedup(0.95, 10), 4)
    19.0
    >>> required_speedup(0.95, 25)
    Traceback (most recent call last):
    ...
    ValueError: target speedup 25 is unreachable with fraction 0.95: Amdahl's cap is 1/(1 - fraction) = 20x ...
    """
    f = v.real(fraction, "fraction", "fraction of 1", low=0.0, high=1.0, low_open=True)
    t = v.positive(target, "target", "times faster")
    f, t = v.broadcast(fraction=f, target=t)
    with np.errstate(divide="ignore"):
        cap = 1.0 / (1.0 - f)
    bad = t >= cap
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        raise ValueError(
            f"target speedup {t.ravel()[i]:g} is unreachable with fraction {f.ravel()[i]:g}: Amdahl's cap is "
            f"1/(1 - fraction) = {cap.ravel()[i]:g}x (reached only as the speedup of the fraction goes to infinity)"
        )
    return v.scalar_or_array(f / (1.0 / t - (1.0 - f)))


def gustafson_speedup(fraction: ArrayLike, n: ArrayLike) -> float | np.ndarray:
    """Scaled speedup when the parallel work grows with the number of processors (Gustafson's law).

    ``S = (1 - f) + f * N``

    Parameters
    ----------
    fraction : float or array_like
        ``f``, the parallel fraction of the time *on the parallel machine*, in [0, 1].
    n : float or array_like
        ``N``, the number of processors (or the speedup of the parallel part), finite and >= 1.

    Returns
    -------
    float or ndarray
        Scaled speedup, dimensionless.

    References
    ----------
    J. L. Gustafson, "Reevaluating Amdahl's law", Communications of the ACM 31(5), 1988.

    Examples
    --------
    >>> round(gustafson_speedup(0.95, 100), 2)
    95.05
    """
    f = v.fraction(fraction, "fraction")
    p = v.real(n, "n", "processors", low=1.0)
    f, p = v.broadcast(fraction=f, n=p)
    return v.scalar_or_array((1.0 - f) + f * p)


def karp_flatt(speedup: ArrayLike, n: ArrayLike) -> float | np.ndarray:
    """Experimentally determined serial fraction from a measured speedup (the Karp-Flatt metric).

    ``e = (1/S - 1/p) / (1 - 1/p)``

    For a job that obeys Amdahl's law with serial fraction ``e`` run on ``p`` processors, this recovers ``e``;
    a serial fraction that grows with ``p`` points at parallel overhead rather than inherently serial work. A
    negative value means a superlinear speedup (``S > p``).

    Parameters
    ----------
    speedup : float or array_like
        ``S``, the measured speedup, finite and > 0.
    n : float or array_like
        ``p``, the number of processors, finite and > 1 (at ``p = 1`` the formula is 0/0).

    Returns
    -------
    float or ndarray
        Serial fraction ``e``, dimensionless.

    References
    ----------
    A. H. Karp and H. P. Flatt, "Measuring parallel processor performance", Communications of the ACM 33(5), 1990.

    Examples
    --------
    >>> round(karp_flatt(amdahl_speedup(0.95, 8), 8), 6)
    0.05
    """
    s = v.positive(speedup, "speedup", "times faster")
    p = v.real(n, "n", "processors", low=1.0, low_open=True)
    s, p = v.broadcast(speedup=s, n=p)
    return v.scalar_or_array((1.0 / s - 1.0 / p) / (1.0 - 1.0 / p))


def _stages(stage_times_s: ArrayLike) -> np.ndarray:
    t = v.nonnegative(stage_times_s, "stage_times_s", "s")
    if t.ndim == 0 or t.shape[-1] == 0:
        raise ValueError(f"stage_times_s must be a sequence of stage times (last axis = stages); got shape {t.shape}")
    return t


def _overlap(overlap: bool) -> bool:
    if not isinstance(overlap, (bool, np.bool_)):
        raise TypeError(f"overlap must be True or False; got {overlap!r}")
    return bool(overlap)


def pipeline_time_s(stage_times_s: ArrayLike, overlap: bool = False) -> float | np.ndarray:
    """Time of a chain of stages, run one after another or overlapped.

    Sequential: ``T = sum_i t_i``; overlapped (a steady-state pipeline, every stage busy at once):
    ``T = max_i t_i``, the slowest stage sets the pace.

    Parameters
    ----------
    stage_times_s : array_like
        Time of each stage in seconds, >= 0, along the last axis (leading axes are independent chains).
    overlap : bool
        False for back-to-back stages (sum), True for overlapped stages (max).

    Returns
    -------
    float or ndarray
        Time of the chain in seconds.

    Examples
    --------
    Load 2 ms, compute 5 ms, write 1 ms:

    >>> round(pipeline_time_s([2e-3, 5e-3, 1e-3]), 6)
    0.008
    >>> round(pipeline_time_s([2e-3, 5e-3, 1e-3], overlap=True), 6)
    0.005
    """
    t = _stages(stage_times_s)
    return v.scalar_or_array(t.max(axis=-1) if _overlap(overlap) else t.sum(axis=-1))


def pipeline_speedup(stage_times_s: ArrayLike, speedups: ArrayLike, overlap: bool = False) -> float | np.ndarray:
    """Overall speedup of a chain of stages when some stages are accelerated.

    ``S = T(t) / T(t / s)`` where ``T`` is :func:`pipeline_time_s` (sum when sequential, max when overlapped).
    Two sequential stages ``[1 - f, f]`` with speedups ``[1, s]`` give Amdahl's law.

    Parameters
    ----------
    stage_times_s : array_like
        Baseline time of each stage in seconds, >= 0, along the last axis; the baseline total must be > 0.
    speedups : array_like
        Speedup of each stage, > 0 (``inf`` allowed), broadcast against ``stage_times_s`` (1 = unchanged).
    overlap : bool
        False for back-to-back stages, True for overlapped stages.

    Returns
    -------
    float or ndarray
        Baseline time / accelerated time, dimensionless (``inf`` if every stage is made free).

    Examples
    --------
    Make the 5 ms compute stage 10x faster; the 2 ms load now dominates:

    >>> round(pipeline_speedup([2e-3, 5e-3, 1e-3], [1, 10, 1]), 4)
    2.2857
    >>> round(pipeline_speedup([2e-3, 5e-3, 1e-3], [1, 10, 1], overlap=True), 4)
    2.5
    """
    t = _stages(stage_times_s)
    s = v.positive(speedups, "speedups", "times faster", allow_inf=True)
    t, s = v.broadcast(stage_times_s=t, speedups=s)
    if t.ndim == 0 or t.shape[-1] == 0:
        raise ValueError(f"stage_times_s must be a sequence of stage times; got shape {t.shape}")
    over = _overlap(overlap)
    base = t.max(axis=-1) if over else t.sum(axis=-1)
    if (base <= 0).any():
        raise ValueError("stage_times_s must have a baseline time > 0 (in s); got all stages 0 s")
    fast = t / s
    new = fast.max(axis=-1) if over else fast.sum(axis=-1)
    with np.errstate(divide="ignore"):
        return v.scalar_or_array(base / new)


# --- claims: what the chapter and the capstone expect of Amdahl's law, judged on measured runs ------------------------

# A measured speed-up "matches" Amdahl's prediction within this relative difference (a 2-core VM's repeated runs
# spread by a few percent; the untouched part's own time moves by as much).
PREDICTION_TOLERANCE = 0.1
# A measured speed-up may exceed its Amdahl bound by this much before the bound counts as beaten (run-to-run spread).
BOUND_SLACK = 0.05
# Karp-Flatt's e "is" the known serial share when the two differ by at most this much (absolute fraction).
SERIAL_SHARE_TOLERANCE = 0.1


def prediction_claim(labels, predicted, measured, untouched_before_s, untouched_after_s):
    """Amdahl's prediction from the measured ``f`` and ``s``, judged against the measured end-to-end speed-ups
    (:mod:`efflab.claims`): each within ``PREDICTION_TOLERANCE``.

    ``untouched_before_s`` is the time of the part the law assumes untouched in the baseline; ``untouched_after_s``
    its time in each accelerated run (s). Diagnoses: that part's time changed by more than the tolerance in the run
    that missed; other processes used the cores.

    Examples
    --------
    >>> print(prediction_claim(["8 layers", "1 layer"], [1.62, 3.38], [1.60, 3.31], 10.3e-3, [10.2e-3, 10.3e-3]))
    held here: Amdahl's law predicts the measured speed-up (8 layers 1.62x predicted, 1.60x measured; 1
      layer 3.38x predicted, 3.31x measured)
    >>> v = prediction_claim(["1 layer"], [3.38], [2.6], 10.3e-3, [13.0e-3])
    >>> print(v.why)
    the untouched part took 13 ms in the 1 layer run against 10.3 ms in the baseline (+26%): Amdahl assumes it does not change
    """
    from efflab.claims import check, cores_contended, reason

    labels = [str(x) for x in labels]
    predicted = np.atleast_1d(v.positive(predicted, "predicted", "times faster"))
    measured = np.atleast_1d(v.positive(measured, "measured", "times faster"))
    after = np.atleast_1d(v.positive(untouched_after_s, "untouched_after_s", "s"))
    before = float(v.positive(untouched_before_s, "untouched_before_s", "s"))
    if not len(labels) == len(predicted) == len(measured) == len(after):
        raise ValueError("labels, predicted, measured and untouched_after_s must have one entry per run")
    miss = np.abs(measured / predicted - 1)
    worst = int(np.argmax(miss))
    change = after[worst] / before - 1
    return check(
        "Amdahl's law predicts the measured speed-up",
        bool(np.all(miss <= PREDICTION_TOLERANCE)),
        "; ".join(
            f"{n} {p:.2f}x predicted, {m:.2f}x measured" for n, p, m in zip(labels, predicted, measured, strict=True)
        ),
        [
            reason(
                abs(change) > PREDICTION_TOLERANCE,
                f"the untouched part took {after[worst] * 1e3:.3g} ms in the {labels[worst]} run against "
                f"{before * 1e3:.3g} ms in the baseline ({change:+.0%}): Amdahl assumes it does not change",
            ),
            cores_contended(),
        ],
    )


def bound_claim(label: str, measured, bound, terms_before_s, terms_after_s, lever_term: int, term_speedup, names=None):
    """ "A lever stays under the Amdahl bound of the term it shortens", judged on a measured run
    (:mod:`efflab.claims`).

    ``terms_before_s`` and ``terms_after_s`` are the per-item times of each term before and after the lever (s;
    ``names`` defaults to data, compute, idle); ``lever_term`` the index of the term it shortens; ``term_speedup`` the
    ``s`` the bound assumed. The measured speed-up beats the bound exactly when the other terms plus the lever's term
    end up shorter than the bound allowed, so the diagnoses are: a term the lever does not target shrank; the lever's
    own term sped up more than the assumed ``s``.

    Examples
    --------
    >>> print(bound_claim("B (prune)", 1.92, 2.0, [0, 50e-6, 1e-6], [0, 26e-6, 1e-6], 1, 2.0))
    held here: B (prune) stays under its Amdahl bound (1.92x measured, bound 2x: 96% of it)
    >>> v = bound_claim("C", 4.4, 3.98, [300e-6, 95e-6, 6e-6], [0.5e-6, 85e-6, 6e-6], 0, float("inf"))
    >>> print(v.why)
    compute, which the lever does not target, fell from 95 µs to 85 µs per item (-11%): the bound assumes it unchanged
    """
    from efflab.claims import check, reason

    if not isinstance(label, str) or not label:
        raise TypeError(f"label must be a non-empty string; got {label!r}")
    measured = float(v.positive(measured, "measured", "times faster"))
    bound = float(v.positive(bound, "bound", "times faster"))
    before = np.atleast_1d(v.nonnegative(terms_before_s, "terms_before_s", "s"))
    after = np.atleast_1d(v.nonnegative(terms_after_s, "terms_after_s", "s"))
    names = list(names) if names is not None else ["data", "compute", "idle"]
    if not len(before) == len(after) == len(names):
        raise ValueError(f"terms_before_s, terms_after_s and names must have one entry per term; got "
                         f"{len(before)}, {len(after)} and {len(names)}")  # fmt: skip
    k = v.integer(lever_term, "lever_term", "term index", low=0, high=len(names) - 1)
    s = float(v.positive(term_speedup, "term_speedup", "times faster", allow_inf=True))
    # The time per item the bound allows after the lever, and how much shorter the measured one is: a term explains
    # a beaten bound when its own unexpected saving covers at least half of that excess.
    excess_s = before.sum() / bound - before.sum() / measured
    saved = []  # (seconds saved beyond the bound's assumption, Reason)
    for j, name in enumerate(names):
        if j == k or before[j] <= 0:
            continue
        drop_s = before[j] - after[j]
        text = (
            f"{name}, which the lever does not target, fell from {before[j] * 1e6:.3g} µs to {after[j] * 1e6:.3g} µs "
            f"per item ({after[j] / before[j] - 1:+.0%}): the bound assumes it unchanged"
        )
        saved.append((drop_s, reason(excess_s > 0 and drop_s >= 0.5 * excess_s, text)))
    if before[k] > 0 and np.isfinite(s):
        drop_s = before[k] / s - after[k]
        text = f"the {names[k]} term sped up x{before[k] / max(after[k], 1e-300):.3g}, more than the x{s:.3g} the bound assumed"
        saved.append((drop_s, reason(excess_s > 0 and drop_s >= 0.5 * excess_s, text)))
    reasons = [r for _, r in sorted(saved, key=lambda item: -item[0])]  # the largest saving first
    return check(
        f"{label} stays under its Amdahl bound",
        measured <= bound * (1 + BOUND_SLACK),
        f"{measured:.3g}x measured, bound {bound:.3g}x: {measured / bound:.0%} of it",
        reasons,
    )


def serial_fraction_claim(e_fit: float, e_known: float, points: int):
    """ "Karp-Flatt's serial fraction is the work we know is serial", judged on a thread sweep (:mod:`efflab.claims`):
    the fitted ``e`` within ``SERIAL_SHARE_TOLERANCE`` of ``e_known`` (the share of the part that cannot use the
    threads, measured on one thread).

    ``points`` is the number of thread counts above one in the sweep. Diagnoses of an ``e`` above the known share:
    with one point Karp-Flatt cannot separate serial work from parallel overhead, so the overhead counts as serial;
    with several, the overhead of more threads; other processes used the cores.

    Examples
    --------
    >>> print(serial_fraction_claim(0.19, 0.183, 1))
    held here: Karp-Flatt's serial fraction is the share we know is serial (e = 0.190, known 0.183)
    >>> print(serial_fraction_claim(0.486, 0.183, 1).why)  # doctest: +NORMALIZE_WHITESPACE
    one point (p = 2) cannot tell serial work from parallel overhead: e = 0.486 counts the cost of running two
    threads as serial work, so Amdahl's cap from it (2.06x) is far below the 5.46x that the serial share alone allows
    """
    from efflab.claims import check, cores_contended, reason

    e_fit, e_known = float(e_fit), float(v.fraction(e_known, "e_known"))
    if not np.isfinite(e_fit):
        raise ValueError(f"e_fit must be a finite serial fraction; got {e_fit!r}")
    points = v.integer(points, "points", "thread counts above 1", low=1)
    above = e_fit > e_known + SERIAL_SHARE_TOLERANCE
    cap_fit = "no finite cap" if e_fit <= 0 else f"{1 / e_fit:.3g}x"
    cap_known = "no finite cap" if e_known <= 0 else f"{1 / e_known:.3g}x"
    return check(
        "Karp-Flatt's serial fraction is the share we know is serial",
        abs(e_fit - e_known) <= SERIAL_SHARE_TOLERANCE,
        f"e = {e_fit:.3f}, known {e_known:.3f}",
        [
            reason(
                above and points == 1,
                f"one point (p = 2) cannot tell serial work from parallel overhead: e = {e_fit:.3f} counts the cost "
                f"of running two threads as serial work, so Amdahl's cap from it ({cap_fit}) is far below the "
                f"{cap_known} that the serial share alone allows",
            ),
            reason(
                above and points > 1,
                f"e = {e_fit:.3f} is above the {e_known:.3f} known to be serial: the rest is the overhead of more "
                "threads (synchronisation, shared memory bandwidth), which Karp-Flatt counts as serial",
            ),
            cores_contended(),
        ],
    )
