"""Every plot rendered headlessly (Agg) and checked for what a reader would check, against hand-computed oracles."""

from __future__ import annotations

import subprocess
import sys
from itertools import groupby
from types import SimpleNamespace as NS

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pytest

from efflab.energy import energy_estimate
from efflab.plots import (
    as_points,
    ceiling_label,
    plot_amdahl,
    plot_energy_breakdown,
    plot_energy_reuse,
    plot_iron_law,
    plot_iron_law_sweep,
    plot_op_profile,
    plot_pareto,
    plot_roofline,
)
from efflab.roofline import Ceiling, OpCost, Roofline, elementwise_cost, matmul_cost
from efflab.style import REGIME_COLORS, format_si


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def measured_roofline(latency_s=None):
    # A CPU-like machine with measured ceilings beside the spec (figures in the style of this 2-core EPYC box).
    return Roofline(
        compute={"fp32": Ceiling("fp32", "compute", 120e9, spec=150e9, measured=120e9)},
        memory={
            "dram": Ceiling("dram", "memory", 25e9, spec=51.2e9, measured=25e9),
            "l2": Ceiling("l2", "memory", 200e9, measured=200e9),
        },
        latency_s=latency_s,
        name="test machine",
    )


def gid_lines(ax, gid):
    return [line for line in ax.lines if line.get_gid() == gid]


def texts(ax):
    return [t.get_text() for t in ax.texts]


def test_roofline_axes_ceilings_and_ridge():
    rl = measured_roofline()
    ax = plot_roofline(rl)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "FLOP/byte" in ax.get_xlabel() and "FLOP/s" in ax.get_ylabel()
    (ridge,) = gid_lines(ax, "ridge")
    assert np.allclose(ridge.get_xdata(), 120e9 / 25e9)  # peak / slowest bandwidth, by hand
    assert any("ridge 4.8 FLOP/B" in t for t in texts(ax))
    # Every ceiling labelled, measured beside spec.
    assert "fp32 measured 120 GFLOP/s (spec 150, 80 %)" in texts(ax)
    assert "dram measured 25 GB/s (spec 51.2, 49 %)" in texts(ax)
    assert "l2 measured 200 GB/s" in texts(ax)
    for c in (*rl.compute.values(), *rl.memory.values()):
        assert gid_lines(ax, f"ceiling:{c.kind}:{c.name}"), c.name
    # The thick roof is min(peak, I * BW) at every drawn x.
    (roof,) = gid_lines(ax, "roof")
    x = np.asarray(roof.get_xdata())
    assert np.allclose(roof.get_ydata(), np.minimum(120e9, x * 25e9))
    # Spec ceilings drawn dotted beside the measured ones.
    assert gid_lines(ax, "spec:compute:fp32") and gid_lines(ax, "spec:memory:dram")


def test_roofline_datasheet_ridge_and_merged_labels():
    ax = plot_roofline("h100", dtype="bf16")
    (ridge,) = gid_lines(ax, "ridge")
    assert ridge.get_xdata()[0] == pytest.approx(989.4e12 / 3.35e12)
    assert any(t.startswith("fp16 / bf16 spec 989 TFLOP/s") for t in texts(ax))  # identical peaks share a label
    assert "int8 spec 1.98 POP/s" in texts(ax)  # integer peaks are operations, not FLOPs
    assert not any("latency floor" in t for t in texts(ax))  # unknown for a datasheet roofline


@pytest.mark.parametrize("latency_s", [None, 8e-6])
def test_points_coloured_by_regime(latency_s):
    rl = measured_roofline(latency_s)
    pts = [
        ("matmul", matmul_cost(1024, 1024, 1024)),  # 170 FLOP/B: compute side
        ("add", elementwise_cost(10**6, 4, 1, 2)),  # 0.083 FLOP/B: memory side
        ("tiny", matmul_cost(16, 16, 16)),  # 8 kFLOP: latency when L is known
    ]
    ax = plot_roofline(rl, pts)
    (coll,) = [c for c in ax.collections if c.get_gid() == "points"]
    ridge = 120e9 / 25e9
    expected = []
    for _, cost in pts:  # oracle: the three iron-law terms by hand
        terms = {"memory": cost.bytes_moved / 25e9, "compute": cost.flops / 120e9, "latency": latency_s or 0.0}
        expected.append(max(terms, key=terms.get))
    assert expected[0] == "compute" and expected[1] == "memory"
    assert 2 * 16**3 / (3 * 16 * 16 * 4) < ridge  # the tiny matmul's 2.7 FLOP/B sits left of the ridge
    assert expected[2] == ("latency" if latency_s else "memory")
    got = [mcolors.to_hex(c) for c in coll.get_facecolors()]
    assert got == [mcolors.to_hex(REGIME_COLORS[r]).lower() for r in expected]
    assert {"matmul", "add", "tiny"} <= set(texts(ax))
    assert any("latency floor L = 8 µs" in t for t in texts(ax)) == bool(latency_s)
    assert bool(gid_lines(ax, "latency-drop")) == bool(latency_s)


def test_points_input_forms_and_zero_flops():
    rl = measured_roofline()
    pts = as_points(
        [
            ("a", OpCost(2e9, 1e9)),
            ("b", 4e6, 8e6),
            {"label": "c", "flops": 1e6, "bytes_moved": 1e6, "time_s": 1e-3},
            NS(name="d", flops=1e3, bytes_moved=1e3),
        ]
    )
    assert [p.label for p in pts] == ["a", "b", "c", "d"] and pts[2].time_s == 1e-3
    ax = plot_roofline(rl, {"embedding": OpCost(0, 1e6), "copy": (0.0, 2e6), "mm": matmul_cost(64, 64, 64)})
    assert "not shown (0 FLOPs): embedding, copy" in texts(ax)
    with pytest.raises(TypeError, match="points"):
        plot_roofline(rl, [object()])
    with pytest.raises(ValueError, match="bytes_moved"):
        as_points([("x", 1.0, 0.0)])


def test_op_profile_sizes_follow_time_share():
    recs = [
        NS(name="linear", flops=2e9, bytes_moved=1e7, time_s=6e-3),
        NS(name="gelu", flops=4e6, bytes_moved=8e6, time_s=3e-3),
        NS(name="softmax", flops=5e6, bytes_moved=8e6, time_s=1e-3),
        NS(name="embedding", flops=0.0, bytes_moved=1e6, time_s=1e-3),
    ]
    ax = plot_op_profile(NS(records=recs, roofline=measured_roofline()), top=2)
    (coll,) = [c for c in ax.collections if c.get_gid() == "points"]
    shares = np.array([6, 3, 1]) / 11  # oracle: time / total time, embedding included in the total
    assert np.allclose(coll.shares, shares)
    sizes = coll.get_sizes()
    assert sizes[0] > sizes[1] > sizes[2]
    assert np.allclose(coll.get_offsets()[:, 1], [2e9 / 6e-3, 4e6 / 3e-3, 5e6 / 1e-3])  # achieved FLOP/s
    assert "linear 55 %" in texts(ax) and "gelu 27 %" in texts(ax) and "softmax 9 %" not in texts(ax)
    assert "not shown (0 FLOPs or 0 bytes): embedding 9 %" in texts(ax)
    with pytest.raises(ValueError, match="roofline"):
        plot_op_profile(NS(records=recs, roofline=None))


def test_op_profile_of_a_real_profile():
    torch = pytest.importorskip("torch")
    from efflab.profile import profile_ops

    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Linear(256, 64))
    roof = Roofline(compute={"fp32": 1e11}, memory={"dram": 2.5e10}, latency_s=2e-6, name="example CPU")
    profile = profile_ops(model, torch.randn(32, 64), roofline=roof)
    ax = plot_op_profile(profile)
    (coll,) = [c for c in ax.collections if c.get_gid() == "points"]
    drawn = [r for r in profile.records if r.flops > 0 and r.bytes_moved > 0 and r.time_s > 0]
    assert len(coll.get_offsets()) == len(drawn)
    assert np.allclose(coll.get_offsets()[:, 0], [r.intensity_flops_per_byte for r in drawn])
    assert [REGIME_COLORS[r.regime].lower() for r in drawn] == [mcolors.to_hex(c) for c in coll.get_facecolors()]


def brute_force_front(p, signs):
    c = p * signs
    keep = []
    for i in range(len(c)):
        dominated = any(np.all(c[j] <= c[i]) and np.any(c[j] < c[i]) for j in range(len(c)) if j != i)
        keep.append(not dominated)
    return np.array(keep)


@pytest.mark.parametrize("seed", range(5))
def test_pareto_front_highlighted_dominated_faded(seed):
    rng = np.random.default_rng(seed)
    p = np.c_[rng.uniform(1, 20, 25), rng.uniform(0.6, 0.95, 25)]
    labels = [f"v{i}" for i in range(25)]
    mask = brute_force_front(p, np.array([1.0, -1.0]))
    chosen = int(np.flatnonzero(mask)[0])
    ax = plot_pareto(p, ["min", "max"], labels=labels, chosen=labels[chosen], objective_names=("latency (ms)", "acc"))
    (front,) = gid_lines(ax, "front")
    got = {tuple(xy) for xy in np.c_[front.get_xdata(), front.get_ydata()]}
    assert got == {tuple(xy) for xy in p[mask]}
    assert np.all(np.diff(front.get_xdata()) >= 0)  # drawn in order of the first objective
    (dom,) = [c for c in ax.collections if c.get_gid() == "dominated"]
    assert {tuple(xy) for xy in dom.get_offsets()} == {tuple(xy) for xy in p[~mask]}
    assert dom.get_alpha() < 1 and front.get_alpha() in (None, 1)
    (star,) = gid_lines(ax, "chosen")
    assert (star.get_xdata()[0], star.get_ydata()[0]) == tuple(p[chosen])
    assert ax.get_xlabel() == "latency (ms) — lower is better" and ax.get_ylabel() == "acc — higher is better"


def test_pareto_knee_and_bad_input():
    ax = plot_pareto([[0, 10], [1, 2], [2, 1.5], [10, 0]], chosen="knee")
    (star,) = gid_lines(ax, "chosen")
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (1, 2)
    with pytest.raises(ValueError, match="2 objectives"):
        plot_pareto(np.ones((4, 3)))
    with pytest.raises(ValueError, match="labels"):
        plot_pareto([[1, 2], [2, 1]], labels=["a"])
    with pytest.raises(ValueError, match="chosen"):
        plot_pareto([[1, 2], [2, 1]], labels=["a", "b"], chosen="zzz")


def test_amdahl_caps_and_gustafson():
    fractions = (0.5, 0.9, 0.95, 0.99)
    ax = plot_amdahl(fractions, max_speedup=1000)
    assert ax.get_xscale() == "log"
    for f in fractions:
        (cap,) = gid_lines(ax, f"cap:{f:g}")
        assert np.allclose(cap.get_ydata(), 1 / (1 - f))
        (curve,) = gid_lines(ax, f"amdahl:{f:g}")
        s, speedup = np.asarray(curve.get_xdata()), np.asarray(curve.get_ydata())
        assert np.allclose(speedup, 1 / ((1 - f) + f / s))  # oracle: the formula itself
        assert speedup.max() < 1 / (1 - f)
        assert f"cap 1/(1−{f:g}) = {1 / (1 - f):.3g}×" in texts(ax)
    assert "f = 0.95, s = 100: S = 16.8×" in texts(ax)
    gax = ax.figure.axes[1]
    (g,) = gid_lines(gax, "gustafson:0.95")
    n = np.asarray(g.get_xdata())
    assert np.allclose(g.get_ydata(), 0.05 + 0.95 * n) and gax.get_yscale() == "log"
    assert len(plot_amdahl(gustafson=False).figure.axes) == 1


def test_energy_breakdown_bars_on_log_scale():
    ests = [energy_estimate(1e6, 12e6), energy_estimate(2e9, 1e8, "fp16")]
    ax = plot_energy_breakdown(ests, ["add", "matmul"])
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "energy (J)"
    bars = {c.get_label(): [r.get_height() for r in c] for c in ax.containers}
    # Oracle: Horowitz 45 nm by hand. DRAM 1300 pJ / 8 B; fp32 (3.7 + 0.9)/2 pJ, fp16 (1.1 + 0.4)/2 pJ per FLOP.
    assert np.allclose(bars["data movement"], [12e6 * 162.5e-12, 1e8 * 162.5e-12])
    assert np.allclose(bars["compute"], [1e6 * 2.3e-12, 2e9 * 0.75e-12])
    assert texts(ax)[0] == "848× movement"
    with pytest.raises(ValueError, match="labels"):
        plot_energy_breakdown(ests, ["one"])
    with pytest.raises(TypeError, match="EnergyEstimate"):
        plot_energy_breakdown([1.0])


@pytest.mark.parametrize("normalize", [True, False])
def test_iron_law_stacked_terms(normalize):
    rl = Roofline(compute={"fp16": 65e12}, memory={"dram": 320e9}, latency_s=5e-6, name="T4")
    work = [("decode", OpCost(2 * 7e9, 14e9)), ("prefill", matmul_cost(4096, 4096, 4096, "fp16"))]
    ax = plot_iron_law(work, rl, normalize=normalize)
    widths = {c.get_label(): np.array([r.get_width() for r in c]) for c in ax.containers}
    memory = np.array([14e9 / 320e9, 3 * 4096**2 * 2 / 320e9])
    compute = np.array([2 * 7e9 / 65e12, 2 * 4096**3 / 65e12])
    latency = np.array([5e-6, 5e-6])
    scale = 100 / (memory + compute + latency) if normalize else 1.0
    assert np.allclose(widths["memory D/BW"], memory * scale)
    assert np.allclose(widths["compute O/(R·η)"], compute * scale)
    assert np.allclose(widths["latency L"], latency * scale)
    (tick,) = gid_lines(ax, "overlapped")
    assert np.allclose(tick.get_xdata(), (np.maximum(memory, compute) + latency) * scale)
    labels = [t.strip().split(" ·")[0] for t in texts(ax)]
    assert labels == ["memory-bound", "compute-bound"]
    with pytest.raises(ValueError, match="roofline"):
        plot_iron_law(work)


def test_iron_law_sweep_crosses_three_regimes():
    rl = Roofline(compute={"fp16": 65e12}, memory={"dram": 320e9}, latency_s=5e-6, name="T4")
    batches = [2**k for k in range(15)]
    costs = [matmul_cost(b, 768, 768, "fp16") for b in batches]
    ax = plot_iron_law_sweep(rl, costs, batches, xlabel="batch (tokens)", current=256)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    shades = [mcolors.to_hex(p.get_facecolor()) for p in ax.patches]
    order = [k for k, _ in groupby(shades)]
    assert order == [mcolors.to_hex(REGIME_COLORS[r]) for r in ("latency", "memory", "compute")]
    (cur,) = gid_lines(ax, "current")
    assert cur.get_xdata()[0] == 256
    (mem,) = gid_lines(ax, "term:memory")
    assert np.allclose(mem.get_ydata(), [c.bytes_moved / 320e9 for c in costs])


def test_energy_reuse_break_even():
    ax = plot_energy_reuse("fp16", reuse=30, memory="dram")
    (even,) = gid_lines(ax, "break-even")
    assert even.get_xdata()[0] == pytest.approx(162.5 * 2 / 0.75)  # e_byte * bytes per element / e_flop, by hand
    assert ax.get_xscale() == "log" and "FLOPs per fp16 element" in ax.get_xlabel()
    with pytest.raises(ValueError, match="dtype"):
        plot_energy_reuse("bf16")


def test_labels_and_formatting():
    c = Ceiling("dram", "memory", 23e9, spec=51.2e9, measured=23e9)
    assert ceiling_label(c) == "dram measured 23 GB/s (spec 51.2, 45 %)"
    assert ceiling_label(Ceiling("fp32", "compute", 1e11, spec=1e11, estimated=True)) == "fp32 estimated 100 GFLOP/s"
    assert format_si(999.96e9, "FLOP/s") == "1 TFLOP/s" and format_si(0, "s") == "0 s"


def test_importing_style_and_widgets_stays_light(repo_root):
    code = (
        "import sys, efflab.style, efflab.widgets; "
        "assert 'ipywidgets' not in sys.modules, 'widgets must import ipywidgets lazily'; "
        "import efflab.style as s; s.format_si(1.0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root)
    code = "import sys, efflab.style; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root)


@pytest.mark.slow
def test_every_figure_shows_in_a_notebook(repo_root):
    """Regression: restoring rcParams after the first figure once switched interactive mode off, hiding the rest."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    sources = ["from efflab.plots import plot_amdahl, plot_roofline", "plot_roofline('T4');", "plot_amdahl();"]
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": repo_root}}
    )
    client.execute()
    for cell in nb.cells[1:]:
        assert [o.output_type for o in cell.outputs] == ["display_data"] and "image/png" in cell.outputs[0].data


def test_place_labels_leaves_no_two_labels_overlapping():
    """Five labels on points a hair apart: after placement no two label boxes overlap, none covers a marker and all
    stay inside the axes (the oracle is the boxes' own geometry)."""
    from efflab.plots import place_labels

    fig, ax = plt.subplots(figsize=(6, 4))
    pts = np.array([[1.0, 1.0], [1.02, 1.01], [1.04, 0.99], [1.5, 1.2], [1.52, 1.21]])
    ax.scatter(pts[:, 0], pts[:, 1])
    ax.set(xlim=(0.5, 2.0), ylim=(0.5, 1.5))
    labels = [
        ax.annotate(f"aten.op{i} 2{i} %", p, xytext=(6, -5), textcoords="offset points", va="top", fontsize=8.5)
        for i, p in enumerate(pts)
    ]
    place_labels(ax, labels, points=pts)
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == len(pts)  # a label moved away is drawn anew with a leader line, not duplicated
    frame = ax.get_window_extent(renderer)
    for i, a in enumerate(boxes):
        assert frame.x0 <= a.x0 and a.x1 <= frame.x1 and frame.y0 <= a.y0 and a.y1 <= frame.y1
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)
        for px, py in ax.transData.transform(pts):
            assert not (a.x0 < px < a.x1 and a.y0 < py < a.y1)  # no label sits on a marker's centre
    plt.close(fig)


def test_log_axis_under_three_decades_reads_more_than_one_label():
    """Amdahl's y axis spans 0.8-13: ticks at 1, 2, 5, 10 (a decades-only axis labelled just "1" and "10")."""
    ax = plot_amdahl(fractions=(0.856,), max_speedup=200, gustafson=False, highlight=None)
    lo, hi = ax.get_ylim()
    ticks = [t for t in ax.get_yticks() if lo <= t <= hi]
    assert ticks == pytest.approx([1, 2, 5, 10])
    plt.close(ax.figure)
