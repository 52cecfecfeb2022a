"""The publishing workflow builds the book with the README's own command and deploys what that command builds."""

from __future__ import annotations

import re

import yaml


def test_workflow_runs_the_readme_book_command(repo_root):
    readme = (repo_root / "README.md").read_text()
    book_command = re.search(r"^(make \w+)\s+# creates \.venv.*builds the book", readme, re.MULTILINE)
    assert book_command, "the README must give the book command"
    workflow = yaml.safe_load((repo_root / ".github" / "workflows" / "book.yml").read_text())
    steps = workflow["jobs"]["build"]["steps"]
    runs = [step["run"].strip() for step in steps if "run" in step]
    assert runs == [book_command.group(1)]
    upload = next(step for step in steps if "upload-pages-artifact" in step.get("uses", ""))
    assert upload["with"]["path"] == "_build/html"
    assert "deploy-pages" in str(workflow["jobs"]["deploy"]["steps"])
    # yaml reads the bare key `on` as True
    triggers = workflow.get("on", workflow.get(True))
    assert triggers["push"]["branches"] == ["main"]


def test_ci_runs_the_readme_test_command(repo_root):
    readme = (repo_root / "README.md").read_text()
    test_command = re.search(r"^(make \w+)\s+# the same install, then", readme, re.MULTILINE).group(1)
    ci = (repo_root / ".ci" / "run").read_text()
    assert re.search(rf"^{test_command}$", ci, re.MULTILINE)
