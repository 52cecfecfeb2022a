"""P3: ``efflab.timing.benchmark`` median / ``torch.utils.benchmark.Timer.blocked_autorange`` median.

Workloads span ~1 us to ~100 ms on the CPU (elementwise adds and a matmul). Both tools run one thread (Timer's default) and get the same ``min_run_s``/``min_run_time`` (0.2 s, both libraries' default); each pair is measured five times in alternating order and
the ratio of medians is reported with the wall time each tool spent (calibration and warm-up included).
Goal: every ratio within 5 % of 1, total efflab time no more than torch's.

Reproduce (from the repository root)::

    python benchmarks/bench_timing.py
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.utils.benchmark as tb

from efflab.timing import benchmark, format_time_s

# Rounds per workload, alternating which tool goes first; the median round is reported.
ROUNDS = 5


def workloads():
    """(label, fn, args) from ~10 us to ~100 ms on a 2-core CPU."""
    out = []
    for n in (4_096, 65_536, 1_048_576, 8_388_608):
        a, b = torch.randn(n), torch.randn(n)
        out.append((f"add n={n:,}", torch.add, (a, b)))
    for n in (1024, 1792):
        m = torch.randn(n, n)
        out.append((f"matmul {n}^3", torch.matmul, (m, m)))
    return out


def main() -> None:
    # One thread: torch.utils.benchmark.Timer's default, and far less sensitive to other processes on a shared CPU.
    torch.set_num_threads(1)
    print(f"{'workload':<22}{'efflab median':>15}{'torch median':>15}{'ratio':>8}{'efflab s':>10}{'torch s':>10}")
    worst, total_e, total_t = 0.0, 0.0, 0.0
    for label, fn, args in workloads():
        med_e, med_t, spent = [], [], {"e": 0.0, "t": 0.0}
        for rnd in range(ROUNDS):
            order = ("e", "t") if rnd % 2 == 0 else ("t", "e")
            for who in order:
                t0 = time.perf_counter()
                if who == "e":
                    med_e.append(benchmark(fn, *args).median_s)
                else:
                    timer = tb.Timer(stmt="fn(*args)", globals={"fn": fn, "args": args}, num_threads=1)
                    med_t.append(timer.blocked_autorange(min_run_time=0.2).median)
                spent[who] += time.perf_counter() - t0
        e, t = statistics.median(med_e), statistics.median(med_t)
        ratio = e / t
        worst = max(worst, abs(ratio - 1))
        print(
            f"{label:<22}{format_time_s(e):>15}{format_time_s(t):>15}{ratio:>8.3f}{spent['e']:>10.2f}{spent['t']:>10.2f}"
        )
        total_e, total_t = total_e + spent["e"], total_t + spent["t"]
    print(f"{'total time spent':<52}{total_e:>18.2f}{total_t:>10.2f}")
    print(f"P3: worst |median ratio - 1| = {worst:.1%} (goal <= 5 %); time efflab/torch = {total_e / total_t:.2f}")


if __name__ == "__main__":
    main()
