"""efflab.pareto_mask against the paretoset package on the same inputs, masks required to agree.

Command (paretoset and numba live only in the benchmark environment, never in efflab's dependencies)::

    .venv/bin/python -m pip install paretoset            # pulls numba, llvmlite and pandas
    .venv/bin/python benchmarks/bench_pareto.py            # full run, ~5-10 minutes
    .venv/bin/python benchmarks/bench_pareto.py --quick    # skips the slow paretoset case, ~20 s

Cases: uniform random 2-D points (a small front) at 1e5 and 1e6, points that all lie on the front (x + y = 1) at
1e4 and 1e5, and 1e4 uniform 4-D points. paretoset runs both of its paths: numpy (``use_numba=False``, its
vectorised elimination loop) and numba (``use_numba=True``, compiled; a warm-up call keeps JIT compilation out of the
timing). Both are called with ``distinct=False``, the same semantics as efflab (duplicates of a front point are kept).

Each time is the median of several calls (one call when a single call takes over ~2 s). paretoset is quadratic when
the front is large, so the 1e5 all-front case runs each paretoset path in a child process with a wall-clock cap
(``--cap``, default 300 s); a run that hits it is reported as "> cap" and its ratio as a lower bound -- never
extrapolated. For the all-front sets the known answer (every point on the front) checks efflab's mask as well.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_points(case: str) -> np.ndarray:
    """Deterministic inputs, rebuilt identically in a child process."""
    kind, dim, n = case.split(":")
    rng = np.random.default_rng(12345)
    n, dim = int(float(n)), int(dim)
    if kind == "uniform":
        return rng.random((n, dim))
    x = rng.random(n)  # all-front: y = 1 - x is exact for these x, and strictly decreasing in x
    return np.column_stack([x, 1.0 - x])


def run_paretoset(points: np.ndarray, numba: bool) -> np.ndarray:
    from paretoset import paretoset

    return np.asarray(paretoset(points, distinct=False, use_numba=numba), dtype=bool)


def run_efflab(points: np.ndarray) -> np.ndarray:
    from efflab.pareto import pareto_mask

    return pareto_mask(points)


def time_call(fn, points: np.ndarray, budget_s: float = 2.0, max_calls: int = 15) -> tuple[float, np.ndarray]:
    """Median wall time of repeated calls (perf_counter), repeating while the budget allows."""
    times_s: list[float] = []
    while True:
        start = time.perf_counter()
        mask = fn(points)
        times_s.append(time.perf_counter() - start)
        if len(times_s) >= max_calls or sum(times_s) > budget_s or (len(times_s) >= 3 and sum(times_s) > budget_s / 4):
            return statistics.median(times_s), mask


def capped_paretoset(case: str, numba: bool, cap_s: float) -> tuple[float | None, np.ndarray | None]:
    """Time one paretoset call in a child process; (None, None) when it runs past ``cap_s``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "mask.npy"
        cmd = [sys.executable, __file__, "--child", case, "numba" if numba else "numpy", str(out)]
        try:  # the slack covers the child's imports and data generation; the cap applies to the call itself
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=cap_s + 30)
        except subprocess.TimeoutExpired:
            return None, None
        if proc.returncode != 0:
            raise RuntimeError(f"paretoset child failed:\n{proc.stderr}")
        elapsed_s = float(proc.stdout.strip().splitlines()[-1])
        if elapsed_s > cap_s:
            return None, None
        return elapsed_s, np.load(out)


def child(case: str, numba: bool, out: str) -> None:
    points = make_points(case)
    if numba:
        run_paretoset(points[:100], numba=True)  # compile outside the timing
    start = time.perf_counter()
    mask = run_paretoset(points, numba)
    print(time.perf_counter() - start)
    np.save(out, mask)


def fmt_s(t: float | None, cap_s: float) -> str:
    if t is None:
        return f"> {cap_s:.0f} s (cap)"
    return f"{t * 1e3:.3g} ms" if t < 1 else f"{t:.3g} s"


def fmt_ratio(t: float | None, ours_s: float, cap_s: float) -> str:
    if t is None:
        return f"> {cap_s / ours_s:,.0f}x"
    return f"{t / ours_s:,.1f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip paretoset on the 1e5 all-front set")
    parser.add_argument("--cap", type=float, default=300.0, help="seconds allowed per capped paretoset call")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, path, out = args.child
        child(case, path == "numba", out)
        return 0

    import numba
    import paretoset

    print(f"numpy {np.__version__}, paretoset {paretoset.__version__}, numba {numba.__version__}")
    run_paretoset(np.random.default_rng(0).random((100, 2)), numba=True)  # JIT warm-up
    cases = ["uniform:2:1e5", "uniform:2:1e6", "front:2:1e4", "front:2:1e5", "uniform:4:1e4"]
    rows = []
    for case in cases:
        points = make_points(case)
        ours_s, ours = time_call(run_efflab, points)
        if case.startswith("front"):
            assert ours.all(), f"{case}: efflab missed front points"
        results = {}
        for numba_path in (False, True):
            if case == "front:2:1e5":
                if args.quick:
                    results[numba_path] = ("skipped (--quick)", "")
                    continue
                t, mask = capped_paretoset(case, numba_path, args.cap)
            else:
                t, mask = time_call(lambda p, nb=numba_path: run_paretoset(p, nb), points)
            if mask is not None:
                assert np.array_equal(mask, ours), f"{case}: masks disagree (numba={numba_path})"
            results[numba_path] = (fmt_s(t, args.cap), fmt_ratio(t, ours_s, args.cap))
        rows.append((case, int(ours.sum()), fmt_s(ours_s, args.cap), *results[False], *results[True]))
        print(f"done {case}", file=sys.stderr)

    header = (
        "case (kind:dims:n)",
        "front size",
        "efflab",
        "paretoset numpy",
        "ratio",
        "paretoset numba",
        "ratio",
    )
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")
    print("\nratio = paretoset time / efflab time (> 1: efflab is faster); masks agree wherever both finished.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
