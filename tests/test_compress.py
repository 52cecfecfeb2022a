"""Tests for efflab.compress: each variant against an independent oracle (brute force, torch, hand-computed bytes)."""

from __future__ import annotations

import itertools
import math
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from efflab import compress as C  # noqa: E402
from efflab.compress import Variant  # noqa: E402

WIDTHS = (64, 256, 256, 10)
FP32_EPS = float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def data():
    return C.load_digits_data()


@pytest.fixture(scope="module")
def teacher(data):
    """A briefly trained small MLP: enough structure for pruning and quantization to act on."""
    model = C.make_mlp((64, 48, 32, 10), seed=3)
    C.train(model, data, epochs=3)
    return model


# ------------------------------------------------------------------------------------------------ data, training
def test_split_is_fixed_and_disjoint(data):
    again = C.load_digits_data()
    assert torch.equal(data.x_train, again.x_train) and torch.equal(data.y_test, again.y_test)
    assert data.n_train + data.n_test == 1797
    train_rows = {tuple(r) for r in data.x_train.tolist()}
    # digits has a few duplicate images, so count rather than demand none: a leak of the split would share hundreds
    assert sum(tuple(r) in train_rows for r in data.x_test.tolist()) < 10


def test_training_is_reproducible(data):
    a, b = C.make_mlp((64, 16, 10), seed=1), C.make_mlp((64, 16, 10), seed=1)
    C.train(a, data, epochs=2, seed=5)
    C.train(b, data, epochs=2, seed=5)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_make_mlp_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    C.make_mlp((8, 4, 2), seed=7)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("widths", [(64, 10), (64, 32, 10), (64, 256, 256, 10)])
def test_flop_counts_match_flop_counter_mode(widths):
    from torch.utils.flop_counter import FlopCounterMode

    model, x, batch = C.make_mlp(widths), torch.randn(7, widths[0]), 7
    with FlopCounterMode(display=False) as fwd:
        model(x)
    assert fwd.get_total_flops() == batch * C.forward_flops(widths)
    with FlopCounterMode(display=False) as step:
        torch.nn.functional.cross_entropy(model(x), torch.zeros(batch, dtype=torch.int64)).backward()
    assert step.get_total_flops() == C.training_flops(widths, batch)


# ----------------------------------------------------------------------------------------------------- 4-bit
def _pack_brute(codes):
    rows = []
    for row in codes.tolist():
        rows.append([(lo + 8) + 16 * (hi + 8) for lo, hi in zip(row[0::2], row[1::2], strict=True)])
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_int4_pack_unpack_round_trip_against_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(-8, 8, (5, 2 * (seed + 1)), generator=g, dtype=torch.int8)
    packed = C.pack_int4(codes)
    assert packed.dtype == torch.uint8 and packed.shape == (5, seed + 1)
    assert packed.tolist() == _pack_brute(codes)
    assert torch.equal(C.unpack_int4(packed), codes)
    brute_unpack = [[v for b in row for v in (b % 16 - 8, b // 16 - 8)] for row in packed.tolist()]
    assert C.unpack_int4(packed).tolist() == brute_unpack


def test_every_int4_code_pair_round_trips():
    pairs = torch.tensor(list(itertools.product(range(-8, 8), repeat=2)), dtype=torch.int8)  # all 256 bytes
    packed = C.pack_int4(pairs)
    assert sorted(packed.flatten().tolist()) == list(range(256))
    assert torch.equal(C.unpack_int4(packed), pairs)


@pytest.mark.parametrize("seed", range(3))
def test_int4_error_within_half_a_step(seed):
    model = C.make_mlp((64, 96, 10), seed=seed)
    with torch.no_grad():
        model[0].weight[3, :32] = 0.0  # an all-zero group: scale 0, codes 0, exact
    q = C.quantize_int4(model, group_size=32)
    for lin, ql in ((model[0], q[0]), (model[2], q[2])):
        w = lin.weight.detach()
        groups = w.reshape(w.shape[0], -1, 32)
        scale = (groups.abs().amax(-1) / 7).half()
        assert torch.equal(ql.scale, scale)
        step = ql.scale.float().repeat_interleave(32, dim=1)
        err = (w - ql.dequantized_weight()).abs()
        assert (err <= step / 2 + 4 * FP32_EPS * w.abs()).all()
        assert (ql.dequantized_weight()[3, :32] == 0).all() if ql is q[0] else True
        x = torch.randn(4, lin.in_features)
        expected = torch.nn.functional.linear(x, ql.dequantized_weight(), lin.bias)
        torch.testing.assert_close(ql(x), expected)


def test_int8_dynamic_error_within_half_a_step(teacher, data):
    q = C.quantize_int8_dynamic(teacher)
    for lin, ql in zip(
        C._linears(teacher),
        [m for m in q.modules() if type(m).__name__ == "Linear" and hasattr(m, "_packed_params")],
        strict=True,
    ):
        w = ql.weight()
        ref = lin.weight.detach()
        # half a step, plus the fp32 rounding of the subtraction itself (a few ulps of |w|)
        assert ((ref - w.dequantize()).abs() <= w.q_scale() / 2 + 4 * FP32_EPS * ref.abs()).all()
    assert C.evaluate(q, data) > 0.5  # still a classifier after quantization (the trained model is ~0.9)


# --------------------------------------------------------------------------------------------------- pruning
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.9, 0.95, 1.0])
def test_unstructured_sparsity_is_exact_and_keeps_the_largest(sparsity):
    model = C.make_mlp(WIDTHS, seed=2)
    pruned, masks = C.magnitude_prune(model, sparsity)
    for lin, plin, mask in zip(C._linears(model), C._linears(pruned), masks, strict=True):
        w, pw = lin.weight.detach(), plin.weight.detach()
        k = round(sparsity * w.numel())
        assert int((pw == 0).sum()) == k == int((mask == 0).sum())
        kept, removed = w[mask.bool()].abs(), w[~mask.bool()].abs()
        if kept.numel() and removed.numel():
            assert kept.min() >= removed.max()
        assert torch.equal(pw[mask.bool()], w[mask.bool()])  # survivors unchanged
        assert torch.equal(plin.bias, lin.bias)
    assert all(p.abs().sum() > 0 for p in C._linears(model)[0].parameters())  # the original is untouched


def test_finetuning_with_masks_keeps_pruned_weights_zero(data):
    pruned, masks = C.magnitude_prune(C.make_mlp((64, 32, 10)), 0.8)
    C.train(pruned, data, epochs=1, masks=masks)
    for lin, mask in zip(C._linears(pruned), masks, strict=True):
        assert (lin.weight[mask == 0] == 0).all()
        assert (lin.weight[mask == 1] != 0).all()


def test_csr_model_computes_the_same_and_counts_its_bytes():
    pruned, _ = C.magnitude_prune(C.make_mlp(WIDTHS, seed=4), 0.9)
    sparse = C.to_csr(pruned)
    x = torch.randn(5, 64)
    torch.testing.assert_close(sparse(x), pruned(x), rtol=1e-5, atol=1e-6)
    expected = 0
    for lin in C._linears(pruned):
        nnz = int((lin.weight != 0).sum())
        # values fp32 (4 B) + int32 column index (4 B) per non-zero, int32 row pointers (rows + 1), fp32 bias
        expected += nnz * 8 + (lin.out_features + 1) * 4 + lin.out_features * 4
        assert C.csr_bytes(nnz, lin.out_features) == nnz * 8 + (lin.out_features + 1) * 4
    assert C.model_bytes(sparse) == expected
    assert C.model_bytes(pruned) == C.model_bytes(C.make_mlp(WIDTHS))  # dense storage keeps its zeros


@pytest.mark.parametrize(("keep", "seed"), [(0.5, 0), (0.25, 1), (0.1, 2), (1.0, 3)])
def test_structured_pruning_equals_masking_the_removed_units(keep, seed):
    model = C.make_mlp(WIDTHS, seed=seed)
    pruned, kept = C.structured_prune(model, keep)
    lin, plin = C._linears(model), C._linears(pruned)
    for a, b in itertools.pairwise(plin):  # shapes chain
        assert a.out_features == b.in_features
    assert C.widths_of(pruned) == (64, *(max(1, round(keep * 256)),) * 2, 10)
    for layer, idx in zip(lin[:-1], kept, strict=True):  # kept = the units of largest incoming-weight L2 norm
        norms = [float(torch.linalg.vector_norm(row)) for row in layer.weight.detach()]
        top = sorted(range(len(norms)), key=lambda j: -norms[j])[: len(idx)]
        assert sorted(top) == idx.tolist()
    # oracle: the original network with the removed units' activations forced to zero
    x = torch.randn(9, 64, generator=torch.Generator().manual_seed(seed))
    h = x
    with torch.no_grad():
        for i, layer in enumerate(lin):
            h = layer(h)
            if i < len(kept):
                mask = torch.zeros(layer.out_features)
                mask[kept[i]] = 1
                h = torch.relu(h) * mask
        torch.testing.assert_close(pruned(x), h, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------------ sizes
def test_model_bytes_against_hand_counts():
    model = C.make_mlp(WIDTHS)
    weights = 64 * 256 + 256 * 256 + 256 * 10  # 84,480
    biases = 256 + 256 + 10  # 522
    assert C.model_bytes(model) == (weights + biases) * 4 == 340_008
    assert C.model_bytes(C.cast(model, "fp16")) == C.model_bytes(C.cast(model, "bf16")) == (weights + biases) * 2
    # int8: one byte per weight, fp32 bias, fp32 scale + int32 zero point per layer (3 layers)
    assert C.model_bytes(C.quantize_int8_dynamic(model)) == weights + biases * 4 + 3 * 8
    # int4: half a byte per weight, one fp16 scale per 32 weights, fp32 bias
    assert C.model_bytes(C.quantize_int4(model)) == weights // 2 + weights // 32 * 2 + biases * 4 == 49_608
    assert C.model_bytes(C.quantize_int4(model, group_size=64)) == weights // 2 + weights // 64 * 2 + biases * 4


# ------------------------------------------------------------------------------------------------ distillation
def test_break_even_hand_case():
    # a student whose training cost 1e9 FLOPs and saves 2e5 FLOPs per inference repays after 5,000 inferences
    assert C.break_even_inferences(1e9, 2e5) == pytest.approx(5000.0)
    np.testing.assert_allclose(C.break_even_inferences([1e9, 2e9], 2e5), [5000.0, 10000.0])
    assert C.break_even_inferences(0.0, 1.0) == 0.0
    with pytest.raises(ValueError, match="flops_saved_per_inference"):
        C.break_even_inferences(1e9, 0.0)
    with pytest.raises(ValueError, match="extra_training_flops"):
        C.break_even_inferences(-1.0, 1.0)


def test_distillation_counts_teacher_pass_and_student_training(data, teacher):
    r = C.distill(teacher, data, (64, 8, 10), epochs=2)
    assert r.samples == 2 * data.n_train
    assert r.flops == data.n_train * C.forward_flops((64, 48, 32, 10)) + C.training_flops((64, 8, 10), r.samples)
    assert 0.0 <= C.evaluate(r.model, data) <= 1.0


# ---------------------------------------------------------------------------------------- frontier and choice
def _random_variants(seed, n=25):
    rng = np.random.default_rng(seed)
    return [
        Variant(f"v{i}", "x", float(rng.choice([0.9, 0.95, 0.97])), int(rng.integers(1, 6)) * 1000,
                float(rng.choice([1e-4, 2e-4, 3e-4])), 1.0, 1)
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("seed", range(10))
def test_frontier_mask_and_best_feasible_against_brute_force(seed):
    vs = _random_variants(seed)
    key = [(x.size_bytes, x.latency_s, x.error) for x in vs]

    def dominated(i):
        return any(
            all(a <= b for a, b in zip(key[j], key[i], strict=True)) and key[j] != key[i] for j in range(len(vs))
        )

    assert C.frontier_mask(vs).tolist() == [not dominated(i) for i in range(len(vs))]
    for size, lat, acc in [(math.inf, math.inf, 0.0), (3000, 2e-4, 0.9), (1000, 1e-4, 0.97), (1, 1e-9, 0.0)]:
        ok = [x for x in vs if x.size_bytes <= size and x.latency_s <= lat and x.accuracy >= acc]
        best = C.best_feasible(vs, max_size_bytes=size, max_latency_s=lat, min_accuracy=acc)
        if not ok:
            assert best is None
            continue
        top = max(x.accuracy for x in ok)
        fastest = min(x.latency_s for x in ok if x.accuracy == top)
        assert best.accuracy == top and best.latency_s == fastest
        assert best.size_bytes == min(x.size_bytes for x in ok if x.accuracy == top and x.latency_s == fastest)
        assert C.frontier_mask(vs)[vs.index(best)]


# Tie-heavy values (a few levels each) mixed with arbitrary ones, so that the tie-breaks are exercised.
_ACCURACY = st.one_of(st.sampled_from([0.5, 0.9, 0.95, 0.97]), st.floats(0.0, 1.0))
_SIZE = st.one_of(st.sampled_from([1_000, 2_000, 5_000]), st.floats(1.0, 1e7))
_LATENCY = st.one_of(st.sampled_from([1e-4, 2e-4, 3e-4]), st.floats(1e-6, 1e-1))


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(_ACCURACY, _SIZE, _LATENCY), max_size=12),
    max_size=st.one_of(st.just(math.inf), _SIZE),
    max_latency=st.one_of(st.just(math.inf), _LATENCY),
    floor=_ACCURACY,
)
def test_widget_and_text_choose_the_same_variant(rows, max_size, max_latency, floor):
    """efflab.widgets.best_variant (the explorer, parallel lists -> index) applies compress.best_feasible (the text)."""
    pytest.importorskip("matplotlib")
    from efflab.widgets import best_variant

    vs = [Variant(f"v{i}", "x", a, s, t, 1.0, 1) for i, (a, s, t) in enumerate(rows)]
    acc, size, lat = ([r[k] for r in rows] for k in range(3))
    best = C.best_feasible(vs, max_size_bytes=max_size, max_latency_s=max_latency, min_accuracy=floor)
    index = best_variant(acc, size, lat, max_size, max_latency, floor)
    assert (index is None) == (best is None)
    if best is not None:
        assert vs[index] is best


def test_measure_variant_structure(data):
    model = C.make_mlp((64, 32, 10))
    var = C.measure_variant("m", model, data, family="demo", batch_size=32, min_run_s=0.01)
    assert var.size_bytes == (64 * 32 + 32 + 32 * 10 + 10) * 4
    assert var.flops_per_sample == C.forward_flops((64, 32, 10))
    assert var.latency_s == var.measurement.median_s > 0 and var.measurement.count >= 3
    assert var.as_dict()["name"] == "m" and "model" not in var.as_dict()
    assert "m" in C.format_table([var], mask=[True]) and "yes" in C.format_table([var], mask=[True])


# --------------------------------------------------------------------------------------------------- bad input
def test_bad_input_is_rejected_with_the_argument_named():
    model = C.make_mlp((64, 32, 10))
    with pytest.raises(ValueError, match="sparsity"):
        C.magnitude_prune(model, 1.5)
    with pytest.raises(ValueError, match="keep_fraction"):
        C.structured_prune(model, 0.0)
    with pytest.raises(ValueError, match="codes"):
        C.pack_int4(torch.tensor([9, 0]))
    with pytest.raises(ValueError, match="even"):
        C.pack_int4(torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="packed"):
        C.unpack_int4(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="group_size"):
        C.quantize_int4(model, group_size=48)
    with pytest.raises(ValueError, match="dtype"):
        C.cast(model, "fp8")
    with pytest.raises(ValueError, match="max_size_bytes"):
        C.best_feasible([], max_size_bytes=-1)
    with pytest.raises(ValueError, match="batch_size"):
        C.measure_latency(model, C.load_digits_data(), batch_size=10_000)
    with pytest.raises(ValueError, match="masks"):
        C.train(model, C.load_digits_data(), epochs=0, masks=[None])


@pytest.mark.gpu
def test_variants_time_on_cuda(data):
    model = C.make_mlp((64, 32, 10))
    for variant, dtype in ((model, "fp32"), (C.cast(model, "fp16"), "fp16"), (C.quantize_int4(model), "fp32")):
        m = C.measure_latency(variant, data, 64, dtype, device="cuda", min_run_s=0.01)
        assert m.device.startswith("cuda") and m.median_s > 0
    assert next(model.parameters()).device.type == "cpu"  # the caller's model is not moved


# ------------------------------------------------------------------------ the chapter's claims, judged on variants
def test_compression_claims_held_and_diagnosed(monkeypatch):
    from efflab import claims
    from efflab.claims import UnexplainedClaim
    from efflab.compress import Variant, distillation_claim, precision_claim, pruning_time_claim

    monkeypatch.setenv(claims.STRICT_ENV, "1")
    monkeypatch.setattr(claims.os, "getloadavg", lambda: (0.0, 0.0, 0.0))

    def var(name, family, accuracy=0.98, latency_s=500e-6):
        return Variant(name, family, accuracy, 1, latency_s, 1.0, 256)

    fp32 = var("fp32", "baseline", 0.9866)
    # 98.66 -> 97.33 is 1.33 points: too much, and only the 4-bit format has a reason.
    assert "16 levels per weight" in precision_claim([fp32, var("int4 weight-only", "q", 0.9733)]).why
    with pytest.raises(UnexplainedClaim):
        precision_claim([fp32, var("int8 dynamic", "q", 0.9733)])
    assert precision_claim([fp32, var("int8 dynamic", "q", 0.9777)]).held  # 0.89 points
    # Dense pruned at 1.20x fp32's time breaks "multiplies the zeros like any other number".
    ok = [
        var("pruned 90%", "unstructured", latency_s=505e-6),
        var("structured 64 units", "structured", latency_s=90e-6),
    ]
    assert pruning_time_claim(fp32, ok).held
    with pytest.raises(UnexplainedClaim):
        pruning_time_claim(fp32, [var("pruned 90%", "unstructured", latency_s=600e-6), ok[1]])
    with pytest.raises(ValueError, match="structured"):
        pruning_time_claim(fp32, ok[:1])
    # Distillation: +3.3 images is more than "a few", but inside a 6-image spread between seeds it is noise.
    runs = {"distilled": [0.9800, 0.9866, 0.9800], "labels only": [0.9688, 0.9733, 0.9822]}
    v = distillation_claim(runs, 449)
    assert not v.held and "+3.3 of 449" in v.figures and "spread between seeds of one kind (6 images)" in v.why
    with pytest.raises(UnexplainedClaim):
        distillation_claim({"distilled": [0.99, 0.99, 0.99], "labels only": [0.97, 0.97, 0.97]}, 449)


@pytest.mark.timing_comparison
def test_retime_measures_side_by_side_and_keeps_everything_else():
    from efflab.compress import load_digits_data, make_mlp, measure_variant, retime

    d = load_digits_data()
    small = measure_variant("small", make_mlp((64, 10)), d, family="demo", min_run_s=0.001)
    big = measure_variant("big", make_mlp((64, 512, 512, 10)), d, family="demo", min_run_s=0.001)
    again = retime([small, big], d, rounds=2, min_run_s=0.005)
    assert [x.name for x in again] == ["small", "big"]
    assert again[0].accuracy == small.accuracy and again[1].size_bytes == big.size_bytes
    # ~530k multiply-adds against ~6.4k per image: the big model must stay slower however noisy the machine.
    assert again[1].latency_s > 2 * again[0].latency_s
    with pytest.raises(TypeError, match="measured Variant"):
        retime([small.as_dict()], d)


def test_variant_table_is_one_row_per_variant_with_si_units():
    a = Variant("a", "x", accuracy=0.97, size_bytes=9_640, latency_s=4e-5, flops_per_sample=4736, batch_size=1)
    b = Variant("b", "x", accuracy=0.5, size_bytes=2_000_000, latency_s=3e-3, flops_per_sample=1e6, batch_size=1)
    t = C.variant_table([a, b], mask=[True, False])
    assert t.header == ("variant", "accuracy", "size", "CSR", "MFLOP", "latency", "frontier")
    assert t.rows == (
        ("a", "97.00%", "9.64 kB", "-", "0.005", "40 µs", "yes"),
        ("b", "50.00%", "2 MB", "-", "1.000", "3 ms", "dominated"),
    )
    assert "<table" in t._repr_html_() and t._repr_html_().count("<tr>") == 3
    assert C.variant_table([a], latency=False).header == ("variant", "accuracy", "size", "CSR", "MFLOP")
    with pytest.raises(ValueError, match="mask"):
        C.variant_table([a, b], mask=[True])


def test_only_the_known_quantization_notices_are_silenced(monkeypatch):
    """torch's two known notices for the eager int8 path are silenced; anything new (a removal date, another
    deprecation) reaches the user instead of being swallowed by a blanket filter."""
    import warnings

    import torch

    from efflab.compress import make_mlp, quantize_int8_dynamic, to_csr

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quantize_int8_dynamic(make_mlp((8, 4)))
        to_csr(make_mlp((8, 4)))(torch.randn(2, 8))

    real = torch.ao.quantization.quantize_dynamic

    def noisy(*args, **kwargs):
        warnings.warn("quantize_dynamic will be removed in torch 2.14", DeprecationWarning, stacklevel=2)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.ao.quantization, "quantize_dynamic", noisy)
    with pytest.warns(DeprecationWarning, match="will be removed"):
        quantize_int8_dynamic(make_mlp((8, 4)))


# --------------------------------------------------------------------------------------------- the package itself
def test_imports_without_torch():
    """The facade and every submodule import on a machine without torch; only the torch layers need it."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None  # any "import torch" now fails
        import efflab.compress as C
        from efflab.compress import claims, distillation, frontier, measure, model, precision, prune, variants
        assert C.best_feasible([], min_accuracy=0.5) is None and C.csr_bytes(6554, 256) == 53460
        try:
            C.Int4Linear
        except ImportError:
            pass
        else:
            raise SystemExit("Int4Linear was made without torch")
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_torch_layers_are_module_level_classes():
    """Int4Linear and CsrLinear are one class each (isinstance dispatch, pickling), reachable from the facade."""
    from efflab.compress.precision import Int4Linear
    from efflab.compress.prune import CsrLinear

    assert C.Int4Linear is Int4Linear and C.CsrLinear is CsrLinear
    assert "Int4Linear" in dir(C) and "Int4Linear" not in C.__all__
    model = C.make_mlp((64, 32, 10))
    for variant, cls in ((C.quantize_int4(model), Int4Linear), (C.to_csr(C.magnitude_prune(model, 0.5)[0]), CsrLinear)):
        again = pickle.loads(pickle.dumps(variant))
        assert type(again[0]) is cls and C.model_bytes(again) == C.model_bytes(variant)
        torch.testing.assert_close(again(torch.ones(2, 64)), variant(torch.ones(2, 64)))
    with pytest.raises(AttributeError, match="no attribute"):
        C.Int8Linear  # noqa: B018


def test_executed_flops_per_kind_of_layer():
    """Dense kernels (fp, int8, int4) run 2 * in * out FLOPs per sample; the CSR kernel 2 * nnz."""
    model = C.make_mlp((64, 32, 10))
    dense = C.forward_flops((64, 32, 10))
    pruned = C.magnitude_prune(model, 0.75)[0]
    for variant in (model, C.cast(model, "fp16"), C.quantize_int8_dynamic(model), C.quantize_int4(model), pruned):
        assert C.measure._executed_flops(variant) == dense
    nnz = sum(int((lin.weight != 0).sum()) for lin in C._linears(pruned))
    assert C.measure._executed_flops(C.to_csr(pruned)) == 2 * nnz == dense / 4
