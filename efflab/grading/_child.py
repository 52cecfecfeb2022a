"""The grader's driver inside the sandbox: verify the sandbox, run a submission with nbclient, run the harness, report.

Run as a script (``python _child.py /grader/job.json``) by :mod:`efflab.grading.runner`, inside bubblewrap and its
resource limits. It imports only the standard library, nbformat and nbclient (never efflab), so it needs nothing the
sandbox hides. The kernel nbclient starts is its child and inherits every limit.

Before any student code runs it probes the sandbox from inside (tries the umount, the remount, the writes, a nested
user namespace, reads the hidden paths) and prints one ``EFFLAB-SANDBOX {json}`` line with the protections it
verified; the grader trusts the first such line only. If a required protection is missing and the instructor did not
allow weak isolation, it refuses to run the notebook. Results go back through a pipe the grader opened (``result_fd``),
never through the file system: the sandbox can write nowhere outside its own size-capped tmpfs.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import stat
import sys
from pathlib import Path

# Kernel-side cap on printed text (the grader also caps what nbclient keeps): a notebook printing 200 MB must not
# carry 200 MB through the kernel's message channel. IPython 9 swaps ``sys.stdout.write`` for a history "tee" around
# every cell and puts the original back afterwards, so the cap is re-applied before each cell (pre_run_cell), inside
# the tee: neither the channel nor IPython's output history sees more than the cap.
_PRELUDE = """
def __efflab_cap(limit):
    import sys
    count = [0]
    def wrap(write):
        if getattr(write, "_efflab_capped", False):
            return write
        def capped(text, *args, **kwargs):
            count[0] += len(text)
            if count[0] <= limit:
                return write(text, *args, **kwargs)
            if count[0] - len(text) <= limit:
                write("\\n[efflab: output truncated]\\n")
            return len(text)
        capped._efflab_capped = True
        return capped
    def cap_streams(*_):
        for name in ("stdout", "stderr"):
            try:
                getattr(sys, name).write = wrap(getattr(sys, name).write)
            except AttributeError:
                pass
    cap_streams()
    get_ipython().events.register("pre_run_cell", cap_streams)
__efflab_cap({limit})
del __efflab_cap
"""

_CLONE_NEWUSER = 0x10000000  # <linux/sched.h>
_MS_RDONLY, _MS_REMOUNT, _MS_BIND = 1, 32, 4096  # <linux/mount.h>
_MNT_DETACH = 2  # <sys/mount.h>
_TMPFS_TYPES = ("tmpfs",)
_MAX_REPORT_BYTES = 1 << 20  # harness.json: a few kB expected


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _status_fields() -> dict[str, str]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return fields


def _mounts() -> dict[str, str]:
    """Mount point -> file system type, from /proc/self/mountinfo (the last mount on a point wins)."""
    found = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        point = left.split()[4].replace("\\040", " ")
        found[point] = right.split()[0] if right else ""
    return found


def _in_child(action) -> bool:
    """Run ``action()`` in a forked child (so a probe that succeeds cannot change this process); True if it returned
    True there."""
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(0 if action() else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _fails(call) -> bool:
    """True when a libc call returns -1 (refused)."""
    return call() == -1


def _looks_empty(path: str) -> bool:
    try:
        return not os.listdir(path) if os.path.isdir(path) else os.path.getsize(path) == 0
    except OSError:  # absent or unreadable counts as hidden
        return True


def _write_refused(directory: str) -> bool:
    probe = os.path.join(directory, f".efflab-probe-{os.getpid()}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT)
    os.close(fd)
    os.unlink(probe)
    return False


def probe(job: dict) -> list[str]:
    """The protections verified from inside, each by trying what it forbids (see the module docstring)."""
    done = []
    status = _status_fields()
    libc = _libc()
    # Root's files (/usr) show as another uid than ours only if our uid is not root's on the host: through every user
    # namespace between, root maps to the overflow uid, never to us.
    try:
        root_is_not_us = os.stat("/usr").st_uid != os.getuid()
    except OSError:
        root_is_not_us = False
    caps = [int(status.get(f"Cap{kind}", "1"), 16) for kind in ("Eff", "Prm", "Inh", "Amb")]
    if os.getuid() != 0 and root_is_not_us and not any(caps):
        done.append("unprivileged")  # not root inside, not root outside, no capability
    if status.get("NoNewPrivs") == "1":
        done.append("no-new-privs")
    if _in_child(lambda: _fails(lambda: libc.unshare(_CLONE_NEWUSER))):
        done.append("no-userns")  # a nested user namespace would give this uid capabilities over copies of the mounts
    covers = [path for path in job.get("hide", []) if os.path.exists(path)]
    points = ["/", *covers, *job.get("bound", [])]

    def _unmount_refused():
        return all(_fails(lambda p=p: libc.umount2(p.encode(), _MNT_DETACH)) for p in points)

    def _remount_refused():
        flags = _MS_REMOUNT | _MS_BIND
        return all(_fails(lambda p=p: libc.mount(None, p.encode(), None, flags, None)) for p in points)

    if _in_child(_unmount_refused) and _in_child(_remount_refused):
        done.append("mounts-locked")
    if all(_write_refused(d) for d in ["/", *job.get("bound", [])]):
        done.append("read-only-fs")
    if job.get("hide") and all(_looks_empty(path) for path in job["hide"]):
        done.append("keys-hidden")
    try:
        interfaces = {line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]}
        if interfaces <= {"lo"}:
            done.append("no-network")
    except OSError:
        pass
    me = os.getuid()
    others = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid != me:
                    others.append(entry.name)
            except OSError:
                continue
    if not others and os.getpid() <= 8:
        done.append("pid-namespace")  # only this sandbox's own processes exist: nothing outside to signal or trace
    mounts = _mounts()
    scratch = job["scratch"]
    if mounts.get("/tmp") in _TMPFS_TYPES and mounts.get("/dev/shm") in _TMPFS_TYPES and _looks_empty("/dev/shm"):
        done.append("private-tmp")
    writable = (scratch, "/tmp", "/dev/shm")
    if all(mounts.get(point) in _TMPFS_TYPES for point in writable):
        sizes = [os.statvfs(point).f_blocks * os.statvfs(point).f_frsize for point in writable]
        if max(sizes) <= int(job["scratch_bytes"]) + (1 << 20):
            done.append("scratch-capped")
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    if nproc != resource.RLIM_INFINITY and root_is_not_us:
        done.append("nproc")  # RLIMIT_NPROC binds for a non-root real uid only
    if set(os.environ) <= set(job.get("env_names", ())) | {"PWD"}:
        done.append("scrubbed-env")
    else:
        print(
            "EFFLAB-SANDBOX-NOTE unexpected environment: "
            + ", ".join(sorted(set(os.environ) - set(job.get("env_names", ()))))
        )
    return done


def _read_plain(path: str, max_bytes: int) -> bytes:
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return b""
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            return handle.read(max_bytes + 1)[:max_bytes]
    except OSError:
        return b""


def _send(fd: int, result: dict, report: bytes = b"", npz: bytes = b"") -> None:
    """One header line of JSON, then the report's and the outputs' bytes (their lengths are in the header)."""
    header = json.dumps({**result, "report_bytes": len(report), "npz_bytes": len(npz)}).encode() + b"\n"
    data = memoryview(header + report + npz)
    while data:
        written = os.write(fd, data)
        data = data[written:]


def capped_client_class() -> type:
    """The ``nbclient.NotebookClient`` subclass the driver runs notebooks with: it keeps a capped amount of output.

    Built on call, not at import: nbclient is imported only after the sandbox has been verified. Each instance keeps
    its own counters (``efflab_kept_bytes``, ``efflab_truncated``), set in ``__init__``; nothing is kept on the class.

    Returns
    -------
    type
        ``CappedClient(nb, *, cap_bytes, **kwargs)``: keeps at most ``cap_bytes`` bytes of stream and display outputs
        (the rest is dropped and ``efflab_truncated`` set); error outputs are always kept, shortened.
    """
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        """Keeps at most ``cap_bytes`` bytes of outputs; error outputs are always kept, shortened."""

        def __init__(self, nb, *, cap_bytes: int, **kwargs):
            """Wrap ``NotebookClient(nb, **kwargs)`` with this instance's own output budget of ``cap_bytes``.

            Parameters
            ----------
            nb : nbformat.NotebookNode
                The notebook to execute.
            cap_bytes : int
                Bytes of stream and display output kept for this notebook.
            **kwargs
                Passed to ``NotebookClient``.
            """
            super().__init__(nb, **kwargs)
            self.efflab_cap_bytes = int(cap_bytes)
            self.efflab_kept_bytes = 0  # output bytes seen so far (kept or dropped), this instance only
            self.efflab_truncated = False

        def output(self, outs, msg, display_id, cell_index):
            """Keep one output message while the byte budget lasts (``NotebookClient.output``'s signature).

            Parameters
            ----------
            outs : list
                The cell's outputs so far.
            msg : dict
                The kernel's iopub message.
            display_id : str or None
                Its display id.
            cell_index : int
                The cell's index.

            Returns
            -------
            nbformat.NotebookNode or None
                What ``NotebookClient.output`` returns, or None for a dropped output.
            """
            content = msg.get("content", {})
            if msg["msg_type"] == "error":
                content["traceback"] = content.get("traceback", [])[-5:]
                content["evalue"] = str(content.get("evalue", ""))[:500]
                return super().output(outs, msg, display_id, cell_index)
            if "[efflab: output truncated]" in str(content.get("text", "")):
                self.efflab_truncated = True  # the kernel-side cap said so
            size = len(content.get("text", "")) + len(json.dumps(content.get("data", {})))
            self.efflab_kept_bytes += size
            if self.efflab_kept_bytes > self.efflab_cap_bytes:
                self.efflab_truncated = True
                return None
            return super().output(outs, msg, display_id, cell_index)

    return CappedClient


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    fd = int(job["result_fd"])
    os.set_inheritable(fd, False)  # the kernel (a student's process) does not inherit the result channel
    protections = probe(job) if job.get("sandboxed") else []
    print("EFFLAB-SANDBOX " + json.dumps(protections), flush=True)
    missing = [p for p in job.get("required", []) if p not in protections]
    if job.get("probe_only") or (missing and not job.get("allow_weak")):
        outcome = "probe" if job.get("probe_only") else "refused"
        _send(fd, {"outcome": outcome, "protections": protections, "missing": missing})
        return 0
    scratch = job["scratch"]
    os.chdir(scratch)

    # jsonschema (under nbformat) imports rfc3987_syntax, which builds a grammar at import: ~1.2 CPU-s per child,
    # more than the kernel's start. Its URI-format checks are never needed here, and jsonschema works without it.
    # None in sys.modules makes the import fail (ImportError), as the import system documents; typeshed's
    # dict[str, ModuleType] leaves that out.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    cap = int(job["output_cap_bytes"])
    CappedClient = capped_client_class()

    submitted = nbformat.read(job["notebook"], as_version=4)
    harness = Path(__file__).with_name("_harness.py").read_text(encoding="utf-8")
    cells = [nbformat.v4.new_code_cell(_PRELUDE.format(limit=cap))]
    cells += [nbformat.v4.new_code_cell(c.source) for c in submitted.cells if c.cell_type == "code"]
    cells.append(nbformat.v4.new_code_cell(harness.replace('"plan.json"', json.dumps(job["plan"]))))
    nb = nbformat.v4.new_notebook(cells=cells)
    km = AsyncKernelManager(kernel_name="python3", transport="ipc")  # unix sockets: no network needed, none opened
    client = CappedClient(
        nb, cap_bytes=cap, km=km, timeout=int(job["cell_timeout_s"]), allow_errors=True, shutdown_kernel="immediate"
    )
    outcome = "finished"
    try:
        client.execute()
    except DeadKernelError:
        outcome = "kernel died"
    except CellTimeoutError:
        outcome = "cell timeout"
    except Exception as exc:  # nbclient or jupyter_client failing on a hostile notebook
        outcome = f"runner error: {type(exc).__name__}: {str(exc)[:300]}"
    errors = []
    for index, cell in enumerate(nb.cells[1:-1]):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(
                    {"cell": index, "ename": str(out.get("ename"))[:100], "evalue": str(out.get("evalue"))[:300]}
                )
    harness_errors = [o for o in nb.cells[-1].get("outputs", []) if o.get("output_type") == "error"]
    result = {
        "outcome": outcome,
        "protections": protections,
        "errors": errors,
        "harness_error": str(harness_errors[0].get("ename")) if harness_errors else None,
        "output_truncated": bool(client.efflab_truncated),
        "output_bytes": int(client.efflab_kept_bytes),
    }
    report = _read_plain(os.path.join(scratch, "harness.json"), _MAX_REPORT_BYTES)
    npz = _read_plain(os.path.join(scratch, "outputs.npz"), int(job["max_npz_bytes"]))
    _send(fd, result, report, npz)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
