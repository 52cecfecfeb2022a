"""P1 and P2: ``measure_ceilings`` against exhaustive competitor sweeps, plus the time ``quick=True`` takes.

P1 = measured FP32 compute ceiling / best ``torch.matmul`` FLOP/s over an exhaustive sweep of square sizes
     (64 ... 4096, each timed with ``benchmark`` at torch's thread count and at one thread, the best kept).
P2 = measured DRAM bandwidth / best of numpy copy, torch copy and a torch triad over two large sets per array:
     4x the LLC the OS reports, clamped to 512 MiB - 1 GiB, and twice that (independent of efflab's plateau search;
     a VM may report its host's 480 MiB L3, and 2 GiB per array stays well inside a 24 GB machine).

The ceilings are rates of fastest samples (STREAM's "best rate"), so the like-for-like competitor figure is the best
fastest sample of its sweep (for P2 also STREAM's own best-of-10 with ``perf_counter``); the ratio to the competitor's
best *median* is printed beside it. A shared VM's bandwidth and clock drift within a minute (other tenants, vCPU
placement), so both are measured in ``ROUNDS`` interleaved rounds (ours then the competitor's, then the other way
round, ...) and the median of the per-round ratios is the figure; every round is printed.
Goals: both >= 0.95.

Reproduce (from the repository root)::

    python benchmarks/bench_ceilings.py
"""

from __future__ import annotations

import statistics
import time
import warnings

import numpy as np
import torch

from efflab.ceilings import cache_sizes_bytes, measure
from efflab.timing import HighVarianceWarning, benchmark

# Square matmul sizes of the competitor's sweep: powers of two and the steps between them.
SWEEP = (64, 96, 128, 192, 256, 320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048, 3072, 4096)
# Best-of-N repeats for the STREAM-style timing.
STREAM_REPEATS = 10
# The competitor's smaller per-array set, before doubling: 4x the reported LLC, clamped (see the docstring).
STREAM_SET_CLAMP_BYTES = (512 << 20, 1 << 30)
# Interleaved rounds (odd, so one drifted round cannot move the median).
ROUNDS = 3

# torch's thread count at start-up (the sweeps change it and restore it).
THREADS = torch.get_num_threads()


def _threads():
    return (THREADS, 1) if THREADS > 1 else (1,)


def best_matmul():
    """Best FLOP/s of the exhaustive sweep: {"fastest": (rate, where), "median": (rate, where)}."""
    best = {"fastest": (0.0, ""), "median": (0.0, "")}
    for threads in _threads():
        torch.set_num_threads(threads)
        for n in SWEEP:
            a = torch.randn(n, n)
            m = benchmark(torch.matmul, a, a, min_run_s=0.2)
            for key, t in (("fastest", m.min_s), ("median", m.median_s)):
                if 2 * n**3 / t > best[key][0]:
                    best[key] = (2 * n**3 / t, f"n={n}, {threads} threads")
    torch.set_num_threads(THREADS)
    return best


def best_stream():
    """Bandwidth per kernel, set and thread count: {key: (median rate, fastest-sample rate, best-of-10 rate)}."""
    low, high = STREAM_SET_CLAMP_BYTES
    first = min(max(4 * max(cache_sizes_bytes().values(), default=low), low), high)
    results = {}
    for size in (first, 2 * first):
        n = size // 4
        a, b, c = torch.rand(n), torch.rand(n), torch.rand(n)
        kernels = {
            "numpy copy": (2 * 4 * n, np.copyto, (a.numpy(), b.numpy()), {}),
            "torch copy": (2 * 4 * n, a.copy_, (b,), {}),
            "triad": (3 * 4 * n, torch.add, (b, c), {"alpha": 3.0, "out": a}),
        }
        for name, (moved, fn, args, kw) in kernels.items():
            for threads in (1,) if name == "numpy copy" else _threads():
                torch.set_num_threads(threads)
                m = benchmark(fn, *args, min_run_s=0.3, **kw)
                times = []
                for _ in range(STREAM_REPEATS):
                    t0 = time.perf_counter()
                    fn(*args, **kw)
                    times.append(time.perf_counter() - t0)
                results[f"{name} {size >> 20} MiB {threads}t"] = (
                    moved / m.median_s,
                    moved / m.min_s,
                    moved / min(times),
                )
        torch.set_num_threads(THREADS)
    return results


def _round(rnd, first):
    """One interleaved round: (ratios, text). ``first`` is a report measured just before, reused in round 0."""

    def ours():
        return first if rnd == 0 else measure(device="cpu", dtypes=("fp32",), quick=False, progress=False)

    def theirs():
        return best_matmul(), best_stream()

    if rnd % 2 == 0:
        report, (mm, stream) = ours(), theirs()
    else:
        (mm, stream), report = theirs(), ours()
    roof = report.roofline
    flops, bw = roof.peak_flops_per_s("fp32"), roof.bandwidth_bytes_per_s("dram")
    bw_med = max(s[0] for s in stream.values())
    bw_fast = max(s[1] for s in stream.values())
    bw_best10 = max(s[2] for s in stream.values())
    where = max(stream, key=lambda k: stream[k][1])
    ratios = {
        "P1 vs fastest": flops / mm["fastest"][0],
        "P1 vs median": flops / mm["median"][0],
        "P2 vs fastest": bw / bw_fast,
        "P2 vs best-of-10": bw / bw_best10,
        "P2 vs median": bw / bw_med,
    }
    lines = [
        f"round {rnd + 1} ({'ours first' if rnd % 2 == 0 else 'competitor first'}):",
        f"  P1: ours {flops / 1e9:.1f} GFLOP/s ({roof.compute['fp32'].source.split(':')[0]}); sweep fastest "
        f"{mm['fastest'][0] / 1e9:.1f} ({mm['fastest'][1]}) -> {ratios['P1 vs fastest']:.3f}; sweep median "
        f"{mm['median'][0] / 1e9:.1f} ({mm['median'][1]}) -> {ratios['P1 vs median']:.3f}",
        f"  P2: ours {bw / 1e9:.2f} GB/s ({roof.memory['dram'].source}); best competitor ({where}) fastest "
        f"{bw_fast / 1e9:.2f} -> {ratios['P2 vs fastest']:.3f}, best-of-{STREAM_REPEATS} {bw_best10 / 1e9:.2f} -> "
        f"{ratios['P2 vs best-of-10']:.3f}, median {bw_med / 1e9:.2f} -> {ratios['P2 vs median']:.3f}",
    ]
    return ratios, "\n".join(lines)


def main() -> None:
    warnings.simplefilter("ignore", HighVarianceWarning)
    t0 = time.perf_counter()
    quick = measure(device="cpu", dtypes=("fp32",), quick=True)
    quick_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = measure(device="cpu", dtypes=("fp32", "bf16"), quick=False, progress=False)
    full_s = time.perf_counter() - t0
    print(full.to_text())
    print(f"\nquick=True took {quick_s:.1f} s (goal <= 15 s); full took {full_s:.1f} s")
    print(f"quick DRAM search: {quick.notes[1]}")
    print(
        f"quick mode: fp32 {quick.roofline.peak_flops_per_s('fp32') / 1e9:.1f} GFLOP/s, dram "
        f"{quick.roofline.bandwidth_bytes_per_s('dram') / 1e9:.2f} GB/s\n"
    )
    rounds = []
    for rnd in range(ROUNDS):
        ratios, text = _round(rnd, full)
        print(text, flush=True)
        rounds.append(ratios)
    print(f"\nmedian of {ROUNDS} interleaved rounds (goal >= 0.95):")
    for key in rounds[0]:
        print(
            f"  {key:<18} {statistics.median(r[key] for r in rounds):.3f}   rounds: "
            + ", ".join(f"{r[key]:.3f}" for r in rounds)
        )


if __name__ == "__main__":
    main()
