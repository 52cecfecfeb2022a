"""Compressed variants of one small classifier, measured: accuracy, bytes and latency (chapter 2, the Pareto frontier).

Every compression technique buys one resource with another: lower precision trades numerical accuracy for bytes,
pruning trades capacity for bytes (and for time only when the kernel can skip the removed work), distillation trades
extra training FLOPs for a cheaper model at inference. This module builds those variants of one MLP trained on
scikit-learn's bundled digits (no download) and measures each the same way, so a frontier can be drawn from real
numbers:

- ``load_digits_data``, ``make_mlp``, ``train`` (fixed seeds, one thread: the accuracy is reproducible);
- precision: ``cast`` (fp16/bf16), ``quantize_int8_dynamic`` (``torch.ao.quantization.quantize_dynamic``),
  ``quantize_int4`` (weight-only, two 4-bit codes per byte, one fp16 scale per group, dequantised on the fly);
- pruning: ``magnitude_prune`` (unstructured: zeros stay stored in dense storage, ``csr_bytes`` is the sparse size),
  ``to_csr`` (the same weights executed by a sparse kernel), ``structured_prune`` (hidden units removed, smaller dense
  layers rebuilt);
- distillation: ``distill`` plus the FLOP accounting ``forward_flops``, ``training_flops``, ``break_even_inferences``;
- measurement: ``model_bytes``, ``evaluate``, ``measure_latency``, ``measure_variant`` -> ``Variant``;
- the chapter's families, measured: ``precision_variants``, ``unstructured_variants``, ``structured_variants``,
  ``distilled_variant`` (and the labels-only control ``compare_students``);
- the choice: ``frontier_mask``, ``best_feasible`` (same rule as ``efflab.widgets.best_variant``), ``format_table``.

torch is imported inside the functions (``import efflab`` must not need it). Sizes count the bytes of the tensors the
variant actually executes with; the CSR figure of a pruned dense model is reported beside it, not instead of it.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise
from typing import Any

import numpy as np

from efflab import _validate as v
from efflab.pareto import pareto_mask
from efflab.timing import torch_threads

__all__ = [
    "DEFAULT_WIDTHS",
    "DISTILL_SETTINGS",
    "DigitsData",
    "INT4_GROUP_SIZE",
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
    "variant_table",
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
    "widths_of",
]

# The teacher: 64 pixels -> two hidden layers of 256 -> 10 digits. 256 wide makes one batch of 256 a ~43 MFLOP
# forward pass (tenths of a millisecond on one core), large enough that halving the work is visible in the timing.
DEFAULT_WIDTHS = (64, 256, 256, 10)
# 4-bit groups of 32 weights sharing one fp16 scale: the layout of llama.cpp's Q4_0 (4.5 bits per weight).
INT4_GROUP_SIZE = 32
_DTYPES = ("fp32", "fp16", "bf16")
# Distillation settings: chosen on 5 seeds of the 64-32-10 and 64-16-10 students (T in 1..8, alpha 0.5/0.9, lr 3e-3 /
# 1e-2); T = 2, alpha = 0.5 at lr = 1e-2 was among the best and never worse than labels alone by more than noise.
DISTILL_SETTINGS = {"temperature": 2.0, "alpha": 0.5, "lr": 1e-2, "epochs": 30}


def _torch_dtype(name: str):
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[v.choice(name, "dtype", _DTYPES)]


@dataclass(frozen=True)
class DigitsData:
    """scikit-learn's 8x8 digits, pixels scaled to [0, 1], split once with a fixed seed (torch tensors)."""

    x_train: Any = field(repr=False)
    y_train: Any = field(repr=False)
    x_test: Any = field(repr=False)
    y_test: Any = field(repr=False)

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])


def load_digits_data(test_fraction: float = 0.25, seed: int = 0) -> DigitsData:
    """Load the 1797 bundled digit images (no download) and split them at random with ``seed``.

    Parameters
    ----------
    test_fraction : float
        Fraction of the images held out for testing (0 < f < 1).
    seed : int
        Seed of the permutation.

    Examples
    --------
    >>> d = load_digits_data()
    >>> d.n_train, d.n_test, tuple(d.x_train.shape[1:])
    (1348, 449, (64,))
    """
    import torch
    from sklearn.datasets import load_digits

    f = float(v.fraction(test_fraction, "test_fraction", open_low=True, open_high=True))
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)  # pixel values are 0..16
    y = torch.tensor(digits.target, dtype=torch.int64)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(v.integer(seed, "seed")))
    n_test = round(f * len(x))
    test, tr = perm[:n_test], perm[n_test:]
    return DigitsData(x[tr], y[tr], x[test], y[test])


def make_mlp(widths: Sequence[int] = DEFAULT_WIDTHS, seed: int = 0):
    """A ``Sequential`` of Linear layers with ReLU between them, initialised from ``seed`` (global RNG untouched).

    Examples
    --------
    >>> make_mlp((64, 32, 10))
    Sequential(
      (0): Linear(in_features=64, out_features=32, bias=True)
      (1): ReLU()
      (2): Linear(in_features=32, out_features=10, bias=True)
    )
    """
    import torch

    widths = [v.integer(w, "widths", "units", low=1) for w in widths]
    if len(widths) < 2:
        raise ValueError(f"widths must list at least an input and an output size; got {widths}")
    layers: list = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(v.integer(seed, "seed"))
        for i, (a, b) in enumerate(pairwise(widths)):
            layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(widths) - 2 else [])
    return torch.nn.Sequential(*layers)


def _linears(model) -> list:
    import torch

    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)]


def _n_weights(model) -> int:
    return sum(m.weight.numel() for m in _linears(model))


def widths_of(model) -> tuple[int, ...]:
    """Layer widths of an MLP of Linear layers, input first: ``(64, 256, 256, 10)``."""
    lin = _linears(model)
    return (lin[0].in_features, *(m.out_features for m in lin))


def forward_flops(widths: Sequence[int]) -> float:
    """Matmul FLOPs of one sample's forward pass: ``F = sum_l 2 * w_l * w_(l+1)`` (an FMA is 2 FLOPs).

    Bias adds and ReLU are left out, as ``torch.utils.flop_counter.FlopCounterMode`` leaves them out.

    Examples
    --------
    >>> forward_flops((64, 256, 256, 10))
    168960.0
    """
    w = [v.integer(x, "widths", "units", low=1) for x in widths]
    return float(sum(2 * a * b for a, b in pairwise(w)))


def training_flops(widths: Sequence[int], samples: int) -> float:
    """Matmul FLOPs of training on ``samples`` examples: ``samples * (3F - 2 w_0 w_1)``.

    The backward pass of each layer costs two matmuls of the forward's size (gradient of the input and of the
    weight), except that nothing needs the gradient of the data, which saves the first layer's input-gradient matmul.
    Matches ``FlopCounterMode`` over forward + backward (tested).

    Examples
    --------
    >>> training_flops((64, 32, 10), samples=1)  # 3 * 4736 - 2 * 64 * 32
    10112.0
    """
    w = [v.integer(x, "widths", "units", low=1) for x in widths]
    n = v.integer(samples, "samples", "examples", low=0)
    return float(n * (3 * forward_flops(w) - 2 * w[0] * w[1]))


def break_even_inferences(extra_training_flops, flops_saved_per_inference):
    """Inferences after which a cheaper model repays the extra FLOPs spent making it: ``N* = C_train / dF``.

    Parameters
    ----------
    extra_training_flops : float or array_like
        FLOPs spent to obtain the cheaper model (FLOP, >= 0).
    flops_saved_per_inference : float or array_like
        Teacher's minus student's FLOPs per inference (FLOP, > 0: a model that saves nothing never repays).

    Returns
    -------
    float or ndarray
        Number of inferences (not rounded).

    Examples
    --------
    >>> break_even_inferences(1e9, 164224.0)
    6089.2...
    """
    cost = v.nonnegative(extra_training_flops, "extra_training_flops", "FLOP")
    saved = v.positive(flops_saved_per_inference, "flops_saved_per_inference", "FLOP")
    return v.scalar_or_array(cost / saved)


@dataclass(frozen=True)
class TrainResult:
    """A trained model and what training cost: examples seen and matmul FLOPs (``training_flops``)."""

    model: Any = field(repr=False)
    samples: int
    flops: float


def train(
    model,
    data: DigitsData,
    *,
    epochs: int = 30,
    lr: float = 3e-3,
    batch_size: int = 128,
    seed: int = 0,
    soft_targets=None,
    temperature: float = 4.0,
    alpha: float = 0.9,
    masks=None,
) -> TrainResult:
    """Train in place with Adam on minibatches drawn with ``seed``, on one thread (reproducible accuracy).

    The loss is cross-entropy on the labels, or with ``soft_targets`` (teacher logits for ``data.x_train``) the
    distillation loss ``alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE`` (Hinton et al.
    2015; the ``T^2`` keeps the soft term's gradient scale independent of ``T``). ``masks`` (one 0/1 tensor per
    Linear weight, or None per layer) are re-applied after every step, so pruned weights stay zero.

    Examples
    --------
    >>> r = train(make_mlp((64, 16, 10)), load_digits_data(), epochs=1)
    >>> r.samples, r.flops
    (1348, 6815488.0)
    """
    import torch
    import torch.nn.functional as F

    epochs = v.integer(epochs, "epochs", "passes", low=0)
    batch_size = v.integer(batch_size, "batch_size", "examples", low=1)
    lr = float(v.positive(lr, "lr", "step size"))
    t = float(v.positive(temperature, "temperature"))
    a = float(v.fraction(alpha, "alpha"))
    weights = [m.weight for m in _linears(model)]
    masks = [None] * len(weights) if masks is None else list(masks)
    if len(masks) != len(weights):
        raise ValueError(f"masks must have one entry per Linear layer ({len(weights)}); got {len(masks)}")
    gen = torch.Generator().manual_seed(v.integer(seed, "seed"))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = data.n_train
    with torch_threads(1):
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                logits = model(data.x_train[idx])
                loss = F.cross_entropy(logits, data.y_train[idx])
                if soft_targets is not None:
                    soft = F.kl_div(
                        F.log_softmax(logits / t, dim=1),
                        F.log_softmax(soft_targets[idx] / t, dim=1),
                        reduction="batchmean",
                        log_target=True,
                    )
                    loss = a * t * t * soft + (1 - a) * loss
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for w, m in zip(weights, masks, strict=True):
                        if m is not None:
                            w.mul_(m)
        model.eval()
    samples = epochs * n
    return TrainResult(model, samples, training_flops(widths_of(model), samples))


# ---------------------------------------------------------------------------------------------------- precision
def cast(model, dtype: str):
    """A copy of ``model`` with every parameter cast to ``dtype`` ("fp32", "fp16" or "bf16"); feed it that dtype.

    Examples
    --------
    >>> cast(make_mlp((4, 2)), "bf16")[0].weight.dtype
    torch.bfloat16
    """
    return copy.deepcopy(model).to(_torch_dtype(dtype))


# The notices torch 2.13 gives for the eager int8 path (torch/ao/quantization/__init__.py and the quantized-tensor
# constructors), matched from the start of the message: nothing else is silenced.
KNOWN_QUANTIZATION_NOTICES = (
    (DeprecationWarning, r"torch\.ao\.quantization is deprecated"),
    (UserWarning, r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor creation"),
)
# torch's notice on building a sparse CSR tensor (torch/sparse/__init__.py, beta-state warning).
KNOWN_CSR_NOTICE = r"Sparse CSR tensor support is in beta state"


def quantize_int8_dynamic(model):
    """int8 weights (per-tensor scale), activations quantised per call: ``torch.ao.quantization.quantize_dynamic``.

    torch 2.13 still ships and runs this CPU path but marks ``torch.ao.quantization`` deprecated in favour of torchao
    (a separate package). Exactly those two known notices are silenced here (:data:`KNOWN_QUANTIZATION_NOTICES`),
    because the result is what we measure; any other warning, a new deprecation included, still shows.

    Examples
    --------
    >>> type(quantize_int8_dynamic(make_mlp((4, 2)))[0]).__name__
    'Linear'
    """
    import torch

    with warnings.catch_warnings():
        for category, message in KNOWN_QUANTIZATION_NOTICES:
            warnings.filterwarnings("ignore", message=message, category=category)
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)


def pack_int4(codes):
    """Pack signed 4-bit codes (-8..7) two per byte along the last axis: ``byte = (c[2i] + 8) | (c[2i+1] + 8) << 4``.

    Examples
    --------
    >>> import torch
    >>> pack_int4(torch.tensor([-8, 7, 0, 1])).tolist()
    [240, 152]
    """
    import torch

    codes = torch.as_tensor(codes)
    if codes.shape[-1] % 2:
        raise ValueError(f"codes must have an even last dimension (two codes per byte); got {tuple(codes.shape)}")
    if codes.numel() and (codes.min() < -8 or codes.max() > 7):
        raise ValueError("codes must lie in -8..7 (signed 4-bit)")
    u = (codes.to(torch.int16) + 8).to(torch.uint8)  # offset binary: 0..15
    return u[..., 0::2] | (u[..., 1::2] << 4)


def unpack_int4(packed):
    """Inverse of :func:`pack_int4`: low nibble first, each minus 8 (int8 codes, last axis doubled).

    Examples
    --------
    >>> import torch
    >>> unpack_int4(torch.tensor([240, 152], dtype=torch.uint8)).tolist()
    [-8, 7, 0, 1]
    """
    import torch

    packed = torch.as_tensor(packed)
    if packed.dtype != torch.uint8:
        raise TypeError(f"packed must be a uint8 tensor; got {packed.dtype}")
    low, high = (packed & 0xF).to(torch.int8) - 8, (packed >> 4).to(torch.int8) - 8
    return torch.stack((low, high), dim=-1).flatten(-2)


def _int4_quantize_weight(weight, group_size: int):
    """(packed uint8 (out, in/2), fp16 scales (out, in/group)): symmetric, scale = max|w| / 7 per group."""
    import torch

    out_f, in_f = weight.shape
    if in_f % group_size:
        raise ValueError(f"group_size must divide in_features ({in_f}); got {group_size}")
    g = weight.detach().float().reshape(out_f, in_f // group_size, group_size)
    scale = (g.abs().amax(dim=-1) / 7).to(torch.float16)
    if not torch.isfinite(scale).all():
        raise ValueError("weights too large for fp16 scales (max |w| / 7 > 65504)")
    safe = torch.where(scale > 0, scale, torch.ones_like(scale)).float()  # an all-zero group: codes 0, scale 0
    codes = torch.round(g / safe[..., None]).clamp(-8, 7).to(torch.int8).reshape(out_f, in_f)
    return pack_int4(codes), scale


def _int4_dequantize(packed, scale, group_size: int):
    out_f = packed.shape[0]
    codes = unpack_int4(packed).reshape(out_f, -1, group_size).float()
    return (codes * scale.float()[..., None]).reshape(out_f, -1)


@cache
def _int4_linear_class():
    import torch

    class Int4Linear(torch.nn.Module):
        """Weight-only 4-bit Linear: packed codes + fp16 group scales, dequantised to fp32 in every forward."""

        def __init__(self, linear, group_size: int):
            super().__init__()
            self.in_features, self.out_features, self.group_size = linear.in_features, linear.out_features, group_size
            packed, scale = _int4_quantize_weight(linear.weight, group_size)
            self.register_buffer("packed", packed)
            self.register_buffer("scale", scale)
            self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())

        def dequantized_weight(self):
            return _int4_dequantize(self.packed, self.scale, self.group_size)

        def forward(self, x):
            return torch.nn.functional.linear(x, self.dequantized_weight(), self.bias)

        def extra_repr(self):
            return f"in_features={self.in_features}, out_features={self.out_features}, group_size={self.group_size}"

    return Int4Linear


def quantize_int4(model, group_size: int = INT4_GROUP_SIZE):
    """A copy with every Linear replaced by a weight-only 4-bit layer (codes packed two per byte, fp16 group scales).

    ``w ~ s_g * round(w / s_g)`` with ``s_g = max_g |w| / 7``, so each weight is off by at most ``s_g / 2``. The
    weights are dequantised to fp32 on every call (no fused 4-bit kernel on the CPU): the bytes shrink ~7x, the
    time does not. Bias stays fp32.

    Examples
    --------
    >>> q = quantize_int4(make_mlp((64, 10)))
    >>> tuple(q[0].packed.shape), tuple(q[0].scale.shape)
    ((10, 32), (10, 2))
    """
    import torch

    group_size = v.integer(group_size, "group_size", "weights", low=2)
    if group_size % 2:
        raise ValueError(f"group_size must be even (two codes per byte); got {group_size}")
    cls, out = _int4_linear_class(), copy.deepcopy(model)
    for name, child in list(out.named_children()):
        if isinstance(child, torch.nn.Linear):
            setattr(out, name, cls(child, group_size))
    return out


# ------------------------------------------------------------------------------------------------------ pruning
def magnitude_prune(model, sparsity: float):
    """Unstructured magnitude pruning: in each Linear weight zero the ``round(s * numel)`` smallest ``|w|``.

    Ties are broken by position (stable sort), so the count of zeros is exact. Biases are kept. Returns
    ``(pruned copy, masks)``; pass ``masks`` to :func:`train` to fine-tune without reviving pruned weights.

    Examples
    --------
    >>> p, masks = magnitude_prune(make_mlp((64, 10)), 0.9)
    >>> int((p[0].weight == 0).sum()), p[0].weight.numel()
    (576, 640)
    """
    import torch

    s = float(v.fraction(sparsity, "sparsity"))
    out, masks = copy.deepcopy(model), []
    with torch.no_grad():
        for lin in _linears(out):
            w = lin.weight
            k = round(s * w.numel())
            order = torch.argsort(w.abs().flatten(), stable=True)
            mask = torch.ones(w.numel(), dtype=w.dtype)
            mask[order[:k]] = 0
            mask = mask.reshape(w.shape)
            w.mul_(mask)
            masks.append(mask)
    return out, masks


def csr_bytes(nnz, rows, value_bytes: int = 4, index_bytes: int = 4):
    """Bytes of a CSR matrix: ``nnz * (value + column index) + (rows + 1) * row pointer``.

    Examples
    --------
    >>> csr_bytes(nnz=6554, rows=256)  # a 256x256 fp32 matrix at 90 % sparsity, int32 indices
    53460
    """
    nnz = v.integer(nnz, "nnz", "non-zeros", low=0)
    rows = v.integer(rows, "rows", "rows", low=1)
    vb = v.integer(value_bytes, "value_bytes", "bytes", low=1)
    ib = v.integer(index_bytes, "index_bytes", "bytes", low=1)
    return nnz * (vb + ib) + (rows + 1) * ib


@cache
def _csr_linear_class():
    import torch

    class CsrLinear(torch.nn.Module):
        """Linear whose weight is a CSR sparse matrix (int32 indices), computed as ``(W_csr @ x^T)^T + b``."""

        def __init__(self, linear):
            super().__init__()
            self.in_features, self.out_features = linear.in_features, linear.out_features
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=KNOWN_CSR_NOTICE, category=UserWarning)
                csr = linear.weight.detach().to_sparse_csr()
                self.weight = torch.sparse_csr_tensor(
                    csr.crow_indices().int(), csr.col_indices().int(), csr.values(), size=csr.shape,
                    check_invariants=True,  # opt in: torch warns when neither is chosen
                )  # fmt: skip
            self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())

        def forward(self, x):
            y = torch.sparse.mm(self.weight, x.t()).t()
            return y if self.bias is None else y + self.bias

    return CsrLinear


def to_csr(model):
    """A copy whose Linear weights are stored and multiplied as CSR sparse matrices (a sparse kernel).

    Examples
    --------
    >>> type(to_csr(magnitude_prune(make_mlp((64, 10)), 0.9)[0])[0]).__name__
    'CsrLinear'
    """
    import torch

    cls, out = _csr_linear_class(), copy.deepcopy(model)
    for name, child in list(out.named_children()):
        if isinstance(child, torch.nn.Linear):
            setattr(out, name, cls(child))
    return out


def hidden_unit_norms(model) -> list:
    """L2 norm of each hidden unit's incoming weights, one tensor per hidden layer (the structured-pruning score)."""
    return [lin.weight.detach().norm(dim=1) for lin in _linears(model)[:-1]]


def structured_prune(model, keep_fraction: float):
    """Remove hidden units with the smallest incoming-weight L2 norm; rebuild smaller dense Linear layers.

    In each hidden layer ``k = max(1, round(f * width))`` units are kept (in their original order): their rows of
    that layer's weight and bias, and their columns of the next layer's weight. The result computes exactly what the
    original computes with the removed units' activations forced to zero. Returns ``(pruned model, kept indices)``.

    References
    ----------
    H. Li et al., "Pruning filters for efficient ConvNets", ICLR 2017 (norm-ranked structured pruning).

    Examples
    --------
    >>> p, kept = structured_prune(make_mlp((64, 256, 256, 10)), 0.25)
    >>> widths_of(p), [len(k) for k in kept]
    ((64, 64, 64, 10), [64, 64])
    """
    import torch

    f = float(v.fraction(keep_fraction, "keep_fraction", open_low=True))
    lin = _linears(model)
    kept = []
    for norms in hidden_unit_norms(model):
        k = max(1, round(f * norms.numel()))
        kept.append(torch.sort(torch.argsort(norms, descending=True, stable=True)[:k]).values)
    ins = [None, *kept]  # input units of each Linear (None: all)
    outs = [*kept, None]
    layers = []
    with torch.no_grad():
        for i, (layer, a, b) in enumerate(zip(lin, ins, outs, strict=True)):
            w = layer.weight.detach()
            w = w if b is None else w[b]
            w = w if a is None else w[:, a]
            new = torch.nn.Linear(w.shape[1], w.shape[0], bias=layer.bias is not None)
            new.weight.copy_(w)
            if layer.bias is not None:
                new.bias.copy_(layer.bias if b is None else layer.bias[b])
            layers += [new] + ([torch.nn.ReLU()] if i < len(lin) - 1 else [])
    return torch.nn.Sequential(*layers), kept


# ------------------------------------------------------------------------------------------------- distillation
def distill(teacher, data: DigitsData, widths: Sequence[int], **train_kwargs) -> TrainResult:
    """Train a student MLP of ``widths`` on the teacher's logits (soft targets) and the labels; count every FLOP.

    The teacher's logits for the training set are computed once (``n_train * F_teacher`` FLOPs); the returned
    ``flops`` adds them to the student's training FLOPs, so it is the whole price of the student.

    Examples
    --------
    >>> d = load_digits_data()
    >>> r = distill(make_mlp((64, 32, 10)), d, (64, 8, 10), epochs=1)
    >>> r.flops == d.n_train * forward_flops((64, 32, 10)) + training_flops((64, 8, 10), d.n_train)
    True
    """
    import torch

    with torch.no_grad(), torch_threads(1):
        soft = teacher(data.x_train)
    student = make_mlp(widths, seed=train_kwargs.pop("seed", 0))
    r = train(student, data, soft_targets=soft, **train_kwargs)
    return TrainResult(r.model, r.samples, r.flops + data.n_train * forward_flops(widths_of(teacher)))


# -------------------------------------------------------------------------------------------------- measurement
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

    A pruned dense model counts its zeros (they are stored and multiplied); see :func:`csr_bytes` for the sparse size.

    Examples
    --------
    >>> model_bytes(make_mlp((64, 256, 256, 10)))  # (64*256 + 256 + 256*256 + 256 + 256*10 + 10) * 4
    340008
    >>> model_bytes(quantize_int4(make_mlp((64, 10))))  # 10*32 packed + 10*2 fp16 scales * 2 + 10 * 4 bias
    400
    """
    total = 0
    for m in model.modules():
        if type(m).__name__ in ("Int4Linear", "CsrLinear"):
            tensors = [m.packed, m.scale, m.bias] if hasattr(m, "packed") else [m.weight, m.bias]
        elif type(m).__name__ == "LinearPackedParams":  # counted by its parent, the quantised Linear
            continue
        elif hasattr(m, "_packed_params"):  # torch.ao dynamic-quantised Linear: weight()/bias() unpack the codes
            tensors = [m.weight(), m.bias()]
        else:
            tensors = [*m.parameters(recurse=False), *m.buffers(recurse=False)]
        total += sum(_tensor_bytes(t) for t in tensors)
    return int(total)


def evaluate(model, data: DigitsData, dtype: str = "fp32") -> float:
    """Test accuracy (fraction of ``data.x_test`` classified right), inputs cast to ``dtype``, on one thread.

    Examples
    --------
    >>> evaluate(make_mlp((64, 10)), load_digits_data())  # untrained: about chance (1 in 10)
    0.1...
    """
    import torch

    with torch.inference_mode(), torch_threads(1):
        pred = model(data.x_test.to(_torch_dtype(dtype))).argmax(dim=1)
    return float((pred == data.y_test).double().mean())


def measure_latency(
    model, data: DigitsData, batch_size: int = 256, dtype: str = "fp32", *, device: str = "cpu", threads=1, **bench
):
    """Time one forward pass on the first ``batch_size`` test images with :func:`efflab.timing.benchmark`.

    On "cpu" torch runs on ``threads`` threads while timing (None: as configured); on "cuda" a copy of the model is
    moved to the GPU and CUDA events time it. ``bench`` goes to ``benchmark`` (default ``min_run_s=0.1``). Returns
    the :class:`efflab.timing.Measurement`; report its ``median_s``.

    Examples
    --------
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


def _executed_flops(model) -> float:
    total = 0.0
    for m in model.modules():
        if type(m).__name__ == "CsrLinear":
            total += 2.0 * m.weight.values().numel()  # a CSR kernel does one FMA per stored non-zero
        elif hasattr(m, "in_features") and hasattr(m, "out_features"):  # Linear, int8 and int4 Linear: dense
            total += 2.0 * m.in_features * m.out_features
    return total


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
    """Measure accuracy (:func:`evaluate`), bytes (:func:`model_bytes`) and latency (:func:`measure_latency`).

    Examples
    --------
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


# --------------------------------------------------------------------------------------- the chapter's variants
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
        kw = {"family": "unstructured", "training_flops": ft.flops, "accuracy_before_finetune": before}
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
    """A student of ``widths`` distilled from ``teacher`` (:func:`distill` with :data:`DISTILL_SETTINGS`), measured;
    its ``training_flops`` include the teacher's soft-target pass."""
    r = distill(teacher, data, widths, seed=seed, **DISTILL_SETTINGS)
    name = "student " + "-".join(str(w) for w in widths)
    return measure_variant(name, r.model, data, family="distillation", training_flops=r.flops, **bench)


def compare_students(teacher, data: DigitsData, widths: Sequence[int] = (64, 32, 10), seeds=(0, 1, 2)) -> dict:
    """Test accuracy of the same student distilled and trained on labels alone (same settings), per seed.

    Returns ``{"distilled": [...], "labels only": [...]}`` (fractions), the control that says whether the teacher's
    soft targets helped at all on this data set.
    """
    settings = {k: val for k, val in DISTILL_SETTINGS.items() if k not in ("temperature", "alpha")}
    out: dict = {"distilled": [], "labels only": []}
    for s in seeds:
        out["distilled"].append(evaluate(distill(teacher, data, widths, seed=s, **DISTILL_SETTINGS).model, data))
        scratch = make_mlp(widths, seed=s)
        train(scratch, data, seed=s, **settings)
        out["labels only"].append(evaluate(scratch, data))
    return out


# ------------------------------------------------------------------------------------------------ the frontier
def objective_values(variants: Sequence[Variant], objectives: Sequence[str] = ("size_bytes", "latency_s", "error")):
    """``(n_variants, n_objectives)`` float array of the named attributes (each minimised)."""
    return np.array([[float(getattr(var, o)) for o in objectives] for var in variants], dtype=float)


def frontier_mask(variants: Sequence[Variant], objectives: Sequence[str] = ("size_bytes", "latency_s", "error")):
    """True for variants no other variant beats on every objective (all minimised): :func:`efflab.pareto_mask`.

    Examples
    --------
    >>> a = Variant("a", "x", accuracy=0.9, size_bytes=100, latency_s=1e-3, flops_per_sample=1, batch_size=1)
    >>> b = Variant("b", "x", accuracy=0.8, size_bytes=200, latency_s=1e-3, flops_per_sample=1, batch_size=1)
    >>> frontier_mask([a, b]).tolist()
    [True, False]
    """
    return pareto_mask(objective_values(variants, objectives))


def best_feasible(
    variants: Sequence[Variant],
    *,
    max_size_bytes: float = math.inf,
    max_latency_s: float = math.inf,
    min_accuracy: float = 0.0,
) -> Variant | None:
    """The most accurate variant within a memory budget, a latency budget and an accuracy floor (None if none fits).

    Ties in accuracy go to the faster, then the smaller variant (the rule of :func:`efflab.widgets.best_variant`, so
    the text and the widget agree); the choice is on the 3-D frontier.

    Examples
    --------
    >>> a = Variant("a", "x", accuracy=0.97, size_bytes=340_000, latency_s=4e-4, flops_per_sample=1, batch_size=1)
    >>> b = Variant("b", "x", accuracy=0.95, size_bytes=50_000, latency_s=1e-4, flops_per_sample=1, batch_size=1)
    >>> best_feasible([a, b]).name, best_feasible([a, b], max_size_bytes=100_000).name
    ('a', 'b')
    >>> best_feasible([a, b], min_accuracy=0.99) is None
    True
    """
    size = float(v.positive(max_size_bytes, "max_size_bytes", "bytes", allow_inf=True))
    lat = float(v.positive(max_latency_s, "max_latency_s", "s", allow_inf=True))
    acc = float(v.fraction(min_accuracy, "min_accuracy"))
    ok = [x for x in variants if x.size_bytes <= size and x.latency_s <= lat and x.accuracy >= acc]
    return min(ok, key=lambda x: (-x.accuracy, x.latency_s, x.size_bytes), default=None)


def format_table(variants: Sequence[Variant], *, latency: bool = True, mask=None) -> str:
    """A plain-text table (at most 76 characters wide): accuracy, bytes as run and as CSR, MFLOP per image, and
    optionally the median latency and whether each variant is on the frontier (``mask``).

    Examples
    --------
    >>> a = Variant("a", "x", accuracy=0.97, size_bytes=9_640, latency_s=4e-5, flops_per_sample=4736, batch_size=1)
    >>> print(format_table([a], mask=[True]))
    variant              accuracy  size (B)  CSR (B)  MFLOP   latency  frontier
    ---------------------------------------------------------------------------
    a                      97.00%     9,640            0.005     40 µs  yes
    """
    head = f"{'variant':<20}{'accuracy':>9}{'size (B)':>10}{'CSR (B)':>9}{'MFLOP':>7}"
    head += f"{'latency':>10}" if latency else ""
    head += "  frontier" if mask is not None else ""
    lines = [head, "-" * len(head)]
    for i, x in enumerate(variants):
        csr = "" if x.sparse_size_bytes is None else f"{x.sparse_size_bytes:,}"
        row = f"{x.name:<20}{x.accuracy:>9.2%}{x.size_bytes:>10,}{csr:>9}{x.flops_per_sample / 1e6:>7.3f}"
        row += f"{x.latency_s * 1e6:>7.0f} µs" if latency else ""
        row += ("  yes" if mask[i] else "  dominated") if mask is not None else ""
        lines.append(row.rstrip())
    return "\n".join(lines)


def variant_table(variants: Sequence[Variant], *, latency: bool = True, mask=None):
    """The variants as a :class:`~efflab.kernels.Table` (HTML in a notebook and the book, aligned text in a terminal):
    accuracy, size as run and as CSR, MFLOP per image, and optionally the median latency and whether each variant is
    on the frontier (``mask``). Sizes and times carry SI prefixes.

    Examples
    --------
    >>> a = Variant("a", "x", accuracy=0.97, size_bytes=9_640, latency_s=4e-5, flops_per_sample=4736, batch_size=1)
    >>> print(variant_table([a], mask=[True]))
    variant  accuracy  size     CSR  MFLOP  latency  frontier
    a        97.00%    9.64 kB  -    0.005  40 µs    yes
    """
    from efflab.kernels import Table
    from efflab.style import format_si

    if mask is not None and len(mask) != len(variants):
        raise ValueError(f"mask must have one entry per variant ({len(variants)}); got {len(mask)}")
    header = ("variant", "accuracy", "size", "CSR", "MFLOP") + (("latency",) if latency else ())
    header += ("frontier",) if mask is not None else ()
    rows = []
    for i, x in enumerate(variants):
        csr = "-" if x.sparse_size_bytes is None else format_si(x.sparse_size_bytes, "B")
        row = (x.name, f"{x.accuracy:.2%}", format_si(x.size_bytes, "B"), csr, f"{x.flops_per_sample / 1e6:.3f}")
        row += (format_si(x.latency_s, "s"),) if latency else ()
        row += (("yes" if mask[i] else "dominated"),) if mask is not None else ()
        rows.append(row)
    return Table(header, rows)


def retime(variants, data: DigitsData, rounds: int = 3, **bench) -> list[Variant]:
    """The same variants with their latencies measured again, interleaved: ``rounds`` passes over all of them, each
    keeping its fastest median (a shared machine's speed drifts between measurements taken minutes apart, and a
    comparison of variants needs them measured side by side).

    Examples
    --------
    >>> d = load_digits_data()
    >>> vs = [measure_variant(n, make_mlp(w), d, family="demo", min_run_s=0.001) for n, w in (("a", (64, 10)),
    ...       ("b", (64, 32, 10)))]
    >>> [x.name for x in retime(vs, d, rounds=2, min_run_s=0.001)]
    ['a', 'b']
    """
    import dataclasses

    variants = list(variants)
    if not all(isinstance(x, Variant) and x.model is not None for x in variants):
        raise TypeError("variants must be measured Variant objects that still hold their model")
    rounds = v.integer(rounds, "rounds", "passes", low=1)
    best = [float("inf")] * len(variants)
    for _ in range(rounds):
        for i, x in enumerate(variants):
            best[i] = min(best[i], measure_latency(x.model, data, x.batch_size, x.dtype, **bench).median_s)
    return [dataclasses.replace(x, latency_s=t) for x, t in zip(variants, best, strict=True)]


# --- claims the chapter makes about its variants, judged on the measured ones (efflab.claims) ---------------------------

# "Accuracy barely moves" under lower precision: no format loses more than this many percentage points against fp32.
PRECISION_DROP_PP = 1.0
# "A dense kernel multiplies the zeros": a pruned model on the dense kernel takes fp32's time within this fraction.
DENSE_PRUNED_TIME_BAND = 0.15
# "On a task this easy": distillation changes the mean accuracy over the seeds by at most this many test images.
DISTILL_IMAGES = 3


def precision_claim(variants, max_drop_pp: float = PRECISION_DROP_PP):
    """ "Lower precision barely moves the accuracy", judged on :func:`precision_variants` (:mod:`efflab.claims`): no
    format loses more than ``max_drop_pp`` percentage points against the first variant (fp32).

    Diagnosis of a larger drop: the coarsest format (4-bit: 16 levels per weight, one scale per group) rounded the
    weights too coarsely for this model.

    Examples
    --------
    >>> v = [Variant(n, "precision", a, 1, 1e-3, 1.0, 1) for n, a in (("fp32", .9866), ("int8 dynamic", .9866),
    ...      ("int4 weight-only", .9822))]
    >>> print(precision_claim(v))
    held here: lower precision barely moves the accuracy (largest drop: int4 weight-only, 0.44 percentage points)
    """
    from efflab.claims import check, reason

    variants = list(variants)
    if len(variants) < 2 or not all(isinstance(x, Variant) for x in variants):
        raise TypeError("variants must be the Variant list of precision_variants (fp32 first, then the formats)")
    base = variants[0]
    worst = max(variants[1:], key=lambda x: base.accuracy - x.accuracy)
    drop_pp = 100 * (base.accuracy - worst.accuracy)
    return check(
        "lower precision barely moves the accuracy",
        drop_pp <= max_drop_pp,
        f"largest drop: {worst.name}, {drop_pp:.2f} percentage points",
        [
            reason(
                "int4" in worst.name,
                f"{worst.name} keeps 16 levels per weight with one scale per group of {INT4_GROUP_SIZE}: rounding "
                "that coarse costs this model accuracy, where 8 and 16 bits do not",
            )
        ],
    )


def pruning_time_claim(fp32: Variant, variants):
    """ "Only kernels that skip the removed work get faster", judged on measured variants (:mod:`efflab.claims`):
    unstructured-pruned models on the dense kernel take fp32's time within ``DENSE_PRUNED_TIME_BAND``, and every
    structured (smaller dense) model is faster than fp32. CSR variants are left out: whether a sparse kernel wins
    depends on the machine, and the chapter says so.

    Examples
    --------
    >>> fp32 = Variant("fp32", "baseline", .98, 1, 501e-6, 1.0, 256)
    >>> v = [Variant("pruned 90%", "unstructured", .97, 1, 500e-6, 1.0, 256),
    ...      Variant("structured 64 units", "structured", .97, 1, 86.9e-6, 1.0, 256)]
    >>> print(pruning_time_claim(fp32, v))  # doctest: +NORMALIZE_WHITESPACE
    held here: only kernels that skip the removed work get faster (dense pruned x1.00-x1.00 of fp32's time,
      structured x0.17-x0.17)
    """
    from efflab.claims import check, cores_contended

    dense = [x for x in variants if x.family == "unstructured" and "CSR" not in x.name]
    smaller = [x for x in variants if x.family == "structured"]
    if not dense or not smaller:
        raise ValueError("variants must hold dense unstructured-pruned and structured variants (measured)")
    d = [x.latency_s / fp32.latency_s for x in dense]
    s = [x.latency_s / fp32.latency_s for x in smaller]
    return check(
        "only kernels that skip the removed work get faster",
        all(abs(r - 1) <= DENSE_PRUNED_TIME_BAND for r in d) and all(r < 1 for r in s),
        f"dense pruned x{min(d):.2f}-x{max(d):.2f} of fp32's time, structured x{min(s):.2f}-x{max(s):.2f}",
        [cores_contended()],
    )


def distillation_claim(runs: dict, n_test: int, max_images: float = DISTILL_IMAGES):
    """ "On a task this easy distillation changes the accuracy by a few test images at most", judged on
    :func:`compare_students` (:mod:`efflab.claims`): the means over the seeds differ by at most ``max_images``.

    Diagnosis of a larger difference: it is within the spread between seeds of one kind (the run-to-run noise of
    training itself).

    Examples
    --------
    >>> runs = {"distilled": [0.9710, 0.9755, 0.9800], "labels only": [0.9733, 0.9777, 0.9755]}
    >>> print(distillation_claim(runs, 449))
    held here: distillation changes the accuracy by a few test images at most (+0.0 of 449 test images)
    """
    from efflab.claims import check, reason

    distilled, labels = (np.asarray(runs[k], dtype=float) for k in ("distilled", "labels only"))
    n = v.integer(n_test, "n_test", "images", low=1)
    diff_images = (distilled.mean() - labels.mean()) * n
    spread_images = max(np.ptp(distilled), np.ptp(labels)) * n
    return check(
        "distillation changes the accuracy by a few test images at most",
        abs(diff_images) <= max_images,
        f"{diff_images:+.1f} of {n} test images",
        [
            reason(
                abs(diff_images) <= spread_images,
                f"the difference is within the spread between seeds of one kind ({spread_images:.0f} images): "
                "training noise, not the method",
            )
        ],
    )
