"""A lab's grading spec: its questions, points, public cases, hidden-input generators and reference solutions.

A spec is a plain Python module that defines ``LAB = Lab(...)``. Shipped specs live in ``efflab/grading/labs/<lab_id>.py``
(so ``efflab grade --lab lab1_roofline`` works from a pip install); an instructor can keep private ones in a folder
passed as ``--keys DIR`` (``DIR/<lab_id>.py`` then replaces the shipped spec), and tests load one from a path.

Expected values are computed in the grader's own process by calling ``Question.reference`` on the inputs; they are
never written to a file and never handed to the student's process.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Case",
    "Question",
    "Lab",
    "derived_expected",
    "load_lab",
    "lab_source",
    "hidden_cases",
    "matches",
    "to_plain_array",
]

KINDS = ("function", "value", "derived")
# Question fields that only one kind uses; the fields not listed (id, name, points, reference, kind, hint, rtol, atol,
# compare) apply to every kind. Setting one of these on a question of another kind is an error, not silently ignored.
_KIND_ONLY_FIELDS = {
    "public": "function",
    "hidden": "function",
    "partial": "function",
    "time_limit_s": "function",
    "data": "derived",
    "validate_data": "derived",
}


@dataclass(frozen=True)
class Case:
    """One input of a function question: positional arguments (numbers, strings or numeric arrays)."""

    args: tuple = ()


@dataclass(frozen=True)
class Question:
    """One graded question.

    ``kind="function"``: the notebook defines a function called ``name``; it is called on each case and its result
    compared with ``reference(*case.args)``. ``kind="value"``: the notebook defines a variable ``name``; it is compared
    with ``reference()``. Comparison is ``numpy.allclose(answer, expected, rtol, atol)`` with equal shapes (exact
    equality for strings), or ``compare(answer, expected) -> bool`` when given; it always runs in the grader.
    ``kind="derived"``: a number derived from the student's OWN measurement. The notebook defines the variable ``name``
    (the answer) and the variables listed in ``data`` (the recorded measurements it came from); the grader brings
    both back as plain arrays and recomputes ``reference(*data)`` in its own process, after ``validate_data(*data)``
    (returns "" when the recording is plausible, else the reason) accepts them. The answer therefore cannot be a
    constant copied from a classmate: it has to agree with the data recorded in the same notebook.

    ``public``, ``hidden``, ``partial`` and ``time_limit_s`` belong to function questions, ``data`` and
    ``validate_data`` to derived ones: setting one on a question of another kind raises ``ValueError``.
    """

    id: str  # "q1": the column name in the gradebook and the key for check()
    name: str  # the function or variable the student's notebook defines
    points: float
    reference: Callable[..., Any]
    kind: str = "function"
    public: tuple[Case, ...] = ()  # what check() runs in the student's notebook (expected from reference)
    hidden: Callable[[np.random.Generator], Sequence[Case]] | None = None  # fresh inputs for grading
    hint: str = ""
    rtol: float = 1e-6  # relative tolerance: answers computed in another order differ in the last bits
    atol: float = 0.0
    partial: bool = False  # True: points scale with the fraction of hidden cases passed; False: all or nothing
    time_limit_s: float = 10.0  # per call of the student's function on one hidden case
    compare: Callable[[np.ndarray, np.ndarray], bool] | None = None
    data: tuple[str, ...] = ()  # kind="derived": the notebook variables holding the recorded measurements
    validate_data: Callable[..., str] | None = None  # kind="derived": "" if the recording is plausible, else why not

    def __post_init__(self):
        """Validate the question; ``ValueError`` names the first problem.

        Besides the kind, ids, points and the data of derived questions, a field that belongs to another kind (see
        ``_KIND_ONLY_FIELDS``: ``public``, ``hidden``, ``partial`` and ``time_limit_s`` are for function questions,
        ``data`` and ``validate_data`` for derived ones) must keep its default.
        """
        if self.kind not in KINDS:
            raise ValueError(f"Question.kind must be one of {KINDS}; got {self.kind!r}")
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name, owner in _KIND_ONLY_FIELDS.items():
            if owner != self.kind and not _is_default(getattr(self, name), defaults[name]):
                raise ValueError(
                    f"Question {self.id!r}: field {name!r} does not apply to kind={self.kind!r} "
                    f"(only to kind={owner!r}); leave it out"
                )
        if not self.id.isidentifier() or not self.name.isidentifier():
            raise ValueError(f"Question id and name must be identifiers; got {self.id!r}, {self.name!r}")
        if not self.points > 0:
            raise ValueError(f"Question.points must be > 0; got {self.points!r}")
        if self.kind == "derived" and not self.data:
            raise ValueError(f"Question {self.id!r}: kind='derived' needs data=(names of the recorded variables)")
        if not all(str(d).isidentifier() for d in self.data):
            raise ValueError(f"Question {self.id!r}: data must be variable names; got {self.data!r}")


def _is_default(value: Any, default: Any) -> bool:
    """Whether a field's value counts as unset: an empty sequence for a tuple default, else equal to the default.

    Parameters
    ----------
    value : Any
        The field's value.
    default : Any
        The field's declared default.

    Returns
    -------
    bool
        True when the value is the default (or an empty sequence where the default is ``()``).
    """
    if isinstance(default, tuple):
        return value is not None and len(value) == 0
    if default is None:
        return value is None
    return bool(value == default)


@dataclass(frozen=True)
class Lab:
    """A lab: its id (the master's file stem), a title, its questions and the seed of its hidden inputs."""

    lab_id: str
    questions: tuple[Question, ...]
    title: str = ""
    seed: int = 0  # default seed of the hidden inputs; `efflab grade --seed` overrides it
    # Default limits per submission for `efflab grade` (--timeout and --memory-mb override them): what the lab's master
    # needs, measured by benchmarks/bench_grading.py --limits, with headroom (see the instructors' guide).
    timeout_s: float = 120.0
    memory_mb: int = 4096
    source: str = field(default="", compare=False)  # the file the spec was loaded from (hidden from submissions)

    def __post_init__(self):
        if not self.timeout_s > 0:
            raise ValueError(
                f"Lab {self.lab_id!r}: timeout_s must be > 0 seconds (wall clock per submission); got {self.timeout_s!r}"
            )
        if not (isinstance(self.memory_mb, int) and self.memory_mb >= 256):
            raise ValueError(
                f"Lab {self.lab_id!r}: memory_mb must be an int >= 256 (MB of address space); got {self.memory_mb!r}"
            )
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError(f"Lab {self.lab_id!r} has duplicate question ids: {ids}")

    @property
    def max_total(self) -> float:
        """Sum of the points of all questions."""
        return float(sum(q.points for q in self.questions))

    def question(self, question_id: str) -> Question:
        """The question with this id (``KeyError`` listing the known ids otherwise)."""
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(f"lab {self.lab_id!r} has no question {question_id!r}; it has {[q.id for q in self.questions]}")


def _load_path(path: Path) -> Lab:
    name = f"_efflab_spec_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load a lab spec from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling-free introspection want the module registered
    spec.loader.exec_module(module)
    lab = getattr(module, "LAB", None)
    if not isinstance(lab, Lab):
        raise ValueError(f"{path} does not define LAB = Lab(...)")
    return dataclasses.replace(lab, source=str(path.resolve()))


def load_lab(lab: str | Path, keys_dir: str | Path | None = None) -> Lab:
    """Load a lab spec: a path to a ``.py`` file, ``DIR/<lab>.py`` under ``keys_dir``, or a shipped lab id.

    Parameters
    ----------
    lab : str or Path
        ``"lab1_roofline"`` (shipped in ``efflab.grading.labs``), or a path to a spec module.
    keys_dir : str or Path, optional
        A private folder of specs; ``keys_dir/<lab>.py`` wins over the shipped one.

    Examples
    --------
    >>> load_lab("no_such_lab")
    Traceback (most recent call last):
    ...
    ValueError: unknown lab 'no_such_lab': no spec file ... and no module efflab.grading.labs.no_such_lab
    """
    text = str(lab)
    if text.endswith(".py") or Path(text).is_file():
        return _load_path(Path(text))
    if keys_dir is not None:
        private = Path(keys_dir) / f"{text}.py"
        if private.is_file():
            return _load_path(private)
    if not text.isidentifier():
        raise ValueError(f"lab must be a lab id (an identifier) or a path to a spec .py file; got {text!r}")
    try:
        module = importlib.import_module(f"efflab.grading.labs.{text}")
    except ModuleNotFoundError:
        where = f"{Path(keys_dir) / (text + '.py')}" if keys_dir else "(no --keys folder given)"
        raise ValueError(
            f"unknown lab {text!r}: no spec file {where} and no module efflab.grading.labs.{text}"
        ) from None
    found = getattr(module, "LAB", None)
    if not isinstance(found, Lab):
        raise ValueError(f"efflab.grading.labs.{text} does not define LAB = Lab(...)")
    # Not expected: a module that defines LAB was loaded from a file (a namespace package has no LAB, no __file__).
    if module.__file__ is None:
        raise ValueError(f"efflab.grading.labs.{text} has no source file")
    return dataclasses.replace(found, source=str(Path(module.__file__).resolve()))  # keeps every field (limits too)


def lab_source(lab: Lab) -> Path | None:
    """The file the spec came from (its folder is hidden from submissions while they run), if known."""
    return Path(lab.source) if lab.source else None


def to_plain_array(value: Any, what: str = "value") -> np.ndarray:
    """Convert an answer to a plain numpy array (numbers, booleans or strings); refuse objects.

    >>> to_plain_array([1, 2.5]).dtype
    dtype('float64')
    >>> to_plain_array({"a": 1})
    Traceback (most recent call last):
    ...
    TypeError: value must be a number, a string or an array of them; got dict
    """
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and objects whose __array__ raises
        raise TypeError(f"{what} must be a number, a string or an array of them; got {type(value).__name__}") from exc
    if array.dtype.kind not in "biufU":
        raise TypeError(f"{what} must be a number, a string or an array of them; got {type(value).__name__}")
    return array


def hidden_cases(lab: Lab, seed: int | None = None) -> dict[str, list[Case]]:
    """The hidden cases of every function question, drawn from one ``numpy.random.Generator`` per question.

    Each question gets its own stream (``SeedSequence([seed, index])``) so adding a question leaves the others' inputs
    unchanged. Value questions get one case without arguments.

    >>> cases = hidden_cases(load_lab("demo"))
    >>> len(cases["q1"]), cases["q3"]
    (4, [Case(args=())])
    >>> bool((hidden_cases(load_lab("demo"))["q1"][1].args[0] == cases["q1"][1].args[0]).all())  # same seed, same inputs
    True
    """
    seed = lab.seed if seed is None else int(seed)
    cases = {}
    for index, q in enumerate(lab.questions):
        if q.kind in ("value", "derived") or q.hidden is None:
            cases[q.id] = [Case(())] if q.kind in ("value", "derived") else list(q.public)
            continue
        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        drawn = [c if isinstance(c, Case) else Case(tuple(c)) for c in q.hidden(rng)]
        if not drawn:
            raise ValueError(f"question {q.id!r}: its hidden generator returned no cases")
        cases[q.id] = drawn
    return cases


def matches(answer: Any, expected: Any, question: Question) -> tuple[bool, str]:
    """Compare an answer with the expected value the way the grader does; return ``(ok, reason)``.

    Numbers: same shape (a scalar equals a size-1 array) and ``numpy.allclose(answer, expected, rtol, atol)``, NaN never
    equal. Strings: exact equality. ``question.compare`` replaces both when given.

    >>> q = Question("q1", "f", 1, reference=abs, rtol=1e-6)
    >>> matches([1.0, 2.0], [1.0, 2.0000001], q)
    (True, 'ok')
    >>> matches([1.0, 2.0], [1.0, 2.5], q)[0]
    False
    """
    try:
        got = to_plain_array(answer, "the answer")
    except TypeError as exc:
        return False, str(exc)
    want = np.asarray(expected)
    if question.compare is not None:
        ok = bool(question.compare(got, want))
        return ok, "ok" if ok else "custom comparison failed"
    if got.shape != want.shape and not (got.size == 1 and want.size == 1):
        return False, f"shape {got.shape} but expected shape {want.shape}"
    if want.dtype.kind == "U" or got.dtype.kind == "U":
        ok = got.dtype.kind == want.dtype.kind and bool(np.all(got.reshape(want.shape) == want))
        return ok, "ok" if ok else "different text"
    got = got.reshape(want.shape).astype(float)
    if not np.all(np.isfinite(got)):
        return False, "contains NaN or infinity"
    ok = bool(np.allclose(got, want.astype(float), rtol=question.rtol, atol=question.atol))
    return ok, "ok" if ok else f"not within rtol={question.rtol:g}, atol={question.atol:g} of the expected value"


def derived_expected(question: Question, data: Sequence[Any]) -> tuple[Any, str]:
    """Recompute a derived answer from the recorded data: ``(expected, "")``, or ``(None, reason)`` if unusable.

    >>> q = Question("q9", "mean_time_s", 1, reference=lambda t: float(np.mean(t)), kind="derived", data=("times_s",),
    ...              validate_data=lambda t: "" if np.size(t) >= 3 else "record at least 3 times")
    >>> derived_expected(q, [np.array([1.0, 2.0, 3.0])])
    (2.0, '')
    >>> derived_expected(q, [np.array([1.0])])
    (None, 'implausible recorded data: record at least 3 times')
    """
    try:
        arrays = [to_plain_array(d, f"recorded {name}") for d, name in zip(data, question.data, strict=True)]
        if question.validate_data is not None:
            reason = question.validate_data(*arrays)
            if reason:
                return None, f"implausible recorded data: {reason}"
        return question.reference(*arrays), ""
    except Exception as exc:  # the student's data, not the grader, is at fault: report it
        return None, f"recorded data unusable ({type(exc).__name__}: {str(exc)[:120]})"
