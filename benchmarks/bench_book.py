"""The whole-book budget: execute every notebook from scratch and build the book from stored outputs, on this machine.

Command (from the repository root, after ``make install assets``)::

    .venv/bin/python benchmarks/bench_book.py            # every chapter, lab master and student lab
    .venv/bin/python benchmarks/bench_book.py --only chapters

Each notebook runs in a fresh kernel, from a scratch copy (its stored outputs are not touched). Goals (issue 9): the
whole set in <= 10 minutes, each chapter <= 2 minutes, each lab <= 3 minutes, and the book built from stored outputs
(what ``make book`` does once installed) in <= 60 s. The script prints a table and exits 1 when a goal is missed or a
notebook fails, so it can gate a release; it is not part of ``make test`` (timings are not test assertions).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
# Budgets from the issue, in seconds.
CHAPTER_BUDGET_S = 120.0
LAB_BUDGET_S = 180.0
TOTAL_BUDGET_S = 600.0
BOOK_BUILD_BUDGET_S = 60.0


def notebooks(only: str | None) -> list[tuple[str, Path]]:
    groups = {
        "chapters": sorted(ROOT.glob("chapters/*.ipynb")),
        "masters": sorted(ROOT.glob("labs/masters/*.ipynb")),
        "students": sorted(ROOT.glob("labs/*.ipynb")),
    }
    return [(group, path) for group, paths in groups.items() if only in (None, group) for path in paths]


def execute(path: Path) -> tuple[float, str]:
    """Run one notebook top to bottom in a fresh kernel from a scratch folder; return (seconds, status)."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / path.name
        shutil.copy(path, copy)
        nb = nbformat.read(copy, as_version=4)
        client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": scratch}})
        start = time.perf_counter()
        try:
            client.execute()
            status = "ok"
        except Exception as exc:  # report and go on: the table should show every notebook
            status = f"FAILED: {type(exc).__name__}: {str(exc).strip().splitlines()[-1][:120]}"
        return time.perf_counter() - start, status


def build_book() -> tuple[float, int]:
    jb = Path(sys.executable).with_name("jupyter-book")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        proc = subprocess.run([str(jb), "build", str(ROOT), "--path-output", out, "-W", "-n"], capture_output=True)
        return time.perf_counter() - start, proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["chapters", "masters", "students"], help="run one group only")
    parser.add_argument("--skip-build", action="store_true", help="do not time the book build")
    args = parser.parse_args(argv)

    rows, ok = [], True
    for group, path in notebooks(args.only):
        seconds, status = execute(path)
        budget = CHAPTER_BUDGET_S if group == "chapters" else LAB_BUDGET_S
        within = seconds <= budget and status == "ok"
        ok &= within
        rows.append((group, path.relative_to(ROOT).as_posix(), seconds, budget, status))
        print(f"{group:9} {rows[-1][1]:45} {seconds:7.1f} s  (budget {budget:.0f} s)  {status}", flush=True)
    total = sum(r[2] for r in rows)
    print("\n| group | notebook | time (s) | budget (s) | status |\n|---|---|---|---|---|")
    for group, name, seconds, budget, status in rows:
        print(f"| {group} | {name} | {seconds:.1f} | {budget:.0f} | {status} |")
    print(
        f"| total | {len(rows)} notebooks | {total:.1f} | {TOTAL_BUDGET_S:.0f} | {'ok' if total <= TOTAL_BUDGET_S else 'OVER'} |"
    )
    ok &= total <= TOTAL_BUDGET_S
    if not args.skip_build:
        seconds, code = build_book()
        ok &= code == 0 and seconds <= BOOK_BUILD_BUDGET_S
        print(
            f"| book | jupyter-book build from stored outputs | {seconds:.1f} | {BOOK_BUILD_BUDGET_S:.0f} | exit {code} |"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
