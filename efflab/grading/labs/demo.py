"""The demo lab: three tiny questions that exercise every part of the grader (tests use it; so can instructors).

Its master notebook is ``tests/data/demo_lab/masters/demo.ipynb`` and the generated student notebook
``tests/data/demo_lab/demo.ipynb``.
"""

from __future__ import annotations

import numpy as np

from efflab.grading.spec import Case, Lab, Question

# A measured copy on the efflab build machine (2-core x86 VM, numpy.copyto of float64 arrays, median of 7 runs):
# bytes moved count the read and the write (2 x array size). The notebook carries the same numbers inline.
RECORDED_BYTES = (2097152, 4194304, 8388608, 16777216, 33554432)
RECORDED_TIME_S = (2.309e-05, 4.422e-05, 9.102e-05, 3.120e-04, 1.157e-03)


def intensity(flops, bytes_moved):
    """Arithmetic intensity I = flops / bytes_moved, in FLOP/byte."""
    return np.asarray(flops, dtype=float) / np.asarray(bytes_moved, dtype=float)


def iron_law_time_s(flops, bytes_moved, peak_flops_per_s, bandwidth_bytes_per_s):
    """Roofline time T = max(flops / peak, bytes_moved / bandwidth), in seconds."""
    return np.maximum(
        np.asarray(flops, float) / peak_flops_per_s, np.asarray(bytes_moved, float) / bandwidth_bytes_per_s
    )


def fitted_bandwidth_bytes_per_s():
    """Least-squares slope through the origin of bytes moved against time: B = sum(b t) / sum(t^2)."""
    b = np.asarray(RECORDED_BYTES, float)
    t = np.asarray(RECORDED_TIME_S, float)
    return float(np.sum(b * t) / np.sum(t * t))


def fit_bandwidth_bytes_per_s(bytes_moved, time_s):
    """Least-squares slope through the origin of the recorded bytes against time: B = sum(b t) / sum(t^2)."""
    b = np.asarray(bytes_moved, float).ravel()
    t = np.asarray(time_s, float).ravel()
    return float(np.sum(b * t) / np.sum(t * t))


def _plausible_copy_timings(bytes_moved, time_s):
    """Return "" when the recording looks like a real copy sweep, else why not (the grader then awards nothing)."""
    b, t = np.ravel(bytes_moved), np.ravel(time_s)
    if b.shape != t.shape or b.size < 3:
        return "record at least 3 (bytes, time) pairs of the same length"
    if not (np.all(b > 0) and np.all(t > 0)):
        return "bytes and times must be positive"
    if len(np.unique(b)) < 3:
        return "use at least 3 different sizes"
    return ""


def _intensity_cases(rng):
    # scalars and arrays, spanning the decades a real kernel occupies (1 FLOP/byte to 1e4 FLOP/byte)
    cases = [Case((float(rng.uniform(1e6, 1e12)), float(rng.uniform(1e6, 1e10))))]
    for size in (3, 7, 16):
        cases.append(Case((10 ** rng.uniform(6, 12, size), 10 ** rng.uniform(5, 10, size))))
    return cases


def _time_cases(rng):
    # one compute-bound case, one memory-bound case and one that mixes both, on the peaks of real parts:
    # 1e12..1e15 FLOP/s and 1e11..4e12 byte/s (a CPU to an H100); the intensity factor places each op vs the ridge
    cases = []
    for size, low, high in ((4, 0.3, 2.0), (6, -2.0, -0.3), (12, -2.0, 2.0)):
        peak_flops_per_s = float(10 ** rng.uniform(12, 15))
        bandwidth_bytes_per_s = float(10 ** rng.uniform(11, 12.6))
        bytes_moved = 10 ** rng.uniform(5, 11, size)
        flops = bytes_moved * (peak_flops_per_s / bandwidth_bytes_per_s) * 10 ** rng.uniform(low, high, size)
        cases.append(Case((flops, bytes_moved, peak_flops_per_s, bandwidth_bytes_per_s)))
    return cases


LAB = Lab(
    lab_id="demo",
    title="Demo lab: intensity, the iron law and a fitted bandwidth",
    seed=20240901,
    questions=(
        Question(
            id="q1",
            name="intensity",
            points=2,
            reference=intensity,
            public=(Case((2e9, 1e9)), Case((np.array([1.0, 8.0]), np.array([4.0, 2.0])))),
            hidden=_intensity_cases,
            hint="intensity is FLOPs per byte moved: divide, and let numpy broadcast arrays",
        ),
        Question(
            id="q2",
            name="iron_law_time_s",
            points=2,
            reference=iron_law_time_s,
            public=(Case((1e12, 1e9, 1e12, 1e11)), Case((1e9, 1e12, 1e12, 1e11))),
            hidden=_time_cases,
            hint="the slower of compute (flops / peak) and memory (bytes / bandwidth) sets the time: np.maximum",
            partial=True,
        ),
        Question(
            id="q3",
            name="bandwidth_bytes_per_s",
            kind="derived",
            data=("bytes_moved", "time_s"),
            points=1,
            reference=fit_bandwidth_bytes_per_s,
            validate_data=_plausible_copy_timings,
            hint="fit bytes = B * time through the origin: B = sum(bytes * time) / sum(time ** 2)",
            rtol=1e-3,
        ),
    ),
)
