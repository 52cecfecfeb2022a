"""The package's layout, enforced from its import graph: each module sits in one layer, imports only its own layer or
lower ones (lazy imports inside functions included), and no import circle exists. The layers and each module's one job
are written down in ``efflab/__init__.py``'s docstring; this table is the same list, and a new module must be placed
in it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "efflab"

# Lowest first. A dotted name stands for the module and, for a package, everything in it.
LAYERS = (
    ("foundations", ("efflab._validate", "efflab._sysinfo", "efflab.style")),
    ("laws", ("efflab.opcost", "efflab.roofline", "efflab.pareto", "efflab.amdahl", "efflab.energy", "efflab.dam",
              "efflab.claims")),
    ("machine", ("efflab.hardware", "efflab.timing", "efflab.energy_meter", "efflab.ceilings", "efflab.profile")),
    ("experiments", ("efflab.kernels", "efflab.roofline_cases", "efflab.op_bench", "efflab.roofline_claims",
                     "efflab.compress", "efflab.fusion", "efflab.pipeline", "efflab.scenarios")),
    ("presentation", ("efflab.plots", "efflab.widgets")),
    ("tools", ("efflab", "efflab.__main__", "efflab.cli", "efflab.doctor", "efflab.notebooks", "efflab._sphinx",
               "efflab.grading")),
)  # fmt: skip

# Modules over MAX_LINES, each with the reason it stays whole.
MAX_LINES = 500
LONG_MODULES = {
    "efflab.plots": "one drawing function per principle, sharing the axis helpers and label placement",
    "efflab.hardware": "the datasheet catalog is data: 14 sourced entries of about 15 lines each",
    "efflab.scenarios": "three scenarios, each a workload with two levers, on one shared base class",
    "efflab.widgets": "one explorer per chapter on the shared explorer() frame",
    "efflab.ceilings": "the roofline measurement: bandwidth sweep, matmul sweep, latency floor and their report",
    "efflab.profile": "the op profiler and its per-op FLOP/byte rules, which must agree with each other",
    "efflab.pipeline": "the input-pipeline model of chapter 5 and lab 4: stages, overlap and their claims",
    "efflab.timing": "benchmark, its CPU and CUDA paths and Measurement, which share the budget rules",
    "efflab.roofline": "the laws, Classification, Ceiling and Roofline, with their docstring examples",
    "efflab.claims": "the verdict vocabulary and the machine-noise reasons every claim may cite",
    "efflab.grading.grade": "the grading run: collect, sandbox, score and write the gradebook row",
    "efflab.grading.runner": "the sandboxed notebook runner and its protections (bubblewrap)",
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _layer(name: str) -> int | None:
    best = None
    for index, (_, members) in enumerate(LAYERS):
        for member in members:
            if (name == member or name.startswith(member + ".")) and (best is None or len(member) > len(best[1])):
                best = (index, member)
    return None if best is None else best[0]


def _imports(name: str, path: Path) -> dict[str, int]:
    """efflab modules imported anywhere in the file (top level or inside functions) -> first line."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from efflab import _validate" imports the submodule; "from efflab import doctor" the package's name.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("efflab"):
                found.setdefault(target, node.lineno)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_every_module_has_a_layer():
    missing = [name for name in MODULES if _layer(name) is None]
    assert not missing, f"place these modules in LAYERS here and in efflab/__init__.py's docstring: {missing}"


def test_no_module_imports_a_layer_above_its_own():
    upward = [
        f"{name} ({LAYERS[_layer(name)][0]}) imports {target} ({LAYERS[_layer(target)][0]}) at line {line}"
        for name, targets in GRAPH.items()
        for target, line in targets.items()
        if _layer(name) is not None and _layer(target) is not None and _layer(target) > _layer(name)
    ]
    assert not upward, "\n".join(upward)


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return out


def test_no_import_circle():
    # A package's __init__ re-exporting its own submodules is not a circle in the sense that matters here; every
    # other mutual import is.
    graph = {
        name: {t: line for t, line in targets.items() if not (MODULES[name].name == "__init__.py"
                                                                and t.startswith(name + "."))}
        for name, targets in GRAPH.items()
    }  # fmt: skip
    assert not _cycles(graph), _cycles(graph)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b": 1}, "b": {}}) == []


def test_long_modules_say_why():
    long = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()}
    unexplained = {name: n for name, n in long.items() if n > MAX_LINES and name not in LONG_MODULES}
    assert not unexplained, f"split these modules or give the reason they stay whole in LONG_MODULES: {unexplained}"
    stale = sorted(name for name in LONG_MODULES if long.get(name, 0) <= MAX_LINES)
    assert not stale, f"these modules are short now; remove them from LONG_MODULES: {stale}"


def test_the_layout_is_written_where_a_newcomer_looks_first():
    import efflab

    doc = efflab.__doc__
    for title, members in LAYERS:
        assert title in doc
        for member in members:
            assert member.removeprefix("efflab.").removeprefix("efflab") in doc or member == "efflab", member


@pytest.mark.parametrize(
    ("old", "name", "home"),
    [
        ("efflab.scenarios", "plot_time_split", "efflab.plots"),
        ("efflab.scenarios", "lever_explorer", "efflab.widgets"),
        ("efflab.pipeline", "plot_runs", "efflab.plots"),
    ],
)
def test_moved_names_still_import_from_their_old_module(old, name, home):
    """Names that moved up to the presentation layer are looked up lazily, so the old module never imports it."""
    pytest.importorskip("matplotlib")
    assert getattr(importlib.import_module(old), name) is getattr(importlib.import_module(home), name)
    assert home not in GRAPH[old]
    with pytest.raises(AttributeError, match="no attribute"):
        importlib.import_module(old).not_a_name  # noqa: B018
