"""Lab 5, the D·A·M capstone: triage three slow services, apply one lever each and hold the speedup to Amdahl's bound.

Master ``labs/masters/lab5_dam.ipynb``, student version ``labs/lab5_dam.ipynb`` (``efflab assign --lab lab5_dam``).
The services are :mod:`efflab.scenarios` workloads with other sizes and seeds than chapter 6's. Graded:

- ``q1`` ``scorecard`` (function): I/O overhead, utilization and MFU, checked on hidden inputs against
  :func:`efflab.dam.diagnose`'s scorecard;
- ``q2`` ``triage`` (function): the D·A·M axis and regime, checked against :func:`efflab.dam.diagnose` on hidden
  inputs drawn clear of every threshold (no tie between terms, intensity at least 2x from the ridge, MFU outside
  25-36 %), so a correct answer computed in another order cannot land on the other side;
- ``q3`` ``measured_speedup``, ``q4`` ``lever_fraction``, ``q5`` ``amdahl_bound`` (derived): recomputed from the
  times, fractions and term speedups the student's own notebook recorded.
"""

from __future__ import annotations

import numpy as np

from efflab.amdahl import amdahl_speedup
from efflab.dam import diagnose
from efflab.grading.spec import Case, Lab, Question

SERVICES = 3  # services A, B, C: one entry (or one row) each in every recorded array
TERMS = ("data", "compute", "idle")  # column order of baseline_terms_s; lever_term indexes it
# Margins that keep hidden triage inputs away from diagnose's decision boundaries (see _triage_cases).
_DOMINANCE = 1.0 / 0.75  # the dominant term is at least 1.33x the runner-up
_RIDGE_FACTOR = 2.0  # intensity at least 2x above or below the ridge point
_MFU_MACHINE_BELOW, _MFU_ALGORITHM_ABOVE = 0.25, 0.36  # diagnose's split is MFU < 30 % (efflab.dam.MFU_FAIL_BELOW)


def scorecard(data_time_s, compute_time_s, idle_time_s, flops, peak_flops_per_s):
    """The scorecard's three fractions ``(data/T, compute/T, flops/(T*peak))``, ``T = data + compute + idle``.

    Examples
    --------
    >>> [round(x, 4) for x in scorecard(0.045, 0.075, 0.0, 1.2e12, 19.5e12)]
    [0.375, 0.625, 0.5128]
    """
    card = diagnose(
        data_time_s=data_time_s,
        compute_time_s=compute_time_s,
        idle_time_s=idle_time_s,
        flops=flops,
        peak_flops_per_s=peak_flops_per_s,
    ).scorecard
    return (card.io_overhead.value, card.utilization.value, card.mfu.value)


def triage(data_time_s, compute_time_s, idle_time_s, flops, bytes_moved, peak_flops_per_s, bandwidth_bytes_per_s):
    """``(axis, regime)`` of :func:`efflab.dam.diagnose` for a measured split, its work and the device's ceilings.

    Examples
    --------
    >>> triage(0.0, 0.05, 0.0, 1.4e10, 1.4e10, 989.4e12, 3.35e12)  # 7B decode at batch 1 on an H100
    ('data', 'memory')
    """
    d = diagnose(
        data_time_s=data_time_s,
        compute_time_s=compute_time_s,
        idle_time_s=idle_time_s,
        flops=flops,
        bytes_moved=bytes_moved,
        peak_flops_per_s=peak_flops_per_s,
        bandwidth_bytes_per_s=bandwidth_bytes_per_s,
    )
    return (d.axis, d.regime)


def speedup_per_item(before_per_item_s, after_per_item_s):
    """Measured speedup of each service: time per item before / after.

    >>> speedup_per_item([3e-4, 4e-5, 2e-4], [1e-5, 2e-5, 4e-5])
    array([30.,  2.,  5.])
    """
    return np.asarray(before_per_item_s, float) / np.asarray(after_per_item_s, float)


def lever_fraction(baseline_terms_s, lever_term):
    """Share of each service's baseline wall time spent in the term its lever shortens: ``terms[i, k_i] / sum_j``.

    >>> terms_s = [[0.0, 1e-5, 3e-4], [0.0, 0.05, 1e-5], [0.12, 0.03, 0.0]]  # data, compute, idle
    >>> lever_fraction(terms_s, [2, 1, 0]).round(4)
    array([0.9677, 0.9998, 0.8   ])
    """
    terms = np.asarray(baseline_terms_s, float)
    rows = np.arange(terms.shape[0])
    return terms[rows, np.asarray(lever_term).astype(int)] / terms.sum(axis=1)


def amdahl_bound(lever_fraction, term_speedup):
    """Amdahl's bound ``1 / ((1 - f) + f / s)`` for each service (``s = inf``: the term vanishes).

    >>> amdahl_bound([0.9677, 0.9998, 0.8], [32, 2, np.inf]).round(2)
    array([15.99,  2.  ,  5.  ])
    """
    return np.asarray(amdahl_speedup(np.asarray(lever_fraction, float), np.asarray(term_speedup, float)), float)


def _per_service(name: str, array) -> str:
    a = np.asarray(array)
    if a.shape != (SERVICES,):
        return f"{name} must hold one number per service A, B, C (shape ({SERVICES},)); got shape {a.shape}"
    if np.any(np.isnan(a.astype(float))):
        return f"{name} contains NaN"
    return ""


def _plausible_times(before_per_item_s, after_per_item_s) -> str:
    """'' when both recordings are one positive, finite time (s) per service, else why not."""
    for name, t in (("before_per_item_s", before_per_item_s), ("after_per_item_s", after_per_item_s)):
        why = _per_service(name, t)
        if why:
            return why
        t = np.asarray(t, float)
        if not np.all(np.isfinite(t) & (t > 0)):
            return f"{name} must be positive, finite times in seconds"
    return ""


def _plausible_terms(baseline_terms_s, lever_term) -> str:
    """'' when the terms are a (3, 3) table of times >= 0 (s) with positive rows and lever_term indexes a column."""
    terms, k = np.asarray(baseline_terms_s, float), np.asarray(lever_term)
    if terms.shape != (SERVICES, len(TERMS)):
        return f"baseline_terms_s must have one row per service and columns {TERMS} (shape (3, 3)); got {terms.shape}"
    if not (np.all(np.isfinite(terms)) and np.all(terms >= 0) and np.all(terms.sum(axis=1) > 0)):
        return "baseline_terms_s must be finite times >= 0 s with a positive sum in every row"
    if k.shape != (SERVICES,) or not np.all(np.isin(k, (0, 1, 2))):
        return f"lever_term must hold one column index per service: 0 (data), 1 (compute) or 2 (idle); got {k!r}"
    return ""


def _plausible_amdahl(lever_fraction, term_speedup) -> str:
    """'' when each fraction is in [0, 1] and each term speedup is >= 1 (inf allowed, but not with f = 1).

    >>> _plausible_amdahl([0.5, 0.9, 1.0], [32, 2, np.inf])
    'a fraction of 1 sped up infinitely has no finite bound'
    >>> _plausible_amdahl([0.5, 0.9], [32, 2])
    'lever_fraction must hold one number per service A, B, C (shape (3,)); got shape (2,)'
    """
    for name, a in (("lever_fraction", lever_fraction), ("term_speedup", term_speedup)):
        why = _per_service(name, a)
        if why:
            return why
    f, s = np.asarray(lever_fraction, float), np.asarray(term_speedup, float)
    if not (np.all(np.isfinite(f)) and np.all((f >= 0) & (f <= 1))):
        return "lever_fraction must be fractions in [0, 1]"
    if not np.all(s >= 1):
        return "term_speedup must be >= 1 (how many times faster the lever makes its term; inf if it vanishes)"
    if np.any((f == 1) & np.isinf(s)):
        return "a fraction of 1 sped up infinitely has no finite bound"
    return ""


def _scorecard_cases(rng):
    """Eight splits from microseconds to seconds, data or idle sometimes zero, MFU from 0.1 % of utilization to 95 %."""
    cases = []
    for i in range(8):
        terms = 10 ** rng.uniform(-6, 0, 3)
        terms[(rng.random(3) < 0.3) & (np.arange(3) != 1)] = 0.0  # the device always computes a little
        terms[i % 3] = 10 ** rng.uniform(-6, 0)  # each term is drawn as the one certainly present in turn
        peak = 10 ** rng.uniform(10, 15)  # a laptop core to an H100's Tensor Cores, FLOP/s
        busy = terms[1] / terms.sum()
        flops = busy * 10 ** rng.uniform(-3, np.log10(0.95)) * terms.sum() * peak  # MFU <= utilization
        cases.append(Case((*map(float, terms), float(flops), float(peak))))
    return cases


def _triage_cases(rng):
    """Three inputs for each outcome of ``diagnose`` (input, latency, memory, compute on each axis), shuffled.

    Every case is clear of the thresholds: the dominant term is >= 1.33x the others, the intensity is >= 2x from
    the ridge point and the MFU is < 25 % or > 36 % (the split is 30 %). One case per outcome sits just outside those
    margins (runner-up term 60-75 % of the largest, intensity 2-3x from the ridge, MFU 15-25 % or 36-45 %), so that a
    wrong threshold (the 50 % pass line for the 30 % fail line, say) or a flipped comparison loses points.
    Perturbing any input by 3 % never changes the answer:

    >>> cases = [c for seed in range(10) for c in _triage_cases(np.random.default_rng(seed))]
    >>> sorted({triage(*c.args) for c in cases})
    [('algorithm', 'compute'), ('data', 'input'), ('data', 'memory'), ('machine', 'compute'), ('machine', 'latency')]
    >>> rng = np.random.default_rng(1)
    >>> all(triage(*c.args) == triage(*(a * rng.uniform(0.97, 1.03) for a in c.args)) for c in cases)
    True
    """
    draws = [(outcome, k == 0) for k in range(3) for outcome in ("input", "latency", "memory", "machine", "algorithm")]
    rng.shuffle(draws)
    low_ridge, high_ridge = np.log10(_RIDGE_FACTOR), np.log10(3.0)  # near cases: 2x to 3x from the ridge
    cases = []
    for outcome, near in draws:
        peak = 10 ** rng.uniform(10.5, 15)  # FLOP/s: a laptop core to an H100's Tensor Cores
        bandwidth = 10 ** rng.uniform(10, 12.6)  # bytes/s: one DDR4 channel to HBM3e
        ridge = peak / bandwidth
        dominant = {"input": 0, "latency": 2}.get(outcome, 1)
        largest_s = 10 ** rng.uniform(-5, 0)
        terms = largest_s * rng.uniform(0, 1 / _DOMINANCE, 3)
        terms[(rng.random(3) < 0.3) & (np.arange(3) != 1)] = 0.0  # data or idle may be absent; compute never is
        if near:  # a runner-up just below the dominance margin
            terms[(dominant + rng.integers(1, 3)) % 3] = largest_s * rng.uniform(0.6, 1 / _DOMINANCE)
        terms[dominant] = largest_s
        wall = terms.sum()
        busy = terms[1] / wall
        # |log10(intensity / ridge)|: from 2x to 1000x, or 2x to 3x when near
        decades = rng.uniform(low_ridge, high_ridge if near else 3)
        if outcome == "memory" or (outcome in ("input", "latency") and rng.random() < 0.5):
            intensity = ridge * 10**-decades
            # flops = mfu T peak and bytes = flops / I: the memory time bytes / BW then stays within the compute term
            mfu = busy * (intensity / ridge) * rng.uniform(0.05, 0.9)
        else:
            intensity = ridge * 10**decades
            if outcome == "algorithm":  # compute-dominant, so busy >= 1 / (1 + 2 * 0.75) = 0.4
                mfu = rng.uniform(_MFU_ALGORITHM_ABOVE + 0.02, min(0.45 if near else 0.95, busy))
            elif outcome == "machine":
                mfu = rng.uniform(0.15, _MFU_MACHINE_BELOW - 0.01) if near else 10 ** rng.uniform(-4, np.log10(0.24))
            else:
                mfu = busy * 10 ** rng.uniform(-3, np.log10(0.9))
        flops = mfu * wall * peak
        cases.append(Case((*map(float, terms), float(flops), float(flops / intensity), float(peak), float(bandwidth))))
    return cases


LAB = Lab(
    lab_id="lab5_dam",
    title="Lab 5 · D·A·M capstone: incident triage",
    seed=20250605,
    # efflab grade's defaults for this lab: its master ran alone in the sandbox in 24.1 s with a 1785 MB
    # peak address space (benchmarks/bench_grading.py --limits, 2-core build machine, 2026-12-03): 120 s
    # and 4096 MB leave 5x and 2.3x room for slower machines and --jobs sharing the cores.
    timeout_s=120.0,
    memory_mb=4096,
    questions=(
        Question(
            id="q1",
            name="scorecard",
            points=2,
            reference=scorecard,
            public=(
                Case((0.045, 0.075, 0.0, 1.2e12, 19.5e12)),
                Case((0.0, 1.0e-6, 2.5e-4, 6.4e4, 1.0e11)),
            ),
            hidden=_scorecard_cases,
            hint="T = data + compute + idle; return (data / T, compute / T, flops / (T * peak_flops_per_s))",
            partial=True,
        ),
        Question(
            id="q2",
            name="triage",
            points=3,
            reference=triage,
            public=(
                Case((0.7, 0.3, 0.0, 1e9, 1e8, 1e12, 1e11)),
                Case((0.0, 1.0e-6, 2.5e-4, 6.4e4, 1.3e5, 1e11, 2e10)),
                Case((0.0, 0.05, 0.0, 1.4e10, 1.4e10, 989.4e12, 3.35e12)),
                Case((0.0, 1.0, 0.0, 8.8e13, 1.0e11, 989.4e12, 3.35e12)),
                Case((0.0, 0.05, 3e-6, 2.6e9, 2.4e7, 8e10, 2e10)),
            ),
            hidden=_triage_cases,
            hint="the largest term decides: data -> ('data', 'input'), idle -> ('machine', 'latency'); compute -> "
            "memory-bound if bytes/BW > flops/peak ('data', 'memory'), else compute-bound, on the 'machine' axis "
            "while MFU < 30 % and the 'algorithm' axis otherwise",
            partial=True,
        ),
        Question(
            id="q3",
            name="measured_speedup",
            kind="derived",
            data=("before_per_item_s", "after_per_item_s"),
            points=1,
            reference=speedup_per_item,
            validate_data=_plausible_times,
            hint="speedup = time per item before / time per item after, one per service (A, B, C)",
            rtol=1e-3,
        ),
        Question(
            id="q4",
            name="lever_fraction",
            kind="derived",
            data=("baseline_terms_s", "lever_term"),
            points=1,
            reference=lever_fraction,
            validate_data=_plausible_terms,
            hint="for each service i: baseline_terms_s[i, lever_term[i]] / baseline_terms_s[i].sum()",
            rtol=1e-3,
        ),
        Question(
            id="q5",
            name="amdahl_bound",
            kind="derived",
            data=("lever_fraction", "term_speedup"),
            points=2,
            reference=amdahl_bound,
            validate_data=_plausible_amdahl,
            hint="Amdahl: S = 1 / ((1 - f) + f / s), with s = np.inf when the lever removes its term entirely",
            rtol=1e-3,
        ),
    ),
)
