"""The student's journey on a Colab-like runtime: renamed "Copy of …" notebooks, run from a scratch folder.

``make test`` runs this file (and strict nbval on every chapter and master) inside ``.venv-colab``, an environment
holding only what Google Colab preinstalls for these notebooks, with ``EFFLAB_SOURCE`` pointing at this checkout.
efflab is uninstalled there first, so the notebooks' own setup cells must install it, as they would on Colab. Nothing
here imports efflab into the test process.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
STUDENT_LABS = sorted(ROOT.glob("labs/*.ipynb"))
CHAPTERS = sorted(ROOT.glob("chapters/*.ipynb"))

pytestmark = pytest.mark.skipif(
    "EFFLAB_SOURCE" not in os.environ, reason="run by `make test` inside the Colab-like environment (.venv-colab)"
)


def _run_as_copy(notebook: Path, workdir: Path) -> nbformat.NotebookNode:
    """Execute ``notebook`` as Colab would run a student's copy: renamed, from a folder outside the repository.

    ``EFFLAB_STRICT_CHECK`` (set by ``make test`` so the solved masters must pass every check) is removed for the
    kernel: a student's notebook has unanswered exercises, and ``check`` reports them without raising.
    """
    copy = workdir / f"Copy of {notebook.name}"
    shutil.copy(notebook, copy)
    nb = nbformat.read(copy, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
    strict = os.environ.pop("EFFLAB_STRICT_CHECK", None)
    try:
        client.execute()  # raises CellExecutionError on the first failing cell
    finally:
        if strict is not None:
            os.environ["EFFLAB_STRICT_CHECK"] = strict
    return nb


def test_environment_is_colab_like():
    import ipywidgets

    assert ipywidgets.__version__.startswith("7.7"), "Colab ships ipywidgets 7.7.x"
    assert importlib.util.find_spec("jupyter_book") is None and importlib.util.find_spec("hypothesis") is None


@pytest.mark.parametrize("notebook", CHAPTERS[:1], ids=lambda p: p.stem)
def test_a_renamed_chapter_runs_from_a_scratch_folder(notebook, tmp_path):
    _run_as_copy(notebook, tmp_path)
    # the setup cell installed efflab into this environment (not an editable link to the checkout)
    out = subprocess.run(
        [sys.executable, "-c", "import efflab, pathlib; print(pathlib.Path(efflab.__file__).resolve())"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout.strip()
    site_packages = sysconfig.get_paths()["purelib"]
    assert out.startswith(str(Path(site_packages).resolve())), (
        f"efflab imported from {out}, not installed by the setup cell"
    )


@pytest.mark.parametrize("notebook", STUDENT_LABS, ids=lambda p: p.stem)
def test_student_lab_runs_top_to_bottom(notebook, tmp_path):
    nb = _run_as_copy(notebook, tmp_path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
