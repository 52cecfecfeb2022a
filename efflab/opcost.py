"""What an ML operator costs: FLOPs and compulsory bytes, the two inputs of the roofline and the iron law.

One function per operator family (``matmul_cost``, ``conv2d_cost``, ``attention_cost``, ``elementwise_cost``,
``softmax_cost``, ``layernorm_cost``, ``embedding_cost``), each returning an :class:`OpCost` whose
``intensity_flops_per_byte`` (:func:`arithmetic_intensity`, ``I = O / D_vol``) places the operator on
:class:`efflab.roofline.Roofline`, which re-exports everything here.

Conventions: a fused multiply-add counts as 2 FLOPs (as ``torch.utils.flop_counter.FlopCounterMode`` counts), and bytes
are the *compulsory* traffic: each input read once from main memory and each output written once, as if on-chip caches
were large enough for all reuse. Real kernels move at least this much, so the intensity returned is an upper bound and
the iron-law time a lower bound. ``efflab.profile`` applies the same conventions to the aten ops of a real model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from efflab import _validate as v

__all__ = [
    "DTYPE_BYTES",
    "TORCH_DTYPES",
    "LAYERNORM_AFFINE_FLOPS_PER_ELEMENT",
    "LAYERNORM_FLOPS_PER_ELEMENT",
    "LAYERNORM_FLOPS_PER_ROW",
    "SOFTMAX_FLOPS_PER_ELEMENT",
    "OpCost",
    "arithmetic_intensity",
    "attention_cost",
    "conv2d_cost",
    "dtype_name",
    "elementwise_cost",
    "embedding_cost",
    "layernorm_cost",
    "matmul_cost",
    "softmax_cost",
    "torch_dtype",
]

# Bytes per element for the package's dtype names; tf32 is stored in 32 bits, int4 packs two values per byte.
DTYPE_BYTES: Mapping[str, float] = MappingProxyType(
    {"fp64": 8, "fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "int8": 1, "int4": 0.5}
)
# efflab's dtype names -> torch's dtype attributes, the one map every module uses (tf32 is stored as fp32: TF32 is a
# math mode of fp32 matmuls, see efflab.hardware.fp32_math).
TORCH_DTYPES: Mapping[str, str] = MappingProxyType(
    {"fp64": "float64", "fp32": "float32", "tf32": "float32", "fp16": "float16", "bf16": "bfloat16", "int8": "int8"}
)
_NAMES_BY_TORCH = {torch_name: name for name, torch_name in TORCH_DTYPES.items() if name != "tf32"}


def torch_dtype(name: str, allowed=None):
    """The torch dtype for an efflab dtype name ("bf16" -> ``torch.bfloat16``); torch is imported here.

    ``allowed`` narrows the names accepted (a ValueError names the argument and lists them).

    >>> str(torch_dtype("bf16"))
    'torch.bfloat16'
    """
    import torch

    name = v.choice(name, "dtype", list(TORCH_DTYPES if allowed is None else allowed))
    return getattr(torch, TORCH_DTYPES[name])


def dtype_name(dtype) -> str:
    """efflab's name for a torch dtype ("fp32", "bf16", ..., else torch's name without the prefix).

    Examples
    --------
    >>> import torch
    >>> dtype_name(torch.bfloat16), dtype_name(torch.int64)
    ('bf16', 'int64')
    """
    name = str(dtype).removeprefix("torch.")
    return _NAMES_BY_TORCH.get(name, name)


def _dtype_bytes(value, name: str = "dtype_bytes") -> float:
    if isinstance(value, str):
        return float(DTYPE_BYTES[v.choice(value, name, list(DTYPE_BYTES))])
    arr = v.positive(value, name, "bytes per element")
    if arr.ndim:
        raise ValueError(f"{name} must be a single number (bytes per element) or a dtype name; got shape {arr.shape}")
    return float(arr)


def _count(value, name: str, low: int = 1) -> int:
    return v.integer(value, name, "elements", low=low)


def arithmetic_intensity(flops, bytes_moved):
    """Arithmetic intensity of a kernel, ``I = O / D_vol`` in FLOP/byte.

    Parameters
    ----------
    flops : float or array_like
        Floating-point operations ``O`` performed (FLOP, >= 0; an FMA counts 2).
    bytes_moved : float or array_like
        Bytes ``D_vol`` moved between main memory and the chip (bytes, > 0).

    Returns
    -------
    float or ndarray
        Intensity in FLOP/byte.

    References
    ----------
    Williams, Waterman, Patterson, CACM 2009.

    Examples
    --------
    A 4096^3 fp16 matmul: 2*4096^3 FLOPs over 3*4096^2*2 bytes.

    >>> round(arithmetic_intensity(2 * 4096**3, 3 * 4096**2 * 2), 1)
    1365.3
    """
    flops = v.nonnegative(flops, "flops", "FLOP")
    bytes_moved = v.positive(bytes_moved, "bytes_moved", "bytes")
    flops, bytes_moved = v.broadcast(flops=flops, bytes_moved=bytes_moved)
    return v.scalar_or_array(flops / bytes_moved)


@dataclass(frozen=True)
class OpCost:
    """FLOPs and compulsory bytes of one operator (or, summed with ``+``, of a chain of unfused operators).

    Adding two costs adds both fields: the sum models the ops as separate kernels, each writing its output to memory
    and the next reading it back; fusing them removes that intermediate traffic.

    Examples
    --------
    >>> cost = OpCost(flops=2e9, bytes_moved=1e9) + OpCost(flops=0.0, bytes_moved=1e9)
    >>> cost.flops, cost.bytes_moved, cost.intensity_flops_per_byte
    (2000000000.0, 2000000000.0, 1.0)
    """

    flops: float
    bytes_moved: float

    def __post_init__(self):
        for attr, unit in (("flops", "FLOP"), ("bytes_moved", "bytes")):
            arr = v.nonnegative(getattr(self, attr), attr, unit)
            if arr.ndim:
                raise ValueError(f"{attr} must be a single number ({unit}); got shape {arr.shape}")
            object.__setattr__(self, attr, float(arr))

    @property
    def intensity_flops_per_byte(self) -> float:
        """``flops / bytes_moved`` (FLOP/byte); ValueError when no bytes move."""
        return arithmetic_intensity(self.flops, self.bytes_moved)

    def __add__(self, other: OpCost) -> OpCost:
        if not isinstance(other, OpCost):
            return NotImplemented
        return OpCost(self.flops + other.flops, self.bytes_moved + other.bytes_moved)

    def __radd__(self, other) -> OpCost:
        # sum(costs) starts from the integer 0.
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented


def matmul_cost(m: int, n: int, k: int, dtype_bytes=4, *, batch: int = 1) -> OpCost:
    """Cost of ``(m, k) @ (k, n)``, optionally batched: ``O = 2*b*m*n*k``, ``D_vol = b*(m*k + k*n + m*n)*s``.

    An FMA counts 2 FLOPs (as ``FlopCounterMode`` counts mm/bmm); bytes are compulsory traffic (A and B read once,
    C written once), so the intensity is the best any tiling can reach.

    Parameters
    ----------
    m, n, k : int
        Matrix dimensions (elements, >= 1).
    dtype_bytes : float or str
        Bytes per element ``s`` (e.g. 2 for bf16) or a dtype name ("bf16").
    batch : int
        Number of independent matmuls ``b`` (as in ``torch.bmm``).

    Returns
    -------
    OpCost
        FLOPs and bytes.

    Examples
    --------
    >>> c = matmul_cost(4096, 4096, 4096, "bf16")
    >>> c.flops, c.bytes_moved, round(c.intensity_flops_per_byte, 1)
    (137438953472.0, 100663296.0, 1365.3)
    """
    m, n, k = _count(m, "m"), _count(n, "n"), _count(k, "k")
    batch, size = _count(batch, "batch"), _dtype_bytes(dtype_bytes)
    return OpCost(2.0 * batch * m * n * k, batch * (m * k + k * n + m * n) * size)


def elementwise_cost(numel: int, dtype_bytes=4, flops_per_element=1, inputs: int = 1) -> OpCost:
    """Cost of an elementwise op: ``O = numel*f``, ``D_vol = (inputs + 1)*numel*s``.

    Compulsory traffic: each of ``inputs`` same-sized tensors read once, one output written once.

    Parameters
    ----------
    numel : int
        Elements in the output (>= 1).
    dtype_bytes : float or str
        Bytes per element ``s`` or a dtype name.
    flops_per_element : float
        FLOPs per output element ``f`` (>= 0; 1 for add or ReLU, 0 for a copy).
    inputs : int
        Number of input tensors read (>= 0).

    Examples
    --------
    ``x + y`` on 1e6 fp32 elements: 1 FLOP per 12 bytes, deep in memory-bound territory.

    >>> c = elementwise_cost(10**6, 4, flops_per_element=1, inputs=2)
    >>> c.flops, c.bytes_moved
    (1000000.0, 12000000.0)
    """
    numel, size = _count(numel, "numel"), _dtype_bytes(dtype_bytes)
    f = v.nonnegative(flops_per_element, "flops_per_element", "FLOP per element")
    if f.ndim:
        raise ValueError(f"flops_per_element must be a single number; got shape {f.shape}")
    inputs = v.integer(inputs, "inputs", "tensors", low=0)
    return OpCost(numel * float(f), (inputs + 1) * numel * size)


def _pair(value, name: str, low: int) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (height, width); got {value!r}")
        return v.integer(value[0], name, "elements", low=low), v.integer(value[1], name, "elements", low=low)
    value = v.integer(value, name, "elements", low=low)
    return value, value


def conv2d_cost(
    batch: int,
    in_channels: int,
    out_channels: int,
    height: int,
    width: int,
    kernel_size,
    stride=1,
    padding=0,
    groups: int = 1,
    dtype_bytes=4,
    bias: bool = False,
) -> OpCost:
    """Cost of a 2-D convolution on an NCHW input.

    ``O = 2*N*C_out*H_out*W_out*(C_in/groups)*k_h*k_w`` (+ ``N*C_out*H_out*W_out`` bias adds, which
    ``FlopCounterMode`` does not count); ``D_vol = (N*C_in*H*W + C_out*(C_in/groups)*k_h*k_w [+ C_out]
    + N*C_out*H_out*W_out) * s`` -- compulsory traffic: input, weights (and bias) read once, output written once;
    padding zeros are never read. ``H_out = (H + 2*p_h - k_h) // stride_h + 1``.

    Parameters
    ----------
    batch, in_channels, out_channels, height, width : int
        Input shape and output channels (>= 1).
    kernel_size, stride : int or (int, int)
        Kernel and stride (>= 1).
    padding : int or (int, int)
        Zero padding on each side (>= 0).
    groups : int
        Channel groups; ``groups == in_channels`` is a depthwise convolution.
    dtype_bytes : float or str
        Bytes per element ``s`` or a dtype name.
    bias : bool
        Whether a bias is added.

    Examples
    --------
    A depthwise 3x3 convolution has about 2 FLOP/byte -- memory-bound on any accelerator, as MLSysBook notes:

    >>> c = conv2d_cost(1, 256, 256, 56, 56, 3, padding=1, groups=256)
    >>> c.flops, round(c.intensity_flops_per_byte, 2)
    (14450688.0, 2.25)
    """
    batch, c_in, c_out = (
        _count(batch, "batch"),
        _count(in_channels, "in_channels"),
        _count(out_channels, "out_channels"),
    )
    height, width = _count(height, "height"), _count(width, "width")
    (kh, kw), (sh, sw) = _pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    groups, size, bias = _count(groups, "groups"), _dtype_bytes(dtype_bytes), v.boolean(bias, "bias")
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups must divide in_channels ({c_in}) and out_channels ({c_out}); got {groups}")
    h_out, w_out = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(
            f"kernel_size ({kh}, {kw}) must fit the padded input ({height + 2 * ph}, {width + 2 * pw}) (in elements)"
        )
    outputs = batch * c_out * h_out * w_out
    weights = c_out * (c_in // groups) * kh * kw
    flops = 2.0 * outputs * (c_in // groups) * kh * kw + (outputs if bias else 0)
    return OpCost(flops, (batch * c_in * height * width + weights + (c_out if bias else 0) + outputs) * size)


def _causal_pairs(seq_len: int, kv_seq_len: int) -> int:
    # torch's is_causal mask is top-left aligned: query i sees keys 0..i, so sum_i min(i + 1, kv_seq_len).
    if seq_len <= kv_seq_len:
        return seq_len * (seq_len + 1) // 2
    return kv_seq_len * (kv_seq_len + 1) // 2 + (seq_len - kv_seq_len) * kv_seq_len


def attention_cost(
    batch: int,
    heads: int,
    seq_len: int,
    head_dim: int,
    kv_seq_len: int | None = None,
    dtype_bytes=2,
    causal: bool = False,
    kv_heads: int | None = None,
) -> OpCost:
    """Cost of scaled dot-product attention ``softmax(Q K^T / sqrt(d)) V`` in the fused (flash) view.

    ``O = 4*b*h*P*d`` with ``P = s*s_kv`` score pairs (``Q K^T`` and ``P V``, 2 FLOPs per FMA, as ``FlopCounterMode``
    counts SDPA; the softmax is not counted). With ``causal`` only the unmasked pairs are counted (torch's top-left
    aligned mask), which ``FlopCounterMode`` does not do. ``D_vol = b*d*(2*h*s + 2*h_kv*s_kv)*s_bytes``: Q, K, V read
    once and O written once; the score matrix never reaches memory, as in a fused (flash) kernel. An unfused kernel
    also writes and reads the ``b*h*s*s_kv`` scores.

    Parameters
    ----------
    batch, heads, seq_len, head_dim : int
        ``b``, ``h`` query heads, ``s`` query positions, ``d`` (>= 1).
    kv_seq_len : int, optional
        Key/value positions ``s_kv`` (defaults to ``seq_len``; a decode step has ``seq_len=1``, ``causal=False``).
    dtype_bytes : float or str
        Bytes per element or a dtype name.
    causal : bool
        Count only query/key pairs the causal mask keeps.
    kv_heads : int, optional
        Key/value heads ``h_kv`` for grouped-query attention (must divide ``heads``; defaults to ``heads``).

    Examples
    --------
    One decode step against a 4096-token fp16 KV cache does about 1 FLOP per byte:

    >>> c = attention_cost(1, 32, 1, 128, kv_seq_len=4096, dtype_bytes="fp16")
    >>> c.flops, round(c.intensity_flops_per_byte, 3)
    (67108864.0, 1.0)
    """
    batch, heads, seq_len = _count(batch, "batch"), _count(heads, "heads"), _count(seq_len, "seq_len")
    head_dim, size, causal = _count(head_dim, "head_dim"), _dtype_bytes(dtype_bytes), v.boolean(causal, "causal")
    kv_seq_len = seq_len if kv_seq_len is None else _count(kv_seq_len, "kv_seq_len")
    kv_heads = heads if kv_heads is None else _count(kv_heads, "kv_heads")
    if heads % kv_heads:
        raise ValueError(f"kv_heads must divide heads ({heads}); got {kv_heads}")
    pairs = _causal_pairs(seq_len, kv_seq_len) if causal else seq_len * kv_seq_len
    flops = 4.0 * batch * heads * pairs * head_dim
    return OpCost(flops, batch * head_dim * (2 * heads * seq_len + 2 * kv_heads * kv_seq_len) * size)


def embedding_cost(num_tokens: int, embedding_dim: int, dtype_bytes=4, index_bytes: int = 8) -> OpCost:
    """Cost of an embedding lookup: ``O = 0``, ``D_vol = t*i + 2*t*e*s``.

    No arithmetic: ``t`` indices of ``i`` bytes are read, ``t`` rows of ``e`` elements gathered, and the ``(t, e)``
    output written. Compulsory traffic counts one gathered row per token; repeated tokens may hit in cache, so for
    highly repetitive text this is an upper bound on what reaches DRAM.

    Parameters
    ----------
    num_tokens, embedding_dim : int
        ``t`` lookups and row length ``e`` (>= 1).
    dtype_bytes : float or str
        Bytes per table element ``s`` or a dtype name.
    index_bytes : int
        Bytes per index ``i`` (8 for int64, torch's default).

    Examples
    --------
    >>> embedding_cost(2048, 4096, "bf16")
    OpCost(flops=0.0, bytes_moved=33570816.0)
    """
    tokens, dim, size = (
        _count(num_tokens, "num_tokens"),
        _count(embedding_dim, "embedding_dim"),
        _dtype_bytes(dtype_bytes),
    )
    index_bytes = v.integer(index_bytes, "index_bytes", "bytes", low=1)
    return OpCost(0.0, tokens * index_bytes + 2.0 * tokens * dim * size)


# FLOPs per element of a numerically stable softmax: running max (1 compare), x - max (1), exp (1), running sum (1
# add), divide by the sum (1). exp costs several instructions in hardware; one FLOP per transcendental is the usual
# counting convention (FlopCounterMode counts softmax as 0).
SOFTMAX_FLOPS_PER_ELEMENT = 5
# GELU per element, counted the same way (one FLOP per elementary operation, a transcendental included). Exact form
# 0.5 x (1 + erf(x / sqrt(2))): divide, erf, add, multiply, multiply. tanh form (Hendrycks & Gimpel, 2016)
# 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): the 8 aten ops it runs when written out (pow, mul, add, mul, tanh,
# add, mul, mul), so a fused GELU and its unfused chain count the same arithmetic.
GELU_ERF_FLOPS_PER_ELEMENT = 5
GELU_TANH_FLOPS_PER_ELEMENT = 8


def softmax_cost(numel: int, dtype_bytes=4) -> OpCost:
    """Cost of a softmax over ``numel`` elements: ``O = 5*numel``, ``D_vol = 2*numel*s``.

    Five FLOPs per element: max, subtract, exp, sum, divide (see ``SOFTMAX_FLOPS_PER_ELEMENT``). Compulsory traffic
    assumes a fused one-pass (online) kernel: input read once, output written once; a naive three-pass kernel reads the
    input up to three times.

    Parameters
    ----------
    numel : int
        Elements (>= 1).
    dtype_bytes : float or str
        Bytes per element ``s`` or a dtype name.

    Examples
    --------
    >>> c = softmax_cost(10**6, "fp32")
    >>> c.flops, c.bytes_moved, c.intensity_flops_per_byte
    (5000000.0, 8000000.0, 0.625)
    """
    numel = _count(numel, "numel")
    return OpCost(SOFTMAX_FLOPS_PER_ELEMENT * float(numel), 2.0 * numel * _dtype_bytes(dtype_bytes))


# Layer norm FLOPs: per element 5 (sum for the mean, subtract the mean, square, sum for the variance, multiply by
# 1/sigma) plus 2 with the affine transform (scale, shift); per row 4 (mean = sum/n, var = sum/n, var + eps, rsqrt).
LAYERNORM_FLOPS_PER_ELEMENT = 5
LAYERNORM_AFFINE_FLOPS_PER_ELEMENT = 2
LAYERNORM_FLOPS_PER_ROW = 4


def layernorm_cost(numel: int, normalized_size: int, dtype_bytes=4, affine: bool = True) -> OpCost:
    """Cost of layer normalization over the last ``n = normalized_size`` elements.

    ``O = numel*(5 + 2*affine) + 4*numel/n``; ``D_vol = (2*numel + 2*n*affine)*s`` -- compulsory traffic: input read
    once, output written once, weight and bias read once (see the ``LAYERNORM_*`` constants for the FLOP count).

    Parameters
    ----------
    numel : int
        Total elements (>= 1, a multiple of ``normalized_size``).
    normalized_size : int
        Elements per normalized row ``n`` (>= 1).
    dtype_bytes : float or str
        Bytes per element ``s`` or a dtype name.
    affine : bool
        Whether a learned scale and shift are applied.

    Examples
    --------
    >>> layernorm_cost(1024 * 4096, 4096, "bf16")
    OpCost(flops=29364224.0, bytes_moved=16793600.0)
    """
    numel, n = _count(numel, "numel"), _count(normalized_size, "normalized_size")
    size, affine = _dtype_bytes(dtype_bytes), v.boolean(affine, "affine")
    if numel % n:
        raise ValueError(f"numel must be a multiple of normalized_size ({n}); got {numel}")
    per_element = LAYERNORM_FLOPS_PER_ELEMENT + (LAYERNORM_AFFINE_FLOPS_PER_ELEMENT if affine else 0)
    flops = float(numel * per_element + LAYERNORM_FLOPS_PER_ROW * (numel // n))
    return OpCost(flops, (2.0 * numel + (2 * n if affine else 0)) * size)
