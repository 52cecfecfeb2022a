"""Run one submission in a sandbox and bring back plain data only.

The sandbox is bubblewrap (``bwrap``, Debian's ``bubblewrap`` package; every major distribution ships it), the tool
Flatpak builds on. Each submission gets:

- an **unprivileged uid** without capabilities and with ``no_new_privs``: when the grader runs as root, a uid of its
  own per concurrent submission (so ``RLIMIT_NPROC`` binds and classmates cannot touch each other's processes); as an
  ordinary user, that user's uid;
- new user, PID, network, IPC, UTS and cgroup namespaces, and no nested user namespaces (``--disable-userns``), so the
  mounts bubblewrap set up are locked: they cannot be unmounted or remounted read-write from inside;
- a file system made of read-only binds of only what it needs (``/usr``, ``/etc``, the Python installation, the
  efflab package, its own inputs at ``/grader``), with the spec folder, the keys folder, ``labs/masters`` and ``.git``
  covered by empty mounts wherever they fall inside a bound folder (resolved from the spec's and efflab's location,
  not from the working directory);
- a private, size-capped tmpfs as its working folder (``/sandbox``), another as ``/tmp``, and a small ``/dev/shm``;
- ``setrlimit`` limits on CPU time, address space, file size, core dumps and processes; a scrubbed environment; a byte
  cap on what it prints; its own session, killed as a whole at the wall-clock limit.

The driver inside (``_child.py``) verifies each protection by trying what it forbids before any student code runs and
reports what held; the gradebook's ``protections`` column lists exactly that. Results come back through a pipe, never
the file system, and ``.npz`` answers are checked member by member before they are loaded without pickle.

When the grader runs as root and the Python installation lies under a folder the sandbox's uid cannot enter (pyenv
in ``/root``), the folders are first bind-mounted onto a staging folder inside a private mount namespace
(util-linux ``unshare --mount`` and ``mount --bind``), from where bubblewrap binds them at their usual paths.
"""

from __future__ import annotations

import functools
import io
import json
import os
import resource
import shlex
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

__all__ = [
    "Limits",
    "REQUIRED_PROTECTIONS",
    "RunResult",
    "isolation_available",
    "load_outputs",
    "namespaces_available",
    "probe_isolation",
    "run_submission",
]

_CHILD = Path(__file__).with_name("_child.py")
_EFFLAB_DIR = Path(__file__).resolve().parents[1]
_SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"  # where bwrap, unshare, setpriv and mount are looked up (not $PATH)
_MAX_REPORT_BYTES = 1 << 20  # harness.json: a few kB expected
_MAX_NPZ_BYTES = 64 << 20  # outputs.npz: the hidden cases' answers, far below this
_JOB_DIR_PREFIX = "efflab-grade-"  # each submission's folder under the temporary folder, removed when its run ends
_SANDBOX_UID = 1000  # the uid the submission sees inside; outside it is the grader's or a per-job uid (below)
# Per-job outside uids when the grader is root: a block of 64 per grader process, far above any real account
# (Debian allocates 1000-59999 to people, 100000+ to subordinate ranges of 65536 each from /etc/subuid).
_JOB_UID_BASE = 1_900_000_000
_JOB_UIDS_PER_GRADER = 64
# What the driver must verify inside the sandbox before any student code runs ("keys-hidden" only when paths are
# hidden). Missing any of them, the submission is refused unless the instructor allows weak isolation.
REQUIRED_PROTECTIONS = (
    "unprivileged",
    "no-new-privs",
    "no-userns",
    "mounts-locked",
    "read-only-fs",
    "keys-hidden",
    "no-network",
    "pid-namespace",
    "private-tmp",
    "scratch-capped",
    "nproc",
    "scrubbed-env",
)


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission (each limit applies to the driver and to its kernel).

    The defaults suit the demo lab; ``efflab grade`` takes each course lab's own defaults from its spec
    (:attr:`efflab.grading.spec.Lab.timeout_s`, ``memory_mb``), measured from what its master needs.
    """

    timeout_s: float = 120.0  # wall clock for the whole notebook plus the harness
    memory_mb: int = 4096  # RLIMIT_AS per process; torch maps ~1.5 GB of address space at import (measured)
    cpu_s: float | None = None  # RLIMIT_CPU per process; None -> timeout_s
    output_bytes: int = 1_000_000  # printed output kept from the notebook (the rest is dropped and flagged)
    file_bytes: int = 256 << 20  # RLIMIT_FSIZE: largest file the submission may write
    scratch_bytes: int = 256 << 20  # size of the submission's tmpfs working folder (its /tmp too)
    nproc: int = 256  # processes and threads of the submission's uid (a kernel uses ~20)

    def __post_init__(self):
        for name in ("timeout_s", "memory_mb", "output_bytes", "file_bytes", "scratch_bytes", "nproc"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be > 0; got {getattr(self, name)!r}")


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """What came back from one sandbox: how it ended, its report, the harness's plain-data outputs."""

    ended: str  # "finished", "timeout", "kernel died", "cell timeout", "crashed", "refused" or "runner error: ..."
    returncode: int | None
    wall_s: float
    errors: tuple[dict, ...] = ()  # cell errors: {"cell", "ename", "evalue"}
    report: dict = field(default_factory=dict)  # question id -> per-case status from the harness
    outputs: dict = field(default_factory=dict)  # plan key ("q1__0", efflab.grading.grade.plan_key) -> numpy array
    output_truncated: bool = False
    protections: tuple[str, ...] = ()
    log: str = ""
    missing: tuple[str, ...] = ()  # required protections the sandbox could not verify
    notes: tuple[str, ...] = ()  # e.g. why the outputs were refused
    resources: dict = field(default_factory=dict)  # vm_peak_kb: the kernel's peak address space, as it reported it


def _which(name: str) -> str | None:
    return shutil.which(name, path=_SYSTEM_PATH)


def _required_tool(name: str) -> str:
    """The path of a system tool the caller has already checked for (RuntimeError naming it if it is gone)."""
    path = _which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed in {_SYSTEM_PATH} (the sandbox needs it)")
    return path


def _traversable_by_others(path: Path) -> bool:
    """Whether any uid may reach ``path`` (``o+x`` on every ancestor, ``o+rx`` on the folder itself)."""
    try:
        for parent in [*reversed(path.parents), path]:
            mode = os.stat(parent).st_mode
            if not mode & stat.S_IXOTH:
                return False
        return bool(os.stat(path).st_mode & stat.S_IROTH)
    except OSError:
        return False


def _python_folders() -> list[Path]:
    """The folders the submission's Python needs: the installation, the virtualenv, site-packages, efflab itself."""
    import site
    import sysconfig

    found = [Path(sys.base_prefix), Path(sys.prefix), Path(sys.exec_prefix), _EFFLAB_DIR]
    found += [Path(p) for p in sysconfig.get_paths().values()]
    found += [Path(p) for p in site.getsitepackages()]
    if site.ENABLE_USER_SITE and site.USER_SITE:
        found.append(Path(site.USER_SITE))
    found.append(Path(sys.executable).resolve().parent)
    kept: list[Path] = []
    for path in sorted({p.resolve() for p in found if p.is_dir()}, key=lambda p: len(p.parts)):
        if any(path == k or k in path.parents for k in kept):
            continue
        if Path("/usr") in [path, *path.parents] or Path("/etc") in [path, *path.parents]:
            continue
        kept.append(path)
    return kept


def _under(path: Path, folders) -> bool:
    return any(path == f or f in path.parents for f in folders)


@dataclass
class _Sandbox:
    """The command that starts the driver in bubblewrap, and what the driver must check."""

    argv: list[str]
    bound: list[str]  # destinations bound read-only (probed for writes and remounts)
    hide: list[str]  # hidden paths (probed: empty or absent)


def _bwrap_command(bwrap: str, job_dir: Path, inner: list[str], env: dict, limits: Limits, hide, job_uid) -> _Sandbox:
    args = [
        bwrap,
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--uid",
        str(_SANDBOX_UID),
        "--gid",
        str(_SANDBOX_UID),
        "--hostname",
        "efflab",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]
    staged: list[tuple[str, str]] = []  # (real source, staging mount point) for root graders

    def source(path: Path) -> str:
        if job_uid is None or _traversable_by_others(path):
            return str(path)
        point = job_dir / "stage" / str(len(staged))
        point.mkdir(parents=True)
        staged.append((str(path), str(point)))
        return str(point)

    bound = ["/usr", "/etc"]
    args += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
            bound.append(top)
    args += ["--proc", "/proc", "--dev", "/dev"]
    # Its own /tmp, mounted before the Python folders: a checkout or virtualenv under /tmp is bound inside it.
    args += ["--size", str(limits.scratch_bytes), "--tmpfs", "/tmp"]
    args += ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]  # cache sizes, topology
    folders = _python_folders()
    for folder in folders:
        args += ["--ro-bind", source(folder), str(folder)]
        bound.append(str(folder))
    args += ["--ro-bind", source(job_dir / "in"), "/grader"]
    bound.append("/grader")
    args += ["--size", str(limits.scratch_bytes), "--perms", "0700", "--tmpfs", "/sandbox"]
    args += ["--dir", "/sandbox/tmp"]  # TMPDIR
    args += ["--size", str(min(limits.scratch_bytes, 64 << 20)), "--tmpfs", "/dev/shm"]
    covered = []
    for path in map(Path, hide):
        if not path.exists() or not _under(path, [Path(b) for b in bound if b != "/grader"]):
            covered.append(str(path))  # not bound at all: absent in the sandbox (the driver checks it)
            continue
        if path.is_dir():
            args += ["--perms", "0555", "--tmpfs", str(path), "--remount-ro", str(path)]
        else:
            args += ["--ro-bind", "/dev/null", str(path)]
        covered.append(str(path))
    args += ["--remount-ro", "/"]  # bwrap's own root tmpfs: writable are only /sandbox, /tmp and /dev/shm
    args += ["--clearenv", *[x for name, value in env.items() for x in ("--setenv", name, value)]]
    args += ["--chdir", "/sandbox", *inner]
    if job_uid is None:
        return _Sandbox(args, bound, covered)
    # a job uid is only taken where _root_tools_present() found all three
    mount, setpriv, unshare = _required_tool("mount"), _required_tool("setpriv"), _required_tool("unshare")
    script = " && ".join(f"{shlex.quote(mount)} --bind {shlex.quote(s)} {shlex.quote(p)}" for s, p in staged)
    drop = [setpriv, f"--reuid={job_uid}", f"--regid={job_uid}", "--clear-groups", "--inh-caps=-all"]
    script = (script + " && " if script else "") + "exec " + shlex.join(drop + args)
    return _Sandbox([unshare, "--mount", "--propagation", "private", "/bin/sh", "-c", script], bound, covered)


@functools.lru_cache(maxsize=1)
def _root_tools_present() -> bool:
    return all(_which(tool) for tool in ("mount", "setpriv", "unshare"))


_uid_lock = threading.Lock()
_uids_in_use: set[int] = set()


def _take_job_uid() -> int | None:
    """A uid no other running submission of this grader uses (root graders only; None otherwise)."""
    if os.geteuid() != 0:
        return None
    base = _JOB_UID_BASE + (os.getpid() % 100_000) * _JOB_UIDS_PER_GRADER
    with _uid_lock:
        for uid in range(base, base + _JOB_UIDS_PER_GRADER):
            if uid not in _uids_in_use:
                _uids_in_use.add(uid)
                return uid
    raise RuntimeError(f"more than {_JOB_UIDS_PER_GRADER} submissions at once in one grader")


def _processes_of(uid: int) -> list[int]:
    """Live processes of ``uid`` (zombies excluded: they run nothing and wait only for the host's init to reap them)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return found


def _give_back_uid(uid: int | None, wait_s: float = 10.0) -> None:
    """Return a per-job uid to the pool once none of its processes is left (killed, and reaped by the kernel);
    a uid whose processes outlive ``wait_s`` is never reused, so the next submission starts at zero processes."""
    if uid is None:
        return
    deadline = time.monotonic() + wait_s
    while left := _processes_of(uid):
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)
    with _uid_lock:
        _uids_in_use.discard(uid)


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


def _nproc_limit(limits: Limits, job_uid: int | None) -> int | None:
    """RLIMIT_NPROC for the submission's uid.

    A per-job uid starts with no process, so the limit is ``limits.nproc``. An ordinary grader's uid already runs
    processes (the limit counts them all), so it is their count plus ``limits.nproc``. A root grader without a per-job
    uid (the weak mode) gets none: root is exempt from RLIMIT_NPROC, and ``nproc`` is then not claimed.
    """
    if job_uid is not None:
        return limits.nproc
    if os.geteuid() == 0 or not Path("/proc").is_dir():
        return None
    uid = str(os.getuid())
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and f"\nUid:\t{uid}\t" in (entry / "status").read_text():
                count += len(list((entry / "task").iterdir()))
        except OSError:
            continue
    hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    limit = count + limits.nproc
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
        os.killpg(proc.pid, signal.SIGKILL)  # its session; bwrap's --die-with-parent ends the PID namespace
    except OSError:
        pass


def _drain(stream, cap_bytes: int, kept: list[bytes]) -> None:
    size = 0
    for chunk in iter(lambda: stream.read(65536), b""):
        if size < cap_bytes:
            kept.append(chunk[: cap_bytes - size])
        size += len(chunk)


_NPY_MAGIC = b"\x93NUMPY"
_MAX_NPY_HEADER_BYTES = 10_000  # numpy's own max_header_size default: headers are ~128 bytes
_ZIP_STORED, _ZIP_DEFLATED = 0, 8


def _npz_problem(archive: zipfile.ZipFile, max_bytes: int) -> str:
    """Why the archive must not be loaded ("" when every member is a plain, honestly sized .npy)."""
    total = 0
    for info in archive.infolist():
        if info.compress_type not in (_ZIP_STORED, _ZIP_DEFLATED):
            return f"member {info.filename[:40]!r} uses compression method {info.compress_type}"
        if info.flag_bits & 0x1:
            return f"member {info.filename[:40]!r} is encrypted"
        if not info.filename.endswith(".npy") or info.file_size > max_bytes:
            return f"member {info.filename[:40]!r} is not a .npy of at most {max_bytes} bytes"
        total += info.file_size
        if total > max_bytes:
            return f"members declare {total} bytes (at most {max_bytes})"
        with archive.open(info) as member:
            head = io.BytesIO(member.read(_MAX_NPY_HEADER_BYTES))
        if head.read(6) != _NPY_MAGIC:
            return f"member {info.filename[:40]!r} is not a .npy array"
        major = head.read(2)[:1]
        readers = {b"\x01": np.lib.format.read_array_header_1_0, b"\x02": np.lib.format.read_array_header_2_0}
        if major not in readers:
            return f"member {info.filename[:40]!r} has an unknown .npy version"
        try:
            shape, _, dtype = readers[major](head)
        except (ValueError, SyntaxError, TypeError, EOFError) as exc:
            return f"member {info.filename[:40]!r}: {type(exc).__name__}"
        if dtype.hasobject:
            return f"member {info.filename[:40]!r} holds Python objects"
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if declared != info.file_size - head.tell():
            return f"member {info.filename[:40]!r} declares {declared} bytes of data but holds a different amount"
    return ""


def load_outputs(data: bytes | None, max_bytes: int = _MAX_NPZ_BYTES, problems: list | None = None) -> dict:
    """Load an ``.npz`` of answers without unpickling, after checking every member (compression, encryption, declared
    shape against its real size); anything else gives ``{}``, and the reason is appended to ``problems``.

    >>> buffer = io.BytesIO(); np.savez(buffer, q1__0=np.arange(3.0)); load_outputs(buffer.getvalue())
    {'q1__0': array([0., 1., 2.])}
    >>> load_outputs(b"not a zip")
    {}
    """
    problems = [] if problems is None else problems
    if not data:
        return {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            why = _npz_problem(archive, max_bytes)
        if why:
            problems.append(why)
            return {}
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except Exception as exc:  # any way a crafted archive can fail is this submission's problem only
        problems.append(f"outputs unreadable ({type(exc).__name__})")
        return {}


def _json(data: bytes | None) -> dict:
    try:
        value = json.loads(data.decode("utf-8")) if data else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _env(home: str, tmp: str) -> dict[str, str]:
    """A scrubbed environment: nothing of the grader's (keys paths, tokens, its PATH) reaches the submission."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:{_SYSTEM_PATH}",
        "HOME": home,
        "TMPDIR": tmp,
        "JUPYTER_RUNTIME_DIR": f"{home}/.jupyter",
        "IPYTHONDIR": f"{home}/.ipython",
        "MPLCONFIGDIR": f"{home}/.matplotlib",
        "MPLBACKEND": "Agg",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "EFFLAB_GRADING": "1",  # check() stays silent; the specs are hidden anyway
    }
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"  # one job per core: --jobs sets the parallelism, and fewer threads map less memory
    return env


def _parse_result(data: bytes) -> tuple[dict, bytes, bytes]:
    head, _, rest = data.partition(b"\n")
    result = _json(head)
    report_n = result.get("report_bytes", 0)
    npz_n = result.get("npz_bytes", 0)
    if not isinstance(report_n, int) or not isinstance(npz_n, int) or report_n < 0 or npz_n < 0:
        return result, b"", b""
    return result, rest[:report_n], rest[report_n : report_n + npz_n]


def _required(hide) -> list[str]:
    return [p for p in REQUIRED_PROTECTIONS if p != "keys-hidden" or hide]


def run_submission(
    notebook_text: str,
    plan: dict,
    inputs: dict[str, np.ndarray],
    limits: Limits | None = None,
    hide: tuple[str, ...] = (),
    sandbox: bool | None = None,
    allow_weak: bool = False,
    probe_only: bool = False,
) -> RunResult:
    """Execute one notebook (nbformat JSON text) and the harness in a sandbox; return what came back.

    ``plan`` lists the questions and their cases (names of arrays in ``inputs``); ``hide`` are paths (answer keys,
    specs, masters, .git) the submission must not see. ``sandbox=None`` uses bubblewrap when it is installed;
    ``sandbox=False`` runs with resource limits only (weak isolation). Without every required protection verified
    the notebook is not run (``ended="refused"``) unless ``allow_weak``.
    """
    limits = limits or Limits()
    bwrap = _which("bwrap")
    use_bwrap = bwrap is not None if sandbox is None else bool(sandbox) and bwrap is not None
    job_uid = _take_job_uid() if use_bwrap else None
    if job_uid is not None and not _root_tools_present():
        _give_back_uid(job_uid)
        job_uid, use_bwrap = None, False
    job_dir = None  # the job's folder (inputs, and the scratch folder without bubblewrap): removed on every exit path
    read_fd = write_fd = None
    proc = None
    try:
        job_dir = Path(tempfile.mkdtemp(prefix=_JOB_DIR_PREFIX)).resolve()
        inside = job_dir / "in"
        inside.mkdir()
        if use_bwrap:
            job_dir.chmod(0o711)  # the sandbox's uid passes through to in/ (read-only there) and nothing else
            inside.chmod(0o755)
            grader_dir, scratch = "/grader", "/sandbox"
        else:
            (job_dir / "scratch" / "tmp").mkdir(parents=True)
            grader_dir, scratch = str(inside), str(job_dir / "scratch")
        (inside / "submission.ipynb").write_text(notebook_text, encoding="utf-8")
        np.savez(inside / "inputs.npz", allow_pickle=False, **inputs)  # plain arrays: the harness loads without pickle
        full_plan = {
            **plan,
            "inputs": f"{grader_dir}/inputs.npz",
            "outputs": f"{scratch}/outputs.npz",
            "report": f"{scratch}/harness.json",
        }
        (inside / "plan.json").write_text(json.dumps(full_plan), encoding="utf-8")
        env = _env(scratch, f"{scratch}/tmp")
        read_fd, write_fd = os.pipe()
        job = {
            "scratch": scratch,
            "scratch_bytes": limits.scratch_bytes,
            "notebook": f"{grader_dir}/submission.ipynb",
            "plan": f"{grader_dir}/plan.json",
            "result_fd": write_fd,
            "sandboxed": use_bwrap,
            "required": _required(hide) if use_bwrap or not allow_weak else [],
            "allow_weak": allow_weak,
            "probe_only": probe_only,
            "env_names": sorted(env),
            "output_cap_bytes": limits.output_bytes,
            "max_npz_bytes": _MAX_NPZ_BYTES,
            "cell_timeout_s": max(1, int(limits.timeout_s)),
        }
        inner = [sys.executable, "-I", str(_CHILD), f"{grader_dir}/job.json"]
        if use_bwrap:
            if bwrap is None:  # not expected: use_bwrap is only true when bwrap was found
                raise RuntimeError(f"bwrap is not installed in {_SYSTEM_PATH}")
            box = _bwrap_command(bwrap, job_dir, inner, env, limits, hide, job_uid)
            job["bound"], job["hide"] = box.bound, box.hide
            command = box.argv
        else:
            job["bound"], job["hide"] = [], [str(p) for p in hide]
            command = inner
        (inside / "job.json").write_text(json.dumps(job), encoding="utf-8")
        for name in ("job.json", "plan.json", "submission.ipynb", "inputs.npz"):
            (inside / name).chmod(0o644)
        nproc = _nproc_limit(limits, job_uid)
        start = time.perf_counter()
        proc = subprocess.Popen(
            command,
            cwd=job_dir if use_bwrap else scratch,
            env=env if not use_bwrap else {"PATH": _SYSTEM_PATH, "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_limit(limits, nproc),
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        write_fd = None
        kept: list[bytes] = []
        result_box: list[bytes] = []
        reader = threading.Thread(target=_drain, args=(proc.stdout, limits.output_bytes, kept), daemon=True)
        reader.start()
        result_reader = threading.Thread(
            target=_drain,  # the result pipe, capped like the log
            args=(os.fdopen(read_fd, "rb"), _MAX_REPORT_BYTES + _MAX_NPZ_BYTES + (1 << 20), result_box),
            daemon=True,
        )
        read_fd = None
        result_reader.start()
        try:
            returncode = proc.wait(timeout=limits.timeout_s)
            ended = "finished"
        except subprocess.TimeoutExpired:
            _kill(proc)
            returncode = proc.wait()
            ended = "timeout"
        _kill(proc)  # stray processes, if any outlived the PID namespace's first process
        wall_s = time.perf_counter() - start
        reader.join(timeout=5)
        result_reader.join(timeout=5)
        log = b"".join(kept).decode("utf-8", "replace")
        protections = [*(["rlimits"] if sys.platform == "linux" else []), "own-session", "output-cap"]
        if not use_bwrap:
            protections.append("scrubbed-env")
            protections += ["nproc"] if nproc else []
        for line in log.splitlines():
            if line.startswith("EFFLAB-SANDBOX "):  # the first such line, printed before any student code ran
                try:
                    protections += [str(p) for p in json.loads(line[len("EFFLAB-SANDBOX ") :])]
                except ValueError:
                    pass
                break
        result, report_bytes, npz_bytes = _parse_result(b"".join(result_box))
        notes: list[str] = []
        report = _json(report_bytes)
        outputs = load_outputs(npz_bytes, _MAX_NPZ_BYTES, notes)
        if ended == "finished":
            ended = str(result.get("outcome", "crashed")) if result else "crashed"
        errors = result.get("errors", []) if isinstance(result.get("errors"), list) else []
        missing = [p for p in _required(hide) if p not in protections]
        vm_peak = report.pop("_vm_peak_kb", None)
        return RunResult(
            ended=ended,
            returncode=returncode,
            wall_s=wall_s,
            errors=tuple(e for e in errors if isinstance(e, dict)),
            report=report,
            outputs=outputs,
            output_truncated=bool(result.get("output_truncated")) or "[efflab: output truncated]" in log,
            protections=tuple(dict.fromkeys(protections)),
            log=log[-4000:],
            missing=tuple(missing),
            notes=tuple(notes),
            resources={"vm_peak_kb": vm_peak if isinstance(vm_peak, int) else None},
        )
    finally:
        for fd in (read_fd, write_fd):
            if fd is not None:
                os.close(fd)
        if proc is not None and proc.poll() is None:
            _kill(proc)
        if job_dir is not None:
            shutil.rmtree(job_dir, ignore_errors=True)
        _give_back_uid(job_uid)


def probe_isolation(hide: tuple[str, ...] = (), limits: Limits | None = None) -> RunResult:
    """Start one empty sandbox and return what its driver verified (``protections``) and what it lacks (``missing``).

    ``efflab grade`` calls this once before grading: without bubblewrap, or with a protection the host cannot give,
    it refuses to grade unless the instructor passes ``--allow-weak-isolation``.
    """
    limits = limits or Limits(timeout_s=60)
    result = run_submission("{}", {"questions": [], "max_elements": 1}, {}, limits, hide, probe_only=True)
    if _which("bwrap") is None:
        return RunResult(
            ended="refused",
            returncode=None,
            wall_s=result.wall_s,
            protections=result.protections,
            missing=tuple(_required(hide)),
            notes=("bubblewrap (bwrap) is not installed",),
        )
    return result


@functools.lru_cache(maxsize=1)
def isolation_available() -> bool:
    """Whether bubblewrap is installed and an empty sandbox verifies every required protection here (tried once).

    >>> isinstance(isolation_available(), bool)
    True
    """
    if sys.platform != "linux" or _which("bwrap") is None:
        return False
    return not probe_isolation().missing


def namespaces_available() -> bool:
    """Former name of :func:`isolation_available` (kept for existing callers)."""
    return isolation_available()
