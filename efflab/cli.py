"""The ``efflab`` command line: ``efflab doctor``, ``efflab sync-notebooks``, ``efflab roofline``, and the commands
the grading package adds.

``efflab.grading.cli`` (``assign``/``grade``/``gradebook``) exposes ``add_cli(subparsers)``; it registers its parser and
sets ``func`` to a callable taking the parsed ``argparse.Namespace`` and returning an exit code. It is imported only
when present, and every command imports its heavy dependencies (torch, matplotlib, nbclient) only inside ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

__all__ = ["main"]

# Modules that contribute sub-commands through ``add_cli(subparsers)``.
_PLUGINS = ("efflab.grading.cli",)


def _doctor(args: argparse.Namespace) -> int:
    from efflab.doctor import doctor

    print(doctor().to_text())
    return 0


def _sync_notebooks(args: argparse.Namespace) -> int:
    from efflab.notebooks import sync_notebooks

    changed = sync_notebooks(args.root, check=args.check)
    for path in changed:
        print(("out of date: " if args.check else "rewrote: ") + str(path))
    if args.check and changed:
        print("run `efflab sync-notebooks` to rewrite them from _config.yml", file=sys.stderr)
        return 1
    if not changed:
        print("all notebooks agree with _config.yml")
    return 0


def _roofline(args: argparse.Namespace) -> int:
    from efflab import ceilings

    report = ceilings.measure(device=args.device, quick=args.quick, progress=True)
    print(report.to_text())
    if args.plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            from efflab.plots import plot_roofline
        except ImportError:
            print("matplotlib is not installed: no plot (pip install matplotlib)")
            return 0
        ax = plot_roofline(report.roofline)
        fig = ax.figure.figure  # the root Figure: ax.figure itself, as plot_roofline drew a new one
        fig.savefig(args.plot, dpi=120, bbox_inches="tight")
        plt.close(fig)
        print(f"saved {args.plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the full argument parser (plugins included)."""
    parser = argparse.ArgumentParser(prog="efflab", description="Tools for the efflab course.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="report this machine and which parts of efflab are usable")
    p.set_defaults(func=_doctor)

    p = sub.add_parser(
        "sync-notebooks",
        help="rewrite every notebook's setup cell and Colab badge from the repository in _config.yml",
    )
    p.add_argument("--root", default=".", help="the book's root folder (holding _config.yml); default: .")
    p.add_argument("--check", action="store_true", help="only report notebooks that disagree; exit 1 if any")
    p.set_defaults(func=_sync_notebooks)

    p = sub.add_parser("roofline", help="measure this machine's roofline and compare it with the spec")
    p.add_argument("--quick", action="store_true", help="fewer, smaller sweeps (<= 15 s on a laptop CPU)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--plot", metavar="PATH.png", default=None, help="save the roofline plot (needs matplotlib)")
    p.set_defaults(func=_roofline)

    for name in _PLUGINS:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # parent package missing
            found = False
        if found:
            module = importlib.import_module(name)
            if hasattr(module, "add_cli"):
                module.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
