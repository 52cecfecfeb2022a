"""efflab: the physics of ML-systems efficiency, as code you can test and measure with.

The core (the laws: roofline, energy, Amdahl, Pareto, hardware catalog, D·A·M diagnosis) needs numpy alone and is
imported here eagerly. The measuring instruments need torch and are imported on first use, so ``import efflab`` works on
a machine with numpy only.

Layout
------
Six layers, lowest first. A module imports only modules of its own layer or lower ones, lazy imports inside functions
included, and no two modules import each other (``tests/test_layering.py`` checks both from the import graph). Each
module has one job:

1. **foundations** -- ``_validate`` (argument checks that name the argument, its unit and range; ``broadcast``),
   ``_sysinfo`` (what /proc and /sys report: cache sizes), ``style`` (the one SI formatter ``format_si``, text
   wrapping at the book's width, the colour palette, ``Table``).
2. **laws** (numpy only) -- ``opcost`` (FLOPs and bytes of an op; arithmetic intensity), ``roofline`` (iron law,
   regimes, ``Roofline``), ``pareto``, ``amdahl``, ``energy`` (the energy-movement model), ``dam`` (the D·A·M
   diagnosis), ``claims`` (the verdict vocabulary every measured sentence is checked with).
3. **machine** -- ``hardware`` (datasheet catalog, CPU estimate, which spec fits a device), ``timing`` (``benchmark``,
   ``timer``, ``torch_threads``: the one place threads are pinned), ``energy_meter`` (NVML/RAPL), ``ceilings``
   (measured roofline, cached per device by ``machine_roofline``), ``profile`` (per-op FLOPs, bytes and time).
4. **experiments** (one chapter and its lab each) -- ``roofline_cases`` (datasheet cases: kernel catalog, memory
   wall, decode floor), ``op_bench`` (measured ops), ``roofline_claims`` (what chapter 3 and lab 1 claim about
   them), ``kernels`` (the old name of the three, kept as a facade), ``compress`` (chapter 2, lab 2), ``fusion``
   (chapter 4, lab 3), ``pipeline`` (chapter 5, lab 4), ``scenarios`` (chapter 6, lab 5).
5. **presentation** -- ``plots`` (every matplotlib figure), ``widgets`` (every ipywidgets explorer).
6. **tools** -- this package's ``__init__``, ``__main__``, ``cli``, ``doctor``, ``notebooks``, ``_sphinx`` (the
   book's build hooks), ``grading`` (assign, sandboxed grading, gradebook).

A name that moved up to the presentation layer stays importable from its old module through a lazy alias table
(``_MOVED``), so notebooks written against the old home keep working; new code imports from the home.
"""

from __future__ import annotations

import importlib

from efflab.amdahl import (
    amdahl_limit,
    amdahl_speedup,
    gustafson_speedup,
    karp_flatt,
    pipeline_speedup,
    pipeline_time_s,
    required_speedup,
)
from efflab.dam import diagnose
from efflab.doctor import doctor
from efflab.energy import energy_estimate, op_energy_j
from efflab.hardware import Device, detect, get_device
from efflab.opcost import (
    OpCost,
    attention_cost,
    conv2d_cost,
    elementwise_cost,
    embedding_cost,
    layernorm_cost,
    matmul_cost,
    softmax_cost,
)
from efflab.pareto import hypervolume, knee_point, pareto_front, pareto_mask, pareto_ranks
from efflab.roofline import (
    Ceiling,
    Roofline,
    arithmetic_intensity,
    attainable_flops_per_s,
    classify,
    iron_law_time_s,
    remedies,
    ridge_point,
)

__version__ = "0.1.0"

# Public names that need torch (or other optional packages): name -> module that defines it.
_LAZY = {
    "benchmark": "efflab.timing",
    "Measurement": "efflab.timing",
    "timer": "efflab.timing",
    "measure_ceilings": "efflab.ceilings",
    "profile_ops": "efflab.profile",
    "EnergyMeter": "efflab.energy_meter",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'efflab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Ceiling",
    "Device",
    "OpCost",
    "Roofline",
    "amdahl_limit",
    "amdahl_speedup",
    "arithmetic_intensity",
    "attainable_flops_per_s",
    "attention_cost",
    "classify",
    "conv2d_cost",
    "detect",
    "diagnose",
    "doctor",
    "elementwise_cost",
    "embedding_cost",
    "energy_estimate",
    "get_device",
    "gustafson_speedup",
    "hypervolume",
    "iron_law_time_s",
    "karp_flatt",
    "knee_point",
    "layernorm_cost",
    "matmul_cost",
    "op_energy_j",
    "pareto_front",
    "pareto_mask",
    "pareto_ranks",
    "pipeline_speedup",
    "pipeline_time_s",
    "remedies",
    "required_speedup",
    "ridge_point",
    "softmax_cost",
    *_LAZY,
]
