"""Tests for efflab.ceilings: structure of the measured roofline, agreement with independent hand-timed kernels (an
oracle measured here, with wide bands: the machine is shared), the spec beside each ceiling, and the CLI."""

from __future__ import annotations

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
    search = report.dram_search
    dram_rows = [r for r in report.bandwidth_sweep if r["level"] == "dram"]
    assert {r["array_bytes"] for r in dram_rows} == set(search["plateau_sizes_bytes"])
    assert roof.bandwidth_bytes_per_s("dram") == max(r["bandwidth_bytes_per_s"] for r in dram_rows)
    assert search["sizes_bytes"][: len(search["best_bytes_per_s"])] == search["sizes_bytes"]
    for size, best in zip(search["sizes_bytes"], search["best_bytes_per_s"], strict=True):
        rows = [r["bandwidth_bytes_per_s"] for r in report.bandwidth_sweep if r["array_bytes"] == size]
        assert best == max(rows)
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
    n = report.dram_search["plateau_sizes_bytes"][-1] // 4  # fp32 elements: the largest set of the DRAM plateau
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


MiB = 1 << 20


def test_dram_set_sizes_by_hand():
    # Quick budget 768 MiB -> 256 MiB per array. STREAM's 4x LLC when three doublings fit below the cap, lower otherwise.
    assert [s // MiB for s in ceilings.dram_set_sizes(8 * MiB, 768 * MiB)] == [32, 64, 128, 256]
    assert [s // MiB for s in ceilings.dram_set_sizes(32 * MiB, 768 * MiB)] == [64, 128, 256]
    assert [s // MiB for s in ceilings.dram_set_sizes(32 * MiB, 1536 * MiB)] == [128, 256, 512]
    assert [s // MiB for s in ceilings.dram_set_sizes(480 * MiB, 768 * MiB)] == [64, 128, 256]
    assert [s // MiB for s in ceilings.dram_set_sizes(480 * MiB, 1536 * MiB)] == [128, 256, 512]
    # A budget squeezed by the process's limits still gives three sets.
    assert [s // MiB for s in ceilings.dram_set_sizes(480 * MiB, 96 * MiB)] == [8, 16, 32]
    # CUDA: at least 256 MiB per array (an H100's 50 MB L2 x 4 is less), up to the cap.
    assert [s // MiB for s in ceilings.dram_set_sizes(50 * 10**6, 1536 * MiB, on_gpu=True)] == [256, 512]
    assert [s // MiB for s in ceilings.dram_set_sizes(4 * MiB, 768 * MiB, on_gpu=True)] == [256]
    with pytest.raises(ValueError, match="llc_bytes"):
        ceilings.dram_set_sizes(0, 768 * MiB)
    with pytest.raises(ValueError, match="budget_bytes"):
        ceilings.dram_set_sizes(8 * MiB, 100)


def _fake_memory(monkeypatch, rates_gb_per_s, caches):
    """A machine whose copy rate per array size is given (GB/s by MiB), with the cache sizes the OS 'reports'."""

    def rows(torch, dev, size, budget_s, level):
        rate = rates_gb_per_s[size // MiB] * 1e9
        moved = 2 * size
        return [
            {
                "kernel": "torch copy",
                "threads": 1,
                "working_set_bytes": moved,
                "bytes_moved": moved,
                "time_s": moved / rate,
                "median_time_s": moved / rate,
                "bandwidth_bytes_per_s": rate,
                "array_bytes": size,
                "level": level,
            }
        ]

    def matmul(torch, dev, dtypes, quick, bar):
        row = {"dtype": "fp32", "n": 512, "threads": 1, "flops": 2.0 * 512**3, "time_s": 0.01}
        return [{**row, "median_time_s": 0.01, "flops_per_s": row["flops"] / 0.01}], {}

    monkeypatch.setattr(ceilings, "_bandwidth_rows", rows)
    monkeypatch.setattr(ceilings, "_matmul_sweep", matmul)
    monkeypatch.setattr(ceilings, "cache_sizes_bytes", lambda: dict(caches))
    monkeypatch.setattr(ceilings, "memory_headroom_bytes", lambda device=None: None)


def test_dram_plateau_found_past_a_cache_the_os_does_not_report(monkeypatch):
    # Reported L3: 8 MiB, but the sets run fast up to 64 MiB (a victim cache), then flatten at 128-256 MiB.
    rates = {0: 80, 1: 70, 32: 60, 64: 40, 128: 30, 256: 29, 512: 28.5}
    _fake_memory(monkeypatch, rates, {"l2": 1 * MiB, "l3": 8 * MiB})
    report = ceilings.measure(device="cpu", dtypes=("fp32",), quick=True)
    dram = report.roofline.memory["dram"]
    assert dram.value == 30e9 and report.dram_search["plateau_reached"]
    assert report.dram_search["plateau_sizes_bytes"] == (128 * MiB, 256 * MiB)
    assert "plateau: rates within 10% at 128 MiB and 256 MiB per array" in dram.source
    # Full mode asks for two flat steps: 128 -> 256 -> 512 MiB.
    full = ceilings.measure(device="cpu", dtypes=("fp32",), quick=False)
    assert full.dram_search["plateau_sizes_bytes"] == (128 * MiB, 256 * MiB, 512 * MiB)
    assert full.roofline.memory["dram"].value == 30e9
    # The cache sets (512 KiB and 1 MiB per array) ran faster than DRAM: both cache ceilings stay.
    assert set(report.roofline.memory) == {"dram", "l2", "l3"}


def test_dram_plateau_not_reached_is_said(monkeypatch):
    rates = {0: 80, 1: 70, 32: 60, 64: 40, 128: 30, 256: 20}
    _fake_memory(monkeypatch, rates, {"l2": 1 * MiB, "l3": 8 * MiB})
    report = ceilings.measure(device="cpu", dtypes=("fp32",), quick=True)
    dram = report.roofline.memory["dram"]
    assert not report.dram_search["plateau_reached"] and dram.value == 20e9  # the largest set, an upper bound
    assert "plateau NOT reached under the 768 MiB memory budget" in dram.source
    assert "33% lower than at half the size" in dram.source
    assert any("plateau not reached" in note for note in report.notes)


def test_a_reported_cache_that_runs_at_dram_speed_is_no_ceiling(monkeypatch):
    # The host's 480 MiB L3 is reported; the 32 MiB "l3" set runs at the DRAM rate.
    rates = {1: 70, 32: 16, 64: 16.5, 128: 16}
    _fake_memory(monkeypatch, rates, {"l2": 2 * MiB, "l3": 480 * MiB})
    report = ceilings.measure(device="cpu", dtypes=("fp32",), quick=True)
    assert set(report.roofline.memory) == {"dram", "l2"}
    assert report.dram_search["sizes_bytes"] == (64 * MiB, 128 * MiB)
    assert not report.dram_search["stream_rule_met"]
    assert "below STREAM's 4x the reported 480 MiB LLC" in report.roofline.memory["dram"].source
    assert any("no l3 ceiling" in note and "480 MiB" in note for note in report.notes)


_BUDGET_SCRIPT = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4096 << 20, 4096 << 20))  # efflab grade's default limit
from efflab import ceilings
ceilings.cache_sizes_bytes = lambda: {"l1": 48 << 10, "l2": 2 << 20, "l3": 480 << 20}  # an Intel VM reports this
headroom = ceilings.memory_headroom_bytes()
report = ceilings.measure(device="cpu", quick=True)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10
print(json.dumps({"headroom": headroom, "peak_rss": peak, "search": report.dram_search}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for VmSize and RLIMIT_AS")
def test_quick_ceilings_fit_the_graders_limit_when_the_llc_is_reported_huge():
    # The failure of issue 13: a reported 480 MiB L3 sized the DRAM arrays at 2 GB each, inside a 4 GB address space.
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _BUDGET_SCRIPT], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert 0 < result["headroom"] < 4096 << 20
    assert result["search"]["budget_bytes"] <= min(768 << 20, result["headroom"] // 2)
    assert max(result["search"]["sizes_bytes"]) * 3 <= result["search"]["budget_bytes"]
    assert result["peak_rss"] <= 2 << 30  # issue 13: <= 2 GB peak RSS


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
    from efflab.cli import build_parser

    monkeypatch.setattr(ceilings, "measure", lambda **kw: report)
    png = tmp_path / "roofline.png"
    args = build_parser().parse_args(["roofline", "--quick", "--plot", str(png)])
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


def test_one_ceiling_table_serves_the_report_and_the_notebooks(report):
    """The report's text is ceiling_table(how=True): the same rows the notebooks show, plus how each was measured."""
    table = ceilings.ceiling_table(report.roofline, how=True)
    assert table.header[-1] == "how" and len(table.header) == 5
    assert [r[:4] for r in table.rows] == [tuple(r) for r in ceilings.ceiling_table(report.roofline).rows]
    assert str(table).splitlines()[0] in report.to_text()
