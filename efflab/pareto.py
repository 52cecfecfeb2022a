"""Pareto fronts: which configurations are worth considering when no single one wins on every metric.

Principle 1 of the course: every optimisation trades one metric for another (accuracy for latency, memory for
energy), and the sensible choices are the *non-dominated* ones. Point ``a`` dominates ``b`` when ``a`` is at least as
good in every objective and strictly better in at least one; the Pareto front is the set of points nothing dominates.
Exact duplicates of a front point are all on the front (neither dominates the other).

Objectives are minimised by default; ``sense`` gives "min" or "max" per objective (or one string for all). Inside,
maximised objectives are negated so every algorithm minimises. Coordinates are float64 throughout (integer inputs
are converted: integer arithmetic once made an upstream hypervolume shrink when a point was added).

Algorithms (n points, m objectives):

* 1 objective: the minimum, with all its ties.
* 2 objectives: an O(n log n) sweep. Sort by the first objective; a point is on the front when its second objective
  is the smallest in its group of equal first objectives *and* strictly smaller than every earlier group's. One
  vectorised pass (``np.minimum.accumulate`` over group minima); an O(n) pre-filter first drops every point
  dominated by a few strong points, which leaves little to sort when the front is small.
* 3+ objectives: the same pre-filter, then sort in an order where a dominator always comes first (normalised sum, ties broken
  lexicographically), then take blocks of the survivors, keep the block's non-dominated points and delete every later
  point they dominate, vectorised. A small front empties the set after a block or two; a large front costs about
  n^2 m / 2 comparisons, done a block at a time in numpy.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from typing import TypeAlias

import numpy as np
from numpy.typing import ArrayLike

from efflab import _validate as v

__all__ = ["hypervolume", "knee_point", "pareto_front", "pareto_mask", "pareto_ranks"]

Sense: TypeAlias = str | Iterable[str] | None
"""Per-objective direction: None (minimise all), "min" or "max" for all, or one of them per objective."""

_PAIR_BUDGET = 1 << 22  # boolean pair comparisons held at once (4 MiB): bounds memory, keeps numpy calls large


def _prepare(points: ArrayLike, sense: Sense) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate; return (points as float64 (n, m), costs to minimise, per-objective signs +1 min / -1 max).

    When an objective is maximised the costs are a negated, Fortran-ordered copy (each objective a contiguous
    column: numpy runs long 1-D passes several times faster than reductions over a short trailing axis); when all
    are minimised the validated copy itself is used, which saves a pass and an allocation on large inputs.
    """
    raw: np.ndarray | None = None
    if isinstance(points, np.ndarray) and points.dtype == np.float64 and points.ndim == 2 and points.shape[1] > 0:
        with np.errstate(over="ignore", invalid="ignore"):
            if math.isfinite(points.sum()):  # one pass; NaN, inf or an overflow all take the checked path
                raw = points  # already valid: skip the defensive copy (nothing here writes to it)
    if raw is None:
        raw = v.points_2d(points, "points")  # converts, or raises the shared, named error
    n, m = raw.shape
    if sense is None:
        items = ["min"] * m
    elif isinstance(sense, str):
        items = [sense] * m
    else:
        try:
            items = list(sense)
        except TypeError:
            raise TypeError(f"sense must be None, 'min', 'max' or a sequence of them; got {sense!r}") from None
        if len(items) != m:
            raise ValueError(f"sense must have one entry per objective ({m}); got {len(items)}")
    signs = np.array([1.0 if v.choice(s, "sense", ["min", "max"]) == "min" else -1.0 for s in items])
    if (signs > 0).all():
        return raw, raw, signs
    costs = np.empty((n, m), order="F")
    for k in range(m):
        np.multiply(raw[:, k], signs[k], out=costs[:, k])
    return raw, costs, signs


def _prefilter(c: np.ndarray) -> np.ndarray:
    """Indices of the points that survive elimination by a few strong points (exact: only dominated points go).

    Each round takes the point p of least normalised sum in a sample of about 4096 points and drops the points that
    are worse than p in the first objective and no better in any other, one vectorised pass per objective (points
    tied with p in the first objective stay, so duplicates of p survive; the exact pass settles them). Rounds repeat
    while they remove at least half of what is left. On a typical cloud this leaves a few hundred points for the
    exact algorithm; on an all-front set it costs one round.
    """
    keep, sub = np.arange(c.shape[0]), c
    while keep.size > 64:
        sample = sub[:: max(1, keep.size // 4096)]
        z = np.zeros(sample.shape[0])
        for k in range(c.shape[1]):
            scale = np.abs(sample[:, k]).max()  # scaling keeps the sum finite near the float64 limit
            z += sample[:, k] / scale if scale > 0 else sample[:, k]
        p = sample[np.argmin(z)]
        # survivors: not worse than p in the first objective, or better in another. Everything dropped is dominated
        # by p (worse in the first objective, no better elsewhere); duplicates of p stay.
        better = sub[:, 0] <= p[0]
        for k in range(1, c.shape[1]):
            better |= sub[:, k] < p[k]
        survivors = np.flatnonzero(better)
        done = 2 * survivors.size > keep.size
        keep = keep[survivors]
        if done:
            break
        sub = c[keep]
    return keep


def _mask_2d(c: np.ndarray) -> np.ndarray:
    keep = _prefilter(c)
    x, y = c[keep, 0], c[keep, 1]
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    start = np.ones(xs.size, dtype=bool)
    start[1:] = xs[1:] != xs[:-1]
    group = np.cumsum(start) - 1
    group_min = np.minimum.reduceat(ys, np.flatnonzero(start))
    earlier_min = np.concatenate(([np.inf], np.minimum.accumulate(group_min)[:-1]))
    on = (group_min < earlier_min)[group] & (ys == group_min[group])
    mask = np.zeros(c.shape[0], dtype=bool)
    mask[keep[order[on]]] = True
    return mask


def _dominated_by(cand: np.ndarray, front: np.ndarray) -> np.ndarray:
    """For distinct rows where no ``cand`` row precedes a ``front`` row: is each cand row <= some front row?"""
    out = np.zeros(cand.shape[0], dtype=bool)
    if front.shape[0] == 0:
        return out
    step = max(1, _PAIR_BUDGET // front.shape[0])
    for lo in range(0, cand.shape[0], step):
        block = cand[lo : lo + step]
        le = front[None, :, 0] <= block[:, None, 0]
        for k in range(1, cand.shape[1]):
            le &= front[None, :, k] <= block[:, None, k]
        out[lo : lo + step] = le.any(axis=1)
    return out


def _topological_order(c: np.ndarray) -> np.ndarray:
    """An order in which every point comes after all points that dominate it.

    Floating-point sums are monotone, so a dominator's normalised sum is <= the dominated point's; when sums tie,
    a lexicographic sort puts a dominator first.
    """
    total = np.zeros(c.shape[0])
    for k in range(c.shape[1]):  # column by column: numpy reduces a short trailing axis slowly
        scale = np.abs(c[:, k]).max()
        total += c[:, k] / scale if scale > 0 else c[:, k]
    order = np.argsort(total, kind="stable")
    if (total[order[1:]] == total[order[:-1]]).any():  # ties (integer grids, duplicates): break them lexicographically
        order = np.lexsort(tuple(c[:, k] for k in range(c.shape[1] - 1, -1, -1)) + (total,))
    return order


def _mask_nd(c: np.ndarray, prefilter: bool = True) -> np.ndarray:
    if prefilter:
        keep = _prefilter(c)
        mask = np.zeros(c.shape[0], dtype=bool)
        mask[keep] = _mask_nd(c[keep], prefilter=False)
        return mask
    n = c.shape[0]
    order = _topological_order(c)
    s = c[order]
    first = np.ones(n, dtype=bool)
    first[1:] = (s[1:] != s[:-1]).any(axis=1)  # duplicates are adjacent: work on distinct rows
    run = np.cumsum(first) - 1
    u = s[first]
    on_front = np.zeros(u.shape[0], dtype=bool)
    alive = np.arange(u.shape[0])
    block = 64  # small first blocks: the strongest points usually delete most of the rest at once
    while alive.size:
        head, alive = alive[:block], alive[block:]
        rows = u[head]
        # within the block, any other row <= everywhere dominates (rows are distinct); the diagonal counts once
        le = rows[None, :, 0] <= rows[:, None, 0]
        for k in range(1, u.shape[1]):
            le &= rows[None, :, k] <= rows[:, None, k]
        keep = head[le.sum(axis=1) == 1]
        on_front[keep] = True
        alive = alive[~_dominated_by(u[alive], u[keep])]
        block = min(2 * block, 2048)
    mask = np.empty(n, dtype=bool)
    mask[order] = on_front[run]
    return mask


def _mask(c: np.ndarray) -> np.ndarray:
    n, m = c.shape
    if n == 0:
        return np.zeros(0, dtype=bool)
    if m == 1:
        return c[:, 0] == c[:, 0].min()
    return _mask_2d(c) if m == 2 else _mask_nd(c)


def pareto_mask(points: ArrayLike, sense: Sense = None) -> np.ndarray:
    """Boolean mask of the non-dominated points (the Pareto front).

    ``a`` dominates ``b`` iff ``a_k <= b_k`` for every objective ``k`` and ``a_k < b_k`` for at least one (after
    negating maximised objectives). Duplicates of a front point are all on the front.

    Parameters
    ----------
    points : array_like, shape (n_points, n_objectives)
        Finite values in any units (a 1-D array is n points of one objective). NaN or inf raise ``ValueError``.
    sense : None, "min", "max" or sequence of them
        Per objective whether smaller or larger is better; None means minimise all.

    Returns
    -------
    ndarray of bool, shape (n_points,)
        True for points on the front.

    References
    ----------
    H. T. Kung, F. Luccio, F. P. Preparata, "On finding the maxima of a set of vectors", J. ACM 22(4), 1975.

    Examples
    --------
    Latency (s, lower is better) against accuracy (higher is better):

    >>> pareto_mask([[0.010, 0.70], [0.020, 0.80], [0.030, 0.75], [0.010, 0.70]], sense=["min", "max"])
    array([ True,  True, False,  True])
    """
    _, c, _ = _prepare(points, sense)
    return _mask(c)


def pareto_front(points: ArrayLike, sense: Sense = None, return_index: bool = False):
    """The front's points, sorted along the first objective (ascending, then by the next objectives).

    Same dominance rule as :func:`pareto_mask`; values are returned in the caller's units and sense.

    Parameters
    ----------
    points : array_like, shape (n_points, n_objectives)
        Finite values.
    sense : None, "min", "max" or sequence of them
        Per-objective direction; None minimises all.
    return_index : bool
        Also return the front's row indices into ``points``.

    Returns
    -------
    front : ndarray, shape (n_front, n_objectives)
    index : ndarray of int, shape (n_front,)
        Only when ``return_index`` is True.

    Examples
    --------
    >>> pareto_front([[3, 1], [1, 3], [2, 2], [3, 3]])
    array([[1., 3.],
           [2., 2.],
           [3., 1.]])
    """
    raw, c, _ = _prepare(points, sense)
    idx = np.flatnonzero(_mask(c))
    idx = idx[np.lexsort(raw[idx].T[::-1])]
    return (raw[idx], idx) if return_index else raw[idx]


def _ranks_2d(c: np.ndarray) -> np.ndarray:
    """Non-dominated rank in 2-D: one pass in (x, y) order keeping the least y seen at each rank."""
    order = np.lexsort((c[:, 1], c[:, 0]))
    xs, ys = c[order, 0].tolist(), c[order, 1].tolist()
    ranks = [0] * len(xs)
    least_y: list[float] = []  # least y of each rank among finished groups (non-decreasing in rank)
    a = 0
    while a < len(xs):
        b = a
        while b < len(xs) and xs[b] == xs[a]:
            b += 1
        for t in range(a, b):  # same x, ascending y: earlier distinct y in the group dominate
            r = bisect_right(least_y, ys[t])
            if t > a:
                r = ranks[t - 1] if ys[t] == ys[t - 1] else max(r, ranks[t - 1] + 1)
            ranks[t] = r
        for t in range(a, b):
            if ranks[t] == len(least_y):
                least_y.append(ys[t])
            else:
                least_y[ranks[t]] = min(least_y[ranks[t]], ys[t])
        a = b
    out = np.empty(len(xs), dtype=np.int64)
    out[order] = ranks
    return out


def pareto_ranks(points: ArrayLike, sense: Sense = None) -> np.ndarray:
    """Non-dominated sorting: rank 0 is the front, rank 1 the front once rank 0 is removed, and so on.

    ``rank(p) = 0`` if nothing dominates ``p``, else ``1 + max(rank(q) for q dominating p)``, which equals the peeling
    definition. Duplicates share a rank. 1-D: dense rank of the values; 2-D: an O(n log n) pass; 3+ objectives:
    repeated :func:`pareto_mask` on what is left.

    Parameters
    ----------
    points : array_like, shape (n_points, n_objectives)
        Finite values.
    sense : None, "min", "max" or sequence of them
        Per-objective direction; None minimises all.

    Returns
    -------
    ndarray of int64, shape (n_points,)

    References
    ----------
    K. Deb et al., "A fast and elitist multiobjective genetic algorithm: NSGA-II", IEEE TEC 6(2), 2002.

    Examples
    --------
    >>> pareto_ranks([[1, 3], [2, 2], [3, 3], [3, 1], [4, 4]])
    array([0, 0, 1, 0, 2])
    """
    _, c, _ = _prepare(points, sense)
    n, m = c.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if m == 1:
        return np.unique(c[:, 0], return_inverse=True)[1].astype(np.int64).ravel()
    if m == 2:
        return _ranks_2d(c)
    ranks = np.empty(n, dtype=np.int64)
    left, rank = np.arange(n), 0
    while left.size:
        front = _mask_nd(c[left])
        ranks[left[front]] = rank
        left, rank = left[~front], rank + 1
    return ranks


def _hv(c: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of points that all strictly beat ``ref`` (minimisation), by slicing the last objective."""
    m = c.shape[1]
    if m == 1:
        return float(ref[0] - c[:, 0].min())
    f = np.unique(c[_mask(c)], axis=0)  # distinct front rows, sorted by the first objective
    if m == 2:  # a 2-D front sorted by x has decreasing y: a sum of rectangles
        widths = np.diff(np.append(f[:, 0], ref[0]))
        return float((widths * (ref[1] - f[:, 1])).sum())
    f = f[np.argsort(f[:, -1], kind="stable")]
    z_next = np.append(f[1:, -1], ref[-1])
    total = 0.0
    for i in range(f.shape[0]):
        depth = z_next[i] - f[i, -1]
        if depth > 0:  # equal z: the slice is empty (and skipping it avoids 0 * inf)
            total += _hv(f[: i + 1, :-1], ref[:-1]) * depth
    return total


def hypervolume(points: ArrayLike, reference: ArrayLike, sense: Sense = None) -> float:
    """Volume of objective space dominated by the points and bounded by a reference point (exact).

    ``HV = vol( union_p [p, r] )`` for minimised objectives (boxes from each point to the reference). Only points
    strictly better than the reference in every objective count; the others add no volume and are ignored. Exact in
    any dimension: a sweep in 2-D (O(n log n)), slicing along the last objective above (3-D: O(n^2 log n); the cost
    grows as n^(m-1), so keep 4+ objective fronts small).

    Parameters
    ----------
    points : array_like, shape (n_points, n_objectives)
        Finite values, in the same units as ``reference``.
    reference : array_like, shape (n_objectives,)
        Finite reference point, worse than the interesting points in every objective.
    sense : None, "min", "max" or sequence of them
        Per-objective direction; None minimises all.

    Returns
    -------
    float
        Hypervolume in the product of the objectives' units; 0.0 when no point beats the reference.

    Raises
    ------
    ValueError
        Bad points, sense or reference, or a volume too large for float64 (rescale the objectives).

    References
    ----------
    E. Zitzler, L. Thiele, "Multiobjective optimization using evolutionary algorithms: a comparative case study",
    PPSN V, 1998; L. While et al., "A faster algorithm for calculating hypervolume", IEEE TEC 10(1), 2006 (slicing).

    Examples
    --------
    >>> hypervolume([[1, 3], [2, 2], [3, 1]], reference=[4, 4])
    6.0
    >>> hypervolume([[0.9, 0.01]], reference=[0.5, 0.05], sense=["max", "min"])
    0.016
    """
    _, c, signs = _prepare(points, sense)
    m = c.shape[1]
    ref = v.real(reference, "reference")
    if ref.shape != (m,) and not (m == 1 and ref.ndim == 0):
        raise ValueError(f"reference must have shape ({m},), one value per objective; got shape {ref.shape}")
    ref = ref.reshape(m) * signs
    c = c[(c < ref).all(axis=1)]
    if c.shape[0] == 0:
        return 0.0
    with np.errstate(over="ignore"):
        volume = _hv(c, ref)
    if math.isinf(volume):
        raise ValueError("the hypervolume of points against reference overflows float64 (> 1.8e308); rescale them")
    return float(volume)  # a Python float in any dimension (the slicing recursion yields np.float64)


def knee_point(points: ArrayLike, sense: Sense = None, return_index: bool = False):
    """The knee of a 2-D front: the front point farthest from the line joining its two extremes.

    Normalise the front so each objective spans [0, 1] (best = 0); the extremes are then (0, 1) and (1, 0) and the
    signed distance towards the ideal point (0, 0) is ``d = (1 - x' - y') / sqrt(2)``. The knee maximises ``d``:
    the point where improving one objective further starts to cost the most in the other. On a concave front no
    point bulges towards the ideal and an extreme is returned. Ties go to the smaller first objective.

    Parameters
    ----------
    points : array_like, shape (n_points, 2)
        Finite values; exactly two objectives (``ValueError`` otherwise).
    sense : None, "min", "max" or sequence of them
        Per-objective direction; None minimises both.
    return_index : bool
        Also return the knee's row index into ``points`` (the first, if duplicated).

    Returns
    -------
    point : ndarray, shape (2,)
        The knee in the caller's units.
    index : int
        Only when ``return_index`` is True.

    References
    ----------
    I. Das, "On characterizing the 'knee' of the Pareto curve based on normal-boundary intersection", Structural
    Optimization 18, 1999; J. Branke et al., "Finding knees in multi-objective optimization", PPSN VIII, 2004.

    Examples
    --------
    >>> knee_point([[0, 10], [1, 2], [2, 1.5], [10, 0]], return_index=True)
    (array([1., 2.]), 1)
    """
    raw, c, _ = _prepare(points, sense)
    if c.shape[1] != 2:
        raise ValueError(f"points must have exactly 2 objectives for knee_point; got {c.shape[1]}")
    if c.shape[0] == 0:
        raise ValueError("points must contain at least one point for knee_point; got none")
    idx = np.flatnonzero(_mask(c))
    idx = idx[np.lexsort((idx, raw[idx, 1], raw[idx, 0]))]  # ties: smaller first objective, then first row
    g = c[idx] / np.maximum(np.abs(c[idx]).max(axis=0), np.finfo(float).tiny)  # scale first: no overflow below
    lo, span = g.min(axis=0), np.ptp(g, axis=0)
    if (span == 0).any():  # one distinct front point (in 2-D distinct front points differ in both objectives)
        best = idx[0]
    else:
        z = (g - lo) / span
        best = idx[np.argmax(1.0 - z[:, 0] - z[:, 1])]
    point = raw[best].copy()  # never a view into the caller's array
    return (point, int(best)) if return_index else point
