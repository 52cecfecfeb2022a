"""efflab.pipeline: each stage against an oracle, overlapped == sequential, timing structure, the two small models."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from efflab.amdahl import karp_flatt
from efflab.pipeline import (
    STAGES,
    InputPipeline,
    ModelStep,
    PipelineConfig,
    PipelineRun,
    decode_image,
    encode_image,
    fit_serial_fraction,
    overlapped_time_s,
    torch_threads,
)

torch = pytest.importorskip("torch")

SMALL = PipelineConfig(n_images=6, image_hw=20, crop_hw=12, pool=3, batch_size=4, hidden=16, depth=2, noise=3.0)


@pytest.fixture(scope="module")
def pipe():
    return InputPipeline(SMALL)


@pytest.mark.parametrize("seed", range(5))
def test_encode_decode_round_trip(seed):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (int(rng.integers(1, 9)), int(rng.integers(1, 9)), 3), dtype=np.uint8)
    blob = encode_image(img, level=int(rng.integers(0, 10)))
    assert np.array_equal(decode_image(blob, img.shape), img)


def test_encode_is_png_up_filter():
    # Oracle: the Up filter written out row by row in Python integers.
    img = np.array([[[10], [250]], [[5], [3]], [[255], [0]]], np.uint8)
    rows = img.reshape(3, -1).astype(int).tolist()
    filtered = [rows[0]]
    for prev, row in zip(rows[:-1], rows[1:], strict=True):
        filtered.append([(a - b) % 256 for a, b in zip(row, prev, strict=True)])
    assert zlib.decompress(encode_image(img)) == bytes(sum(filtered, []))


def test_decode_rejects_wrong_shape_and_type():
    blob = encode_image(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        decode_image(blob, (3, 2, 3))
    with pytest.raises(TypeError, match="uint8"):
        encode_image(np.zeros((2, 2, 3), np.float32))


def test_pipeline_decode_round_trips_the_dataset(pipe):
    for i in range(3):
        assert np.array_equal(pipe.decode(i), pipe.images[pipe.indices(i)])
    assert pipe.compressed_bytes > 0


def test_augment_against_a_loop_oracle(pipe):
    cfg = pipe.config
    raw = pipe.decode(1)
    x = pipe.augment(raw, 1)
    assert x.shape == (cfg.batch_size, 3, cfg.input_hw, cfg.input_hw) and x.dtype == np.float32
    assert x.flags.c_contiguous
    # Oracle: replay the same random draws and compute crop / flip / mean-pool / normalise with plain loops.
    rng = np.random.default_rng((cfg.seed, 1))
    tops = rng.integers(0, cfg.image_hw - cfg.crop_hw + 1, (cfg.batch_size, 2))
    flips = rng.random(cfg.batch_size) < 0.5
    for k in range(cfg.batch_size):
        r, c = tops[k]
        patch = raw[k, r : r + cfg.crop_hw, c : c + cfg.crop_hw].astype(np.float64)
        if flips[k]:
            patch = patch[:, ::-1]
        for ch in range(3):
            for i in range(cfg.input_hw):
                for j in range(cfg.input_hw):
                    block = patch[i * cfg.pool : (i + 1) * cfg.pool, j * cfg.pool : (j + 1) * cfg.pool, ch]
                    want = (block.mean() / 255.0 - pipe.mean[ch]) / pipe.std[ch]
                    assert x[k, ch, i, j] == pytest.approx(want, rel=1e-5, abs=1e-5)


def test_augment_is_deterministic_per_batch_and_normalises(pipe):
    a, b = pipe.augment(pipe.decode(0), 0), pipe.augment(pipe.decode(0), 0)
    assert np.array_equal(a, b)
    assert not np.array_equal(pipe.augment(pipe.decode(0), 1), a)  # another batch index draws other crops
    big = InputPipeline(PipelineConfig(n_images=32, image_hw=16, crop_hw=16, pool=1, batch_size=32, depth=1))
    x = big.augment(big.decode(0), 0)  # the full image (crop = image) is normalised to mean 0, std 1 per channel
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), 1.0, atol=1e-4)


def test_model_step_matches_torch_directly(pipe):
    x, y = pipe.load(0)
    step = ModelStep(SMALL, lr=0.05)
    # Oracle: the same network written out with torch.nn.functional, same seed, same SGD update by hand.
    torch.manual_seed(SMALL.seed)
    ref = [torch.nn.Linear(3 * SMALL.input_hw**2, SMALL.hidden)]
    ref += [torch.nn.Linear(SMALL.hidden, SMALL.hidden) for _ in range(SMALL.depth)]
    ref += [torch.nn.Linear(SMALL.hidden, SMALL.n_classes)]
    h = torch.from_numpy(x).flatten(1)
    for layer in ref[:-1]:
        h = torch.relu(layer(h))
    want_loss = torch.nn.functional.cross_entropy(ref[-1](h), torch.from_numpy(y))
    want_loss.backward()
    loss = step(x, y)
    assert loss == pytest.approx(want_loss.item(), rel=1e-6)
    got = [p for p in step.model.parameters()]
    want = [t for layer in ref for t in (layer.weight, layer.bias)]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g.detach(), (w - 0.05 * w.grad).detach())


def test_model_depth_changes_the_layer_count():
    assert len(ModelStep(SMALL, depth=0).model) == len(ModelStep(SMALL).model) - 2 * SMALL.depth
    assert SMALL.model_flops == 2 * 3 * SMALL.batch_size * (3 * 16 * 16 + 2 * 16 * 16 + 16 * 10)


@pytest.mark.parametrize(("workers", "prefetch"), [(1, None), (2, None), (3, 1), (2, 7)])
def test_overlapped_yields_the_same_batches(pipe, workers, prefetch):
    seq = list(pipe.batches(5))
    ovl = list(pipe.batches(5, overlap=True, workers=workers, prefetch=prefetch))
    assert len(seq) == len(ovl) == 5
    for (xs, ys, *_), (xo, yo, *_) in zip(seq, ovl, strict=True):
        assert np.array_equal(xs, xo) and np.array_equal(ys, yo)


@pytest.mark.parametrize("overlap", [False, True])
def test_run_timing_structure(pipe, overlap):
    before = torch.get_num_threads()
    run = pipe.run(4, ModelStep(SMALL), overlap=overlap, workers=2, threads=1)
    assert torch.get_num_threads() == before  # restored
    assert run.n_batches == 4 and run.threads == 1 and run.overlap is overlap
    assert all(len(run.stage_times_s[k]) == 4 and min(run.stage_times_s[k]) > 0 for k in STAGES)
    assert len(run.losses) == 4 and all(np.isfinite(run.losses))
    assert sum(run.fractions.values()) == pytest.approx(1.0)
    assert run.total_s > 0 and run.time_per_batch_s == pytest.approx(run.total_s / 4)
    assert 0 <= run.wait_fraction <= 1
    if not overlap:  # stages run back to back inside the wall time
        assert sum(sum(t) for t in run.stage_times_s.values()) <= run.total_s
    assert run.bottleneck in ("loader", "model")
    assert "ms per batch" in run.summary()


def test_run_without_model_is_the_infinite_speedup_limit(pipe):
    run = pipe.run(3, None)
    assert run.stage_time_s["model"] == 0.0 and run.fractions["model"] == 0.0 and run.losses == ()


def test_run_fractions_and_bottleneck_from_given_times():
    r = PipelineRun({"decode": (0.01, 0.03), "augment": (0.02, 0.02), "model": (0.05, 0.07)}, (0, 0), 0.2, False, 0, 1)
    assert r.stage_time_s == pytest.approx({"decode": 0.02, "augment": 0.02, "model": 0.06})
    assert r.fractions["model"] == pytest.approx(0.6) and r.bottleneck == "model"
    assert r.loader_time_s == pytest.approx(0.04)
    # decode + augment together outweigh the model step even though the model step is the largest single stage
    r2 = PipelineRun({"decode": (0.03,), "augment": (0.02,), "model": (0.04,)}, (0.05,), 0.09, False, 0, 1)
    assert r2.bottleneck == "loader"
    r3 = PipelineRun({"decode": (0.03,), "augment": (0.02,), "model": (0.01,)}, (0.001,), 0.05, True, 1, 1)
    assert r3.bottleneck == "model" and PipelineRun(r3.stage_times_s, (0.04,), 0.05, True, 1, 1).bottleneck == "loader"


def test_overlapped_time_cases():
    assert overlapped_time_s(0.03, 0.02, 1, 2) == pytest.approx(0.03)  # one loader thread is the bottleneck
    assert overlapped_time_s(0.03, 0.02, 2, 2) == pytest.approx(0.025)  # two cores for 50 ms of work
    assert overlapped_time_s(0.03, 0.02, 2, 8) == pytest.approx(0.02)  # plenty of cores: the model step
    np.testing.assert_allclose(overlapped_time_s([0.03, 0.01], 0.02, 1, 4), [0.03, 0.02])
    with pytest.raises(ValueError, match="loader_time_s"):
        overlapped_time_s(-1, 0.02)
    with pytest.raises(ValueError, match="workers"):
        overlapped_time_s(0.1, 0.02, workers=0)


@pytest.mark.parametrize("e", [0.0, 0.05, 0.3, 0.9])
def test_fit_serial_fraction_recovers_amdahl(e):
    p = np.array([1, 2, 3, 4, 8])
    assert fit_serial_fraction(p, 2.0 * (e + (1 - e) / p)) == pytest.approx(e, abs=1e-12)


def test_fit_serial_fraction_equals_karp_flatt_with_two_points():
    t1, t2 = 1.0, 0.62
    assert fit_serial_fraction([1, 2], [t1, t2]) == pytest.approx(karp_flatt(t1 / t2, 2))
    with pytest.raises(ValueError, match="distinct"):
        fit_serial_fraction([2, 2], [1.0, 1.0])
    with pytest.raises(ValueError, match="same length"):
        fit_serial_fraction([1, 2, 3], [1.0, 1.0])


def test_torch_threads_restores_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_config_rejects_bad_sizes():
    with pytest.raises(ValueError, match="crop_hw"):
        PipelineConfig(image_hw=16, crop_hw=32)
    with pytest.raises(ValueError, match="pool"):
        PipelineConfig(crop_hw=10, pool=3)
    with pytest.raises(TypeError, match="batch_size"):
        PipelineConfig(batch_size=2.5)


def _run(decode, augment, model, total, overlap=False, workers=0, threads=1):
    from efflab.pipeline import PipelineRun

    return PipelineRun({"decode": (decode,), "augment": (augment,), "model": (model,)}, (0.0,), total, overlap,
                       workers, threads)  # fmt: skip


def test_bottleneck_and_overlap_claims(monkeypatch):
    from efflab import claims
    from efflab.claims import UnexplainedClaim
    from efflab.pipeline import bottleneck_claim, overlap_claim

    monkeypatch.setenv(claims.STRICT_ENV, "1")
    monkeypatch.setattr(claims.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    before = _run(6.2e-3, 4.0e-3, 46.3e-3, 56.5e-3)
    assert bottleneck_claim(before, _run(6.2e-3, 4.0e-3, 6.5e-3, 16.7e-3)).held
    v = bottleneck_claim(before, _run(6.2e-3, 4.0e-3, 12e-3, 22.2e-3))  # sped up only 3.9x
    assert not v.held and "sped up only x3.86" in v.why
    assert overlap_claim([_run(6e-3, 4e-3, 7e-3, 11.6e-3, True, 1)]).held
    with pytest.raises(UnexplainedClaim):  # slower than the sum of its stages with cores to spare: unexplained
        overlap_claim([_run(6e-3, 4e-3, 7e-3, 18e-3, True, 1, threads=0)])
    with pytest.raises(TypeError, match="overlapped"):
        overlap_claim([before])


def test_stage_cut_claim(monkeypatch):
    from efflab import claims
    from efflab.claims import UnexplainedClaim
    from efflab.pipeline import stage_cut_claim

    monkeypatch.setenv(claims.STRICT_ENV, "1")
    monkeypatch.setattr(claims.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert stage_cut_claim(_run(6.3e-3, 4e-3, 6e-3, 16e-3), _run(0.2e-3, 4e-3, 6e-3, 10e-3)).held
    with pytest.raises(UnexplainedClaim):  # decode kept 60 % of its time
        stage_cut_claim(_run(6.3e-3, 4e-3, 6e-3, 16e-3), _run(3.8e-3, 4e-3, 6e-3, 14e-3))
    with pytest.raises(ValueError, match="stage"):
        stage_cut_claim(_run(6.3e-3, 4e-3, 6e-3, 16e-3), _run(0.2e-3, 4e-3, 6e-3, 10e-3), stage="load")
