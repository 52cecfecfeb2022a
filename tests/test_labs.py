"""Every course lab, through the real grader: its solved master scores full marks, its student version scores 0,
and the student version is exactly what ``efflab assign`` generates from the master."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABS = sorted(path.stem for path in (ROOT / "labs" / "masters").glob("*.ipynb"))

pytestmark = pytest.mark.slow


def test_every_lab_has_a_spec_and_a_student_version():
    for lab in LABS:
        assert (ROOT / "efflab" / "grading" / "labs" / f"{lab}.py").is_file(), lab
        assert (ROOT / "labs" / f"{lab}.ipynb").is_file(), lab


@pytest.mark.parametrize("lab", LABS)
def test_master_full_marks_student_zero(lab, tmp_path):
    efflab = str(Path(sys.executable).with_name("efflab"))
    out = tmp_path / "gradebook.csv"
    master, student = ROOT / "labs" / "masters" / f"{lab}.ipynb", ROOT / "labs" / f"{lab}.ipynb"
    proc = subprocess.run(
        [
            efflab,
            "grade",
            str(master),
            str(student),
            "--lab",
            lab,
            "--out",
            str(out),
            "--jobs",
            "2",
        ],  # the lab's default limits: a master must fit them
        capture_output=True,
        text=True,
        timeout=1300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {Path(row["file"]).resolve(): row for row in csv.DictReader(out.open())}
    solved, blank = rows[master.resolve()], rows[student.resolve()]
    feedback = "\n".join(p.read_text() for p in (tmp_path / "feedback").glob("*.md"))
    assert solved["status"] == "graded", feedback
    assert float(solved["total"]) == float(solved["max_total"]) > 0, feedback
    assert blank["status"] == "graded" and float(blank["total"]) == 0, feedback
