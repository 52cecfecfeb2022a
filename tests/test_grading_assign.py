"""Student notebooks from masters (assign), the public check(), and the demo lab's spec."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import numpy as np
import pytest

from efflab.grading import check
from efflab.grading.assign import default_output, leaks, make_student, out_of_date
from efflab.grading.cli import add_cli
from efflab.grading.labs import demo
from efflab.grading.spec import Case, Lab, Question, hidden_cases, load_lab, matches

DEMO = Path(__file__).parent / "data" / "demo_lab"
MASTER = DEMO / "masters" / "demo.ipynb"
STUDENT = DEMO / "demo.ipynb"


def _out(capsys) -> str:
    """What check() printed, with its line wrapping undone (reports wrap at the book's text width)."""
    return " ".join(capsys.readouterr().out.split())


def _cli(*argv: str) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def _run(nb, env: dict[str, str]):
    """Execute a notebook in this environment (not sandboxed): returns it with outputs."""
    from nbclient import NotebookClient

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return nb


def test_committed_student_notebook_is_regenerated_exactly():
    assert out_of_date([MASTER]) == []
    assert _cli("assign", "--check", str(MASTER)) == 0


def test_check_fails_when_student_notebook_differs(tmp_path):
    masters = tmp_path / "labs" / "masters"
    masters.mkdir(parents=True)
    (masters / "demo.ipynb").write_text(MASTER.read_text())
    assert _cli("assign", "--check", str(masters / "demo.ipynb")) == 1  # missing
    assert _cli("assign", str(masters / "demo.ipynb")) == 0
    assert default_output(masters / "demo.ipynb") == tmp_path / "labs" / "demo.ipynb"
    assert _cli("assign", "--check", str(masters / "demo.ipynb")) == 0
    edited = nbformat.read(tmp_path / "labs" / "demo.ipynb", 4)
    edited.cells[2].source += "\n# edited by hand"
    nbformat.write(edited, tmp_path / "labs" / "demo.ipynb")
    assert _cli("assign", "--check", str(masters / "demo.ipynb")) == 1


def test_student_notebook_has_no_solution_marker_or_hidden_material():
    master, student = nbformat.read(MASTER, 4), nbformat.read(STUDENT, 4)
    assert leaks(master, student) == []
    text = STUDENT.read_text()
    for secret in ("BEGIN SOLUTION", "END SOLUTION", "np.maximum(compute_s", "np.sum(bytes_moved * time_s)", "lstsq"):
        assert secret not in text
    assert '"hidden"' not in text
    # the solutions are stubs that name the exercise; the setup cell is the master's, verbatim
    assert "raise NotImplementedError(" in text and "'Exercise 1: divide the FLOPs by the bytes moved'" in text
    assert "# Exercise 3: least squares" in text and "bandwidth_bytes_per_s = ...\\n" in text
    assert student.cells[0].source == master.cells[0].source
    assert all(c.get("outputs", []) == [] for c in student.cells)
    assert student.metadata["efflab"]["lab"] == "demo"
    # and the oracle for leaks() itself: the master leaks into a copy of itself
    assert leaks(master, master)


@pytest.mark.parametrize(
    "source, message",
    [
        ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "no END line"),
        ("x = 1\n# END SOLUTION\n", "never opened"),
        ("# BEGIN SOLUTION\n# BEGIN HIDDEN\nx = 1\n# END HIDDEN\n# END SOLUTION\n", "not closed"),
    ],
)
def test_bad_markers_are_reported_with_the_cell(source, message):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    with pytest.raises(ValueError, match=message):
        make_student(nb, "x", "x.ipynb")


def test_top_level_region_keeps_names_and_other_tags():
    cell = nbformat.v4.new_code_cell("# BEGIN SOLUTION\na, b = 1, 2\nc: float = 3.0\n# END SOLUTION\nprint(a)")
    cell.metadata["tags"] = ["nbval-ignore-output"]
    student = make_student(nbformat.v4.new_notebook(cells=[cell]), "x")
    assert student.cells[0].source.splitlines()[:3] == [
        "a = ...  # Exercise 1: write your code here",
        "b = ...  # Exercise 1: write your code here",
        "c = ...  # Exercise 1: write your code here",
    ]
    assert student.cells[0].metadata["tags"] == ["nbval-ignore-output"]


@pytest.mark.slow
def test_student_notebook_runs_top_to_bottom_and_master_passes_strict_checks():
    student = _run(nbformat.read(STUDENT, 4), {"EFFLAB_STRICT_CHECK": "0"})
    printed = "".join(o.get("text", "") for c in student.cells if c.cell_type == "code" for o in c.outputs)
    assert printed.count("not attempted yet") == 3
    master = _run(nbformat.read(MASTER, 4), {"EFFLAB_STRICT_CHECK": "1"})  # raises CellExecutionError on a failure
    printed = "".join(o.get("text", "") for c in master.cells if c.cell_type == "code" for o in c.outputs)
    assert printed.count("✓") == 3


def test_check_reports_and_only_raises_when_strict(capsys, monkeypatch):
    monkeypatch.delenv("EFFLAB_STRICT_CHECK", raising=False)
    assert check("demo.q1", demo.intensity).passed is True
    assert check("demo.q1", lambda f, b: f * b).passed is False
    out = _out(capsys)
    assert "✓ demo.q1" in out and "✗ demo.q1" in out and "Hint: intensity is FLOPs per byte" in out
    assert check("demo.q2", lambda *a: 1 / 0).passed is False
    assert "raised ZeroDivisionError" in _out(capsys)
    assert check("demo.q3", ...).passed is False and "not attempted" in _out(capsys)
    recorded = {"bytes_moved": np.array(demo.RECORDED_BYTES), "time_s": np.array(demo.RECORDED_TIME_S)}
    assert check("demo.q3", demo.fitted_bandwidth_bytes_per_s(), data=recorded).passed is True
    assert (
        check("demo.q9", 1).passed is False and check("nolab.q1", 1).passed is False and check("q1", 1).passed is False
    )
    assert check("demo.q1", 3.0).passed is False  # not a function
    monkeypatch.setenv("EFFLAB_STRICT_CHECK", "1")
    with pytest.raises(AssertionError, match="demo.q1"):
        check("demo.q1", lambda f, b: f * b)
    monkeypatch.setenv("EFFLAB_GRADING", "1")
    assert check("demo.q1", demo.intensity).passed is False  # silent inside the grader's sandbox


def test_demo_reference_against_independent_oracles():
    # the fitted bandwidth: numpy's least squares through the origin is the oracle for the closed form
    t = np.array(demo.RECORDED_TIME_S)[:, None]
    slope = np.linalg.lstsq(t, np.array(demo.RECORDED_BYTES, float), rcond=None)[0][0]
    assert demo.fitted_bandwidth_bytes_per_s() == pytest.approx(slope, rel=1e-12)
    assert 1e9 < slope < 1e12  # a DRAM copy: between 1 GB/s and 1 TB/s
    # the iron law by hand: 1e12 FLOP at 1e12 FLOP/s = 1 s beats 1e9 B at 1e11 B/s = 10 ms
    assert float(demo.iron_law_time_s(1e12, 1e9, 1e12, 1e11)) == pytest.approx(1.0)
    assert float(demo.iron_law_time_s(1e9, 1e12, 1e12, 1e11)) == pytest.approx(10.0)


def test_hidden_cases_are_deterministic_and_independent_per_question():
    lab = load_lab("demo")
    a, b = hidden_cases(lab), hidden_cases(lab)
    assert all(
        np.array_equal(x, y)
        for q in a
        for ca, cb in zip(a[q], b[q], strict=True)
        for x, y in zip(ca.args, cb.args, strict=True)
    )
    c = hidden_cases(lab, seed=1)
    assert not np.array_equal(a["q1"][1].args[0], c["q1"][1].args[0])
    assert a["q3"] == [Case(())]


def test_spec_validation_and_comparison():
    with pytest.raises(ValueError, match="kind"):
        Question("q1", "f", 1, reference=abs, kind="essay")
    with pytest.raises(ValueError, match="points"):
        Question("q1", "f", 0, reference=abs)
    with pytest.raises(ValueError, match="duplicate"):
        Lab("x", (Question("q1", "f", 1, reference=abs), Question("q1", "g", 1, reference=abs)))
    q = Question("q1", "f", 1, reference=abs)
    assert matches(np.float64(2.0), np.array([2.0]), q)[0]  # size-1 answers compare as scalars
    assert not matches([1.0, 2.0], [1.0, 2.0, 3.0], q)[0]
    assert not matches([np.nan], [np.nan], q)[0]  # NaN never passes
    assert not matches(object(), 1.0, q)[0]
    assert matches("memory", "memory", q)[0] and not matches("compute", "memory", q)[0]


def test_private_keys_folder_wins(tmp_path):
    (tmp_path / "demo.py").write_text(
        "from efflab.grading.spec import Lab, Question\n"
        "LAB = Lab('demo', (Question('q1', 'answer', 1, reference=lambda: 42.0, kind='value'),), seed=7)\n"
    )
    lab = load_lab("demo", keys_dir=tmp_path)
    assert lab.seed == 7 and lab.source == str((tmp_path / "demo.py").resolve())
    assert load_lab("demo").seed == demo.LAB.seed


def test_cli_bad_arguments_exit_2_and_keys_are_hidden(tmp_path, capsys):
    from efflab.grading.grade import default_hide

    assert _cli("grade", "x.ipynb", "--lab", "no_such_lab") == 2
    assert _cli("grade", "x.ipynb", "--lab", "demo", "--shard", "3/2") == 2
    assert "unknown lab" in capsys.readouterr().err
    hide = default_hide(load_lab("demo"), keys_dir=tmp_path, extra=[DEMO])
    assert str(tmp_path.resolve()) in hide and str(DEMO.resolve()) in hide
    assert str(Path(demo.__file__).resolve().parent) in hide  # the shipped specs' folder


def test_derived_answer_must_follow_from_the_recorded_data(capsys):
    """q3 is derived: the grader recomputes it from the student's own recording, so a copied constant fails."""
    rng = np.random.default_rng(7)
    bytes_moved = np.array([1e6, 2e6, 4e6, 8e6])
    time_s = bytes_moved / 2e10 * rng.uniform(0.9, 1.1, 4)  # someone else's machine: about 20 GB/s
    mine = float(np.sum(bytes_moved * time_s) / np.sum(time_s**2))
    # the oracle: numpy's least squares through the origin on the same recording
    assert mine == pytest.approx(np.linalg.lstsq(time_s[:, None], bytes_moved, rcond=None)[0][0], rel=1e-12)
    assert check("demo.q3", mine, data={"bytes_moved": bytes_moved, "time_s": time_s}).passed is True
    copied = demo.fitted_bandwidth_bytes_per_s()  # the course machine's figure, not this recording's
    assert check("demo.q3", copied, data={"bytes_moved": bytes_moved, "time_s": time_s}).passed is False
    assert "does not follow from your recorded" in _out(capsys)
    one_point = {"bytes_moved": bytes_moved[:1], "time_s": time_s[:1]}
    assert check("demo.q3", mine, data=one_point).passed is False
    assert "implausible recorded data" in _out(capsys)


def test_derived_check_reads_the_notebook_globals(capsys):
    namespace = {
        "check": check,
        "np": np,
        "bytes_moved": np.array([1e6, 2e6, 3e6]),
        "time_s": np.array([1e-4, 2e-4, 3e-4]),
    }
    exec("ok = check('demo.q3', float(np.sum(bytes_moved * time_s) / np.sum(time_s ** 2)))", namespace)
    assert namespace["ok"].passed is True
    exec("missing = check('demo.q3', 1.0e10, data={'bytes_moved': bytes_moved})", namespace)
    assert namespace["missing"].passed is False and "record your measurement first" in _out(capsys)


def test_check_result_reads_as_a_bool_and_adds_no_output_in_a_notebook():
    """IPython shows a value through ``_ipython_display_`` when it has one: the ✓/✗ line is all a student sees."""
    from efflab.grading import CheckResult

    ok, bad = CheckResult(True), CheckResult(False)
    assert ok and not bad and ok == True and bad == False and bad != ok  # noqa: E712 (the comparison is the point)
    assert repr(ok) == "True" and ok._ipython_display_() is None
    assert {ok: 1}[CheckResult(True)] == 1
