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
    from efflab.grading.runner import Limits, probe_isolation
    from efflab.grading.spec import load_lab

    lab = load_lab(args.lab, keys_dir=args.keys)
    paths = [Path(p) for p in args.submissions]
    if args.shard:
        paths = shard(paths, args.shard)
    timeout_s = args.timeout if args.timeout is not None else lab.timeout_s
    memory_mb = args.memory_mb if args.memory_mb is not None else lab.memory_mb
    limits = Limits(timeout_s=timeout_s, memory_mb=memory_mb, output_bytes=args.output_bytes)
    hide = default_hide(lab, args.keys, args.hide)
    allow_weak = args.allow_weak_isolation or args.no_sandbox
    sandbox = False if args.no_sandbox else None
    if not args.no_sandbox:
        probe = probe_isolation(hide)
        if probe.missing:
            why = "; ".join(probe.notes) or "the sandbox could not verify: " + ", ".join(probe.missing)
            if not allow_weak:
                print(
                    f"efflab grade: refusing to grade: {why}. Install bubblewrap (Debian/Ubuntu: apt-get install "
                    "bubblewrap) and allow unprivileged user namespaces, or pass --allow-weak-isolation to grade "
                    "with what is available (the gradebook's protections column then lists only that).",
                    file=sys.stderr,
                )
                return 2
            print(f"warning: weak isolation: {why}", file=sys.stderr)
    print(
        f"limits per submission: {limits.timeout_s:g} s wall clock, {limits.memory_mb} MB address space",
        file=sys.stderr,
    )
    key = prepare(lab, args.seed)
    rows = grade(paths, key, limits, jobs=args.jobs, hide=hide, sandbox=sandbox, allow_weak=allow_weak)
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
    p.add_argument(
        "--timeout", type=float, help="wall-clock seconds per submission (default: the lab's, from its master's needs)"
    )
    p.add_argument(
        "--memory-mb", type=int, help="address-space limit per process in MB (default: the lab's, from its master)"
    )
    p.add_argument("--output-bytes", type=int, default=1_000_000, help="printed output kept per submission (bytes)")
    p.add_argument(
        "--keys", help="folder of private specs (<lab>.py) that replace the shipped one; hidden from submissions"
    )
    p.add_argument("--seed", type=int, help="seed of the hidden inputs (default: the spec's)")
    p.add_argument("--shard", help="K/N: grade only the K-th of N deterministic slices (Slurm arrays, CI matrices)")
    p.add_argument("--hide", action="append", default=[], help="another path submissions must not see (repeatable)")
    p.add_argument(
        "--allow-weak-isolation",
        action="store_true",
        help="grade even where the sandbox cannot verify every protection (rows then list only what held)",
    )
    p.add_argument(
        "--no-sandbox",
        "--no-namespaces",
        dest="no_sandbox",
        action="store_true",
        help="run without bubblewrap: resource limits only (implies --allow-weak-isolation)",
    )
    p.set_defaults(func=_errors_as_messages(_grade))

    p = subparsers.add_parser("gradebook", help="gradebook tools")
    sub = p.add_subparsers(dest="gradebook_command", required=True)
    m = sub.add_parser("merge", help="combine shard gradebooks into one CSV")
    m.add_argument("gradebooks", nargs="+", help="shard gradebook CSVs")
    m.add_argument("--out", required=True, help="the merged CSV")
    m.set_defaults(func=_errors_as_messages(_merge))
