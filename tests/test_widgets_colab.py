"""The explorers on ipywidgets 7.7.1, the version Colab ships and imports at kernel start.

A throwaway venv gets ipywidgets 7.7.1 with its kernel-side dependencies (ipykernel, IPython, traitlets,
ipython_genutils) plus numpy and matplotlib; the front-end packages (widgetsnbextension, jupyterlab_widgets) are left
out because no Python code imports them. A script then builds every widget from this checkout, moves a control and
checks that the figure and the reported state changed. About 60-90 s, most of it pip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import ipywidgets
    assert ipywidgets.__version__ == "7.7.1", ipywidgets.__version__
    from efflab import widgets as w

    def png(box):
        return box.output.outputs[0]["data"]["image/png"]

    variants = [("big", 0.95, 40e6, 20e-3), ("mid", 0.93, 10e6, 8e-3), ("small", 0.88, 1e6, 1e-3)]
    cases = [
        (w.roofline_explorer(intensity_flops_per_byte=1.0), "intensity", 100.0, "regime"),
        (w.iron_law_explorer(), "batch", 1024, "regime"),
        (w.amdahl_explorer(), "fraction", 0.5, "speedup"),
        (w.pareto_explorer(variants), "max_latency_ms", 2.0, "chosen"),
        (w.energy_explorer(), "reuse", 1000.0, "movement_share"),
    ]
    for box, name, value, key in cases:
        assert isinstance(box, ipywidgets.VBox)
        before_png, before = png(box), box.state[key]
        box.controls[name].value = value
        assert png(box) != before_png, name
        assert box.state[key] != before, (name, before, box.state[key])
    print("ok", len(cases))
    """
)


@pytest.mark.slow
def test_widgets_on_ipywidgets_7_7_1(tmp_path, repo_root):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    try:
        subprocess.run([*pip, "--no-deps", "ipywidgets==7.7.1"], check=True, capture_output=True, timeout=120)
        subprocess.run(
            [*pip, "numpy", "matplotlib", "ipykernel", "ipython", "traitlets", "ipython_genutils"],
            check=True,
            capture_output=True,
            timeout=240,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"could not install ipywidgets 7.7.1 from the package index: {exc}")
    env = {**os.environ, "PYTHONPATH": str(repo_root), "MPLBACKEND": "Agg"}
    result = subprocess.run([py, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok 5"
