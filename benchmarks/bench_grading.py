"""Grading throughput: N copies of a submission graded with ``--jobs J`` (default 100 copies, 2 jobs).

Each copy runs in its own sandboxed child (nbclient + a fresh ipykernel), exactly as ``efflab grade`` does, so this
measures the real cost per submission: process start, kernel start, the notebook, the harness, the comparison.

Reproduce (from the repository root)::

    python benchmarks/bench_grading.py                      # 100 copies of the demo master, --jobs 2
    python benchmarks/bench_grading.py --copies 20 --jobs 1

The issue's target: 100 submissions with ``--jobs 2`` in at most 180 s on the 2-core build machine.
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
from efflab.grading.runner import Limits, namespaces_available
from efflab.grading.spec import load_lab

ROOT = Path(__file__).resolve().parents[1]
MASTER = ROOT / "tests" / "data" / "demo_lab" / "masters" / "demo.ipynb"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--submission", default=str(MASTER), help="the notebook to copy (default: the demo master)")
    parser.add_argument("--lab", default="demo")
    args = parser.parse_args()

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
        rows = grade(paths, key, Limits(), jobs=args.jobs, hide=hide)
        write_gradebook(rows, workdir / "gradebook.csv", lab)
        wall_s = time.perf_counter() - start
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    statuses = Counter(r.status for r in rows)
    totals = Counter(r.total for r in rows)
    per_child_s = sorted(r.wall_s for r in rows)
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; namespaces: {namespaces_available()}"
    )
    print(
        f"graded {len(rows)} copies with --jobs {args.jobs} in {wall_s:.1f} s ({wall_s / len(rows):.2f} s per submission)"
    )
    print(f"per-child wall time: median {per_child_s[len(per_child_s) // 2]:.2f} s, max {per_child_s[-1]:.2f} s")
    print(f"statuses: {dict(statuses)}; totals: {dict(totals)} (max {lab.max_total:g})")
    print(f"protections: {';'.join(rows[0].protections)}")
    return 0 if statuses.get("graded", 0) == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
