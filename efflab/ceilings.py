"""Measure this machine's roofline: memory bandwidth, matmul peaks per dtype and the dispatch-latency floor.

Like the LBNL Empirical Roofline Toolkit, the ceilings come from sweeps, not spec tables:

- **Bandwidth** from streaming kernels over working sets far beyond the last-level cache (LLC size read from
  ``/sys/devices/system/cpu/cpu0/cache`` on the CPU, ``L2_cache_size`` on CUDA): ``dst.copy_(src)`` and ``np.copyto``
  count 2 bytes moved per byte copied (read + write), the triad ``a = b + s*c`` 3 (STREAM's convention: the extra
  read a write-allocate cache performs on ``dst`` is *not* counted, so the hardware moves up to 1.5x more for a copy).
  Each kernel's rate is STREAM's "best rate", from its fastest sample. The best kernel over the large sets is the
  "dram" ceiling; smaller sets give cache-level ceilings ("l2", "l3"), which are lower bounds because each call also
  pays ~1 µs of dispatch. L1 is not measured: a set that fits there is copied in less time than one dispatch.
- **Compute** from ``torch.matmul`` of square n x n matrices, ``2 n^3`` FLOPs, per dtype, the best size of a sweep
  that reaches the plateau, again from the fastest sample.
- **Why the fastest sample**: a ceiling is an upper bound, what the machine attains (STREAM reports best rates, the
  Empirical Roofline Toolkit maxima). Op times elsewhere are medians, so a typical op sits on or under the roof; a
  ceiling from medians put ops above it whenever the sweep ran during a slow spell (a shared VM's bandwidth drifts by
  1.7x within a minute on the 2-core VM this was written on).
- **Threads**: on a multi-core CPU each kernel runs with torch's thread count and with one thread, and the best is
  kept (on a shared machine a busy core stalls multi-threaded ops; the sweeps record which won).
- **Latency** floor: the median time of adding two one-element tensors (on CUDA, the larger of that kernel's
  event time and the host's launch overhead: back-to-back tiny ops go no faster than either).

Each :class:`efflab.roofline.Ceiling` carries ``measured``, the ``spec`` from :func:`efflab.hardware.detect` (a
datasheet for a catalog GPU, a model estimate for a CPU: ``estimated=True``) and ``fraction_of_spec``. Times come from
:func:`efflab.timing.benchmark`: the fastest sample for the ceilings, the median for the latency floor (a cost every
op pays, added to its time).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from efflab import _validate as v
from efflab.roofline import Ceiling, Roofline
from efflab.timing import HighVarianceWarning, Measurement, benchmark, torch_threads

__all__ = ["CeilingReport", "measure", "measure_ceilings", "cache_sizes_bytes", "add_cli"]

# Matmul sizes n (n x n @ n x n). CPU: the plateau starts near n=256-512 on a 2-core AVX-512 machine and larger sets
# only add time; CUDA: an H100 needs n >= 4096 to fill its 132 SMs (REFERENCE.md: 8192^3 bf16 ~798 TFLOP/s).
MATMUL_SIZES = {"cpu": (256, 512, 1024, 2048), "cuda": (2048, 4096, 8192)}
MATMUL_SIZES_QUICK = {"cpu": (512, 1024), "cuda": (4096, 8192)}
# Working set of the DRAM measurement per array, as a multiple of the LLC: 4x (full mode adds 8x). With 2x, this VM's
# copies ran up to 1.6x faster than with 4x-8x: the LLC the OS reports (one CCD's 32 MiB) is not all the cache the
# vCPUs can reach, and a victim L3 keeps part of a 2x set. McCalpin's STREAM rule asks for >= 4x the summed caches.
DRAM_SET_PER_ARRAY_LLC = 4
# Fallbacks when the OS does not report cache sizes: typical per-core L2 and a server LLC (used only to size sets).
_FALLBACK_CACHES = {"l2": 1 << 20, "l3": 32 << 20}
_DTYPES = {"fp64": "float64", "fp32": "float32", "tf32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def cache_sizes_bytes() -> dict[str, int]:
    """Data/unified CPU cache sizes by level ("l1", "l2", "l3") from ``/sys/devices/system/cpu/cpu0/cache``.

    Per-core figures as the OS reports them (an L3 shared by all cores is reported whole). Empty when unreadable.

    Examples
    --------
    >>> all(size > 0 for size in cache_sizes_bytes().values())
    True
    """
    out: dict[str, int] = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return out
    for entry in entries:
        try:
            with open(f"{base}/{entry}/type") as f:
                kind = f.read().strip()
            with open(f"{base}/{entry}/level") as f:
                level = int(f.read().strip())
            with open(f"{base}/{entry}/size") as f:
                text = f.read().strip()
        except (OSError, ValueError):
            continue
        if kind == "Instruction":
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
        out[f"l{level}"] = int(text.rstrip("KMGkmg")) * scale
    return out


@dataclass(frozen=True)
class CeilingReport:
    """A measured roofline with the raw sweeps behind it (for plotting) and how long it took."""

    roofline: Roofline
    # kernel, threads, working_set_bytes, bytes_moved, time_s (fastest sample), median_time_s, bandwidth_bytes_per_s
    bandwidth_sweep: tuple[dict, ...]
    matmul_sweep: tuple[dict, ...]  # dtype, n, threads, flops, time_s (fastest sample), median_time_s, flops_per_s
    latency: Measurement
    device: str
    elapsed_s: float
    notes: tuple[str, ...] = field(default=())

    def to_text(self) -> str:
        """The ceilings beside the spec, with the fraction achieved."""
        lines = [f"{self.roofline.name} -- measured in {self.elapsed_s:.1f} s", _ceiling_table(self.roofline)]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def _ceiling_table(roof: Roofline) -> str:
    rows = [("ceiling", "measured", "spec", "achieved", "how")]
    for c in (*roof.compute.values(), *roof.memory.values()):
        scale, unit = (1e9, "GFLOP/s") if c.kind == "compute" else (1e9, "GB/s")
        spec = "-" if c.spec is None else f"{c.spec / scale:.4g} {unit}" + (" (est.)" if c.estimated else "")
        frac = "-" if c.fraction_of_spec is None else f"{c.fraction_of_spec:.0%}"
        rows.append((f"{c.kind} {c.name}", f"{(c.measured or c.value) / scale:.4g} {unit}", spec, frac, c.source))
    if roof.latency_s is not None:
        rows.append(("latency floor", f"{roof.latency_s * 1e6:.3g} µs", "-", "-", "median of a 1-element add"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows)


def _progress(total: int, desc: str, enabled: bool):
    """A tqdm bar when tqdm is installed and the sweep is long; otherwise a no-op object with update/close."""
    if enabled:
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, desc=desc, leave=False)
        except ImportError:
            pass

    class _Null:
        def update(self, n=1):
            pass

        def close(self):
            pass

    return _Null()


def _thread_counts(torch, dev) -> tuple[int, ...]:
    """torch's thread count and, on a multi-core CPU, 1 as well: on a shared machine a busy core stalls every
    multi-threaded op at its barrier (a scheduler tick, ~4-16 ms), and the best of both is what the machine attains."""
    n = torch.get_num_threads()
    return (n,) if dev.type == "cuda" or n == 1 else (n, 1)


def _bytes_text(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n:.0f} B"


def _bench(fn, *args, budget_s, **kwargs) -> Measurement:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HighVarianceWarning)  # sweeps keep the best, noise shows in the raw data
        return benchmark(fn, *args, min_run_s=budget_s, max_run_s=max(4 * budget_s, 0.5), **kwargs)


def _bandwidth_sweep(torch, dev, caches, quick, bar):
    llc = max(caches.values())
    # On a GPU also >= 256 MiB per array (1 GiB in full mode), so one copy outlasts a launch by far.
    floor = (256 << 20 if quick else 1 << 30) if dev.type == "cuda" else 0
    per_array = (
        [max(DRAM_SET_PER_ARRAY_LLC * llc, floor)]
        if quick
        else [DRAM_SET_PER_ARRAY_LLC * llc, max(2 * DRAM_SET_PER_ARRAY_LLC * llc, floor)]
    )
    # Per array: half the per-core L2 (a copy then spans one L2, split across threads) and 1/8 of the LLC.
    cache_sets = [] if dev.type == "cuda" else [caches.get("l2", 0) // 2, llc // 8]
    budget = 0.1 if quick else 0.3
    rows = []
    for size in [s for s in cache_sets if s >= 4096] + per_array:
        n = size // 4
        src, dst, c = (torch.rand(n, device=dev) for _ in range(3))
        kernels = [("torch copy", 2 * size, 2 * size, dst.copy_, (src,), {})]
        kernels.append(("triad", 3 * size, 3 * size, torch.add, (src, c), {"alpha": 3.0, "out": dst}))
        if dev.type == "cpu":
            kernels.append(("numpy copy", 2 * size, 2 * size, np.copyto, (dst.numpy(), src.numpy()), {}))
        for name, working_set, moved, fn, args, kw in kernels:
            for threads in (1,) if name == "numpy copy" else _thread_counts(torch, dev):
                with torch_threads(threads):
                    m = _bench(fn, *args, budget_s=budget, **kw)
                rows.append(
                    {
                        "kernel": name,
                        "threads": threads,
                        "working_set_bytes": working_set,
                        "bytes_moved": moved,
                        "time_s": m.min_s,  # STREAM's "best rate": the fastest sample
                        "median_time_s": m.median_s,
                        "bandwidth_bytes_per_s": moved / m.min_s,
                    }
                )
            bar.update()
        del src, dst, c
    return rows


def _matmul_sweep(torch, dev, dtypes, quick, bar):
    sizes = (MATMUL_SIZES_QUICK if quick else MATMUL_SIZES)["cuda" if dev.type == "cuda" else "cpu"]
    rows = []
    for dtype in dtypes:
        tdt = getattr(torch, _DTYPES[dtype])
        # fp32 must be true FP32 and tf32 the tensor-core path: the public switch covers cuBLAS (and the CPU).
        old = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("high" if dtype == "tf32" else "highest")
        try:
            for n in sizes:
                a, b = torch.randn(n, n, device=dev).to(tdt), torch.randn(n, n, device=dev).to(tdt)
                for threads in _thread_counts(torch, dev):
                    with torch_threads(threads):
                        m = _bench(torch.matmul, a, b, budget_s=0.1 if quick else 0.3)
                    flops = 2.0 * n**3
                    rows.append(
                        {
                            "dtype": dtype,
                            "n": n,
                            "threads": threads,
                            "flops": flops,
                            "time_s": m.min_s,  # the fastest sample: the rate the machine attains
                            "median_time_s": m.median_s,
                            "flops_per_s": flops / m.min_s,
                        }
                    )
                bar.update()
        finally:
            torch.set_float32_matmul_precision(old)
    return rows


def _level_of(working_set: int, caches: dict[str, int], on_gpu: bool) -> str | None:
    """Memory level a working set exercises: fits the per-core L2, fits the LLC, or spans two arrays of
    ``DRAM_SET_PER_ARRAY_LLC`` x the LLC ("dram")."""
    llc = max(caches.values())
    dram = 2 * DRAM_SET_PER_ARRAY_LLC * llc
    if working_set >= dram or on_gpu:
        return "dram" if working_set >= dram else None
    if "l2" in caches and working_set <= caches["l2"]:
        return "l2"
    return max(caches, key=caches.get) if working_set <= llc else None


def measure(device=None, dtypes=None, quick: bool = False, progress: bool | None = None) -> CeilingReport:
    """Measure this machine's ceilings and return them with the sweeps behind them (see :func:`measure_ceilings`).

    ``progress``: show a tqdm bar (default: in full mode, whose sweeps take tens of seconds).

    Examples
    --------
    >>> report = measure(quick=True)  # doctest: +SKIP
    >>> [row["kernel"] for row in report.bandwidth_sweep][:3]  # doctest: +SKIP
    ['torch copy', 'torch copy', 'triad']
    """
    import torch

    from efflab.hardware import detect

    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
    on_gpu = dev.type == "cuda"
    if dtypes is None:
        dtypes = ("fp32", "tf32", "bf16", "fp16") if on_gpu else ("fp32", "bf16")
    if isinstance(dtypes, str):
        dtypes = (dtypes,)
    dtypes = tuple(v.choice(d, "dtypes", list(_DTYPES)) for d in dtypes)
    if not dtypes:
        raise ValueError(f"dtypes must name at least one of {list(_DTYPES)}")
    if "tf32" in dtypes and not on_gpu:
        raise ValueError("dtypes: 'tf32' exists only on CUDA tensor cores; use 'fp32' on the CPU")
    start = time.perf_counter()
    spec_device = detect()
    if on_gpu:
        caches = {"l2": int(torch.cuda.get_device_properties(dev).L2_cache_size)}
    else:
        caches = cache_sizes_bytes() or dict(_FALLBACK_CACHES)
        caches = {k: s for k, s in caches.items() if k != "l1"}
    sizes = (MATMUL_SIZES_QUICK if quick else MATMUL_SIZES)["cuda" if on_gpu else "cpu"]
    n_sets = (1 if quick else 2) + (0 if on_gpu else 2)  # DRAM sets, plus two cache-level sets on the CPU
    n_steps = len(dtypes) * len(sizes) + n_sets * (2 if on_gpu else 3)
    bar = _progress(n_steps, "measuring ceilings", bool(progress) if progress is not None else not quick)
    try:
        bw_rows = _bandwidth_sweep(torch, dev, caches, quick, bar)
        mm_rows = _matmul_sweep(torch, dev, dtypes, quick, bar)
        one = torch.ones(1, device=dev)
        lat = _bench(torch.add, one, one, budget_s=0.1 if quick else 0.3)  # one element: never multi-threaded
    finally:
        bar.close()
    latency_s = max(lat.median_s, lat.launch_overhead_s or 0.0)
    spec_src = "estimate" if spec_device.estimated else "datasheet"
    compute = {}
    for dtype in dtypes:
        best = max((r for r in mm_rows if r["dtype"] == dtype), key=lambda r: r["flops_per_s"])
        compute[dtype] = Ceiling(
            dtype,
            "compute",
            best["flops_per_s"],
            spec=spec_device.peak_flops_per_s.get(dtype),
            measured=best["flops_per_s"],
            source=f"torch.matmul {best['n']}^3 {dtype}, {best['threads']} threads: best of n in {list(sizes)} "
            f"(fastest samples); spec: {spec_src}",
            estimated=spec_device.estimated,
        )
    memory = {}
    for row in bw_rows:
        level = _level_of(row["working_set_bytes"], caches, on_gpu)
        if level is None or (level in memory and memory[level].value >= row["bandwidth_bytes_per_s"]):
            continue
        spec = spec_device.bandwidth_bytes_per_s if level == "dram" else None
        how = "beyond the LLC" if level == "dram" else f"fits {level}; a lower bound (includes dispatch)"
        memory[level] = Ceiling(
            level,
            "memory",
            row["bandwidth_bytes_per_s"],
            spec=spec,
            measured=row["bandwidth_bytes_per_s"],
            source=f"{row['kernel']}, {row['threads']} threads, {_bytes_text(row['working_set_bytes'])} working set "
            f"({how}), fastest sample",
            estimated=spec_device.estimated and spec is not None,
        )
    memory = dict(sorted(memory.items(), key=lambda kv: kv[1].value))  # slowest (the roof) first
    notes = (
        f"torch {torch.__version__}; CPU kernels timed with {' and '.join(map(str, _thread_counts(torch, dev)))} "
        "threads, the best kept",
    )
    roof = Roofline(
        compute=compute,
        memory=memory,
        latency_s=latency_s,
        name=f"{spec_device.name if on_gpu else 'this CPU'} (measured)",
        default_dtype="fp32" if "fp32" in compute else None,
    )
    return CeilingReport(roof, tuple(bw_rows), tuple(mm_rows), lat, str(dev), time.perf_counter() - start, notes)


def measure_ceilings(device=None, dtypes=None, quick: bool = False) -> Roofline:
    """Measure this machine's roofline: bandwidth, matmul peak per dtype and dispatch latency, beside the spec.

    ``BW = bytes_moved / t_min`` (STREAM's best rate; copy: 2 bytes per byte copied, triad: 3);
    ``R_peak = 2 n^3 / t_min`` for the best n; ``L_lat`` = median of a one-element add. Each ceiling's
    ``fraction_of_spec = measured / spec``.

    Parameters
    ----------
    device : str or torch.device, optional
        "cpu", "cuda" or "cuda:N"; default CUDA when available, else the CPU.
    dtypes : sequence of str, optional
        Matmul dtypes among "fp64", "fp32", "tf32" (CUDA only), "fp16", "bf16"; default fp32 and bf16 on the CPU,
        fp32, tf32, bf16, fp16 on CUDA. On a CPU without native bf16/fp16 support the result is slow, and reported.
    quick : bool
        Fewer and smaller sets (<= 15 s on a 2-core CPU) for notebooks.

    Returns
    -------
    Roofline
        Compute ceilings per dtype, memory ceilings ("dram", plus cache levels on the CPU; slowest first),
        ``latency_s``; use :func:`measure` for the raw sweeps.

    References
    ----------
    Williams, Waterman & Patterson, CACM 52(4), 2009; McCalpin, STREAM benchmark (copy/triad byte counting);
    LBNL Empirical Roofline Toolkit.

    Examples
    --------
    >>> roof = measure_ceilings(quick=True)  # doctest: +SKIP
    >>> roof.bandwidth_bytes_per_s("dram") > 1e9  # doctest: +SKIP
    True
    """
    return measure(device=device, dtypes=dtypes, quick=quick).roofline


def _plot(roof: Roofline, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    intensity = np.logspace(-3, 4, 200)
    fig, ax = plt.subplots(figsize=(6, 4))
    for level, mem in roof.memory.items():
        for dtype in roof.compute:
            ax.loglog(intensity, roof.attainable(intensity, dtype, level), label=f"{dtype} / {level}")
            if mem.value != min(m.value for m in roof.memory.values()):
                break
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("attainable (FLOP/s)")
    ax.set_title(roof.name)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cli(args: argparse.Namespace) -> int:
    report = measure(device=args.device, quick=args.quick, progress=True)
    print(report.to_text())
    if args.plot:
        try:
            _plot(report.roofline, args.plot)
            print(f"saved {args.plot}")
        except ImportError:
            print("matplotlib is not installed: no plot (pip install matplotlib)")
    return 0


def add_cli(subparsers) -> None:
    """Register ``efflab roofline``: measure this machine, print ceilings beside the spec, optionally plot."""
    p = subparsers.add_parser("roofline", help="measure this machine's roofline and compare it with the spec")
    p.add_argument("--quick", action="store_true", help="fewer, smaller sweeps (<= 15 s on a laptop CPU)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--plot", metavar="PATH.png", default=None, help="save a log-log roofline plot (needs matplotlib)")
    p.set_defaults(func=_cli)
