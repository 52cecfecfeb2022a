"""The two movement levers of the Energy-Movement invariant, measured: kernel fusion and low-precision weights.

**Fusion** (fewer trips to memory). The tanh approximation of GELU (Hendrycks & Gimpel, 2016),

    ``gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``,

written as separate tensor operations (as GPT-2 and nanoGPT's ``NewGELU`` did) launches 8 aten ops, and each one
writes its result to memory for the next to read back: :func:`gelu_tanh_unfused`. ``torch.nn.functional.gelu(x,
approximate="tanh")`` computes the same function in **one** aten kernel that reads ``x`` once and writes ``y`` once,
on the CPU and on CUDA alike: :func:`gelu_tanh_fused`. Compulsory bytes (from :func:`efflab.profile.profile_ops`):
18 tensor-sized transfers unfused (8 outputs written, 10 inputs read) against 2 fused, a 9x cut at the same FLOPs.
``torch.compile`` fuses the unfused chain the same way (Inductor emits one loop), but compiling costs 10-40 s on a
2-core CPU, so :func:`compare_fusion` times it only when asked (``compile=True``).

**Quantization** (fewer bytes per trip). A batch-1 matrix-vector product reads every weight once and does 2 FLOPs
with it: memory-bound on every machine. Storing the weights in int8 instead of fp32 moves 4x fewer bytes;
:func:`compare_weight_dtypes` times both with ``torch._weight_int8pack_mm`` (weight-only int8 with per-row scales, the
kernel gpt-fast uses), reporting it as skipped where this torch build lacks it for the device.

torch is imported lazily, inside the functions. The energy chapter (``chapters/04_energy``) uses both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from efflab import _validate as v
from efflab.style import wrap_text

__all__ = [
    "GELU_CUBIC_COEFFICIENT",
    "ChainVariant",
    "FusionComparison",
    "MatvecVariant",
    "compare_fusion",
    "compare_weight_dtypes",
    "gelu_tanh_fused",
    "gelu_tanh_unfused",
    "unfused_gelu_bytes",
]

# Hendrycks & Gimpel, "Gaussian Error Linear Units (GELUs)", arXiv:1606.08415, eq. for the tanh approximation.
GELU_CUBIC_COEFFICIENT = 0.044715
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
# Tensor-sized reads and writes of the unfused chain, op by op (read, written), in the order gelu_tanh_unfused runs
# them (Python evaluates 0.5 * x before the bracket): pow, mul (0.044715*), add (x + .), mul (sqrt(2/pi)*), mul (0.5*x),
# tanh, add (1 + .), mul (. * .).
_UNFUSED_TRANSFERS = ((1, 1), (1, 1), (2, 1), (1, 1), (1, 1), (1, 1), (1, 1), (2, 1))


def gelu_tanh_unfused(x):
    """GELU (tanh approximation) as 8 separate aten ops, each writing an intermediate tensor to memory.

    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    Examples
    --------
    >>> import torch
    >>> x = torch.linspace(-3, 3, 7)
    >>> torch.allclose(gelu_tanh_unfused(x), gelu_tanh_fused(x), atol=1e-6)
    True
    """
    import torch

    inner = _SQRT_2_OVER_PI * (x + GELU_CUBIC_COEFFICIENT * torch.pow(x, 3.0))
    return 0.5 * x * (1.0 + torch.tanh(inner))


def gelu_tanh_fused(x):
    """GELU (tanh approximation) as one aten kernel: ``torch.nn.functional.gelu(x, approximate="tanh")``.

    Examples
    --------
    >>> import torch
    >>> round(float(gelu_tanh_fused(torch.tensor(1.0))), 4)
    0.8412
    """
    import torch.nn.functional as F

    return F.gelu(x, approximate="tanh")


def unfused_gelu_bytes(numel: int, dtype_bytes: int = 4) -> tuple[int, int]:
    """Compulsory bytes of the unfused and the fused GELU chain over ``numel`` elements (hand count).

    ``unfused = sum_ops (reads + writes) * numel * b = 18 numel b``; ``fused = (1 read + 1 write) numel b = 2 numel b``.

    Parameters
    ----------
    numel : int
        Elements of ``x`` (>= 1).
    dtype_bytes : int
        Bytes per element (4 for fp32).

    Returns
    -------
    (unfused_bytes, fused_bytes) : tuple of int

    Examples
    --------
    >>> unfused_gelu_bytes(1_000_000)   # 72 MB against 8 MB: 9x fewer bytes fused
    (72000000, 8000000)
    """
    n = v.integer(numel, "numel", "elements", low=1)
    b = v.integer(dtype_bytes, "dtype_bytes", "bytes per element", low=1)
    return sum(r + w for r, w in _UNFUSED_TRANSFERS) * n * b, 2 * n * b


@dataclass(frozen=True)
class ChainVariant:
    """One way of computing the chain: aten kernels launched, compulsory bytes and FLOPs (profiled), measured time."""

    name: str
    kernels: int  # aten ops that moved data (from profile_ops; None-like 0 when not profiled)
    flops: float  # FLOP, from profile_ops
    bytes_moved: float  # compulsory bytes summed over the ops, from profile_ops
    time_s: float  # median per call, efflab.timing.benchmark
    note: str = ""
    relative_iqr: float = 0.0  # run-to-run spread of time_s: IQR / median

    @property
    def effective_bandwidth_bytes_per_s(self) -> float:
        """Compulsory bytes per second actually achieved (bytes/s)."""
        return self.bytes_moved / self.time_s


@dataclass(frozen=True)
class FusionComparison:
    """Unfused vs fused GELU chain over ``numel`` elements on ``device``; ``compiled`` only when it was timed."""

    numel: int
    dtype: str
    device: str
    unfused: ChainVariant
    fused: ChainVariant
    compiled: ChainVariant | None = None
    compile_time_s: float | None = None

    @property
    def bytes_ratio(self) -> float:
        """Compulsory bytes unfused / fused."""
        return self.unfused.bytes_moved / self.fused.bytes_moved

    @property
    def speedup(self) -> float:
        """Measured time unfused / fused."""
        return self.unfused.time_s / self.fused.time_s

    def energy(self, memory: str = "dram"):
        """Modelled energy ``(unfused, fused)`` of one call (:func:`efflab.energy.energy_estimate`, fp32).

        Both are charged the unfused FLOP count (same arithmetic); only the bytes differ.
        """
        from efflab.energy import energy_estimate

        flops = self.unfused.flops
        return tuple(energy_estimate(flops, r.bytes_moved, "fp32", memory) for r in (self.unfused, self.fused))

    def claims(self, roofline, caches: dict | None = None) -> tuple:
        """The chapter's expectations, judged on this comparison (:mod:`efflab.claims`).

        1. Fusing makes the chain faster: ``speedup > 1 + spread`` (spread: the larger relative IQR of the two times).
        2. Its time follows its bytes: ``0.5 <= speedup / bytes_ratio <= 2``.
        3. Both variants are memory-bound: each reaches >= half the measured DRAM bandwidth of ``roofline``.

        ``caches``: cache sizes by level for the "fits a cache" diagnosis (default: what the OS reports).

        Examples
        --------
        >>> from efflab.roofline import Roofline
        >>> roof = Roofline(compute={"fp32": 1e11}, memory={"dram": 4e10}, latency_s=1e-6)
        >>> c = FusionComparison(1 << 22, "fp32", "cpu", ChainVariant("unfused", 8, 5e7, 3e8, 0.03),
        ...                      ChainVariant("fused", 1, 5e7, 3.4e7, 0.0034))
        >>> verdicts = c.claims(roof, caches={"l2": 1 << 20, "l3": 8 << 20})
        >>> [v.held for v in verdicts]
        [True, True, False]
        >>> print(verdicts[2])
        not here: both variants are memory-bound (each at >= 50% of the measured DRAM bandwidth) (unfused
          25%, fused 25% of 40 GB/s)
          why: the fused kernel itself reaches only 25% of the 40 GB/s DRAM roof: more than its traffic
               sets its time (each element costs a tanh, tens of instructions)
        """
        from efflab.claims import check, fits_cache, overhead_dominated, reason, within_noise

        unfused, fused = self.unfused, self.fused
        spread = max(unfused.relative_iqr, fused.relative_iqr)
        dram = roofline.bandwidth_bytes_per_s("dram" if "dram" in roofline.memory else None)
        latency_s = roofline.latency_s or 1e-6
        bw = {v.name: v.effective_bandwidth_bytes_per_s for v in (unfused, fused)}
        share = {name: rate / dram for name, rate in bw.items()}
        per_op = reason(
            share[unfused.name] < 0.5 * share[fused.name],
            f"the unfused chain moves its bytes at {bw[unfused.name] / 1e9:.3g} GB/s, the fused kernel at "
            f"{bw[fused.name] / 1e9:.3g} GB/s: beyond its traffic, each of its {unfused.kernels} ops pays to allocate "
            "and first-touch a new tensor",
        )
        compute_heavy = reason(
            share[fused.name] < 0.5,
            f"the fused kernel itself reaches only {share[fused.name]:.0%} of the {dram / 1e9:.3g} GB/s DRAM roof: "
            "more than its traffic sets its time (each element costs a tanh, tens of instructions)",
        )
        faster = check(
            "fusing the chain makes it faster",
            self.speedup > 1 + spread,
            f"time unfused/fused {self.speedup:.3g}x, run-to-run spread {spread:.0%}",
            [within_noise(self.speedup, spread), overhead_dominated(fused.time_s, latency_s)],
        )
        follows = check(
            "its time follows its bytes (time ratio within 2x of the byte ratio)",
            0.5 <= self.speedup / self.bytes_ratio <= 2,
            f"time {self.speedup:.3g}x for {self.bytes_ratio:.3g}x the bytes",
            [per_op if self.speedup > self.bytes_ratio else compute_heavy, overhead_dominated(fused.time_s, latency_s)],
        )
        unfused_slow = reason(
            share[unfused.name] < 0.5,
            f"the unfused chain reaches only {share[unfused.name]:.0%} of the {dram / 1e9:.3g} GB/s DRAM roof: "
            f"beyond its traffic, each of its {unfused.kernels} ops allocates and first-touches a new tensor",
        )
        memory_bound = check(
            "both variants are memory-bound (each at >= 50% of the measured DRAM bandwidth)",
            min(share.values()) >= 0.5,
            f"unfused {share[unfused.name]:.0%}, fused {share[fused.name]:.0%} of {dram / 1e9:.3g} GB/s",
            [fits_cache(fused.bytes_moved, caches), compute_heavy, per_op, unfused_slow],
        )
        return faster, follows, memory_bound

    def to_text(self) -> str:
        """A small table: kernels, bytes, time and effective bandwidth per variant."""
        from efflab.timing import format_time_s

        rows = [self.unfused, self.fused] + ([self.compiled] if self.compiled else [])
        lines = [f"GELU (tanh) over {self.numel:,} {self.dtype} elements on {self.device}"]
        for r in rows:
            kernels = f"{r.kernels} kernels" if r.kernels else "(unprofiled)"
            lines.append(
                f"  {r.name:<22}{kernels:>12} {r.bytes_moved / 1e6:7.1f} MB {format_time_s(r.time_s):>9} "
                f"{r.effective_bandwidth_bytes_per_s / 1e9:6.1f} GB/s" + (f"  ({r.note})" if r.note else "")
            )
        lines.append(f"  bytes unfused/fused = {self.bytes_ratio:.3g}x; time unfused/fused = {self.speedup:.3g}x")
        if self.compile_time_s is not None:
            lines.append(f"  torch.compile took {format_time_s(self.compile_time_s)} to compile (paid once)")
        return wrap_text("\n".join(lines))

    def __str__(self) -> str:
        return self.to_text()


def _time(fn, *args, min_run_s: float):
    """``benchmark`` median, with its spread kept as a note (a shared CPU is often noisy)."""
    from efflab.timing import benchmark

    m = benchmark(fn, *args, min_run_s=min_run_s, max_run_s=max(2.0, 4 * min_run_s))
    return m.median_s, (f"IQR/median {m.relative_iqr:.0%}" if m.has_warnings else ""), m.relative_iqr


def _profiled(name, fn, x, roofline, min_run_s):
    from efflab.profile import profile_ops

    prof = profile_ops(fn, x, roofline=roofline)
    time_s, note, spread = _time(fn, x, min_run_s=min_run_s)
    moving = sum(1 for r in prof.records if r.bytes_moved > 0)
    return ChainVariant(name, moving, prof.total_flops, prof.total_bytes, time_s, note, spread)


def compare_fusion(
    numel: int = 1 << 22, *, device=None, seed: int = 0, roofline=None, min_run_s: float = 0.2, compile: bool = False
) -> FusionComparison:
    """Profile and time the GELU chain unfused (8 kernels) and fused (1 kernel), optionally also ``torch.compile``-d.

    Bytes are :func:`efflab.profile.profile_ops`' compulsory bytes (inputs read + outputs written, per op); times are
    :func:`efflab.timing.benchmark` medians. Fusion keeps the arithmetic and cuts the bytes ``18 N b -> 2 N b``.
    (The profile counts the fused ``gelu`` as the ops of its formula, ``GELU_TANH_FLOPS_PER_ELEMENT`` = 8 per element,
    and the unfused chain as 1 per element per op, 8 in all: the same arithmetic, so the FLOPs agree.)

    Parameters
    ----------
    numel : int
        Elements of the fp32 input (>= 1); the default 4M (16 MiB) is larger than most last-level caches.
    device : str, optional
        "cpu" or "cuda"; default CUDA when available.
    seed : int
        Seed for the input.
    roofline : Roofline, optional
        Passed to ``profile_ops`` for the per-op regime (default: measured there, once per process).
    min_run_s : float
        Measured time per variant (s, > 0).
    compile : bool
        Also time ``torch.compile(gelu_tanh_unfused)``; its compile time is reported separately.

    Returns
    -------
    FusionComparison

    Examples
    --------
    >>> from efflab.roofline import Roofline
    >>> roof = Roofline(compute={"fp32": 1e11}, memory={"dram": 2e10}, latency_s=1e-6)
    >>> c = compare_fusion(4096, roofline=roof, min_run_s=0.01, device="cpu")
    >>> c.unfused.kernels, c.fused.kernels, c.bytes_ratio
    (8, 1, 9.0)
    """
    import time

    import torch

    from efflab.profile import dtype_name

    n = v.integer(numel, "numel", "elements", low=1)
    min_run_s = float(v.positive(min_run_s, "min_run_s", "s"))
    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    x = torch.randn(n, generator=torch.Generator().manual_seed(seed)).to(dev)
    unfused = _profiled("unfused (8 aten ops)", gelu_tanh_unfused, x, roofline, min_run_s)
    fused = _profiled("fused (F.gelu, 1 op)", gelu_tanh_fused, x, roofline, min_run_s)
    compiled, compile_s = None, None
    if compile:
        fn = torch.compile(gelu_tanh_unfused)
        t0 = time.perf_counter()
        fn(x)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        compile_s = time.perf_counter() - t0
        time_s, note, spread = _time(fn, x, min_run_s=min_run_s)
        # Inductor's kernels are not aten ops, so profile_ops cannot see them; a single fused loop reads x and writes y.
        compiled = ChainVariant(
            "torch.compile (Inductor)",
            0,
            fused.flops,
            fused.bytes_moved,
            time_s,
            note or "bytes: 1 read + 1 write",
            spread,
        )
    return FusionComparison(n, dtype_name(x.dtype), str(dev), unfused, fused, compiled, compile_s)


@dataclass(frozen=True)
class MatvecVariant:
    """One weight storage format of a batch-1 ``y = W x``: weight bytes, compulsory bytes, time (None if skipped)."""

    name: str
    weight_dtype: str
    weight_bytes: int  # bytes of the stored weight (and its scales)
    bytes_moved: float  # compulsory bytes of the call, from profile_ops
    time_s: float | None  # benchmark median (s); None when the kernel is missing here
    skipped: str = ""  # why it was not measured
    relative_error: float | None = None  # max |y - y_fp32| / max |y_fp32|
    note: str = ""  # measurement spread, when high
    relative_iqr: float = 0.0  # run-to-run spread of time_s: IQR / median

    @property
    def effective_bandwidth_bytes_per_s(self) -> float | None:
        """Compulsory bytes per second achieved (bytes/s); None when not measured."""
        return None if self.time_s is None else self.bytes_moved / self.time_s


def compare_weight_dtypes(
    out_features: int = 8192, in_features: int = 8192, *, device=None, seed: int = 0, roofline=None, min_run_s=0.2
) -> tuple[MatvecVariant, ...]:
    """Time a batch-1 ``y = W x`` with fp32 weights and with int8 weights (per-row scales), same matrix.

    The int8 matrix ``Q`` is drawn first and the fp32 weights are its dequantized values ``W = s[:, None] * Q``, so both
    kernels compute the same product; ``weight_bytes`` = ``out*in*4`` (fp32) or ``out*in + out*2`` (int8 + bf16
    scales). The int8 kernel is ``torch._weight_int8pack_mm`` with bf16 activations (it dequantizes in registers).

    Parameters
    ----------
    out_features, in_features : int
        Weight shape (>= 1); the default fp32 matrix (256 MiB) is far larger than a CPU's last-level cache.
    device : str, optional
        "cpu" or "cuda"; default CUDA when available.
    seed : int
        Seed for the weights and the input.
    roofline : Roofline, optional
        Passed to ``profile_ops``.
    min_run_s : float
        Measured time per variant (s, > 0).

    Returns
    -------
    tuple of MatvecVariant
        fp32 first, then int8 (``time_s`` None and ``skipped`` set when the kernel is unavailable).

    Examples
    --------
    >>> from efflab.roofline import Roofline
    >>> roof = Roofline(compute={"fp32": 1e11}, memory={"dram": 2e10}, latency_s=1e-6)
    >>> fp32, int8 = compare_weight_dtypes(64, 128, roofline=roof, min_run_s=0.01, device="cpu")
    >>> fp32.weight_bytes, int8.weight_bytes
    (32768, 8320)
    """
    import torch
    import torch.nn.functional as F

    from efflab.profile import profile_ops

    n_out = v.integer(out_features, "out_features", "rows", low=1)
    n_in = v.integer(in_features, "in_features", "columns", low=1)
    min_run_s = float(v.positive(min_run_s, "min_run_s", "s"))
    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    gen = torch.Generator().manual_seed(seed)
    q = torch.randint(-127, 128, (n_out, n_in), dtype=torch.int8, generator=gen).to(dev)
    # Per-row scales so that |W| <= ~0.01-0.1, a typical trained-weight range.
    scales = (torch.rand(n_out, generator=gen) * 1e-3 + 1e-4).to(dev)
    w = q.float() * scales[:, None]
    x = torch.randn(1, n_in, generator=gen).to(dev)
    reference = F.linear(x, w)
    prof = profile_ops(F.linear, x, w, roofline=roofline)
    time_s, note, spread = _time(F.linear, x, w, min_run_s=min_run_s)
    variants = [
        MatvecVariant(
            "fp32 weights", "fp32", n_out * n_in * 4, prof.total_bytes, time_s, note=note, relative_iqr=spread
        )
    ]
    xb, sb = x.bfloat16(), scales.bfloat16()
    int8_bytes = n_out * n_in + n_out * 2
    try:
        out = torch._weight_int8pack_mm(xb, q, sb)
        err = float((out.float() - reference).abs().max() / reference.abs().max())
        prof8 = profile_ops(torch._weight_int8pack_mm, xb, q, sb, roofline=roofline)
        time8_s, note8, spread8 = _time(torch._weight_int8pack_mm, xb, q, sb, min_run_s=min_run_s)
        variants.append(
            MatvecVariant("int8 weights", "int8", int8_bytes, prof8.total_bytes, time8_s, "", err, note8, spread8)
        )
    except (AttributeError, RuntimeError, NotImplementedError) as exc:
        reason = f"torch._weight_int8pack_mm unavailable on {dev.type} in torch {torch.__version__}: {exc}"
        variants.append(MatvecVariant("int8 weights", "int8", int8_bytes, float(int8_bytes), None, reason))
    return tuple(variants)


# The int8 matvec may beat its byte ratio a little (the fp32 kernel's own overheads) before it needs another cause.
BYTE_RATIO_SLACK = 1.15


def weight_dtype_claims(variants, device: str = "cpu", caches: dict | None = None, cpu_flags=None) -> tuple:
    """The chapter's expectation for :func:`compare_weight_dtypes`, judged on its result (:mod:`efflab.claims`):
    int8 weights make the batch-1 matvec faster, by up to the byte ratio (``1 + spread < speedup <= 1.15 x ratio``).

    Diagnoses when it does not hold: beyond the ratio, the int8 weights fit a cache the fp32 ones do not (or both
    fit); no faster, the effect is within the noise, or (``device`` "cpu") the CPU has no native bf16 and converts
    every weight in software. Empty when the int8 kernel was not measured. ``caches`` and ``cpu_flags`` default to
    this machine's.

    Examples
    --------
    >>> fp32 = MatvecVariant("fp32 weights", "fp32", 256 << 20, 2.7e8, 0.0127)
    >>> int8 = MatvecVariant("int8 weights", "int8", 64 << 20, 6.7e7, 0.00272)
    >>> (v,) = weight_dtype_claims((fp32, int8), caches={"l3": 96 << 20}, cpu_flags=("avx512f", "amx_bf16"))
    >>> print(v)
    not here: int8 weights make the matvec faster, by up to the 4.03x byte ratio (4.67x faster)
      why: the 64 MiB of int8 weights fit in the l3 the OS reports (96 MiB), the 256 MiB of fp32 ones do
           not: the int8 layer reads from cache, the fp32 layer from DRAM
    """
    from efflab.claims import bytes_text, cache_level, check, reason, within_noise

    fp32, int8 = variants[0], variants[1]
    if fp32.time_s is None or int8.time_s is None:
        return ()
    if cpu_flags is None:
        from efflab._sysinfo import read_text as _read
        from efflab.hardware import parse_cpuinfo

        cpu_flags = parse_cpuinfo(_read("/proc/cpuinfo"))["flags"]
    speedup, ratio = fp32.time_s / int8.time_s, fp32.bytes_moved / int8.bytes_moved
    spread = max(fp32.relative_iqr, int8.relative_iqr)
    int8_in, fp32_in = cache_level(int8.weight_bytes, caches), cache_level(fp32.weight_bytes, caches)
    size = {v.name: bytes_text(v.weight_bytes) for v in (fp32, int8)}
    where = "" if int8_in is None else f"the {int8_in[0]} the OS reports ({bytes_text(int8_in[1])})"
    reasons = [
        reason(
            int8_in is not None and fp32_in is not None,
            f"the {size[int8.name]} of int8 weights fit in {where}, and so do the {size[fp32.name]} of fp32 ones: "
            "neither is streamed from DRAM",
        ),
        reason(
            int8_in is not None and fp32_in is None,
            f"the {size[int8.name]} of int8 weights fit in {where}, the {size[fp32.name]} of fp32 ones do not: the "
            "int8 layer reads from cache, the fp32 layer from DRAM",
        ),
        within_noise(speedup, spread),
        reason(
            speedup <= 1 + spread and device == "cpu" and not {"avx512_bf16", "amx_bf16"} & set(cpu_flags),
            "this CPU has no native bf16 (no AVX512_BF16 or AMX): the kernel converts every weight in software, "
            "which costs more than the bytes it saves",
        ),
    ]
    verdict = check(
        f"int8 weights make the matvec faster, by up to the {ratio:.3g}x byte ratio",
        1 + spread < speedup <= BYTE_RATIO_SLACK * ratio,
        f"{speedup:.3g}x faster",
        reasons,
    )
    return (verdict,)
