"""Compressed variants of one small classifier, measured: accuracy, bytes and latency (chapter 2, the Pareto frontier).

Every compression technique buys one resource with another: lower precision trades numerical accuracy for bytes,
pruning trades capacity for bytes (and for time only when the kernel can skip the removed work), distillation trades
extra training FLOPs for a cheaper model at inference. This package builds those variants of one MLP trained on
scikit-learn's bundled digits (no download) and measures each the same way, so a frontier can be drawn from real
numbers. Import every name from here (``from efflab import compress``); each lives in one submodule, by concept:

- :mod:`~efflab.compress.model` -- the model every variant is made from: ``load_digits_data`` (``DigitsData``),
  ``make_mlp``, ``train`` (``TrainResult``; fixed seeds, one thread: the accuracy is reproducible), ``evaluate``,
  ``widths_of`` and the FLOP counts ``forward_flops``, ``training_flops``;
- :mod:`~efflab.compress.precision` -- fewer bits: ``cast`` (fp16/bf16), ``quantize_int8_dynamic``
  (``torch.ao.quantization.quantize_dynamic``), ``quantize_int4`` (weight-only, two 4-bit codes per byte packed by
  ``pack_int4`` / ``unpack_int4``, one fp16 scale per group of ``INT4_GROUP_SIZE``, dequantised on the fly by the
  layer ``Int4Linear``);
- :mod:`~efflab.compress.prune` -- fewer weights: ``magnitude_prune`` (unstructured: zeros stay stored in dense
  storage, ``csr_bytes`` is the sparse size), ``to_csr`` (the same weights executed by a sparse kernel, the layer
  ``CsrLinear``), ``structured_prune`` (hidden units ranked by ``hidden_unit_norms`` removed, smaller dense layers
  rebuilt);
- :mod:`~efflab.compress.distillation` -- a smaller model taught by the larger: ``distill`` (``DISTILL_SETTINGS``), the
  labels-only control ``compare_students``, and ``break_even_inferences`` (when the extra training pays off);
- :mod:`~efflab.compress.measure` -- one way to measure them all: ``model_bytes``, ``measure_latency``,
  ``measure_variant`` -> ``Variant``, and ``retime`` (latencies measured again, side by side);
- :mod:`~efflab.compress.variants` -- the chapter's families, measured: ``precision_variants``,
  ``unstructured_variants``, ``structured_variants``, ``distilled_variant``;
- :mod:`~efflab.compress.frontier` -- the choice: ``objective_values``, ``frontier_mask``, ``best_feasible`` (the one
  choice rule: :func:`efflab.widgets.best_variant` applies it too), ``format_table``, ``variant_table``;
- :mod:`~efflab.compress.claims` -- what the chapter claims, judged on measured variants: ``precision_claim``,
  ``pruning_time_claim``, ``distillation_claim``.

Submodules import only those listed above them (``model`` at the bottom), never the presentation or tools layers.
torch is imported inside the functions, so ``import efflab.compress`` works without it; the two torch layers
``Int4Linear`` and ``CsrLinear`` are made on first access (``efflab.compress.Int4Linear`` then is the class of every
quantised layer, for ``isinstance``). Sizes count the bytes of the tensors a variant actually executes with; the CSR
figure of a pruned dense model is reported beside it, not instead of it.
"""

from __future__ import annotations

from typing import Any

from efflab.compress import precision, prune
from efflab.compress.claims import (
    DENSE_PRUNED_TIME_BAND,
    DISTILL_IMAGES,
    PRECISION_DROP_PP,
    distillation_claim,
    precision_claim,
    pruning_time_claim,
)
from efflab.compress.distillation import DISTILL_SETTINGS, break_even_inferences, compare_students, distill
from efflab.compress.frontier import best_feasible, format_table, frontier_mask, objective_values, variant_table
from efflab.compress.measure import Variant, measure_latency, measure_variant, model_bytes, retime
from efflab.compress.model import (
    DEFAULT_WIDTHS,
    DigitsData,
    TrainResult,
    _linears,  # noqa: F401 (private, kept here: the tests walk a model's Linear layers with it)
    _torch_dtype,  # noqa: F401 (private, kept here as the single module had it: dtype name -> torch dtype)
    evaluate,
    forward_flops,
    load_digits_data,
    make_mlp,
    train,
    training_flops,
    widths_of,
)
from efflab.compress.precision import (
    INT4_GROUP_SIZE,
    KNOWN_QUANTIZATION_NOTICES,
    cast,
    pack_int4,
    quantize_int4,
    quantize_int8_dynamic,
    unpack_int4,
)
from efflab.compress.prune import (
    KNOWN_CSR_NOTICE,
    csr_bytes,
    hidden_unit_norms,
    magnitude_prune,
    structured_prune,
    to_csr,
)
from efflab.compress.variants import (
    distilled_variant,
    precision_variants,
    structured_variants,
    unstructured_variants,
)

__all__ = [
    "DEFAULT_WIDTHS",
    "DENSE_PRUNED_TIME_BAND",
    "DISTILL_IMAGES",
    "DISTILL_SETTINGS",
    "DigitsData",
    "INT4_GROUP_SIZE",
    "KNOWN_CSR_NOTICE",
    "KNOWN_QUANTIZATION_NOTICES",
    "PRECISION_DROP_PP",
    "TrainResult",
    "Variant",
    "best_feasible",
    "break_even_inferences",
    "cast",
    "compare_students",
    "csr_bytes",
    "distill",
    "distillation_claim",
    "distilled_variant",
    "evaluate",
    "format_table",
    "forward_flops",
    "frontier_mask",
    "hidden_unit_norms",
    "load_digits_data",
    "magnitude_prune",
    "make_mlp",
    "measure_latency",
    "measure_variant",
    "model_bytes",
    "objective_values",
    "pack_int4",
    "precision_claim",
    "precision_variants",
    "pruning_time_claim",
    "quantize_int4",
    "quantize_int8_dynamic",
    "retime",
    "structured_prune",
    "structured_variants",
    "to_csr",
    "train",
    "training_flops",
    "unpack_int4",
    "unstructured_variants",
    "variant_table",
    "widths_of",
]

# Also importable from here, outside __all__: the torch layer classes, made on first access (they subclass
# torch.nn.Module; ``from efflab.compress import *`` must not import torch).
_TORCH_CLASSES = {"Int4Linear": precision, "CsrLinear": prune}


def __getattr__(name: str) -> Any:
    """``Int4Linear`` (:mod:`~efflab.compress.precision`) and ``CsrLinear`` (:mod:`~efflab.compress.prune`)."""
    if name in _TORCH_CLASSES:
        return getattr(_TORCH_CLASSES[name], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_TORCH_CLASSES))
