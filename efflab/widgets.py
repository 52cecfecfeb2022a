"""Experiments to play with: one explorer per principle, built on :mod:`efflab.plots`.

Each function returns an ``ipywidgets.VBox`` (controls, a status line, an ``Output`` holding the figure) and draws its
initial figure at once, so the static book shows a meaningful picture without a kernel: the figure is a PNG inside the
``Output`` widget's saved state, which the book's offline widget manager renders.

Works on ipywidgets 7.7 (what Colab ships) and 8.x: only ``observe`` on ``value``, ``Output``, ``HTML``, sliders,
``Dropdown`` and ``Layout`` are used. Figures are ``matplotlib.figure.Figure`` objects rendered to PNG, never pyplot
figures, so nothing is displayed twice and no backend state is touched. Callbacks print nothing (nbval would see it).

The returned box also carries plain Python attributes for notebooks and tests: ``controls`` (name -> widget),
``output`` (the Output), ``status`` (the HTML line), ``state`` (a dict of what the figure shows: regime, speedup,
chosen variant ...) and ``update()`` (redraw from the controls' values).

ipywidgets is imported inside the functions: ``import efflab.widgets`` works without it.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from types import SimpleNamespace

import numpy as np

from efflab import _validate as v
from efflab.amdahl import amdahl_limit, amdahl_speedup
from efflab.compress import best_feasible
from efflab.energy import energy_estimate
from efflab.hardware import as_roofline
from efflab.opcost import matmul_cost
from efflab.plots import (
    ENERGY_DTYPE_BYTES,
    RooflinePoint,
    place_labels,
    plot_amdahl,
    plot_energy_reuse,
    plot_iron_law_sweep,
    plot_pareto,
    plot_roofline,
    plot_time_split,
)
from efflab.roofline import Roofline, remedies
from efflab.style import DOMINATED_COLOR, FIGSIZE_IN, REGIME_COLORS, REGIME_LABELS, format_si, style_context

__all__ = [
    "amdahl_explorer",
    "best_variant",
    "energy_explorer",
    "explorer",
    "iron_law_explorer",
    "lever_explorer",
    "pareto_explorer",
    "roofline_explorer",
]

# Colab's free GPU: the default machine when a chapter passes no roofline (datasheet figures, efflab.hardware).
DEFAULT_DEVICE = "T4"
# Dispatch latency used when the roofline carries none. An assumption, shown as such in the status line: a CUDA
# kernel launch plus synchronization costs a few microseconds; measure yours with efflab.measure_ceilings.
ASSUMED_LATENCY_S = 5e-6
_WIDE = {"description_width": "initial"}
# A slider's whole row (description + track + readout): at least this wide, so the longest description here
# ("reuse (FLOPs per element fetched)", ~230 px) leaves a track of ~300 px, and at most as wide as a figure.
SLIDER_MIN_WIDTH = "600px"
SLIDER_MAX_WIDTH = "700px"


def _widgets():
    import ipywidgets

    return ipywidgets


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _figure(figsize=FIGSIZE_IN):
    from matplotlib.figure import Figure

    with style_context():
        fig = Figure(figsize=figsize, constrained_layout=True)
        return fig, fig.add_subplot()


def _show(out, fig) -> None:
    """Put ``fig`` into ``out`` as a PNG display_data output (kept in the saved widget state)."""
    buf = io.BytesIO()
    with style_context():
        fig.savefig(buf, format="png")
    data = {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"), "text/plain": "<efflab figure>"}
    if _in_kernel():
        # Inside a kernel the Output widget captures display messages; the front end (JupyterLab, Colab, nbclient
        # when it saves widget state) records them. This is the path every widget front end supports.
        from IPython.display import clear_output, display

        with out:
            clear_output(wait=True)
            display(data, raw=True)
    else:
        out.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)


def explorer(controls: Mapping, render, figsize=FIGSIZE_IN):
    """The building block of every explorer here: controls, a status line and a figure redrawn on each change.

    Each change of a control calls ``render(values, ax)`` with ``values = {name: control.value}`` and a fresh Axes;
    it draws on ``ax`` and returns ``(status_html, state)``. The figure goes into an ``Output`` as a PNG, so a static
    page (the book) shows the first one. Chapter modules build their own explorers with it
    (:func:`lever_explorer`).

    Parameters
    ----------
    controls : mapping of str to ipywidgets.ValueWidget
        The controls, shown in order; their names are the keys of ``values``.
    render : callable
        ``render(values, ax) -> (status_html, state)``.
    figsize : (float, float)
        Figure size in inches.

    Returns
    -------
    ipywidgets.VBox
        With ``controls``, ``output``, ``status``, ``update`` and ``state`` (the last ``render``'s) attached.

    Examples
    --------
    >>> import ipywidgets as w
    >>> def render(values, ax):
    ...     ax.plot([0, 1], [0, values["slope"]])
    ...     return f"slope {values['slope']}", {"slope": values["slope"]}
    >>> box = explorer({"slope": w.FloatSlider(value=2.0, min=0.0, max=5.0)}, render)
    >>> box.state
    {'slope': 2.0}
    >>> box.controls["slope"].value = 3.0
    >>> box.state, box.status.value
    ({'slope': 3.0}, 'slope 3.0')
    """
    w = _widgets()
    out = w.Output(layout=w.Layout(min_height=f"{int(figsize[1] * 100)}px"))
    status = w.HTML()
    rows = list(controls.values())
    for control in rows:
        if type(control).__name__.endswith("Slider"):
            # ipywidgets' default 300 px holds the description, the track and the readout, so a long description
            # left a 0-70 px track; a slider takes the row instead (up to SLIDER_MAX_WIDTH)
            control.layout.width = "100%"
            control.layout.max_width = SLIDER_MAX_WIDTH
            control.layout.min_width = SLIDER_MIN_WIDTH
            control.layout.margin = "2px 0"  # ipywidgets' 2px side margins would push a 100% row 4px past its box
    box = w.VBox([w.VBox(rows), status, out])

    def update(change=None):
        fig, ax = _figure(figsize)
        html, state = render({name: c.value for name, c in controls.items()}, ax)
        status.value = html
        _show(out, fig)
        box.state = state

    for control in controls.values():
        control.observe(update, names="value")
    box.controls, box.output, box.status, box.update = dict(controls), out, status, update
    update()
    return box


def _badge(regime: str) -> str:
    return f"<b style='color:{REGIME_COLORS[regime]}'>{REGIME_LABELS[regime]}</b>"


def roofline_explorer(roofline=None, *, intensity_flops_per_byte: float = 10.0):
    """Move a kernel's arithmetic intensity, the peak, the bandwidth and the dtype; watch it cross the ridge.

    ``R(I) = min(R_peak, I * BW)``; the kernel is memory-bound for ``I < I* = R_peak / BW`` and compute-bound above.
    The status line gives the regime, the attainable FLOP/s and the remedies that work and are wasted (the source
    book's Table 1). The peak and bandwidth sliders start at the roofline's values (measured where measured).

    Parameters
    ----------
    roofline : Roofline, Device or str, optional
        The machine; the T4 datasheet (Colab's free GPU) when None.
    intensity_flops_per_byte : float
        Initial intensity (FLOP/byte, > 0).

    Returns
    -------
    ipywidgets.VBox
        Controls "intensity", "dtype", "peak", "bandwidth"; ``state`` holds regime, intensity, ridge, attainable.

    Examples
    --------
    >>> box = roofline_explorer("T4", intensity_flops_per_byte=1.0)  # doctest: +SKIP
    >>> box.state["regime"]  # doctest: +SKIP
    'memory'
    """
    w = _widgets()
    rl = as_roofline(roofline if roofline is not None else DEFAULT_DEVICE)
    start = float(v.positive(intensity_flops_per_byte, "intensity_flops_per_byte", "FLOP/byte"))
    bw0 = rl.bandwidth_bytes_per_s()
    dtype0 = rl.default_dtype
    controls = {
        "intensity": w.FloatLogSlider(
            value=start,
            base=10,
            min=-2,
            max=4,
            step=0.05,
            continuous_update=False,
            description="intensity (FLOP/B)",
            style=_WIDE,
        ),
        "dtype": w.Dropdown(options=list(rl.compute), value=dtype0, description="dtype"),
        "peak": w.FloatLogSlider(
            value=rl.peak_flops_per_s() / 1e12,
            base=10,
            min=-2,
            max=4,
            step=0.01,
            continuous_update=False,
            description="peak (TFLOP/s)",
            style=_WIDE,
        ),
        "bandwidth": w.FloatLogSlider(
            value=bw0 / 1e9,
            base=10,
            min=0,
            max=4,
            step=0.01,
            continuous_update=False,
            description="bandwidth (GB/s)",
            style=_WIDE,
        ),
    }

    def on_dtype(change):  # a new dtype brings its own peak
        controls["peak"].value = rl.peak_flops_per_s(change["new"]) / 1e12

    controls["dtype"].observe(on_dtype, names="value")

    def render(values, ax):
        dtype, peak, bw = values["dtype"], values["peak"] * 1e12, values["bandwidth"] * 1e9
        base = rl.compute[dtype]
        what_if = not (math.isclose(peak, base.value, rel_tol=1e-3) and math.isclose(bw, bw0, rel_tol=1e-3))
        slowest = min(rl.memory.values(), key=lambda c: c.value)
        roof = Roofline(
            compute={dtype: peak if what_if else base},
            memory={slowest.name: bw if what_if else slowest},
            name=rl.name + (" — what-if" if what_if else ""),
        )
        bytes_moved = 1e9  # a 1 GB kernel: large enough that no launch latency matters here
        point = RooflinePoint("your kernel", values["intensity"] * bytes_moved, bytes_moved)
        plot_roofline(roof, [point], intensity_range=(0.01, 1e4), ax=ax)
        c = roof.classify(point.flops, point.bytes_moved)
        fix = remedies(c.regime)
        html = (
            f"I = {values['intensity']:.3g} FLOP/B {'<' if c.regime == 'memory' else '≥'} ridge "
            f"{roof.ridge_point:.3g} FLOP/B → {_badge(c.regime)}: attainable "
            f"{format_si(c.attainable_flops_per_s, 'FLOP/s')} ({100 * c.attainable_flops_per_s / peak:.3g} % of peak)."
            f"<br>Works: {', '.join(fix.works)}. Wasted: {', '.join(fix.wasted)}."
        )
        state = {
            "regime": c.regime,
            "intensity_flops_per_byte": values["intensity"],
            "ridge_flops_per_byte": roof.ridge_point,
            "attainable_flops_per_s": c.attainable_flops_per_s,
        }
        return html, state

    return explorer(controls, render)


_POWERS_OF_TWO = [2**k for k in range(15)]  # batch sizes 1 ... 16384
# Hidden sizes: powers of two plus 768 (BERT-base and GPT-2 small width).
_HIDDEN = [128, 256, 512, 768, 1024, 2048, 4096, 8192, 16384]


def iron_law_explorer(roofline=None, *, batch: int = 1, hidden: int = 768, dtype: str | None = None):
    """A linear layer ``(batch, d) @ (d, d)`` swept over batch size: latency → memory → compute bound.

    ``O = 2*b*d^2`` FLOPs, ``D_vol = (d^2 + 2*b*d)*s`` bytes; ``T = max(D_vol/BW, O/R_peak) + L``. At batch 1 the
    weights' traffic (or the launch latency, for a small layer) dominates; as the batch grows the weights are reused
    and the layer becomes compute-bound. The hidden size ``d`` is the problem size.

    Parameters
    ----------
    roofline : Roofline, Device or str, optional
        The machine (T4 datasheet when None). Its ``latency_s`` is used when known; otherwise
        ``ASSUMED_LATENCY_S`` (5 µs), labelled as assumed.
    batch, hidden : int
        Initial batch size (tokens, a power of two up to 16384) and hidden size ``d`` (128 ... 16384). The default
        d = 768 in fp16 on a T4 crosses all three regimes along the batch axis: latency below ~128 tokens, memory
        around 256, compute from ~512.
    dtype : str, optional
        A dtype of the roofline (fp16 when it has one, else its first).

    Returns
    -------
    ipywidgets.VBox
        Controls "batch", "hidden", "dtype"; ``state`` holds regime, the three terms and the time.
    """
    w = _widgets()
    rl = as_roofline(roofline if roofline is not None else DEFAULT_DEVICE)
    measured_latency = rl.latency_s is not None
    latency_s = rl.latency_s if rl.latency_s is not None else ASSUMED_LATENCY_S
    rl = Roofline(
        rl.compute,
        rl.memory,
        latency_s=latency_s,
        default_dtype=rl.default_dtype,
        name=rl.name + ("" if measured_latency else f" + {format_si(latency_s, 's')} launch (assumed)"),
    )
    dtypes = [d for d in rl.compute if d in ("fp64", "fp32", "tf32", "fp16", "bf16", "int8", "int4")]
    controls = {
        "batch": w.SelectionSlider(
            options=_POWERS_OF_TWO, value=batch, description="batch (tokens)", continuous_update=False, style=_WIDE
        ),
        "hidden": w.SelectionSlider(
            options=_HIDDEN, value=hidden, description="hidden size d", continuous_update=False, style=_WIDE
        ),
        "dtype": w.Dropdown(
            options=dtypes, value=dtype or ("fp16" if "fp16" in dtypes else dtypes[0]), description="dtype"
        ),
    }

    def render(values, ax):
        d, dt = values["hidden"], values["dtype"]
        costs = [matmul_cost(b, d, d, dt) for b in _POWERS_OF_TWO]
        plot_iron_law_sweep(
            rl,
            costs,
            _POWERS_OF_TWO,
            xlabel=f"batch (tokens) through a {d}×{d} {dt} linear layer",
            current=values["batch"],
            dtype=dt,
            ax=ax,
        )
        cost = matmul_cost(values["batch"], d, d, dt)
        c = rl.classify(cost.flops, cost.bytes_moved, dtype=dt)
        html = (
            f"batch {values['batch']}, d = {d}, {dt}: D/BW = {format_si(c.memory_time_s, 's')}, "
            f"O/R = {format_si(c.compute_time_s, 's')}, L = {format_si(c.latency_s, 's')}"
            f"{'' if measured_latency else ' (assumed)'} → {_badge(c.regime)}, T = {format_si(c.time_s, 's')} "
            f"({format_si(c.attainable_flops_per_s, 'FLOP/s')})."
        )
        state = {
            "regime": c.regime,
            "memory_time_s": c.memory_time_s,
            "compute_time_s": c.compute_time_s,
            "latency_s": c.latency_s,
            "time_s": c.time_s,
            "batch": values["batch"],
            "hidden": d,
        }
        return html, state

    return explorer(controls, render)


def amdahl_explorer(fraction: float = 0.95, speedup: float = 100.0):
    """Accelerate a fraction ``f`` of the time ``s`` times: ``S = 1/((1-f) + f/s)``, never above ``1/(1-f)``.

    Parameters
    ----------
    fraction : float
        Initial accelerated fraction, in [0, 0.999].
    speedup : float
        Initial speedup of that part (1 to 10^4).

    Returns
    -------
    ipywidgets.VBox
        Controls "fraction", "speedup"; ``state`` holds speedup, cap and the share of the cap reached.
    """
    w = _widgets()
    f0 = float(v.real(fraction, "fraction", "fraction of 1", low=0.0, high=0.999))
    s0 = float(v.real(speedup, "speedup", "times faster", low=1.0, high=1e4))
    controls = {
        "fraction": w.FloatSlider(
            value=f0,
            min=0.0,
            max=0.999,
            step=0.001,
            readout_format=".1%",
            continuous_update=False,
            description="accelerated fraction f",
            style=_WIDE,
        ),
        "speedup": w.FloatLogSlider(
            value=s0,
            base=10,
            min=0,
            max=4,
            step=0.05,
            continuous_update=False,
            description="speedup s of that part (×)",
            style=_WIDE,
        ),
    }

    def render(values, ax):
        f, s = values["fraction"], values["speedup"]
        plot_amdahl(fractions=(f,), max_speedup=1e4, gustafson=False, highlight=(f, s), ax=ax)
        total, cap = amdahl_speedup(f, s), amdahl_limit(f)
        html = (
            f"S = 1/((1−{f:g}) + {f:g}/{s:.3g}) = <b>{total:.3g}×</b>; the cap 1/(1−f) = {cap:.3g}× "
            f"({100 * total / cap:.0f} % reached). The untouched {100 * (1 - f):.3g} % of the time now takes "
            f"{100 * (1 - f) * total:.0f} % of it."
        )
        return html, {"speedup": total, "cap": cap, "fraction_of_cap": total / cap}

    return explorer(controls, render)


def _variants(variants):
    rows = []
    for item in variants:
        if isinstance(item, Mapping):
            rows.append((str(item["name"]), item["accuracy"], item["size_bytes"], item["latency_s"]))
        else:
            name, acc, size, lat = item
            rows.append((str(name), acc, size, lat))
    if len(rows) < 2:
        raise ValueError(f"variants must hold at least 2 measured variants; got {len(rows)}")
    names = [r[0] for r in rows]
    acc = v.real([r[1] for r in rows], "accuracy", "fraction of 1", low=0.0, high=1.0)
    size = v.positive([r[2] for r in rows], "size_bytes", "bytes")
    lat = v.positive([r[3] for r in rows], "latency_s", "s")
    return names, acc, size, lat


def best_variant(accuracy, size_bytes, latency_s, max_size_bytes, max_latency_s, min_accuracy):
    """Index of the variant :func:`efflab.compress.best_feasible` chooses from parallel lists, or None if none fits.

    One rule for the chapter's text and this explorer: feasible means ``size <= max_size_bytes``,
    ``latency <= max_latency_s`` and ``accuracy >= min_accuracy``; among those the highest accuracy wins, ties to lower
    latency, then smaller size, then the first listed. The budgets must be > 0 and the floor a fraction of 1.

    Examples
    --------
    >>> best_variant([0.9, 0.8, 0.7], [4e6, 1e6, 5e5], [0.02, 0.01, 0.005], 2e6, 1.0, 0.0)
    1
    >>> best_variant([0.9, 0.8, 0.7], [4e6, 1e6, 5e5], [0.02, 0.01, 0.005], 2e6, 0.006, 0.0)
    2
    >>> best_variant([0.9], [4e6], [0.02], 1e6, 1.0, 0.0) is None
    True
    """
    columns = (np.asarray(a, dtype=float).tolist() for a in (accuracy, size_bytes, latency_s))
    rows = [
        SimpleNamespace(index=i, accuracy=a, size_bytes=s, latency_s=t)
        for i, (a, s, t) in enumerate(zip(*columns, strict=True))
    ]
    best = best_feasible(rows, max_size_bytes=max_size_bytes, max_latency_s=max_latency_s, min_accuracy=min_accuracy)
    return None if best is None else best.index


def pareto_explorer(variants, *, max_size_bytes=None, max_latency_s=None, min_accuracy=None):
    """Deployment constraints pick the operating point: no variant is best everywhere.

    Each variant is ``(name, accuracy, size_bytes, latency_s)`` (or a mapping with those keys), as measured. The
    sliders set a memory budget, a latency budget and an accuracy floor; the choice rule (:func:`best_variant`) takes
    the highest accuracy among the variants meeting all three (ties: lower latency, then smaller size). The figure is
    latency against accuracy with the Pareto front highlighted, infeasible variants crossed out and the choice starred.

    Parameters
    ----------
    variants : sequence
        At least two measured variants.
    max_size_bytes, max_latency_s, min_accuracy : float, optional
        Initial constraints; by default no constraint (the largest size and latency, the lowest accuracy floor). The
        accuracy floor's slider spans the variants' accuracies (to the next whole percent either side).

    Returns
    -------
    ipywidgets.VBox
        Controls "max_size_mb", "max_latency_ms", "min_accuracy"; ``state["chosen"]`` is the chosen name or None.
    """
    w = _widgets()
    names, acc, size, lat = _variants(variants)
    mb, ms = size / 1e6, lat * 1e3
    acc_low = max(0.0, math.floor(100 * acc.min() - 1) / 100)
    acc_high = min(1.0, math.ceil(100 * acc.max() + 1e-9) / 100)
    if min_accuracy is not None and not acc_low <= min_accuracy <= acc_high:
        acc_low, acc_high = min(acc_low, min_accuracy), max(acc_high, min_accuracy)
    controls = {
        "max_size_mb": w.FloatLogSlider(
            value=(max_size_bytes / 1e6) if max_size_bytes else mb.max(),
            base=10,
            min=math.log10(mb.min()) - 0.3,
            max=math.log10(mb.max()) + 0.3,
            step=0.01,
            continuous_update=False,
            description="memory budget (MB)",
            style=_WIDE,
        ),
        "max_latency_ms": w.FloatLogSlider(
            value=(max_latency_s * 1e3) if max_latency_s else ms.max(),
            base=10,
            min=math.log10(ms.min()) - 0.3,
            max=math.log10(ms.max()) + 0.3,
            step=0.01,
            continuous_update=False,
            description="latency budget (ms)",
            style=_WIDE,
        ),
        "min_accuracy": w.FloatSlider(
            # the range the variants span (to 0.01 either side), so that every step of the slider changes something
            value=min_accuracy if min_accuracy is not None else acc_low,
            min=acc_low,
            max=acc_high,
            step=0.001,
            readout_format=".1%",
            continuous_update=False,
            description="accuracy floor",
            style=_WIDE,
        ),
    }

    def render(values, ax):
        budget_b, budget_s = values["max_size_mb"] * 1e6, values["max_latency_ms"] * 1e-3
        best = best_variant(acc, size, lat, budget_b, budget_s, values["min_accuracy"])
        labels = [f"{n} ({format_si(s, 'B')})" for n, s in zip(names, size, strict=True)]
        pct = 100 * acc  # shown in percent, as the chapter writes accuracies
        plot_pareto(
            np.c_[ms, pct],
            ["min", "max"],
            labels=labels,
            chosen=best,
            objective_names=("latency (ms)", "accuracy (%)"),
            ax=ax,
        )
        infeasible = (size > budget_b) | (lat > budget_s) | (acc < values["min_accuracy"])
        ax.scatter(
            ms[infeasible],
            pct[infeasible],
            marker="x",
            s=70,
            color=DOMINATED_COLOR,
            zorder=7,
            label="infeasible",
            gid="infeasible",
        )
        # Shade what the budgets exclude without letting the shading move the axis limits.
        xlim, ylim = ax.get_xlim(), ax.get_ylim()
        ax.axvspan(values["max_latency_ms"], max(xlim[1], values["max_latency_ms"]), color="#bbbbbb", alpha=0.2, lw=0)
        if 100 * values["min_accuracy"] > ylim[0]:
            ax.axhspan(ylim[0], 100 * values["min_accuracy"], color="#bbbbbb", alpha=0.2, lw=0)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.legend(loc="lower right")
        # the final legend is new: place the labels again, clear of it, of each other and of the chosen star
        radii_pt = np.full(len(names), 3.5)
        if best is not None:
            radii_pt[best] = 9.0
        front = [line.get_xydata() for line in ax.lines if line.get_gid() == "front"]
        place_labels(ax, list(ax.texts), points=np.c_[ms, pct], radii_pt=radii_pt, lines=front)
        if best is None:
            html = "<b>No variant meets all three constraints</b>: relax the memory, latency or accuracy budget."
        else:
            html = (
                f"Best feasible (highest accuracy within {format_si(budget_b, 'B')}, {format_si(budget_s, 's')}, "
                f"accuracy ≥ {values['min_accuracy']:.1%}): <b>{names[best]}</b> — accuracy {acc[best]:.1%}, "
                f"{format_si(size[best], 'B')}, {format_si(lat[best], 's')}. {int((~infeasible).sum())} of "
                f"{len(names)} variants feasible."
            )
        return html, {"chosen": None if best is None else names[best], "feasible": int((~infeasible).sum())}

    return explorer(controls, render)


def energy_explorer(*, dtype: str = "fp32", reuse: float = 1.0, memory: str = "dram", flops: float = 1e9):
    """Data reuse and dtype move the energy split between moving data and computing on it.

    A workload of ``flops`` FLOPs that performs ``r`` FLOPs per element fetched moves ``bytes = flops / r * s``
    (``s`` bytes per element of ``dtype``), so ``E = flops * e_flop + bytes * e_byte`` (Horowitz 45 nm figures via
    :func:`efflab.energy.energy_estimate`: an estimate). Narrower dtypes shrink both terms; reuse shrinks only the
    movement. Per-element reuse is used (not per byte) so that changing the dtype changes the bytes moved, as
    quantization does.

    Parameters
    ----------
    dtype : {"fp32", "fp16", "int32", "int8"}
    reuse : float
        Initial FLOPs per element fetched (0.01 to 10^4).
    memory : str
        A level of :data:`efflab.energy.MEMORY_LEVELS` ("dram", "sram_32kb" ...).
    flops : float
        Work of the workload (FLOP, > 0).

    Returns
    -------
    ipywidgets.VBox
        Controls "dtype", "reuse", "memory"; ``state`` holds movement_j, compute_j and movement_share.
    """
    w = _widgets()
    from efflab.energy import MEMORY_LEVELS

    work = float(v.positive(flops, "flops", "FLOP"))
    controls = {
        "dtype": w.Dropdown(options=list(ENERGY_DTYPE_BYTES), value=dtype, description="dtype"),
        "reuse": w.FloatLogSlider(
            value=reuse,
            base=10,
            min=-2,
            max=4,
            step=0.05,
            continuous_update=False,
            description="reuse (FLOPs per element fetched)",
            style=_WIDE,
        ),
        "memory": w.Dropdown(options=list(MEMORY_LEVELS), value=memory, description="data from"),
    }

    def render(values, ax):
        dt, r, level = values["dtype"], values["reuse"], values["memory"]
        bytes_moved = work / r * ENERGY_DTYPE_BYTES[dt]
        est = energy_estimate(work, bytes_moved, dt, level)
        plot_energy_reuse(dt, reuse=r, memory=level, ax=ax)
        share = est.movement_j / est.total_j
        html = (
            f"{format_si(work, 'FLOP')} at {r:.3g} FLOP per {dt} element → {format_si(bytes_moved, 'B')} from "
            f"{level}: movement {format_si(est.movement_j, 'J')}, compute {format_si(est.compute_j, 'J')} — "
            f"<b style='color:{REGIME_COLORS['memory' if share >= 0.5 else 'compute']}'>"
            f"{100 * share:.3g} % of the energy moves data</b> (estimated)."
        )
        return html, {"movement_j": est.movement_j, "compute_j": est.compute_j, "movement_share": share}

    return explorer(controls, render)


def lever_explorer(run, speedups: Mapping[str, float] | None = None):
    """Speed up one term of a measured run and watch the wall time and the diagnosis: which lever moves ``T``?

    ``T' = data / s_data + compute / s_compute + idle / s_idle`` (the terms run one after another), re-diagnosed with
    :func:`efflab.dam.diagnose`. Three log sliders (1x to 100x), one per term.

    Parameters
    ----------
    run : ScenarioRun
        A measured run (e.g. ``StarvingAccelerator().run()``).
    speedups : mapping of {"data", "compute", "idle"} to float, optional
        Where the sliders start (1 to 100; unnamed terms start at 1). A page shows this first position, so start
        from a what-if worth seeing rather than from "measured" twice.

    Returns
    -------
    ipywidgets.VBox
        Built by :func:`efflab.widgets.explorer`: ``controls``, ``status``, ``output``, ``state`` (speedup, regime).
    """
    import ipywidgets as w

    from efflab.scenarios import ScenarioRun

    if not isinstance(run, ScenarioRun):
        raise TypeError(f"run must be a ScenarioRun; got {type(run).__name__}")
    terms = (("data", "speed up data ×"), ("compute", "speed up compute ×"), ("idle", "speed up idle ×"))
    start = dict(speedups or {})
    unknown = sorted(set(start) - {k for k, _ in terms})
    if unknown:
        raise ValueError(f"speedups keys must be among 'data', 'compute', 'idle'; got {unknown}")
    for k, value in start.items():
        start[k] = float(v.real(value, f"speedups[{k!r}]", "times faster", low=1.0, high=100.0))
    controls = {
        k: w.FloatLogSlider(
            value=start.get(k, 1.0), base=10, min=0, max=2, step=0.05, continuous_update=False, description=text,
            style={"description_width": "initial"},
        )
        for k, text in terms
    }  # fmt: skip

    def render(values, ax):
        new = ScenarioRun(
            run.scenario, "what-if", run.unit, run.items, run.data_time_s / values["data"],
            run.compute_time_s / values["compute"], run.idle_time_s / values["idle"],
            run.data_time_s / values["data"] + run.compute_time_s / values["compute"] + run.idle_time_s / values["idle"],
            run.flops, run.bytes_moved, run.peak_flops_per_s, run.bandwidth_bytes_per_s, run.device, run.how,
        )  # fmt: skip
        plot_time_split([run, new], labels=["measured", "what-if"], ax=ax, relative_to_first=True)
        speedup = run.wall_time_s / new.wall_time_s
        d = new.diagnose()
        html = (
            f"wall time {run.wall_time_s * 1e3:.3g} ms → {new.wall_time_s * 1e3:.3g} ms: <b>{speedup:.3g}× faster</b>"
        )
        html += f"; now {d.regime}-bound (dominant term: {d.dominant_term})"
        return html, {"speedup": speedup, "regime": d.regime}

    return explorer(controls, render, figsize=(7.0, 3.0))
