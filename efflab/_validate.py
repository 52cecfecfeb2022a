"""Argument checks shared by every public function.

Bad input must fail loudly and helpfully: a ``TypeError`` when the kind of value is wrong, a ``ValueError`` that names
the argument, its unit and the allowed range when the value is out of range. Nothing may return NaN silently.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np

__all__ = [
    "real",
    "positive",
    "nonnegative",
    "fraction",
    "integer",
    "choice",
    "broadcast",
    "scalar_or_array",
    "points_2d",
]


def _describe(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts) if parts else "a finite number"


def real(
    value,
    name: str,
    unit: str = "",
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> np.ndarray:
    """Return ``value`` as a float64 array after checking type and range.

    Parameters
    ----------
    value : scalar or array_like
        The argument as given by the caller.
    name, unit : str
        Used in the error message, e.g. ``"bytes_moved"`` and ``"bytes"``.
    low, high : float, optional
        Allowed range; ``low_open``/``high_open`` make the bound strict.
    allow_inf : bool
        Whether ``+inf`` is an acceptable value (e.g. an infinite speedup).

    Raises
    ------
    TypeError
        If ``value`` is not real-valued numeric (strings, None, complex, objects).
    ValueError
        If any element is NaN, infinite (unless allowed) or outside the range.

    Examples
    --------
    >>> float(real(2.0, "flops", "FLOP", low=0))
    2.0
    >>> real(-1, "bytes_moved", "bytes", low=0, low_open=True)
    Traceback (most recent call last):
    ...
    ValueError: bytes_moved must be > 0 (in bytes); got -1
    """
    unit_text = f" (in {unit})" if unit else ""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real number or array of numbers{unit_text}; got {type(value).__name__}")
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number{unit_text}, not a bool")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a real number or a rectangular array{unit_text}") from exc
    if arr.dtype == bool:
        raise TypeError(f"{name} must be real numbers{unit_text}, not booleans")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must be real numbers{unit_text}; got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    # one pass in the common case (all finite); the slower checks run only to word the error
    if not np.isfinite(arr).all():
        if np.isnan(arr).any():
            raise ValueError(f"{name} must not be NaN{unit_text}")
        if not allow_inf:
            raise ValueError(f"{name} must be finite{unit_text}; got {_first(arr, np.isinf(arr))}")
    bad = np.zeros(arr.shape, dtype=bool)
    if low is not None:
        bad |= (arr <= low) if low_open else (arr < low)
    if high is not None:
        bad |= (arr >= high) if high_open else (arr > high)
    if bad.any():
        raise ValueError(
            f"{name} must be {_describe(low, high, low_open, high_open)}{unit_text}; got {_first(value, bad)}"
        )
    return arr


def _first(value, mask):
    arr = np.asarray(value)
    if arr.ndim == 0:
        return value
    return arr[mask].flat[0]


def positive(value, name: str, unit: str = "", *, allow_inf: bool = False) -> np.ndarray:
    """Check ``value > 0``; see :func:`real`.

    >>> float(positive(3, "peak_flops_per_s", "FLOP/s"))
    3.0
    """
    return real(value, name, unit, low=0.0, low_open=True, allow_inf=allow_inf)


def nonnegative(value, name: str, unit: str = "", *, allow_inf: bool = False) -> np.ndarray:
    """Check ``value >= 0``; see :func:`real`.

    >>> float(nonnegative(0, "latency_s", "s"))
    0.0
    """
    return real(value, name, unit, low=0.0, allow_inf=allow_inf)


def fraction(value, name: str, *, open_low: bool = False, open_high: bool = False) -> np.ndarray:
    """Check ``0 <= value <= 1`` (bounds optionally strict); see :func:`real`.

    >>> float(fraction(0.95, "fraction"))
    0.95
    """
    return real(value, name, "fraction of 1", low=0.0, high=1.0, low_open=open_low, high_open=open_high)


def integer(value, name: str, unit: str = "", *, low: int | None = None, high: int | None = None) -> int:
    """Check that ``value`` is a Python or numpy integer within ``[low, high]`` and return it as ``int``.

    >>> integer(4096, "m", "elements", low=1)
    4096
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            unit_text = f" (in {unit})" if unit else ""
            raise TypeError(f"{name} must be an integer{unit_text}; got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        unit_text = f" (in {unit})" if unit else ""
        raise ValueError(f"{name} must be {_describe(low, high, False, False)}{unit_text}; got {value}")
    return value


def boolean(value, name: str) -> bool:
    """``value`` as a bool; TypeError naming ``name`` unless it is True or False (numpy bools included).

    >>> boolean(True, "causal")
    True
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def choice(value, name: str, allowed: Iterable[str]) -> str:
    """Check that ``value`` is one of ``allowed`` (case-insensitive) and return it lower-cased.

    >>> choice("FP32", "dtype", ["fp32", "fp16"])
    'fp32'
    """
    allowed = list(allowed)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {allowed}; got {type(value).__name__}")
    key = value.strip().lower()
    if key not in allowed:
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return key


def broadcast(**arrays) -> list[np.ndarray]:
    """Broadcast validated arrays like numpy, naming the arguments when their shapes do not fit together.

    >>> [a.shape for a in broadcast(flops=np.ones(3), bytes_moved=np.asarray(2.0))]
    [(3,), (3,)]
    """
    try:
        return list(np.broadcast_arrays(*arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{name} {np.shape(a)}" for name, a in arrays.items())
        raise ValueError(f"{' and '.join(arrays)} must broadcast to one shape; got shapes {shapes}") from None


def scalar_or_array(result: np.ndarray):
    """Return a Python float for 0-d results and the array otherwise.

    >>> scalar_or_array(np.asarray(2.5))
    2.5
    """
    result = np.asarray(result)
    return float(result) if result.ndim == 0 else result


def points_2d(points, name: str = "points", unit: str = "") -> np.ndarray:
    """Return ``points`` as a finite float (n, m) array with m >= 1; reject NaN, inf and wrong shapes.

    A 1-D input is read as n points of one objective.

    >>> points_2d([[1, 2], [3, 4]]).shape
    (2, 2)
    """
    arr = real(points, name, unit)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n_points, n_objectives); got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one objective (column); got shape {arr.shape}")
    return arr
