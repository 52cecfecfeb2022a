"""Tests for efflab.ceilings: structure of the measured roofline, agreement with independent hand-timed kernels (an
oracle measured here, with wide bands: the machine is shared), the spec beside each ceiling, and the CLI."""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from efflab import ceilings  # noqa: E402
from efflab.hardware import detect  # noqa: E402


@pytest.fixture(scope="module")
def report():
    return ceilings.measure(device="cpu", quick=True)


def test_roofline_structure(report):
    roof = report.roofline
    assert set(roof.compute) == {"fp32", "bf16"} and roof.default_dtype == "fp32"
    assert "dram" in roof.memory
    assert roof.bandwidth_bytes_per_s() == min(c.value for c in roof.memory.values())
    for c in (*roof.compute.values(), *roof.memory.values()):
        assert c.measured == c.value and c.source
    assert 0 < roof.latency_s < 1e-3
    assert report.device == "cpu" and report.elapsed_s > 0


def test_spec_beside_measured(report):
    device = detect()
    fp32, dram = report.roofline.compute["fp32"], report.roofline.memory["dram"]
    assert fp32.spec == device.peak_flops_per_s["fp32"] and dram.spec == device.bandwidth_bytes_per_s
    assert fp32.estimated == device.estimated
    assert fp32.fraction_of_spec == pytest.approx(fp32.measured / fp32.spec)
    assert report.roofline.compute["bf16"].spec == device.peak_flops_per_s.get("bf16")


def test_ceilings_are_the_best_of_their_sweeps(report):
    roof = report.roofline
    best_fp32 = max(r["flops_per_s"] for r in report.matmul_sweep if r["dtype"] == "fp32")
    assert roof.peak_flops_per_s("fp32") == best_fp32
    llc = max(ceilings.cache_sizes_bytes().values())
    dram_rows = [
        r for r in report.bandwidth_sweep if r["working_set_bytes"] >= 2 * ceilings.DRAM_SET_PER_ARRAY_LLC * llc
    ]
    assert dram_rows and roof.bandwidth_bytes_per_s("dram") == max(r["bandwidth_bytes_per_s"] for r in dram_rows)
    for r in report.bandwidth_sweep:
        per_element = 3 if r["kernel"] == "triad" else 2  # STREAM counting: copy reads + writes, triad 2 reads + 1
        assert r["bytes_moved"] == r["working_set_bytes"] == per_element * (r["working_set_bytes"] // per_element)
        assert r["bandwidth_bytes_per_s"] == pytest.approx(r["bytes_moved"] / r["time_s"])
        assert 0 < r["time_s"] <= r["median_time_s"]  # the rate comes from the fastest sample (STREAM's best rate)


def _best_of(fn, repeats=5):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def test_bandwidth_agrees_with_a_hand_timed_copy(report):
    n = max(ceilings.cache_sizes_bytes().values())  # elements, so each fp32 array spans 4x the LLC
    src, dst = np.ones(n, dtype=np.float32), np.empty(n, dtype=np.float32)
    np.copyto(dst, src)
    hand = 2 * src.nbytes / _best_of(lambda: np.copyto(dst, src))
    measured = report.roofline.bandwidth_bytes_per_s("dram")
    # Same physics, different harness and moment; on a shared 2-core machine other processes move either by up to ~3x,
    # so the band checks the order of magnitude (a units or byte-counting bug is >= 2x off *systematically*, and
    # bench_ceilings.py measures the ratio properly).
    assert measured / 5 < hand < measured * 5


def test_compute_agrees_with_a_hand_timed_matmul(report):
    a = torch.randn(512, 512)
    torch.mm(a, a)
    hand = 2 * 512**3 / _best_of(lambda: torch.mm(a, a))
    measured = report.roofline.peak_flops_per_s("fp32")
    assert measured / 5 < hand < measured * 5  # order of magnitude: see the bandwidth test


def test_cache_sizes_match_sysconf():
    sizes = ceilings.cache_sizes_bytes()
    for level, key in (("l1", "SC_LEVEL1_DCACHE_SIZE"), ("l2", "SC_LEVEL2_CACHE_SIZE"), ("l3", "SC_LEVEL3_CACHE_SIZE")):
        try:
            expected = os.sysconf(key)
        except (ValueError, OSError):
            continue
        if expected > 0 and level in sizes:
            assert sizes[level] == expected


def test_report_text(report):
    text = report.to_text()
    assert "compute fp32" in text and "memory dram" in text and "latency floor" in text and "GB/s" in text


def test_bad_input():
    with pytest.raises(ValueError, match="device"):
        ceilings.measure_ceilings(device="meta", quick=True)
    with pytest.raises(ValueError, match="dtypes"):
        ceilings.measure_ceilings(device="cpu", dtypes=("fp8",), quick=True)
    with pytest.raises(ValueError, match="tf32"):
        ceilings.measure_ceilings(device="cpu", dtypes=("tf32",), quick=True)


def test_cli_prints_and_plots(report, monkeypatch, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(ceilings, "measure", lambda **kw: report)
    parser = argparse.ArgumentParser()
    ceilings.add_cli(parser.add_subparsers(dest="command"))
    png = tmp_path / "roofline.png"
    args = parser.parse_args(["roofline", "--quick", "--plot", str(png)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "memory dram" in out and png.exists() and png.stat().st_size > 1000


@pytest.mark.gpu
def test_cuda_ceilings_near_datasheet():
    report = ceilings.measure(device="cuda", dtypes=("fp32", "bf16"), quick=True)
    roof = report.roofline
    dram = roof.memory["dram"]
    assert dram.spec is not None and 0.5 < dram.fraction_of_spec < 1.05  # H100: ~3.0 of 3.35 TB/s
    bf16 = roof.compute["bf16"]
    assert bf16.spec is not None and 0.3 < bf16.fraction_of_spec < 1.05
    assert 1e-7 < roof.latency_s < 1e-4
