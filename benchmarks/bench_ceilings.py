"""P1 and P2: ``measure_ceilings`` against exhaustive competitor sweeps, plus the time ``quick=True`` takes.

P1 = measured FP32 compute ceiling / best ``torch.matmul`` FLOP/s over an exhaustive sweep of square sizes
     (64 ... 4096, each timed with ``benchmark`` at torch's thread count and at one thread, the best kept).
P2 = measured DRAM bandwidth / best of numpy copy, torch copy and a torch triad over arrays of 4x and 8x the LLC,
     timed two ways: medians from ``benchmark`` (like for like), and STREAM's best-of-10 with ``perf_counter``.
Goals: both >= 0.95.

Reproduce (from the repository root)::

    python benchmarks/bench_ceilings.py
"""

from __future__ import annotations

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


# torch's thread count at start-up (the sweeps change it and restore it).
THREADS = torch.get_num_threads()


def _threads():
    return (THREADS, 1) if THREADS > 1 else (1,)


def best_matmul():
    best, where = 0.0, None
    for threads in _threads():
        torch.set_num_threads(threads)
        for n in SWEEP:
            a = torch.randn(n, n)
            rate = 2 * n**3 / benchmark(torch.matmul, a, a, min_run_s=0.2).median_s
            if rate > best:
                best, where = rate, f"n={n}, {threads} threads"
    torch.set_num_threads(THREADS)
    return best, where


def best_stream():
    llc = max(cache_sizes_bytes().values())
    results = {}
    for mult in (4, 8):
        n = mult * llc // 4
        a, b, c = torch.rand(n), torch.rand(n), torch.rand(n)
        kernels = {
            "numpy copy": (2 * 4 * n, np.copyto, (a.numpy(), b.numpy()), {}),
            "torch copy": (2 * 4 * n, a.copy_, (b,), {}),
            "triad": (3 * 4 * n, torch.add, (b, c), {"alpha": 3.0, "out": a}),
        }
        for name, (moved, fn, args, kw) in kernels.items():
            for threads in (1,) if name == "numpy copy" else _threads():
                torch.set_num_threads(threads)
                median = moved / benchmark(fn, *args, min_run_s=0.3, **kw).median_s
                times = []
                for _ in range(STREAM_REPEATS):
                    t0 = time.perf_counter()
                    fn(*args, **kw)
                    times.append(time.perf_counter() - t0)
                key = f"{name} {mult}xLLC {threads}t"
                results[key] = (median, moved / min(times))
        torch.set_num_threads(THREADS)
    return results


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

    peak, where = best_matmul()
    mine = full.roofline.peak_flops_per_s("fp32")
    print(
        f"\nP1: measured fp32 {mine / 1e9:.1f} GFLOP/s / best sweep {peak / 1e9:.1f} GFLOP/s ({where}) = {mine / peak:.3f}"
    )
    print(f"    quick mode fp32 {quick.roofline.peak_flops_per_s('fp32') / 1e9:.1f} GFLOP/s")

    stream = best_stream()
    for key, (med, best) in stream.items():
        print(f"    {key:<26} median {med / 1e9:7.2f} GB/s   best-of-{STREAM_REPEATS} {best / 1e9:7.2f} GB/s")
    bw = full.roofline.bandwidth_bytes_per_s("dram")
    best_med = max(m for m, _ in stream.values())
    best_best = max(b for _, b in stream.values())
    print(
        f"P2: measured dram {bw / 1e9:.2f} GB/s / best competitor median {best_med / 1e9:.2f} = {bw / best_med:.3f}; "
    )
    print(f"    / best competitor best-of-{STREAM_REPEATS} {best_best / 1e9:.2f} = {bw / best_best:.3f}")


if __name__ == "__main__":
    main()
