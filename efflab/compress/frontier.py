"""The choice among measured variants: the Pareto frontier over bytes, latency and error, the one rule that picks a
variant under deployment budgets (:func:`best_feasible`, which :func:`efflab.widgets.best_variant` applies too), and
the tables the chapter prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, TypeVar

import numpy as np

from efflab import _validate as v
from efflab.compress.measure import Variant
from efflab.pareto import pareto_mask
from efflab.style import Table, format_si

_OBJECTIVES = ("size_bytes", "latency_s", "error")


class _Choosable(Protocol):
    """What :func:`best_feasible` reads: a :class:`~efflab.compress.measure.Variant` or anything with these three."""

    @property
    def accuracy(self) -> float: ...

    @property
    def size_bytes(self) -> float: ...

    @property
    def latency_s(self) -> float: ...


_V = TypeVar("_V", bound=_Choosable)


def objective_values(variants: Sequence[Variant], objectives: Sequence[str] = _OBJECTIVES):
    """``(n_variants, n_objectives)`` float array of the named attributes (each minimised)."""
    return np.array([[float(getattr(var, o)) for o in objectives] for var in variants], dtype=float)


def frontier_mask(variants: Sequence[Variant], objectives: Sequence[str] = _OBJECTIVES):
    """True for variants no other variant beats on every objective (all minimised): :func:`efflab.pareto_mask`.

    Examples
    --------
    >>> a = Variant("a", "x", accuracy=0.9, size_bytes=100, latency_s=1e-3, flops_per_sample=1, batch_size=1)
    >>> b = Variant("b", "x", accuracy=0.8, size_bytes=200, latency_s=1e-3, flops_per_sample=1, batch_size=1)
    >>> frontier_mask([a, b]).tolist()
    [True, False]
    """
    return pareto_mask(objective_values(variants, objectives))


def best_feasible(
    variants: Sequence[_V],
    *,
    max_size_bytes: float = math.inf,
    max_latency_s: float = math.inf,
    min_accuracy: float = 0.0,
) -> _V | None:
    """The most accurate variant within a memory budget, a latency budget and an accuracy floor (None if none fits).

    Feasible: ``size_bytes <= max_size_bytes``, ``latency_s <= max_latency_s`` and ``accuracy >= min_accuracy``.
    Ties in accuracy go to the faster, then the smaller variant, then the first listed; the choice is on the 3-D
    frontier. This is the package's one choice rule: :func:`efflab.widgets.best_variant` (the chapter's explorer)
    applies it to parallel lists, so the text and the widget agree (tested on random tables).

    Parameters
    ----------
    variants : sequence of Variant
        Measured variants, or any objects with ``accuracy``, ``size_bytes`` and ``latency_s`` attributes.
    max_size_bytes, max_latency_s : float
        Budgets (> 0; infinite by default).
    min_accuracy : float
        Accuracy floor, a fraction in [0, 1].

    Returns
    -------
    Variant or None
        The chosen element of ``variants`` itself.

    Examples
    --------
    >>> a = Variant("a", "x", accuracy=0.97, size_bytes=340_000, latency_s=4e-4, flops_per_sample=1, batch_size=1)
    >>> b = Variant("b", "x", accuracy=0.95, size_bytes=50_000, latency_s=1e-4, flops_per_sample=1, batch_size=1)
    >>> best_feasible([a, b]).name, best_feasible([a, b], max_size_bytes=100_000).name
    ('a', 'b')
    >>> best_feasible([a, b], min_accuracy=0.99) is None
    True
    """
    size = float(v.positive(max_size_bytes, "max_size_bytes", "bytes", allow_inf=True))
    lat = float(v.positive(max_latency_s, "max_latency_s", "s", allow_inf=True))
    acc = float(v.fraction(min_accuracy, "min_accuracy"))
    ok = [x for x in variants if x.size_bytes <= size and x.latency_s <= lat and x.accuracy >= acc]
    return min(ok, key=lambda x: (-x.accuracy, x.latency_s, x.size_bytes), default=None)


def format_table(variants: Sequence[Variant], *, latency: bool = True, mask=None) -> str:
    """A plain-text table (at most 76 characters wide): accuracy, bytes as run and as CSR, MFLOP per image, and
    optionally the median latency and whether each variant is on the frontier (``mask``).

    Examples
    --------
    >>> a = Variant("a", "x", accuracy=0.97, size_bytes=9_640, latency_s=4e-5, flops_per_sample=4736, batch_size=1)
    >>> print(format_table([a], mask=[True]))
    variant              accuracy  size (B)  CSR (B)  MFLOP   latency  frontier
    ---------------------------------------------------------------------------
    a                      97.00%     9,640            0.005     40 µs  yes
    """
    head = f"{'variant':<20}{'accuracy':>9}{'size (B)':>10}{'CSR (B)':>9}{'MFLOP':>7}"
    head += f"{'latency':>10}" if latency else ""
    head += "  frontier" if mask is not None else ""
    lines = [head, "-" * len(head)]
    for i, x in enumerate(variants):
        csr = "" if x.sparse_size_bytes is None else f"{x.sparse_size_bytes:,}"
        row = f"{x.name:<20}{x.accuracy:>9.2%}{x.size_bytes:>10,}{csr:>9}{x.flops_per_sample / 1e6:>7.3f}"
        row += f"{x.latency_s * 1e6:>7.0f} µs" if latency else ""
        row += ("  yes" if mask[i] else "  dominated") if mask is not None else ""
        lines.append(row.rstrip())
    return "\n".join(lines)


def variant_table(variants: Sequence[Variant], *, latency: bool = True, mask=None):
    """The variants as a :class:`~efflab.style.Table` (HTML in a notebook and the book, aligned text in a terminal):
    accuracy, size as run and as CSR, MFLOP per image, and optionally the median latency and whether each variant is
    on the frontier (``mask``). Sizes and times carry SI prefixes.

    Examples
    --------
    >>> a = Variant("a", "x", accuracy=0.97, size_bytes=9_640, latency_s=4e-5, flops_per_sample=4736, batch_size=1)
    >>> print(variant_table([a], mask=[True]))
    variant  accuracy  size     CSR  MFLOP  latency  frontier
    a        97.00%    9.64 kB  -    0.005  40 µs    yes
    """
    if mask is not None and len(mask) != len(variants):
        raise ValueError(f"mask must have one entry per variant ({len(variants)}); got {len(mask)}")
    header: tuple[str, ...] = ("variant", "accuracy", "size", "CSR", "MFLOP") + (("latency",) if latency else ())
    header += ("frontier",) if mask is not None else ()
    rows = []
    for i, x in enumerate(variants):
        csr = "-" if x.sparse_size_bytes is None else format_si(x.sparse_size_bytes, "B")
        row: tuple[str, ...] = (x.name, f"{x.accuracy:.2%}", format_si(x.size_bytes, "B"), csr)
        row += (f"{x.flops_per_sample / 1e6:.3f}",)
        row += (format_si(x.latency_s, "s"),) if latency else ()
        row += (("yes" if mask[i] else "dominated"),) if mask is not None else ()
        rows.append(row)
    return Table(header, tuple(rows))
