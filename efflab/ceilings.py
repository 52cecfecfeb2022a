"""Measure this machine's roofline: memory bandwidth, matmul peaks per dtype and the dispatch-latency floor.

Like the LBNL Empirical Roofline Toolkit, the ceilings come from sweeps, not spec tables:

- **Bandwidth** from streaming kernels: ``dst.copy_(src)`` and ``np.copyto`` count 2 bytes moved per byte copied
  (read + write), the triad ``a = b + s*c`` 3 (STREAM's convention: the extra read a write-allocate cache performs on
  ``dst`` is *not* counted, so the hardware moves up to 1.5x more for a copy). Each kernel's rate is STREAM's "best
  rate", from its fastest sample. The "dram" ceiling comes from a **search**, not from the cache size the OS reports
  (a VM may report a host's 480 MiB L3, or one CCD's 32 MiB while its vCPUs reach more): per-array sets double from
  4x the reported LLC (STREAM's rule; lower when the memory budget does not allow it) until two consecutive sets'
  best rates agree within 10 %, inside a memory budget (:data:`DRAM_BUDGET_BYTES`, at most half of what the process
  may still allocate). The ceiling's ``source`` names the plateau, or says that it was not reached under the budget
  (the rate may then include cache hits). Smaller sets give cache-level ceilings ("l2", "l3", from the sizes
  ``/sys/devices/system/cpu/cpu0/cache`` reports), which are lower bounds because each call also pays ~1 µs of
  dispatch. L1 is not measured: a set that fits there is copied in less time than one dispatch.
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

:func:`ceiling_table` shows a roofline's ceilings, measured beside spec, as a :class:`~efflab.style.Table`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import time
from dataclasses import dataclass, field

import numpy as np

from efflab import _validate as v
from efflab._sysinfo import cache_sizes_bytes
from efflab._sysinfo import read_text as _read
from efflab.hardware import TF32_BF16_MIN_CAPABILITY, fp32_math
from efflab.opcost import torch_dtype
from efflab.roofline import Ceiling, Roofline
from efflab.style import Table, format_si, wrap_text
from efflab.timing import Measurement, benchmark, torch_threads

__all__ = [
    "CeilingReport",
    "cache_sizes_bytes",
    "ceiling_table",
    "dram_set_sizes",
    "machine_roofline",
    "measure",
    "measure_ceilings",
    "measure_exp_rate",
    "memory_headroom_bytes",
]

# Matmul sizes n (n x n @ n x n). CPU: the plateau starts near n=256-512 on a 2-core AVX-512 machine and larger sets
# only add time; CUDA: an H100 needs n >= 4096 to fill its 132 SMs (a 4096^2 output in 128 x 128 tiles is 1024 tiles,
# about 8 per SM; 2048^2 gives 2 per SM and leaves SMs idle in the last wave).
# Rounds of the latency-floor measurement; the fastest median is the floor.
LATENCY_ROUNDS = 3
MATMUL_SIZES = {"cpu": (256, 512, 1024, 2048), "cuda": (2048, 4096, 8192)}
MATMUL_SIZES_QUICK = {"cpu": (512, 1024), "cuda": (4096, 8192)}
# DRAM search. The reported LLC is not what a VM's vCPUs can reach: a Zen 4 VM reported one CCD's 32 MiB and copied
# 64 MiB arrays 1.6x faster than 128-256 MiB ones (a victim L3 keeps part of the set), while an Intel Xeon VM reports
# the host's 480 MiB, which would put sets of 4x the LLC at 2 GB per array. So the DRAM ceiling comes from a sweep:
# per-array sets double from DRAM_SET_PER_ARRAY_LLC x the LLC (McCalpin's STREAM rule: >= 4x the caches) -- or lower,
# when the memory budget leaves fewer than DRAM_MIN_SETS doublings -- until the rate stops falling.
DRAM_SET_PER_ARRAY_LLC = 4
# Two consecutive sets whose best rates agree within 10 % are on the plateau (run-to-run spread of a fastest-sample
# bandwidth on the 2-core VMs this was written on: 2-6 %). Quick mode stops after one such step, full mode after two.
DRAM_PLATEAU_TOLERANCE = 0.10
DRAM_MIN_SETS = 3
# Memory for the three arrays of the DRAM sweep together, at most; also at most half of what this process may still
# allocate (MemAvailable, the cgroup's memory.max, RLIMIT_AS: efflab grade gives each submission 4 GB of address
# space, and Colab's CPU runtime has 12 GB). 768 MiB is 256 MiB per array: 8x a 32 MiB L3.
DRAM_BUDGET_BYTES = {"quick": 768 << 20, "full": 1536 << 20}
# On CUDA the sets start at >= 256 MiB per array, so one copy outlasts a kernel launch (~5 µs) by > 10x even at 3 TB/s.
_GPU_MIN_SET_BYTES = 256 << 20
# On CUDA the budget is larger (the smallest GPU in the catalog, a T4, has 16 GB; the free device memory still caps it
# at half): with sets from 256 MiB per array, 3 GiB gives 256, 512 and 1024 MiB, enough sets to find a plateau; the
# CPU's 768 MiB gave the single 256 MiB set, so a GPU's DRAM figure was always "plateau not reached".
GPU_DRAM_BUDGET_BYTES = {"quick": 3 << 30, "full": 6 << 30}
# A matmul size is skipped when the best rate so far for its dtype predicts a call longer than this: a CPU without
# native bf16 (AMD Zen 1-3) runs a bf16 1024^3 matmul at ~1 GFLOP/s, 2.2 s a call, and the size adds nothing there.
MATMUL_MAX_CALL_S = {"quick": 0.25, "full": 1.0}
# Fallbacks when the OS does not report cache sizes: typical per-core L2 and a server LLC (used only to size sets).
_FALLBACK_CACHES = {"l2": 1 << 20, "l3": 32 << 20}
# The dtypes a matmul ceiling is measured in (int8 matmuls are not a roofline ceiling here).
_DTYPES = ("fp64", "fp32", "tf32", "fp16", "bf16")


@dataclass(frozen=True)
class CeilingReport:
    """A measured roofline with the raw sweeps behind it (for plotting) and how long it took."""

    roofline: Roofline
    # kernel, threads, working_set_bytes, bytes_moved, time_s (fastest sample), median_time_s, bandwidth_bytes_per_s,
    # array_bytes (one array), level ("l2", "l3", "dram", or None for a set before the DRAM plateau)
    bandwidth_sweep: tuple[dict, ...]
    matmul_sweep: tuple[dict, ...]  # dtype, n, threads, flops, time_s (fastest sample), median_time_s, flops_per_s
    latency: Measurement
    device: str
    elapsed_s: float
    notes: tuple[str, ...] = field(default=())
    # The DRAM search (see dram_set_sizes): sizes_bytes tried and best_bytes_per_s of each, plateau_reached,
    # plateau_sizes_bytes (the sets the "dram" ceiling comes from), budget_bytes, stream_rule_met, llc_bytes.
    dram_search: dict = field(default_factory=dict)

    def to_text(self) -> str:
        """The ceilings beside the spec, with the fraction achieved."""
        lines = [f"measured in {self.elapsed_s:.1f} s", str(ceiling_table(self.roofline, how=True))]
        lines += [f"note: {n}" for n in self.notes]
        return wrap_text("\n".join(lines))

    def __str__(self) -> str:
        return self.to_text()


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
    # Sweeps keep the best sample; the spread stays in Measurement.warnings and the raw data.
    return benchmark(fn, *args, min_run_s=budget_s, max_run_s=max(4 * budget_s, 0.5), **kwargs)


def memory_headroom_bytes(device=None) -> int | None:
    """Bytes this process may still allocate: the least of ``MemAvailable`` (``/proc/meminfo``), the cgroup v2
    ``memory.max - memory.current`` and ``RLIMIT_AS - VmSize``; on a CUDA device the free device memory.

    None when nothing is known (not Linux, no limits).

    Examples
    --------
    >>> headroom = memory_headroom_bytes()
    >>> headroom is None or headroom > 0
    True
    """
    if device is not None and getattr(device, "type", device) == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    known = []
    meminfo = _read("/proc/meminfo")
    found = re.search(r"^MemAvailable:\s*(\d+) kB", meminfo, re.MULTILINE)
    if found:
        known.append(int(found.group(1)) << 10)
    limit, used = _read("/sys/fs/cgroup/memory.max").strip(), _read("/sys/fs/cgroup/memory.current").strip()
    if limit.isdigit() and used.isdigit():
        known.append(int(limit) - int(used))
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        unlimited = soft == resource.RLIM_INFINITY
    except (ImportError, ValueError, OSError):  # not on this platform
        soft, unlimited = 0, True
    vm_size = re.search(r"^VmSize:\s*(\d+) kB", _read("/proc/self/status"), re.MULTILINE)
    if not unlimited and vm_size:
        known.append(soft - (int(vm_size.group(1)) << 10))
    return max(0, min(known)) if known else None


def dram_set_sizes(llc_bytes: int, budget_bytes: int, on_gpu: bool = False) -> list[int]:
    """Per-array working sets (bytes) the DRAM search may try, smallest first: doublings from ``start`` up to
    ``budget_bytes / 3`` (three arrays: a triad's ``a = b + s*c``).

    ``start = min(DRAM_SET_PER_ARRAY_LLC * llc, cap / 2**(DRAM_MIN_SETS - 1))`` -- STREAM's 4x rule when the budget
    allows it, lower when it does not, so the search still has ``DRAM_MIN_SETS`` sets to find a plateau in; on CUDA
    at least 256 MiB (an L2 figure there is exact, and small copies measure the launch, not the memory).

    Examples
    --------
    The quick budget (768 MiB, so 256 MiB per array): an 8 MiB L3 starts at STREAM's 4x; a 32 MiB L3 at 64 MiB, so
    that three sets fit (4x, 128 MiB, is among them); a reported 480 MiB L3 also at 64 MiB, below STREAM's rule.

    >>> [s >> 20 for s in dram_set_sizes(8 << 20, 768 << 20)]
    [32, 64, 128, 256]
    >>> [s >> 20 for s in dram_set_sizes(32 << 20, 768 << 20)]
    [64, 128, 256]
    >>> [s >> 20 for s in dram_set_sizes(480 << 20, 768 << 20)]
    [64, 128, 256]
    """
    llc = v.integer(llc_bytes, "llc_bytes", "bytes", low=1)
    budget = v.integer(budget_bytes, "budget_bytes", "bytes", low=3 << 12)
    cap = budget // 3
    start = min(DRAM_SET_PER_ARRAY_LLC * llc, cap >> (DRAM_MIN_SETS - 1))
    if on_gpu:
        start = min(max(start, _GPU_MIN_SET_BYTES), cap)
    start = max(start, 4096)
    sizes = []
    while start <= cap:
        sizes.append(start)
        start *= 2
    return sizes


def _bandwidth_rows(torch, dev, size, budget_s, level):
    """Time copy, triad (and numpy copy on the CPU) over arrays of ``size`` bytes each; one row per kernel/threads."""
    n = size // 4
    # Filled with ones, not zeros or torch.empty: every page is written, so none is a shared zero page.
    src, dst, c = (torch.full((n,), 1.0, device=dev) for _ in range(3))
    kernels = [("torch copy", 2 * size, dst.copy_, (src,), {})]
    kernels.append(("triad", 3 * size, torch.add, (src, c), {"alpha": 3.0, "out": dst}))
    if dev.type == "cpu":
        kernels.append(("numpy copy", 2 * size, np.copyto, (dst.numpy(), src.numpy()), {}))
    rows = []
    for name, moved, fn, args, kw in kernels:
        for threads in (1,) if name == "numpy copy" else _thread_counts(torch, dev):
            with torch_threads(threads):
                m = _bench(fn, *args, budget_s=budget_s, **kw)
            rows.append(
                {
                    "kernel": name,
                    "threads": threads,
                    "working_set_bytes": moved,
                    "bytes_moved": moved,
                    "time_s": m.min_s,  # STREAM's "best rate": the fastest sample
                    "median_time_s": m.median_s,
                    "bandwidth_bytes_per_s": moved / m.min_s,
                    "array_bytes": size,
                    "level": level,
                }
            )
    del src, dst, c
    return rows


def _bandwidth_sweep(torch, dev, caches, quick, bar):
    """Cache-level sets (CPU), then the DRAM search: returns (rows, search) where ``search`` says what was found."""
    on_gpu = dev.type == "cuda"
    llc = max(caches.values())
    headroom = memory_headroom_bytes(dev)
    budget = (GPU_DRAM_BUDGET_BYTES if on_gpu else DRAM_BUDGET_BYTES)["quick" if quick else "full"]
    if headroom is not None:
        budget = min(budget, headroom // 2)
    sizes = dram_set_sizes(llc, max(budget, 3 << 12), on_gpu)
    budget_s = 0.1 if quick else 0.3
    rows = []
    # Per array: half the per-core L2 (a copy then spans one L2, split across threads) and 1/8 of the LLC (both below
    # the first DRAM set).
    if not on_gpu:
        cache_sets = [("l2", caches.get("l2", 0) // 2), (max(caches, key=caches.get), min(llc // 8, sizes[0] // 2))]
        for level, size in cache_sets:
            if size >= 4096 and level in caches:
                rows += _bandwidth_rows(torch, dev, size, budget_s, level)
            bar.update()
    flat_needed = 1 if quick else 2
    best, flat, tried = [], 0, []
    for size in sizes:
        size_rows = _bandwidth_rows(torch, dev, size, budget_s, None)
        rows += size_rows
        tried.append(size)
        best.append(max(r["bandwidth_bytes_per_s"] for r in size_rows))
        bar.update()
        if len(best) >= 2:
            step = best[-1] / best[-2]
            flat = flat + 1 if abs(step - 1) <= DRAM_PLATEAU_TOLERANCE else 0
            if flat >= flat_needed:
                break
    reached = flat >= flat_needed
    plateau = tried[-(flat_needed + 1) :] if reached else tried[-1:]
    for r in rows:
        if r["level"] is None and r["array_bytes"] in plateau:
            r["level"] = "dram"
    search = {
        "sizes_bytes": tuple(tried),
        "best_bytes_per_s": tuple(best),
        "plateau_reached": reached,
        "plateau_sizes_bytes": tuple(plateau),
        "budget_bytes": budget,
        "stream_rule_met": plateau[0] >= DRAM_SET_PER_ARRAY_LLC * llc,
        "llc_bytes": llc,
    }
    return rows, search


def _dram_how(search: dict) -> str:
    """The DRAM ceiling's provenance in words: where the plateau was, or that it was not reached and why."""
    sizes = search["plateau_sizes_bytes"]
    span = " and ".join(_bytes_text(s) for s in sizes)
    if search["plateau_reached"]:
        how = f"plateau: rates within {DRAM_PLATEAU_TOLERANCE:.0%} at {span} per array"
    else:
        rates = search["best_bytes_per_s"]
        fell = f", rate still {1 - rates[-1] / rates[-2]:.0%} lower than at half the size" if len(rates) > 1 else ""
        how = (
            f"plateau NOT reached under the {_bytes_text(search['budget_bytes'])} memory budget: largest set "
            f"{span} per array{fell}; may include cache hits, so an upper bound on DRAM bandwidth"
        )
    if not search["stream_rule_met"]:
        how += f" (below STREAM's {DRAM_SET_PER_ARRAY_LLC}x the reported {_bytes_text(search['llc_bytes'])} LLC)"
    return how


def _older_gpu_note(capability) -> str:
    need = ".".join(map(str, TF32_BF16_MIN_CAPABILITY))
    return (
        f"tf32 and bf16 not measured: tensor-core TF32 and BF16 need compute capability {need} (Ampere) or later; "
        f"this GPU is {'.'.join(map(str, capability))}, where 'tf32' is plain fp32 and bf16 is emulated"
    )


def _matmul_sweep(torch, dev, dtypes, quick, bar):
    """Matmul rows per dtype, size and thread count, and the sizes skipped per dtype (see ``MATMUL_MAX_CALL_S``)."""
    sizes = (MATMUL_SIZES_QUICK if quick else MATMUL_SIZES)["cuda" if dev.type == "cuda" else "cpu"]
    max_call_s = MATMUL_MAX_CALL_S["quick" if quick else "full"]
    rows, skipped = [], {}
    for dtype in dtypes:
        tdt = torch_dtype(dtype, _DTYPES)
        # fp32 must be true FP32 and tf32 the tensor-core path (cuBLAS and cuDNN; the CPU's default is IEEE fp32).
        with fp32_math(tf32=dtype == "tf32"):
            for n in sizes:
                flops = 2.0 * n**3
                so_far = [r["flops_per_s"] for r in rows if r["dtype"] == dtype]
                if so_far and flops / max(so_far) > max_call_s:
                    skipped.setdefault(dtype, []).append((n, flops / max(so_far)))
                    bar.update()
                    continue
                a, b = torch.randn(n, n, device=dev).to(tdt), torch.randn(n, n, device=dev).to(tdt)
                for threads in _thread_counts(torch, dev):
                    with torch_threads(threads):
                        m = _bench(torch.matmul, a, b, budget_s=0.1 if quick else 0.3)
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
    return rows, skipped


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

    from efflab.hardware import spec_for

    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
    on_gpu = dev.type == "cuda"
    capability = tuple(torch.cuda.get_device_capability(dev)) if on_gpu else None
    ampere = capability is not None and capability >= TF32_BF16_MIN_CAPABILITY
    dtype_notes = []
    if dtypes is None:
        dtypes = ("fp32", "tf32", "bf16", "fp16") if ampere else ("fp32", "fp16") if on_gpu else ("fp32", "bf16")
        if on_gpu and not ampere:
            dtype_notes.append(_older_gpu_note(capability))
    if isinstance(dtypes, str):
        dtypes = (dtypes,)
    dtypes = tuple(v.choice(d, "dtypes", list(_DTYPES)) for d in dtypes)
    if not dtypes:
        raise ValueError(f"dtypes must name at least one of {list(_DTYPES)}")
    if "tf32" in dtypes and not on_gpu:
        raise ValueError("dtypes: 'tf32' exists only on CUDA tensor cores; use 'fp32' on the CPU")
    if on_gpu and not ampere and {"tf32", "bf16"} & set(dtypes):
        raise ValueError(f"dtypes: {_older_gpu_note(capability)}; use 'fp32' and 'fp16' there")
    start = time.perf_counter()
    spec_device, spec_why = spec_for(dev)  # the measured device's own entry; None: no spec (said in the notes)
    if on_gpu:
        caches = {"l2": int(torch.cuda.get_device_properties(dev).L2_cache_size)}
    else:
        caches = cache_sizes_bytes() or dict(_FALLBACK_CACHES)
        caches = {k: s for k, s in caches.items() if k != "l1"}
    sizes = (MATMUL_SIZES_QUICK if quick else MATMUL_SIZES)["cuda" if on_gpu else "cpu"]
    n_steps = len(dtypes) * len(sizes) + (0 if on_gpu else 2) + (2 if quick else 3)  # the DRAM search: >= 2 sets
    bar = _progress(n_steps, "measuring ceilings", bool(progress) if progress is not None else not quick)
    try:
        bw_rows, search = _bandwidth_sweep(torch, dev, caches, quick, bar)
        mm_rows, mm_skipped = _matmul_sweep(torch, dev, dtypes, quick, bar)
        one, out = torch.ones(1, device=dev), torch.empty(1, device=dev)
        # One element, never multi-threaded, into a preallocated output as the measured ops run: a floor that also
        # timed an allocation (~0.7 µs on a CPU) sat above the tiny add it bounds.
        # The fastest of three medians: a VM's dispatch time wanders by tens of percent between bursts, and a floor
        # taken in a slow burst would sit above the ops it bounds.
        lat = min(
            (_bench(torch.add, one, one, out=out, budget_s=0.04 if quick else 0.1) for _ in range(LATENCY_ROUNDS)),
            key=lambda m: m.median_s,
        )
    finally:
        bar.close()
    latency_s = max(lat.median_s, lat.launch_overhead_s or 0.0)
    spec_src = "none" if spec_device is None else "estimate" if spec_device.estimated else "datasheet"
    estimated = spec_device is not None and spec_device.estimated
    compute = {}
    for dtype in dtypes:
        best = max((r for r in mm_rows if r["dtype"] == dtype), key=lambda r: r["flops_per_s"])
        compute[dtype] = Ceiling(
            dtype,
            "compute",
            best["flops_per_s"],
            spec=None if spec_device is None else spec_device.peak_flops_per_s.get(dtype),
            measured=best["flops_per_s"],
            source=f"torch.matmul {best['n']}^3 {dtype}, {best['threads']} threads: best of n in "
            f"{sorted({r['n'] for r in mm_rows if r['dtype'] == dtype})} (fastest samples)"
            + "".join(f"; n={n} skipped (~{t:.2g} s a call)" for n, t in mm_skipped.get(dtype, ()))
            + f"; spec: {spec_src}",
            estimated=estimated,
        )
    memory: dict[str, Ceiling] = {}
    for row in bw_rows:
        level = row["level"]
        if level is None or (level in memory and memory[level].value >= row["bandwidth_bytes_per_s"]):
            continue
        spec = spec_device.bandwidth_bytes_per_s if level == "dram" and spec_device is not None else None
        how = _dram_how(search) if level == "dram" else f"fits the reported {level}: a lower bound (includes dispatch)"
        memory[level] = Ceiling(
            level,
            "memory",
            row["bandwidth_bytes_per_s"],
            spec=spec,
            measured=row["bandwidth_bytes_per_s"],
            source=f"{row['kernel']}, {row['threads']} threads, {_bytes_text(row['array_bytes'])} per array, "
            f"fastest sample; {how}",
            estimated=estimated and spec is not None,
        )
    notes = [
        f"spec: {spec_why}",
        *dtype_notes,
        f"torch {torch.__version__}; CPU kernels timed with {' and '.join(map(str, _thread_counts(torch, dev)))} "
        "threads, the best kept",
        "DRAM search, best rate per array size: "
        + ", ".join(
            f"{_bytes_text(s)} {r / 1e9:.3g} GB/s"
            for s, r in zip(search["sizes_bytes"], search["best_bytes_per_s"], strict=True)
        )
        + ("" if search["plateau_reached"] else " -- plateau not reached: " + _dram_how(search)),
    ]
    # A set that fits a cache the OS reports but runs no faster than DRAM did not stay in that cache (a VM that
    # reports its host's L3): it is no cache ceiling, and the reader is told so.
    dram_value = memory["dram"].value
    for level in [k for k, c in memory.items() if k != "dram" and c.value <= (1 + DRAM_PLATEAU_TOLERANCE) * dram_value]:
        dropped = memory.pop(level)
        notes.append(
            f"no {level} ceiling: its set ran at {dropped.value / 1e9:.3g} GB/s, within {DRAM_PLATEAU_TOLERANCE:.0%} "
            f"of DRAM ({dram_value / 1e9:.3g} GB/s), so it did not stay in the {level} the OS reports "
            f"({_bytes_text(caches[level])})"
        )
    memory = dict(sorted(memory.items(), key=lambda kv: kv[1].value))  # slowest (the roof) first
    roof = Roofline(
        compute=compute,
        memory=memory,
        latency_s=latency_s,
        name=f"{torch.cuda.get_device_name(dev) if on_gpu else 'this CPU'} (measured)",
        default_dtype="fp32" if "fp32" in compute else None,
    )
    elapsed_s = time.perf_counter() - start
    return CeilingReport(roof, tuple(bw_rows), tuple(mm_rows), lat, str(dev), elapsed_s, tuple(notes), search)


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


def machine_roofline(device="cpu", threads: int | None = None) -> Roofline:
    """This machine's measured roofline (``measure_ceilings(quick=True)``), measured once per process for each device
    and CPU thread count: every chapter, lab and scenario that asks again gets the same object.

    ``threads``: on the CPU, measure with torch pinned to that many threads, so that a job pinned the same way is
    judged against the peak and bandwidth of the cores it runs on (a one-thread matmul at 76 % of one core is not
    "38 % MFU" of a two-core machine). None: torch's current thread count. Ignored on CUDA, where "cuda" and the
    current "cuda:N" are the same device and share one measurement.

    Examples
    --------
    >>> roof = machine_roofline("cpu", threads=1)  # doctest: +SKIP
    >>> roof is machine_roofline("cpu", threads=1)  # doctest: +SKIP
    True
    """
    text = str(device)
    if text.startswith("cuda"):
        import torch

        index = torch.device(text).index
        text, threads = f"cuda:{torch.cuda.current_device() if index is None else index}", None
    elif text != "cpu":
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
    elif threads is not None:
        threads = v.integer(threads, "threads", "CPU threads", low=1)
    return _machine_roofline(text, threads)


@functools.lru_cache(maxsize=8)
def _machine_roofline(device: str, threads: int | None) -> Roofline:
    if threads is None:
        return measure_ceilings(device=device, quick=True)
    with torch_threads(threads):
        roof = measure_ceilings(device=device, quick=True)
    return dataclasses.replace(roof, name=f"this CPU, {threads} thread{'s' if threads > 1 else ''} (measured)")


# machine_roofline.cache_clear() forgets every measurement (tests; a notebook after the machine changed).
setattr(machine_roofline, "cache_clear", _machine_roofline.cache_clear)  # noqa: B010 (a function has no such slot for mypy)


# Elements of the exp ceiling's fp32 array: 64 Ki x 4 B = 256 KiB in and 256 KiB out, inside a typical 1-2 MiB L2,
# and long enough (~0.1 ms) that a ~3 µs dispatch costs under 5 %.
EXP_ELEMENTS = 1 << 16


def measure_exp_rate(device=None, budget_s: float = 0.05) -> Ceiling:
    """Measure the exponentials per second this machine computes: ``torch.exp`` on a cache-resident fp32 array.

    Softmax, GELU (erf) and SiLU spend most of their arithmetic in transcendental functions, which a CPU computes as
    a polynomial on its vector units and a GPU on its special-function units (``Device.exp_per_s``). The array is
    small enough to stay in the L2, so its time is the exponential's, not memory's; the faster of one and all threads
    is kept, as for every ceiling.

    Returns
    -------
    Ceiling
        ``name`` "exp", ``kind`` "compute", ``value`` in exp/s (one exponential counts as one operation), with the
        GPU's datasheet-derived rate as ``spec`` when the catalog knows it.

    Examples
    --------
    >>> c = measure_exp_rate(budget_s=0.01)
    >>> c.name, c.value > 1e6
    ('exp', True)
    """
    import torch

    budget = float(v.positive(budget_s, "budget_s", "s"))
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    n = EXP_ELEMENTS if dev.type == "cpu" else 1 << 24  # a GPU needs every SM busy: 16 Mi elements
    x = torch.rand(n, device=dev) - 0.5
    out = torch.empty_like(x)
    best_s, best_threads = math.inf, None
    for threads in _thread_counts(torch, dev):
        with torch_threads(threads):
            m = _bench(torch.exp, x, budget_s=budget, out=out)
        if m.min_s < best_s:
            best_s, best_threads = m.min_s, threads
    spec, how = None, f"torch.exp on {n} fp32 elements ({_bytes_text(4 * n)}), fastest of {best_threads} thread(s)"
    if dev.type == "cuda":
        from efflab.hardware import spec_for

        gpu = spec_for(dev)[0]  # this device's entry; none for an uncatalogued GPU or a MIG slice
        spec = None if gpu is None else gpu.exp_per_s
        how = f"torch.exp on {n} fp32 elements ({_bytes_text(4 * n)} each way: bounded by memory as well)"
    return Ceiling("exp", "compute", n / best_s, spec=spec, measured=n / best_s, source=how)


def ceiling_table(roofline: Roofline, *, how: bool = False) -> Table:
    """Every ceiling of a roofline with its measured value beside its spec (datasheet or estimate) and the ratio.

    Rows: compute ceilings per dtype, memory ceilings per level, the latency floor when known; the caption names the
    ridge point ``R_peak / BW`` of the default dtype over the slowest memory. ``how`` adds a column saying how each
    ceiling was measured (the one table the notebooks show and :meth:`CeilingReport.to_text` prints).

    Examples
    --------
    >>> from efflab.roofline import Ceiling
    >>> roof = Roofline({"fp32": Ceiling("fp32", "compute", 1e11, spec=2e11, measured=1e11, estimated=True)},
    ...                 {"dram": 2e10}, latency_s=1e-6, name="test")
    >>> print(ceiling_table(roof))
    test: ridge point 5 FLOP/B (fp32 over dram)
    ceiling        measured      spec                    measured / spec
    compute fp32   100 GFLOP/s   200 GFLOP/s (estimate)  50 %
    memory dram    -             20 GB/s (spec)          -
    latency floor  1 µs          -                       -
    """

    def row(c, unit):
        spec = "-" if c.spec is None else f"{format_si(c.spec, unit)} ({'estimate' if c.estimated else 'spec'})"
        frac = "-" if c.fraction_of_spec is None else f"{100 * c.fraction_of_spec:.0f} %"
        measured = "-" if c.measured is None else format_si(c.measured, unit)
        return (f"{c.kind} {c.name}", measured, spec, frac) + ((c.source or "-",) if how else ())

    rows = [row(c, "FLOP/s") for c in roofline.compute.values()]
    rows += [row(c, "B/s") for c in roofline.memory.values()]
    if roofline.latency_s is not None:
        floor = ("latency floor", format_si(roofline.latency_s, "s"), "-", "-")
        rows.append(floor + (("median of a 1-element add into a preallocated output",) if how else ()))
    slowest = min(roofline.memory.values(), key=lambda c: c.value).name
    caption = (
        f"{roofline.name}: ridge point {roofline.ridge_point:.3g} FLOP/B ({roofline.default_dtype} over {slowest})"
    )
    header = ("ceiling", "measured", "spec", "measured / spec") + (("how",) if how else ())
    return Table(header, tuple(rows), caption=caption)
