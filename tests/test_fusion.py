"""Fusion and weight-dtype levers: numerics against torch and float64, bytes against a hand count and profile_ops."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from efflab.fusion import (  # noqa: E402
    compare_fusion,
    compare_weight_dtypes,
    gelu_tanh_fused,
    gelu_tanh_unfused,
    unfused_gelu_bytes,
)
from efflab.profile import profile_ops  # noqa: E402
from efflab.roofline import Roofline  # noqa: E402

ROOF = Roofline(compute={"fp32": 1e11}, memory={"dram": 2e10}, latency_s=1e-6, name="test roofline")


def _gelu_tanh_float64(x: np.ndarray) -> np.ndarray:
    # Hendrycks & Gimpel's tanh approximation, written out independently in float64.
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


@pytest.mark.parametrize("seed", range(5))
def test_unfused_and_fused_agree_with_float64_oracle(seed):
    x = torch.randn(10_000, generator=torch.Generator().manual_seed(seed)) * 4
    expected = _gelu_tanh_float64(x.double().numpy())
    np.testing.assert_allclose(gelu_tanh_unfused(x).numpy(), expected, atol=2e-6, rtol=1e-5)
    np.testing.assert_allclose(gelu_tanh_fused(x).numpy(), expected, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1,), (10_000,), (33, 64)])
def test_fused_equals_the_unfused_torch_reference(dtype, shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=dtype) * 4
    torch.testing.assert_close(gelu_tanh_fused(x), gelu_tanh_unfused(x))
    strided = x[..., ::2]  # a non-contiguous view
    torch.testing.assert_close(gelu_tanh_fused(strided), gelu_tanh_unfused(strided))
    # Fixed points of the formula: gelu(0) = 0; tanh saturates, so gelu(x) = x far right and 0 far left.
    edges = torch.tensor([0.0, 10.0, -10.0], dtype=dtype)
    for fn in (gelu_tanh_fused, gelu_tanh_unfused):
        torch.testing.assert_close(fn(edges), torch.tensor([0.0, 10.0, 0.0], dtype=dtype))


# gelu_tanh_unfused, 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3))), op by op in Python's evaluation order:
# (aten op, tensor-sized reads, tensor-sized writes). 10 reads + 8 writes = 18 transfers; fused: 1 read + 1 write.
UNFUSED_OPS = (
    ("aten.pow", 1, 1),  # x**3
    ("aten.mul", 1, 1),  # 0.044715 * x**3
    ("aten.add", 2, 1),  # x + (.)
    ("aten.mul", 1, 1),  # sqrt(2/pi) * (.)          -> inner
    ("aten.mul", 1, 1),  # 0.5 * x
    ("aten.tanh", 1, 1),  # tanh(inner)
    ("aten.add", 1, 1),  # 1 + tanh(inner)
    ("aten.mul", 2, 1),  # (0.5 x) * (1 + tanh)
)


@pytest.mark.parametrize("numel", [1, 1000])
def test_unfused_chain_op_by_op(numel):
    # One FLOP per element per elementwise op; the fused gelu counts the same 8 elementary operations per element.
    x = torch.randn(numel)
    records = profile_ops(gelu_tanh_unfused, x, roofline=ROOF).records
    assert [(r.name, r.flops, r.bytes_moved) for r in records] == [
        (name, numel, (reads + writes) * numel * 4) for name, reads, writes in UNFUSED_OPS
    ]
    (fused,) = profile_ops(gelu_tanh_fused, x, roofline=ROOF).records
    assert (fused.name, fused.flops, fused.bytes_moved) == ("aten.gelu", 8 * numel, 2 * numel * 4)


@pytest.mark.parametrize("numel", [1, 1000, 4096])
def test_compare_fusion_against_the_hand_count(numel):
    c = compare_fusion(numel, roofline=ROOF, min_run_s=0.005, device="cpu")
    assert (c.numel, c.dtype, c.device) == (numel, "fp32", "cpu")
    assert (c.unfused.kernels, c.fused.kernels) == (len(UNFUSED_OPS), 1)
    assert c.unfused.bytes_moved == 18 * numel * 4 and c.fused.bytes_moved == 2 * numel * 4
    assert c.unfused.flops == c.fused.flops == 8 * numel  # fusion keeps the arithmetic
    assert c.fused.bytes_moved < c.unfused.bytes_moved and c.bytes_ratio == 9.0
    assert unfused_gelu_bytes(numel) == (18 * numel * 4, 2 * numel * 4)
    assert unfused_gelu_bytes(numel, dtype_bytes=2) == (18 * numel * 2, 2 * numel * 2)
    # The derived figures recombine the two measured times; nothing is measured twice.
    assert c.speedup == c.unfused.time_s / c.fused.time_s
    for variant in (c.unfused, c.fused):
        assert variant.effective_bandwidth_bytes_per_s == variant.bytes_moved / variant.time_s
    assert c.compiled is None and c.compile_time_s is None
    text = " ".join(c.to_text().split())
    assert "bytes unfused/fused = 9x" in text and f"over {numel:,} fp32 elements on cpu" in text


def test_energy_charges_same_flops_and_fewer_bytes():
    c = compare_fusion(2048, roofline=ROOF, min_run_s=0.005, device="cpu")
    unfused, fused = c.energy()
    assert unfused.compute_j == fused.compute_j
    assert unfused.movement_j == pytest.approx(9 * fused.movement_j)
    # 8 FLOPs per element at 2.3 pJ, 18 * 4 bytes per element at 162.5 pJ/B (hand-computed from Horowitz's table).
    assert unfused.total_j == pytest.approx(2048 * (8 * 2.3e-12 + 72 * 162.5e-12))


def test_weight_dtypes_bytes_and_error():
    out_f, in_f = 96, 160
    fp32, int8 = compare_weight_dtypes(out_f, in_f, roofline=ROOF, min_run_s=0.005, device="cpu")
    assert (fp32.weight_dtype, int8.weight_dtype) == ("fp32", "int8")
    assert fp32.weight_bytes == 4 * out_f * in_f
    assert int8.weight_bytes == out_f * in_f + 2 * out_f  # int8 W and one bf16 scale per row
    assert int8.weight_bytes < fp32.weight_bytes
    # Compulsory bytes of F.linear: W, x and y in fp32.
    assert fp32.bytes_moved == 4 * (out_f * in_f + in_f + out_f)
    assert fp32.effective_bandwidth_bytes_per_s == fp32.bytes_moved / fp32.time_s
    assert fp32.relative_error is None  # the reference the int8 result is measured against
    if int8.time_s is None:
        assert "unavailable" in int8.skipped
    else:
        # int8 W, bf16 x, bf16 scales and bf16 y.
        assert int8.bytes_moved == out_f * in_f + 2 * (in_f + out_f + out_f)
        assert int8.bytes_moved < fp32.bytes_moved
        assert int8.relative_error < 2e-2  # bf16 activations: ~3 significant digits
        assert int8.effective_bandwidth_bytes_per_s == int8.bytes_moved / int8.time_s


def test_bad_input():
    with pytest.raises(ValueError, match="numel"):
        unfused_gelu_bytes(0)
    with pytest.raises(TypeError, match="numel"):
        compare_fusion(1.5, roofline=ROOF)
    with pytest.raises(ValueError, match="min_run_s"):
        compare_fusion(16, roofline=ROOF, min_run_s=0)
    with pytest.raises(ValueError, match="out_features"):
        compare_weight_dtypes(0, 4, roofline=ROOF)


# --- claims judged on the page's own figures --------------------------------------------------------------------------


def _matvec(speedup, spread=0.0):
    from efflab.fusion import MatvecVariant

    fp32 = MatvecVariant("fp32 weights", "fp32", 256 << 20, 4.0e8, 0.02, relative_iqr=spread)
    int8 = MatvecVariant("int8 weights", "int8", 64 << 20, 1.0e8, 0.02 / speedup, relative_iqr=spread)
    return fp32, int8


def test_weight_dtype_claim_holds_up_to_the_byte_ratio(monkeypatch):
    from efflab import claims
    from efflab.fusion import weight_dtype_claims

    monkeypatch.setenv(claims.STRICT_ENV, "1")
    dram_only = {"l2": 2 << 20, "l3": 8 << 20}
    for speedup in (1.5, 3.9, 4.0 * 1.15):  # byte ratio 4.0 (4e8 / 1e8), slack 15 %
        (v,) = weight_dtype_claims(_matvec(speedup), caches=dram_only, cpu_flags=("avx2",))
        assert v.held, v
    (v,) = weight_dtype_claims(_matvec(4.0 * 1.16), caches={"l3": 96 << 20}, cpu_flags=("avx2",))
    assert not v.held and "the int8 layer reads from cache" in v.why
    (v,) = weight_dtype_claims(_matvec(7.2), caches={"l3": 480 << 20}, cpu_flags=("avx2",))
    assert "and so do the 256 MiB of fp32 ones" in v.why


def test_weight_dtype_claim_no_faster_is_diagnosed_or_fails(monkeypatch):
    from efflab import claims
    from efflab.claims import UnexplainedClaim
    from efflab.fusion import weight_dtype_claims

    monkeypatch.setenv(claims.STRICT_ENV, "1")
    dram_only = {"l3": 8 << 20}
    (v,) = weight_dtype_claims(_matvec(1.03, spread=0.05), caches=dram_only, cpu_flags=("avx2",))
    assert "within the measurement's run-to-run spread" in v.why
    (v,) = weight_dtype_claims(_matvec(0.4), caches=dram_only, cpu_flags=("avx2", "fma"))
    assert "no native bf16" in v.why
    with pytest.raises(UnexplainedClaim):  # native bf16, no noise, no cache story: nothing explains a slowdown
        weight_dtype_claims(_matvec(0.4), caches=dram_only, cpu_flags=("avx512f", "amx_bf16"))
    with pytest.raises(UnexplainedClaim):  # on CUDA the CPU's bf16 support explains nothing
        weight_dtype_claims(_matvec(0.4), device="cuda", caches=dram_only, cpu_flags=("avx2",))


def test_weight_dtype_claim_needs_both_measurements():
    from dataclasses import replace

    from efflab.fusion import weight_dtype_claims

    fp32, int8 = _matvec(2.0)
    assert weight_dtype_claims((fp32, replace(int8, time_s=None, skipped="no kernel"))) == ()


def test_fusion_claims_on_hand_made_times():
    from efflab.fusion import ChainVariant, FusionComparison

    roof = Roofline(compute={"fp32": 1e11}, memory={"dram": 2e10}, latency_s=1e-6)
    caches = {"l2": 1 << 20, "l3": 8 << 20}

    def comparison(unfused_s, fused_s):
        unfused = ChainVariant("unfused", 8, 5e7, 3.02e8, unfused_s)
        return FusionComparison(1 << 22, "fp32", "cpu", unfused, ChainVariant("fused", 1, 5e7, 3.36e7, fused_s))

    # At the roof: 3.02e8 B / 2e10 B/s = 15.1 ms unfused, 1.68 ms fused -> every claim holds.
    assert all(v.held for v in comparison(0.0151, 0.00168).claims(roof, caches))
    # Fused at a quarter of the roof, unfused at the roof: faster, but the time no longer follows the bytes.
    faster, follows, bound = comparison(0.0151, 4 * 0.00168).claims(roof, caches)
    assert faster.held and not follows.held and "more than its traffic" in follows.why
    assert not bound.held and "fused kernel itself reaches only 25%" in bound.why
    # The unfused chain pays far beyond its bytes: per-op costs named.
    faster, follows, _ = comparison(0.0151 * 4, 0.00168).claims(roof, caches)
    assert not follows.held and "each of its 8 ops pays to allocate" in follows.why
