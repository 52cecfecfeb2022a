"""The instructor's journey, from the README alone: assign a lab, grade three submissions, read the gradebook.

The commands are taken from the README's "Teach with it" block and run as written (with the demo lab standing in for
a course lab, and this environment's ``efflab`` for ``.venv/bin/efflab``): a solved submission, a partial one and a
broken one must each get their row, with full, partial and no marks.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _teach_block(readme: str) -> list[str]:
    section = readme.split("## Teach with it", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_readme_commands_assign_and_grade(repo_root, tmp_path):
    commands = _teach_block((repo_root / "README.md").read_text())
    assert any("efflab assign" in c for c in commands) and any("efflab grade" in c for c in commands)
    # the course layout, with the demo lab as the lab
    (tmp_path / "labs" / "masters").mkdir(parents=True)
    shutil.copy(repo_root / "tests/data/demo_lab/masters/demo.ipynb", tmp_path / "labs/masters/demo.ipynb")
    shutil.copy(repo_root / "_config.yml", tmp_path / "_config.yml")
    master = json.loads((tmp_path / "labs/masters/demo.ipynb").read_text())

    subs = tmp_path / "submissions"
    subs.mkdir()
    (subs / "Copy of alice_demo.ipynb").write_text(json.dumps(master))
    partial = json.loads(json.dumps(master))
    for cell in partial["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if "def iron_law_time_s" in source:  # bob gets exercise 2 wrong: the sum instead of the max
            cell["source"] = source.replace("np.maximum(compute_s, memory_s)", "compute_s + memory_s")
    (subs / "bob_demo.ipynb").write_text(json.dumps(partial))
    (subs / "carol_demo.ipynb").write_text('{"cells": [ this is not json')

    efflab = str(Path(sys.executable).with_name("efflab"))
    script = "set -euo pipefail\n"
    for command in commands:
        if command.startswith("make "):
            continue  # the environment is this one
        command = command.replace(".venv/bin/efflab", efflab)
        if re.fullmatch(r"LAB=\S+", command):
            command = "LAB=demo"
        script += command + "\n"
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    student = tmp_path / "labs" / "demo.ipynb"
    assert student.is_file(), "efflab assign must write the student notebook next to labs/masters"
    assert "BEGIN SOLUTION" not in student.read_text()
    rows = {row["student"]: row for row in csv.DictReader((tmp_path / "grades" / "gradebook.csv").open())}
    assert set(rows) == {"alice", "bob", "carol"}
    full = float(rows["alice"]["max_total"])
    assert rows["alice"]["status"] == "graded" and float(rows["alice"]["total"]) == full
    assert rows["bob"]["status"] == "graded" and 0 < float(rows["bob"]["total"]) < full
    assert rows["carol"]["status"] == "invalid" and float(rows["carol"]["total"]) == 0
    assert len(list((tmp_path / "grades" / "feedback").glob("*.md"))) == 3
