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
    "gustafson_speedup",
    "karp_flatt",
    "pipeline_speedup",
    "pipeline_time_s",
    "required_speedup",
]


def _broadcast(**arrays: np.ndarray) -> list[np.ndarray]:
    """Broadcast validated arrays, naming the arguments when their shapes do not fit together."""
    try:
        return list(np.broadcast_arrays(*arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{name} {np.shape(a)}" for name, a in arrays.items())
        raise ValueError(f"{' and '.join(arrays)} must broadcast to one shape; got {shapes}") from None


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
    f, s = _broadcast(fraction=f, speedup=s)
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
    f, t = _broadcast(fraction=f, target=t)
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
    f, p = _broadcast(fraction=f, n=p)
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
    s, p = _broadcast(speedup=s, n=p)
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
    t, s = _broadcast(stage_times_s=t, speedups=s)
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
