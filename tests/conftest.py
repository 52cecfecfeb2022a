"""Shared pytest configuration: the ``gpu`` marker skips without CUDA, and the repository root as a fixture.

Plain helpers shared by test modules (``raises_naming``, ``load_benchmark``) live in ``tests/helpers.py``:
``from helpers import raises_naming``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and not _cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA device; none is available on this machine")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (holding _config.yml)."""
    return ROOT


def toc_files(repo_root: Path) -> list[str]:
    """Every page of the book's table of contents (root first), as paths without suffix."""
    toc = yaml.safe_load((repo_root / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


@pytest.fixture(scope="session")
def html(repo_root, tmp_path_factory) -> Path:
    """Build the book once per test session (stored outputs, -W -n) and return its html folder."""
    prebuilt = os.environ.get("EFFLAB_BOOK_HTML")  # a developer's shortcut: read a book already built (make book)
    if prebuilt:
        return Path(prebuilt).resolve()
    if not (repo_root / "_vendor" / "static" / ".fetched").exists():
        pytest.fail("the offline assets are missing: run `make assets` (the README's commands do)")
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jb), "build", str(repo_root), "--path-output", str(out), "-W", "--keep-going", "-n"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, (proc.stdout[-6000:], proc.stderr[-6000:])
    return out / "_build" / "html"
