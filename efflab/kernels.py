"""The old name of four homes, kept so that notebooks and code written against ``efflab.kernels`` keep working.

``efflab.kernels`` once held four unrelated things under a name that said none of them. Each now lives in a module
whose name says what it holds; new code imports from there, not from here:

- :mod:`efflab.roofline_cases` -- cases on datasheets, no measurement: ``kernel_catalog``, ``KernelCase``,
  ``unit_classify``, ``UnitClassification``, ``memory_wall``, ``MemoryWallRow``, ``annual_growth``,
  ``decode_floor``, ``DecodeFloor``.
- :mod:`efflab.op_bench` -- measured ops: ``Workload``, ``MeasuredOp``, ``measure_op``, ``measure_ops``,
  ``regime_workloads``, ``kernel_workloads``, ``num_threads`` (the same object as
  :func:`efflab.timing.torch_threads`); the bound a measured op is held to: ``resident_level``, ``op_bound``,
  ``OpBound``; and the re-timings a claim cites: ``threads_scale_now``, ``batching_flat_now``, ``speed_drift``.
- :mod:`efflab.roofline_claims` -- claims about measured ops: ``more_cores_claim``, ``bound_claim``,
  ``proportional_claim``, ``flat_claim``, ``regimes_claim``, ``lever_claims`` and their thresholds.
- ``Table`` -> :mod:`efflab.style`; ``ceiling_table`` -> :mod:`efflab.ceilings`.

Every name below is the object of its home (``efflab.kernels.Table is efflab.style.Table``), so patching a function
for a test means patching it in its home.
"""

from __future__ import annotations

from efflab.ceilings import ceiling_table
from efflab.op_bench import (
    MeasuredOp,
    OpBound,
    Workload,
    batching_flat_now,
    kernel_workloads,
    measure_op,
    measure_ops,
    num_threads,
    op_bound,
    regime_workloads,
    resident_level,
    speed_drift,
    threads_scale_now,
)
from efflab.roofline_cases import (
    DecodeFloor,
    KernelCase,
    MemoryWallRow,
    UnitClassification,
    annual_growth,
    decode_floor,
    kernel_catalog,
    memory_wall,
    unit_classify,
)
from efflab.roofline_claims import (
    bound_claim,
    flat_claim,
    lever_claims,
    more_cores_claim,
    proportional_claim,
    regimes_claim,
)
from efflab.style import Table

__all__ = [
    "DecodeFloor",
    "KernelCase",
    "MeasuredOp",
    "MemoryWallRow",
    "UnitClassification",
    "Table",
    "Workload",
    "annual_growth",
    "ceiling_table",
    "decode_floor",
    "kernel_catalog",
    "kernel_workloads",
    "measure_op",
    "measure_ops",
    "memory_wall",
    "num_threads",
    "regime_workloads",
    "more_cores_claim",
    "threads_scale_now",
    "batching_flat_now",
    "OpBound",
    "bound_claim",
    "flat_claim",
    "lever_claims",
    "op_bound",
    "proportional_claim",
    "regimes_claim",
    "speed_drift",
    "resident_level",
    "unit_classify",
]
