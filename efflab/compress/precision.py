"""Fewer bits per weight: floating-point casts (fp16, bf16), int8 dynamic quantisation and 4-bit weight-only
quantisation with its packing (two codes per byte) and its layer, :class:`Int4Linear`.

Lower precision trades numerical accuracy for bytes, and for time only where a kernel computes in the narrow format.
torch is imported inside the functions; :class:`Int4Linear` is a ``torch.nn.Module`` made on first access (a module
``__getattr__``), so this module imports without torch and ``efflab.compress.precision.Int4Linear`` is one real
class that ``isinstance`` and pickle can use.
"""

from __future__ import annotations

import copy
import warnings
from functools import cache
from typing import Any

from efflab import _validate as v
from efflab.compress.model import _torch_dtype

# 4-bit groups of 32 weights sharing one fp16 scale: the layout of llama.cpp's Q4_0 (4.5 bits per weight).
INT4_GROUP_SIZE = 32
# The notices torch 2.13 gives for the eager int8 path (torch/ao/quantization/__init__.py and the quantized-tensor
# constructors), matched from the start of the message: nothing else is silenced.
KNOWN_QUANTIZATION_NOTICES = (
    (DeprecationWarning, r"torch\.ao\.quantization is deprecated"),
    (UserWarning, r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor creation"),
)


def cast(model, dtype: str):
    """A copy of ``model`` with every parameter cast to ``dtype`` ("fp32", "fp16" or "bf16"); feed it that dtype.

    Examples
    --------
    >>> from efflab.compress import make_mlp
    >>> cast(make_mlp((4, 2)), "bf16")[0].weight.dtype
    torch.bfloat16
    """
    return copy.deepcopy(model).to(_torch_dtype(dtype))


def quantize_int8_dynamic(model):
    """int8 weights (per-tensor scale), activations quantised per call: ``torch.ao.quantization.quantize_dynamic``.

    torch 2.13 still ships and runs this CPU path but marks ``torch.ao.quantization`` deprecated in favour of torchao
    (a separate package). Exactly those two known notices are silenced here (:data:`KNOWN_QUANTIZATION_NOTICES`),
    because the result is what we measure; any other warning, a new deprecation included, still shows.

    Examples
    --------
    >>> from efflab.compress import make_mlp
    >>> type(quantize_int8_dynamic(make_mlp((4, 2)))[0])
    <class 'torch.ao.nn.quantized.dynamic.modules.linear.Linear'>
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
def _int4_linear_class() -> type:
    """Make :class:`Int4Linear` (once: every caller gets the same class)."""
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

    Int4Linear.__qualname__ = "Int4Linear"  # found as efflab.compress.precision.Int4Linear (pickle looks it up so)
    return Int4Linear


def __getattr__(name: str) -> Any:
    """``Int4Linear``: the torch module class, made on first access so that importing this module needs no torch."""
    if name == "Int4Linear":
        return _int4_linear_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def quantize_int4(model, group_size: int = INT4_GROUP_SIZE):
    """A copy with every Linear replaced by an :class:`Int4Linear` (codes packed two per byte, fp16 group scales).

    ``w ~ s_g * round(w / s_g)`` with ``s_g = max_g |w| / 7``, so each weight is off by at most ``s_g / 2``. The
    weights are dequantised to fp32 on every call (no fused 4-bit kernel on the CPU): the bytes shrink ~7x, the
    time does not. Bias stays fp32.

    Examples
    --------
    >>> from efflab.compress import make_mlp
    >>> q = quantize_int4(make_mlp((64, 10)))
    >>> q[0]
    Int4Linear(in_features=64, out_features=10, group_size=32)
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
