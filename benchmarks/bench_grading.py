"""Grading throughput: N copies of a submission graded with ``--jobs J`` (default 100 copies, 2 jobs).

Each copy runs in its own sandboxed child (nbclient + a fresh ipykernel), exactly as ``efflab grade`` does, so this
measures the real cost per submission: process start, kernel start, the notebook, the harness, the comparison.

Reproduce (from the repository root)::

    python benchmarks/bench_grading.py                      # 100 copies of the demo master, --jobs 2
    python benchmarks/bench_grading.py --copies 20 --jobs 1
    python benchmarks/bench_grading.py --lab lab3_energy    # 100 copies of a course lab's master
    python benchmarks/bench_grading.py --limits             # what each course lab's master needs (sets the defaults)

The issue's target: 100 submissions with ``--jobs 2`` in at most 180 s on the 2-core build machine, with the sandbox on.
``--limits`` grades every master in ``labs/masters`` alone, with generous limits, and prints its wall time and its
kernel's peak address space beside the defaults its spec sets (``Lab.timeout_s``, ``Lab.memory_mb``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from efflab.grading.grade import default_hide, grade, prepare, write_gradebook
from efflab.grading.runner import Limits, isolation_available
from efflab.grading.spec import load_lab

ROOT = Path(__file__).resolve().parents[1]
MASTER = ROOT / "tests" / "data" / "demo_lab" / "masters" / "demo.ipynb"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--submission", default=str(MASTER), help="the notebook to copy (default: the demo master)")
    parser.add_argument("--lab", default="demo")
    parser.add_argument("--limits", action="store_true", help="measure what each lab master needs, alone")
    parser.add_argument("--no-sandbox", action="store_true", help="without bubblewrap (to measure what it costs)")
    args = parser.parse_args()
    if args.limits:
        return _limits()
    if args.lab != "demo" and args.submission == str(MASTER):
        args.submission = str(ROOT / "labs" / "masters" / f"{args.lab}.ipynb")

    lab = load_lab(args.lab)
    workdir = Path(tempfile.mkdtemp(prefix="efflab-bench-"))
    try:
        paths = []
        for i in range(args.copies):
            path = workdir / "subs" / f"student{i:04d}.ipynb"
            path.parent.mkdir(exist_ok=True)
            shutil.copyfile(args.submission, path)
            paths.append(path)
        start = time.perf_counter()
        key = prepare(lab)
        hide = default_hide(lab, extra=[MASTER.parent.parent])
        limits = Limits(timeout_s=lab.timeout_s, memory_mb=lab.memory_mb)
        sandbox = False if args.no_sandbox else None
        rows = grade(paths, key, limits, jobs=args.jobs, hide=hide, sandbox=sandbox, allow_weak=args.no_sandbox)
        write_gradebook(rows, workdir / "gradebook.csv", lab)
        wall_s = time.perf_counter() - start
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    statuses = Counter(r.status for r in rows)
    totals = Counter(r.total for r in rows)
    per_child_s = sorted(r.wall_s for r in rows)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; sandbox: {isolation_available()}")
    print(
        f"graded {len(rows)} copies with --jobs {args.jobs} in {wall_s:.1f} s ({wall_s / len(rows):.2f} s per submission)"
    )
    print(f"per-child wall time: median {per_child_s[len(per_child_s) // 2]:.2f} s, max {per_child_s[-1]:.2f} s")
    print(f"statuses: {dict(statuses)}; totals: {dict(totals)} (max {lab.max_total:g})")
    print(f"protections: {';'.join(rows[0].protections)}")
    return 0 if statuses.get("graded", 0) == len(rows) else 1


def _limits() -> int:
    from efflab.grading.grade import grade_submission

    generous = Limits(timeout_s=1800, memory_mb=32768)
    failed = 0
    print("lab            status  points   wall_s  kernel peak address space   default timeout_s  memory_mb")
    for master in sorted((ROOT / "labs" / "masters").glob("*.ipynb")):
        lab = load_lab(master.stem)
        row = grade_submission(master, prepare(lab), generous, hide=default_hide(lab))
        peak_kb = row.details.get("resources", {}).get("vm_peak_kb") or 0
        ok = row.status == "graded" and row.total == row.max_total
        fits = row.wall_s <= lab.timeout_s and peak_kb >> 10 <= lab.memory_mb
        failed += not (ok and fits)
        print(
            f"{lab.lab_id:14s} {row.status:7s} {row.total:g}/{row.max_total:g} {row.wall_s:8.1f}  "
            f"{peak_kb >> 10:8d} MB{'':17s} {lab.timeout_s:10g}  {lab.memory_mb:9d}{'' if fits else '  (over)'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
