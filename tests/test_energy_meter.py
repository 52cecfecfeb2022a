"""Tests for efflab.energy_meter: wraparound arithmetic on hand-computed readings, RAPL zones from a fake powercap
tree, the "estimated" source on this machine (no counter), estimates against efflab.energy, and NVML on a GPU."""

from __future__ import annotations

import time
import warnings

import pytest

from efflab import energy_meter
from efflab.energy import energy_estimate
from efflab.energy_meter import EnergyEstimateWarning, EnergyMeter, counter_delta, rapl_zones


@pytest.mark.parametrize(
    ("start", "end", "max_range", "expected"),
    [
        (0, 0, 100, 0),
        (10, 60, 100, 50),
        (90, 5, 100, 15),  # wrapped: 10 to the top, 5 after
        (100, 0, 100, 0),  # at the top, then wrapped to zero
        (262_143_328_850, 1_000_000, 262_143_328_850, 1_000_000),  # a real max_energy_range_uj
    ],
)
def test_counter_delta_hand_computed(start, end, max_range, expected):
    assert counter_delta(start, end, max_range) == expected


def test_counter_delta_rejects_bad_readings():
    with pytest.raises(ValueError, match="end"):
        counter_delta(0, 200, 100)
    with pytest.raises(ValueError, match="max_range"):
        counter_delta(0, 0, 0)
    with pytest.raises(TypeError, match="start"):
        counter_delta(1.5, 2, 10)


def _fake_zone(root, name, zone, energy_uj, max_uj):
    d = root / name
    d.mkdir()
    (d / "name").write_text(zone + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def test_rapl_meter_on_a_fake_powercap_tree(tmp_path, monkeypatch):
    pkg0 = _fake_zone(tmp_path, "intel-rapl:0", "package-0", 999_000_000, 1_000_000_000)
    _fake_zone(tmp_path, "intel-rapl:0:0", "core", 5, 1_000_000_000)  # a sub-zone: not summed
    pkg1 = _fake_zone(tmp_path, "intel-rapl:1", "package-1", 10_000_000, 1_000_000_000)
    assert set(rapl_zones(str(tmp_path))) == {"intel-rapl:0 (package-0)", "intel-rapl:1 (package-1)"}
    monkeypatch.setattr(energy_meter, "POWERCAP_ROOT", str(tmp_path))
    monkeypatch.setattr(energy_meter, "rapl_zones", lambda root=str(tmp_path): rapl_zones(root))
    with EnergyMeter() as m:
        (pkg0 / "energy_uj").write_text("2000000\n")  # wrapped: 1 J to the top + 2 J = 3 J
        (pkg1 / "energy_uj").write_text("14000000\n")  # 4 J
    assert m.source == "rapl"
    assert m.energy_j == pytest.approx(7.0)
    assert m.power_w == pytest.approx(7.0 / m.time_s)


def test_this_machine_says_estimated(monkeypatch):
    # This CPU exposes no /sys/class/powercap and has no NVIDIA driver: the meter must say so, not guess silently.
    if energy_meter.rapl_zones():
        pytest.skip("this machine has readable RAPL counters")
    with pytest.warns(EnergyEstimateWarning, match="estimate"):
        with EnergyMeter() as m:
            time.sleep(0.01)
    assert m.source == "estimated" and m.energy_j is None and m.power_w is None
    assert "RAPL" in m.reason and "energy unknown" in m.to_text()
    with pytest.raises(RuntimeError, match="rapl"):
        with EnergyMeter(source="rapl"):
            pass


def test_estimate_from_totals_matches_energy_model():
    with EnergyMeter(source="estimated") as m:
        pass
    m.estimate(flops=2e9, bytes_moved=3e8)
    assert m.energy_j == pytest.approx(energy_estimate(2e9, 3e8).total_j)
    assert m.source == "estimated" and "E [J]" in m.to_text()


def test_estimate_from_profile_groups_dtypes():
    torch = pytest.importorskip("torch")
    from efflab.profile import profile_ops
    from efflab.roofline import Roofline

    roof = Roofline(compute={"fp32": 1e11}, memory={"dram": 2.5e10}, latency_s=2e-6)
    a, h = torch.randn(256, 256), torch.randn(256, 256).to(torch.bfloat16)
    prof = profile_ops(lambda x, y: (x @ x, y @ y), a, h, roofline=roof)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EnergyEstimateWarning)
        with EnergyMeter(estimate_from=prof) as m:
            pass
    by_dtype = {}
    for r in prof.records:
        f, b = by_dtype.get(r.dtype, (0.0, 0.0))
        by_dtype[r.dtype] = (f + r.flops, b + r.bytes_moved)
    expected = energy_estimate(*by_dtype["fp32"]).total_j + energy_estimate(*by_dtype["bf16"], dtype="fp16").total_j
    assert m.source == "estimated" and m.energy_j == pytest.approx(expected)
    assert "bf16 estimated with fp16 figures" in m.reason


def test_estimate_needs_work_and_never_replaces_a_measurement():
    m = EnergyMeter(source="estimated")
    with pytest.raises(ValueError, match="bytes_moved"):
        m.estimate(flops=1e9)
    m.source = "rapl"
    with pytest.raises(RuntimeError, match="replace a measurement"):
        m.estimate(flops=1.0, bytes_moved=1.0)


def test_bad_source():
    with pytest.raises(ValueError, match="source"):
        EnergyMeter(source="tdp")


@pytest.mark.gpu
def test_nvml_counter_on_gpu():
    torch = pytest.importorskip("torch")
    a = torch.randn(4096, 4096, device="cuda")
    with EnergyMeter() as m:
        for _ in range(200):
            a = torch.tanh(a @ a)
    assert m.source == "nvml" and m.energy_j > 0 and m.time_s >= 0.05
    assert 10 < m.power_w < 1500  # between an idle GPU and any datacenter board's limit
