"""Lab 4, "Amdahl in a real pipeline": grading spec (questions, hidden inputs, reference solutions).

The master is ``labs/masters/lab4_amdahl.ipynb``; the student notebook ``labs/lab4_amdahl.ipynb`` is generated from it
by ``efflab assign --lab lab4_amdahl``. The student instruments the decode -> augment -> model-step pipeline of
:mod:`efflab.pipeline`, recording one row of stage times per batch (columns decode, augment, model, in seconds), and
answers:

- q1 ``fractions`` (derived): each stage's share of the baseline, from the recorded ``baseline_s``;
- q2 ``amdahl_speedup`` (function): Amdahl's law, against :func:`efflab.amdahl.amdahl_speedup` on hidden inputs;
- q3 ``predicted_speedup`` and q4 ``measured_speedup`` (derived): what accelerating the model step should buy and
  what it bought, from ``baseline_s`` and ``accelerated_s``;
- q5 ``karp_flatt`` (function): the Karp-Flatt serial fraction, against :func:`efflab.amdahl.karp_flatt`;
- q6 ``serial_fractions`` (derived): Karp-Flatt applied to the student's own thread sweep;
- q7 ``fixed_fractions`` (derived): the stage shares after the bottleneck was removed, from ``fixed_s``.

Conventions the notebook states and the references follow: a stage's time is the **median** over the recorded
batches (robust to a batch that another program interrupted); a pipeline's time per batch is the median of the
per-batch sums of its three stages (the stages run one after another).
"""

from __future__ import annotations

import numpy as np

from efflab.grading.spec import Case, Lab, Question

STAGES = ("decode", "augment", "model")
MODEL = STAGES.index("model")
MIN_BATCHES = 5  # fewer timed batches than this make a median meaningless on a shared machine


# ------------------------------------------------------------------------------------------------- references
def stage_fractions(stage_times_s):
    """Each stage's share of the summed median stage times: ``f_k = med(t_k) / sum_j med(t_j)``.

    >>> stage_fractions([[0.01, 0.02, 0.07], [0.01, 0.02, 0.07], [0.03, 0.02, 0.07]]).round(3).tolist()
    [0.1, 0.2, 0.7]
    """
    median_s = np.median(np.asarray(stage_times_s, dtype=float), axis=0)
    return median_s / median_s.sum()


def amdahl_speedup(fraction, speedup):
    """:func:`efflab.amdahl.amdahl_speedup` (``S = 1 / ((1 - f) + f / s)``)."""
    from efflab.amdahl import amdahl_speedup as reference

    return reference(fraction, speedup)


def karp_flatt(speedup, n):
    """:func:`efflab.amdahl.karp_flatt` (``e = (1/S - 1/p) / (1 - 1/p)``)."""
    from efflab.amdahl import karp_flatt as reference

    return reference(speedup, n)


def model_step_speedup(baseline_s, accelerated_s) -> float:
    """``s``: the model step's median time before over after."""
    return float(
        np.median(np.asarray(baseline_s, float)[:, MODEL]) / np.median(np.asarray(accelerated_s, float)[:, MODEL])
    )


def predicted_speedup(baseline_s, accelerated_s) -> float:
    """Amdahl's prediction from the model step's baseline share ``f`` and its measured speedup ``s``.

    >>> base = np.tile([0.01, 0.01, 0.08], (5, 1)); fast = np.tile([0.01, 0.01, 0.02], (5, 1))
    >>> round(predicted_speedup(base, fast), 6)  # f = 0.8, s = 4: 1 / (0.2 + 0.2)
    2.5
    """
    return float(amdahl_speedup(stage_fractions(baseline_s)[MODEL], model_step_speedup(baseline_s, accelerated_s)))


def measured_speedup(baseline_s, accelerated_s) -> float:
    """End-to-end speedup: median time per batch (sum of the three stages) before over after.

    >>> base = np.tile([0.01, 0.01, 0.08], (5, 1)); fast = np.tile([0.01, 0.01, 0.02], (5, 1))
    >>> round(measured_speedup(base, fast), 6)
    2.5
    """
    before = np.median(np.asarray(baseline_s, float).sum(axis=1))
    after = np.median(np.asarray(accelerated_s, float).sum(axis=1))
    return float(before / after)


def serial_fractions(sweep_threads, sweep_time_s):
    """Karp-Flatt of every point of a thread sweep against its first (1-thread) point: ``e(p) = KF(T_1 / T_p, p)``.

    >>> p = np.array([1, 2, 4]); t = 0.1 * (0.25 + 0.75 / p)
    >>> serial_fractions(p, t).round(9).tolist()
    [0.25, 0.25]
    """
    p = np.ravel(sweep_threads).astype(float)
    t = np.ravel(sweep_time_s).astype(float)
    return np.atleast_1d(karp_flatt(t[0] / t[1:], p[1:]))


# ------------------------------------------------------------------------------------------- recording checks
def _stage_table(times, name: str) -> str:
    t = np.asarray(times)
    if t.ndim != 2 or t.shape[1] != len(STAGES):
        return f"{name} must have one row per batch and 3 columns (decode, augment, model); got shape {t.shape}"
    if t.shape[0] < MIN_BATCHES:
        return f"{name} must hold at least {MIN_BATCHES} timed batches; got {t.shape[0]}"
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        return f"{name} must hold finite, non-negative times in seconds"
    if np.any(t > 60.0):
        return f"{name} holds a stage time above 60 s: these stages take milliseconds (record seconds)"
    if np.median(t.sum(axis=1)) <= 0:
        return f"{name}: the stages took no time at all"
    return ""


def _plausible_baseline(baseline_s) -> str:
    why = _stage_table(baseline_s, "baseline_s")
    if not why and np.any(np.median(np.asarray(baseline_s, float), axis=0) <= 0):
        return "baseline_s: every stage of the baseline must take time (a median of 0 s is no measurement)"
    return why


def _plausible_pair(baseline_s, accelerated_s) -> str:
    why = _plausible_baseline(baseline_s) or _stage_table(accelerated_s, "accelerated_s")
    if not why and np.median(np.asarray(accelerated_s, float)[:, MODEL]) <= 0:
        return "accelerated_s: the accelerated model step must still take time (record it, do not skip it)"
    return why


def _plausible_fixed(fixed_s) -> str:
    return _stage_table(fixed_s, "fixed_s")


def _plausible_sweep(sweep_threads, sweep_time_s) -> str:
    p, t = np.ravel(sweep_threads), np.ravel(sweep_time_s)
    if p.shape != t.shape:
        return "sweep_threads and sweep_time_s must have the same length"
    if p.size < 2:
        return "sweep at least two thread counts: 1 and 2 (up to os.cpu_count())"
    if not np.all(np.isfinite(p)) or np.any(p != np.round(p)) or p[0] != 1:
        return "sweep_threads must be whole thread counts starting at 1"
    if np.any(np.diff(p) <= 0) or p[-1] > 1024:
        return "sweep_threads must increase (1, 2, ... up to the core count)"
    if not np.all(np.isfinite(t)) or np.any(t <= 0) or np.any(t > 60.0):
        return "sweep_time_s must hold positive times per batch in seconds"
    return ""


# ---------------------------------------------------------------------------------------------- hidden inputs
def _amdahl_cases(rng):
    cases = [Case((float(rng.uniform(0, 1)), float(rng.uniform(1, 100))))]
    cases.append(Case((rng.uniform(0, 1, 8), 10 ** rng.uniform(0, 3, 8))))  # arrays, element by element
    cases.append(Case((float(rng.uniform(0.5, 0.99)), 10 ** rng.uniform(0, 4, 6))))  # one f, many s (broadcast)
    cases.append(Case((np.array([0.0, 1.0, 0.3, 0.97]), np.array([7.0, 7.0, 1.0, np.inf]))))  # the edges
    cases.append(Case((rng.uniform(0, 0.999, 5), np.inf)))  # s -> infinity: the cap 1 / (1 - f)
    return cases


def _karp_flatt_cases(rng):
    cases = [Case((float(rng.uniform(1.2, 3.5)), 4))]
    p = rng.choice([2, 4, 8, 16, 32, 64], 8).astype(float)
    cases.append(Case((p * rng.uniform(0.15, 0.95, 8), p)))  # sublinear speedups: e in (0, 1)
    cases.append(Case((np.array([2.4, 0.6, 1.0]), np.array([2.0, 2.0, 3.0]))))  # superlinear, slower, no speedup
    cases.append(Case((1.0 + rng.uniform(0.1, 1.0, 5), 2.0)))  # a 2-core sweep: one p, many S
    return cases


LAB = Lab(
    lab_id="lab4_amdahl",
    title="Lab 4: Amdahl in a real pipeline",
    seed=20250404,
    # efflab grade's defaults for this lab: its master ran alone in the sandbox in 13.2 s with a 1734 MB
    # peak address space (benchmarks/bench_grading.py --limits, 2-core build machine, 2026-12-03): 120 s
    # and 4096 MB leave 9x and 2.4x room for slower machines and --jobs sharing the cores.
    timeout_s=120.0,
    memory_mb=4096,
    questions=(
        Question(
            id="q1",
            name="fractions",
            kind="derived",
            data=("baseline_s",),
            points=2,
            reference=stage_fractions,
            validate_data=_plausible_baseline,
            hint="medians per column, divided by their sum: m = np.median(baseline_s, axis=0); m / m.sum()",
            rtol=1e-6,
        ),
        Question(
            id="q2",
            name="amdahl_speedup",
            points=2,
            reference=amdahl_speedup,
            public=(Case((0.95, 100.0)), Case((np.array([0.5, 0.9]), np.array([2.0, 10.0]))), Case((0.8, np.inf))),
            hidden=_amdahl_cases,
            hint="S = 1 / ((1 - f) + f / s); use numpy so arrays broadcast and s = inf gives the cap 1 / (1 - f)",
            partial=True,
        ),
        Question(
            id="q3",
            name="predicted_speedup",
            kind="derived",
            data=("baseline_s", "accelerated_s"),
            points=1,
            reference=predicted_speedup,
            validate_data=_plausible_pair,
            hint="f = fractions[2] (the model step's share of the baseline); s = median model time before / after; "
            "then amdahl_speedup(f, s)",
            rtol=1e-6,
        ),
        Question(
            id="q4",
            name="measured_speedup",
            kind="derived",
            data=("baseline_s", "accelerated_s"),
            points=1,
            reference=measured_speedup,
            validate_data=_plausible_pair,
            hint="median of the per-batch totals (sum over the three stages) before, over the same after",
            rtol=1e-6,
        ),
        Question(
            id="q5",
            name="karp_flatt",
            points=2,
            reference=karp_flatt,
            public=(Case((3.2, 4)), Case((np.array([3.2, 4.8]), np.array([4, 8]))), Case((0.5, 2))),
            hidden=_karp_flatt_cases,
            hint="e = (1/S - 1/p) / (1 - 1/p); no clipping: S > p gives e < 0 and S < 1 gives e > 1",
            partial=True,
        ),
        Question(
            id="q6",
            name="serial_fractions",
            kind="derived",
            data=("sweep_threads", "sweep_time_s"),
            points=1,
            reference=serial_fractions,
            validate_data=_plausible_sweep,
            hint="one value per thread count after the first: karp_flatt(sweep_time_s[0] / sweep_time_s[1:], "
            "sweep_threads[1:])",
            rtol=1e-6,
        ),
        Question(
            id="q7",
            name="fixed_fractions",
            kind="derived",
            data=("fixed_s",),
            points=1,
            reference=stage_fractions,
            validate_data=_plausible_fixed,
            hint="the same computation as Exercise 1, on fixed_s",
            rtol=1e-6,
        ),
    ),
)
