"""Hardware catalog: datasheet ceilings of common accelerators, and an estimate for the machine you are on.

Every figure is a DENSE peak (NVIDIA datasheets print sparse Tensor Core figures, 2x the dense ones, with an asterisk;
those are never stored here), bandwidth is decimal (3.35 TB/s = 3.35e12 bytes/s), and every figure carries its source
in ``Device.sources``. ``detect()`` returns the catalog entry of a known GPU, or a CPU estimate from core count, clock
and vector width that is marked ``estimated``: measure the real ceilings with ``efflab.measure_ceilings``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType

from efflab import _validate as v
from efflab._sysinfo import last_level_cache_bytes
from efflab._sysinfo import read_text as _read
from efflab.opcost import DTYPE_BYTES
from efflab.roofline import Roofline

__all__ = [
    "ALL_GPUS",
    "CATALOG",
    "Device",
    "as_roofline",
    "cpu_bandwidth_bytes_per_s",
    "cpu_device",
    "cpu_peak_flops_per_s",
    "cuda_capability",
    "detect",
    "dtype_note",
    "fp32_lanes_from_flags",
    "fp32_math",
    "get_device",
    "is_mig_slice",
    "MORE_GPUS",
    "match_gpu_name",
    "parse_cpuinfo",
    "spec_for",
]

_FIELDS = ("bandwidth_bytes_per_s", "tdp_w", "l2_bytes", "year")


def _peaks(mapping: Mapping, name: str) -> Mapping[str, float]:
    """A read-only dtype -> FLOP/s mapping, each dtype known and each peak > 0."""
    out = {}
    for dtype, peak in mapping.items():
        dtype = v.choice(dtype, f"{name} dtype", list(DTYPE_BYTES))
        out[dtype] = float(v.positive(peak, f"{name}[{dtype!r}]", "FLOP/s"))
    return MappingProxyType(out)


@dataclass(frozen=True)
class Device:
    """One machine's datasheet (or estimated) ceilings, with the source of each figure.

    ``sources`` maps a figure ("peak_flops_per_s.bf16", "bandwidth_bytes_per_s", "tdp_w", "l2_bytes", "year") to
    its citation. ``ridge(dtype) = peak_flops_per_s[dtype] / bandwidth_bytes_per_s`` in FLOP/byte.

    Examples
    --------
    >>> round(get_device("h100").ridge("bf16"), 1)
    295.3
    """

    name: str
    kind: str
    peak_flops_per_s: Mapping[str, float]
    bandwidth_bytes_per_s: float
    tdp_w: float | None = None
    l2_bytes: int | None = None
    year: int | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    estimated: bool = False
    # Peaks of the vector (non-Tensor-Core) units, per dtype (FLOP/s): elementwise ops, norms and softmax run there.
    vector_flops_per_s: Mapping[str, float] = field(default_factory=dict)
    # Exponentials per second of the special-function units (exp/s): the exp of a softmax or a GELU runs there.
    exp_per_s: float | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise TypeError(f"name must be a non-empty string; got {self.name!r}")
        object.__setattr__(self, "kind", v.choice(self.kind, "kind", ("gpu", "cpu")))
        if not isinstance(self.peak_flops_per_s, Mapping) or not self.peak_flops_per_s:
            raise TypeError("peak_flops_per_s must be a non-empty mapping dtype -> FLOP/s")
        object.__setattr__(self, "peak_flops_per_s", _peaks(self.peak_flops_per_s, "peak_flops_per_s"))
        bw = v.positive(self.bandwidth_bytes_per_s, "bandwidth_bytes_per_s", "bytes/s")
        object.__setattr__(self, "bandwidth_bytes_per_s", float(bw))
        if self.tdp_w is not None:
            object.__setattr__(self, "tdp_w", float(v.positive(self.tdp_w, "tdp_w", "W")))
        if self.l2_bytes is not None:
            object.__setattr__(self, "l2_bytes", v.integer(self.l2_bytes, "l2_bytes", "bytes", low=1))
        if self.year is not None:
            object.__setattr__(self, "year", v.integer(self.year, "year", low=1940, high=2100))
        if not isinstance(self.sources, Mapping) or not all(
            isinstance(k, str) and isinstance(s, str) for k, s in self.sources.items()
        ):
            raise TypeError("sources must be a mapping of figure name -> citation string")
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        if not isinstance(self.estimated, bool):
            raise TypeError(f"estimated must be True or False; got {self.estimated!r}")
        if not isinstance(self.vector_flops_per_s, Mapping):
            raise TypeError("vector_flops_per_s must be a mapping dtype -> FLOP/s")
        object.__setattr__(self, "vector_flops_per_s", _peaks(self.vector_flops_per_s, "vector_flops_per_s"))
        if self.exp_per_s is not None:
            object.__setattr__(self, "exp_per_s", float(v.positive(self.exp_per_s, "exp_per_s", "exp/s")))

    def ridge(self, dtype: str) -> float:
        """Ridge point ``R_peak[dtype] / BW`` in FLOP/byte, for the dtype named (there is no silent default)."""
        dtype = v.choice(dtype, "dtype", list(self.peak_flops_per_s))
        return self.peak_flops_per_s[dtype] / self.bandwidth_bytes_per_s

    def ridge_point(self, dtype: str) -> float:
        """The older name of :meth:`ridge`."""
        return self.ridge(dtype)

    def roofline(self, default_dtype: str | None = None) -> Roofline:
        """A spec-only :class:`efflab.roofline.Roofline` with one ceiling per dtype and main memory as "dram";
        ``default_dtype`` as in :meth:`efflab.roofline.Roofline.from_device`."""
        return Roofline.from_device(self, default_dtype)


# Every NVIDIA SM since Volta (compute capability 7.0-9.0) computes 16 exp2 results per clock on its special-function
# units (CUDA C++ Programming Guide, "Arithmetic Instructions" throughput table: base-2 exponential, 16 per SM per
# clock); exp(x) is one MUFU.EX2 after a multiply by log2(e).
SFU_EXP_PER_CLOCK_PER_SM = 16
_SFU = "CUDA C++ Programming Guide (16 exp2 per SM per clock)"


def _gpu(name, year, peaks, bandwidth, tdp_w, l2_bytes, datasheet, notes, vector=None, sm_clock=None):
    """A catalog GPU. ``vector`` = (fp32, fp16, bf16 or None, source) non-Tensor-Core peaks in FLOP/s; ``sm_clock`` =
    (SMs, boost clock in Hz, source) from which the SFU exponential rate follows."""
    sources = {f"peak_flops_per_s.{dtype}": f"{datasheet} (dense)" for dtype in peaks}
    given = dict(zip(_FIELDS, (bandwidth, tdp_w, l2_bytes, year), strict=True))
    sources |= {key: datasheet for key in _FIELDS if given[key] is not None}
    vector_peaks, exp_per_s = {}, None
    if vector is not None:
        *rates, where = vector
        vector_peaks = {d: r for d, r in zip(("fp32", "fp16", "bf16"), rates, strict=True) if r is not None}
        sources |= {f"vector_flops_per_s.{d}": where for d in vector_peaks}
    if sm_clock is not None:
        sms, clock_hz, where = sm_clock
        exp_per_s = sms * SFU_EXP_PER_CLOCK_PER_SM * clock_hz
        sources["exp_per_s"] = f"{sms} SMs x 16 exp/clock ({_SFU}) x {clock_hz / 1e9:.3g} GHz boost ({where})"
    sources |= notes
    return Device(name, "gpu", peaks, bandwidth, tdp_w, l2_bytes, year, sources, False, vector_peaks, exp_per_s)


_T4_SHEET = "NVIDIA T4 Tensor Core GPU datasheet (2019)"
_TURING = "NVIDIA Turing GPU architecture whitepaper (TU104: 4 MB L2)"
_V100_SHEET = "NVIDIA Tesla V100 datasheet (SXM2)"
_AMPERE = "NVIDIA A100 Tensor Core GPU datasheet (SXM; sparse figures with * are 2x, not used)"
_A100_WHITEPAPER = "NVIDIA A100 Tensor Core GPU architecture whitepaper"
_A100_VECTOR = (19.5e12, 78e12, 39e12, f"{_A100_WHITEPAPER} (non-Tensor FP16 78, BF16 39 TFLOPS)")
_A100_SMS = (108, 1.41e9, f"{_A100_WHITEPAPER} (108 SMs, 1410 MHz)")
_HOPPER = "NVIDIA H100 Tensor Core GPU datasheet (SXM; sparse figures with * are 2x, not used)"
_HOPPER_WHITEPAPER = "NVIDIA H100 Tensor Core GPU architecture whitepaper"
_HOPPER_VECTOR = (66.9e12, 133.8e12, 133.8e12, f"{_HOPPER_WHITEPAPER} (SXM5: non-Tensor FP16/BF16 133.8 TFLOPS)")
# 132 x 16 x 1.83 GHz = 3.87e12 exp/s: the "3.9 TFLOPS of special functions" of FlashAttention-3 (Shah et al. 2024).
_HOPPER_SMS = (
    132,
    1.83e9,
    f"{_HOPPER_WHITEPAPER} (SXM5: 132 SMs, 1830 MHz Tensor Core boost); FlashAttention-3: 3.9e12",
)

# Figures from the NVIDIA datasheets each entry names (chapters/references.md). Turing (T4) and Volta (V100) Tensor
# Cores have no structured sparsity, so their datasheet numbers are dense; Ampere, Ada and Hopper datasheets print
# sparse figures (2x), halved here.
CATALOG: Mapping[str, Device] = MappingProxyType(
    {
        "T4": _gpu(
            "NVIDIA T4",
            2018,
            {"fp32": 8.1e12, "fp16": 65e12, "int8": 130e12, "int4": 260e12},
            320e9,
            70.0,
            4 * 2**20,
            _T4_SHEET,
            {
                "bandwidth_bytes_per_s": "NVIDIA T4 product page: 320+ GB/s GDDR6 (the 2019 datasheet prints 300 GB/s)",
                "l2_bytes": _TURING,
                "year": "announced at GTC Japan, September 2018",
            },
            (8.1e12, 16.2e12, None, f"{_TURING}: FP16 at twice the FP32 rate on the CUDA cores"),
            (40, 1.59e9, f"{_T4_SHEET} and the Turing whitepaper (40 SMs, 1590 MHz)"),
        ),
        "L4": _gpu(
            "NVIDIA L4",
            2023,
            {"fp32": 30.3e12, "tf32": 60e12, "fp16": 121e12, "bf16": 121e12, "int8": 242.5e12},
            300e9,
            72.0,
            48 * 2**20,
            "NVIDIA L4 Tensor Core GPU datasheet (TF32 120*, FP16/BF16 242*, INT8 485* sparse, halved here)",
            {
                "l2_bytes": "NVIDIA Ada GPU architecture whitepaper (AD104: 48 MB L2)",
                "year": "announced GTC, March 2023",
            },
            (30.3e12, 30.3e12, 30.3e12, "NVIDIA Ada GPU architecture whitepaper (non-Tensor FP16/BF16 = FP32 rate)"),
            (58, 2.04e9, "NVIDIA L4 datasheet and Ada whitepaper (58 SMs, 2040 MHz)"),
        ),
        "V100 SXM2": _gpu(
            "NVIDIA V100 SXM2",
            2017,
            {"fp32": 15.7e12, "fp16": 125e12},
            900e9,
            300.0,
            6 * 2**20,
            _V100_SHEET,
            {"l2_bytes": "NVIDIA Tesla V100 GPU architecture whitepaper (6144 KB L2)", "year": "GTC, May 2017"},
            (15.7e12, 31.4e12, None, "NVIDIA Tesla V100 GPU architecture whitepaper (FP16 non-Tensor 31.4 TFLOPS)"),
            (80, 1.53e9, "NVIDIA Tesla V100 GPU architecture whitepaper (80 SMs, 1530 MHz)"),
        ),
        "A100 40GB SXM": _gpu(
            "NVIDIA A100 40GB SXM",
            2020,
            {"fp32": 19.5e12, "tf32": 156e12, "fp16": 312e12, "bf16": 312e12, "int8": 624e12, "int4": 1248e12},
            1555e9,
            400.0,
            40 * 2**20,
            _AMPERE,
            {"l2_bytes": "NVIDIA A100 Tensor Core GPU architecture whitepaper (40 MB L2)", "year": "GTC, May 2020"},
            _A100_VECTOR,
            _A100_SMS,
        ),
        "A100 80GB SXM": _gpu(
            "NVIDIA A100 80GB SXM",
            2020,
            {"fp32": 19.5e12, "tf32": 156e12, "fp16": 312e12, "bf16": 312e12, "int8": 624e12, "int4": 1248e12},
            2039e9,
            400.0,
            40 * 2**20,
            _AMPERE,
            {"l2_bytes": "NVIDIA A100 Tensor Core GPU architecture whitepaper (40 MB L2)", "year": "November 2020"},
            _A100_VECTOR,
            _A100_SMS,
        ),
        "H100 SXM": _gpu(
            "NVIDIA H100 SXM",
            2022,
            {"fp32": 67e12, "tf32": 494.7e12, "fp16": 989.4e12, "bf16": 989.4e12, "int8": 1979e12},
            3.35e12,
            700.0,
            50 * 2**20,
            _HOPPER,
            {
                "tdp_w": f"{_HOPPER}: up to 700 W (configurable)",
                "l2_bytes": "NVIDIA H100 Tensor Core GPU architecture whitepaper (SXM5: 50 MB L2)",
                "year": "shipping 2022 (announced GTC, March 2022)",
            },
            _HOPPER_VECTOR,
            _HOPPER_SMS,
        ),
        "H200 SXM": _gpu(
            "NVIDIA H200 SXM",
            2024,
            {"fp32": 67e12, "tf32": 494.7e12, "fp16": 989.4e12, "bf16": 989.4e12, "int8": 1979e12},
            4.8e12,
            700.0,
            50 * 2**20,
            "NVIDIA H200 Tensor Core GPU datasheet (SXM; same Hopper compute as H100 SXM, 4.8 TB/s HBM3e)",
            {
                "l2_bytes": (
                    "NVIDIA H100 architecture whitepaper (same GH100 die as H100 SXM5: 50 MB L2; the H200 datasheet "
                    "gives none: benchmarks/gpu_check.py sets the driver's figure beside it)"
                ),
                "year": "shipping 2024 (announced November 2023)",
            },
            _HOPPER_VECTOR,
            _HOPPER_SMS,
        ),
    }
)


# Variants of the catalog's GPUs and other common cloud GPUs, so that the spec set beside a measurement is the right
# one; the chapters' figures and tables use the curated CATALOG above (one entry per generation and tier). Not here:
# the A10G (an AWS part with no NVIDIA datasheet), GH200 (its figures depend on the module's power setting), MIG
# slices. Sparse datasheet figures (*) are halved, as above.
_H100_BRIEF = "NVIDIA H100 PCIe GPU product brief PB-11133-001 (TF32 756*, FP16/BF16 1513*, INT8 3026* sparse)"
_H100_NVL_SHEET = (
    "NVIDIA H100 Tensor Core GPU datasheet, H100 NVL column (per GPU: TF32 835*, FP16/BF16 1671*, INT8 3341*)"
)
_H200_NVL_SHEET = (
    "NVIDIA H200 Tensor Core GPU datasheet, H200 NVL column (per GPU: TF32 835*, FP16/BF16 1671*, INT8 3341*)"
)
_A100_PCIE = "NVIDIA A100 Tensor Core GPU datasheet, PCIe columns (same compute as SXM; sparse figures * are 2x)"
_HOPPER_L2 = "NVIDIA H100 Tensor Core GPU architecture whitepaper (50 MB L2 on H100 SXM5 and PCIe)"
_AMPERE_PEAKS = {"fp32": 19.5e12, "tf32": 156e12, "fp16": 312e12, "bf16": 312e12, "int8": 624e12, "int4": 1248e12}
MORE_GPUS: Mapping[str, Device] = MappingProxyType(
    {
        "A10": _gpu(
            "NVIDIA A10",
            2021,
            {"fp32": 31.2e12, "tf32": 62.5e12, "fp16": 125e12, "bf16": 125e12, "int8": 250e12, "int4": 500e12},
            600e9,
            150.0,
            6 * 2**20,
            "NVIDIA A10 Tensor Core GPU datasheet (TF32 125*, FP16/BF16 250*, INT8 500*, INT4 1000* sparse)",
            {"l2_bytes": "NVIDIA Ampere GA102 GPU architecture whitepaper (6 MB L2)", "year": "GTC, April 2021"},
        ),
        "A100 40GB PCIe": _gpu(
            "NVIDIA A100 40GB PCIe",
            2020,
            _AMPERE_PEAKS,
            1555e9,
            250.0,
            40 * 2**20,
            _A100_PCIE,
            {"l2_bytes": "NVIDIA A100 Tensor Core GPU architecture whitepaper (40 MB L2)", "year": "June 2020"},
        ),
        "A100 80GB PCIe": _gpu(
            "NVIDIA A100 80GB PCIe",
            2021,
            _AMPERE_PEAKS,
            1935e9,
            300.0,
            40 * 2**20,
            _A100_PCIE,
            {"l2_bytes": "NVIDIA A100 Tensor Core GPU architecture whitepaper (40 MB L2)", "year": "June 2021"},
        ),
        "L40S": _gpu(
            "NVIDIA L40S",
            2023,
            {"fp32": 91.6e12, "tf32": 183e12, "fp16": 362.05e12, "bf16": 362.05e12, "int8": 733e12},
            864e9,
            350.0,
            None,
            "NVIDIA L40S datasheet (TF32 366*, FP16/BF16 733*, INT8 1466* sparse; no L2 size given)",
            {"year": "SIGGRAPH, August 2023"},
        ),
        "H100 PCIe": _gpu(
            "NVIDIA H100 PCIe",
            2022,
            {"fp32": 51e12, "tf32": 378e12, "fp16": 756e12, "bf16": 756e12, "int8": 1513e12},
            2.0e12,
            350.0,
            50 * 2**20,
            _H100_BRIEF,
            {"l2_bytes": _HOPPER_L2, "year": "shipping 2022 (announced GTC, March 2022)"},
        ),
        "H100 NVL": _gpu(
            "NVIDIA H100 NVL",
            2023,
            {"fp32": 60e12, "tf32": 417.5e12, "fp16": 835.5e12, "bf16": 835.5e12, "int8": 1670.5e12},
            3.9e12,
            400.0,
            None,
            _H100_NVL_SHEET,
            {"tdp_w": f"{_H100_NVL_SHEET}: 350-400 W (configurable)", "year": "GTC, March 2023"},
        ),
        "H200 NVL": _gpu(
            "NVIDIA H200 NVL",
            2024,
            {"fp32": 60e12, "tf32": 417.5e12, "fp16": 835.5e12, "bf16": 835.5e12, "int8": 1670.5e12},
            4.8e12,
            600.0,
            None,
            _H200_NVL_SHEET,
            {"tdp_w": f"{_H200_NVL_SHEET}: up to 600 W (configurable)", "year": "November 2024"},
        ),
    }
)
# Every datasheet efflab knows: the course's CATALOG and the variants above. get_device and spec_for look here.
ALL_GPUS: Mapping[str, Device] = MappingProxyType({**CATALOG, **MORE_GPUS})


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


# Extra spellings that name a catalog entry (normalized: lower case, letters and digits only).
_ALIASES = {
    "t4": "T4",
    "teslat4": "T4",
    "l4": "L4",
    "v100": "V100 SXM2",
    "v100sxm": "V100 SXM2",
    "teslav100": "V100 SXM2",
    "a100": "A100 40GB SXM",
    "a10040gb": "A100 40GB SXM",
    "a100sxm": "A100 40GB SXM",
    "a10080gb": "A100 80GB SXM",
    "a10080": "A100 80GB SXM",
    "h100": "H100 SXM",
    "h100sxm5": "H100 SXM",
    "h200": "H200 SXM",
}


def match_gpu_name(name: str) -> str | None:
    """The :data:`ALL_GPUS` key for a GPU name as ``torch.cuda.get_device_name()`` prints it, or None if unknown.

    PCIe and NVL variants have other clocks, power and bandwidth than the SXM parts, so each has its own entry; a MIG
    slice, which has a fraction of the GPU's units and bandwidth, matches nothing.

    Examples
    --------
    >>> match_gpu_name("NVIDIA H100 80GB HBM3"), match_gpu_name("Tesla T4"), match_gpu_name("NVIDIA H100 PCIe")
    ('H100 SXM', 'T4', 'H100 PCIe')
    >>> match_gpu_name("NVIDIA A100-SXM4-40GB MIG 1g.5gb"), match_gpu_name("NVIDIA A10G")
    (None, None)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string; got {type(name).__name__}")
    low = name.lower()
    if is_mig_slice(name):
        return None
    pcie, nvl = "pcie" in low, re.search(r"\bnvl\b", low) is not None
    if re.search(r"\bh200\b", low):
        return "H200 NVL" if nvl else None if pcie else "H200 SXM"
    if re.search(r"\bh100\b", low):
        return "H100 NVL" if nvl else "H100 PCIe" if pcie else "H100 SXM"
    if "a100" in low:
        size = "80GB" if "80gb" in low else "40GB" if "40gb" in low else None
        return None if size is None or nvl else f"A100 {size} {'PCIe' if pcie else 'SXM'}"
    checks = (
        (r"\bv100\b.*\bsxm", "V100 SXM2"),
        (r"\bt4\b", "T4"),
        (r"\bl40s\b", "L40S"),
        (r"\bl4\b", "L4"),
        (r"\ba10\b", "A10"),
    )
    return next((key for pattern, key in checks if re.search(pattern, low) and not (pcie or nvl)), None)


def get_device(name: str) -> Device:
    """A catalog entry by name; case, spaces and hyphens are ignored ("h100", "A100-80GB", "Tesla T4").

    Raises
    ------
    ValueError
        For an unknown name, listing the known names.

    Examples
    --------
    >>> get_device("a100-80gb").bandwidth_bytes_per_s
    2039000000000.0
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string naming a device, one of {list(ALL_GPUS)}; got {type(name).__name__}")
    key = {_norm(k): k for k in ALL_GPUS}.get(_norm(name)) or _ALIASES.get(_norm(name)) or match_gpu_name(name)
    if key is None:
        raise ValueError(f"name {name!r} is not in the catalog; known devices: {', '.join(ALL_GPUS)}")
    return ALL_GPUS[key]


def as_roofline(roofline) -> Roofline:
    """A :class:`~efflab.roofline.Roofline` from a Roofline, a ``Device`` or a catalog name ("T4", "h100").

    Examples
    --------
    >>> round(as_roofline("h100").ridge("bf16"), 1)
    295.3
    """
    if isinstance(roofline, Roofline):
        return roofline
    if isinstance(roofline, str):
        return Roofline.from_device(get_device(roofline))
    if hasattr(roofline, "peak_flops_per_s") and hasattr(roofline, "bandwidth_bytes_per_s"):
        return Roofline.from_device(roofline)
    raise TypeError(f"roofline must be a Roofline, a Device or a catalog name; got {type(roofline).__name__}")


# --- CPU estimate -----------------------------------------------------------------------------------------------------

# Vector width in fp32 lanes by ISA extension: AVX-512 registers hold 16 fp32, AVX2 8, SSE/NEON 4.
_LANES = (("avx512f", 16), ("avx2", 8), ("fma", 8))
# FMA pipes per core: Intel server cores since Skylake-SP (Gold 6xxx, Platinum; some Silver/Bronze parts have one
# 512-bit FMA) and AMD Zen 1-4 have two. An assumption; and the clock is what /proc/cpuinfo reports (a VM often shows
# the base clock while its cores turbo above it), so the estimate is NOT a bound: a measured peak may exceed it.
ASSUMED_FMA_UNITS = 2
# Intel AMX (Sapphire Rapids and later, flag amx_bf16): one TDPBF16PS multiplies 16x32 by 32x16 bf16 tiles, 8,192
# multiply-adds, every 16 cycles: 1,024 bf16 FLOP per cycle per core (Intel 64 and IA-32 Architectures Optimization
# Reference Manual, chapter "Intel Advanced Matrix Extensions"; Intel quotes "1024 BF16 operations per cycle").
AMX_BF16_FLOPS_PER_CYCLE = 1024
# AVX512_BF16 (Cooper Lake, Zen 4; flag avx512_bf16): VDPBF16PS does two bf16 multiply-adds per fp32 lane, so twice
# the fp32 rate (Intel Architecture Instruction Set Extensions Programming Reference, VDPBF16PS).
AVX512_BF16_PER_FP32 = 2
# AMD families 17h (Zen 2: models 30h and up) and 19h (Zen 3, Zen 4) have 256-bit floating-point pipes: Zen 4 accepts
# AVX-512 but executes each 512-bit op as two 256-bit halves (AMD Software Optimization Guide for family 19h, section
# 2.11), so its fp32 throughput is 8 lanes per pipe, not 16. Zen 5 (family 1Ah) has full 512-bit pipes.
_AMD_256BIT_FAMILIES = (0x17, 0x19)
# Zen and Zen+ (family 17h, models 00h-2Fh) have 128-bit pipes and crack each 256-bit AVX op into two (AMD Software
# Optimization Guide for family 17h, pub. 55723, section 2.11): 4 fp32 lanes per pipe.
_AMD_128BIT_FAMILY, _AMD_128BIT_MODELS_BELOW = 0x17, 0x30
# One 64-bit DDR4-3200 channel: 3.2e9 transfers/s x 8 bytes = 25.6 GB/s (JEDEC JESD79-4). A conservative floor: the
# channel count is not visible without root, and a VM slice may not see them all.
DDR_TRANSFERS_PER_S = 3.2e9
DDR_BUS_BYTES = 8


def cpu_peak_flops_per_s(cores: int, clock_hz: float, fp32_lanes: int, fma_units: int = ASSUMED_FMA_UNITS) -> float:
    """Estimated fp32 peak of a CPU: ``cores * clock_hz * lanes * 2 FLOP/FMA * fma_units``.

    Examples
    --------
    Two Zen 4 cores at 2.6 GHz with AVX-512 (16 lanes), assuming 2 FMA units: 332.8 GFLOP/s.

    >>> cpu_peak_flops_per_s(2, 2.6e9, 16) / 1e9
    332.8
    """
    cores = v.integer(cores, "cores", "cores", low=1)
    clock = v.positive(clock_hz, "clock_hz", "Hz")
    if clock.ndim:
        raise ValueError(f"clock_hz must be a single number (Hz); got shape {clock.shape}")
    lanes = v.integer(fp32_lanes, "fp32_lanes", "lanes", low=1)
    fma_units = v.integer(fma_units, "fma_units", "units per core", low=1)
    return cores * float(clock) * lanes * 2 * fma_units


def cpu_bandwidth_bytes_per_s(channels: int = 1, transfers_per_s: float = DDR_TRANSFERS_PER_S) -> float:
    """Estimated DRAM bandwidth: ``channels * transfers_per_s * 8 bytes`` (a 64-bit DDR channel).

    Examples
    --------
    >>> cpu_bandwidth_bytes_per_s() / 1e9
    25.6
    """
    channels = v.integer(channels, "channels", "channels", low=1)
    rate = v.positive(transfers_per_s, "transfers_per_s", "transfers/s")
    if rate.ndim:
        raise ValueError(f"transfers_per_s must be a single number; got shape {rate.shape}")
    return channels * float(rate) * DDR_BUS_BYTES


def fp32_lanes_from_flags(flags) -> int:
    """fp32 SIMD lanes from CPU flags: avx512f -> 16, avx2 or fma -> 8, otherwise 4 (SSE/NEON).

    >>> fp32_lanes_from_flags({"sse2", "avx2", "fma"})
    8
    """
    if isinstance(flags, str):
        flags = flags.split()
    flags = set(flags)
    return next((lanes for flag, lanes in _LANES if flag in flags), 4)


def parse_cpuinfo(text: str) -> dict:
    """Model name, clock (Hz), flags, and threads per core from the text of ``/proc/cpuinfo``.

    >>> parse_cpuinfo("model name : AMD EPYC\\ncpu MHz : 2596.1\\nsiblings : 2\\ncpu cores : 2\\nflags : fma avx2")
    {'model_name': 'AMD EPYC', 'clock_hz': 2596100000.0, 'flags': ('fma', 'avx2'), 'threads_per_core': 1}
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string; got {type(text).__name__}")
    facts = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key not in facts:
            facts[key] = value.strip()
    clock = facts.get("cpu mhz")
    siblings, cores = facts.get("siblings", ""), facts.get("cpu cores", "")
    threads = int(siblings) // int(cores) if siblings.isdigit() and cores.isdigit() and int(cores) else 1
    return {
        "model_name": facts.get("model name", "unknown CPU"),
        "clock_hz": float(clock) * 1e6 if clock else None,
        "flags": tuple(facts.get("flags", "").split()),
        "threads_per_core": max(threads, 1),
    }


def cpu_device(cpuinfo_text: str | None = None, logical_cpus: int | None = None) -> Device:
    """An estimated CPU :class:`Device` from ``/proc/cpuinfo`` (or the text given) and the CPUs this process may use.

    ``peak fp32 = cores * clock * lanes * 2 * fma_units`` (see :func:`cpu_peak_flops_per_s`), fp64 at half the lanes;
    bandwidth from one DDR4-3200 channel (see :func:`cpu_bandwidth_bytes_per_s`). All figures are ``estimated``.

    >>> d = cpu_device("model name : Test\\ncpu MHz : 2000\\nflags : avx2", logical_cpus=4)
    >>> d.estimated, d.peak_flops_per_s["fp32"] / 1e9
    (True, 256.0)

    AMD Zen 4 reports avx512f but runs it on 256-bit pipes, so it gets 8 lanes, not 16:

    >>> zen4 = "model name : AMD EPYC\\ncpu family : 25\\ncpu MHz : 2600\\nflags : avx2 avx512f"
    >>> cpu_device(zen4, logical_cpus=2).peak_flops_per_s["fp32"] / 1e9
    166.4

    An Intel Xeon with AMX gets a bf16 estimate of 1,024 FLOP per cycle per core; without AMX or AVX512_BF16 a CPU
    has no bf16 estimate (torch then emulates bf16 matmuls, slowly):

    >>> spr = "model name : Intel Xeon\\ncpu MHz : 2000\\nflags : avx2 avx512f amx_bf16 amx_int8"
    >>> {k: v / 1e9 for k, v in cpu_device(spr, logical_cpus=2).peak_flops_per_s.items()}
    {'fp32': 256.0, 'fp64': 128.0, 'bf16': 4096.0}

    AMD Zen (family 23 = 17h, model 1) runs AVX2 on 128-bit pipes, 4 lanes:

    >>> zen1 = "model name : AMD EPYC\\ncpu family : 23\\nmodel : 1\\ncpu MHz : 2000\\nflags : avx2 fma"
    >>> cpu_device(zen1, logical_cpus=2).peak_flops_per_s["fp32"] / 1e9
    64.0
    """
    facts = parse_cpuinfo(_read("/proc/cpuinfo") if cpuinfo_text is None else cpuinfo_text)
    if logical_cpus is None:
        logical_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    logical_cpus = v.integer(logical_cpus, "logical_cpus", "CPUs", low=1)
    cores = max(1, logical_cpus // facts["threads_per_core"])
    clock_hz, clock_src = facts["clock_hz"], "/proc/cpuinfo 'cpu MHz'"
    max_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip() if cpuinfo_text is None else ""
    if max_khz.isdigit():
        clock_hz, clock_src = int(max_khz) * 1e3, "cpufreq cpuinfo_max_freq"
    if clock_hz is None:
        raise ValueError("clock_hz unknown: /proc/cpuinfo has no 'cpu MHz' line and cpufreq is unavailable")
    lanes = fp32_lanes_from_flags(facts["flags"])
    text = _read("/proc/cpuinfo") if cpuinfo_text is None else cpuinfo_text
    family = re.search(r"^cpu family\s*:\s*(\d+)", text, re.MULTILINE)
    model = re.search(r"^model\s*:\s*(\d+)", text, re.MULTILINE)
    if "amd" in (text[:2000].lower()) and family and int(family.group(1)) in _AMD_256BIT_FAMILIES:
        lanes = min(lanes, 8)  # 256-bit pipes (see _AMD_256BIT_FAMILIES)
        if int(family.group(1)) == _AMD_128BIT_FAMILY and model and int(model.group(1)) < _AMD_128BIT_MODELS_BELOW:
            lanes = min(lanes, 4)  # Zen, Zen+: 128-bit pipes
    peak = cpu_peak_flops_per_s(cores, clock_hz, lanes)
    formula = (
        f"estimate: {cores} cores x {clock_hz / 1e9:.3g} GHz ({clock_src}) x {{lanes}} lanes x 2 FLOP/FMA"
        f" x {ASSUMED_FMA_UNITS} FMA units (assumed)"
    )
    bw = cpu_bandwidth_bytes_per_s()
    sources = {
        "peak_flops_per_s.fp32": formula.format(lanes=lanes),
        "peak_flops_per_s.fp64": formula.format(lanes=lanes // 2),
        "bandwidth_bytes_per_s": "estimate: one 64-bit DDR4-3200 channel, 3.2e9 transfers/s x 8 bytes (a reference "
        "point, not a bound: machines have 2-12 channels, and a VM's share is unknown)",
    }
    cache_bytes = last_level_cache_bytes() if cpuinfo_text is None else None
    if cache_bytes is not None:
        sources["l2_bytes"] = "last-level cache size from /sys/devices/system/cpu/cpu0/cache (OS-reported)"
    name = f"{facts['model_name']} ({cores} cores)"
    peaks = {"fp32": peak, "fp64": peak / 2}
    if "amx_bf16" in facts["flags"]:
        peaks["bf16"] = cores * clock_hz * AMX_BF16_FLOPS_PER_CYCLE
        sources["peak_flops_per_s.bf16"] = (
            f"estimate: {cores} cores x {clock_hz / 1e9:.3g} GHz ({clock_src}) x {AMX_BF16_FLOPS_PER_CYCLE} "
            "FLOP/cycle (Intel AMX TMUL)"
        )
    elif "avx512_bf16" in facts["flags"]:
        peaks["bf16"] = AVX512_BF16_PER_FP32 * peak
        sources["peak_flops_per_s.bf16"] = f"estimate: {AVX512_BF16_PER_FP32} x the fp32 estimate (AVX512_BF16)"
    return Device(name, "cpu", peaks, bw, l2_bytes=cache_bytes, sources=sources, estimated=True)


# TF32 and BF16 run on tensor cores from compute capability 8.0 (Ampere) on; a T4 (7.5) or V100 (7.0) has neither
# (NVIDIA, CUDA C++ Programming Guide, "Compute Capabilities"; torch emulates bf16 there, slowly).
TF32_BF16_MIN_CAPABILITY = (8, 0)


@contextmanager
def fp32_math(tf32: bool):
    """Run fp32 matmuls (cuBLAS) and convolutions (cuDNN) as true IEEE fp32 (``tf32=False``) or on TF32 tensor cores
    (``tf32=True``), and restore the previous settings on exit.

    Where fp32 is claimed it must be fp32: cuDNN allows TF32 by default, so a "fp32" convolution on an Ampere or later
    GPU could plot above the fp32 roof. torch >= 2.9 has per-backend ``fp32_precision`` settings, and reading the old
    ``allow_tf32`` flags raises once anything set the new ones; the new settings are used where they exist, the old
    flags otherwise. The CPU is unaffected.

    Examples
    --------
    >>> with fp32_math(tf32=False):
    ...     pass
    """
    try:
        import torch
    except ImportError:  # nothing to configure
        yield
        return
    b = torch.backends
    if hasattr(b.cuda.matmul, "fp32_precision") and hasattr(b.cudnn, "conv"):
        saved = (b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision)
        mode = "tf32" if tf32 else "ieee"
        b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision = mode, mode
        try:
            yield
        finally:
            b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision = saved
    else:
        saved = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32)
        b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32 = bool(tf32), bool(tf32)
        try:
            yield
        finally:
            b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32 = saved


def cuda_capability(device="cuda") -> tuple[int, int] | None:
    """The compute capability ``(major, minor)`` of a CUDA device, or None for the CPU or without torch/CUDA.

    >>> cuda_capability("cpu") is None
    True
    """
    text = str(device)
    if not text.startswith("cuda"):
        return None
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(torch.device(text))
    return (int(major), int(minor))


def dtype_note(dtype: str, device="cuda") -> str | None:
    """Why ``dtype`` on ``device`` is not what its name promises (a T4 emulates bf16), or None when it is.

    Below compute capability 8.0 (:data:`TF32_BF16_MIN_CAPABILITY`: T4, V100) a GPU has no bf16 or TF32 tensor
    cores: torch emulates bf16 in fp32 and "tf32" is plain fp32, so a time measured there is not a bf16 or TF32
    tensor-core time. The CPU, and every dtype on an Ampere or later GPU, gives None.

    Examples
    --------
    >>> dtype_note("bf16", "cpu") is None
    True
    """
    dtype = v.choice(dtype, "dtype", list(DTYPE_BYTES))
    capability = cuda_capability(device)
    if capability is None or capability >= TF32_BF16_MIN_CAPABILITY or dtype not in ("bf16", "tf32"):
        return None
    need = ".".join(map(str, TF32_BF16_MIN_CAPABILITY))
    what = "emulated in fp32" if dtype == "bf16" else "runs as plain fp32"
    return f"{dtype} {what}: needs compute capability {need}, this GPU is {capability[0]}.{capability[1]}"


def is_mig_slice(name: str) -> bool:
    """True for a MIG slice's device name as torch prints it ("NVIDIA A100-SXM4-40GB MIG 1g.5gb").

    >>> is_mig_slice("NVIDIA A100-SXM4-40GB MIG 1g.5gb"), is_mig_slice("NVIDIA A100-SXM4-40GB")
    (True, False)
    """
    return re.search(r"\bMIG\b", str(name)) is not None


def spec_for(device=None) -> tuple[Device | None, str]:
    """The datasheet (or estimate) to set beside measurements made on ``device``, and where it comes from.

    The CPU gets the estimate of :func:`cpu_device`. A GPU is matched by the name of *that* device
    (``torch.cuda.get_device_name(index)``), never device 0's. An uncatalogued GPU or a MIG slice has no spec: the
    second element says why, and callers show measured values without a fraction of spec rather than a wrong one.

    Parameters
    ----------
    device : str or torch.device, optional
        "cpu", "cuda" or "cuda:N"; default "cuda" when CUDA is available, else "cpu".

    Returns
    -------
    (Device or None, str)

    Examples
    --------
    >>> spec_for("cpu")[0].kind
    'cpu'
    """
    try:
        import torch
    except ImportError:
        if device is not None and not str(device).startswith("cpu"):
            raise ValueError(f"device {device!r} needs torch with CUDA; torch is not installed") from None
        return cpu_device(), "estimate from the CPU's cores, clock and vector width"
    text = str(device) if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return cpu_device(), "estimate from the CPU's cores, clock and vector width"
    found = re.fullmatch(r"cuda(?::(\d+))?", text)
    if found is None:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
    index = int(found.group(1)) if found.group(1) is not None else torch.cuda.current_device()
    name = torch.cuda.get_device_name(index)
    if is_mig_slice(name):
        return None, f"{name} is a MIG slice: no whole-GPU datasheet applies, so no spec is shown"
    key = match_gpu_name(name)
    if key is None:
        return None, (
            f"{name!r} is not in the efflab catalog ({', '.join(ALL_GPUS)}): no datasheet to compare with; "
            "build a Device from its datasheet to get one"
        )
    return ALL_GPUS[key], f"datasheet of the {key}"


def detect(device=None) -> Device:
    """Describe the machine this runs on: the catalog entry of a known CUDA GPU, else an estimated CPU device.

    torch is imported here, lazily; without torch or CUDA the CPU estimate is returned. ``device`` ("cpu", "cuda" or
    "cuda:N") chooses which device is described; by default CUDA device 0's GPU when there is one. An unknown GPU or
    a MIG slice gives a warning and the CPU estimate: its figures cannot be guessed. To compare measurements with a
    spec, use :func:`spec_for`, which gives no spec rather than the CPU's.

    Examples
    --------
    >>> detect().kind in ("gpu", "cpu"), detect("cpu").kind
    (True, 'cpu')
    """
    try:
        import torch
    except ImportError:
        return cpu_device()
    if device is None:
        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    spec, why = spec_for(device)
    if spec is None:
        warnings.warn(f"{why}; returning the CPU estimate instead.", stacklevel=2)
        return cpu_device()
    return spec
