"""efflab: the physics of ML-systems efficiency, as code you can test and measure with.

The core (the laws: roofline, energy, Amdahl, Pareto, hardware catalog, D·A·M diagnosis) needs numpy alone and is
imported here eagerly. The measuring instruments need torch and are imported on first use, so ``import efflab`` works on
a machine with numpy only.
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
