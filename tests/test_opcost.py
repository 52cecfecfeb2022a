"""Op costs (efflab.opcost) against hand-computed cases, torch's FlopCounterMode and the source's memory-bound ops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from efflab.opcost import (
    DTYPE_BYTES,
    OpCost,
    attention_cost,
    conv2d_cost,
    elementwise_cost,
    embedding_cost,
    layernorm_cost,
    matmul_cost,
    softmax_cost,
)
from efflab.roofline import ridge_point

H100_BF16_FLOPS_PER_S = 989.4e12  # H100 SXM datasheet, dense bf16 (the sparse figure is 1979)
H100_BW_BYTES_PER_S = 3.35e12  # H100 SXM HBM3


def test_opcost_arithmetic():
    a, b = OpCost(10, 4), OpCost(2, 4)
    assert a + b == OpCost(12.0, 8.0) and sum([a, b]) == OpCost(12.0, 8.0)
    assert (a + b).intensity_flops_per_byte == 1.5
    with pytest.raises(ValueError, match="bytes_moved"):
        _ = OpCost(1.0, 0.0).intensity_flops_per_byte
    with pytest.raises(TypeError):
        _ = a + 1


def test_hand_computed_costs():
    assert matmul_cost(2, 3, 4, 2) == OpCost(2 * 2 * 3 * 4, (2 * 4 + 4 * 3 + 2 * 3) * 2)
    assert matmul_cost(2, 3, 4, "fp32", batch=5) == OpCost(5 * 48, 5 * 26 * 4)
    assert elementwise_cost(100, "int4", flops_per_element=0, inputs=1) == OpCost(0.0, 100.0)
    assert embedding_cost(10, 8, 2, index_bytes=4) == OpCost(0.0, 10 * 4 + 2 * 10 * 8 * 2)
    assert softmax_cost(10, 2) == OpCost(50.0, 40.0)
    assert layernorm_cost(12, 4, 4, affine=False) == OpCost(12 * 5 + 3 * 4, 2 * 12 * 4)
    assert DTYPE_BYTES["bf16"] == 2 and DTYPE_BYTES["int4"] == 0.5


def _torch():
    return pytest.importorskip("torch")


def _counted_flops(fn, *args, **kwargs):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        out = fn(*args, **kwargs)
    return counter.get_total_flops(), out


@pytest.mark.parametrize(("m", "n", "k", "batch"), [(1, 1, 1, 1), (7, 5, 3, 1), (64, 32, 16, 4), (1, 256, 512, 1)])
def test_matmul_against_torch(m, n, k, batch):
    torch = _torch()
    a, b = torch.randn(batch, m, k), torch.randn(batch, k, n)
    flops, out = _counted_flops(torch.bmm, a, b)
    cost = matmul_cost(m, n, k, 4, batch=batch)
    assert cost.flops == flops
    assert cost.bytes_moved == a.nbytes + b.nbytes + out.nbytes


@pytest.mark.parametrize(
    ("c_in", "c_out", "size", "kernel", "stride", "padding", "groups", "bias"),
    [(3, 8, 9, 3, 1, 0, 1, False), (4, 8, 10, (3, 1), (2, 1), (1, 0), 2, True), (16, 16, 8, 3, 1, 1, 16, False)],
)
def test_conv2d_against_torch(c_in, c_out, size, kernel, stride, padding, groups, bias):
    torch = _torch()
    x = torch.randn(2, c_in, size, size + 1)
    conv = torch.nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, groups=groups, bias=bias)
    flops, out = _counted_flops(conv, x)
    cost = conv2d_cost(2, c_in, c_out, size, size + 1, kernel, stride, padding, groups, 4, bias)
    bias_adds = out.numel() if bias else 0  # FlopCounterMode does not count the bias add
    assert cost.flops == flops + bias_adds
    params = sum(p.nbytes for p in conv.parameters())
    assert cost.bytes_moved == x.nbytes + params + out.nbytes


@pytest.mark.parametrize(("s", "s_kv", "heads", "kv_heads"), [(5, 5, 2, 2), (3, 7, 4, 2), (1, 16, 4, 1)])
def test_attention_against_torch(s, s_kv, heads, kv_heads):
    torch = _torch()
    b, d = 2, 8
    q, k, v = torch.randn(b, heads, s, d), torch.randn(b, kv_heads, s_kv, d), torch.randn(b, kv_heads, s_kv, d)
    rep = heads // kv_heads

    def attention(q, k, v):
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1) @ v

    flops, out = _counted_flops(attention, q, k, v)
    cost = attention_cost(b, heads, s, d, kv_seq_len=s_kv, dtype_bytes=4, kv_heads=kv_heads)
    assert cost.flops == flops
    assert cost.bytes_moved == q.nbytes + k.nbytes + v.nbytes + out.nbytes
    sdpa = torch.nn.functional.scaled_dot_product_attention
    reference = sdpa(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1))
    np.testing.assert_allclose(out, reference, atol=1e-5)
    # causal: count the pairs torch's is_causal mask keeps
    kept = int(torch.ones(s, s_kv).tril().sum())
    assert attention_cost(b, heads, s, d, s_kv, 4, causal=True, kv_heads=kv_heads).flops == 4 * b * heads * kept * d


def test_memory_bound_ops_per_source():
    # MLSysBook names embedding, normalization, softmax and depthwise convolution memory-bound on datacenter
    # GPUs, and big dense matmuls compute-bound.
    ridge = ridge_point(H100_BF16_FLOPS_PER_S, H100_BW_BYTES_PER_S)
    for cost in (
        embedding_cost(4096, 4096, "bf16"),
        layernorm_cost(4096 * 4096, 4096, "bf16"),
        softmax_cost(4096 * 4096, "bf16"),
        conv2d_cost(32, 256, 256, 56, 56, 3, padding=1, groups=256, dtype_bytes="bf16"),
    ):
        assert cost.flops / cost.bytes_moved < ridge
    assert matmul_cost(8192, 8192, 8192, "bf16").intensity_flops_per_byte > ridge
