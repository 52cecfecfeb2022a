"""Grading the demo lab: master, student and partial notebooks, shards and merge, and an adversarial suite.

Every notebook is generated here from the committed master or student notebook. Each grading call runs real child
processes (nbclient + ipykernel), so submissions are batched into few ``efflab grade`` calls with ``--jobs 2``.
"""

from __future__ import annotations

import csv
import socket
import threading
from pathlib import Path

import nbformat
import numpy as np
import pytest

from efflab.grading.cli import add_cli
from efflab.grading.grade import merge, shard, student_name
from efflab.grading.labs import demo
from efflab.grading.runner import isolation_available, load_outputs
from efflab.grading.spec import hidden_cases, load_lab

DEMO = Path(__file__).parent / "data" / "demo_lab"
MASTER = DEMO / "masters" / "demo.ipynb"
STUDENT = DEMO / "demo.ipynb"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _cli(*argv: str) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def _write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _with_cell(base: Path, code: str, at: int | None = None):
    nb = nbformat.read(base, 4)
    cell = nbformat.v4.new_code_cell(code)
    nb.cells.insert(len(nb.cells) if at is None else at, cell)
    return nb


def _grade(tmp_path: Path, files, *extra: str) -> dict[str, dict]:
    out = tmp_path / "out" / "gradebook.csv"
    argv = ["grade", *map(str, files), "--lab", "demo", "--out", str(out), "--hide", str(DEMO), *extra]
    assert _cli(*argv) == 0
    with out.open() as handle:
        return {Path(row["file"]).name: row for row in csv.DictReader(handle)}


def _partial_q2_points() -> float:
    """Oracle for a q2 answer that returns the compute time only: right exactly where compute dominates."""
    cases = hidden_cases(load_lab("demo"))["q2"]
    right = sum(bool(np.all(np.asarray(c.args[0]) / c.args[2] >= np.asarray(c.args[1]) / c.args[3])) for c in cases)
    return 2 * right / len(cases)


@pytest.mark.slow
def test_master_full_student_zero_partial_partial_with_shards_and_merge(tmp_path):
    files = [tmp_path / "subs" / "master.ipynb", tmp_path / "subs" / "student.ipynb"]
    _write(nbformat.read(MASTER, 4), files[0])
    _write(nbformat.read(STUDENT, 4), files[1])
    partial = nbformat.read(MASTER, 4)
    for cell in partial.cells:  # q1 left as a stub, q2 half right (compute term only), q3 right
        if "def intensity" in cell.source:
            cell.source = "def intensity(flops, bytes_moved):\n    raise NotImplementedError('Exercise 1')"
        if "def iron_law_time_s" in cell.source:
            cell.source = "def iron_law_time_s(f, b, p, w):\n    return np.asarray(f, dtype=float) / p"
    files.append(_write(partial, tmp_path / "subs" / "partial.ipynb"))
    shards = [_grade(tmp_path / f"s{k}", shard(files, f"{k}/2"), "--jobs", "2") for k in (1, 2)]
    assert sorted(n for s in shards for n in s) == ["master.ipynb", "partial.ipynb", "student.ipynb"]
    out = tmp_path / "all.csv"
    count = merge([tmp_path / f"s{k}" / "out" / "gradebook.csv" for k in (1, 2)], out)
    rows = {Path(r["file"]).name: r for r in csv.DictReader(out.open())}
    assert count == 3 and len(rows) == 3
    master, student, part = rows["master.ipynb"], rows["student.ipynb"], rows["partial.ipynb"]
    assert (master["status"], float(master["total"]), float(master["max_total"])) == ("graded", 5.0, 5.0)
    assert (student["status"], float(student["total"])) == ("graded", 0.0)
    assert float(part["q1"]) == 0 and float(part["q3"]) == 1
    assert float(part["q2"]) == pytest.approx(_partial_q2_points(), abs=1e-4)
    assert 0 < float(part["q2"]) < 2  # the seed's cases mix both regimes, so this is a real partial mark
    feedback = (tmp_path / "s1" / "out" / master["feedback"]).read_text() if master["feedback"] else ""
    feedback = feedback or (tmp_path / "s2" / "out" / master["feedback"]).read_text()
    assert "Score **5/5**" in feedback and "4/4 hidden cases pass" in feedback
    assert merge([out, out], tmp_path / "twice.csv") == 3  # a shard merged twice: same rows, kept once
    changed = out.read_text().replace("master.ipynb", "master.ipynb", 1).splitlines()
    edited = [line.replace(",graded,", ",crashed,") if "student.ipynb" in line else line for line in changed]
    (tmp_path / "regraded.csv").write_text("\n".join(edited) + "\n")
    with pytest.raises(ValueError, match="different status"):  # graded twice, differently: the instructor chooses
        merge([out, tmp_path / "regraded.csv"], tmp_path / "conflict.csv")


def _adversaries(tmp_path: Path, canary: Path, port: int) -> dict[str, tuple[object, str, float]]:
    """name -> (notebook or raw text, expected status, the most points it may score).

    Without the sandbox (no read-only file system, no hidden specs) the spec can be imported, so key_search may score,
    and deleting other submissions' scratch folders would harm them: that attack is only run in the sandbox.
    """
    sandboxed = isolation_available()
    attacks = {
        "loop": (_with_cell(STUDENT, "while True:\n    pass"), "timeout", 0),
        "memory_bomb": (
            _with_cell(STUDENT, "blocks = []\nwhile True:\n    blocks.append(bytearray(1 << 26))"),
            "memory",
            0,
        ),
        "print_200mb": (_with_cell(STUDENT, "for _ in range(200):\n    print('x' * 1_000_000)"), "graded", 0),
        "monkeypatch": (
            _with_cell(
                STUDENT,
                "import numpy, efflab.grading, efflab.grading.spec as spec\n"
                "efflab.grading.check = lambda *a, **k: True\n"
                "spec.matches = lambda *a, **k: (True, 'ok')\n"
                "numpy.allclose = lambda *a, **k: True\n"
                "numpy.testing.assert_allclose = lambda *a, **k: None\n"
                "class Liar(float):\n    __eq__ = lambda self, other: True\n"
                "intensity = iron_law_time_s = lambda *a: Liar(0.0)\n"
                "bandwidth_bytes_per_s = Liar(0.0)",
            ),
            "graded",
            0,
        ),
        "key_search": (
            _with_cell(
                STUDENT,
                "import glob, importlib, os, efflab\n"
                "root = os.path.dirname(os.path.dirname(efflab.__file__))\n"
                "found = [p for d in ('efflab', 'tests', 'labs') for p in glob.glob(f'{root}/{d}/**/*demo*', recursive=True)]\n"
                "print('found', found, [open(p).read()[:100] for p in found if os.path.isfile(p)])\n"
                "ref = importlib.import_module('efflab.grading.labs.demo')\n"
                "intensity, iron_law_time_s = ref.intensity, ref.iron_law_time_s\n"
                "bandwidth_bytes_per_s = ref.fitted_bandwidth_bytes_per_s()",
            ),
            "graded",
            0 if sandboxed else 5,
        ),
        "os_exit": (_with_cell(STUDENT, "import os\nos._exit(0)"), "crashed", 0),
        "sys_exit": (_with_cell(MASTER, "import sys\nsys.exit(1)", at=3), "graded", 5),
        "kernel_killed": (_with_cell(STUDENT, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"), "crashed", 0),
        "network": (
            _with_cell(
                STUDENT,
                f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=3)\ns.sendall(b'leak')",
            ),
            "graded",
            0,
        ),
        "corrupt": ('{"cells": [ this is not json', "invalid", 0),
        "empty": (nbformat.v4.new_notebook(), "invalid", 0),
        "reordered": (nbformat.v4.new_notebook(cells=nbformat.read(MASTER, 4).cells[::-1]), "graded", 4),
        "Copy of demo (1)": (nbformat.read(MASTER, 4), "graded", 5),
        "control": (nbformat.read(MASTER, 4), "graded", 5),
    }
    if sandboxed:  # without the sandbox these would delete other submissions' files and signal every process
        attacks["delete_outside"] = (
            _with_cell(
                STUDENT,
                f"import glob, os, shutil\nfor d in glob.glob('/tmp/efflab-grade-*'):\n    shutil.rmtree(d, ignore_errors=True)\n"
                f"shutil.rmtree({str(canary.parent)!r}, ignore_errors=True)\nos.remove({str(canary)!r})",
            ),
            "graded",
            0,
        )
        # inside its PID namespace, kill(-1) reaches only the sandbox's own processes: the driver too, so it crashes
        attacks["kill_all"] = (_with_cell(STUDENT, "import os, signal\nos.kill(-1, signal.SIGKILL)"), "crashed", 0)
    return attacks


@pytest.mark.slow
def test_adversarial_submissions_each_get_a_row_and_no_unearned_marks(tmp_path):
    canary = tmp_path / "outside" / "canary.txt"
    canary.parent.mkdir()
    canary.write_text("still here")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    received = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                received.append(server.accept())
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    attacks = _adversaries(tmp_path, canary, server.getsockname()[1])
    files = []
    for name, (nb, _, _) in attacks.items():
        path = tmp_path / "subs" / ("carol" if name.startswith("Copy") else "") / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(nb) if isinstance(nb, str) else _write(nb, path)
        files.append(path)
    rows = _grade(tmp_path, files, "--jobs", "2", "--timeout", "20", "--memory-mb", "1536", "--output-bytes", "200000")
    stop.set()
    assert set(rows) == {f.name for f in files}
    protections = rows["control"]["protections"] if "control" in rows else ""
    for name, (_, status, most) in attacks.items():
        row = rows[f"{name}.ipynb"]
        assert row["status"] == status, (name, row)
        assert float(row["total"]) <= most, (name, row)
    assert float(rows["control.ipynb"]["total"]) == 5  # other submissions are unharmed
    assert float(rows["reordered.ipynb"]["total"]) == 4  # functions defined anywhere count; q3's data came too late
    assert "output-truncated" in rows["print_200mb.ipynb"]["flags"]
    assert (
        rows["Copy of demo (1).ipynb"]["student"] == "carol" and "colab-copy" in rows["Copy of demo (1).ipynb"]["flags"]
    )
    assert "cell-errors=1" in rows["sys_exit.ipynb"]["flags"]
    feedback = tmp_path / "out" / rows["loop.ipynb"]["feedback"]
    assert "timeout" in feedback.read_text()
    protections = rows["control.ipynb"]["protections"].split(";")
    assert {"rlimits", "own-session", "output-cap"} <= set(protections)
    if "read-only-fs" in protections:
        assert canary.read_text() == "still here"
    if "no-network" in protections:
        assert received == []
    if "keys-hidden" in protections:
        assert float(rows["key_search.ipynb"]["total"]) == 0
    assert "keys-hidden" in protections or not isolation_available()


def test_student_names_and_shards_are_deterministic():
    assert student_name("x/Copy of Copy of dana_demo.ipynb", "demo") == "dana"
    assert student_name("eve/demo.ipynb", "demo", {"efflab": {"student": "Eve Smith"}}) == "eve"  # a claim only
    assert student_name("demo.ipynb", "demo", {"efflab": {"student": "Eve Smith"}}) == "Eve Smith"  # nothing else
    paths = [f"s{i:03d}.ipynb" for i in range(10)]
    slices = [shard(reversed(paths), f"{k}/3") for k in (1, 2, 3)]
    assert sorted(p.name for s in slices for p in s) == paths  # a partition: every file once
    assert [len(s) for s in slices] == [4, 3, 3]
    for bad in ("0/3", "4/3", "1-3", "a/b"):
        with pytest.raises(ValueError, match="shard"):
            shard(paths, bad)


def test_outputs_are_loaded_without_pickle_and_within_bounds(tmp_path):
    import io

    buffer = io.BytesIO()
    np.savez(buffer, q1__0=np.array([{"a": 1}], dtype=object))  # a pickled object array
    assert load_outputs(buffer.getvalue()) == {}
    buffer = io.BytesIO()
    np.savez(buffer, q1__0=np.zeros(1000))
    assert load_outputs(buffer.getvalue(), max_bytes=100) == {}  # declared size over the cap
    assert load_outputs(buffer.getvalue())["q1__0"].shape == (1000,)
    assert demo.LAB.max_total == 5


def _stray_processes(marker: str = "efflab-grade-") -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if entry.name.isdigit() and marker in cmdline:
            found.append(cmdline)
    return found


@pytest.mark.slow
def test_without_namespaces_limits_still_hold_and_nothing_is_left_running(tmp_path):
    files = [
        _write(nbformat.read(MASTER, 4), tmp_path / "subs" / "master.ipynb"),
        _write(_with_cell(STUDENT, "while True:\n    pass"), tmp_path / "subs" / "loop.ipynb"),
        _write(_with_cell(STUDENT, "import os\nos._exit(3)"), tmp_path / "subs" / "exit.ipynb"),
    ]
    rows = _grade(tmp_path, files, "--jobs", "2", "--timeout", "15", "--no-namespaces")
    assert (rows["master.ipynb"]["status"], float(rows["master.ipynb"]["total"])) == ("graded", 5)
    assert (rows["loop.ipynb"]["status"], float(rows["loop.ipynb"]["total"])) == ("timeout", 0)
    assert (rows["exit.ipynb"]["status"], float(rows["exit.ipynb"]["total"])) == ("crashed", 0)
    assert "no-network" not in rows["master.ipynb"]["protections"]  # the gradebook says what was not active
    assert _stray_processes() == []  # the timed-out kernel (in its own session) was killed with its parent
