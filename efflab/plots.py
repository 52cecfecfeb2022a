"""One canonical picture per principle: rooflines, op profiles, Pareto fronts, Amdahl caps, energy splits, iron law.

Every function takes result objects from the core modules, draws on ``ax`` (a new 7 x 4.5 in figure when None, the
width of the book's text column), labels both axes with units and returns the ``Axes``; none calls ``plt.show()``.
Colours come from :mod:`efflab.style`: one per regime, everywhere (memory blue, compute vermillion, latency purple).

Points on a roofline (:func:`plot_roofline`, :func:`plot_iron_law`) may be given as any of

* ``(label, cost)`` pairs or a ``{label: cost}`` mapping, where ``cost`` has ``.flops`` and ``.bytes_moved``
  (:class:`~efflab.roofline.OpCost`, an ``OpRecord``, a scalar :class:`~efflab.roofline.Classification`);
* ``(label, flops, bytes_moved)`` triples, or mappings with keys ``label``, ``flops``, ``bytes_moved`` and optionally
  ``time_s`` (a measured time) and ``dtype``;
* :class:`RooflinePoint` objects, or bare objects with ``.flops``/``.bytes_moved`` (labelled by ``.name`` if any).

A point with a measured ``time_s`` (an ``OpRecord`` carries one) is drawn at its achieved ``flops / time_s``; any other
point at the iron-law bound ``flops / T`` of the roofline, latency included. Its colour is the regime that
``roofline.classify`` assigns.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, Protocol, TypeAlias

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.collections import PathCollection
from matplotlib.text import Annotation
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from numpy.typing import ArrayLike

from efflab import _validate as v
from efflab.amdahl import amdahl_speedup, gustafson_speedup
from efflab.energy import HOROWITZ_45NM_PJ, MEMORY_LEVELS, EnergyEstimate
from efflab.hardware import Device, as_roofline
from efflab.pareto import Sense, knee_point, pareto_front, pareto_mask
from efflab.roofline import Ceiling, Classification, Roofline
from efflab.style import (
    CHOSEN_COLOR,
    COMPUTE_UNITS,
    DATA_COLOR,
    DOMINATED_COLOR,
    FIGSIZE_IN,
    FRONT_COLOR,
    REGIME_COLORS,
    REGIME_LABELS,
    STAGE_COLORS,
    format_si,
    style_context,
)

__all__ = [
    "RooflinePoint",
    "as_points",
    "as_roofline",
    "ceiling_label",
    "plot_amdahl",
    "plot_energy_breakdown",
    "plot_energy_reuse",
    "plot_iron_law",
    "plot_iron_law_sweep",
    "plot_op_profile",
    "plot_pareto",
    "plot_roofline",
    "plot_runs",
    "plot_time_split",
    "place_labels",
]

if TYPE_CHECKING:
    from matplotlib.typing import LegendLocType

    from efflab.pipeline import PipelineRun
    from efflab.scenarios import ScenarioRun

RooflineLike: TypeAlias = Roofline | Device | str
"""A machine: a :class:`~efflab.roofline.Roofline`, a :class:`~efflab.hardware.Device` or a catalog name ("T4")."""
PointsLike: TypeAlias = Mapping[str, object] | Sequence[object] | None
"""Kernels to place on a roofline, in any of the forms listed in the module notes (None: no points)."""


class _CostLike(Protocol):
    """What a cost needs for a roofline: an :class:`~efflab.opcost.OpCost`, an ``OpRecord``, ..."""

    @property
    def flops(self) -> float: ...
    @property
    def bytes_moved(self) -> float: ...


class _OpLike(_CostLike, Protocol):
    """One op of a profile: an ``OpRecord`` (:func:`efflab.profile_ops`) or any object with these fields."""

    @property
    def name(self) -> str: ...
    @property
    def time_s(self) -> float: ...


class _ProfileLike(Protocol):
    """A profile: an ``OpProfile`` (:func:`efflab.profile_ops`), or any object with its records (and roofline)."""

    @property
    def records(self) -> Sequence[_OpLike]: ...


INTENSITY_LABEL = "arithmetic intensity (FLOP/byte)"
PERFORMANCE_LABEL = "attainable performance (FLOP/s)"
ROOF_COLOR = "#222222"
CEILING_COLOR = "#777777"


@dataclass(frozen=True)
class RooflinePoint:
    """One kernel to place on a roofline: FLOPs, bytes moved and optionally a measured time (s) and dtype."""

    label: str
    flops: float
    bytes_moved: float
    time_s: float | None = None
    dtype: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", str(self.label))
        object.__setattr__(self, "flops", float(v.nonnegative(self.flops, "flops", "FLOP")))
        object.__setattr__(self, "bytes_moved", float(v.positive(self.bytes_moved, "bytes_moved", "bytes")))
        if self.time_s is not None:
            object.__setattr__(self, "time_s", float(v.positive(self.time_s, "time_s", "s")))


def _point(item: object, index: int) -> RooflinePoint:
    if isinstance(item, RooflinePoint):
        return item
    if isinstance(item, Mapping):
        label = item.get("label", item.get("name", f"point {index + 1}"))
        return RooflinePoint(label, item["flops"], item["bytes_moved"], item.get("time_s"), item.get("dtype"))
    if isinstance(item, tuple) and len(item) == 3:
        return RooflinePoint(*item)
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return _from_object(item[0], item[1])
    if hasattr(item, "flops") and hasattr(item, "bytes_moved"):
        return _from_object(getattr(item, "name", None) or getattr(item, "label", None) or f"point {index + 1}", item)
    raise TypeError(
        "points must hold (label, OpCost) pairs, (label, flops, bytes_moved) triples, mappings with 'flops' and "
        f"'bytes_moved', or objects with .flops and .bytes_moved; got {item!r}"
    )


def _from_object(label: str, obj: object) -> RooflinePoint:
    if not (hasattr(obj, "flops") and hasattr(obj, "bytes_moved")):
        raise TypeError(f"point {label!r} must have .flops and .bytes_moved; got {type(obj).__name__}")
    # A Classification's time_s is the model's bound, not a measurement: only other objects carry a measured time.
    time_s = None if isinstance(obj, Classification) else getattr(obj, "time_s", None)
    return RooflinePoint(label, obj.flops, obj.bytes_moved, time_s, getattr(obj, "dtype", None))


def as_points(points: PointsLike) -> list[RooflinePoint]:
    """Normalize any accepted point input (see the module notes) to a list of :class:`RooflinePoint`.

    Examples
    --------
    >>> from efflab.opcost import matmul_cost
    >>> [p.label for p in as_points({"mm": matmul_cost(64, 64, 64), "add": (1e6, 12e6)})]
    ['mm', 'add']
    >>> as_points([("x", 2.0, 8.0)])[0].bytes_moved
    8.0
    """
    if points is None:
        return []
    if isinstance(points, Mapping):
        items = []
        for label, value in points.items():
            if isinstance(value, (tuple, list)) and len(value) == 2:
                items.append(RooflinePoint(label, *value))
            else:
                items.append(_from_object(str(label), value))
        return items
    if isinstance(points, (str, bytes)) or not isinstance(points, Sequence):
        raise TypeError(f"points must be a sequence or a mapping; got {type(points).__name__}")
    return [_point(item, i) for i, item in enumerate(points)]


def ceiling_label(ceiling: Ceiling) -> str:
    """How a ceiling is labelled on every plot: measured beside spec when both exist.

    Examples
    --------
    >>> from efflab.roofline import Ceiling
    >>> ceiling_label(Ceiling("fp32", "compute", 120e9, spec=150e9, measured=120e9))
    'fp32 measured 120 GFLOP/s (spec 150, 80 %)'
    >>> ceiling_label(Ceiling("dram", "memory", 3.35e12, spec=3.35e12))
    'dram spec 3.35 TB/s'
    """
    unit = COMPUTE_UNITS.get(ceiling.name, "FLOP/s") if ceiling.kind == "compute" else "B/s"
    if ceiling.measured is not None:
        text = f"{ceiling.name} measured {format_si(ceiling.measured, unit)}"
        if ceiling.spec is not None:
            scale = 1000.0 ** math.floor(math.log10(ceiling.measured) / 3)  # spec in the measured figure's prefix
            text += f" (spec {ceiling.spec / scale:.3g}, {100 * ceiling.measured / ceiling.spec:.0f} %)"
        return text
    return f"{ceiling.name} {'estimated' if ceiling.estimated else 'spec'} {format_si(ceiling.value, unit)}"


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = FIGSIZE_IN) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    return ax


class _ReadableLogLocator(LogLocator):
    """Ticks at every decade, and at 2 and 5 within each when the axis spans under 2.5 decades: a log axis from 0.8
    to 12 would otherwise carry the single label "1" (or "10")."""

    def tick_values(self, vmin: float, vmax: float) -> Sequence[float]:
        span = abs(math.log10(vmax / vmin)) if vmin > 0 and vmax > 0 else math.inf
        self.set_params(subs=(1.0, 2.0, 5.0) if span < 2.5 else (1.0,))
        return super().tick_values(vmin, vmax)


def _log_axis(axis: Axis, unit: str) -> None:
    axis.set_major_locator(_ReadableLogLocator(base=10, numticks=12))
    axis.set_minor_formatter(NullFormatter())
    axis.set_major_formatter(FuncFormatter(lambda x, _: format_si(x, unit) if unit else f"{x:g}"))


def _angle(ax: Axes, x0: float, y0: float, x1: float, y1: float) -> float:
    (a, b), (c, d) = ax.transData.transform([(x0, y0), (x1, y1)])
    return math.degrees(math.atan2(d - b, c - a))


def plot_roofline(
    roofline: RooflineLike,
    points: PointsLike = None,
    *,
    dtype: str | None = None,
    level: str | None = None,
    intensity_range: tuple[float, float] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw a log-log roofline ``R(I) = min(R_peak, I * BW)`` with every ceiling labelled, the ridge and points.

    Compute ceilings are horizontal lines from their ridge, memory ceilings slanted lines of slope 1; the roof of
    ``dtype`` over ``level`` (default: the roofline's default dtype over its slowest memory) is drawn thick. A ceiling
    with both a measured and a spec value is labelled "fp32 measured 120 GFLOP/s (spec 150, 80 %)" and its spec drawn
    dotted. The ridge ``I* = R_peak / BW`` is a vertical line. When ``roofline.latency_s`` is known it is stated and a
    point held below its roof by latency gets a drop line from the roof.

    Parameters
    ----------
    roofline : Roofline, Device or str
        The machine (a catalog name such as "T4" gives its datasheet roofline).
    points : see the module notes, optional
        Kernels to place, coloured by ``roofline.classify`` regime; 0-FLOP ops cannot sit on a log axis and are
        listed in a note instead.
    dtype, level : str, optional
        The compute ceiling and memory level of the thick roof and of the classification.
    intensity_range : (float, float), optional
        x limits in FLOP/byte; by default three decades either side of the ridge and the points.
    title : str, optional
        Defaults to the roofline's name.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        Lines carry gids: "roof", "ridge", "ceiling:compute:<dtype>", "ceiling:memory:<level>"; the points are the
        collection with gid "points".

    References
    ----------
    Williams, Waterman, Patterson, "Roofline", CACM 52(4), 2009.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from efflab.opcost import matmul_cost
    >>> ax = plot_roofline("h100", points={"matmul 4096": matmul_cost(4096, 4096, 4096, "bf16")}, dtype="bf16")
    >>> ax.get_xscale(), [round(float(l.get_xdata()[0]), 1) for l in ax.lines if l.get_gid() == "ridge"]
    ('log', [295.3])
    """
    rl = as_roofline(roofline)
    pts = as_points(points)
    dtype = dtype or rl.default_dtype
    peak, bw = rl.peak_flops_per_s(dtype), rl.bandwidth_bytes_per_s(level)
    ridge = peak / bw
    drawn = [p for p in pts if p.flops > 0]
    intensities = [p.flops / p.bytes_moved for p in drawn]
    if intensity_range is None:
        lo = 10 ** math.floor(math.log10(min([ridge / 300, *[i / 3 for i in intensities]])))
        hi = 10 ** math.ceil(math.log10(max([ridge * 30, *[i * 3 for i in intensities]])))
    else:
        lo, hi = (float(x) for x in v.positive(intensity_range, "intensity_range", "FLOP/byte"))
    top = max(c.value for c in rl.compute.values())
    with style_context():
        ax = _new_axes(ax)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ymin = lo * min(c.value for c in rl.memory.values()) / 2
        ax.set_xlim(lo, hi)
        ax.set_ylim(ymin, top * 3)
        # Compute ceilings: one line per distinct value, names merged ("fp16 / bf16") so labels never overlap.
        groups: dict[tuple, list] = {}
        for c in rl.compute.values():
            groups.setdefault((c.value, c.spec, c.measured), []).append(c)
        for (value, spec, measured), cs in groups.items():
            main = any(c.name == dtype for c in cs)
            ax.plot(
                [value / bw, hi],
                [value, value],
                color=ROOF_COLOR if main else CEILING_COLOR,
                lw=1.2,
                ls="-" if main else "--",
                gid=f"ceiling:compute:{cs[0].name}",
            )
            if measured is not None and spec is not None and spec != measured:
                ax.plot(
                    [spec / bw, hi], [spec, spec], color=CEILING_COLOR, lw=0.8, ls=":", gid=f"spec:compute:{cs[0].name}"
                )
            label = ceiling_label(cs[0])
            if len(cs) > 1:
                label = " / ".join(c.name for c in cs) + label[len(cs[0].name) :]
            ax.text(
                value / bw * 1.3,
                value * 1.08,
                label,
                ha="left",
                va="bottom",
                fontsize=8.5,
                color=ROOF_COLOR if main else CEILING_COLOR,
            )
        # Memory ceilings: slope-1 lines up to the highest compute roof, labelled along the line.
        for c in sorted(rl.memory.values(), key=lambda c: c.value):
            x_end = top / c.value
            main = c.value == bw
            ax.plot(
                [lo, x_end],
                [lo * c.value, top],
                color=ROOF_COLOR if main else CEILING_COLOR,
                lw=1.2,
                ls="-" if main else "--",
                gid=f"ceiling:memory:{c.name}",
            )
            if c.measured is not None and c.spec is not None and c.spec != c.measured:
                ax.plot(
                    [lo, top / c.spec],
                    [lo * c.spec, top],
                    color=CEILING_COLOR,
                    lw=0.8,
                    ls=":",
                    gid=f"spec:memory:{c.name}",
                )
            x_text = lo * 2.0
            ax.text(
                x_text,
                x_text * c.value * 1.25,
                ceiling_label(c),
                fontsize=8.5,
                ha="left",
                va="bottom",
                rotation=_angle(ax, lo, lo * c.value, x_end, top),
                rotation_mode="anchor",
                color=ROOF_COLOR if main else CEILING_COLOR,
            )
        xs = np.geomspace(lo, hi, 400)
        ax.plot(xs, np.minimum(peak, xs * bw), color=ROOF_COLOR, lw=2.6, gid="roof", label=f"roof ({dtype})")
        ax.plot([ridge, ridge], [ymin, peak], color=ROOF_COLOR, lw=1.0, ls=":", gid="ridge")
        ax.text(ridge * 1.08, ymin * 1.6, f"ridge {ridge:.3g} FLOP/B", rotation=90, fontsize=8.5, va="bottom")
        if rl.latency_s:
            ax.text(
                0.98,
                0.03,
                f"latency floor L = {format_si(rl.latency_s, 's')} per kernel:\nsmall kernels sit below the roof",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=8.5,
                color=REGIME_COLORS["latency"],
            )
        skipped = [p.label for p in pts if p.flops == 0]
        if skipped:
            ax.text(0.02, 0.03, "not shown (0 FLOPs): " + ", ".join(skipped), transform=ax.transAxes, fontsize=8)
        _log_axis(ax.xaxis, "")
        _log_axis(ax.yaxis, "FLOP/s")
        ax.set_xlabel(INTENSITY_LABEL)
        ax.set_ylabel(PERFORMANCE_LABEL)
        ax.set_title(title if title is not None else rl.name)
        _regime_legend(ax, {r for r in _regimes(rl, drawn, dtype, level)}, loc="upper left")
        _draw_points(ax, rl, drawn, dtype, level)  # last: its labels keep clear of every other text and the legend
    return ax


def _regimes(rl: Roofline, pts: Sequence[RooflinePoint], dtype: str | None, level: str | None) -> np.ndarray:
    if not pts:
        return np.array([], dtype=str)
    return np.atleast_1d(
        rl.classify([p.flops for p in pts], [p.bytes_moved for p in pts], dtype=dtype, level=level).regime
    )


def _draw_points(
    ax: Axes,
    rl: Roofline,
    pts: Sequence[RooflinePoint],
    dtype: str | None,
    level: str | None,
    sizes: ArrayLike | None = None,
    annotate: Mapping[int, str] | None = None,
) -> PathCollection | None:
    if not pts:
        return None
    cls = rl.classify([p.flops for p in pts], [p.bytes_moved for p in pts], dtype=dtype, level=level)
    regimes = np.atleast_1d(cls.regime)
    x = np.array([p.flops / p.bytes_moved for p in pts])
    model_y = np.atleast_1d(cls.attainable_flops_per_s)
    measured = np.array([p.time_s is not None for p in pts])
    y = np.array([p.flops / p.time_s if p.time_s else m for p, m in zip(pts, model_y, strict=True)])
    roof = np.asarray(rl.attainable(x, dtype, level))
    for xi, yi, ri, mi in zip(x, y, roof, measured, strict=True):
        if not mi and yi < ri / 1.05:  # held below the roof by the latency floor
            ax.plot([xi, xi], [yi, ri], color=REGIME_COLORS["latency"], lw=1, ls=":", gid="latency-drop")
    colors = [REGIME_COLORS[r] for r in regimes]
    coll = ax.scatter(
        x,
        y,
        s=40 if sizes is None else sizes,
        c=colors,
        edgecolors="white",
        linewidths=0.8,
        zorder=5,
        alpha=0.9,
        gid="points",
    )
    vars(coll)["regimes"] = tuple(str(r) for r in regimes)  # read back by tests and widgets: coll.regimes
    y_lo, y_hi = ax.get_ylim()  # measured points may sit above the roof (a wrong ceiling) or far below it
    ax.set_ylim(min(y_lo, y.min() / 2), max(y_hi, y.max() * 3))
    labels, owners = [], []
    for i, p in enumerate(pts):
        if annotate is None or i in annotate:
            text = p.label if annotate is None else annotate[i]
            labels.append(
                ax.annotate(
                    text, (x[i], y[i]), xytext=(6, -5), textcoords="offset points", va="top", fontsize=8.5, zorder=6
                )
            )
            owners.append(i)
    radii_pt = np.sqrt(np.broadcast_to(40 if sizes is None else np.asarray(sizes, dtype=float), x.shape)) / 2
    place_labels(ax, labels, points=np.column_stack([x, y]), radii_pt=radii_pt, label_radii_pt=radii_pt[owners])
    return coll


# Where a point's label may go, tried in order: beside its marker at the right-below corner (the figures' habit), the
# other corners, then rings further out (points beyond the marker's radius, horizontally and vertically).
_LABEL_RINGS_PT = ((3, 2), (3, 11), (10, 20))
_LABEL_CORNERS = ((1, -1), (1, 1), (-1, -1), (-1, 1))


def place_labels(
    ax: Axes,
    labels: Sequence[Annotation],
    points: ArrayLike | None = None,
    radii_pt: ArrayLike | None = None,
    label_radii_pt: ArrayLike | None = None,
    lines: Iterable[ArrayLike] = (),
) -> None:
    """Move each point label to the first spot around its point where it overlaps no other text, no point's marker
    and does not leave the axes (else to the spot that overlaps least); one moved past the first ring is drawn anew
    with a leader line to its point (the original annotation is removed from the axes).

    A small greedy placement, enough for the dozen labels of a roofline or a Pareto front: the labels are placed in
    order, each against the axes' other texts (ceiling and ridge labels, notes), the labels placed before it and every
    marker in ``points`` (data coordinates, with ``radii_pt`` marker radii in points).

    Parameters
    ----------
    ax : matplotlib Axes
    labels : sequence of matplotlib.text.Annotation
        Annotations with ``textcoords="offset points"``; their offset and alignment are changed in place.
    points : array_like, shape (n, 2), optional
        Markers to keep clear of, in data coordinates.
    radii_pt : array_like, optional
        Their radii in points (default 3).
    label_radii_pt : array_like, optional
        The radius of each label's own marker (default: that of the point in ``points`` it is anchored at, else 3):
        the label starts beside it.
    lines : sequence of array_like, each of shape (m, 2)
        Polylines (data coordinates) that labels should not cross, such as a drawn front. A label pushed past the first
        ring gets a thin leader line to its point.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig, ax = plt.subplots()
    >>> a = ax.annotate("first label", (1, 1), xytext=(6, -5), textcoords="offset points", va="top")
    >>> b = ax.annotate("second label", (1, 1), xytext=(6, -5), textcoords="offset points", va="top")
    >>> _ = ax.set(xlim=(0, 2), ylim=(0, 2))
    >>> place_labels(ax, [a, b])
    >>> a.xyann != b.xyann
    True
    >>> plt.close(fig)
    """
    labels = [t for t in labels if t.get_text()]
    if not labels:
        return
    fig = ax.figure
    canvas = fig.canvas
    if not hasattr(canvas, "get_renderer"):  # a bare Figure (the widgets draw so): give it the Agg canvas it saves with
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig.figure)  # the root figure (``fig`` itself unless a SubFigure)
    renderer = canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    px_per_pt = fig.dpi / 72.0
    obstacles = [
        t.get_window_extent(renderer) for t in ax.texts if t.get_visible() and t.get_text() and t not in labels
    ]
    legend = ax.get_legend()
    if legend is not None:
        obstacles.append(legend.get_window_extent(renderer))
    markers = np.empty((0, 2)) if points is None else np.asarray(points, dtype=float)
    if len(markers):
        from matplotlib.transforms import Bbox

        xy = ax.transData.transform(markers)
        radii = np.broadcast_to(3.0 if radii_pt is None else np.asarray(radii_pt, dtype=float), (len(xy),))
        obstacles += [
            Bbox.from_extents(px - r * px_per_pt, py - r * px_per_pt, px + r * px_per_pt, py + r * px_per_pt)
            for (px, py), r in zip(xy, radii, strict=True)
            if np.isfinite(px) and np.isfinite(py)
        ]

    for line in lines:  # sampled every ~3 px along each segment, as it is drawn (in display space)
        from matplotlib.transforms import Bbox

        xy = ax.transData.transform(np.asarray(line, dtype=float))
        for (x0, y0), (x1, y1) in zip(xy[:-1], xy[1:], strict=True):
            steps = max(2, int(math.hypot(x1 - x0, y1 - y0) / 3))
            for t in np.linspace(0.0, 1.0, steps):
                px, py = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                obstacles.append(Bbox.from_extents(px - 1, py - 1, px + 1, py + 1))

    def overlap(a, b) -> float:
        w = min(a.x1, b.x1) - max(a.x0, b.x0)
        h = min(a.y1, b.y1) - max(a.y0, b.y0)
        return w * h if w > 0 and h > 0 else 0.0

    def outside(a) -> float:
        return a.width * a.height - overlap(a, frame)

    own: Iterable[float]
    if label_radii_pt is not None:
        own = np.broadcast_to(np.asarray(label_radii_pt, dtype=float), (len(labels),))
    elif len(markers):  # each label's own marker: the point it is anchored at
        rad = np.broadcast_to(3.0 if radii_pt is None else np.asarray(radii_pt, dtype=float), (len(markers),))
        own = [
            float(rad[k[0]]) if len(k := np.flatnonzero(np.all(np.isclose(markers, t.xy), axis=1))) else 3.0
            for t in labels
        ]
    else:
        own = [3.0] * len(labels)
    for label, r in zip(labels, own, strict=True):
        best, best_cost = None, math.inf
        spots = [
            (ring, sx * (r + gx), sy * (0.6 * r + gy), sx, sy)
            for ring, (gx, gy) in enumerate(_LABEL_RINGS_PT)
            for sx, sy in _LABEL_CORNERS
        ]
        for ring, dx, dy, sx, sy in spots:
            label.xyann = (dx, dy)
            label.set_horizontalalignment("left" if sx > 0 else "right")
            label.set_verticalalignment("top" if sy < 0 else "bottom")
            box = label.get_window_extent(renderer).expanded(1.04, 1.15)
            cost = sum(overlap(box, o) for o in obstacles) + 10 * outside(box)
            if cost < best_cost:
                best, best_cost = (ring, dx, dy, sx, sy, box), cost
            if cost == 0:
                break
        if best is None:  # every spot's cost was NaN: the label sits at a NaN or infinite position
            raise ValueError(f"labels: {label.get_text()!r} has no finite position to place it at")
        ring, dx, dy, sx, sy, box = best
        label.xyann = (dx, dy)
        label.set_horizontalalignment("left" if sx > 0 else "right")
        label.set_verticalalignment("top" if sy < 0 else "bottom")
        if ring > 0:  # away from its point: the same label again, with a leader line that says whose it is
            ax.annotate(
                label.get_text(),
                label.xy,
                xytext=(dx, dy),
                textcoords="offset points",
                ha=label.get_horizontalalignment(),
                va=label.get_verticalalignment(),
                fontsize=label.get_fontsize(),
                color=label.get_color(),
                alpha=label.get_alpha(),
                zorder=label.get_zorder(),
                arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "0.45", "shrinkA": 1, "shrinkB": r},
            )
            label.remove()
        obstacles.append(box)


def _regime_legend(ax: Axes, regimes: Collection[str], loc: LegendLocType = "best", extra: Iterable[str] = ()) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=ROOF_COLOR, lw=2.6, label=h) for h in extra]
    handles += [
        Line2D([], [], ls="", marker="o", markersize=7, color=REGIME_COLORS[r], label=REGIME_LABELS[r])
        for r in ("memory", "compute", "latency")
        if r in regimes
    ]
    if handles:
        ax.legend(handles=handles, loc=loc)


def plot_op_profile(
    profile: _ProfileLike, *, roofline: RooflineLike | None = None, top: int = 5, ax: Axes | None = None
) -> Axes:
    """A profile's ops on the roofline: at their achieved ``flops / time_s``, marker area proportional to time share.

    ``share_i = time_i / sum(time)``; the ``top`` ops by time are labelled with their share. Ops with 0 FLOPs or
    0 bytes (embedding lookups, copies, views) cannot sit on a log axis: they are listed in a note with their share.

    Parameters
    ----------
    profile : OpProfile
        From :func:`efflab.profile_ops`: ``.records`` (each with name, flops, bytes_moved, time_s and optionally
        regime) and ``.roofline``.
    roofline : Roofline, Device or str, optional
        Overrides ``profile.roofline``.
    top : int
        How many ops to label (>= 0).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from types import SimpleNamespace as NS
    >>> recs = [NS(name="linear", flops=2e9, bytes_moved=1e7, time_s=2e-3), NS(name="gelu", flops=4e6, bytes_moved=8e6, time_s=1e-3)]
    >>> ax = plot_op_profile(NS(records=recs, roofline="T4"))
    >>> sorted(t.get_text() for t in ax.texts if "%" in t.get_text() and "spec" not in t.get_text())
    ['gelu 33 %', 'linear 67 %']
    """
    rl = as_roofline(roofline if roofline is not None else getattr(profile, "roofline", None) or _no_roofline())
    top = v.integer(top, "top", "ops", low=0)
    records = list(profile.records)
    if not records:
        raise ValueError("profile must hold at least one op record; got none")
    times = np.array([float(v.nonnegative(r.time_s, "time_s", "s")) for r in records])
    if times.sum() <= 0:
        raise ValueError("profile records must have a positive total time_s (in s); got 0")
    shares = times / times.sum()
    # An op with no FLOPs or no bytes (a view, a copy, an op that stays on chip) has no place on a log-log roofline.
    keep = [i for i, r in enumerate(records) if r.flops > 0 and r.bytes_moved > 0 and r.time_s > 0]
    pts = {i: RooflinePoint(r.name, r.flops, r.bytes_moved, r.time_s) for i, r in enumerate(records) if i in keep}
    names = [r.name for r in records]
    ax = plot_roofline(rl, None, ax=ax, intensity_range=_profile_range(rl, [pts[i] for i in keep]))
    order = sorted(keep, key=lambda i: -shares[i])[:top]
    labels = {j: f"{pts[i].label} {100 * shares[i]:.0f} %" for j, i in enumerate(keep) if i in order}
    with style_context():
        hidden = sorted({i for i in range(len(records)) if i not in keep}, key=lambda i: -shares[i])
        if hidden:
            note = ", ".join(f"{names[i]} {100 * shares[i]:.0f} %" for i in hidden[:4])
            more = f" and {len(hidden) - 4} more" if len(hidden) > 4 else ""
            ax.text(0.02, 0.03, f"not shown (0 FLOPs or 0 bytes): {note}{more}", transform=ax.transAxes, fontsize=8)
        ax.set_title(f"op profile: {len(records)} ops, {format_si(times.sum(), 's')} total — {rl.name}")
        _regime_legend(ax, set(_regimes(rl, [pts[i] for i in keep], None, None)), loc="upper left")
        # last: the op labels keep clear of the ceiling labels, the note and the legend
        coll = _draw_points(ax, rl, [pts[i] for i in keep], None, None, sizes=30 + 1200 * shares[keep], annotate=labels)
        if coll is not None:
            vars(coll)["shares"] = tuple(shares[keep])  # read back as coll.shares
    return ax


def _no_roofline() -> NoReturn:
    raise ValueError("profile has no roofline: pass roofline= (a Roofline, a Device or a catalog name)")


def _profile_range(rl: Roofline, pts: Sequence[RooflinePoint]) -> tuple[float, float]:
    xs = [p.flops / p.bytes_moved for p in pts] or [rl.ridge_point]
    return (
        10 ** math.floor(math.log10(min(min(xs) / 3, rl.ridge_point / 100))),
        10 ** math.ceil(math.log10(max(max(xs) * 3, rl.ridge_point * 10))),
    )


def plot_pareto(
    points: ArrayLike,
    sense: Sense = None,
    labels: Sequence[str] | None = None,
    chosen: int | str | None = None,
    *,
    objective_names: tuple[str, str] | None = None,
    xscale: str = "linear",
    yscale: str = "linear",
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Two objectives with the Pareto front highlighted (line + markers), dominated points faded, a choice marked.

    A point is dominated when another is at least as good in both objectives and better in one
    (:func:`efflab.pareto.pareto_mask`); the front is drawn in order of the first objective.

    Parameters
    ----------
    points : array_like, shape (n, 2)
        The measured objectives, one row per configuration.
    sense : None, "min", "max" or a pair of them
        Which direction is better per objective (None: minimise both).
    labels : sequence of str, optional
        One per point; front points are labelled, dominated ones too but faded.
    chosen : int, str or "knee", optional
        The operating point to mark: a row index, a label, or "knee" for :func:`efflab.pareto.knee_point`.
    objective_names : (str, str), optional
        Axis labels with units, e.g. ("latency (s)", "accuracy (fraction)"); "lower/higher is better" is appended.
    xscale, yscale : {"linear", "log"}
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        The front is the line with gid "front", dominated points the collection with gid "dominated", the choice
        the line with gid "chosen".

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = plot_pareto([[1, 0.7], [2, 0.8], [3, 0.75]], sense=["min", "max"], labels=["a", "b", "c"], chosen="b")
    >>> [l.get_xdata().tolist() for l in ax.lines if l.get_gid() == "front"]
    [[1.0, 2.0]]
    """
    arr = v.points_2d(points, "points")
    if arr.shape[1] != 2:
        raise ValueError(f"points must have exactly 2 objectives (columns) to plot; got {arr.shape[1]}")
    n = arr.shape[0]
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels must have one entry per point ({n}); got {len(labels)}")
    mask = pareto_mask(arr, sense)
    front, _ = pareto_front(arr, sense, return_index=True)
    senses = [sense] * 2 if sense is None or isinstance(sense, str) else list(sense)
    names = objective_names or ("objective 1", "objective 2")
    with style_context():
        ax = _new_axes(ax)
        dom = arr[~mask]
        ax.scatter(
            dom[:, 0],
            dom[:, 1],
            s=30,
            color=DOMINATED_COLOR,
            alpha=0.4,
            gid="dominated",
            label=f"dominated ({len(dom)})",
        )
        ax.plot(
            front[:, 0],
            front[:, 1],
            "-o",
            color=FRONT_COLOR,
            lw=2,
            ms=7,
            mec="white",
            gid="front",
            label=f"Pareto front ({len(front)})",
            zorder=4,
        )
        annotations = []
        if labels is not None:
            for i, text in enumerate(labels):
                annotations.append(
                    ax.annotate(
                        str(text),
                        arr[i],
                        xytext=(5, 4),
                        textcoords="offset points",
                        fontsize=8.5,
                        alpha=1.0 if mask[i] else 0.5,
                    )
                )
        radii_pt = np.full(n, 3.5)  # the front's markers (ms=7); the chosen star below is larger
        if chosen is not None:
            index = _chosen_index(arr, sense, labels, chosen)
            radii_pt[index] = 9.0
            ax.plot(
                *arr[index],
                marker="*",
                ms=18,
                color=CHOSEN_COLOR,
                ls="",
                gid="chosen",
                zorder=6,
                label=f"chosen: {labels[index] if labels is not None else index}",
            )
        for setter, name, s in ((ax.set_xlabel, names[0], senses[0]), (ax.set_ylabel, names[1], senses[1])):
            setter(f"{name} — {'higher' if s == 'max' else 'lower'} is better")
        ax.set_xscale(xscale)
        ax.set_yscale(yscale)
        if title:
            ax.set_title(title)
        ax.legend(loc="best")
        owners = [i for i, text in enumerate(labels or ()) if str(text)]
        place_labels(ax, annotations, points=arr, radii_pt=radii_pt, label_radii_pt=radii_pt[owners], lines=[front])
    return ax


def _chosen_index(arr: np.ndarray, sense: Sense, labels: Sequence[str] | None, chosen: int | str) -> int:
    if isinstance(chosen, str) and chosen == "knee":
        return knee_point(arr, sense, return_index=True)[1]
    if isinstance(chosen, str):
        if labels is None or chosen not in list(labels):
            raise ValueError(f"chosen must be a row index, one of the labels or 'knee'; got {chosen!r}")
        return list(labels).index(chosen)
    return v.integer(chosen, "chosen", "row index", low=0, high=arr.shape[0] - 1)


def _fraction_colors(n: int) -> list[tuple[float, float, float, float]]:
    cmap = plt.get_cmap("viridis")
    return [cmap(x) for x in np.linspace(0.1, 0.8, n)]


def plot_amdahl(
    fractions: ArrayLike = (0.5, 0.9, 0.95, 0.99),
    max_speedup: float = 1000,
    ax: Axes | None = None,
    gustafson: bool = True,
    highlight: tuple[float, float] | None = (0.95, 100),
) -> Axes:
    """Amdahl's law ``S = 1 / ((1 - f) + f / s)`` for several fractions, with the caps ``1 / (1 - f)`` dashed.

    With ``gustafson`` and no ``ax``, a second panel below shows Gustafson's scaled speedup ``S = (1 - f) + f * N``
    for the same fractions: when the problem grows with the machine there is no cap. With an ``ax`` given, the
    Gustafson lines are overlaid dash-dotted on it.

    Parameters
    ----------
    fractions : sequence of float
        Accelerated fractions ``f`` of the baseline time, in [0, 1].
    max_speedup : float
        Largest speedup ``s`` of the accelerated part on the x axis (> 1).
    ax : matplotlib Axes, optional
    gustafson : bool
        Add the Gustafson contrast.
    highlight : (float, float) or None
        A case ``(f, s)`` to mark and annotate; MLSysBook's 95 % at 100x = 16.8x by default.

    Returns
    -------
    matplotlib.axes.Axes
        The Amdahl panel (the Gustafson panel, when drawn, is ``ax.figure.axes[1]``). Cap lines have gids
        "cap:<f>", the curves "amdahl:<f>".

    References
    ----------
    G. M. Amdahl, AFIPS 1967; J. L. Gustafson, CACM 31(5), 1988.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = plot_amdahl(fractions=(0.9, 0.95))
    >>> [round(float(l.get_ydata()[0]), 6) for l in ax.lines if l.get_gid().startswith("cap:")]
    [10.0, 20.0]
    """
    fr = np.atleast_1d(v.fraction(fractions, "fractions"))
    top = float(v.real(max_speedup, "max_speedup", "times faster", low=1.0, low_open=True))
    s = np.geomspace(1.0, top, 300)
    colors = _fraction_colors(len(fr))
    with style_context():
        if ax is None:
            if gustafson:
                fig, (ax, gax) = plt.subplots(2, 1, figsize=(7.0, 7.5), constrained_layout=True)
            else:
                ax = _new_axes(None)
        else:
            gax = ax if gustafson else None
        if not gustafson:
            gax = None
        for f, color in zip(fr, colors, strict=True):
            ax.plot(s, amdahl_speedup(f, s), color=color, lw=2, gid=f"amdahl:{f:g}", label=f"f = {f:g}")
            if f < 1:
                cap = 1.0 / (1.0 - f)
                ax.plot([1, top], [cap, cap], color=color, lw=1, ls="--", gid=f"cap:{f:g}")
                ax.text(1.15, cap * 1.05, f"cap 1/(1−{f:g}) = {cap:.3g}×", color=color, fontsize=8.5, va="bottom")
        if highlight is not None:
            hf, hs = highlight
            hS = float(amdahl_speedup(hf, hs))  # scalar f and s: a float already
            ax.plot([hs], [hS], "o", color=CHOSEN_COLOR, ms=6, gid="highlight")
            ax.annotate(
                f"f = {hf:g}, s = {hs:g}: S = {hS:.3g}×",
                (hs, hS),
                xytext=(8, -14),
                textcoords="offset points",
                fontsize=8.5,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(1, top)
        _log_axis(ax.yaxis, "")
        _log_axis(ax.xaxis, "")
        ax.set_ylabel("overall speedup S (×)")
        ax.set_xlabel("speedup s of the accelerated part (×)")
        ax.set_title("Amdahl: the untouched part caps the whole at 1/(1−f)")
        ax.set_ylim(0.8, max([2.0, *(1 / (1 - f) for f in fr if f < 1)]) * 1.8)
        ax.legend(loc="lower right", title="accelerated fraction f")
        if gax is not None:
            for f, color in zip(fr, colors, strict=True):
                gax.plot(
                    s,
                    gustafson_speedup(f, s),
                    color=color,
                    lw=2 if gax is not ax else 1,
                    ls="-.",
                    gid=f"gustafson:{f:g}",
                    label=f"Gustafson f = {f:g}" if gax is ax else f"f = {f:g}",
                )
            if gax is not ax:
                gax.plot(s, s, color=CEILING_COLOR, lw=1, ls=":", label="ideal S = N")
                gax.set_xscale("log")
                gax.set_yscale("log")
                _log_axis(gax.yaxis, "")
                _log_axis(gax.xaxis, "")
                gax.set_xlabel("processors N (the problem grows with N)")
                gax.set_ylabel("scaled speedup S (×)")
                gax.set_title("Gustafson: S = (1−f) + f·N grows without a cap")
                gax.set_xlim(1, top)
                gax.legend(loc="upper left")
    return ax


def _estimates(estimates: EnergyEstimate | Iterable[EnergyEstimate]) -> list[tuple[float, float]]:
    if isinstance(estimates, EnergyEstimate):
        estimates = [estimates]
    pairs = []
    for est in estimates:
        if not isinstance(est, EnergyEstimate):
            raise TypeError(
                f"estimates must be EnergyEstimate objects (efflab.energy_estimate); got {type(est).__name__}"
            )
        for m, c in zip(np.ravel(est.movement_j), np.ravel(est.compute_j), strict=True):
            pairs.append((float(m), float(c)))
    return pairs


def plot_energy_breakdown(
    estimates: EnergyEstimate | Iterable[EnergyEstimate], labels: Sequence[str] | None = None, ax: Axes | None = None
) -> Axes:
    """Data-movement vs compute energy per workload, side by side on a log scale, with their ratio.

    ``E_movement = bytes_moved * e_byte`` and ``E_compute = flops * e_flop`` from
    :func:`efflab.energy.energy_estimate` (Horowitz's 45 nm figures: an estimate, not a measurement).

    Parameters
    ----------
    estimates : EnergyEstimate or sequence of them
        An estimate with array fields counts as one workload per element.
    labels : sequence of str, optional
        One per workload.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        The bar containers are labelled "data movement" and "compute".

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from efflab.energy import energy_estimate
    >>> ax = plot_energy_breakdown(energy_estimate([1e6, 2e9], [12e6, 1e8]), labels=["add", "matmul"])
    >>> ax.get_yscale(), [t.get_text() for t in ax.texts]
    ('log', ['848× movement', '3.53× movement'])
    """
    pairs = _estimates(estimates)
    n = len(pairs)
    labels = [f"workload {i + 1}" for i in range(n)] if labels is None else [str(x) for x in labels]
    if len(labels) != n:
        raise ValueError(f"labels must have one entry per workload ({n}); got {len(labels)}")
    movement, compute = np.array(pairs).T
    x = np.arange(n)
    with style_context():
        ax = _new_axes(ax)
        ax.bar(x - 0.2, movement, 0.4, color=REGIME_COLORS["memory"], label="data movement")
        ax.bar(x + 0.2, compute, 0.4, color=REGIME_COLORS["compute"], label="compute")
        ax.set_yscale("log")
        for xi, m, c in zip(x, movement, compute, strict=True):
            text = "movement only" if c == 0 else f"{m / c:.3g}× movement" if m >= c else f"{c / m:.3g}× compute"
            ax.text(float(xi), max(m, c) * 1.6, text, ha="center", va="bottom", fontsize=8.5)
        positive = np.concatenate([movement[movement > 0], compute[compute > 0]])
        ax.set_ylim(positive.min() / 3, positive.max() * 12)
        _log_axis(ax.yaxis, "J")
        ax.set_xticks(x)
        ax.set_xticklabels(labels)
        ax.set_ylabel("energy (J)")
        ax.set_title("Energy: moving data vs computing on it (estimated, 45 nm)")
        ax.legend(loc="upper left")
        ax.grid(axis="x", visible=False)
    return ax


def _classifications(
    workloads: Classification | Mapping[str, object] | Sequence[object],
    roofline: RooflineLike | None,
    labels: Sequence[str] | None,
) -> tuple[list[tuple[float, float, float, float, str]], list[str]]:
    if isinstance(workloads, Classification):
        workloads = [workloads]
    items: list[tuple[float, float, float, float, str]] = []  # memory, compute, latency, overlapped T (s); regime
    names: list[str] = []
    rl = as_roofline(roofline) if roofline is not None else None
    for w in workloads if not isinstance(workloads, Mapping) else as_points(workloads):
        if isinstance(w, Classification):
            for k in range(np.size(w.memory_time_s)):
                memory_s, compute_s, latency_s, time_s = (
                    float(np.ravel(getattr(w, f))[k])
                    for f in ("memory_time_s", "compute_time_s", "latency_s", "time_s")
                )
                items.append((memory_s, compute_s, latency_s, time_s, str(np.ravel(w.regime)[k])))
                names.append(f"workload {len(names) + 1}")
        else:
            if rl is None:
                raise ValueError("roofline must be given to classify workloads that are not Classification objects")
            p = w if isinstance(w, RooflinePoint) else as_points([w])[0]
            c = rl.classify(p.flops, p.bytes_moved, dtype=p.dtype)
            # one point gives a scalar classification: float() and str() only state its types
            items.append(
                (float(c.memory_time_s), float(c.compute_time_s), float(c.latency_s), float(c.time_s), str(c.regime))
            )
            names.append(p.label)
    if labels is not None:
        if len(labels) != len(items):
            raise ValueError(f"labels must have one entry per workload ({len(items)}); got {len(labels)}")
        names = [str(x) for x in labels]
    return items, names


def plot_iron_law(
    workloads: Classification | Mapping[str, object] | Sequence[object],
    roofline: RooflineLike | None = None,
    labels: Sequence[str] | None = None,
    *,
    normalize: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """The three iron-law terms of several workloads as stacked horizontal bars, regime named at each bar.

    ``T = max(D_vol/BW, O/(R_peak*eta)) + L_lat``: the bars stack ``D_vol/BW`` (memory), ``O/(R_peak*eta)``
    (compute) and ``L_lat`` (latency), the serialized sum; a black tick marks the overlapped ``T``. With
    ``normalize`` each bar is scaled to 100 % of its serialized sum so workloads of very different sizes compare.

    Parameters
    ----------
    workloads : Classification(s) or points (see the module notes)
        Scalar or array :class:`~efflab.roofline.Classification` objects, or points classified on ``roofline``.
    roofline : Roofline, Device or str, optional
        Needed when workloads are not Classifications.
    labels : sequence of str, optional
    normalize : bool
        Shares in % (True) or seconds (False).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        Bar containers labelled "memory D/BW", "compute O/(R·η)", "latency L".

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from efflab.opcost import matmul_cost
    >>> ax = plot_iron_law([("decode", matmul_cost(1, 4096, 4096, "fp16")), ("prefill", matmul_cost(4096, 4096, 4096, "fp16"))], "T4", normalize=False)
    >>> [t.get_text().split(" ·")[0].strip() for t in ax.texts]
    ['memory-bound', 'compute-bound']
    """
    items, names = _classifications(workloads, roofline, labels)
    terms = np.array([it[:3] for it in items])
    total = np.array([it[3] for it in items])
    sums = terms.sum(axis=1)
    scale = np.where(sums > 0, 100.0 / np.where(sums > 0, sums, 1), 1.0) if normalize else np.ones(len(items))
    y = np.arange(len(items))[::-1]
    with style_context():
        ax = _new_axes(ax, (FIGSIZE_IN[0], max(2.2, 0.7 * len(items) + 1.4)))
        left = np.zeros(len(items))
        for k, (regime, name) in enumerate(
            (("memory", "memory D/BW"), ("compute", "compute O/(R·η)"), ("latency", "latency L"))
        ):
            width = terms[:, k] * scale
            ax.barh(y, width, left=left, color=REGIME_COLORS[regime], label=name, height=0.6)
            left += width
        ax.plot(total * scale, y, "|", color=CHOSEN_COLOR, ms=22, mew=2.5, label="T (overlapped)", gid="overlapped")
        for yi, end, it in zip(y, left, items, strict=True):
            ax.text(end, yi, f"  {REGIME_LABELS[it[4]]} · T = {format_si(it[3], 's')}", va="center", fontsize=8.5)
        ax.set_yticks(y)
        ax.set_yticklabels(names)
        ax.set_xlim(0, left.max() * 1.45)  # room on the right for the labels, but no axis there
        ax.spines["bottom"].set_bounds(0, left.max())
        if normalize:
            ax.set_xticks(np.arange(0, 101, 20))
            ax.set_xlabel("share of the serialized time D/BW + O/(R·η) + L (%)")
        else:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: format_si(x, "s")))
            ax.set_xlabel("time (s)")
        ax.set_title("Iron law: which term dominates each workload", pad=24)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=4, markerscale=0.5, borderaxespad=0.2)
        ax.grid(axis="y", visible=False)
    return ax


def plot_iron_law_sweep(
    roofline: RooflineLike,
    costs: Sequence[_CostLike],
    x: ArrayLike,
    *,
    xlabel: str,
    current: float | None = None,
    dtype: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """How the iron-law terms move as a size grows: ``D/BW``, ``O/(R·η)``, ``L`` and ``T`` against ``x``, log-log.

    The background is shaded by the dominant term, so a workload can be watched crossing from latency- to memory- to
    compute-bound as the batch or the problem grows.

    Parameters
    ----------
    roofline : Roofline, Device or str
    costs : sequence of OpCost-like
        One cost per value of ``x`` (objects with ``.flops`` and ``.bytes_moved``).
    x : sequence of float
        The swept size (e.g. batch size, in tokens), positive.
    xlabel : str
        Axis label with its unit.
    current : float, optional
        The value of ``x`` to mark.
    dtype : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        Lines with gids "term:memory", "term:compute", "term:latency", "total" and "current".

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from efflab.opcost import matmul_cost
    >>> b = [1, 16, 256, 4096]
    >>> ax = plot_iron_law_sweep("T4", [matmul_cost(n, 4096, 4096, "fp16") for n in b], b, xlabel="batch (tokens)", dtype="fp16")
    >>> ax.get_xscale(), ax.get_yscale()
    ('log', 'log')
    """
    rl = as_roofline(roofline)
    xs = v.positive(x, "x")
    if xs.ndim != 1 or len(costs) != xs.size:
        raise ValueError(f"costs and x must be 1-D and of one length; got {len(costs)} costs, x shape {xs.shape}")
    cls = rl.classify([c.flops for c in costs], [c.bytes_moved for c in costs], dtype=dtype)
    regimes = np.atleast_1d(cls.regime)
    with style_context():
        ax = _new_axes(ax)
        edges = np.sqrt(xs[1:] * xs[:-1])
        bounds = np.concatenate([[xs[0]], edges, [xs[-1]]])
        for i, r in enumerate(regimes):
            ax.axvspan(bounds[i], bounds[i + 1], color=REGIME_COLORS[r], alpha=0.10, lw=0)
        ax.plot(xs, cls.memory_time_s, color=REGIME_COLORS["memory"], lw=2, gid="term:memory", label="memory D/BW")
        ax.plot(
            xs, cls.compute_time_s, color=REGIME_COLORS["compute"], lw=2, gid="term:compute", label="compute O/(R·η)"
        )
        if np.any(np.asarray(cls.latency_s) > 0):
            ax.plot(
                xs,
                np.broadcast_to(cls.latency_s, xs.shape),
                color=REGIME_COLORS["latency"],
                lw=2,
                gid="term:latency",
                label="latency L",
            )
        ax.plot(xs, cls.time_s, color=ROOF_COLOR, lw=1.2, ls="--", gid="total", label="T = max(…) + L")
        if current is not None:
            c = float(v.positive(current, "current"))
            i = int(np.argmin(np.abs(np.log(xs) - math.log(c))))
            ax.axvline(xs[i], color=CHOSEN_COLOR, lw=1, gid="current")
            ax.plot([xs[i]], [np.ravel(cls.time_s)[i]], "o", color=REGIME_COLORS[regimes[i]], ms=9, mec="black")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_axis(ax.yaxis, "s")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:g}"))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("time per call (s)")
        ax.legend(loc="upper left")
        ax.set_title(rl.name)
    return ax


# Bytes per element of the dtypes in Horowitz's table (int32 is 4 bytes; the others as efflab.roofline.DTYPE_BYTES).
ENERGY_DTYPE_BYTES = {"fp32": 4, "fp16": 2, "int32": 4, "int8": 1}


def plot_energy_reuse(
    dtype: str = "fp32",
    reuse: float | None = None,
    memory: str = "dram",
    *,
    reuse_range: tuple[float, float] = (0.01, 1e4),
    ax: Axes | None = None,
) -> Axes:
    """Energy per operation against data reuse: movement ``e_byte * s / r`` falls, compute ``e_flop`` stays.

    ``E/FLOP = e_flop + e_byte * s / r`` with ``r`` FLOPs per element fetched from ``memory`` and ``s`` bytes per
    element; the two are equal at the break-even reuse ``r* = e_byte * s / e_flop``, marked with a vertical line
    (below it moving data costs more energy than computing on it). Figures from Horowitz, ISSCC 2014 (45 nm).

    Parameters
    ----------
    dtype : {"fp32", "fp16", "int32", "int8"}
    reuse : float, optional
        A reuse to mark (FLOPs per element, > 0).
    memory : str
        A level of :data:`efflab.energy.MEMORY_LEVELS`.
    reuse_range : (float, float)
        x limits (FLOPs per element).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        Lines with gids "movement", "compute", "total", "break-even".

    Examples
    --------
    fp32 from DRAM: 162.5 pJ/B * 4 B / 2.3 pJ = 283 FLOPs per element to break even.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = plot_energy_reuse("fp32", reuse=10)
    >>> round([l.get_xdata()[0] for l in ax.lines if l.get_gid() == "break-even"][0])
    283
    """
    key = v.choice(dtype, "dtype", list(ENERGY_DTYPE_BYTES))
    level = v.choice(memory, "memory", list(MEMORY_LEVELS))
    lo, hi = (float(t) for t in v.positive(reuse_range, "reuse_range", "FLOPs per element"))
    e_flop = (HOROWITZ_45NM_PJ[f"{key}_mult"] + HOROWITZ_45NM_PJ[f"{key}_add"]) / 2 * 1e-12
    e_elem = MEMORY_LEVELS[level][0] * 1e-12 * ENERGY_DTYPE_BYTES[key]
    r = np.geomspace(lo, hi, 300)
    even = e_elem / e_flop
    with style_context():
        ax = _new_axes(ax)
        ax.axvspan(lo, min(even, hi), color=REGIME_COLORS["memory"], alpha=0.08, lw=0)
        ax.axvspan(min(even, hi), hi, color=REGIME_COLORS["compute"], alpha=0.08, lw=0)
        ax.plot(r, e_elem / r, color=REGIME_COLORS["memory"], lw=2, gid="movement", label="data movement e_byte·s/r")
        ax.plot(r, np.full_like(r, e_flop), color=REGIME_COLORS["compute"], lw=2, gid="compute", label="compute e_flop")
        ax.plot(r, e_flop + e_elem / r, color=ROOF_COLOR, lw=1.2, ls="--", gid="total", label="total")
        ax.axvline(even, color=ROOF_COLOR, lw=1, ls=":", gid="break-even")
        ax.text(even * 1.1, e_flop * 4, f"break-even r* = {even:.3g}", rotation=90, fontsize=8.5, va="bottom")
        if reuse is not None:
            rr = float(v.positive(reuse, "reuse", "FLOPs per element"))
            ax.plot([rr], [e_flop + e_elem / rr], "o", color=CHOSEN_COLOR, ms=8, gid="current")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        _log_axis(ax.yaxis, "J")
        _log_axis(ax.xaxis, "")
        ax.set_xlabel(f"data reuse r (FLOPs per {key} element fetched from {level})")
        ax.set_ylabel("energy per FLOP (J)")
        ax.set_title(f"Energy per FLOP, {key} from {level} (estimated, Horowitz 45 nm)")
        ax.legend(loc="lower left")  # the curves fall from upper left to lower right: that corner is empty
    return ax


def plot_runs(runs: Mapping[str, PipelineRun], ax: Axes | None = None) -> Axes:
    """Horizontal stacked bars of the median per-batch stage times of several runs, with each run's wall time.

    For a sequential run the bar length equals the wall time per batch (stages add up); for an overlapped run the
    wall-time marker sits at the slowest resource, short of the bar: the hidden part is the overlap.

    Parameters
    ----------
    runs : mapping of str to PipelineRun
        Label -> run, drawn top to bottom.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from efflab.pipeline import PipelineRun
    >>> r = PipelineRun({"decode": (0.01,), "augment": (0.02,), "model": (0.03,)}, (0.03,), 0.06, False, 0, 1)
    >>> ax = plot_runs({"sequential": r})
    >>> [round(float(p.get_width()), 6) for p in ax.patches]
    [10.0, 20.0, 30.0]
    """
    from efflab.pipeline import STAGES, PipelineRun

    labels = list(runs)
    if not labels or not all(isinstance(r, PipelineRun) for r in runs.values()):
        raise TypeError("runs must be a non-empty mapping of label -> PipelineRun")
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 0.55 * len(labels) + 1.4), constrained_layout=True)
    y = np.arange(len(labels))[::-1]
    for row, label in zip(y, labels, strict=True):
        run, left = runs[label], 0.0
        for stage in STAGES:
            width_ms = 1e3 * run.stage_time_s[stage]
            ax.barh(
                row, width_ms, left=left, color=STAGE_COLORS[stage], label=stage if row == y[0] else None, height=0.6
            )
            left += width_ms
        ax.plot([1e3 * run.time_per_batch_s], [row], "kD", ms=7, label="wall time per batch" if row == y[0] else None)
    ax.set_yticks(y, labels)
    ax.set_xlabel("time per batch (ms)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4, fontsize=8.5, frameon=False)
    ax.set_title("Stage times (bars, medians) and wall time per batch (diamonds)")
    return ax


def plot_time_split(
    runs: Iterable[ScenarioRun],
    labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    *,
    relative_to_first: bool = False,
) -> Axes:
    """Where each run's wall time went: data, compute and idle as stacked horizontal bars (% of wall), regime named.

    Parameters
    ----------
    runs : sequence of ScenarioRun
    labels : sequence of str, optional
        One per run (default ``"scenario [variant]"``).
    ax : matplotlib Axes, optional
    relative_to_first : bool
        Scale every bar by the first run's wall time (a what-if then ends where its time ends), instead of each
        run's own (every bar 100 % long).

    Returns
    -------
    matplotlib.axes.Axes
        Bar containers labelled "data (input)", "compute", "idle (dispatch)".

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from efflab.scenarios import ScenarioRun
    >>> run = ScenarioRun("demo", "baseline", "call", 1, 0.0, 1e-6, 9e-6, 1e-5, 1e4, 1e4, 1e11, 2e10, "cpu", "")
    >>> [c.get_label() for c in plot_time_split([run]).containers]
    ['data (input)', 'compute', 'idle (dispatch)']
    """
    from efflab.scenarios import ScenarioRun

    runs = list(runs)
    if not runs or not all(isinstance(r, ScenarioRun) for r in runs):
        raise TypeError("runs must be a non-empty sequence of ScenarioRun objects")
    names = [f"{r.scenario} [{r.variant}]" for r in runs] if labels is None else [str(x) for x in labels]
    if len(names) != len(runs):
        raise ValueError(f"labels must have one entry per run ({len(runs)}); got {len(names)}")
    shares = np.array([[r.data_time_s, r.compute_time_s, r.idle_time_s] for r in runs])
    walls = np.array([runs[0].wall_time_s if relative_to_first else r.wall_time_s for r in runs])
    shares = 100 * shares / walls[:, None]
    y = np.arange(len(runs))[::-1]
    with style_context():
        if ax is None:
            _, ax = plt.subplots(figsize=(FIGSIZE_IN[0], 0.7 * len(runs) + 1.6), constrained_layout=True)
        left = np.zeros(len(runs))
        colors = (DATA_COLOR, REGIME_COLORS["compute"], REGIME_COLORS["latency"])
        for k, (name, color) in enumerate(zip(("data (input)", "compute", "idle (dispatch)"), colors, strict=True)):
            ax.barh(y, shares[:, k], left=left, color=color, label=name, height=0.6)
            left += shares[:, k]
        for yi, r, end in zip(y, runs, left, strict=True):
            regime = r.diagnose().regime
            shown = REGIME_LABELS.get(regime, f"{regime}-bound")
            ax.text(end + 1, yi, f" {shown} · {format_si(r.wall_time_s, 's')}", va="center", fontsize=8.5)
        ax.set_yticks(y)
        ax.set_yticklabels(names)
        ax.set_xlim(0, 150)  # room on the right for the labels, but no axis there
        ax.set_xticks([0, 25, 50, 75, 100])
        ax.spines["bottom"].set_bounds(0, 100)
        ax.set_xlabel(
            f"share of {'the first run' if relative_to_first else 'each run'}'s wall time (%)"
            if len(runs) > 1
            else "share of the wall time (%)"
        )
        ax.set_title("D·A·M: where the time went", pad=24)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, borderaxespad=0.2)
        ax.grid(axis="y", visible=False)
    return ax
