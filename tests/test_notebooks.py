"""Every notebook's Colab badge and setup cell derive from _config.yml, and the sync tool keeps them so."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys

import pytest

from efflab.notebooks import (
    RepoConfig,
    colab_url,
    managed_notebooks,
    read_repo_config,
    setup_source,
    sync_notebook,
    sync_notebooks,
)


def test_committed_notebooks_agree_with_config(repo_root):
    assert managed_notebooks(repo_root), "no notebooks found under chapters/ or labs/"
    assert sync_notebooks(repo_root, check=True) == []


def test_badge_and_setup_name_the_configured_repository(repo_root):
    repo = read_repo_config(repo_root)
    for path in managed_notebooks(repo_root):
        rel = path.relative_to(repo_root).as_posix()
        cells = json.loads(path.read_text())["cells"]
        badge, setup = ("".join(c["source"]) for c in cells[:2])
        assert colab_url(repo, rel) in badge
        assert repo.url in setup and "EFFLAB_SOURCE" in setup
        assert rel not in setup, "the setup cell must not depend on the notebook's own path (Colab renames copies)"


def test_sync_inserts_then_is_idempotent():
    repo = RepoConfig("https://github.com/someone/course", branch="dev")
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Title"}], "metadata": {}}
    assert sync_notebook(nb, "chapters/x.ipynb", repo) is True
    assert [c["cell_type"] for c in nb["cells"]] == ["markdown", "code", "markdown"]
    assert "github/someone/course/blob/dev/chapters/x.ipynb" in nb["cells"][0]["source"]
    assert "remove-cell" in nb["cells"][0]["metadata"]["tags"]
    before = copy.deepcopy(nb)
    assert sync_notebook(nb, "chapters/x.ipynb", repo) is False
    assert nb == before


def test_sync_keeps_outputs_of_an_up_to_date_setup_cell():
    repo = RepoConfig("https://github.com/o/r")
    nb = {"cells": [], "metadata": {}}
    sync_notebook(nb, "labs/l.ipynb", repo)
    nb["cells"][1]["execution_count"] = 1
    assert sync_notebook(nb, "labs/l.ipynb", repo) is False
    assert nb["cells"][1]["execution_count"] == 1


def test_changing_the_url_flags_every_notebook(repo_root, tmp_path):
    book = tmp_path / "book"
    shutil.copytree(repo_root / "chapters", book / "chapters")
    if (repo_root / "labs").exists():
        shutil.copytree(repo_root / "labs", book / "labs")
    config = (repo_root / "_config.yml").read_text()
    old_url = read_repo_config(repo_root).url
    (book / "_config.yml").write_text(config.replace(old_url, "https://github.com/fork/efflab-fork"))
    flagged = sync_notebooks(book, check=True)
    assert set(flagged) == set(managed_notebooks(book))
    sync_notebooks(book)
    assert sync_notebooks(book, check=True) == []
    text = (book / "chapters" / "00_welcome.ipynb").read_text()
    assert "fork/efflab-fork" in text and old_url not in text


def test_non_github_url_is_a_clear_error():
    with pytest.raises(ValueError, match="repository.url"):
        colab_url(RepoConfig("https://gitlab.com/o/r"), "a.ipynb")


def test_setup_cell_does_nothing_where_efflab_is_installed():
    # pip would be called only if efflab were missing; a bogus source proves it is not called here
    code = setup_source(RepoConfig("https://github.com/o/r"))
    env_code = "import os; os.environ['EFFLAB_SOURCE'] = '/nonexistent/efflab'\n" + code
    proc = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""


def test_setup_cell_installs_from_override_when_missing(tmp_path):
    # In a Python that cannot see efflab (isolated mode from an empty folder, no site-packages) the cell must try to
    # install from EFFLAB_SOURCE: a missing path makes pip fail, which proves the override was used.
    code = setup_source(RepoConfig("https://github.com/o/r"))
    env = {"EFFLAB_SOURCE": str(tmp_path / "no-such-checkout"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert proc.returncode != 0
    assert "pip" in proc.stderr
