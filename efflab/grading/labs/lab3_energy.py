"""Lab 3, "The energy ledger": one inference split into movement and compute, fusion's bytes, and what int8 changes.

Master notebook ``labs/masters/lab3_energy.ipynb``; student notebook ``labs/lab3_energy.ipynb`` (``efflab assign``).
Function questions are checked against :func:`efflab.energy.energy_estimate` and
:func:`efflab.roofline.elementwise_cost` on hidden inputs; derived questions are recomputed from the profile totals
and times the student's notebook recorded.

Energy model (stated in the notebook): Horowitz's 45 nm figures, a FLOP is half a multiply-add
(``e_flop = (e_mult + e_add) / 2`` for the dtype), every byte priced at the low-end DRAM figure
(``1300 pJ per 64-bit read / 8 = 162.5 pJ/B``).
"""

from __future__ import annotations

import numpy as np

from efflab.energy import energy_estimate
from efflab.grading.spec import Case, Lab, Question
from efflab.roofline import elementwise_cost

_ENERGY_DTYPES = ("fp32", "fp16", "int32", "int8")  # the dtypes with a multiply and an add in Horowitz's table
INT8_BYTES_FACTOR = 4  # fp32 -> int8 storage: 4 bytes per element become 1


def energy_split_j(flops, bytes_moved, dtype):
    """``[compute_j, movement_j]``: ``flops * (e_mult + e_add) / 2`` and ``bytes * 162.5 pJ`` (DRAM, low end)."""
    est = energy_estimate(flops, bytes_moved, dtype=dtype, memory="dram")
    return np.stack([np.asarray(est.compute_j, float), np.asarray(est.movement_j, float)])


def chain_bytes(k, numel, dtype_bytes, extra_inputs):
    """``[unfused, fused]`` compulsory bytes of a chain of ``k`` elementwise ops on ``numel`` elements.

    Each op reads the previous result plus ``extra_inputs`` tensors of its own and writes one result. Unfused, every op
    is its own kernel: ``k * (2 + e) * n * s``. Fused into one kernel: the input, the ``k * e`` extra tensors and the
    final result cross memory once: ``(2 + k * e) * n * s``.
    """
    per_op = elementwise_cost(numel, dtype_bytes, 1, inputs=1 + extra_inputs).bytes_moved
    fused = elementwise_cost(numel, dtype_bytes, k, inputs=1 + k * extra_inputs).bytes_moved
    return np.array([k * per_op, fused])


def _ledger(op_flops, op_bytes, dtype="fp32", bytes_factor=1):
    est = energy_estimate(np.asarray(op_flops, float), np.asarray(op_bytes, float) / bytes_factor, dtype=dtype)
    return float(np.sum(est.compute_j)), float(np.sum(est.movement_j))


def movement_share(op_flops, op_bytes):
    """Share of the inference's modelled energy spent moving data: ``sum(E_move) / sum(E_move + E_compute)``."""
    compute_j, movement_j = _ledger(op_flops, op_bytes)
    return movement_j / (compute_j + movement_j)


def movement_to_compute(op_flops, op_bytes):
    """``sum(E_move) / sum(E_compute)`` of the inference (fp32, DRAM)."""
    compute_j, movement_j = _ledger(op_flops, op_bytes)
    return movement_j / compute_j


def int8_energy_ratio(op_flops, op_bytes):
    """Modelled energy with every tensor in int8 (a quarter of the bytes, int8 arithmetic) over the fp32 energy."""
    fp32 = sum(_ledger(op_flops, op_bytes))
    int8 = sum(_ledger(op_flops, op_bytes, "int8", INT8_BYTES_FACTOR))
    return int8 / fp32


def bytes_saved(chain_unfused_bytes, chain_fused_bytes):
    """Bytes fusion saved, per chain: ``unfused - fused``."""
    return np.asarray(chain_unfused_bytes, float) - np.asarray(chain_fused_bytes, float)


def fusion_speedup(chain_unfused_time_s, chain_fused_time_s):
    """Measured speed-up of fusion, per chain: ``t_unfused / t_fused``."""
    return np.asarray(chain_unfused_time_s, float) / np.asarray(chain_fused_time_s, float)


def matvec_bandwidth(matvec_bytes, matvec_time_s):
    """Effective bandwidth of each matrix-vector variant: ``bytes / time`` (bytes/s)."""
    return np.asarray(matvec_bytes, float) / np.asarray(matvec_time_s, float)


def _plausible_ledger(op_flops, op_bytes):
    f, b = np.ravel(op_flops), np.ravel(op_bytes)
    if f.shape != b.shape or f.size < 3:
        return "record at least 3 ops, with op_flops and op_bytes of the same length"
    if not (np.all(np.isfinite(f)) and np.all(f >= 0) and np.all(b > 0) and np.all(np.isfinite(b))):
        return "FLOPs must be >= 0 and bytes > 0 (leave out ops that move nothing, such as views)"
    if f.sum() <= 0:
        return "the recorded ops do no arithmetic at all"
    return ""


def _plausible_pairs(first, second, what, unit):
    a, b = np.ravel(first), np.ravel(second)
    if a.shape != b.shape or a.size < 1:
        return f"record the {what} of each variant, both arrays of the same length"
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(a > 0) and np.all(b > 0)):
        return f"the recorded {what} must be positive numbers ({unit})"
    return ""


def _energy_cases(rng):
    # scalars and arrays over the range one op to one model (1e3..1e13), an op with no arithmetic (an embedding), and
    # every dtype of the table
    cases = [Case((0.0, 1e6, "fp32")), Case((1.4e10, 1.4e10, "fp16"))]
    for dtype in _ENERGY_DTYPES:
        cases.append(Case((float(10 ** rng.uniform(3, 13)), float(10 ** rng.uniform(3, 12)), dtype)))
        size = int(rng.integers(2, 12))
        cases.append(Case((10 ** rng.uniform(3, 13, size), 10 ** rng.uniform(3, 12, size), dtype)))
    return cases


def _chain_cases(rng):
    # a single op (fusion saves nothing), the GELU-sized chain, residual-style extra inputs, then random chains
    cases = [Case((1, 1000, 4, 0)), Case((8, 1 << 22, 4, 0)), Case((3, 4096, 2, 2))]
    for _ in range(9):
        cases.append(
            Case(
                (
                    int(rng.integers(1, 13)),
                    int(10 ** rng.uniform(0, 9)),
                    int(rng.choice((1, 2, 4, 8))),
                    int(rng.integers(0, 3)),
                )
            )
        )
    return cases


LAB = Lab(
    lab_id="lab3_energy",
    title="Lab 3: The energy ledger",
    seed=20250303,
    # efflab grade's defaults for this lab: its master ran alone in the sandbox in 8.9 s with a 1761 MB
    # peak address space (benchmarks/bench_grading.py --limits, 2-core build machine, 2026-12-03): 120 s
    # and 4096 MB leave 13x and 2.3x room for slower machines and --jobs sharing the cores.
    timeout_s=120.0,
    memory_mb=4096,
    questions=(
        Question(
            id="q1",
            name="energy_split_j",
            points=2,
            reference=energy_split_j,
            public=(Case((2e9, 1e9, "fp32")), Case((np.array([1e6, 0.0]), np.array([4e6, 8e6]), "int8"))),
            hidden=_energy_cases,
            partial=True,
            hint="e_flop = (mult + add) / 2 pJ for the dtype; e_byte = 1300 pJ / 8 bytes; return "
            "np.array([flops * e_flop, bytes * e_byte]) in joules (1 pJ = 1e-12 J)",
        ),
        Question(
            id="q2",
            name="movement_share",
            kind="derived",
            data=("op_flops", "op_bytes"),
            points=1,
            reference=movement_share,
            validate_data=_plausible_ledger,
            hint="sum the movement energy over the ops, and divide by the sum of movement and compute energy",
        ),
        Question(
            id="q3",
            name="movement_to_compute",
            kind="derived",
            data=("op_flops", "op_bytes"),
            points=1,
            reference=movement_to_compute,
            validate_data=_plausible_ledger,
            hint="total movement energy divided by total compute energy (fp32 arithmetic, DRAM bytes)",
        ),
        Question(
            id="q4",
            name="chain_bytes",
            points=2,
            reference=chain_bytes,
            public=(Case((4, 1 << 22, 4, 0)), Case((2, 1000, 2, 1))),
            hidden=_chain_cases,
            partial=True,
            hint="unfused, each op reads 1 + extra_inputs tensors and writes 1; fused, the input, all k * extra_inputs "
            "extra tensors and the final output cross memory once; multiply by numel * dtype_bytes",
        ),
        Question(
            id="q5",
            name="bytes_saved",
            kind="derived",
            data=("chain_unfused_bytes", "chain_fused_bytes"),
            points=1,
            reference=bytes_saved,
            validate_data=lambda a, b: _plausible_pairs(a, b, "profiled bytes", "bytes"),
            hint="bytes saved = unfused bytes - fused bytes, one value per chain (a numpy array)",
        ),
        Question(
            id="q6",
            name="fusion_speedup",
            kind="derived",
            data=("chain_unfused_time_s", "chain_fused_time_s"),
            points=1,
            reference=fusion_speedup,
            validate_data=lambda a, b: _plausible_pairs(a, b, "times", "s"),
            hint="speed-up = unfused time / fused time, one value per chain",
        ),
        Question(
            id="q7",
            name="int8_energy_ratio",
            kind="derived",
            data=("op_flops", "op_bytes"),
            points=2,
            reference=int8_energy_ratio,
            validate_data=_plausible_ledger,
            hint="price the same FLOPs with int8 arithmetic and a quarter of the bytes, sum, and divide by the fp32 "
            "total",
        ),
        Question(
            id="q8",
            name="matvec_bandwidth_bytes_per_s",
            kind="derived",
            data=("matvec_bytes", "matvec_time_s"),
            points=1,
            reference=matvec_bandwidth,
            validate_data=lambda a, b: _plausible_pairs(a, b, "bytes and times", "bytes, s"),
            hint="effective bandwidth = profiled bytes / measured time, one value per variant",
        ),
    ),
)
