"""Grading internals: plan keys, per-kind question fields, keyword-only rows, check()'s namespace, the job folder's
removal on every exit path, and the output counters of the driver's notebook client (fast: no kernel is started)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from efflab.grading import _caller_globals, check, runner
from efflab.grading._child import capped_client_class
from efflab.grading.grade import Row, data_key, grade, parse_plan_key, plan_key, prepare
from efflab.grading.labs import demo
from efflab.grading.spec import Case, Lab, Question, load_lab

LABS_DIR = Path(__file__).parents[1] / "efflab" / "grading" / "labs"
STUDENT = Path(__file__).parent / "data" / "demo_lab" / "demo.ipynb"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# identifiers with underscores anywhere (leading, inner, doubled, trailing) and a non-ASCII letter
identifiers = st.from_regex(r"[A-Za-zé_][A-Za-z0-9é_]{0,12}", fullmatch=True)
# ids a plan key can carry: single underscores between parts, one leading underscore at most, none trailing
plan_ids = st.builds(
    lambda lead, first, rest: lead + "_".join([first, *rest]),
    st.sampled_from(["", "_"]),
    st.from_regex(r"[A-Za-zé][A-Za-z0-9é]{0,5}", fullmatch=True),
    st.lists(st.from_regex(r"[A-Za-z0-9é]{1,5}", fullmatch=True), max_size=3),
)
# ids that would make keys ambiguous: a doubled underscore inside, or a trailing one
ambiguous_ids = st.one_of(
    st.builds(lambda a, b: f"{a}__{b}", identifiers, st.from_regex(r"[A-Za-z0-9_]{0,6}", fullmatch=True)),
    identifiers.map(lambda s: s + "_"),
)
indices = st.integers(min_value=0, max_value=10**6)


# -- 1. plan keys ------------------------------------------------------------------------------------------------------


@given(plan_ids, indices, st.none() | indices)
def test_plan_key_round_trips(question_id, case, arg):
    parsed = parse_plan_key(plan_key(question_id, case, arg))
    assert (parsed.question_id, parsed.case, parsed.arg, parsed.data) == (question_id, case, arg, None)


@given(plan_ids, identifiers)
def test_data_key_round_trips_for_any_variable_name(question_id, data_name):
    parsed = parse_plan_key(data_key(question_id, data_name))
    assert (parsed.question_id, parsed.case, parsed.arg, parsed.data) == (question_id, None, None, data_name)


@given(ambiguous_ids, indices)
def test_ids_that_would_make_keys_ambiguous_are_refused(question_id, case):
    with pytest.raises(ValueError, match="cannot be graded"):
        plan_key(question_id, case)
    with pytest.raises(ValueError, match="cannot be graded"):
        data_key(question_id, "x")


@given(st.text(alphabet="q1_ad9t", max_size=16))
def test_parse_accepts_exactly_what_the_builders_make(text):
    try:
        parsed = parse_plan_key(text)
    except ValueError:
        return
    if parsed.data is not None:
        assert data_key(parsed.question_id, parsed.data) == text
    else:
        assert plan_key(parsed.question_id, parsed.case, parsed.arg) == text


@pytest.mark.parametrize("key", ["q__1__0__1", "q__1__0__1__2", "q___0", "q1", "q1__", "q1__01", "q1__-1", "__0"])
def test_parse_rejects_ambiguous_or_malformed_keys(key):
    with pytest.raises(ValueError, match="not a plan key"):
        parse_plan_key(key)


@pytest.mark.parametrize("bad", [-1, 1.0, True, "0"])
def test_plan_key_refuses_bad_indices(bad):
    with pytest.raises(ValueError, match="int >= 0"):
        plan_key("q1", bad)


def test_prepare_names_everything_with_plan_keys():
    key = prepare(load_lab("demo"))
    for planned_q in key.plan["questions"]:
        for i, case in enumerate(planned_q["cases"]):
            assert case["key"] == plan_key(planned_q["id"], i)
            assert [parse_plan_key(name)[:3] for name in case["args"]] == [
                (planned_q["id"], i, j) for j in range(len(case["args"]))
            ]
        assert planned_q["data_keys"] == [data_key(planned_q["id"], name) for name in planned_q["data"]]
    assert all(parse_plan_key(name).arg is None for name in key.expected)


def test_prepare_refuses_a_question_id_that_would_make_keys_ambiguous():
    lab = Lab("amb", (Question("q__1", "f", 1, reference=abs, public=(Case((1.0,)),)),))
    with pytest.raises(ValueError, match="'q__1' cannot be graded"):
        prepare(lab)


# -- 2. fields of another kind -----------------------------------------------------------------------------------------


def _never(*_):
    return ""


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("value", "public", (Case((1.0,)),)),
        ("value", "hidden", _never),
        ("value", "partial", True),
        ("value", "time_limit_s", 5.0),
        ("value", "data", ("x",)),
        ("value", "validate_data", _never),
        ("function", "data", ("x",)),
        ("function", "validate_data", _never),
        ("derived", "public", (Case((1.0,)),)),
        ("derived", "hidden", _never),
        ("derived", "partial", True),
        ("derived", "time_limit_s", 1.0),
    ],
)
def test_a_field_of_another_kind_is_an_error_naming_field_and_kind(kind, field, value):
    needed = {"data": ("x",)} if kind == "derived" and field != "data" else {}
    with pytest.raises(ValueError, match=rf"field '{field}' does not apply to kind='{kind}'"):
        Question("q1", "answer", 1, reference=abs, kind=kind, **needed, **{field: value})


def test_defaults_given_explicitly_are_not_errors():
    Question("q1", "v", 1, reference=abs, kind="value", public=(), hidden=None, partial=False, time_limit_s=10.0)
    Question("q2", "f", 1, reference=abs, data=(), validate_data=None, public=[], partial=True, time_limit_s=2)
    Question("q3", "d", 1, reference=abs, kind="derived", data=("x",), public=(), partial=False)


@pytest.mark.parametrize("spec", sorted(p.stem for p in LABS_DIR.glob("*.py") if p.stem != "__init__"))
def test_every_shipped_spec_builds_and_prepares(spec):
    lab = load_lab(spec)
    assert lab.questions and prepare(lab).plan["questions"]


@pytest.mark.parametrize("route", ["shipped id", "keys folder", "spec path"])
def test_a_labs_own_limits_survive_loading(tmp_path, monkeypatch, route):
    import efflab.grading.labs as labs

    name = "limits_probe_lab"
    spec = tmp_path / f"{name}.py"
    spec.write_text(
        "from efflab.grading.spec import Lab, Question\n"
        f"LAB = Lab({name!r}, (Question('q1', 'answer', 1, reference=lambda: 42.0, kind='value'),), seed=7,\n"
        "          timeout_s=345.0, memory_mb=6000)\n"
    )
    if route == "shipped id":  # found as efflab.grading.labs.<name>, the way shipped labs are
        monkeypatch.setattr(labs, "__path__", [*labs.__path__, str(tmp_path)])
        try:
            lab = load_lab(name)
        finally:  # forget the imported module, so no other test can find it
            sys.modules.pop(f"efflab.grading.labs.{name}", None)
            vars(labs).pop(name, None)
    else:
        lab = load_lab(name, keys_dir=tmp_path) if route == "keys folder" else load_lab(spec)
    assert (lab.timeout_s, lab.memory_mb, lab.seed) == (345.0, 6000, 7)
    assert lab.source == str(spec.resolve())


# -- 3. rows are built with keywords ---------------------------------------------------------------------------------


def test_run_results_are_built_with_keywords():
    with pytest.raises(TypeError):
        runner.RunResult("refused", None, 0.0)  # positional: refused
    assert runner.RunResult(ended="refused", returncode=None, wall_s=0.0).missing == ()


def test_row_fields_are_keyword_only(tmp_path):
    with pytest.raises(TypeError):
        Row("a.ipynb", "a", {}, 0.0, 1.0, "graded")  # positional: refused
    row = Row(file="a.ipynb", student="a", points={}, total=0.0, max_total=1.0, status="graded")
    assert row.flags == () and row.details == {}
    broken = tmp_path / "eve_demo.ipynb"
    broken.write_text("not json")
    (invalid,) = grade([broken], prepare(load_lab("demo")), sandbox=False, allow_weak=True)
    assert (invalid.student, invalid.status, invalid.total, invalid.max_total) == ("eve", "invalid", 0.0, 5.0)


# -- 4. check()'s namespace -------------------------------------------------------------------------------------------

RECORDED = {"bytes_moved": np.array(demo.RECORDED_BYTES), "time_s": np.array(demo.RECORDED_TIME_S)}


def test_check_reads_the_callers_globals_by_default(capsys):
    notebook = {"check": check, **RECORDED, "answer": demo.fitted_bandwidth_bytes_per_s()}
    exec("result = check('demo.q3', answer)", notebook)  # a notebook cell: its globals are the notebook's
    assert notebook["result"].passed is True
    exec("result = check('demo.q3', answer)", {"check": check, "answer": 1.0})
    assert "record your measurement first" in capsys.readouterr().out


def test_check_takes_the_namespace_explicitly(capsys):
    answer = demo.fitted_bandwidth_bytes_per_s()
    assert check("demo.q3", answer, namespace=dict(RECORDED)).passed is True
    assert check("demo.q3", answer * 2, namespace=dict(RECORDED)).passed is False
    assert check("demo.q3", answer, namespace={}).passed is False
    printed = " ".join(capsys.readouterr().out.split())  # reports wrap at the book's text width
    assert "record your measurement first (bytes_moved, time_s not set)" in printed
    # data= still wins over namespace=
    assert check("demo.q3", answer, data=dict(RECORDED), namespace={}).passed is True


def test_the_frame_helper_says_what_to_do_when_no_frame_is_available(monkeypatch, capsys):
    assert _caller_globals(0) is globals()
    with pytest.raises(RuntimeError, match=r"namespace=globals\(\)"):
        _caller_globals(10**6)
    answer = demo.fitted_bandwidth_bytes_per_s()
    with monkeypatch.context() as patch:
        patch.delattr(sys, "_getframe")
        without_frames = check("demo.q3", answer)
        explicit = check("demo.q3", answer, namespace=dict(RECORDED))
    assert without_frames.passed is False and explicit.passed is True
    assert "cannot check" in capsys.readouterr().out


# -- 5. the job folder goes on every exit path ------------------------------------------------------------------------


def _job_dirs(root: Path) -> list[Path]:
    return sorted(root.glob(runner._JOB_DIR_PREFIX + "*"))


def test_a_failing_grade_still_removes_its_job_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen = []

    def fail(*_):  # after the folder has been filled, before the child starts
        seen.extend(_job_dirs(tmp_path))
        raise RuntimeError("the grader broke")

    monkeypatch.setattr(runner, "_nproc_limit", fail)
    (row,) = grade([STUDENT], prepare(load_lab("demo")), sandbox=False, allow_weak=True)
    assert row.status == "runner-error" and "RuntimeError" in row.feedback
    assert len(seen) == 1 and (seen[0] / "in" / "plan.json").name == "plan.json"
    assert _job_dirs(tmp_path) == []


def test_the_job_folder_goes_when_reading_the_result_fails_after_the_child_ran(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    empty = ("{}", {"questions": [], "max_elements": 1}, {})
    ran = runner.run_submission(*empty, sandbox=False, allow_weak=True, probe_only=True)
    assert ran.ended == "probe" and _job_dirs(tmp_path) == []

    def broken(data):
        assert data  # the child ran and answered
        raise ValueError("unreadable")

    monkeypatch.setattr(runner, "_parse_result", broken)
    with pytest.raises(ValueError, match="unreadable"):
        runner.run_submission(*empty, sandbox=False, allow_weak=True, probe_only=True)
    assert _job_dirs(tmp_path) == []


# -- 6. the driver's notebook client counts per instance ---------------------------------------------------------------


def test_capped_clients_count_their_outputs_separately():
    client_class = capped_client_class()
    first = client_class(nbformat.v4.new_notebook(), cap_bytes=8)
    second = client_class(nbformat.v4.new_notebook(), cap_bytes=8)
    for client in (first, second):
        client.reset_execution_trackers()  # what execute() does first,
        client.clear_before_next_output = False  # and executing each cell
    message = {
        "msg_type": "stream",
        "header": {"msg_type": "stream"},
        "parent_header": {"msg_id": "m"},
        "content": {"name": "stdout", "text": "hello"},
    }
    outs: list = []
    # each message counts its text and its JSON data: 5 + len("{}") = 7 bytes
    assert first.output(outs, message, None, 0) is not None  # 7 bytes: kept
    assert first.output(outs, message, None, 0) is None  # 14 bytes > 8: dropped
    assert (first.efflab_kept_bytes, first.efflab_truncated, len(outs)) == (14, True, 1)
    assert (second.efflab_kept_bytes, second.efflab_truncated) == (0, False)
    assert second.output([], message, None, 0) is not None
    assert (second.efflab_kept_bytes, second.efflab_truncated) == (7, False)
    assert not [name for name in vars(client_class) if name.startswith("efflab_")]
