"""``efflab assign``, ``efflab grade`` and ``efflab gradebook merge`` (registered by ``efflab.cli``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_cli"]


def _assign(args: argparse.Namespace) -> int:
    from efflab.grading.assign import assign, out_of_date

    masters = [Path(p) for p in args.masters]
    if args.lab:
        masters.append(Path("labs/masters") / f"{args.lab}.ipynb")
    if not masters:
        masters = sorted(Path("labs/masters").glob("*.ipynb"))
    if not masters:
        print("no master notebooks: give paths, --lab ID, or run from the book's root (labs/masters/*.ipynb)")
        return 0 if args.check else 2  # nothing to check is not a failure
    if args.check:
        stale = out_of_date(masters)
        for path in stale:
            print(f"out of date: {path} (run `efflab assign` and commit it)", file=sys.stderr)
        if not stale:
            print(f"{len(masters)} student notebook(s) match their masters")
        return 1 if stale else 0
    if args.out and len(masters) != 1:
        print("--out needs exactly one master", file=sys.stderr)
        return 2
    for master in masters:
        print(f"wrote {assign(master, args.out)} from {master}")
    return 0


def _errors_as_messages(func):
    """Bad arguments (an unknown lab, a bad --shard) print one line and exit 2 instead of a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except ValueError as exc:
            print(f"efflab {args.command}: {exc}", file=sys.stderr)
            return 2

    return run


def _grade(args: argparse.Namespace) -> int:
    from efflab.grading.grade import default_hide, grade, prepare, shard, summary, write_gradebook
    from efflab.grading.runner import Limits, namespaces_available
    from efflab.grading.spec import load_lab

    lab = load_lab(args.lab, keys_dir=args.keys)
    paths = [Path(p) for p in args.submissions]
    if args.shard:
        paths = shard(paths, args.shard)
    limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_mb, output_bytes=args.output_bytes)
    sandbox = False if args.no_namespaces else None
    if sandbox is None and not namespaces_available():
        print("note: unshare cannot create namespaces here; running with resource limits only", file=sys.stderr)
    key = prepare(lab, args.seed)
    rows = grade(paths, key, limits, jobs=args.jobs, hide=default_hide(lab, args.keys, args.hide), sandbox=sandbox)
    out = write_gradebook(rows, args.out, lab)
    print(f"{summary(rows)}; gradebook {out}, feedback in {out.parent / 'feedback'}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from efflab.grading.grade import merge

    count = merge(args.gradebooks, args.out)
    print(f"merged {count} rows from {len(args.gradebooks)} gradebooks into {args.out}")
    return 0


def add_cli(subparsers) -> None:
    """Register ``assign``, ``grade`` and ``gradebook merge`` on the ``efflab`` command line."""
    p = subparsers.add_parser("assign", help="generate student notebooks from solved masters (labs/masters/*.ipynb)")
    p.add_argument("masters", nargs="*", help="master notebooks (default: labs/masters/*.ipynb)")
    p.add_argument("--lab", help="a lab id: labs/masters/<lab>.ipynb")
    p.add_argument("--out", help="where to write the student notebook (default: labs/<lab>.ipynb)")
    p.add_argument(
        "--check", action="store_true", help="only compare with the committed student notebooks; exit 1 if any differ"
    )
    p.set_defaults(func=_errors_as_messages(_assign))

    p = subparsers.add_parser("grade", help="grade submitted notebooks in sandboxed child processes")
    p.add_argument("submissions", nargs="+", help="submitted .ipynb files")
    p.add_argument("--lab", required=True, help="lab id (a shipped spec) or path to a spec .py file")
    p.add_argument("--out", default="gradebook.csv", help="gradebook CSV (feedback/ is written next to it)")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel (one core each)")
    p.add_argument("--timeout", type=float, default=120.0, help="wall-clock seconds per submission (default 120)")
    p.add_argument("--memory-mb", type=int, default=4096, help="address-space limit per process in MB (default 4096)")
    p.add_argument("--output-bytes", type=int, default=1_000_000, help="printed output kept per submission (bytes)")
    p.add_argument(
        "--keys", help="folder of private specs (<lab>.py) that replace the shipped one; hidden from submissions"
    )
    p.add_argument("--seed", type=int, help="seed of the hidden inputs (default: the spec's)")
    p.add_argument("--shard", help="K/N: grade only the K-th of N deterministic slices (Slurm arrays, CI matrices)")
    p.add_argument("--hide", action="append", default=[], help="another path submissions must not see (repeatable)")
    p.add_argument("--no-namespaces", action="store_true", help="do not use unshare (resource limits only)")
    p.set_defaults(func=_errors_as_messages(_grade))

    p = subparsers.add_parser("gradebook", help="gradebook tools")
    sub = p.add_subparsers(dest="gradebook_command", required=True)
    m = sub.add_parser("merge", help="combine shard gradebooks into one CSV")
    m.add_argument("gradebooks", nargs="+", help="shard gradebook CSVs")
    m.add_argument("--out", required=True, help="the merged CSV")
    m.set_defaults(func=_errors_as_messages(_merge))
