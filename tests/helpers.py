"""Helpers shared by the test modules: ``from helpers import raises_naming``.

pytest puts ``tests/`` on ``sys.path`` (its rootdir conftest lives there, and the default ``prepend`` import mode adds
a test module's folder when it is not a package), so this module imports by its bare name. It needs only pytest:
modules that skip without torch can import it.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def raises_naming(fn, name: str, *args, **kwargs) -> None:
    """Assert that ``fn(*args, **kwargs)`` raises ValueError or TypeError whose message names ``name``."""
    with pytest.raises((ValueError, TypeError)) as info:
        fn(*args, **kwargs)
    assert name in str(info.value), str(info.value)


@functools.cache
def load_benchmark(name: str) -> ModuleType:
    """The script ``benchmarks/<name>.py`` as a module (``main()`` not run), loaded once per session.

    ``benchmarks/`` is a folder of scripts, not a package: each runs as ``python benchmarks/<name>.py``.
    """
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # classes defined there keep an importable __module__
    spec.loader.exec_module(module)
    return module
