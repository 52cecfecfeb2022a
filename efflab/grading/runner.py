"""Run one submission in a limited child process and bring back plain data only.

The child (``_child.py``) gets a fresh scratch folder, its own session (so a wall-clock timeout kills the whole group),
``setrlimit`` limits on CPU time, address space, file size and core dumps (inherited by the kernel it starts), a scrubbed
environment, and a byte cap on what it prints. Where ``unshare`` can create user namespaces (Linux, util-linux) it also
runs in new network, PID, IPC and mount namespaces: no network, no view of other processes, everything read-only except
its scratch folder, and the answer-key folders covered by empty mounts. Which protections were verified is returned
and recorded in the gradebook. Results come back as JSON and ``.npz`` read with ``allow_pickle=False`` after checking
that they are regular files of bounded size.
"""

from __future__ import annotations

import functools
import io
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Limits", "RunResult", "namespaces_available", "run_submission"]

_CHILD = Path(__file__).with_name("_child.py")
_UNSHARE = ["unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--mount", "--mount-proc", "--ipc"]
_MAX_RESULT_BYTES = 1 << 20  # result.json / harness.json: a few kB expected
_MAX_NPZ_BYTES = 64 << 20  # outputs.npz: the hidden cases' answers, far below this


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission's child process (each limit applies to the runner and to its kernel)."""

    timeout_s: float = 120.0  # wall clock for the whole notebook plus the harness
    memory_mb: int = 4096  # RLIMIT_AS per process; the demo lab's kernel fails below ~1 GB (measured), torch maps more
    cpu_s: float | None = None  # RLIMIT_CPU per process; None -> timeout_s
    output_bytes: int = 1_000_000  # printed output kept from the notebook (the rest is dropped and flagged)
    file_bytes: int = 256 << 20  # RLIMIT_FSIZE: largest file the submission may write

    def __post_init__(self):
        for name in ("timeout_s", "memory_mb", "output_bytes", "file_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be > 0; got {getattr(self, name)!r}")


@dataclass(frozen=True)
class RunResult:
    """What came back from one child: how it ended, its report, the harness's plain-data outputs."""

    ended: str  # "finished", "timeout", "kernel died", "cell timeout", "crashed" or "runner error: ..."
    returncode: int | None
    wall_s: float
    errors: tuple[dict, ...] = ()  # cell errors: {"cell", "ename", "evalue"}
    report: dict = field(default_factory=dict)  # question id -> per-case status from the harness
    outputs: dict = field(default_factory=dict)  # "q1__0" -> numpy array
    output_truncated: bool = False
    protections: tuple[str, ...] = ()
    log: str = ""


@functools.lru_cache(maxsize=1)
def namespaces_available() -> bool:
    """Whether ``unshare`` can create the user, network, PID, IPC and mount namespaces here (tried once).

    >>> isinstance(namespaces_available(), bool)
    True
    """
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run([*_UNSHARE, "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _limit(limits: Limits, nproc: int | None):
    cpu_s = int(limits.cpu_s or limits.timeout_s) + 1
    memory_bytes = int(limits.memory_mb) << 20

    wanted = [
        (resource.RLIMIT_CPU, (cpu_s, cpu_s + 5)),  # SIGXCPU at the soft limit, SIGKILL at the hard one
        (resource.RLIMIT_AS, (memory_bytes, memory_bytes)),
        (resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes)),
        (resource.RLIMIT_CORE, (0, 0)),
        *([(resource.RLIMIT_NPROC, (nproc, nproc))] if nproc is not None else []),
    ]

    def apply():  # runs in the child between fork and exec: setrlimit calls only (no imports, no locks)
        for which, pair in wanted:
            try:
                resource.setrlimit(which, pair)
            except (ValueError, OSError):  # e.g. RLIMIT_AS on macOS; "rlimits" is then not claimed (Linux only)
                pass

    return apply


def _nproc_limit() -> int | None:
    """RLIMIT_NPROC for a non-root grader: the user's current process count plus room for one submission.

    The limit counts every process of the user, so it is set relative to what runs now (512 more: a kernel uses ~10,
    ``--jobs`` submissions share the margin). Root is exempt from RLIMIT_NPROC, so nothing is set there and the
    ``nproc`` protection is not claimed: a fork bomb then lasts until the timeout kills the group (and PID namespace).
    """
    if os.geteuid() == 0 or not Path("/proc").is_dir():
        return None
    uid = str(os.getuid())
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and f"\nUid:\t{uid}\t" in (entry / "status").read_text():
                count += 1
        except OSError:
            continue
    hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    limit = count + 512
    return limit if hard == resource.RLIM_INFINITY else min(limit, hard)


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc), so a kernel in its own session is not left behind."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill(proc: subprocess.Popen) -> None:
    for pid in _descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its session: killing the PID namespace's first process ends them all
    except OSError:
        pass


def _drain(stream, cap_bytes: int, kept: list[bytes]) -> None:
    size = 0
    for chunk in iter(lambda: stream.read(65536), b""):
        if size < cap_bytes:
            kept.append(chunk[: cap_bytes - size])
        size += len(chunk)


def _read_plain(path: Path, max_bytes: int) -> bytes | None:
    """The bytes of a regular file no larger than ``max_bytes``; None for links, FIFOs, devices or oversize files."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            return handle.read(max_bytes + 1)[:max_bytes]
    except OSError:
        return None


def load_outputs(data: bytes | None, max_bytes: int = _MAX_NPZ_BYTES) -> dict[str, np.ndarray]:
    """Load an ``.npz`` of answers without unpickling, refusing members whose declared size is too large.

    >>> buffer = io.BytesIO(); np.savez(buffer, q1__0=np.arange(3.0)); load_outputs(buffer.getvalue())
    {'q1__0': array([0., 1., 2.])}
    >>> load_outputs(b"not a zip")
    {}
    """
    if not data:
        return {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > max_bytes:
                return {}
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError):
        return {}


def _json(data: bytes | None) -> dict:
    try:
        value = json.loads(data.decode("utf-8")) if data else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _env(scratch: Path) -> dict[str, str]:
    """A scrubbed environment: nothing of the grader's (keys paths, tokens) reaches the submission."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(scratch),
        "TMPDIR": str(scratch / "tmp"),
        "JUPYTER_RUNTIME_DIR": str(scratch / ".jupyter"),
        "IPYTHONDIR": str(scratch / ".ipython"),
        "MPLCONFIGDIR": str(scratch / ".matplotlib"),
        "MPLBACKEND": "Agg",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "EFFLAB_GRADING": "1",  # check() stays silent; the specs are hidden anyway
    }
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"  # one job per core: --jobs sets the parallelism, and fewer threads map less memory
    return env


def run_submission(
    notebook_text: str,
    plan: dict,
    inputs: dict[str, np.ndarray],
    limits: Limits | None = None,
    hide: tuple[str, ...] = (),
    sandbox: bool | None = None,
) -> RunResult:
    """Execute one notebook (nbformat JSON text) and the harness in a limited child; return what came back.

    ``plan`` lists the questions and their cases (names of arrays in ``inputs``); ``hide`` are paths (answer keys,
    specs, masters) the child must not see; ``sandbox=None`` uses namespaces when :func:`namespaces_available`.
    """
    limits = limits or Limits()
    use_ns = namespaces_available() if sandbox is None else bool(sandbox)
    scratch = Path(tempfile.mkdtemp(prefix="efflab-grade-")).resolve()
    (scratch / "tmp").mkdir()
    (scratch / "submission.ipynb").write_text(notebook_text, encoding="utf-8")
    np.savez(scratch / "inputs.npz", **inputs)
    full_plan = {**plan, "inputs": "inputs.npz", "outputs": "outputs.npz", "report": "harness.json"}
    (scratch / "plan.json").write_text(json.dumps(full_plan), encoding="utf-8")
    job = {
        "scratch": str(scratch),
        "notebook": str(scratch / "submission.ipynb"),
        "result": str(scratch / "result.json"),
        "hide": [str(Path(p).resolve()) for p in hide],
        "namespaces": use_ns,
        "output_cap_bytes": limits.output_bytes,
        "cell_timeout_s": max(1, int(limits.timeout_s)),
    }
    (scratch / "job.json").write_text(json.dumps(job), encoding="utf-8")
    command = [*(_UNSHARE if use_ns else []), sys.executable, str(_CHILD), str(scratch / "job.json")]
    nproc = _nproc_limit()
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        cwd=scratch,
        env=_env(scratch),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_limit(limits, nproc),
    )
    kept: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(proc.stdout, limits.output_bytes, kept), daemon=True)
    reader.start()
    try:
        returncode = proc.wait(timeout=limits.timeout_s)
        ended = "finished"
    except subprocess.TimeoutExpired:
        _kill(proc)
        returncode = proc.wait()
        ended = "timeout"
    _kill(proc)  # stray kernels, if no PID namespace ended them
    wall_s = time.perf_counter() - start
    reader.join(timeout=5)
    log = b"".join(kept).decode("utf-8", "replace")
    protections = [*(["rlimits"] if sys.platform == "linux" else []), "own-session", "scrubbed-env", "output-cap"]
    protections += ["nproc"] if nproc else []
    for line in log.splitlines():
        if line.startswith("EFFLAB-SANDBOX "):  # the first such line, printed before any student code ran
            try:
                protections += [str(p) for p in json.loads(line[len("EFFLAB-SANDBOX ") :])]
            except ValueError:
                pass
            break
    result = _json(_read_plain(scratch / "result.json", _MAX_RESULT_BYTES))
    report = _json(_read_plain(scratch / "harness.json", _MAX_RESULT_BYTES))
    outputs = load_outputs(_read_plain(scratch / "outputs.npz", _MAX_NPZ_BYTES))
    if ended == "finished":
        ended = str(result.get("outcome", "crashed")) if result else "crashed"
    errors = result.get("errors", []) if isinstance(result.get("errors"), list) else []
    shutil.rmtree(scratch, ignore_errors=True)
    return RunResult(
        ended=ended,
        returncode=returncode,
        wall_s=wall_s,
        errors=tuple(e for e in errors if isinstance(e, dict)),
        report=report,
        outputs=outputs,
        output_truncated=bool(result.get("output_truncated")) or "[efflab: output truncated]" in log,
        protections=tuple(protections),
        log=log[-4000:],
    )
