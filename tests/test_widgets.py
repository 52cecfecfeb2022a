"""Each explorer draws its initial figure, and moving a control changes the figure and what it reports."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import pytest

pytest.importorskip("ipywidgets")

from efflab.amdahl import amdahl_speedup
from efflab.widgets import (
    amdahl_explorer,
    best_variant,
    energy_explorer,
    iron_law_explorer,
    pareto_explorer,
    roofline_explorer,
)

# Variants in the shape a chapter measures them: (name, accuracy, size_bytes, latency_s).
VARIANTS = [
    ("fp32 large", 0.950, 40e6, 20e-3),
    ("fp16 large", 0.949, 20e6, 12e-3),
    ("int8 large", 0.940, 10e6, 8e-3),
    ("fp32 small", 0.900, 4e6, 3e-3),
    ("int8 small", 0.880, 1e6, 1e-3),
]


def png(box) -> str:
    (output,) = box.output.outputs
    assert output["output_type"] == "display_data"
    return output["data"]["image/png"]


def moved(box, name, value):
    before_png, before_html = png(box), box.status.value
    box.controls[name].value = value
    assert png(box) != before_png, f"moving {name} must redraw the figure"
    assert box.status.value != before_html
    return box.state


def test_roofline_explorer_point_crosses_the_ridge():
    box = roofline_explorer("T4", intensity_flops_per_byte=1.0)
    assert box.state["regime"] == "memory" and "memory-bound" in box.status.value
    assert box.state["ridge_flops_per_byte"] == pytest.approx(8.1e12 / 320e9)  # T4 fp32 datasheet, by hand
    state = moved(box, "intensity", 100.0)
    assert state["regime"] == "compute" and state["attainable_flops_per_s"] == pytest.approx(8.1e12)
    state = moved(box, "dtype", "fp16")  # a new dtype brings its peak, so the ridge moves right past the point
    assert box.controls["peak"].value == pytest.approx(65.0)
    assert state["regime"] == "memory" and state["ridge_flops_per_byte"] == pytest.approx(65e12 / 320e9)
    state = moved(box, "bandwidth", 3200.0)  # ten times the bandwidth: the ridge falls below the point
    assert state["regime"] == "compute" and state["ridge_flops_per_byte"] == pytest.approx(65e12 / 3.2e12)


def test_iron_law_explorer_latency_memory_compute():
    box = iron_law_explorer("T4")
    assert box.state["regime"] == "latency" and "assumed" in box.status.value
    regimes = [moved(box, "batch", b)["regime"] for b in (256, 1024)]
    assert regimes == ["memory", "compute"]
    # Oracle at batch 1024, d = 768, fp16 on a T4 with 5 us latency.
    flops, bytes_moved = 2 * 1024 * 768 * 768, (768 * 768 + 2 * 1024 * 768) * 2
    assert box.state["compute_time_s"] == pytest.approx(flops / 65e12)
    assert box.state["memory_time_s"] == pytest.approx(bytes_moved / 320e9)
    assert moved(box, "hidden", 4096)["hidden"] == 4096


def test_amdahl_explorer_speedup_and_cap():
    box = amdahl_explorer()
    assert box.state["speedup"] == pytest.approx(16.8, abs=0.01) and box.state["cap"] == pytest.approx(20)
    state = moved(box, "fraction", 0.5)
    assert state["cap"] == pytest.approx(2.0) and state["speedup"] == pytest.approx(amdahl_speedup(0.5, 100))
    state = moved(box, "speedup", 10_000.0)
    assert state["speedup"] < state["cap"] and state["fraction_of_cap"] > 0.999


def test_pareto_explorer_choice_follows_the_constraints():
    box = pareto_explorer(VARIANTS)
    assert box.state["chosen"] == "fp32 large"  # unconstrained: highest accuracy
    assert moved(box, "max_latency_ms", 10.0)["chosen"] == "int8 large"
    assert moved(box, "max_size_mb", 5.0)["chosen"] == "fp32 small"
    assert moved(box, "max_latency_ms", 2.0)["chosen"] == "int8 small"
    state = moved(box, "min_accuracy", 0.95)
    assert state["chosen"] is None and "No variant" in box.status.value


def test_best_variant_matches_brute_force():
    import itertools

    acc, size, lat = zip(*[(a, s, t) for _, a, s, t in VARIANTS], strict=True)
    for mem, time_s, floor in itertools.product([2e6, 15e6, 50e6], [2e-3, 9e-3, 30e-3], [0.0, 0.9, 0.945]):
        feasible = [i for i in range(len(acc)) if size[i] <= mem and lat[i] <= time_s and acc[i] >= floor]
        expected = max(feasible, key=lambda i: (acc[i], -lat[i], -size[i])) if feasible else None
        assert best_variant(acc, size, lat, mem, time_s, floor) == expected


def test_pareto_explorer_rejects_bad_variants():
    with pytest.raises(ValueError, match="at least 2"):
        pareto_explorer(VARIANTS[:1])
    with pytest.raises(ValueError, match="accuracy"):
        pareto_explorer([("a", 1.5, 1e6, 1e-3), ("b", 0.5, 1e6, 1e-3)])


def test_energy_explorer_reuse_and_dtype_move_the_split():
    box = energy_explorer(reuse=1.0)
    # Oracle: 1 GFLOP, 4 GB of fp32 from DRAM at 162.5 pJ/B vs 2.3 pJ/FLOP.
    assert box.state["movement_j"] == pytest.approx(4e9 * 162.5e-12)
    assert box.state["movement_share"] > 0.99
    state = moved(box, "reuse", 1000.0)
    assert state["movement_share"] < 0.5  # past the break-even reuse of 283 FLOPs per fp32 element
    state = moved(box, "dtype", "int8")
    assert state["movement_j"] == pytest.approx(1e9 / 1000 * 1 * 162.5e-12)


@pytest.mark.slow
def test_initial_figure_is_saved_in_the_widget_state(tmp_path, repo_root):
    """Executed as the book executes it, the Output widget's saved state carries the figure as a PNG."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from efflab.widgets import amdahl_explorer\namdahl_explorer()")]
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": repo_root}}
    )
    client.execute()
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    outputs = [m["state"].get("outputs", []) for m in state.values() if m["model_name"] == "OutputModel"]
    assert any("image/png" in o.get("data", {}) for out in outputs for o in out), json.dumps(outputs)[:500]
    html = [m["state"]["value"] for m in state.values() if m["model_name"] == "HTMLModel"]
    assert any("16.8×" in h for h in html)
    # Nothing leaks into the cell's own outputs except the widget view.
    assert all("image/png" not in o.get("data", {}) for o in nb.cells[0].outputs)


def test_pareto_explorer_accuracy_floor_spans_the_variants():
    """The floor's slider covers the measured accuracies (to the next whole percent), not 0-1: every step matters."""
    box = pareto_explorer(VARIANTS)
    floor = box.controls["min_accuracy"]
    accuracies = [a for _, a, _, _ in VARIANTS]
    assert floor.min <= min(accuracies) and floor.max >= max(accuracies)
    assert floor.max - floor.min <= max(accuracies) - min(accuracies) + 0.02 + 1e-9
    assert floor.value == pytest.approx(floor.min)  # no floor at first: every variant passes it
    assert box.state["feasible"] == len(VARIANTS)


def test_sliders_get_a_usable_track():
    """Every slider takes the row (at least 600 px) instead of ipywidgets' 300 px shared with a long description."""
    for box in (pareto_explorer(VARIANTS), energy_explorer(reuse=1.0)):
        sliders = [c for c in box.controls.values() if type(c).__name__.endswith("Slider")]
        assert sliders
        for s in sliders:
            assert s.layout.width == "100%" and int(s.layout.min_width.removesuffix("px")) >= 600
