"""Generate a student notebook from a solved master: solutions become stubs, hidden material goes, outputs clear.

The marking convention is documented in :mod:`efflab.grading` (``# BEGIN SOLUTION`` … ``# END SOLUTION`` regions,
``hidden`` cell tag, ``# BEGIN HIDDEN`` … ``# END HIDDEN`` regions). Masters live in ``labs/masters/<lab_id>.ipynb``
and their student notebooks in ``labs/<lab_id>.ipynb``; ``efflab assign --check`` fails when a committed student notebook
differs from a fresh generation, and :func:`leaks` lists anything secret that reached a student notebook.
"""

from __future__ import annotations

import ast
import copy
import re
import textwrap
from pathlib import Path

from efflab.style import TEXT_WIDTH_CHARS

__all__ = ["HIDDEN_TAGS", "make_student", "leaks", "default_output", "assign", "out_of_date"]

HIDDEN_TAGS = ("hidden",)
_BEGIN = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\b(?P<msg>.*)$")
_END = re.compile(r"^[ \t]*#\s*END SOLUTION\b")
_BEGIN_HIDDEN = re.compile(r"^[ \t]*#\s*BEGIN HIDDEN\b")
_END_HIDDEN = re.compile(r"^[ \t]*#\s*END HIDDEN\b")
_MD_SOLUTION = re.compile(r"<!--\s*BEGIN SOLUTION\s*-->.*?<!--\s*END SOLUTION\s*-->", re.DOTALL)
_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN", "END HIDDEN")
_DROP_CELL_METADATA = ("execution", "collapsed", "scrolled")  # run-time state, not content


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _assigned_names(code: str) -> list[str]:
    """Names a top-level code region assigns (``a = ...``, ``a, b = ...``, ``a: float = ...``, ``a += ...``)."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return []
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets:
            for sub in ast.walk(target) if target is not None else ():
                if isinstance(sub, ast.Name) and sub.id not in names:
                    names.append(sub.id)
    return names


def _stub(indent: str, message: str, region: list[str], width: int = TEXT_WIDTH_CHARS) -> list[str]:
    """What replaces a solution region: a ``raise`` inside a function, else ``name = ...`` per name it assigned, the
    message as a comment. Lines stay within ``width`` characters (the book's code column): a long message is split
    into adjacent string literals, or into comment lines above the names.

    >>> print("\\n".join(_stub("    ", "Exercise 1: " + "word " * 14, ["    return 1"], width=40)))
        raise NotImplementedError(
            'Exercise 1: word word word '
            'word word word word word word '
            'word word word word word '
        )
    >>> _stub("", "Exercise 2: the median", ["t = 1"])
    ['t = ...  # Exercise 2: the median']
    """
    if indent:  # inside a function body: the cell defines the function; calling it raises
        line = f"{indent}raise NotImplementedError({message!r})"
        if len(line) <= width:
            return [line]
        inner = indent + "    "
        chunks = textwrap.wrap(message, width - len(inner) - 2, drop_whitespace=False, break_long_words=False)
        return [f"{indent}raise NotImplementedError("] + [f"{inner}{c!r}" for c in chunks] + [f"{indent})"]
    names = _assigned_names("\n".join(region))
    lines = [f"{name} = ...  # {message}" for name in names] or [f"# {message}"]
    if all(len(line) <= width for line in lines):
        return lines
    comment = textwrap.wrap(message, width - 2, break_long_words=False)
    return [f"# {c}" for c in comment] + [f"{name} = ..." for name in names]


def _strip_code(source: str, counter: list[int], where: str) -> str:
    out: list[str] = []
    lines = source.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        begin = _BEGIN.match(line)
        if begin or _BEGIN_HIDDEN.match(line):
            end_re = _END if begin else _END_HIDDEN
            j = i + 1
            while j < len(lines) and not end_re.match(lines[j]):
                if _BEGIN.match(lines[j]) or _BEGIN_HIDDEN.match(lines[j]):
                    raise ValueError(f"{where}: a region opened on line {i + 1} is not closed before line {j + 1}")
                j += 1
            if j == len(lines):
                raise ValueError(f"{where}: the region opened on line {i + 1} has no END line")
            if begin:
                counter[0] += 1
                msg = begin["msg"].strip() or "write your code here"
                msg = msg if msg.lower().startswith("exercise") else f"Exercise {counter[0]}: {msg}"
                out.extend(_stub(begin["indent"], msg, lines[i + 1 : j]))
            i = j + 1
            continue
        if _END.match(line) or _END_HIDDEN.match(line):
            raise ValueError(f"{where}: line {i + 1} closes a region that was never opened")
        out.append(line)
        i += 1
    return "\n".join(out)


def make_student(master, lab_id: str, master_name: str = ""):
    """Return the student version of a master notebook (an ``nbformat`` node; the master is not modified).

    >>> import nbformat
    >>> code = "def f(x):\\n    # BEGIN SOLUTION square it\\n    return x * x\\n    # END SOLUTION"
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    >>> print(make_student(nb, "demo").cells[0].source)
    def f(x):
        raise NotImplementedError('Exercise 1: square it')
    """
    student = copy.deepcopy(master)
    counter = [0]
    cells = []
    for index, cell in enumerate(student.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        if any(tag in HIDDEN_TAGS for tag in tags):
            continue
        where = f"{master_name or 'master'} cell {index}"
        if cell.cell_type == "code":
            cell.source = _strip_code(_source(cell), counter, where)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = _MD_SOLUTION.sub("*Your answer here.*", _source(cell))
        for key in _DROP_CELL_METADATA:
            cell.metadata.pop(key, None)
        cells.append(cell)
    student.cells = cells
    meta = dict(student.metadata.get("efflab", {}))
    meta.update(lab=lab_id, student_notebook=True)
    if master_name:
        meta["generated_from"] = master_name
    student.metadata["efflab"] = meta
    return student


def _secret_lines(master) -> set[str]:
    """Lines of solution/hidden material in the master that appear nowhere in its public text."""
    secret: set[str] = set()
    public: set[str] = set()
    for cell in master.cells:
        hidden_cell = any(tag in HIDDEN_TAGS for tag in cell.get("metadata", {}).get("tags", []))
        inside = False
        for line in _source(cell).split("\n"):
            stripped = line.strip()
            if _BEGIN.match(line) or _BEGIN_HIDDEN.match(line) or "BEGIN SOLUTION -->" in line:
                inside = True
                continue
            if _END.match(line) or _END_HIDDEN.match(line) or "END SOLUTION -->" in line:
                inside = False
                continue
            if len(stripped) >= 6:  # short lines ("pass", "return x") say nothing
                (secret if inside or hidden_cell else public).add(stripped)
    return secret - public


def leaks(master, student) -> list[str]:
    """Everything secret that reached the student notebook: markers, hidden cells, solution lines, outputs.

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1\\n# BEGIN HIDDEN\\nsecret = 42\\n# END HIDDEN")])
    >>> leaks(nb, make_student(nb, "demo")), leaks(nb, nb)
    ([], ['cell 0 carries a marker: BEGIN HIDDEN', 'cell 0 carries a marker: END HIDDEN', 'cell 0 leaks: secret = 42'])
    """
    found = []
    secret = _secret_lines(master)
    for index, cell in enumerate(student.cells):
        text = _source(cell)
        found += [f"cell {index} carries a marker: {m}" for m in _MARKERS if m in text]
        if any(tag in HIDDEN_TAGS for tag in cell.get("metadata", {}).get("tags", [])):
            found.append(f"cell {index} is tagged hidden")
        found += [f"cell {index} leaks: {line.strip()}" for line in text.split("\n") if line.strip() in secret]
        if cell.get("outputs"):
            found.append(f"cell {index} keeps outputs")
    return found


def default_output(master_path: str | Path) -> Path:
    """``labs/masters/<id>.ipynb`` -> ``labs/<id>.ipynb``; any other master -> ``<id>_student.ipynb`` beside it.

    >>> default_output("labs/masters/lab1_roofline.ipynb").as_posix(), default_output("x/lab.ipynb").as_posix()
    ('labs/lab1_roofline.ipynb', 'x/lab_student.ipynb')
    """
    master_path = Path(master_path)
    if master_path.parent.name == "masters":
        return master_path.parent.parent / master_path.name
    return master_path.with_name(master_path.stem + "_student.ipynb")


def _sync_managed_cells(student, out_path: Path):
    """Rewrite the badge/setup cells as ``efflab sync-notebooks`` would for the student's path (a managed folder).

    The master's badge opens the master; the student's must open the student notebook, so copying it verbatim would
    make ``efflab sync-notebooks --check`` and ``efflab assign --check`` disagree.
    """
    import nbformat

    for root in out_path.resolve().parents:
        if (root / "_config.yml").is_file():
            try:
                from efflab.notebooks import NOTEBOOK_DIRS, read_repo_config, sync_notebook

                relative = out_path.resolve().relative_to(root)
                if relative.parts[0] in NOTEBOOK_DIRS:
                    sync_notebook(student, relative.as_posix(), read_repo_config(root))
            except (ImportError, ValueError):  # no yaml, or no repository.url yet: keep the master's cells
                pass
            return nbformat.from_dict(student)
    return student


def render(master_path: str | Path, out_path: str | Path | None = None) -> tuple[str, Path]:
    """Generate the student notebook's text (canonical nbformat JSON) and its path; raise if anything leaks."""
    import nbformat

    master_path = Path(master_path)
    out_path = Path(out_path) if out_path else default_output(master_path)
    master = nbformat.read(master_path, as_version=4)
    student = make_student(master, master_path.stem, master_path.name)
    student = _sync_managed_cells(student, out_path)
    found = leaks(master, student)
    if found:
        raise ValueError(f"{master_path}: the student notebook would leak: " + "; ".join(found))
    return nbformat.writes(student) + "\n", out_path


def assign(master_path: str | Path, out_path: str | Path | None = None) -> Path:
    """Write the student notebook generated from ``master_path`` (default path: :func:`default_output`)."""
    text, out_path = render(master_path, out_path)
    out_path.write_text(text, encoding="utf-8")
    return out_path


def out_of_date(master_paths) -> list[Path]:
    """Student notebooks that are missing or differ from a fresh generation of their masters."""
    stale = []
    for master in master_paths:
        text, out_path = render(master)
        if not out_path.is_file() or out_path.read_text(encoding="utf-8") != text:
            stale.append(out_path)
    return stale
