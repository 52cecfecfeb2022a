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
