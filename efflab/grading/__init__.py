"""Exercise checks for students and a grader for instructors, on nbformat + nbclient.

One source per lab
------------------
Each lab has one solved **master** notebook, ``labs/masters/<lab_id>.ipynb``, and a grading spec,
``efflab/grading/labs/<lab_id>.py`` (questions, points, public cases, hidden-input generators, reference solutions;
see :mod:`efflab.grading.spec`). ``efflab assign`` turns the master into the **student** notebook ``labs/<lab_id>.ipynb``.
The marking convention in masters:

- ``# BEGIN SOLUTION [message]`` … ``# END SOLUTION`` lines in a code cell enclose a solution. Inside a function body
  the region becomes ``raise NotImplementedError("Exercise N: message")`` at the region's indentation (the cell still
  defines the function; calling it raises). At the top level of a cell it becomes ``name = ...  # Exercise N: message``
  for every name the region assigns, so the cell runs. In Markdown cells ``<!-- BEGIN SOLUTION -->`` …
  ``<!-- END SOLUTION -->`` becomes "*Your answer here.*".
- A cell tagged ``hidden`` is dropped from the student notebook, and so are ``# BEGIN HIDDEN`` … ``# END HIDDEN`` lines.
- Everything else (the managed Colab badge and setup cells, other tags such as ``nbval-ignore-output``) is kept;
  outputs and execution counts are cleared.

Student feedback
----------------
``check("demo.q1", intensity)`` runs the public cases of question ``q1`` of lab ``demo`` and prints ✓ or ✗ with a hint.
It never raises in a student notebook (a stub's ``NotImplementedError`` prints "not attempted yet"), so the notebook
runs top to bottom; with ``EFFLAB_STRICT_CHECK=1`` a failed check raises ``AssertionError`` (CI runs masters so).

Grading
-------
``efflab grade`` (:mod:`efflab.grading.grade`) runs each submission in a sandboxed child process
(:mod:`efflab.grading.runner`) and compares its answers on hidden inputs with the answer key in the grader's process.
"""

from __future__ import annotations

import os
import sys

from efflab.grading.spec import Case, Lab, Question, load_lab, matches
from efflab.style import wrap_text

__all__ = ["Case", "CheckResult", "Lab", "Question", "check", "load_lab"]

STRICT_ENV = "EFFLAB_STRICT_CHECK"  # "1": a failed check raises AssertionError (CI on masters)
GRADING_ENV = "EFFLAB_GRADING"  # "1" inside the grader's sandbox: checks are skipped (and the specs are hidden)


def _not_attempted(value) -> bool:
    return value is Ellipsis or value is None


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class CheckResult:
    """What :func:`check` returns: true when every public case passed, compared and shown like that bool.

    The ✓/✗ line is already printed, so in a notebook a check at the end of a cell adds no ``Out[n]: True`` under it.

    >>> CheckResult(True) == True, bool(CheckResult(False)), repr(CheckResult(True))
    (True, False, 'True')
    """

    __slots__ = ("passed",)

    def __init__(self, passed: bool):
        self.passed = bool(passed)

    def __bool__(self) -> bool:
        return self.passed

    def __eq__(self, other) -> bool:
        if isinstance(other, CheckResult):
            return self.passed == other.passed
        return self.passed == other if isinstance(other, bool) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.passed)

    def __repr__(self) -> str:
        return repr(self.passed)

    def _ipython_display_(self) -> None:  # IPython: the printed line is the whole display
        pass


def check(
    question_id: str, answer, lab: str | None = None, data: dict | None = None, *, namespace: dict | None = None
) -> CheckResult:
    """Run the public cases of a question on a student's function or value and print ✓/✗ with a hint.

    Parameters
    ----------
    question_id : str
        ``"<lab_id>.<question>"`` such as ``"demo.q1"``, or ``"q1"`` together with ``lab="demo"``.
    answer : callable or value
        The student's function (function questions) or computed value (value questions).
    lab : str, optional
        The lab id, when ``question_id`` does not carry it.
    data : dict, optional
        Derived questions only: the recorded measurements by variable name. By default they are read from
        ``namespace`` (the variables the question's ``data`` names), as the grader will.
    namespace : dict, optional
        Derived questions only, when ``data`` is not given: where to read the recorded measurements, such as
        ``namespace=globals()``. By default, the globals of the code that called ``check`` (the notebook's).

    Returns
    -------
    CheckResult
        True (truthy, ``== True``) when every public case passes; a notebook shows only the printed line. Never raises unless ``EFFLAB_STRICT_CHECK=1``, where a failure raises
        ``AssertionError``; inside the grader's sandbox (``EFFLAB_GRADING=1``) it does nothing and returns False.

    Examples
    --------
    >>> import numpy as np
    >>> check("demo.q1", lambda flops, bytes_moved: np.divide(flops, bytes_moved))
    ✓ demo.q1 (intensity): 2/2 public cases pass
    True
    >>> def stub(flops, bytes_moved):
    ...     raise NotImplementedError("Exercise 1: compute the intensity")
    >>> check("q1", stub, lab="demo")
    … demo.q1 (intensity): not attempted yet (Exercise 1: compute the intensity)
    False
    """
    strict = os.environ.get(STRICT_ENV) == "1"
    if os.environ.get(GRADING_ENV) == "1":
        return CheckResult(False)
    if lab is None and "." in question_id:
        lab, question_id = question_id.rsplit(".", 1)
    label = f"{lab}.{question_id}"
    try:
        if lab is None:
            raise ValueError('name the lab: check("lab_id.q1", ...) or check("q1", ..., lab="lab_id")')
        q = load_lab(lab, keys_dir=os.environ.get("EFFLAB_KEYS")).question(question_id)
    except (KeyError, ValueError) as exc:
        return _report(False, f"✗ {label}: cannot check: {exc}", strict)
    label = f"{label} ({q.name})"
    if q.kind == "derived":
        return _check_derived(q, label, answer, data, namespace, strict)
    cases = q.public if q.kind == "function" else (Case(()),)
    if q.kind == "function" and not callable(answer):
        return _report(False, f"✗ {label}: expected a function, got {_short(answer)}", strict)
    if q.kind == "value" and _not_attempted(answer):
        return _report(False, f"… {label}: not attempted yet (set {q.name} to your answer)", strict)
    for number, case in enumerate(cases, 1):
        try:
            got = answer(*case.args) if q.kind == "function" else answer
        except NotImplementedError as exc:
            return _report(False, f"… {label}: not attempted yet ({exc})", strict)
        except Exception as exc:  # a student's bug: report it, keep the notebook running
            msg = f"✗ {label}: case {number} raised {type(exc).__name__}: {exc}. Hint: {q.hint}"
            return _report(False, msg, strict)
        expected = q.reference(*case.args)
        ok, why = matches(got, expected, q)
        if not ok:
            args = ", ".join(_short(a, 40) for a in case.args)
            msg = f"✗ {label}: case {number} ({args}) gave {_short(got)}, expected {_short(expected)}: {why}."
            return _report(False, msg + (f" Hint: {q.hint}" if q.hint else ""), strict)
    if q.kind == "value":
        return _report(True, f"✓ {label}: correct", strict)
    return _report(True, f"✓ {label}: {len(cases)}/{len(cases)} public cases pass", strict)


def _caller_globals(depth: int) -> dict:
    """The globals of a calling frame: the only place the grading package inspects the call stack.

    ``check()`` reads a derived question's recorded data from the notebook's namespace, where the grader will look
    too; in a notebook or script that namespace is the globals of the frame that called ``check``.

    Parameters
    ----------
    depth : int
        How many frames above the function that calls this helper: 0 is that function, 1 its caller, and so on.

    Returns
    -------
    dict
        That frame's ``f_globals``.

    Raises
    ------
    RuntimeError
        When the interpreter has no ``sys._getframe`` or the stack is not that deep; the message says to pass
        ``namespace=globals()`` (or ``data=``) instead.

    Examples
    --------
    >>> _caller_globals(0) is globals()
    True
    """
    getframe = getattr(sys, "_getframe", None)
    try:
        frame = getframe(depth + 1) if getframe is not None else None
    except ValueError:  # the stack is shallower than depth
        frame = None
    if frame is None:
        raise RuntimeError(
            "cannot find the calling notebook's variables (no Python frame to read them from); "
            "pass them explicitly: check(..., namespace=globals()) or check(..., data={...})"
        )
    return frame.f_globals


def _check_derived(q, label: str, answer, data: dict | None, namespace: dict | None, strict: bool) -> CheckResult:
    """A number derived from the student's own recording: recompute it from that recording and compare.

    ``data`` wins over ``namespace``; without either, the recording is read from the globals of ``check``'s caller.
    """
    from efflab.grading.spec import derived_expected

    if _not_attempted(answer):
        return _report(False, f"… {label}: not attempted yet (set {q.name} to your answer)", strict)
    if data is None:
        if namespace is None:
            try:
                namespace = _caller_globals(2)  # 0: here, 1: check(), 2: the notebook that called check()
            except RuntimeError as exc:
                return _report(False, f"✗ {label}: cannot check: {exc}", strict)
        data = {name: namespace[name] for name in q.data if name in namespace}
    missing = [name for name in q.data if name not in data or _not_attempted(data[name])]
    if missing:
        return _report(False, f"… {label}: record your measurement first ({', '.join(missing)} not set)", strict)
    expected, why = derived_expected(q, [data[name] for name in q.data])
    if expected is None:
        return _report(False, f"✗ {label}: {why}." + (f" Hint: {q.hint}" if q.hint else ""), strict)
    ok, why = matches(answer, expected, q)
    if not ok:
        msg = f"✗ {label}: {_short(answer)} does not follow from your recorded {', '.join(q.data)} "
        msg += f"(they give {_short(expected)}): {why}."
        return _report(False, msg + (f" Hint: {q.hint}" if q.hint else ""), strict)
    return _report(True, f"✓ {label}: agrees with your recorded {', '.join(q.data)}", strict)


def _report(ok: bool, message: str, strict: bool) -> CheckResult:
    print(wrap_text(message))
    if strict and not ok:
        raise AssertionError(message)
    return CheckResult(ok)
