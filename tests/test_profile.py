"""Tests for efflab.profile: FLOP totals against FlopCounterMode (the oracle) on an MLP, a small CNN and a transformer
block with SDPA; compulsory bytes against hand-computed traffic; regimes on the measured CPU roofline."""

from __future__ import annotations

import contextlib

import pytest
from helpers import load_benchmark

torch = pytest.importorskip("torch")
nn = torch.nn

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count  # noqa: E402

from efflab.ceilings import machine_roofline  # noqa: E402
from efflab.profile import OpProfile, dtype_name, profile_ops  # noqa: E402
from efflab.roofline import Roofline  # noqa: E402

# A fixed roofline for counting tests (the counts do not depend on it): a 2-core AVX-512 CPU's order of magnitude.
ROOF = Roofline(compute={"fp32": 1e11}, memory={"dram": 2.5e10}, latency_s=2e-6, name="test CPU")
CPU_SDPA = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu


# The pre-norm transformer block (LayerNorm, QKV, causal SDPA, projection, GELU MLP, residuals) that
# benchmarks/bench_profile.py times: one definition, profiled here at d=64.
Block = load_benchmark("bench_profile").Block


def mlp():
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10)), torch.randn(8, 32)


def cnn():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 3 * 3, 10),
    ).eval()
    return model, torch.randn(2, 3, 16, 16)


def block():
    return Block(d=64, heads=4), torch.randn(2, 16, 64)


def flop_counter_total(model, x, **kwargs):
    with FlopCounterMode(display=False, **kwargs) as counter:
        model(x)
    return counter.get_total_flops()


@pytest.mark.parametrize("make", [mlp, cnn, block])
@pytest.mark.parametrize("grad", [False, True])
def test_flops_equal_flop_counter_mode(make, grad):
    torch.manual_seed(0)
    model, x = make()
    with torch.set_grad_enabled(grad):
        prof = profile_ops(model, x, roofline=ROOF)
        expected = flop_counter_total(model, x)
        # FlopCounterMode has no formula for the CPU SDPA kernel; registered with its own formula, totals agree too.
        mapping = {CPU_SDPA: lambda q, k, v, *a, out_shape=None, **kw: sdpa_flop_count(q, k, v)}
        with_sdpa = flop_counter_total(model, x, custom_mapping=mapping)
    assert prof.flop_counter_flops == expected
    sdpa = sum(r.flops for r in prof.records if r.name == "aten._scaled_dot_product_flash_attention_for_cpu")
    assert prof.flop_counter_flops + sdpa == with_sdpa
    assert prof.total_flops > prof.flop_counter_flops  # elementwise, norms, pooling are counted on top


def test_sdpa_is_counted_with_flop_counter_formula():
    model, x = block()
    prof = profile_ops(model, x, roofline=ROOF)
    (sdpa,) = [r for r in prof.records if "scaled_dot_product" in r.name]
    b, h, t, dh = 2, 4, 16, 16
    assert sdpa.flops == 2 * (2 * b * h * t * t * dh)  # QK^T and PV, one FMA = 2 FLOPs
    assert sdpa.module_path == "Block"


def test_own_counts_on_norms_softmax_and_elementwise():
    x = torch.randn(4, 8, 32)
    ln = nn.LayerNorm(32)
    (rec,) = profile_ops(ln, x, roofline=ROOF).records
    assert rec.name == "aten.native_layer_norm"
    assert rec.flops == x.numel() * (5 + 2) + 4 * (x.numel() // 32)  # efflab.roofline.layernorm_cost's count
    rec = profile_ops(lambda t: torch.softmax(t, dim=-1), x, roofline=ROOF).records[0]
    assert rec.flops == 5 * x.numel()
    rec = profile_ops(torch.relu, x, roofline=ROOF).records[0]
    assert rec.flops == x.numel()
    rec = profile_ops(lambda t: t.sum(), x, roofline=ROOF).records[0]
    assert rec.flops == x.numel()


def test_bytes_hand_computed():
    a, b = torch.randn(1000), torch.randn(1000)
    (add,) = profile_ops(torch.add, a, b, roofline=ROOF).records
    assert add.bytes_moved == 3 * 1000 * 4 and add.flops == 1000  # read a, b; write a+b
    m, k, n = 64, 128, 32
    x, w = torch.randn(m, k), torch.randn(k, n)
    (mm,) = profile_ops(torch.mm, x, w, roofline=ROOF).records
    assert mm.bytes_moved == 4 * (m * k + k * n + m * n) and mm.flops == 2 * m * k * n
    assert mm.intensity_flops_per_byte == pytest.approx(2 * m * k * n / (4 * (m * k + k * n + m * n)))
    # Broadcast bias: the (n,) bias is read once, not m times.
    y, bias = torch.randn(m, n), torch.randn(n)
    (badd,) = profile_ops(torch.add, y, bias, roofline=ROOF).records
    assert badd.bytes_moved == 4 * (m * n + n + m * n)
    # x * x reads x once.
    (sq,) = profile_ops(lambda t: t * t, a, roofline=ROOF).records
    assert sq.bytes_moved == 2 * 1000 * 4
    # Views move nothing; bf16 halves the bytes.
    (view,) = profile_ops(lambda t: t.view(10, 100), a, roofline=ROOF).records
    assert view.bytes_moved == 0 and view.flops == 0 and view.regime == "latency"
    h = a.to(torch.bfloat16)
    (hadd,) = profile_ops(torch.add, h, h + 1, roofline=ROOF).records
    assert hadd.bytes_moved == 3 * 1000 * 2 and hadd.dtype == "bf16"


def test_in_place_and_copy_bytes():
    a, b = torch.randn(500), torch.randn(500)
    (rec,) = profile_ops(lambda s, o: s.add_(o), a, b, roofline=ROOF).records
    assert rec.bytes_moved == 3 * 500 * 4  # read a, read b, write a
    (rec,) = profile_ops(lambda d, s: d.copy_(s), a, b, roofline=ROOF).records
    assert rec.bytes_moved == 2 * 500 * 4 and rec.flops == 0  # read b, write a


def test_embedding_reads_only_gathered_rows():
    emb = nn.Embedding(10_000, 64)
    idx = torch.tensor([1, 5, 7])
    (rec,) = profile_ops(emb, idx, roofline=ROOF).records
    assert rec.bytes_moved == idx.numel() * 8 + 2 * 3 * 64 * 4  # indices + rows read + rows written


def test_module_paths_and_aggregation():
    model, x = block()
    prof = profile_ops(model, x, roofline=ROOF)
    paths = {r.module_path for r in prof.records}
    assert {"Block.ln1", "Block.qkv", "Block.mlp.0", "Block.mlp.1", "Block.mlp.2"} <= paths
    by_module = prof.by_module(depth=2)
    assert sum(row["flops"] for row in by_module) == prof.total_flops
    assert sum(row["count"] for row in prof.by_op()) == len(prof.records)
    assert prof.total_time_s == pytest.approx(sum(r.time_s for r in prof.records))
    assert all(r.time_s > 0 for r in prof.records)
    assert "addmm" in prof.to_table() and "<table>" in prof._repr_html_()
    assert len(prof.to_records()) == len(prof.records) and "flop_rule" in prof.to_records()[0]


def test_regimes_on_the_measured_roofline(measured_roofline):
    big = torch.randn(512, 512)
    (mm,) = profile_ops(torch.mm, big, big, roofline=measured_roofline).records
    assert mm.regime == "compute"
    long = torch.randn(8_000_000)
    (add,) = profile_ops(torch.add, long, long + 1, roofline=measured_roofline).records
    assert add.regime == "memory"
    tiny = torch.ones(1)
    (small,) = profile_ops(torch.add, tiny, tiny, roofline=measured_roofline).records
    assert small.regime == "latency"


def test_default_roofline_is_measured_once(measured_roofline, monkeypatch):

    machine_roofline.cache_clear()
    calls = []
    monkeypatch.setattr("efflab.ceilings.measure_ceilings", lambda **kw: calls.append(kw) or measured_roofline)
    a = torch.ones(3)
    first = profile_ops(torch.neg, a)
    second = profile_ops(torch.neg, a)
    assert len(calls) == 1 and first.roofline is second.roofline is measured_roofline
    assert isinstance(first, OpProfile)
    machine_roofline.cache_clear()


def test_bad_input():
    with pytest.raises(TypeError, match="fn_or_module"):
        profile_ops(3)
    with pytest.raises(TypeError, match="roofline"):
        profile_ops(torch.neg, torch.ones(2), roofline="cpu")
    assert dtype_name(torch.float16) == "fp16"


@pytest.fixture(scope="module")
def measured_roofline():
    from efflab.ceilings import measure_ceilings

    return measure_ceilings(device="cpu", dtypes=("fp32",), quick=True)


@pytest.mark.gpu
def test_cuda_profile_uses_events():
    model, x = block()
    model, x = model.cuda(), x.cuda()
    prof = profile_ops(model, x, roofline=ROOF)
    assert prof.flop_counter_flops == flop_counter_total(model, x)
    assert all(r.time_s > 0 for r in prof.records if r.bytes_moved > 0)


# --- Fused inference ops of nn.TransformerEncoderLayer / nn.MultiheadAttention (the "fast path") ----------------------

FUSED = ("aten._transformer_encoder_layer_fwd", "aten._native_multi_head_attention")
# (d_model, heads, seq, batch)
FUSED_SIZES = [(64, 4, 16, 2), (128, 8, 32, 3)]
SDPA_MAPPING = {CPU_SDPA: lambda q, k, v, *a, out_shape=None, **kw: sdpa_flop_count(q, k, v)}


class SelfAttention(nn.Module):
    """``nn.MultiheadAttention`` called as self-attention, ``attn(x, x, x, **kwargs)``."""

    def __init__(self, d, heads, **kwargs):
        super().__init__()
        self.attn, self.kwargs = nn.MultiheadAttention(d, heads, batch_first=True), kwargs

    def forward(self, x):
        return self.attn(x, x, x, **self.kwargs)


def encoder_layer(d, heads, activation="relu", norm_first=False):
    return nn.TransformerEncoderLayer(
        d, heads, 4 * d, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    )


FUSED_MODELS = {
    "layer-relu-post": lambda d, h: encoder_layer(d, h),
    "layer-gelu-post": lambda d, h: encoder_layer(d, h, activation="gelu"),
    "layer-relu-pre": lambda d, h: encoder_layer(d, h, norm_first=True),
    "layer-gelu-pre": lambda d, h: encoder_layer(d, h, activation="gelu", norm_first=True),
    "encoder-2-layers": lambda d, h: nn.TransformerEncoder(encoder_layer(d, h), num_layers=2),
    "mha-weights": lambda d, h: SelfAttention(d, h),
    "mha-no-weights": lambda d, h: SelfAttention(d, h, need_weights=False),
}


def fused_case(name, size):
    torch.manual_seed(0)
    d, heads, seq, batch = size
    return FUSED_MODELS[name](d, heads).eval(), torch.randn(batch, seq, d)


@contextlib.contextmanager
def mha_fastpath(enabled):
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(enabled)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def fused_profile(model, x, *args):
    """profile_ops under no_grad in eval mode, and its fused records (skips when torch takes no fast path)."""
    with torch.no_grad():
        prof = profile_ops(model, x, *args, roofline=ROOF, repeats=0)
    fused = [r for r in prof.records if r.name in FUSED]
    if not fused:
        pytest.skip("this torch build runs nn.TransformerEncoderLayer/MultiheadAttention unfused under no_grad")
    return prof, fused


class CaptureFused(TorchDispatchMode):
    """Records the (func, args, kwargs) of each fused op, to count its parts with efflab.profile._fused_flop_parts."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if f"aten.{func._overloadpacket.__name__}" in FUSED:
            self.calls.append((func, args, kwargs))
        return func(*args, **kwargs)


@pytest.mark.parametrize("size", FUSED_SIZES, ids=lambda s: f"d{s[0]}")
@pytest.mark.parametrize("name", list(FUSED_MODELS))
def test_fused_flops_equal_unfused(name, size):
    model, x = fused_case(name, size)
    prof, fused = fused_profile(model, x)
    expected_ops = 2 if name.startswith("encoder") else 1
    assert len(fused) == expected_ops and prof.total_flops > 0
    assert all(r.flop_rule.startswith("efflab: fused") and r.flops > 0 for r in fused)
    grad = profile_ops(model, x, roofline=ROOF, repeats=0)  # parameters require grad: no fast path
    with torch.no_grad(), mha_fastpath(False):
        off = profile_ops(model, x, roofline=ROOF, repeats=0)
    assert torch.backends.mha.get_fastpath_enabled()
    for unfused in (grad, off):
        assert not any(r.name in FUSED for r in unfused.records)
        assert prof.total_flops == pytest.approx(unfused.total_flops, rel=0.01)
    # FlopCounterMode sees no FLOPs in the fused op; profile_ops' flop_counter_flops keeps matching it.
    with torch.no_grad():
        assert prof.flop_counter_flops == flop_counter_total(model, x)


@pytest.mark.parametrize("size", FUSED_SIZES, ids=lambda s: f"d{s[0]}")
@pytest.mark.parametrize("name", list(FUSED_MODELS))
def test_fused_gemm_part_equals_flop_counter_mode_unfused(name, size):
    from efflab.profile import _FUSED_GEMM_PARTS, _fused_flop_parts

    model, x = fused_case(name, size)
    prof, fused = fused_profile(model, x)
    capture = CaptureFused()
    with torch.no_grad(), capture:
        model(x)
    parts = [_fused_flop_parts(func, args, kwargs)[0] for func, args, kwargs in capture.calls]
    assert [sum(p.values()) for p in parts] == [r.flops for r in fused]
    gemm = sum(v for p in parts for k, v in p.items() if k in _FUSED_GEMM_PARTS)
    # The unfused path with autograd on: FlopCounterMode's GEMM count, its SDPA formula registered for the CPU kernel.
    assert gemm == pytest.approx(flop_counter_total(model, x, custom_mapping=SDPA_MAPPING), rel=1e-12)


def test_fused_encoder_layer_hand_count():
    d, heads, seq, batch = FUSED_SIZES[1]
    model, x = fused_case("layer-gelu-pre", FUSED_SIZES[1])
    _, (rec,) = fused_profile(model, x)
    n, f, dh = batch * seq, 4 * d, d // heads
    gemms = 2 * n * d * 3 * d + 2 * (2 * batch * heads * seq * seq * dh) + 2 * n * d * d + 2 * (2 * n * d * f)
    elementwise = n * 3 * d + 2 * n * d + 5 * n * f  # QKV bias add, two residual adds, GELU (erf form: 5 ops)
    norms = 2 * ((5 + 2) * n * d + 4 * n)  # efflab.opcost.layernorm_cost's count, twice
    assert rec.flops == gemms + elementwise + norms
    assert "gelu" in rec.flop_rule and "pre-norm" in rec.flop_rule
    # Compulsory bytes: the input, every weight and bias passed to the op, the output.
    params = sum(p.numel() for p in model.parameters())
    assert rec.bytes_moved == 4 * (2 * x.numel() + params)


def test_fused_regime_follows_corrected_flops():
    model, x = fused_case("layer-relu-post", FUSED_SIZES[1])
    _, (rec,) = fused_profile(model, x)
    assert rec.flops > 0
    assert rec.intensity_flops_per_byte == pytest.approx(rec.flops / rec.bytes_moved)
    assert rec.regime == str(ROOF.classify(rec.flops, rec.bytes_moved, dtype="fp32").regime) == "compute"
    assert str(ROOF.classify(0.0, rec.bytes_moved, dtype="fp32").regime) == "memory"  # what 0 FLOPs gave
    with torch.inference_mode():
        (inf,) = profile_ops(model, x, roofline=ROOF, repeats=0).records
    assert (inf.name, inf.flops, inf.bytes_moved) == (rec.name, rec.flops, rec.bytes_moved)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
def test_fused_encoder_with_padding_mask_counts_real_tokens():
    """TransformerEncoder turns a padded batch into a nested tensor: each sequence is counted on its own tokens."""
    model, x = fused_case("encoder-2-layers", FUSED_SIZES[0])
    pad = torch.zeros(x.shape[:2], dtype=torch.bool)
    pad[1, 10:] = True  # sequence 1 has 10 real tokens
    prof, fused = fused_profile(lambda t: model(t, src_key_padding_mask=pad), x)
    assert len(fused) == 2 and all("nested input" in r.flop_rule for r in fused)
    assert fused[0].shapes[0] == ((16, 64), (10, 64))
    # Oracle: the unfused model on each unpadded sequence alone (autograd on).
    per_sequence = sum(
        profile_ops(model, x[i : i + 1, :length], roofline=ROOF, repeats=0).total_flops
        for i, length in enumerate((16, 10))
    )
    assert prof.total_flops == pytest.approx(per_sequence, rel=0.01)
    padded = profile_ops(lambda t: model(t, src_key_padding_mask=pad), x, roofline=ROOF, repeats=0)
    assert prof.total_flops < padded.total_flops  # the padded unfused path also computes the padding


@pytest.mark.parametrize(("approximate", "per"), [("none", 5), ("tanh", 8)])
def test_gelu_counts_its_elementary_operations(approximate, per):
    # One convention for every op: one FLOP per elementary operation, a transcendental included (softmax: 5).
    # The tanh form written out is 8 aten ops of 1 FLOP each, so fused and unfused GELU count the same arithmetic.
    from efflab.fusion import gelu_tanh_unfused

    x = torch.randn(1000)
    (rec,) = [
        r for r in profile_ops(lambda t: torch.nn.functional.gelu(t, approximate=approximate), x, roofline=ROOF).records
    ]
    assert rec.flops == per * x.numel() and "GELU" in rec.flop_rule
    if approximate == "tanh":
        assert profile_ops(gelu_tanh_unfused, x, roofline=ROOF).total_flops == rec.flops
