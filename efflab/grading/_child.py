"""The grader's child process: seal the sandbox, run a submission with nbclient, run the harness, report.

Run as a script (``python _child.py job.json``) by :mod:`efflab.grading.runner`, already inside its resource limits
and, where the OS allows, inside new user/network/PID/mount namespaces (``unshare``). It imports only the standard
library, nbformat and nbclient (never efflab), so it needs nothing the sandbox hides. The kernel nbclient starts is its
child and inherits every limit. Before any student code runs it prints one ``EFFLAB-SANDBOX {json}`` line to stdout
saying which protections it verified; the grader trusts the first such line only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

# Kernel-side cap on printed text (the grader also caps what nbclient keeps): a notebook printing 200 MB must not
# carry 200 MB through the kernel's message channel.
_PRELUDE = """
def __efflab_cap(limit):
    import sys
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        write, count = stream.write, [0]
        def capped(text, _write=write, _count=count):
            _count[0] += len(text)
            if _count[0] <= limit:
                return _write(text)
            if _count[0] - len(text) <= limit:
                _write("\\n[efflab: output truncated]\\n")
            return len(text)
        stream.write = capped
__efflab_cap({limit})
del __efflab_cap
"""


def _unescape(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def _looks_empty(path: str) -> bool:
    try:
        return not os.listdir(path) if os.path.isdir(path) else os.path.getsize(path) == 0
    except OSError:  # unreadable counts as hidden
        return True


def seal(scratch: str, hide: list[str]) -> list[str]:
    """Inside a fresh mount namespace: everything read-only but ``scratch``; ``hide`` paths covered by empty mounts."""
    done = []
    if os.getpid() == 1:
        done.append("pid-namespace")
    try:
        interfaces = {line.split(":")[0].strip() for line in Path("/proc/self/net/dev").read_text().splitlines()[2:]}
        if interfaces <= {"lo"}:
            done.append("no-network")
    except OSError:
        pass
    if not _mount("--bind", scratch, scratch):
        return done
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if point != scratch and point not in points:
            points.append(point)
    for point in points:
        _mount("-o", "remount,bind,ro", point)
    for path in hide:
        if scratch.startswith(path.rstrip("/") + "/"):  # covering it would cover the scratch folder too
            continue
        if os.path.isdir(path):
            _mount("-t", "tmpfs", "-o", "ro,size=4k,mode=0", "efflab-hidden", path)
        elif os.path.exists(path):
            _mount("--bind", "/dev/null", path)
    probe = os.path.join(os.path.dirname(scratch), f".efflab-probe-{os.getpid()}")
    try:  # verify rather than assume: a write beside the scratch folder must fail
        with open(probe, "w"):
            pass
        os.unlink(probe)
    except OSError:
        done.append("read-only-fs")
    if hide and all(_looks_empty(path) for path in hide):
        done.append("keys-hidden")
    return done


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    scratch = job["scratch"]
    protections = seal(scratch, job["hide"]) if job.get("namespaces") else []
    print("EFFLAB-SANDBOX " + json.dumps(protections), flush=True)
    os.chdir(scratch)

    # jsonschema (under nbformat) imports rfc3987_syntax, which builds a grammar at import: ~1.2 CPU-s per child,
    # more than the kernel's start. Its URI-format checks are never needed here, and jsonschema works without it.
    sys.modules.setdefault("rfc3987_syntax", None)
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    cap = int(job["output_cap_bytes"])

    class CappedClient(NotebookClient):
        """Keeps at most ``cap`` bytes of outputs; error outputs are always kept, shortened."""

        kept_bytes = 0
        truncated = False

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            if msg["msg_type"] == "error":
                content["traceback"] = content.get("traceback", [])[-5:]
                content["evalue"] = str(content.get("evalue", ""))[:500]
                return super().output(outs, msg, display_id, cell_index)
            size = len(content.get("text", "")) + len(json.dumps(content.get("data", {})))
            CappedClient.kept_bytes += size
            if CappedClient.kept_bytes > cap:
                CappedClient.truncated = True
                return None
            return super().output(outs, msg, display_id, cell_index)

    submitted = nbformat.read(job["notebook"], as_version=4)
    harness = Path(__file__).with_name("_harness.py").read_text(encoding="utf-8")
    cells = [nbformat.v4.new_code_cell(_PRELUDE.format(limit=cap))]
    cells += [nbformat.v4.new_code_cell(c.source) for c in submitted.cells if c.cell_type == "code"]
    cells.append(nbformat.v4.new_code_cell(harness))
    nb = nbformat.v4.new_notebook(cells=cells)
    km = AsyncKernelManager(kernel_name="python3", transport="ipc")  # unix sockets: no network needed, none opened
    client = CappedClient(nb, km=km, timeout=int(job["cell_timeout_s"]), allow_errors=True, shutdown_kernel="immediate")
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
        "errors": errors,
        "harness_error": str(harness_errors[0].get("ename")) if harness_errors else None,
        "output_truncated": CappedClient.truncated,
        "output_bytes": CappedClient.kept_bytes,
    }
    Path(job["result"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
