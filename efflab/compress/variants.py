"""The chapter's families of variants, each made from one trained model and measured the same way
(:func:`~efflab.compress.measure.measure_variant`): precision, unstructured pruning, structured pruning, distillation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from efflab.compress.distillation import DISTILL_SETTINGS, distill
from efflab.compress.measure import Variant, measure_variant, model_bytes
from efflab.compress.model import DigitsData, _n_weights, evaluate, train, widths_of
from efflab.compress.precision import INT4_GROUP_SIZE, cast, quantize_int4, quantize_int8_dynamic
from efflab.compress.prune import magnitude_prune, structured_prune, to_csr


def precision_variants(model, data: DigitsData, *, group_size: int = INT4_GROUP_SIZE, **bench) -> list[Variant]:
    """fp32 (the model itself), fp16, bf16, int8 dynamic and int4 weight-only variants, each measured."""
    out = [measure_variant("fp32", model, data, family="baseline", **bench)]
    for dt in ("fp16", "bf16"):
        out.append(measure_variant(dt, cast(model, dt), data, family="precision", dtype=dt, **bench))
    out.append(measure_variant("int8 dynamic", quantize_int8_dynamic(model), data, family="quantization", **bench))
    int4 = quantize_int4(model, group_size)
    out.append(measure_variant("int4 weight-only", int4, data, family="quantization", **bench))
    return out


def unstructured_variants(
    model, data: DigitsData, sparsities=(0.5, 0.75, 0.9, 0.95), *, finetune_epochs: int = 10, csr: bool = True, **bench
) -> list[Variant]:
    """Per sparsity: magnitude-pruned, fine-tuned with the mask, run dense; and (``csr``) the same weights as CSR."""
    out = []
    for s in sparsities:
        pruned, masks = magnitude_prune(model, s)
        before = evaluate(pruned, data)
        ft = train(pruned, data, epochs=finetune_epochs, masks=masks)
        sparse = to_csr(pruned)
        kw: dict[str, Any] = {"family": "unstructured", "training_flops": ft.flops, "accuracy_before_finetune": before}
        kw["weights_removed"] = sum(int((m == 0).sum()) for m in masks) / _n_weights(model)
        out.append(
            measure_variant(f"pruned {s:.0%}", pruned, data, sparse_size_bytes=model_bytes(sparse), **kw, **bench)
        )
        if csr:
            out.append(measure_variant(f"pruned {s:.0%} CSR", sparse, data, **kw, **bench))
    return out


def structured_variants(
    model, data: DigitsData, keep_fractions=(0.5, 0.25, 0.125), *, finetune_epochs: int = 10, **bench
) -> list[Variant]:
    """Per fraction of hidden units kept: structurally pruned, fine-tuned, measured."""
    out = []
    for f in keep_fractions:
        pruned, _ = structured_prune(model, f)
        before = evaluate(pruned, data)
        ft = train(pruned, data, epochs=finetune_epochs)
        width = widths_of(pruned)[1]
        out.append(
            measure_variant(
                f"structured {width} units",
                pruned,
                data,
                family="structured",
                training_flops=ft.flops,
                accuracy_before_finetune=before,
                weights_removed=1 - _n_weights(pruned) / _n_weights(model),
                **bench,
            )
        )
    return out


def distilled_variant(
    teacher, data: DigitsData, widths: Sequence[int] = (64, 32, 10), *, seed: int = 0, **bench
) -> Variant:
    """A student of ``widths`` distilled from ``teacher`` (:func:`~efflab.compress.distillation.distill` with
    :data:`~efflab.compress.distillation.DISTILL_SETTINGS`), measured; its ``training_flops`` include the teacher's
    soft-target pass."""
    r = distill(teacher, data, widths, seed=seed, **DISTILL_SETTINGS)
    name = "student " + "-".join(str(w) for w in widths)
    return measure_variant(name, r.model, data, family="distillation", training_flops=r.flops, **bench)
