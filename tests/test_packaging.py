"""The package's promises: numpy-only core, loose floors for Colab, torch never pinned by the package."""

from __future__ import annotations

import subprocess
import sys

import pytest
import tomllib


@pytest.fixture(scope="module")
def project(repo_root):
    return tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]


def test_core_depends_on_numpy_only(project):
    assert [d.split(">")[0].split("=")[0].strip() for d in project["dependencies"]] == ["numpy"]


def test_torch_requirement_stays_loose(project):
    torch_reqs = [r for extra in project["optional-dependencies"].values() for r in extra if r.startswith("torch")]
    assert torch_reqs, "the measure extra must name torch"
    assert all("==" not in r and "<" not in r for r in torch_reqs), torch_reqs


def test_ipywidgets_floor_admits_colab(project):
    # Colab ships ipywidgets 7.7.x; a higher floor forces a runtime restart on every fresh Colab install.
    reqs = [r for extra in project["optional-dependencies"].values() for r in extra if r.startswith("ipywidgets")]
    assert reqs and all(r == "ipywidgets>=7.7" for r in reqs), reqs


def test_console_script(project):
    assert project["scripts"]["efflab"] == "efflab.cli:main"


@pytest.mark.slow
def test_import_with_numpy_alone(repo_root, tmp_path):
    """A fresh venv holding numpy only can import efflab, use the core and run doctor."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "numpy"], check=True, timeout=600, capture_output=True)
    code = (
        "import sys, efflab\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules\n"
        "print(efflab.amdahl_speedup(0.95, 100))\n"
        "report = efflab.doctor()\n"
        "assert report.versions['torch'] is None and not report.extras['measure']\n"
        "print(report.to_text())\n"
    )
    proc = subprocess.run(
        [str(py), "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(repo_root), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("16.8")
    assert "missing" in proc.stdout and "efflab[measure]" in proc.stdout
