"""Grade submissions: run each in the sandboxed runner, compare its plain-data answers with the key, write a gradebook.

The answer key is computed here, in the grader's process, by calling each question's reference on its hidden inputs;
it is never written to disk and never sent to a submission. The gradebook CSV has one row per submission::

    file, student, <one column per question>, total, max_total, status, flags, protections, wall_s, feedback

``status`` is ``graded``, ``timeout``, ``memory``, ``crashed``, ``invalid`` (nothing was run: not a regular file, too
large, not a notebook), ``refused`` (the sandbox could not verify a required protection) or ``runner-error`` (the
grader itself failed on this file); ``feedback`` names a Markdown file per submission in a ``feedback/`` folder next to
the CSV. Nothing one file does stops the others from being graded, and the CSV is written whole or not at all.
``--shard K/N`` grades every N-th file of the sorted, de-duplicated list, starting at the K-th (1-based), and
:func:`merge` joins shard gradebooks.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import stat
import tempfile
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from efflab.grading.runner import Limits, RunResult, run_submission
from efflab.grading.spec import Lab, derived_expected, hidden_cases, lab_source, matches, to_plain_array

__all__ = [
    "Row",
    "STATUSES",
    "prepare",
    "student_name",
    "shard",
    "grade_submission",
    "grade",
    "merge",
    "write_gradebook",
    "claimed_student",
    "csv_safe",
    "unique_paths",
    "plan_key",
    "data_key",
    "parse_plan_key",
    "PlanKey",
]

STATUSES = ("graded", "timeout", "memory", "crashed", "invalid", "refused", "runner-error")
# A submitted lab notebook with its plots is 0.1-0.2 MB (the masters with outputs: 74-168 kB) and at most ~200 cells;
# anything far larger is refused before it is parsed (a 47 MB, 427k-cell notebook cost nbformat 77 s and 2.2 GB).
_MAX_NOTEBOOK_BYTES = 16 << 20
_MAX_CELLS = 2000
_MAX_CODE_BYTES = 2 << 20  # all code cells together
_MAX_ELEMENTS = 10_000_000  # largest answer array the harness brings back


@dataclass(frozen=True, kw_only=True)
class Row:
    """One gradebook row (built with keyword arguments only: eleven fields are too many to keep in order)."""

    file: str
    student: str
    points: dict[str, float]
    total: float
    max_total: float
    status: str
    flags: tuple[str, ...] = ()
    protections: tuple[str, ...] = ()
    wall_s: float = 0.0
    feedback: str = ""  # Markdown text (written to the feedback folder)
    details: dict = field(default_factory=dict, compare=False)


# Plan keys: the names of the hidden inputs (inputs.npz), of the answers the harness brings back and of the expected
# values (outputs.npz, Key.expected), and of the recorded data of derived questions. Built here and nowhere else: the
# plan hands every key to the harness, which never builds one. The separator "__" cannot be told apart from a question
# id containing "__" or ending in "_", so plan_key refuses such ids and parse_plan_key refuses keys that would need one.
_KEY_SEPARATOR = "__"
_DATA_TAG = "data"


class PlanKey(NamedTuple):
    """A parsed plan key: the question, and the case and argument indices or the recorded data's variable name."""

    question_id: str
    case: int | None = None  # index of the hidden case (None for a data key)
    arg: int | None = None  # index of the argument within the case (None for an answer key)
    data: str | None = None  # kind="derived": the notebook variable holding the recorded data


def _checked_question_id(question_id: str) -> str:
    """Return ``question_id`` if it can start a plan key unambiguously, else raise ``ValueError`` saying why.

    Parameters
    ----------
    question_id : str
        A question id (an identifier).

    Returns
    -------
    str
        ``question_id`` unchanged.
    """
    if not (isinstance(question_id, str) and question_id.isidentifier()):
        raise ValueError(f"a question id in a plan key must be an identifier; got {question_id!r}")
    if _KEY_SEPARATOR in question_id or question_id.endswith("_"):
        raise ValueError(
            f"question id {question_id!r} cannot be graded: ids must not contain {_KEY_SEPARATOR!r} nor end in '_' "
            f"(the grader's plan keys join the id and the case index with {_KEY_SEPARATOR!r})"
        )
    return question_id


def _index_text(index: int, what: str) -> str:
    """The decimal text of a non-negative index.

    Parameters
    ----------
    index : int
        A case or argument index (``bool`` is refused).
    what : str
        Its name, for the error message.

    Returns
    -------
    str
        ``str(index)``.

    Raises
    ------
    ValueError
        For a negative or non-integer index.
    """
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"{what} must be an int >= 0; got {index!r}")
    return str(int(index))


def plan_key(question_id: str, case: int, arg: int | None = None) -> str:
    """The plan key of a hidden case's answer (``arg=None``) or of one of its arguments.

    Parameters
    ----------
    question_id : str
        The question's id: an identifier without ``"__"`` that does not end in ``"_"``.
    case : int
        Index of the hidden case (0-based).
    arg : int, optional
        Index of the argument within the case; ``None`` names the case's answer (and its expected value).

    Returns
    -------
    str
        ``"<id>__<case>"`` or ``"<id>__<case>__<arg>"``.

    Raises
    ------
    ValueError
        For an id that would make the key ambiguous, or a negative or non-integer index.

    Examples
    --------
    >>> plan_key("q1", 0), plan_key("q1", 2, 1), plan_key("q_2b", 3)
    ('q1__0', 'q1__2__1', 'q_2b__3')
    >>> parse_plan_key(plan_key("q_2b", 3, 1))
    PlanKey(question_id='q_2b', case=3, arg=1, data=None)
    """
    parts = [_checked_question_id(question_id), _index_text(case, "case")]
    if arg is not None:
        parts.append(_index_text(arg, "arg"))
    return _KEY_SEPARATOR.join(parts)


def data_key(question_id: str, data_name: str) -> str:
    """The plan key of a derived question's recorded data: the notebook variable ``data_name``.

    Parameters
    ----------
    question_id : str
        The question's id: an identifier without ``"__"`` that does not end in ``"_"``.
    data_name : str
        The notebook variable holding the recorded data (any identifier).

    Returns
    -------
    str
        ``"<id>__data__<data_name>"``.

    Examples
    --------
    >>> data_key("q3", "time_s")
    'q3__data__time_s'
    >>> parse_plan_key("q3__data__time_s")
    PlanKey(question_id='q3', case=None, arg=None, data='time_s')
    """
    if not (isinstance(data_name, str) and data_name.isidentifier()):
        raise ValueError(f"data_name must be a variable name; got {data_name!r}")
    return _KEY_SEPARATOR.join((_checked_question_id(question_id), _DATA_TAG, data_name))


def parse_plan_key(key: str) -> PlanKey:
    """Split a key made by :func:`plan_key` or :func:`data_key` back into its parts (their exact inverse).

    Parameters
    ----------
    key : str
        A plan key.

    Returns
    -------
    PlanKey
        ``(question_id, case, arg, data)``; the fields the key does not carry are ``None``.

    Raises
    ------
    ValueError
        For any text neither function makes, including keys whose question id would contain ``"__"``.

    Examples
    --------
    >>> parse_plan_key("q1__0__1")
    PlanKey(question_id='q1', case=0, arg=1, data=None)
    >>> parse_plan_key("q__1__0__1")
    Traceback (most recent call last):
    ...
    ValueError: not a plan key: 'q__1__0__1'
    """
    head, separator, rest = key.partition(_KEY_SEPARATOR) if isinstance(key, str) else ("", "", "")
    try:
        question_id = _checked_question_id(head)
    except ValueError:
        raise ValueError(f"not a plan key: {key!r}") from None
    if separator and rest.startswith(_DATA_TAG + _KEY_SEPARATOR):
        name = rest[len(_DATA_TAG + _KEY_SEPARATOR) :]
        if name.isidentifier():
            return PlanKey(question_id, data=name)
    indices = rest.split(_KEY_SEPARATOR) if separator else []
    if 1 <= len(indices) <= 2 and all(i.isascii() and i.isdigit() and str(int(i)) == i for i in indices):
        numbers = [int(i) for i in indices]
        return PlanKey(question_id, case=numbers[0], arg=numbers[1] if len(numbers) == 2 else None)
    raise ValueError(f"not a plan key: {key!r}")


@dataclass(frozen=True)
class Key:
    """Hidden inputs (sent to the child), the plan naming them, and expected values (kept here)."""

    lab: Lab
    plan: dict
    inputs: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]


def prepare(lab: Lab, seed: int | None = None) -> Key:
    """Draw the hidden inputs and compute the expected values with the reference solutions, in this process.

    Only ``plan`` and ``inputs`` are handed to a submission; ``expected`` stays here.

    >>> from efflab.grading.spec import load_lab
    >>> key = prepare(load_lab("demo"))
    >>> sorted(key.expected)[:2], key.plan["questions"][0]["cases"][0]
    (['q1__0', 'q1__1'], {'key': 'q1__0', 'args': ['q1__0__0', 'q1__0__1'], 'scalar': [True, True]})
    """
    cases = hidden_cases(lab, seed)
    inputs, expected, questions = {}, {}, []
    for q in lab.questions:
        planned = []
        for i, case in enumerate(cases[q.id]):
            names, scalars = [], []
            for j, arg in enumerate(case.args):
                name = plan_key(q.id, i, j)
                inputs[name] = to_plain_array(arg, f"{q.id} hidden case {i} argument {j}")
                names.append(name)
                scalars.append(np.ndim(arg) == 0)
            planned.append({"key": plan_key(q.id, i), "args": names, "scalar": scalars})
            if q.kind != "derived":  # derived answers are recomputed from the data the submission recorded
                expected[plan_key(q.id, i)] = np.asarray(q.reference(*case.args))
        questions.append(
            {
                "id": q.id,
                "name": q.name,
                "kind": q.kind,
                "cases": planned,
                "data": list(q.data),
                "data_keys": [data_key(q.id, name) for name in q.data],
                "time_limit_s": q.time_limit_s,
            }
        )
    return Key(lab, {"questions": questions, "max_elements": _MAX_ELEMENTS}, inputs, expected)


def claimed_student(metadata) -> str:
    """The name a notebook's metadata claims (``metadata["efflab"]["student"]``), or "" (anything malformed is "").

    >>> claimed_student({"efflab": {"student": " Eve "}}), claimed_student({"efflab": "x"}), claimed_student(None)
    ('Eve', '', '')
    """
    section = metadata.get("efflab") if isinstance(metadata, dict) else None
    given = section.get("student") if isinstance(section, dict) else None
    return given.strip()[:100] if isinstance(given, str) else ""


def _same_person(a: str, b: str) -> bool:
    def norm(text):
        return re.sub(r"[^0-9a-z]+", "", text.lower())

    return bool(norm(a)) and (norm(a) == norm(b) or norm(a) in norm(b) or norm(b) in norm(a))


def student_name(path: str | Path, lab_id: str = "", metadata: dict | None = None) -> str:
    """Who submitted, from the file or folder name (which the instructor's LMS download sets), without Colab's
    decorations. The notebook's own metadata is the student's claim: it names the row only when the file name says
    nothing (a bare ``<lab>.ipynb`` in a shared folder); otherwise a different claim is flagged by the grader.

    >>> student_name("submissions/Copy of alice_demo (2).ipynb", "demo")
    'alice'
    >>> student_name("bob/Copy of demo.ipynb", "demo")
    'bob'
    >>> student_name("eve/demo.ipynb", "demo", {"efflab": {"student": "Mallory"}})
    'eve'
    """
    path = Path(path)
    stem = path.name.removesuffix(".ipynb")
    stem = re.sub(r"^(Copy of )+", "", stem)
    stem = re.sub(r"\s*\(\d+\)$", "", stem)
    if lab_id:
        stem = stem.replace(lab_id, "")
    stem = stem.strip(" _-.")
    return stem or path.parent.name or claimed_student(metadata) or "unknown"


def shard(paths, spec: str) -> list[Path]:
    """The K-th of N deterministic slices (``spec="K/N"``, K from 1): every N-th path of the sorted list.

    >>> [p.name for p in shard(["c.ipynb", "a.ipynb", "b.ipynb", "d.ipynb"], "2/2")]
    ['b.ipynb', 'd.ipynb']
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError(f"--shard must be K/N with 1 <= K <= N (e.g. 3/10); got {spec!r}")
    k, n = int(match[1]), int(match[2])
    ordered = sorted(unique_paths(paths), key=Path.as_posix)
    return [p for i, p in enumerate(ordered) if i % n == k - 1]


def unique_paths(paths) -> list[Path]:
    """``paths`` without repeats of one file (``a.ipynb``, ``./a.ipynb``, ``sub/../a.ipynb``): first spelling kept.

    >>> [p.as_posix() for p in unique_paths(["a.ipynb", "./a.ipynb", "b/../a.ipynb", "b.ipynb"])]
    ['a.ipynb', 'b.ipynb']
    """
    seen, kept = set(), []
    for path in map(Path, paths):
        where = os.path.normpath(os.path.join(os.path.realpath(path.parent), path.name))
        if where not in seen:
            seen.add(where)
            kept.append(path)
    return kept


def _open_regular(path: Path) -> bytes:
    """The bytes of a regular file of at most ``_MAX_NOTEBOOK_BYTES``; ``ValueError`` saying why not (never its text).

    Links, FIFOs, devices and folders are refused without being opened for reading (``lstat``, then ``O_NOFOLLOW`` and
    ``O_NONBLOCK``, then ``fstat`` on what was opened), so a link to a master, ``/dev/zero`` or a FIFO costs nothing.
    """
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    kinds = {
        stat.S_ISLNK: "a symbolic link",
        stat.S_ISDIR: "a folder",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISSOCK: "a socket",
    }
    kinds.update({stat.S_ISCHR: "a device", stat.S_ISBLK: "a device"})
    for test, kind in kinds.items():
        if test(info.st_mode):
            raise ValueError(f"not a regular file ({kind})")
    if info.st_size > _MAX_NOTEBOOK_BYTES:
        raise ValueError(f"larger than {_MAX_NOTEBOOK_BYTES >> 20} MB")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ValueError(f"cannot be opened ({exc.strerror or type(exc).__name__})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = handle.read(_MAX_NOTEBOOK_BYTES + 1)
    if len(data) > _MAX_NOTEBOOK_BYTES:
        raise ValueError(f"larger than {_MAX_NOTEBOOK_BYTES >> 20} MB")
    return data


def _read(path: Path, lab_id: str) -> tuple[str | None, dict, list[str], str]:
    """(clean notebook text or None, metadata, flags, reason if invalid). Only code cells' text goes to the sandbox.

    The notebook is read as plain JSON with size and cell-count caps before anything else; reasons never quote the
    file's content (a link to a secret must not be echoed into feedback).
    """
    try:
        data = _open_regular(path)
        try:
            nb = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError("not UTF-8 text") from None
        except RecursionError:
            raise ValueError("not a notebook (JSON nested too deeply)") from None
        except ValueError:
            raise ValueError("not a notebook (not valid JSON)") from None
        cells = nb.get("cells") if isinstance(nb, dict) else None
        if not isinstance(cells, list):
            raise ValueError("not a notebook (no list of cells)")
        if len(cells) > _MAX_CELLS:
            raise ValueError(f"more than {_MAX_CELLS} cells")
        sources = []
        for cell in cells:
            if not isinstance(cell, dict):
                raise ValueError("not a notebook (a cell is not an object)")
            if cell.get("cell_type") != "code":
                continue
            source = cell.get("source", "")
            if isinstance(source, list) and all(isinstance(line, str) for line in source):
                source = "".join(source)
            if not isinstance(source, str):
                raise ValueError("a code cell's source is not text")
            sources.append(source)
        if sum(len(s) for s in sources) > _MAX_CODE_BYTES:
            raise ValueError(f"more than {_MAX_CODE_BYTES >> 20} MB of code")
    except ValueError as exc:
        return None, {}, [], str(exc)
    found = nb.get("metadata")
    metadata: dict = found if isinstance(found, dict) else {}
    flags = []
    if "efflab" in metadata and not isinstance(metadata["efflab"], dict):
        flags.append("metadata-malformed")
    if not any(s.strip() for s in sources):
        return None, metadata, flags, "no code"
    found = metadata.get("efflab")
    section: dict = found if isinstance(found, dict) else {}
    claimed = section.get("lab")
    if isinstance(claimed, str) and claimed != lab_id:
        flags.append(f"lab={claimed[:40]}")
    clean = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": s,
                "id": f"c{number}",
            }
            for number, s in enumerate(sources)
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(clean), metadata, flags, ""


def _score(key: Key, run: RunResult) -> tuple[dict[str, float], list[str]]:
    points, lines = {}, []
    for q, planned in zip(key.lab.questions, key.plan["questions"], strict=True):
        reported = run.report.get(q.id)
        statuses: list = reported if isinstance(reported, list) else []
        passed, notes = 0, []
        for i in range(len(planned["cases"])):
            status = str(statuses[i]) if i < len(statuses) else "no result"
            got = run.outputs.get(plan_key(q.id, i))
            if q.kind == "derived" and status == "ok" and got is not None:
                data = [run.outputs.get(data_key(q.id, name)) for name in q.data]
                expected, why = derived_expected(q, data) if all(d is not None for d in data) else (None, "no data")
                if expected is None:
                    status, got = why, None
            else:
                expected = key.expected.get(plan_key(q.id, i))
            if status == "ok" and got is not None:
                ok, why = matches(got, expected, q)
                passed += ok
                status = "pass" if ok else why
            notes.append(status)
        n = len(planned["cases"])
        earned = q.points * passed / n if q.partial else (q.points if passed == n else 0.0)
        points[q.id] = round(float(earned), 4)
        summary = f"{passed}/{n} hidden cases pass" if q.kind == "function" else ("correct" if passed else "")
        if q.kind == "derived" and passed:
            summary = "agrees with the recorded data"
        problem = next((note for note in notes if note != "pass"), "")
        result = "; ".join(part for part in (summary, problem and f"first problem: {problem}") if part)
        lines.append(f"| {q.id} (`{q.name}`) | {points[q.id]:g} | {q.points:g} | {result} |")
    return points, lines


def _status(run: RunResult) -> str:
    memory = any(e.get("ename") == "MemoryError" for e in run.errors) or any(
        "MemoryError" in str(s) for statuses in run.report.values() if isinstance(statuses, list) for s in statuses
    )
    if run.ended == "refused":
        return "refused"
    if run.ended in ("timeout", "cell timeout"):
        return "timeout"
    if memory:
        return "memory"
    if run.ended != "finished":
        return "crashed"
    return "graded"


def _zero_row(path: Path, student: str, lab: Lab, status: str, flags, why: str, protections=()) -> Row:
    feedback = f"# {lab.lab_id}: {student}\n\nStatus: **{status}**: {why}. Score 0/{lab.max_total:g}.\n"
    zero = {q.id: 0.0 for q in lab.questions}
    return Row(
        file=path.as_posix(),
        student=student,
        points=zero,
        total=0.0,
        max_total=lab.max_total,
        status=status,
        flags=tuple(flags),
        protections=tuple(protections),
        wall_s=0.0,
        feedback=feedback,
    )


def grade_submission(
    path: str | Path, key: Key, limits: Limits | None = None, hide=(), sandbox=None, allow_weak: bool = False
) -> Row:
    """Grade one notebook file; every outcome, however hostile the notebook, is a :class:`Row`."""
    path = Path(path)
    lab = key.lab
    limits = limits or Limits()
    text, metadata, flags, reason = _read(path, lab.lab_id)
    real = Path(os.path.realpath(path))
    linked = real != Path(os.path.abspath(path))  # a folder on the way is a link (as a zip or tar can make)
    if text is not None and linked and any(real == Path(h) or Path(h) in real.parents for h in hide):
        text, reason = None, "reached through a linked folder into a folder hidden from submissions"
    try:
        if os.lstat(path).st_nlink > 1:
            flags.append("hard-link")  # the same file under another name too: worth a look
    except OSError:
        pass
    student = student_name(path, lab.lab_id, metadata)
    claimed = claimed_student(metadata)
    if claimed and not _same_person(claimed, student):
        flags.append("metadata-names=" + re.sub(r"[^\w .@-]+", "_", claimed)[:40])
    if path.name.startswith("Copy of "):
        flags.append("colab-copy")
    if text is None:
        return _zero_row(
            path, student, lab, "invalid", (*flags, f"invalid:{reason[:60]}"), f"{reason}; nothing was run"
        )
    run = run_submission(text, key.plan, key.inputs, limits, hide=hide, sandbox=sandbox, allow_weak=allow_weak)
    if run.ended == "refused":
        why = "the sandbox could not verify " + ", ".join(run.missing) + "; the notebook was not run"
        flags.append("sandbox-incomplete:" + "+".join(run.missing))
        return _zero_row(path, student, lab, "refused", flags, why, run.protections)
    points, lines = _score(key, run)
    status = _status(run)
    if run.errors:
        flags.append(f"cell-errors={len(run.errors)}")
    if run.output_truncated:
        flags.append("output-truncated")
    if run.notes:
        flags.append("outputs-refused")
    if run.missing:
        flags.append("weak-isolation")
    if run.ended not in ("finished", "timeout"):
        flags.append(run.ended.split(":")[0].replace(" ", "-"))
    total = round(sum(points.values()), 4)
    errors = "\n".join(f"- code cell {e.get('cell')}: {e.get('ename')}: {e.get('evalue')}" for e in run.errors[:10])
    feedback = (
        f"# {lab.lab_id}: {student}\n\nStatus: **{status}** ({run.ended}, {run.wall_s:.1f} s). "
        f"Score **{total:g}/{lab.max_total:g}**.\n\n| question | points | max | result |\n|---|---|---|---|\n"
        + "\n".join(lines)
        + (f"\n\nErrors while running the notebook top to bottom:\n{errors}\n" if errors else "\n")
        + ("\nOutput beyond the cap was dropped.\n" if run.output_truncated else "")
        + (f"\nYour answers could not be read back: {run.notes[0]}.\n" if run.notes else "")
    )
    return Row(
        file=path.as_posix(),
        student=student,
        points=points,
        total=total,
        max_total=lab.max_total,
        status=status,
        flags=tuple(flags),
        protections=run.protections,
        wall_s=round(run.wall_s, 2),
        feedback=feedback,
        details={"report": run.report, "ended": run.ended, "resources": run.resources},
    )


def default_hide(lab: Lab, keys_dir: str | Path | None = None, extra=()) -> tuple[str, ...]:
    """Paths a submission must not see, resolved from where things are, not from the working directory: the spec's
    folder, the keys folder, the course's ``labs/masters`` and ``.git`` beside the efflab package (a checkout) and in
    the working directory, and ``extra``."""
    paths = [str(p) for p in extra]
    source = lab_source(lab)
    if source is not None:
        paths.append(str(source.parent))
    if keys_dir is not None:
        paths.append(str(keys_dir))
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        for secret in (root / "labs" / "masters", root / ".git"):
            if secret.exists():
                paths.append(str(secret))
    return tuple(dict.fromkeys(str(Path(p).resolve()) for p in paths))


def grade(
    paths, key: Key, limits: Limits | None = None, jobs: int = 1, hide=(), sandbox=None, allow_weak: bool = False
) -> list[Row]:
    """Grade many submissions, ``jobs`` at a time (threads driving sandboxes); one row per distinct file, by file.

    A file named twice (``a.ipynb`` and ``./a.ipynb``) is graded once, as with ``--shard``. Whatever goes wrong with one
    file, including the grader's own failure on it, becomes that file's ``runner-error`` row; the others are graded.
    """
    if int(jobs) < 1:
        raise ValueError(f"jobs must be >= 1 (parallel sandboxes); got {jobs!r}")

    def one(path: Path) -> Row:
        try:
            return grade_submission(path, key, limits, hide, sandbox, allow_weak)
        except Exception as exc:  # the grader's own failure on this file: its row says so, the run goes on
            where = traceback.extract_tb(exc.__traceback__)[-1]
            why = f"the grader failed on this file ({type(exc).__name__} at {Path(where.filename).name}:{where.lineno})"
            return _zero_row(path, student_name(path, key.lab.lab_id), key.lab, "runner-error", ("runner-error",), why)

    with ThreadPoolExecutor(max_workers=int(jobs)) as pool:
        rows = list(pool.map(one, unique_paths(paths)))
    return sorted(rows, key=lambda r: r.file)


def _columns(question_ids) -> list[str]:
    return [
        "file",
        "student",
        *question_ids,
        "total",
        "max_total",
        "status",
        "flags",
        "protections",
        "wall_s",
        "feedback",
    ]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_safe(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (OWASP's CSV-injection rule: a leading ``'``).

    >>> csv_safe("=1+2"), csv_safe("@SUM(A1)"), csv_safe("alice")
    ("'=1+2", "'@SUM(A1)", 'alice')
    """
    return "'" + text if text.startswith(_FORMULA_START) else text


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers see the old file or the new one."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_gradebook(rows: list[Row], out: str | Path, lab: Lab) -> Path:
    """Write the CSV and one Markdown feedback file per row into ``feedback/`` next to it.

    Text cells are escaped against spreadsheet formula injection (:func:`csv_safe`); every file is written atomically.
    """
    import io

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = out.parent / "feedback"
    folder.mkdir(exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(q.id for q in lab.questions))
    writer.writeheader()
    for row in rows:
        digest = hashlib.sha256(row.file.encode()).hexdigest()[:8]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", row.student).lstrip(".")[:60] + f"-{digest}.md"
        _write_atomic(folder / name, row.feedback)
        writer.writerow(
            {
                "file": csv_safe(row.file),
                "student": csv_safe(row.student),
                **{k: f"{v:g}" for k, v in row.points.items()},
                "total": f"{row.total:g}",
                "max_total": f"{row.max_total:g}",
                "status": row.status,
                "flags": csv_safe(";".join(row.flags)),
                "protections": ";".join(row.protections),
                "wall_s": row.wall_s,
                "feedback": f"feedback/{name}",
            }
        )
    _write_atomic(out, buffer.getvalue())
    return out


def merge(csv_paths, out: str | Path) -> int:
    """Join shard gradebooks (same columns) into one, sorted by file.

    A file in two gradebooks with the same row (a shard graded twice) is kept once; with different rows it is an error
    that names both gradebooks and the columns that differ, so the instructor can choose. Returns the rows written.
    """
    import io

    header: Sequence[str] | None = None
    rows: dict[str, dict[str, str]] = {}  # file -> its row
    origin: dict[str, str] = {}  # file -> the gradebook its row came from
    for path in csv_paths:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames
            if header is None:
                header = columns
            elif columns != header:
                raise ValueError(f"{path} has columns {columns}, expected {header} (another lab?)")
            if columns is None:  # an empty file: no header line, so no rows either
                continue
            for row in reader:
                if row["file"] in rows:
                    differ = [c for c in columns if c not in ("wall_s",) and rows[row["file"]][c] != row[c]]
                    if differ:
                        raise ValueError(
                            f"{row['file']} is in {origin[row['file']]} and {path} with different {', '.join(differ)} "
                            "(graded twice with different results: keep one gradebook's row, or regrade that file)"
                        )
                    continue
                rows[row["file"]] = row
                origin[row["file"]] = str(path)
    if header is None:
        raise ValueError("no gradebooks to merge")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header)
    writer.writeheader()
    writer.writerows(rows[f] for f in sorted(rows))
    _write_atomic(Path(out), buffer.getvalue())
    return len(rows)


def summary(rows: list[Row]) -> str:
    """One line per status with counts, and the mean total, for the terminal."""
    counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
    mean = float(np.mean([r.total for r in rows])) if rows else 0.0
    return (
        f"{len(rows)} submission(s): " + json.dumps({k: v for k, v in counts.items() if v}) + f"; mean total {mean:.2f}"
    )
