"""One way to measure every variant: bytes as stored when run, FLOPs its kernels execute, test accuracy and the
median latency of one batch, gathered in a :class:`Variant`.

Each kind of layer a variant can hold (fp Linear, int8 Linear, :class:`~efflab.compress.precision.Int4Linear`,
:class:`~efflab.compress.prune.CsrLinear`) is recognised with ``isinstance``; sizes count the tensors that layer
actually computes with. torch is imported inside the functions.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from efflab import _validate as v
from efflab.compress.model import _DTYPES, DigitsData, _torch_dtype, evaluate
from efflab.timing import torch_threads


def _tensor_bytes(t) -> int:
    """Storage bytes of one tensor: dense ``numel * itemsize``; int8 quantised: codes + fp32 scale and int32 zero
    point per tensor (or per channel); CSR: values + column indices + row pointers."""
    import torch

    if t is None:
        return 0
    if t.is_quantized:
        per_tensor = t.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric)
        return t.numel() * t.element_size() + 8 * (1 if per_tensor else len(t.q_per_channel_scales()))
    if t.layout == torch.sparse_csr:
        return sum(_tensor_bytes(p) for p in (t.values(), t.col_indices(), t.crow_indices()))
    return t.numel() * t.element_size()


def model_bytes(model) -> int:
    """Bytes of the tensors a model computes with (weights, biases, scales, indices), as it is stored when run.

    A pruned dense model counts its zeros (they are stored and multiplied); see
    :func:`~efflab.compress.prune.csr_bytes` for the sparse size.

    Examples
    --------
    >>> from efflab.compress import make_mlp, quantize_int4
    >>> model_bytes(make_mlp((64, 256, 256, 10)))  # (64*256 + 256 + 256*256 + 256 + 256*10 + 10) * 4
    340008
    >>> model_bytes(quantize_int4(make_mlp((64, 10))))  # 10*32 packed + 10*2 fp16 scales * 2 + 10 * 4 bias
    400
    """
    import torch.ao.nn.quantized as nnq
    from torch.ao.nn.quantized.modules.linear import LinearPackedParams

    from efflab.compress.precision import Int4Linear
    from efflab.compress.prune import CsrLinear

    total = 0
    for m in model.modules():
        if isinstance(m, Int4Linear):
            tensors = [m.packed, m.scale, m.bias]
        elif isinstance(m, CsrLinear):
            tensors = [m.weight, m.bias]
        elif isinstance(m, LinearPackedParams):  # counted by its parent, the int8 Linear
            continue
        elif isinstance(m, nnq.Linear):  # int8 Linear (torch.ao, dynamic included): weight()/bias() unpack the codes
            tensors = [m.weight(), m.bias()]
        else:
            tensors = [*m.parameters(recurse=False), *m.buffers(recurse=False)]
        total += sum(_tensor_bytes(t) for t in tensors)
    return int(total)


def _executed_flops(model) -> float:
    """Matmul FLOPs per sample of the kernels a model runs: dense layers ``2 * in * out``, CSR ``2 * nnz``."""
    import torch
    import torch.ao.nn.quantized as nnq

    from efflab.compress.precision import Int4Linear
    from efflab.compress.prune import CsrLinear

    total = 0.0
    for m in model.modules():
        if isinstance(m, CsrLinear):
            total += 2.0 * m.weight.values().numel()  # a CSR kernel does one FMA per stored non-zero
        elif isinstance(m, (torch.nn.Linear, nnq.Linear, Int4Linear)):  # fp, int8 and int4 Linear: dense kernels
            total += 2.0 * m.in_features * m.out_features
    return total


def measure_latency(
    model, data: DigitsData, batch_size: int = 256, dtype: str = "fp32", *, device: str = "cpu", threads=1, **bench
):
    """Time one forward pass on the first ``batch_size`` test images with :func:`efflab.timing.benchmark`.

    On "cpu" torch runs on ``threads`` threads while timing (None: as configured); on "cuda" a copy of the model is
    moved to the GPU and CUDA events time it. ``bench`` goes to ``benchmark`` (default ``min_run_s=0.1``). Returns
    the :class:`efflab.timing.Measurement`; report its ``median_s``.

    Examples
    --------
    >>> from efflab.compress import load_digits_data, make_mlp
    >>> m = measure_latency(make_mlp((64, 10)), load_digits_data(), 16, min_run_s=0.001)
    >>> m.median_s > 0, m.device
    (True, 'cpu')
    """
    import torch

    from efflab.timing import benchmark

    b = v.integer(batch_size, "batch_size", "images", low=1, high=data.n_test)
    x = data.x_test[:b].to(_torch_dtype(dtype)).contiguous()
    if device != "cpu":
        model, x = copy.deepcopy(model).to(device), x.to(device)
    with torch.inference_mode(), torch_threads(threads if device == "cpu" else None):
        return benchmark(model, x, **{"min_run_s": 0.1, **bench})


@dataclass(frozen=True)
class Variant:
    """One measured model variant: test accuracy, storage bytes, median latency of one batch, and how it was made.

    ``size_bytes`` counts the tensors the variant stores and runs with (a pruned dense model keeps its zeros);
    ``sparse_size_bytes`` is what CSR storage of the same weights takes; ``flops_per_sample`` counts the matmul FLOPs
    its kernels execute per image; ``training_flops`` is what making it cost beyond the trained teacher
    (fine-tuning, or the whole distillation); ``accuracy_before_finetune`` is the accuracy right after pruning;
    ``weights_removed`` the fraction of the original model's weights that pruning removed.
    """

    name: str
    family: str
    accuracy: float
    size_bytes: int
    latency_s: float
    flops_per_sample: float
    batch_size: int
    dtype: str = "fp32"
    sparse_size_bytes: int | None = None
    training_flops: float = 0.0
    accuracy_before_finetune: float | None = None
    weights_removed: float = 0.0
    model: Any = field(default=None, repr=False, compare=False)
    measurement: Any = field(default=None, repr=False, compare=False)

    @property
    def error(self) -> float:
        """``1 - accuracy``: lower is better, like bytes and seconds."""
        return 1.0 - self.accuracy

    def as_dict(self) -> dict:
        """The measured figures as a plain dict (what :func:`efflab.widgets.pareto_explorer` takes), no model."""
        return {
            "name": self.name,
            "family": self.family,
            "accuracy": self.accuracy,
            "size_bytes": self.size_bytes,
            "latency_s": self.latency_s,
            "flops_per_sample": self.flops_per_sample,
            "sparse_size_bytes": self.sparse_size_bytes,
            "training_flops": self.training_flops,
        }


def measure_variant(
    name: str,
    model,
    data: DigitsData,
    *,
    family: str,
    dtype: str = "fp32",
    batch_size: int = 256,
    sparse_size_bytes: int | None = None,
    training_flops: float = 0.0,
    accuracy_before_finetune: float | None = None,
    weights_removed: float = 0.0,
    **bench,
) -> Variant:
    """Measure accuracy (:func:`~efflab.compress.model.evaluate`), bytes (:func:`model_bytes`) and latency
    (:func:`measure_latency`).

    Examples
    --------
    >>> from efflab.compress import load_digits_data, make_mlp
    >>> d = load_digits_data()
    >>> var = measure_variant("tiny", make_mlp((64, 10)), d, family="demo", min_run_s=0.001)
    >>> var.size_bytes, var.flops_per_sample, var.latency_s > 0
    (2600, 1280.0, True)
    """
    m = measure_latency(model, data, batch_size, dtype, **bench)
    return Variant(
        name=str(name),
        family=str(family),
        accuracy=evaluate(model, data, dtype),
        size_bytes=model_bytes(model),
        latency_s=m.median_s,
        flops_per_sample=_executed_flops(model),
        batch_size=int(batch_size),
        dtype=v.choice(dtype, "dtype", _DTYPES),
        sparse_size_bytes=sparse_size_bytes,
        training_flops=float(v.nonnegative(training_flops, "training_flops", "FLOP")),
        accuracy_before_finetune=accuracy_before_finetune,
        weights_removed=float(v.fraction(weights_removed, "weights_removed")),
        model=model,
        measurement=m,
    )


def retime(variants, data: DigitsData, rounds: int = 3, **bench) -> list[Variant]:
    """The same variants with their latencies measured again, interleaved: ``rounds`` passes over all of them, each
    keeping its fastest median (a shared machine's speed drifts between measurements taken minutes apart, and a
    comparison of variants needs them measured side by side).

    Examples
    --------
    >>> from efflab.compress import load_digits_data, make_mlp
    >>> d = load_digits_data()
    >>> vs = [measure_variant(n, make_mlp(w), d, family="demo", min_run_s=0.001) for n, w in (("a", (64, 10)),
    ...       ("b", (64, 32, 10)))]
    >>> [x.name for x in retime(vs, d, rounds=2, min_run_s=0.001)]
    ['a', 'b']
    """
    variants = list(variants)
    if not all(isinstance(x, Variant) and x.model is not None for x in variants):
        raise TypeError("variants must be measured Variant objects that still hold their model")
    rounds = v.integer(rounds, "rounds", "passes", low=1)
    best = [float("inf")] * len(variants)
    for _ in range(rounds):
        for i, x in enumerate(variants):
            best[i] = min(best[i], measure_latency(x.model, data, x.batch_size, x.dtype, **bench).median_s)
    return [dataclasses.replace(x, latency_s=t) for x, t in zip(variants, best, strict=True)]
