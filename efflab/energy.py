"""Energy per operation: why moving a byte costs more than computing with it (the Energy-Movement invariant).

The data are Mark Horowitz's 45 nm figures (ISSCC 2014 keynote, 0.9 V), the table every efficiency course quotes.
They are one process node and one voltage: absolute picojoules shrink on newer nodes, but the *ratios* (a DRAM read
costs hundreds of arithmetic operations) are the lesson, and they have held.

Two conventions are made explicit here because the literature mixes them up:

* A multiply-add (FMA) costs a multiply *plus* an add: fp32 3.7 + 0.9 = 4.6 pJ. (3.7 pJ alone is the multiply.)
* A FLOP is half a multiply-add (the usual convention: an FMA counts 2 FLOPs), so fp32 energy per FLOP is
  4.6 / 2 = 2.3 pJ. For integer dtypes "FLOP" reads as "operation" with the same convention.

DRAM is a range in the source (1300-2600 pJ per 64-bit read). ``energy_estimate`` uses the *low* end by default
(``memory="dram"``, 1300 pJ / 8 B = 162.5 pJ/B): it is the conservative choice for the claim that movement dominates,
and it agrees with the widely quoted Han et al. figure of 640 pJ per 32-bit DRAM access (160 pJ/B). Pass
``memory="dram_high"`` for the other end.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike

from efflab import _validate as v
from efflab.style import format_si, wrap_text

__all__ = [
    "HAN_2015_PJ_PER_32BIT",
    "HOROWITZ_45NM_PJ",
    "HOROWITZ_SOURCE",
    "MEMORY_LEVELS",
    "EnergyEstimate",
    "energy_estimate",
    "op_energy_j",
]

HOROWITZ_SOURCE = (
    "M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, "
    "doi:10.1109/ISSCC.2014.6757323; 45 nm process, 0.9 V"
)

# Energy per operation in picojoules, transcribed from Horowitz (ISSCC 2014), 45 nm, 0.9 V.
HOROWITZ_45NM_PJ = MappingProxyType(
    {
        "int8_add": 0.03,  # 8-bit integer add
        "int32_add": 0.1,  # 32-bit integer add
        "fp16_add": 0.4,  # 16-bit float add
        "fp32_add": 0.9,  # 32-bit float add
        "int8_mult": 0.2,  # 8-bit integer multiply
        "int32_mult": 3.1,  # 32-bit integer multiply
        "fp16_mult": 1.1,  # 16-bit float multiply
        "fp32_mult": 3.7,  # 32-bit float multiply
        "sram_64bit_8kb": 10.0,  # 64-bit read from an 8 KB SRAM
        "sram_64bit_32kb": 20.0,  # 64-bit read from a 32 KB SRAM
        "sram_64bit_1mb": 100.0,  # 64-bit read from a 1 MB SRAM
        "dram_64bit_low": 1300.0,  # 64-bit DRAM read, low end of the quoted 1.3-2.6 nJ range
        "dram_64bit_high": 2600.0,  # 64-bit DRAM read, high end of the range
    }
)

# Per-32-bit figures from the energy table (45 nm CMOS, after Horowitz) in S. Han, J. Pool, J. Tran, W. J. Dally,
# "Learning both weights and connections for efficient neural networks", NeurIPS 2015, arXiv:1506.02626. The
# arithmetic entries repeat Horowitz; the register file, SRAM and DRAM entries are quoted per 32-bit access.
HAN_2015_PJ_PER_32BIT = MappingProxyType(
    {
        "int32_add": 0.1,
        "fp32_add": 0.9,
        "register_32bit": 1.0,  # 32-bit register file access
        "int32_mult": 3.1,
        "fp32_mult": 3.7,
        "sram_32bit": 5.0,  # 32-bit SRAM cache access
        "dram_32bit": 640.0,  # 32-bit DRAM access
    }
)

_DTYPES = ("fp32", "fp16", "int32", "int8")  # the dtypes with both a multiply and an add in the table
# A multiply-add is modelled as one multiply plus one add, per dtype (derived, not a table entry).
_FMA_PJ = {d: HOROWITZ_45NM_PJ[f"{d}_mult"] + HOROWITZ_45NM_PJ[f"{d}_add"] for d in _DTYPES}
# Aliases and derived operations accepted by op_energy_j besides the table's own names.
_DERIVED_PJ = {"dram_64bit": HOROWITZ_45NM_PJ["dram_64bit_low"], **{f"{d}_fma": pj for d, pj in _FMA_PJ.items()}}
_OPS = {**HOROWITZ_45NM_PJ, **_DERIVED_PJ}

# Memory level -> (pJ per byte, how it was derived). A 64-bit read moves 8 bytes.
MEMORY_LEVELS = MappingProxyType(
    {
        "dram": (HOROWITZ_45NM_PJ["dram_64bit_low"] / 8, "1300 pJ per 64-bit DRAM read / 8 B (low end of range)"),
        "dram_high": (HOROWITZ_45NM_PJ["dram_64bit_high"] / 8, "2600 pJ per 64-bit DRAM read / 8 B (high end)"),
        "sram_1mb": (HOROWITZ_45NM_PJ["sram_64bit_1mb"] / 8, "100 pJ per 64-bit read of a 1 MB SRAM / 8 B"),
        "sram_32kb": (HOROWITZ_45NM_PJ["sram_64bit_32kb"] / 8, "20 pJ per 64-bit read of a 32 KB SRAM / 8 B"),
        "sram_8kb": (HOROWITZ_45NM_PJ["sram_64bit_8kb"] / 8, "10 pJ per 64-bit read of an 8 KB SRAM / 8 B"),
    }
)

_PJ = 1e-12  # joules per picojoule


def op_energy_j(op: str, count: ArrayLike = 1) -> float | np.ndarray:
    """Energy of ``count`` operations of one kind from Horowitz's 45 nm table.

    ``E = count * e_op``, with ``e_op`` in pJ converted to J. Besides the table's names (``"fp32_mult"``,
    ``"int8_add"``, ``"sram_64bit_32kb"``, ``"dram_64bit_low"`` ...) this accepts the derived multiply-adds
    ``"<dtype>_fma" = <dtype>_mult + <dtype>_add`` (fp32: 3.7 + 0.9 = 4.6 pJ) and ``"dram_64bit"``, the low end of
    the DRAM range (1300 pJ) used by default in :func:`energy_estimate`.

    Parameters
    ----------
    op : str
        Operation name; an unknown name raises ``ValueError`` listing the known ones.
    count : float or array_like
        Number of operations, finite and >= 0.

    Returns
    -------
    float or ndarray
        Energy in joules.

    References
    ----------
    M. Horowitz, ISSCC 2014 (45 nm, 0.9 V); see ``HOROWITZ_SOURCE``.

    Examples
    --------
    >>> op_energy_j("fp32_mult") * 1e12
    3.7
    >>> round(op_energy_j("fp32_fma") * 1e12, 6)   # multiply + add
    4.6
    >>> op_energy_j("dram_64bit", 1e6)   # a million 64-bit DRAM reads: 1.3 mJ
    0.0013
    """
    key = v.choice(op, "op", sorted(_OPS))
    n = v.nonnegative(count, "count", "operations")
    return v.scalar_or_array(n * (_OPS[key] * _PJ))


def _dtype(dtype: str) -> str:
    if isinstance(dtype, str) and dtype.strip().lower() in ("bf16", "tf32", "fp64", "fp8", "int4"):
        raise ValueError(
            f"dtype {dtype!r} is not in Horowitz's 45 nm table, which has {list(_DTYPES)}; for bf16 the nearest "
            "entry is fp16 (same 16-bit width): pass dtype='fp16' and report the result as an estimate"
        )
    return v.choice(dtype, "dtype", _DTYPES)


def _fmt_j(energy_j: float) -> str:
    """Format joules with an SI prefix for display (pJ to J)."""
    return format_si(energy_j, "J", 4, prefixes=("p", ""))


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy of a workload split into compute and data movement, with the figures used.

    All energies are in joules; fields are floats for scalar inputs and arrays when the inputs were arrays.
    """

    flops: float | np.ndarray  # FLOPs (an FMA counts 2)
    bytes_moved: float | np.ndarray  # bytes read from / written to ``memory``
    dtype: str
    memory: str
    energy_per_flop_j: float  # (mult + add) / 2 for ``dtype``
    energy_per_byte_j: float  # the 64-bit read energy of ``memory`` / 8
    compute_j: float | np.ndarray  # flops * energy_per_flop_j
    movement_j: float | np.ndarray  # bytes_moved * energy_per_byte_j
    total_j: float | np.ndarray  # compute_j + movement_j
    movement_to_compute_ratio: float | np.ndarray  # movement_j / compute_j (inf when flops = 0)
    source: str = HOROWITZ_SOURCE

    @property
    def formula(self) -> str:
        """The model in one line, symbols and units."""
        return (
            "E [J] = flops [FLOP] * e_flop [J/FLOP] + bytes_moved [B] * e_byte [J/B], "
            "e_flop = (e_mult + e_add) / 2, e_byte = e_64bit_read / 8"
        )

    def to_text(self) -> str:
        """How the numbers were obtained, with the figures and the arithmetic written out."""
        mult, add = HOROWITZ_45NM_PJ[f"{self.dtype}_mult"], HOROWITZ_45NM_PJ[f"{self.dtype}_add"]
        byte_pj, byte_how = MEMORY_LEVELS[self.memory]
        lines = [
            f"e_flop = ({mult:g} pJ mult + {add:g} pJ add) / 2 = {self.energy_per_flop_j / _PJ:.4g} pJ/FLOP "
            f"({self.dtype}; one FMA = {mult + add:.4g} pJ = 2 FLOPs)",
            f"e_byte = {byte_how} = {byte_pj:.4g} pJ/B ({self.memory})",
        ]
        if np.ndim(self.total_j) == 0:  # scalar inputs: every energy is a 0-d value, float() is exact
            compute_j, movement_j, total_j = float(self.compute_j), float(self.movement_j), float(self.total_j)
            lines += [
                f"compute  = {self.flops:.4g} FLOP * {self.energy_per_flop_j / _PJ:.4g} pJ = {_fmt_j(compute_j)}",
                f"movement = {self.bytes_moved:.4g} B * {byte_pj:.4g} pJ = {_fmt_j(movement_j)}",
                f"total    = {_fmt_j(total_j)}; movement / compute = {self.movement_to_compute_ratio:.4g}x",
            ]
        else:
            lines.append(
                f"compute = flops * e_flop, movement = bytes_moved * e_byte, arrays of shape {np.shape(self.total_j)}"
            )
        lines.append(f"source: {self.source}")
        return wrap_text("\n".join(lines))

    def __str__(self) -> str:
        return self.to_text()


def energy_estimate(
    flops: ArrayLike, bytes_moved: ArrayLike, dtype: str = "fp32", memory: str = "dram"
) -> EnergyEstimate:
    """Estimate the energy of a workload from its FLOPs and bytes moved (45 nm per-operation energies).

    ``E_compute = flops * (e_mult + e_add) / 2``, ``E_movement = bytes_moved * e_read64 / 8``,
    ``E_total = E_compute + E_movement``, ``ratio = E_movement / E_compute``.

    Parameters
    ----------
    flops : float or array_like
        Floating-point operations (an FMA counts 2; integer ops for int dtypes), finite and >= 0.
    bytes_moved : float or array_like
        Bytes moved to or from ``memory``, finite and >= 0. Not both zero.
    dtype : {"fp32", "fp16", "int32", "int8"}
        Arithmetic type; bf16, tf32, fp64 are not in the table and raise ``ValueError`` (use fp16 as an estimate).
    memory : {"dram", "dram_high", "sram_1mb", "sram_32kb", "sram_8kb"}
        Where the bytes come from; "dram" is the low end of the 1300-2600 pJ range (see the module notes).

    Returns
    -------
    EnergyEstimate
        Compute, movement and total energy in joules, their ratio, the per-FLOP and per-byte energies used, and a
        ``to_text()`` that shows the arithmetic.

    References
    ----------
    M. Horowitz, ISSCC 2014; S. Han et al., NeurIPS 2015 (Table 1) for the per-32-bit DRAM figure.

    Examples
    --------
    An fp32 elementwise add of two 1M-element vectors: 1e6 FLOPs, 12 MB moved from DRAM.

    >>> est = energy_estimate(1e6, 12e6)
    >>> round(est.energy_per_flop_j * 1e12, 6), est.energy_per_byte_j * 1e12
    (2.3, 162.5)
    >>> round(est.movement_to_compute_ratio)
    848
    >>> for line in est.to_text().splitlines()[:2]:
    ...     print(line)
    e_flop = (3.7 pJ mult + 0.9 pJ add) / 2 = 2.3 pJ/FLOP (fp32; one FMA = 4.6
      pJ = 2 FLOPs)
    """
    key = _dtype(dtype)
    level = v.choice(memory, "memory", list(MEMORY_LEVELS))
    f = v.nonnegative(flops, "flops", "FLOP")
    b = v.nonnegative(bytes_moved, "bytes_moved", "bytes")
    f, b = v.broadcast(flops=f, bytes_moved=b)
    if ((f == 0) & (b == 0)).any():
        raise ValueError("flops and bytes_moved must not both be 0 (in FLOP and bytes): the ratio is undefined")
    e_flop_j = _FMA_PJ[key] / 2 * _PJ
    e_byte_j = MEMORY_LEVELS[level][0] * _PJ
    compute_j, movement_j = f * e_flop_j, b * e_byte_j
    with np.errstate(divide="ignore"):  # flops = 0 with bytes > 0: movement is infinitely larger
        ratio = movement_j / compute_j
    s = v.scalar_or_array
    return EnergyEstimate(
        flops=s(f),
        bytes_moved=s(b),
        dtype=key,
        memory=level,
        energy_per_flop_j=e_flop_j,
        energy_per_byte_j=e_byte_j,
        compute_j=s(compute_j),
        movement_j=s(movement_j),
        total_j=s(compute_j + movement_j),
        movement_to_compute_ratio=s(ratio),
    )
