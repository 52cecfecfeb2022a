"""The GPU journey in one prepared script: run it on a CUDA machine and paste its report into the issue note.

Command (from the repository root, on the device machine, after ``make install`` or an equivalent environment with a
CUDA build of torch and, optionally, triton)::

    python benchmarks/gpu_check.py --out gpu_report.md            # everything, under 8 minutes by construction
    python benchmarks/gpu_check.py --skip-notebooks               # instruments only, ~1 minute

It records, in one run:

1. every chapter, lab master and student lab executed top to bottom on the GPU runtime (a fresh kernel each, from a
   scratch copy): success and seconds;
2. ``efflab.benchmark`` against ``triton.testing.do_bench`` on a small and a large kernel (median ratio; goal within
   5 %): like for like with the L2 flush (do_bench always flushes), and without it beside;
3. the catalog entry's L2 size and SM count against the driver's, then ``efflab.measure_ceilings()`` against the datasheet entry ``efflab.detect()`` found (fraction of spec per ceiling);
4. ``efflab.profile_ops`` on a transformer encoder layer, unfused (totals and top ops);
5. an NVML energy reading (``efflab.EnergyMeter``) around a ~1 s matmul loop: joules, average watts, source.

Without CUDA it says so and exits 2: nothing here is meaningful on a CPU (the CPU paths have their own benchmarks).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# A device is lent for ~10 minutes a command: each cell may take this long, and the notebooks together this long
# (the instruments and the gpu tests take ~3 minutes more), so the whole check ends within 8 minutes by construction.
CELL_TIMEOUT_S = 120
NOTEBOOKS_DEADLINE_S = 270


def run_notebooks(only: str | None = None, on_row=None, deadline_s: float = NOTEBOOKS_DEADLINE_S) -> list[str]:
    """Each notebook top to bottom in a fresh kernel; a row per notebook, passed to ``on_row`` as soon as it is known
    (the report on disk grows with it), and the ones the deadline leaves out listed as skipped."""
    import nbformat
    from nbclient import NotebookClient

    lines = ["| notebook | status | seconds |", "|---|---|---|"]
    paths = sorted(ROOT.glob("chapters/*.ipynb")) + sorted(ROOT.glob("labs/masters/*.ipynb"))
    paths += sorted(ROOT.glob("labs/*.ipynb"))
    if only:
        paths = [p for p in paths if p.match(only)]
    began = time.perf_counter()
    for path in paths:
        if time.perf_counter() - began > deadline_s:
            lines.append(f"| {path.relative_to(ROOT)} | skipped: the {deadline_s:.0f} s deadline passed | - |")
            continue
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / path.name
            shutil.copy(path, copy)
            nb = nbformat.read(copy, as_version=4)
            start = time.perf_counter()
            try:
                NotebookClient(
                    nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": scratch}}
                ).execute()
                status = "ok"
            except Exception as exc:  # keep going: the table must list every notebook
                status = f"FAILED {type(exc).__name__}: {str(exc).strip().splitlines()[-1][:100]}"
        lines.append(f"| {path.relative_to(ROOT)} | {status} | {time.perf_counter() - start:.1f} |")
        print(lines[-1], flush=True)
        if on_row is not None:
            on_row(lines)
    return lines


def _tensor_dtype(torch):
    """bf16 where tensor cores have it (compute capability 8.0 on), else fp16: a T4 or V100 only emulates bf16."""
    from efflab.hardware import TF32_BF16_MIN_CAPABILITY

    if tuple(torch.cuda.get_device_capability()) >= TF32_BF16_MIN_CAPABILITY:
        return "bf16", torch.bfloat16
    return "fp16", torch.float16


def compare_with_do_bench(torch) -> list[str]:
    from efflab.timing import benchmark

    try:
        from triton.testing import do_bench
    except ImportError:
        return ["triton is not installed: `pip install triton` to compare with triton.testing.do_bench"]
    small = torch.randn(1 << 12, device="cuda")
    name, dtype = _tensor_dtype(torch)
    big_a = torch.randn(8192, 8192, device="cuda", dtype=dtype)
    big_b = torch.randn(8192, 8192, device="cuda", dtype=dtype)
    cases = {"add 4096 elements (launch-bound)": lambda: small + 1, f"{name} matmul 8192^3": lambda: big_a @ big_b}
    lines = [
        "| kernel | efflab median | efflab median, L2 flushed | do_bench median (flushes L2) | ratio, flushed | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, fn in cases.items():
        ours = benchmark(fn, device="cuda").median_s
        flushed = benchmark(fn, device="cuda", flush_l2=True).median_s
        theirs = do_bench(fn, return_mode="median") * 1e-3  # do_bench reports milliseconds, flushing L2
        lines.append(
            f"| {name} | {ours * 1e6:.2f} us | {flushed * 1e6:.2f} us | {theirs * 1e6:.2f} us "
            f"| {flushed / theirs:.3f} | {ours / theirs:.3f} |"
        )
    return lines


def spec_vs_device(torch) -> list[str]:
    """The catalog entry against what the driver reports: the L2 size (the H200 entry's 50 MiB comes from the H100
    whitepaper, as the H200 datasheet gives none) and the SM count behind ``exp_per_s``."""
    from efflab.hardware import SFU_EXP_PER_CLOCK_PER_SM, spec_for

    spec, why = spec_for("cuda:0")
    props = torch.cuda.get_device_properties(0)
    lines = [f"name: {props.name}; capability {props.major}.{props.minor}; spec: {why}", ""]
    lines += ["| figure | driver | catalog |", "|---|---|---|"]
    catalog_l2 = f"{spec.l2_bytes / 2**20:.1f} MiB" if spec is not None and spec.l2_bytes else "-"
    lines.append(f"| L2 | {props.L2_cache_size / 2**20:.1f} MiB | {catalog_l2} |")
    sms = spec.sources.get("exp_per_s", "-").split(" SMs")[0] if spec is not None else "-"
    lines.append(f"| SMs | {props.multi_processor_count} | {sms} |")
    lines.append(f"| memory | {props.total_memory / 1e9:.1f} GB | - |")
    lines.append(f"(exp per clock per SM assumed: {SFU_EXP_PER_CLOCK_PER_SM})")
    return lines


def ceilings_vs_datasheet() -> list[str]:
    import efflab

    device = efflab.detect()
    roof = efflab.measure_ceilings()
    lines = [f"device: {device.name} ({'estimated' if device.estimated else 'datasheet'})", ""]
    lines += ["| ceiling | measured | spec | fraction |", "|---|---|---|---|"]
    for ceiling in [*roof.compute.values(), *roof.memory.values()]:
        spec = f"{ceiling.spec:.4g}" if ceiling.spec else "-"
        frac = f"{ceiling.fraction_of_spec:.1%}" if ceiling.fraction_of_spec else "-"
        lines.append(f"| {ceiling.kind} {ceiling.name} | {ceiling.measured or ceiling.value:.4g} | {spec} | {frac} |")
    lines.append(f"| latency floor | {roof.latency_s * 1e6:.2f} us | - | - |" if roof.latency_s else "")
    return lines


def profile_block(torch) -> list[str]:
    import efflab

    torch.manual_seed(0)
    # Training mode (dropout 0, no_grad below): in eval mode torch takes its fused fast path, one op that no FLOP
    # counter sees (0 FLOPs); this way every matmul, softmax and norm is profiled as its own op.
    layer = torch.nn.TransformerEncoderLayer(512, 8, 2048, dropout=0.0, batch_first=True, device="cuda").train()
    x = torch.randn(8, 256, 512, device="cuda")
    with torch.no_grad():
        profile = efflab.profile_ops(layer, x)
    return ["```", profile.to_table(), "```"]


def nvml_energy(torch) -> list[str]:
    import efflab

    a = torch.randn(8192, 8192, device="cuda", dtype=_tensor_dtype(torch)[1])
    with efflab.EnergyMeter() as meter:
        start = time.perf_counter()
        while time.perf_counter() - start < 1.0:
            a @ a
    return [f"source={meter.source} energy={meter.energy_j} J time={meter.time_s:.3f} s power={meter.power_w} W"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="also write the report to this Markdown file")
    parser.add_argument("--skip-notebooks", action="store_true", help="only the instruments (no notebook runs)")
    parser.add_argument("--notebooks", metavar="GLOB", default=None, help="only notebooks matching, e.g. '*lab1*'")
    parser.add_argument(
        "--cpu-rehearsal",
        action="store_true",
        help="without CUDA, run only the notebook section on the CPU: checks the environment (benchmarks/gpu_run.sh "
        "and its wheels) before device time is spent; its figures are not GPU results",
    )
    args = parser.parse_args(argv)

    import torch

    sections = []
    if torch.cuda.is_available():
        report = [f"# efflab GPU check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", ""]
        sections = [
            ("catalog entry vs the driver's figures", lambda: spec_vs_device(torch)),
            ("benchmark vs triton.testing.do_bench", lambda: compare_with_do_bench(torch)),
            ("measured ceilings vs datasheet", ceilings_vs_datasheet),
            ("profile_ops on a transformer block", lambda: profile_block(torch)),
            ("NVML energy", lambda: nvml_energy(torch)),
        ]
    elif args.cpu_rehearsal:
        report = [f"# efflab GPU check, CPU rehearsal (no CUDA; not GPU results), torch {torch.__version__}", ""]
    else:
        print("No CUDA device: the GPU journey needs one (this is not a failure of the CPU paths).")
        return 2

    def write(extra=()):  # the report on disk after every section and notebook: a timeout loses nothing done
        if args.out:
            Path(args.out).write_text("\n".join([*report, *extra]) + "\n", encoding="utf-8")

    if not args.skip_notebooks:
        title = "notebooks on the GPU runtime"
        partial = lambda rows: write([f"## {title}", "", *rows, "", "(in progress)"])  # noqa: E731
        sections.append((title, lambda: run_notebooks(args.notebooks, on_row=partial)))
    write()
    for title, section in sections:
        print(f"== {title}", flush=True)
        try:
            lines = section()
        except Exception as exc:  # one broken section must not hide the others
            lines = [f"FAILED: {type(exc).__name__}: {exc}"]
        report += [f"## {title}", "", *lines, ""]
        print("\n".join(lines), flush=True)
        write()
    return 1 if any("FAILED" in line for line in report) else 0


if __name__ == "__main__":
    sys.exit(main())
