"""Grade submissions: run each in the sandboxed runner, compare its plain-data answers with the key, write a gradebook.

The answer key is computed here, in the grader's process, by calling each question's reference on its hidden inputs;
it is never written to disk and never sent to a submission. The gradebook CSV has one row per submission::

    file, student, <one column per question>, total, max_total, status, flags, protections, wall_s, feedback

``status`` is ``graded``, ``timeout``, ``memory``, ``crashed`` or ``invalid``; ``feedback`` names a Markdown file per
submission in a ``feedback/`` folder next to the CSV. ``--shard K/N`` grades every N-th file of the sorted list,
starting at the K-th (1-based), and :func:`merge` joins shard gradebooks.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

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
]

STATUSES = ("graded", "timeout", "memory", "crashed", "invalid")
_MAX_NOTEBOOK_BYTES = 50 << 20  # a lab notebook with plots is a few MB; anything far larger is not a submission
_MAX_ELEMENTS = 10_000_000  # largest answer array the harness brings back


@dataclass(frozen=True)
class Row:
    """One gradebook row."""

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
    (['q1__0', 'q1__1'], {'args': ['q1__0__0', 'q1__0__1'], 'scalar': [True, True]})
    """
    cases = hidden_cases(lab, seed)
    inputs, expected, questions = {}, {}, []
    for q in lab.questions:
        planned = []
        for i, case in enumerate(cases[q.id]):
            names, scalars = [], []
            for j, arg in enumerate(case.args):
                name = f"{q.id}__{i}__{j}"
                inputs[name] = to_plain_array(arg, f"{q.id} hidden case {i} argument {j}")
                names.append(name)
                scalars.append(np.ndim(arg) == 0)
            planned.append({"args": names, "scalar": scalars})
            if q.kind != "derived":  # derived answers are recomputed from the data the submission recorded
                expected[f"{q.id}__{i}"] = np.asarray(q.reference(*case.args))
        questions.append(
            {
                "id": q.id,
                "name": q.name,
                "kind": q.kind,
                "cases": planned,
                "data": list(q.data),
                "time_limit_s": q.time_limit_s,
            }
        )
    return Key(lab, {"questions": questions, "max_elements": _MAX_ELEMENTS}, inputs, expected)


def student_name(path: str | Path, lab_id: str = "", metadata: dict | None = None) -> str:
    """Who submitted: ``metadata["efflab"]["student"]`` if set, else the file name without Colab's decorations.

    >>> student_name("submissions/Copy of alice_demo (2).ipynb", "demo")
    'alice'
    >>> student_name("bob/Copy of demo.ipynb", "demo")
    'bob'
    """
    given = ((metadata or {}).get("efflab") or {}).get("student")
    if isinstance(given, str) and given.strip():
        return given.strip()
    path = Path(path)
    stem = path.name.removesuffix(".ipynb")
    stem = re.sub(r"^(Copy of )+", "", stem)
    stem = re.sub(r"\s*\(\d+\)$", "", stem)
    if lab_id:
        stem = stem.replace(lab_id, "")
    stem = stem.strip(" _-.")
    return stem or path.parent.name or "unknown"


def shard(paths, spec: str) -> list[Path]:
    """The K-th of N deterministic slices (``spec="K/N"``, K from 1): every N-th path of the sorted list.

    >>> [p.name for p in shard(["c.ipynb", "a.ipynb", "b.ipynb", "d.ipynb"], "2/2")]
    ['b.ipynb', 'd.ipynb']
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError(f"--shard must be K/N with 1 <= K <= N (e.g. 3/10); got {spec!r}")
    k, n = int(match[1]), int(match[2])
    ordered = sorted({Path(p).as_posix() for p in paths})
    return [Path(p) for i, p in enumerate(ordered) if i % n == k - 1]


def _read(path: Path, lab_id: str) -> tuple[str | None, dict, list[str], str]:
    """(clean notebook text or None, metadata, flags, reason if invalid). Only code cells' text goes to the child."""
    import nbformat

    try:
        if path.stat().st_size > _MAX_NOTEBOOK_BYTES:
            return None, {}, [], f"larger than {_MAX_NOTEBOOK_BYTES >> 20} MB"
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        sources = [c.get("source", "") for c in nb.get("cells", []) if c.get("cell_type") == "code"]
        sources = ["".join(s) if isinstance(s, list) else s for s in sources]
        if not all(isinstance(s, str) for s in sources):
            return None, {}, [], "a code cell's source is not text"
    except Exception as exc:  # JSON errors, wrong nbformat, unreadable file: one invalid row, never a crash
        return None, {}, [], f"not a readable notebook ({type(exc).__name__}: {str(exc)[:120]})"
    metadata = dict(nb.get("metadata") or {})
    if not any(s.strip() for s in sources):
        return None, metadata, [], "no code"
    flags = []
    claimed = (metadata.get("efflab") or {}).get("lab")
    if isinstance(claimed, str) and claimed != lab_id:
        flags.append(f"lab={claimed}")
    clean = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    return nbformat.writes(clean), metadata, flags, ""


def _score(key: Key, run: RunResult) -> tuple[dict[str, float], list[str]]:
    points, lines = {}, []
    for q, planned in zip(key.lab.questions, key.plan["questions"], strict=True):
        statuses = run.report.get(q.id) if isinstance(run.report.get(q.id), list) else []
        passed, notes = 0, []
        for i in range(len(planned["cases"])):
            status = str(statuses[i]) if i < len(statuses) else "no result"
            got = run.outputs.get(f"{q.id}__{i}")
            if q.kind == "derived" and status == "ok" and got is not None:
                data = [run.outputs.get(f"{q.id}__data__{name}") for name in q.data]
                expected, why = derived_expected(q, data) if all(d is not None for d in data) else (None, "no data")
                if expected is None:
                    status, got = why, None
            else:
                expected = key.expected.get(f"{q.id}__{i}")
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
    if run.ended in ("timeout", "cell timeout"):
        return "timeout"
    if memory:
        return "memory"
    if run.ended != "finished":
        return "crashed"
    return "graded"


def grade_submission(path: str | Path, key: Key, limits: Limits | None = None, hide=(), sandbox=None) -> Row:
    """Grade one notebook file; every outcome, however hostile the notebook, is a :class:`Row`."""
    path = Path(path)
    lab = key.lab
    limits = limits or Limits()
    text, metadata, flags, reason = _read(path, lab.lab_id)
    student = student_name(path, lab.lab_id, metadata)
    if path.name.startswith("Copy of "):
        flags.append("colab-copy")
    zero = {q.id: 0.0 for q in lab.questions}
    if text is None:
        feedback = (
            f"# {lab.lab_id}: {student}\n\nStatus: **invalid**: {reason}. Nothing was run; score 0/{lab.max_total:g}.\n"
        )
        return Row(
            path.as_posix(),
            student,
            zero,
            0.0,
            lab.max_total,
            "invalid",
            (*flags, f"invalid:{reason[:60]}"),
            feedback=feedback,
        )
    run = run_submission(text, key.plan, key.inputs, limits, hide=hide, sandbox=sandbox)
    points, lines = _score(key, run)
    status = _status(run)
    if run.errors:
        flags.append(f"cell-errors={len(run.errors)}")
    if run.output_truncated:
        flags.append("output-truncated")
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
    )
    return Row(
        path.as_posix(),
        student,
        points,
        total,
        lab.max_total,
        status,
        tuple(flags),
        run.protections,
        round(run.wall_s, 2),
        feedback,
        {"report": run.report, "ended": run.ended},
    )


def default_hide(lab: Lab, keys_dir: str | Path | None = None, extra=()) -> tuple[str, ...]:
    """Paths a submission must not see: the spec's folder, the keys folder, ``labs/masters`` here, and ``extra``."""
    paths = [str(p) for p in extra]
    if lab_source(lab) is not None:
        paths.append(str(lab_source(lab).parent))
    if keys_dir is not None:
        paths.append(str(keys_dir))
    if Path("labs/masters").is_dir():
        paths.append(str(Path("labs/masters").resolve()))
    return tuple(dict.fromkeys(str(Path(p).resolve()) for p in paths))


def grade(paths, key: Key, limits: Limits | None = None, jobs: int = 1, hide=(), sandbox=None) -> list[Row]:
    """Grade many submissions, ``jobs`` at a time (threads driving child processes); rows sorted by file."""
    if int(jobs) < 1:
        raise ValueError(f"jobs must be >= 1 (parallel child processes); got {jobs!r}")
    with ThreadPoolExecutor(max_workers=int(jobs)) as pool:
        rows = list(pool.map(lambda p: grade_submission(p, key, limits, hide, sandbox), paths))
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


def write_gradebook(rows: list[Row], out: str | Path, lab: Lab) -> Path:
    """Write the CSV and one Markdown feedback file per row into ``feedback/`` next to it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = out.parent / "feedback"
    folder.mkdir(exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=_columns(q.id for q in lab.questions))
        writer.writeheader()
        for row in rows:
            digest = hashlib.sha256(row.file.encode()).hexdigest()[:8]
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", row.student)[:60] + f"-{digest}.md"
            (folder / name).write_text(row.feedback, encoding="utf-8")
            writer.writerow(
                {
                    "file": row.file,
                    "student": row.student,
                    **{k: f"{v:g}" for k, v in row.points.items()},
                    "total": f"{row.total:g}",
                    "max_total": f"{row.max_total:g}",
                    "status": row.status,
                    "flags": ";".join(row.flags),
                    "protections": ";".join(row.protections),
                    "wall_s": row.wall_s,
                    "feedback": f"feedback/{name}",
                }
            )
    return out


def merge(csv_paths, out: str | Path) -> int:
    """Join shard gradebooks (same columns) into one, sorted by file; a file graded twice is an error.

    Returns the number of rows written.
    """
    header, rows = None, {}
    for path in csv_paths:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if header is None:
                header = reader.fieldnames
            elif reader.fieldnames != header:
                raise ValueError(f"{path} has columns {reader.fieldnames}, expected {header} (another lab?)")
            for row in reader:
                if row["file"] in rows:
                    raise ValueError(f"{row['file']} appears in more than one gradebook (overlapping shards?)")
                rows[row["file"]] = row
    if header is None:
        raise ValueError("no gradebooks to merge")
    with Path(out).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows[f] for f in sorted(rows))
    return len(rows)


def summary(rows: list[Row]) -> str:
    """One line per status with counts, and the mean total, for the terminal."""
    counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
    mean = float(np.mean([r.total for r in rows])) if rows else 0.0
    return (
        f"{len(rows)} submission(s): " + json.dumps({k: v for k, v in counts.items() if v}) + f"; mean total {mean:.2f}"
    )
