"""Pareto mask, front, ranks, hypervolume and knee against brute-force oracles written here."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from helpers import raises_naming
from hypothesis import given, settings
from hypothesis import strategies as st

from efflab.pareto import _mask_nd, hypervolume, knee_point, pareto_front, pareto_mask, pareto_ranks

SEEDS = range(120)


def brute_mask(points, sense):
    """O(n^2) oracle: p is on the front iff no q is <= everywhere and < somewhere (after sense)."""
    c = np.asarray(points, dtype=float) * np.where(np.array(sense) == "max", -1.0, 1.0)
    le = (c[:, None, :] <= c[None, :, :]).all(axis=2)  # le[q, p]: q <= p everywhere
    lt = (c[:, None, :] < c[None, :, :]).any(axis=2)
    return ~(le & lt).any(axis=0)


def brute_ranks(points, sense):
    """Peel the brute-force front repeatedly."""
    pts = np.asarray(points, dtype=float)
    ranks = np.full(len(pts), -1)
    left, r = np.arange(len(pts)), 0
    while left.size:
        front = brute_mask(pts[left], sense)
        ranks[left[front]] = r
        left, r = left[~front], r + 1
    return ranks


def random_case(seed):
    """Points on small integer grids (many ties and duplicates) or continuous; 1 to 5 objectives; mixed senses."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 6))
    n = int(rng.integers(1, 160))
    if seed % 3 == 0:
        pts = rng.random((n, m)) * rng.choice([1e-3, 1.0, 1e6], size=m)
    else:
        pts = rng.integers(0, int(rng.integers(2, 8)), size=(n, m)).astype(float)
        if seed % 3 == 2:
            pts = np.concatenate([pts, pts[rng.integers(0, n, size=n // 3)]])  # exact duplicates
    sense = list(rng.choice(["min", "max"], size=m))
    return pts, sense


@pytest.mark.parametrize("seed", SEEDS)
def test_mask_matches_brute_force(seed):
    pts, sense = random_case(seed)
    expected = brute_mask(pts, sense)
    np.testing.assert_array_equal(pareto_mask(pts, sense), expected)
    if seed % 3:  # integer grids: integer input gives the same answer
        np.testing.assert_array_equal(pareto_mask(pts.astype(np.int64), sense), expected)
    signs = np.where(np.array(sense) == "max", -1.0, 1.0)
    if pts.shape[1] >= 2:
        np.testing.assert_array_equal(_mask_nd(pts * signs), expected)
        np.testing.assert_array_equal(_mask_nd(pts * signs, prefilter=False), expected)


@pytest.mark.parametrize("seed", range(0, 120, 4))
def test_front_is_sorted_subset(seed):
    pts, sense = random_case(seed)
    front, index = pareto_front(pts, sense, return_index=True)
    np.testing.assert_array_equal(np.sort(index), np.flatnonzero(brute_mask(pts, sense)))
    np.testing.assert_array_equal(front, pts[index])
    assert (np.diff(front[:, 0]) >= 0).all()
    np.testing.assert_array_equal(pareto_front(pts, sense), front)


@pytest.mark.parametrize("seed", SEEDS)
def test_ranks_match_peeling(seed):
    pts, sense = random_case(seed)
    np.testing.assert_array_equal(pareto_ranks(pts, sense), brute_ranks(pts, sense))


def test_large_2d_ranks_and_mask():
    rng = np.random.default_rng(7)
    pts = rng.integers(0, 40, size=(1500, 2)).astype(float)
    np.testing.assert_array_equal(pareto_ranks(pts), brute_ranks(pts, ["min", "min"]))
    pts = rng.random((3000, 3))
    np.testing.assert_array_equal(pareto_mask(pts), brute_mask(pts, ["min"] * 3))


def test_all_front_and_duplicates():
    x = np.linspace(0, 1, 2001)
    pts = np.column_stack([x, 1 - x])
    assert pareto_mask(pts).all()
    assert pareto_mask(np.concatenate([pts, pts])).all()  # every duplicate of a front point is kept
    assert pareto_mask([[1, 1], [1, 1], [1, 2]]).tolist() == [True, True, False]
    assert pareto_mask([[2.0], [1.0], [1.0], [3.0]]).tolist() == [False, True, True, False]
    assert pareto_mask([[2.0], [1.0]], sense="max").tolist() == [True, False]
    assert pareto_mask(np.zeros((0, 3))).shape == (0,)
    assert pareto_ranks(np.zeros((0, 2))).shape == (0,)


def hv_inclusion_exclusion(points, ref):
    """Oracle: volume of a union of boxes [p, ref] by inclusion-exclusion (small n only)."""
    pts = [p for p in np.asarray(points, float) if (p < ref).all()]
    total = 0.0
    for k in range(1, len(pts) + 1):
        for subset in itertools.combinations(pts, k):
            corner = np.max(subset, axis=0)  # intersection of boxes [p, ref] is [max p, ref]
            total += (-1) ** (k + 1) * np.prod(ref - corner)
    return total


@pytest.mark.parametrize("seed", range(40))
def test_hypervolume_inclusion_exclusion(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 5))
    n = int(rng.integers(1, 9))
    pts = rng.integers(0, 5, size=(n, m)).astype(float) if seed % 2 else rng.random((n, m))
    ref = np.full(m, 4.5 if seed % 2 else 0.9)
    assert hypervolume(pts, ref) == pytest.approx(hv_inclusion_exclusion(pts, ref), rel=1e-12, abs=1e-12)
    sense = list(rng.choice(["min", "max"], size=m))
    signs = np.where(np.array(sense) == "max", -1.0, 1.0)
    assert hypervolume(pts * signs, ref * signs, sense) == pytest.approx(hypervolume(pts, ref), rel=1e-12)


def test_hypervolume_3d_monte_carlo():
    rng = np.random.default_rng(3)
    pts = rng.random((60, 3))
    ref = np.ones(3)
    exact = hypervolume(pts, ref)
    samples = rng.random((200_000, 3))
    dominated = np.zeros(len(samples), dtype=bool)
    for p in pts:
        dominated |= (samples >= p).all(axis=1)
    estimate = dominated.mean()  # the reference box has volume 1
    sigma = math.sqrt(estimate * (1 - estimate) / len(samples))
    assert abs(exact - estimate) < 5 * sigma


@pytest.mark.parametrize("seed", range(20))
def test_hypervolume_never_decreases_when_a_point_is_added(seed):
    rng = np.random.default_rng(seed)
    m = 2 + seed % 2
    pts = rng.integers(0, 1000, size=(30, m))  # integers: the upstream bug
    ref = np.full(m, 1000)
    hv = [hypervolume(pts[:k], ref) for k in range(1, len(pts) + 1)]
    assert (np.diff(hv) >= 0).all()
    assert hypervolume(pts, ref) == pytest.approx(hypervolume(pts.astype(float), ref.astype(float)))


def test_hypervolume_hand_cases():
    assert hypervolume([[1, 3], [2, 2], [3, 1]], [4, 4]) == 6.0
    assert hypervolume([[1, 1, 1]], [2, 3, 4]) == 6.0
    assert hypervolume([[5, 5]], [4, 4]) == 0.0  # worse than the reference: ignored
    assert hypervolume([[1, 4]], [4, 4]) == 0.0  # ties the reference in one objective: no volume
    assert hypervolume([[1.0], [3.0]], 4.0) == 3.0
    assert hypervolume(np.zeros((0, 2)), [1, 1]) == 0.0


def brute_knee(points):
    """Oracle: largest distance below the line through the normalised front's extremes, computed geometrically."""
    f = np.asarray(points, float)[brute_mask(points, ["min", "min"])]
    a, b = f[np.argmin(f[:, 0])], f[np.argmin(f[:, 1])]
    z = (f - f.min(axis=0)) / (f.max(axis=0) - f.min(axis=0))
    za, zb = (a - f.min(axis=0)) / np.ptp(f, axis=0), (b - f.min(axis=0)) / np.ptp(f, axis=0)
    normal = np.array([zb[1] - za[1], za[0] - zb[0]])  # points towards the ideal (0, 0)
    d = (z - za) @ normal / np.linalg.norm(normal)
    return f[np.argmax(d)]


@pytest.mark.parametrize("seed", range(20))
def test_knee_matches_geometry(seed):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.random(30))
    y = (1 - x) ** (2 + seed % 3) * 50 + rng.random(30) * 0.01  # convex-ish front plus noise
    pts = np.column_stack([x, y])
    np.testing.assert_allclose(knee_point(pts), brute_knee(pts))
    # sense flips and scaling do not move the knee
    point, index = knee_point(np.column_stack([-x * 1e3, y]), sense=["max", "min"], return_index=True)
    np.testing.assert_allclose(pts[index], brute_knee(pts))


def test_knee_edge_cases():
    assert knee_point([[1, 1], [2, 2]]).tolist() == [1.0, 1.0]
    assert knee_point([[0, 1], [1, 0]]).tolist() == [0.0, 1.0]  # tie: smaller first objective
    assert knee_point([[0, 10], [1, 2], [1, 2], [10, 0]], return_index=True)[1] == 1


# ---- bad input -----------------------------------------------------------------------------------------------------

BAD_POINTS = st.one_of(
    st.just([[1.0, math.nan]]),
    st.just([[1.0, math.inf], [0.0, 0.0]]),
    st.just(np.zeros((2, 2, 2))),
    st.just(np.zeros((3, 0))),
    st.just("points"),
    st.just(None),
    st.just([[1.0, 2.0], [3.0]]),
    st.just(np.array([[True, False]])),
    st.just(5.0),
    st.lists(st.lists(st.floats(), min_size=2, max_size=2), min_size=1, max_size=4).filter(
        lambda rows: not np.isfinite(np.array(rows)).all()
    ),
)
BAD_SENSE = st.one_of(
    st.just(["min"]),
    st.just(["min", "max", "min"]),
    st.just(["min", "best"]),
    st.just("minimise"),
    st.just(["min", None]),
    st.just(3),
    st.just([1, -1]),
)
ALL = [pareto_mask, pareto_front, pareto_ranks, knee_point]


@settings(max_examples=50, deadline=None)
@given(bad=BAD_POINTS)
def test_bad_points(bad):
    for fn in ALL:
        raises_naming(fn, "points", bad)
    raises_naming(hypervolume, "points", bad, [1.0, 1.0])


@settings(max_examples=50, deadline=None)
@given(bad=BAD_SENSE)
def test_bad_sense(bad):
    pts = [[1.0, 2.0], [2.0, 1.0]]
    for fn in ALL:
        raises_naming(fn, "sense", pts, bad)
    raises_naming(hypervolume, "sense", pts, [3.0, 3.0], bad)


@settings(max_examples=50, deadline=None)
@given(bad=st.one_of(st.just([1.0]), st.just([1.0, math.nan]), st.just([1.0, -math.inf]), st.just("ref"), st.none()))
def test_bad_reference(bad):
    raises_naming(hypervolume, "reference", [[0.0, 0.0]], bad)


def test_knee_needs_two_objectives():
    raises_naming(knee_point, "points", [[1.0, 2.0, 3.0]])
    raises_naming(knee_point, "points", [1.0, 2.0])
    raises_naming(knee_point, "points", np.zeros((0, 2)))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=2, max_size=2),
        min_size=1,
        max_size=12,
    )
)
def test_extreme_finite_values_never_give_nan(rows):
    pts = np.array(rows)
    np.testing.assert_array_equal(pareto_mask(pts), brute_mask(pts, ["min", "min"]))
    try:
        hv = hypervolume(pts, [1e308, 1e308])
    except ValueError as exc:
        assert "overflows" in str(exc)
    else:
        assert not math.isnan(hv) and hv >= 0
    assert np.isfinite(knee_point(pts)).all()


def test_layouts_and_no_mutation():
    rng = np.random.default_rng(11)
    pts = rng.integers(0, 6, size=(400, 3)).astype(float)
    before = pts.copy()
    expected = brute_mask(pts, ["min", "max", "min"])
    for view in (pts, np.asfortranarray(pts), pts[::-1][::-1], pts.astype(np.float32), pts.tolist()):
        np.testing.assert_array_equal(pareto_mask(view, ["min", "max", "min"]), expected)
    strided = np.repeat(pts, 2, axis=0)[::2]
    np.testing.assert_array_equal(pareto_mask(strided, ["min", "max", "min"]), expected)
    pareto_front(pts, ["min", "max", "min"])
    hypervolume(pts, [9.0, -1.0, 9.0], ["min", "max", "min"])
    np.testing.assert_array_equal(pts, before)


def test_knee_returns_a_copy():
    pts = np.array([[0.0, 10.0], [1.0, 2.0], [10.0, 0.0]])
    knee_point(pts)[:] = -1
    assert pts[1].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_hypervolume_is_a_python_float_in_every_dimension(m):
    points = np.full((1, m), 1.0)
    volume = hypervolume(points, reference=np.full(m, 3.0))
    assert type(volume) is float and volume == 2.0**m  # one box of side 2
