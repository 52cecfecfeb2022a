"""efflab doctor names this machine correctly and says how to fix what is missing."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from efflab.doctor import EXTRAS, DoctorReport, cpu_model, describe_cpu, doctor


def _cpuinfo_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


@pytest.mark.parametrize(
    "cpuinfo, expected",
    [
        (
            "model name : AMD EPYC\ncpu family : 25\nmodel : 17\nflags : avx2 avx512f",
            "AMD EPYC (Zen 4, family 25 model 17), AVX-512",
        ),
        (
            "model name : AMD EPYC 7763\ncpu family : 25\nmodel : 1\nflags : avx2",
            "AMD EPYC 7763 (Zen 3, family 25 model 1), AVX2",
        ),
        (
            "vendor_id : GenuineIntel\nmodel name : Intel Xeon\ncpu family : 6\nmodel : 85\nflags : avx2",
            "Intel Xeon (family 6 model 85), AVX2",
        ),
        ("Hardware : BCM2835\nFeatures : fp asimd", "BCM2835, NEON"),
    ],
)
def test_describe_cpu(cpuinfo, expected):
    assert describe_cpu(cpuinfo) == expected


def test_report_matches_this_machine():
    report = doctor()
    assert report.python == platform.python_version()
    assert report.cpu_count == os.cpu_count()
    expected_model = _cpuinfo_model()
    if expected_model:
        assert report.cpu.startswith(expected_model) and report.cpu == cpu_model()
    import numpy

    assert report.versions["numpy"] == numpy.__version__


def test_text_names_cpu_gpu_and_colab():
    text = doctor().to_text()
    assert doctor().cpu in " ".join(text.split())
    assert f"{os.cpu_count()} logical cores" in " ".join(text.split())  # lines wrap at the text width
    assert "colab" in text and "gpu" in text


def test_missing_extras_come_with_the_command_that_fixes_them():
    report = DoctorReport(
        python="3.11.0",
        platform="Linux x86_64",
        cpu="test CPU",
        cpu_count=2,
        colab=False,
        versions={"numpy": "2.0", "torch": None},
        extras={"measure": False, "plots": True, "widgets": False},
    )
    assert set(report.missing) == {"measure", "widgets"}
    assert "torch==2.13.0" in report.missing["measure"]  # locally: the small CPU wheel
    assert 'pip install "efflab[widgets]"' in report.missing["widgets"]
    colab = DoctorReport(**{**report.__dict__, "colab": True})
    assert "torch==" not in colab.missing["measure"]  # never reinstall torch over Colab's CUDA build
    assert "torch    not installed" in report.to_text() or "not installed" in report.to_text()


def test_every_extra_is_declared_in_pyproject(repo_root):
    import tomllib

    declared = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS) <= set(declared)


def test_cli_doctor_runs():
    out = subprocess.run(
        [sys.executable, "-m", "efflab", "doctor"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert doctor().cpu in out
    assert "python" in out


def test_nvml_status_says_whether_the_counter_can_be_read(monkeypatch):
    """Three cases from a fake pynvml: not installed, installed without a driver, and working."""
    import importlib
    import importlib.util
    import sys
    import types

    d = importlib.import_module("efflab.doctor")  # the module; efflab.doctor is also the function
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pynvml" else real_find_spec(n, *a))
    assert d.nvml_status().startswith("not installed") and "nvidia-ml-py" in d.nvml_status()
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "pynvml" else real_find_spec(n, *a))

    def no_driver():
        raise RuntimeError("NVML Shared Library Not Found")

    monkeypatch.setitem(sys.modules, "pynvml", types.SimpleNamespace(nvmlInit=no_driver))
    assert d.nvml_status().startswith("not usable here") and "Not Found" in d.nvml_status()
    working = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlSystemGetDriverVersion=lambda: b"550.54",
    )
    monkeypatch.setitem(sys.modules, "pynvml", working)
    assert d.nvml_status() == "usable: driver 550.54, 1 GPU(s)"


def test_the_measure_extra_needs_nvml_too():
    from efflab.doctor import EXTRAS
    from efflab.notebooks import RepoConfig, setup_source

    assert "pynvml" in EXTRAS["measure"]
    assert '"efflab[measure] @ git+https://github.com/o/r.git@main"' in setup_source(
        RepoConfig("https://github.com/o/r")
    )
