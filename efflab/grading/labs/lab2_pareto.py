"""Lab 2, "Walking the Pareto frontier": grading spec (questions, hidden inputs, reference solutions).

The master is ``labs/masters/lab2_pareto.ipynb``; the student notebook ``labs/lab2_pareto.ipynb`` is generated from it
by ``efflab assign --lab lab2_pareto``. The student prunes, quantizes and distils the digits MLP of chapter 2 with
:mod:`efflab.compress`, records every variant's bytes, latency and accuracy, and answers:

- q1 ``magnitude_mask`` (function): the keep-mask of unstructured magnitude pruning, against
  :func:`efflab.compress.magnitude_prune` on hidden weight matrices;
- q2 ``pareto_mask`` (function): the non-dominated filter, against :func:`efflab.pareto.pareto_mask` (itself tested
  against brute force) on small hidden point sets with ties, duplicates and mixed min/max objectives;
- q3 ``front_indices`` (derived): the variants on the student's own measured three-objective frontier;
- q4 ``choose`` (function): the operating point under a memory budget, a latency budget and an accuracy floor, against
  :func:`efflab.compress.best_feasible` on hidden tables full of ties;
- q5 ``edge_choice`` and q6 ``server_choice`` (derived): the student's ``choose`` applied to their own measured table
  for the two deployment targets below.
"""

from __future__ import annotations

import math

import numpy as np

from efflab.grading.spec import Case, Lab, Question

# The two deployment targets of the lab (the notebook states the same numbers; a student who changes them there
# answers a different question and loses those points).
# Edge: a microcontroller that keeps the weights in 16 KiB of SRAM (e.g. the smallest Cortex-M0+ parts ship 16 KiB of
# RAM) and must stay above 95 % accuracy.
EDGE_MEMORY_BYTES = 16 * 1024
EDGE_ACCURACY_FLOOR = 0.95
# Server: memory is plentiful, but a batch must run at least 3x faster than the fp32 model does on the student's
# machine (row 0 of the recorded table), at no less than 97 % accuracy.
SERVER_SPEEDUP = 3.0
SERVER_ACCURACY_FLOOR = 0.97
SENSE = ("min", "min", "max")  # size_bytes, latency_s, accuracy
# The lab's trained model in fp32: weights and biases of 64 -> 256 -> 256 -> 10, 4 bytes each (340,008 B).
FP32_BYTES = 4 * sum(a * b + b for a, b in zip((64, 256, 256), (256, 256, 10), strict=True))


# ------------------------------------------------------------------------------------------------- references
def magnitude_mask(weight, sparsity):
    """Keep-mask (True = kept) of :func:`efflab.compress.magnitude_prune` on one weight tensor of any shape.

    >>> magnitude_mask(np.array([[0.3, -0.1], [2.0, 0.05]]), 0.5).tolist()
    [[True, False], [True, False]]
    """
    import torch

    from efflab.compress import magnitude_prune

    w = np.asarray(weight, dtype=float)
    flat = torch.tensor(w.reshape(1, -1), dtype=torch.float64)
    layer = torch.nn.Linear(flat.shape[1], 1, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(flat)
    _, masks = magnitude_prune(torch.nn.Sequential(layer), float(sparsity))
    return masks[0].numpy().reshape(w.shape) != 0


def pareto_mask(points, sense):
    """:func:`efflab.pareto.pareto_mask` (tested against brute force in ``tests/test_pareto.py``)."""
    from efflab.pareto import pareto_mask as reference

    return reference(np.asarray(points, dtype=float), [str(s) for s in np.atleast_1d(sense)])


def choose(size_bytes, latency_s, accuracy, memory_budget_bytes, latency_budget_s, accuracy_floor):
    """Index of :func:`efflab.compress.best_feasible`'s choice among the rows of a variant table, -1 if none fits.

    >>> choose([340_008, 9_640, 13_864], [4e-4, 4e-5, 5e-5], [0.987, 0.971, 0.971], 50_000, math.inf, 0.95)
    1
    >>> choose([340_008], [4e-4], [0.987], 1_000, math.inf, 0.0)
    -1
    """
    from efflab.compress import Variant, best_feasible

    table = [
        Variant(str(i), "table", float(a), float(s), float(t), flops_per_sample=1.0, batch_size=1)
        for i, (s, t, a) in enumerate(zip(np.ravel(size_bytes), np.ravel(latency_s), np.ravel(accuracy), strict=True))
    ]
    best = best_feasible(
        table,
        max_size_bytes=float(memory_budget_bytes),
        max_latency_s=float(latency_budget_s),
        min_accuracy=float(accuracy_floor),
    )
    return -1 if best is None else next(i for i, x in enumerate(table) if x is best)


def front_indices(size_bytes, latency_s, accuracy):
    """Rows of the recorded table on the (size, latency, accuracy) frontier, ascending."""
    return np.flatnonzero(pareto_mask(np.column_stack([size_bytes, latency_s, accuracy]), SENSE))


def edge_choice(size_bytes, latency_s, accuracy):
    """The edge target's operating point in the recorded table."""
    return choose(size_bytes, latency_s, accuracy, EDGE_MEMORY_BYTES, math.inf, EDGE_ACCURACY_FLOOR)


def server_choice(size_bytes, latency_s, accuracy):
    """The server target's operating point: latency budget a third of row 0's (fp32) measured latency."""
    budget_s = float(np.ravel(latency_s)[0]) / SERVER_SPEEDUP
    return choose(size_bytes, latency_s, accuracy, math.inf, budget_s, SERVER_ACCURACY_FLOOR)


def _plausible_table(size_bytes, latency_s, accuracy) -> str:
    """ "" when the recording looks like the lab's variant table (row 0 the fp32 model), else why not."""
    s, t, a = (np.ravel(x).astype(float) for x in (size_bytes, latency_s, accuracy))
    if not (s.size == t.size == a.size):
        return "size_bytes, latency_s and accuracy must have one entry per variant (same lengths)"
    if s.size < 6:
        return "record at least 6 variants (fp32 first, then quantized, pruned and distilled ones)"
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(t)) and np.all(np.isfinite(a))):
        return "every recorded value must be finite"
    if not (np.all(s > 0) and np.all(t > 0)):
        return "sizes (bytes) and latencies (s) must be positive"
    if np.any(t > 10.0):
        return "a latency above 10 s per batch is not a measurement of these models"
    if not np.all((a >= 0) & (a <= 1)):
        return "accuracy must be a fraction in [0, 1], not a percentage"
    if s[0] != FP32_BYTES:
        return f"row 0 must be the fp32 baseline ({FP32_BYTES:,} bytes); got {s[0]:,.0f} bytes"
    return ""


# ---------------------------------------------------------------------------------------------- hidden inputs
def _mask_cases(rng):
    # sparsity k / n: k / n * n rounds back to k, so round() has no .5 ambiguity; k = 0 and k = n are edge cases
    cases = []
    for shape, special in (((7,), 0), ((4, 8), None), ((16, 16), 256), ((10, 64), None)):
        w = rng.normal(0.0, 1.0, shape)
        for k in (int(rng.integers(1, w.size)), int(rng.integers(w.size)) if special is None else special):
            cases.append(Case((w, k / w.size)))
    # already-pruned weights (exact zeros) pruned further: all zeros go first, however ties are broken
    w = rng.normal(0.0, 1.0, (8, 16))
    w[rng.random(w.shape) < 0.4] = 0.0
    cases.append(Case((w, min(w.size, int((w == 0).sum()) + 9) / w.size)))
    # a sparsity that is not k / n: round(0.75 * 13) = 10 weights go (int() would drop only 9)
    cases.append(Case((rng.normal(0.0, 1.0, 13), 0.75)))
    return cases


def _points(rng, n, m, integer):
    if integer:  # a few distinct levels per objective: ties and exact duplicates are common
        pts = rng.integers(0, max(2, int(rng.integers(2, 6))), (n, m)).astype(float)
    else:
        pts = rng.normal(0.0, 1.0, (n, m)) * 10.0 ** rng.integers(-3, 4, m)
    if n > 3:  # duplicate a few rows exactly
        pick = rng.integers(0, n, 2)
        pts[pick[1]] = pts[pick[0]]
    return pts


def _pareto_cases(rng):
    cases = []
    # (n, m, integer): small sets, so that an O(n^2 m) pure-Python double loop stays far below the time limit
    shapes = ((1, 2, False), (6, 1, True), (12, 2, True), (40, 2, False), (30, 3, True), (80, 3, False))
    for n, m, integer in (*shapes, (60, 4, True), (150, 2, True), (120, 3, True)):
        sense = np.array(["min" if b else "max" for b in rng.random(m) < 0.5])
        cases.append(Case((_points(rng, n, m, integer), sense)))
    cases.append(Case((np.full((5, 3), 2.5), np.array(["max", "min", "max"]))))  # all identical: all on the front
    return cases


def _table(rng, n):
    n_test = 449  # the lab's test set: accuracy comes in steps of 1/449, so equal accuracies are common
    accuracy = rng.integers(420, 445, n) / n_test
    size = rng.choice([9_640, 13_864, 35_880, 49_608, 86_592, 170_004, 340_008], n).astype(float)
    latency = rng.choice([4e-5, 5e-5, 9e-5, 2.5e-4, 3.4e-4, 6.3e-4], n)
    if n > 4:  # an exact duplicate row and an accuracy tie broken by latency, then by size
        accuracy[1], size[1], latency[1] = accuracy[0], size[0], latency[0]
        accuracy[3] = accuracy[2]
    return size, latency, accuracy


def _tied_top(rng, n, kind):
    """A table whose best feasible accuracy is shared by three rows that differ in latency, in size only, or not at
    all (exact duplicates): the tie-breaking rule decides."""
    size, latency, accuracy = _table(rng, n)
    accuracy = np.minimum(accuracy, 440 / 449)
    rows = rng.choice(n, 3, replace=False)
    accuracy[rows] = 444 / 449
    size[rows] = rng.choice([9_640, 13_864, 35_880])
    latency[rows] = rng.choice([4e-5, 9e-5, 2.5e-4])
    if kind == "latency":
        latency[rows] = rng.permutation([4e-5, 9e-5, 2.5e-4])
    elif kind == "size":
        size[rows] = rng.permutation([9_640, 13_864, 35_880])
    return size, latency, accuracy


def _choose_cases(rng):
    cases = []
    for n in (1, 3, 6, 8, 10, 12, 15, 15):
        size, latency, accuracy = _table(rng, n)
        memory = float(rng.choice([math.inf, *np.quantile(size, [0.3, 0.7])]))
        lat = float(rng.choice([math.inf, *np.quantile(latency, [0.3, 0.7])]))
        floor = float(rng.choice([0.0, np.quantile(accuracy, 0.5)]))
        cases.append(Case((size, latency, accuracy, memory, lat, floor)))
    for kind in ("latency", "size", "duplicate"):
        cases.append(Case((*_tied_top(rng, 9, kind), 50_000.0, math.inf, 0.9)))
    size, latency, accuracy = _table(rng, 8)
    cases.append(Case((size, latency, accuracy, 1_000.0, math.inf, 0.0)))  # nothing fits: -1
    cases.append(Case((size, latency, accuracy, math.inf, math.inf, 0.0)))  # no constraint: the most accurate
    return cases


_TABLE = (
    np.array([340_008, 86_592, 49_608, 35_880, 13_864, 9_640]),
    np.array([6.3e-4, 2.5e-4, 7.6e-4, 9e-5, 5e-5, 4e-5]),
    np.array([0.9866, 0.9866, 0.9822, 0.9733, 0.9621, 0.9710]),
)

LAB = Lab(
    lab_id="lab2_pareto",
    title="Lab 2: Walking the Pareto frontier",
    seed=20250202,
    # efflab grade's defaults for this lab: its master ran alone in the sandbox in 15.0 s with a 1657 MB
    # peak address space (benchmarks/bench_grading.py --limits, 2-core build machine, 2026-12-03): 120 s
    # and 4096 MB leave 8x and 2.5x room for slower machines and --jobs sharing the cores.
    timeout_s=120.0,
    memory_mb=4096,
    questions=(
        Question(
            id="q1",
            name="magnitude_mask",
            points=2,
            reference=magnitude_mask,
            public=(
                Case((np.array([[0.3, -0.1], [2.0, 0.05]]), 0.5)),
                Case((np.array([1.0, -4.0, 0.5, 3.0, -2.0]), 0.6)),
                Case((np.array([[1.0, 2.0]]), 0.0)),
            ),
            hidden=_mask_cases,
            hint="drop the round(sparsity * weight.size) entries with the smallest |w| (np.argsort of np.abs, "
            "kind='stable'); return a boolean array of the weight's shape, True where the weight is kept",
            partial=True,
        ),
        Question(
            id="q2",
            name="pareto_mask",
            points=3,
            reference=pareto_mask,
            public=(
                Case(([[0.010, 0.70], [0.020, 0.80], [0.030, 0.75], [0.010, 0.70]], ["min", "max"])),
                Case(([[9640, 4e-5, 0.971], [13864, 5e-5, 0.962], [340008, 3e-5, 0.987]], ["min", "min", "max"])),
                Case(([[1, 3], [2, 2], [3, 1], [3, 3], [2, 2]], ["min", "min"])),
            ),
            hidden=_pareto_cases,
            hint="b dominates a when b is at least as good on every objective and strictly better on one; a point is "
            "on the front when no other point dominates it (duplicates do not dominate each other). Flip the sign "
            "of 'max' objectives first",
            partial=True,
            time_limit_s=10.0,
        ),
        Question(
            id="q3",
            name="front_indices",
            kind="derived",
            data=("size_bytes", "latency_s", "accuracy"),
            points=1,
            reference=front_indices,
            validate_data=_plausible_table,
            hint="np.flatnonzero(pareto_mask(np.column_stack([size_bytes, latency_s, accuracy]), "
            "['min', 'min', 'max']))",
        ),
        Question(
            id="q4",
            name="choose",
            points=2,
            reference=choose,
            public=(
                Case((*_TABLE, 50_000, math.inf, 0.95)),
                Case((*_TABLE, math.inf, 1e-4, 0.0)),
                Case((*_TABLE, math.inf, math.inf, 0.0)),
                Case((*_TABLE, 5_000, math.inf, 0.0)),
            ),
            hidden=_choose_cases,
            hint="among the rows with size <= memory budget, latency <= latency budget and accuracy >= floor, take "
            "the most accurate; ties go to the faster, then the smaller, then the lower index; -1 if none fits",
            partial=True,
        ),
        Question(
            id="q5",
            name="edge_choice",
            kind="derived",
            data=("size_bytes", "latency_s", "accuracy"),
            points=1,
            reference=edge_choice,
            validate_data=_plausible_table,
            hint="choose(size_bytes, latency_s, accuracy, EDGE_MEMORY_BYTES, math.inf, EDGE_ACCURACY_FLOOR)",
        ),
        Question(
            id="q6",
            name="server_choice",
            kind="derived",
            data=("size_bytes", "latency_s", "accuracy"),
            points=1,
            reference=server_choice,
            validate_data=_plausible_table,
            hint="choose(size_bytes, latency_s, accuracy, math.inf, latency_s[0] / SERVER_SPEEDUP, "
            "SERVER_ACCURACY_FLOOR)",
        ),
    ),
)
