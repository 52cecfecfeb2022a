"""Keep every notebook's Colab badge and setup cell in step with the repository named in ``_config.yml``.

The repository URL and branch live in one place, the book's ``_config.yml`` (``repository.url``, ``repository.branch``,
``repository.path_to_book``). Every notebook under ``chapters/`` and ``labs/`` starts with two managed cells:

1. a Markdown cell with an "Open in Colab" badge for that notebook (tag ``remove-cell``: the book shows its own launch
   button instead, and a badge image would be an external request);
2. a code cell that installs ``efflab`` from the repository when it is missing (on Colab, or a fresh runtime) and does
   nothing where it is installed (also tagged ``remove-cell``: the welcome page explains it once; and
   ``nbval-ignore-output``: whether pip ran, and what it printed, depends on the environment). It uses no file name and no relative path, so it also works in a renamed
   "Copy of …" notebook running from ``/content``. ``EFFLAB_SOURCE`` overrides what it installs (tests point it at a
   local copy of the repository).

``efflab sync-notebooks`` rewrites both cells from ``_config.yml``; ``efflab sync-notebooks --check`` (and a test)
fails when any notebook disagrees. Cells are found by their metadata (``efflab.role``), never by position alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "NOTEBOOK_DIRS",
    "RepoConfig",
    "badge_source",
    "colab_url",
    "managed_notebooks",
    "read_repo_config",
    "setup_source",
    "sync_notebook",
    "sync_notebooks",
]

# Folders (relative to the book root) whose notebooks carry the managed cells.
NOTEBOOK_DIRS = ("chapters", "labs")
_ROLE_BADGE = "colab-badge"
_ROLE_SETUP = "setup"


@dataclass(frozen=True)
class RepoConfig:
    """Where the course lives: a GitHub repository URL, a branch and the book's folder inside it."""

    url: str
    branch: str = "main"
    path_to_book: str = ""

    @property
    def github_slug(self) -> str:
        """``owner/name`` of the GitHub repository (Colab opens notebooks from GitHub by this)."""
        prefix = "https://github.com/"
        if not self.url.startswith(prefix):
            raise ValueError(f"repository.url must be a https://github.com/OWNER/NAME URL; got {self.url!r}")
        slug = self.url[len(prefix) :].strip("/")
        slug = slug.removesuffix(".git")
        if slug.count("/") != 1:
            raise ValueError(f"repository.url must be a https://github.com/OWNER/NAME URL; got {self.url!r}")
        return slug


def read_repo_config(root: str | Path = ".") -> RepoConfig:
    """Read ``repository`` from ``<root>/_config.yml``.

    >>> cfg = read_repo_config(Path(__file__).resolve().parents[1])
    >>> cfg.github_slug.count("/")
    1
    """
    import yaml  # a dependency of jupyter-book; only this maintenance tool needs it

    path = Path(root) / "_config.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    repo = data.get("repository") or {}
    if not repo.get("url"):
        raise ValueError(f"{path} has no repository.url: set it to the course's GitHub URL")
    return RepoConfig(
        url=str(repo["url"]), branch=str(repo.get("branch", "main")), path_to_book=str(repo.get("path_to_book") or "")
    )


def colab_url(repo: RepoConfig, notebook_path: str) -> str:
    """The Colab address that opens ``notebook_path`` (relative to the book root) from the repository.

    >>> colab_url(RepoConfig("https://github.com/o/r"), "chapters/a.ipynb")
    'https://colab.research.google.com/github/o/r/blob/main/chapters/a.ipynb'
    """
    inner = "/".join(p for p in (repo.path_to_book.strip("/"), notebook_path.lstrip("/")) if p)
    return f"https://colab.research.google.com/github/{repo.github_slug}/blob/{repo.branch}/{inner}"


def badge_source(repo: RepoConfig, notebook_path: str) -> str:
    """Markdown of the "Open in Colab" badge for one notebook."""
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(repo, notebook_path)})"


def setup_source(repo: RepoConfig) -> str:
    """Source of the setup cell: install efflab from the repository when it is not importable.

    >>> "EFFLAB_SOURCE" in setup_source(RepoConfig("https://github.com/o/r"))
    True
    """
    # The measure extra brings nvidia-ml-py: NVML's energy counter on a Colab GPU runtime (torch is already there).
    spec = f"efflab[measure] @ git+{repo.url.removesuffix('.git')}.git@{repo.branch}"
    if repo.path_to_book.strip("/"):
        spec += f"#subdirectory={repo.path_to_book.strip('/')}"
    return (
        "# Setup: on Colab (or any runtime without efflab) install it from the course repository; elsewhere do nothing.\n"
        "import importlib, importlib.util, os, subprocess, sys\n"
        'if importlib.util.find_spec("efflab") is None:\n'
        f'    _source = os.environ.get("EFFLAB_SOURCE", "{spec}")\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", _source], check=True)\n'
        "    importlib.invalidate_caches()"
    )


def _source_text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _role(cell: dict) -> str | None:
    return (cell.get("metadata", {}).get("efflab") or {}).get("role")


def _managed_cell(cell_type: str, role: str, source: str, tags: list[str]) -> dict:
    # A fixed id per role: nbformat 4.5 requires ids, and a stable one keeps diffs quiet.
    cell: dict[str, Any] = {
        "cell_type": cell_type,
        "id": f"efflab-{role}",
        "metadata": {"efflab": {"role": role}, "tags": list(tags)},
    }
    cell["source"] = source
    if cell_type == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def sync_notebook(nb: dict, notebook_path: str, repo: RepoConfig) -> bool:
    """Make ``nb`` (a notebook as a JSON dict) start with the managed badge and setup cells; return True if changed.

    Existing managed cells keep their outputs and execution counts when their source is already right.
    """
    cells = nb.setdefault("cells", [])
    wanted = [
        ("markdown", _ROLE_BADGE, badge_source(repo, notebook_path), ["remove-cell"]),
        ("code", _ROLE_SETUP, setup_source(repo), ["remove-cell", "nbval-ignore-output"]),
    ]
    changed = False
    for position, (cell_type, role, source, tags) in enumerate(wanted):
        index = next((i for i, c in enumerate(cells) if _role(c) == role), None)
        if index is None:
            cells.insert(position, _managed_cell(cell_type, role, source, tags))
            changed = True
            continue
        cell = cells[index]
        if index != position:
            cells.insert(position, cells.pop(index))
            changed = True
        if _source_text(cell) != source:
            cell["source"] = source
            changed = True
        if cell.get("cell_type") != cell_type:
            cells[position] = _managed_cell(cell_type, role, source, tags)
            changed = True
        for tag in tags:
            if tag not in cell.setdefault("metadata", {}).setdefault("tags", []):
                cell["metadata"]["tags"].append(tag)
                changed = True
    return changed


def managed_notebooks(root: str | Path = ".") -> list[Path]:
    """Every notebook under the managed folders, sorted, skipping checkpoints and build output."""
    root = Path(root)
    found = []
    for folder in NOTEBOOK_DIRS:
        for path in sorted((root / folder).rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in path.parts and "_build" not in path.parts:
                found.append(path)
    return found


def sync_notebooks(root: str | Path = ".", check: bool = False) -> list[Path]:
    """Rewrite (or, with ``check``, only list) every managed notebook whose badge or setup cell is out of date."""
    root = Path(root)
    repo = read_repo_config(root)
    changed = []
    for path in managed_notebooks(root):
        nb = json.loads(path.read_text(encoding="utf-8"))
        if sync_notebook(nb, path.relative_to(root).as_posix(), repo):
            changed.append(path)
            if not check:
                path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed
