"""The prepared GPU journey script: it says plainly that it needs CUDA here, and runs its checks where there is one."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_gpu_check_declines_without_cuda(repo_root):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the gpu-marked test runs the script instead")
    proc = subprocess.run(
        [sys.executable, str(repo_root / "benchmarks" / "gpu_check.py"), "--skip-notebooks"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "No CUDA device" in proc.stdout


@pytest.mark.gpu
def test_gpu_check_instruments(repo_root, tmp_path):
    out = tmp_path / "report.md"
    proc = subprocess.run(
        [sys.executable, str(repo_root / "benchmarks" / "gpu_check.py"), "--skip-notebooks", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = out.read_text()
    assert "FAILED" not in report and "measured ceilings vs datasheet" in report


def test_gpu_check_cpu_rehearsal_runs_a_notebook(repo_root, tmp_path):
    """--cpu-rehearsal checks the notebook machinery without CUDA, so device time is not spent finding a missing
    package; the report lists each notebook with its status."""
    out = tmp_path / "report.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(repo_root / "benchmarks" / "gpu_check.py"),
            "--cpu-rehearsal",
            "--notebooks",
            "*00_welcome*",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = out.read_text()
    assert "| chapters/00_welcome.ipynb | ok |" in report and "not GPU results" in report
    assert "labs/" not in report  # --notebooks selected one


@pytest.mark.parametrize("script", ["gpu_run.sh", "gpu_wheels.sh"])
def test_device_scripts_parse(repo_root, script):
    proc = subprocess.run(["bash", "-n", str(repo_root / "benchmarks" / script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_gpu_run_fails_fast_without_the_carried_wheels(repo_root, tmp_path):
    """No .whl/: the notebooks could not run and pytest would stop at collection; say so before device time is spent."""
    proc = subprocess.run(
        ["bash", str(repo_root / "benchmarks" / "gpu_run.sh")], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "gpu_wheels.sh" in proc.stdout


def test_notebooks_past_the_deadline_are_listed_as_skipped(repo_root):
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", repo_root / "benchmarks" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    rows = []
    lines = gpu_check.run_notebooks("*00_welcome*", on_row=rows.append, deadline_s=-1.0)
    assert lines[2:] == ["| chapters/00_welcome.ipynb | skipped: the -1 s deadline passed | - |"] and rows == []
