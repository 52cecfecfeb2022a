"""A motivated student against ``efflab grade``: each attack is a real submission, graded in real bubblewrap sandboxes
beside honest ones, and judged from outside (the gradebook, the feedback, the host's files and processes).

An attack must score nothing it did not earn and harm nobody; the honest submissions graded beside them keep full
marks; no marker appears outside the sandbox; the run ends with one row per distinct file. Attacks that would succeed
report what they found by raising ``RuntimeError("FOUND: ...")``, which the feedback quotes, so "FOUND" in any feedback
means a protection failed. The ``sandbox`` marker keeps them apart (they start ~40 sandboxes); ``make test`` runs
them, in pytest's temporary folders.
"""

from __future__ import annotations

import csv
import io
import json
import os
import site
import stat
import sys
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

import efflab
from efflab.grading import runner
from efflab.grading.cli import add_cli
from efflab.grading.grade import merge, shard
from efflab.grading.runner import REQUIRED_PROTECTIONS

DEMO = Path(__file__).parent / "data" / "demo_lab"
MASTER = DEMO / "masters" / "demo.ipynb"
STUDENT = DEMO / "demo.ipynb"
SPEC_DIR = Path(efflab.__file__).resolve().parent / "grading" / "labs"
SECRET = "efflab-test-secret-7f3a"  # set in the grader's environment; no submission may see it

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="bubblewrap sandboxes are Linux only"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def _cli(*argv: str) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def _grade(out: Path, files, *extra: str) -> dict[str, dict]:
    argv = ["grade", *map(str, files), "--lab", "demo", "--out", str(out), "--hide", str(DEMO), *extra]
    assert _cli(*argv) == 0
    with out.open(newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


def _attack(code: str, base: Path = STUDENT):
    nb = nbformat.read(base, 4)
    nb.cells.append(nbformat.v4.new_code_cell(code))
    return nb


def _patched_zip(kind: str) -> str:
    """Code that replaces numpy.savez in the kernel, so the harness writes a hostile outputs.npz of this kind."""
    return f"""
import io, zipfile, numpy
def _evil(path, **arrays):
    buffer = io.BytesIO()
    if {kind!r} == "huge_shape":  # a header declaring 2**40 float64s (8 TiB) over 8 bytes of data
        head = io.BytesIO()
        numpy.lib.format.write_array_header_1_0(head, {{"descr": "<f8", "fortran_order": False, "shape": (2**40,)}})
        member = head.getvalue() + bytes(8)
    else:
        member = io.BytesIO(); numpy.save(member, numpy.arange(3.0)); member = member.getvalue()
    with zipfile.ZipFile(buffer, "w") as z:
        for name in arrays:
            z.writestr(name + ".npy", member)
    data = bytearray(buffer.getvalue())
    for sig, method_at, flag_at in ((b"PK\\x03\\x04", 8, 6), (b"PK\\x01\\x02", 10, 8)):
        at = data.find(sig)
        while at >= 0:
            if {kind!r} == "method":
                data[at + method_at] = 99  # AES / unknown compression method
            if {kind!r} == "encrypted":
                data[at + flag_at] |= 1
            at = data.find(sig, at + 4)
    open(path, "wb").write(bytes(data))
numpy.savez = _evil
intensity = lambda f, b: numpy.asarray(f) / numpy.asarray(b)
"""


def _attacks(tmp: Path) -> dict[str, tuple[object, str, float]]:
    """name -> (notebook, expected status, most points)."""
    outside = tmp / "outside"
    site_dirs = [d for d in site.getsitepackages() if os.path.isdir(d)]
    writable_targets = [*site_dirs, str(Path(efflab.__file__).parent), str(outside), "/usr/lib", "/etc", "/"]
    attacks = {
        "umount_and_import": (
            _attack(
                "import ctypes, importlib, json, subprocess\n"
                "libc = ctypes.CDLL(None, use_errno=True)\n"
                "job = json.load(open('/grader/job.json'))\n"
                "for p in job['hide'] + job['bound'] + ['/']:\n"
                "    libc.umount2(p.encode(), 2)\n"
                "    subprocess.run(['umount', '-l', p], capture_output=True)\n"
                "ref = importlib.import_module('efflab.grading.labs.demo')\n"
                "intensity, iron_law_time_s = ref.intensity, ref.iron_law_time_s\n"
                "bandwidth_bytes_per_s = ref.fitted_bandwidth_bytes_per_s()\n"
                "raise RuntimeError('FOUND: the spec after umount')"
            ),
            "graded",
            0,
        ),
        "nested_userns": (
            _attack(
                "import subprocess\n"
                f"spec = {str(SPEC_DIR)!r}\n"
                "for cmd in (['unshare', '-Urm', 'sh', '-c', f'umount -l {spec}; cat {spec}/demo.py'],\n"
                "            ['unshare', '-U', '--map-root-user', 'cat', f'{spec}/demo.py']):\n"
                "    out = subprocess.run(cmd, capture_output=True, text=True).stdout\n"
                "    if 'def ' in out:\n"
                "        raise RuntimeError('FOUND: the spec through a nested user namespace')"
            ),
            "graded",
            0,
        ),
        "remount_and_plant": (
            _attack(
                "import os, subprocess\n"
                f"targets = {writable_targets!r}\n"
                "for t in targets:\n"
                "    subprocess.run(['mount', '-o', 'remount,bind,rw', t], capture_output=True)\n"
                "    for name in ('efflab_pwned.pth', 'efflab_pwned.txt'):\n"
                "        try:\n"
                "            open(os.path.join(t, name), 'w').write('import os\\n')\n"
                "            raise RuntimeError(f'FOUND: wrote {t}')\n"
                "        except OSError:\n"
                "            pass"
            ),
            "graded",
            0,
        ),
        "path_wrapper": (
            _attack(
                "import os\n"
                "for d in os.environ.get('PATH', '').split(':') + ['/usr/local/bin', '/usr/bin', '/bin']:\n"
                "    for tool in ('unshare', 'bwrap', 'setpriv', 'mount', 'efflab'):\n"
                "        try:\n"
                "            with open(os.path.join(d, tool + '-pwned'), 'w') as f:\n"
                "                f.write('#!/bin/sh\\n')\n"
                "            raise RuntimeError(f'FOUND: wrote into {d}')\n"
                "        except OSError:\n"
                "            pass"
            ),
            "graded",
            0,
        ),
        "secrets": (
            _attack(
                "import glob, os, pathlib, subprocess\n"
                "import efflab\n"
                "root = pathlib.Path(efflab.__file__).resolve().parents[1]\n"
                "found = []\n"
                f"spec = {str(SPEC_DIR)!r}\n"
                "for p in [root / '.git' / 'HEAD', root / 'labs' / 'masters', root / 'tests', spec + '/demo.py',\n"
                "          '/etc/shadow', '/root/.ssh', '/root/.bash_history', '/home']:\n"
                "    try:\n"
                "        p = pathlib.Path(p)\n"
                "        found += [str(p)] if (p.is_file() and p.read_bytes()) or (p.is_dir() and any(p.iterdir())) else []\n"
                "    except OSError:\n"
                "        pass\n"
                "git = subprocess.run(['git', '-C', str(root), 'show', 'HEAD:efflab/grading/labs/demo.py'],\n"
                "                     capture_output=True, text=True)\n"
                "found += ['git show'] if 'def ' in git.stdout else []\n"
                "for environ in glob.glob('/proc/*/environ'):\n"
                "    try:\n"
                f"        found += [environ] if {SECRET!r}.encode() in open(environ, 'rb').read() else []\n"
                "    except OSError:\n"
                "        pass\n"
                f"found += ['os.environ'] if {SECRET!r} in str(os.environ) else []\n"
                "if found:\n"
                "    raise RuntimeError(f'FOUND: {found}')"
            ),
            "graded",
            0,
        ),
        "classmates": (
            _attack(
                "import glob, os\n"
                "mine = open('/grader/submission.ipynb', 'rb').read()\n"
                "seen = glob.glob('/tmp/efflab-grade-*')\n"
                "for p in glob.glob('/proc/[0-9]*/root/grader/submission.ipynb'):\n"
                "    try:\n"
                "        seen += [p] if open(p, 'rb').read() != mine else []\n"
                "    except OSError:\n"
                "        pass\n"
                "seen += [p for p in glob.glob('/proc/[0-9]*') if os.stat(p).st_uid != os.getuid()]\n"
                "own_ns = os.readlink('/proc/self/ns/pid')\n"
                "for p in glob.glob('/proc/[0-9]*/ns/pid'):\n"
                "    try:\n"
                "        seen += [p] if os.readlink(p) != own_ns else []\n"
                "    except OSError:\n"
                "        pass\n"
                "if seen:\n"
                "    raise RuntimeError(f'FOUND: {seen[:5]}')"
            ),
            "graded",
            0,
        ),
        "fork_bomb": (
            _attack(
                "import os, time\n"
                "children = 0\n"
                "for _ in range(5000):\n"
                "    try:\n"
                "        if os.fork() == 0:\n"
                "            time.sleep(600)\n"
                "            os._exit(0)\n"
                "        children += 1\n"
                "    except OSError:\n"
                "        break\n"
                "if children >= 5000:\n"
                "    raise RuntimeError('FOUND: no process limit')"
            ),
            "graded",
            0,
        ),
        "fill_scratch": (
            _attack(
                "written = 0\n"
                "for path in ('/sandbox/big', '/tmp/big2', '/dev/shm/big3'):\n"
                "    try:\n"
                "        with open(path, 'wb') as f:\n"
                "            for _ in range(128):\n"
                "                f.write(bytes(16 << 20))\n"
                "                written += 16 << 20\n"
                "    except OSError:\n"
                "        pass\n"
                "if written >= 2 << 30:\n"
                "    raise RuntimeError(f'FOUND: wrote {written} bytes')"
            ),
            "graded",
            0,
        ),
        "npz_method": (_attack(_patched_zip("method")), "graded", 0),
        "npz_encrypted": (_attack(_patched_zip("encrypted")), "graded", 0),
        "npz_huge_shape": (_attack(_patched_zip("huge_shape")), "graded", 0),
        "kill_everything": (_attack("import os, signal\nos.kill(-1, signal.SIGKILL)"), "crashed", 0),
    }
    malformed = nbformat.read(MASTER, 4)
    malformed.metadata["efflab"] = "x"
    attacks["metadata_malformed"] = (malformed, "graded", 5)
    spoof = nbformat.read(MASTER, 4)
    spoof.metadata["efflab"] = {"student": "alice", "lab": "=demo"}
    attacks["mallory"] = (spoof, "graded", 5)
    formula = nbformat.read(STUDENT, 4)
    formula.metadata["efflab"] = {"student": "+SUM(A1)"}
    attacks['=HYPERLINK("x")'] = (formula, "graded", 0)
    return attacks


def _special_files(subs: Path) -> dict[str, tuple[str, str]]:
    """Files that are not honest notebooks: name -> (expected status, words the flag or feedback must contain)."""
    made = {}
    os.symlink(MASTER.resolve(), subs / "link_to_master.ipynb")
    made["link_to_master.ipynb"] = ("invalid", "symbolic link")
    (subs / "linked_folder").symlink_to(MASTER.parent, target_is_directory=True)  # a zip's folder link to masters
    made["linked_folder/demo.ipynb"] = ("invalid", "hidden from submissions")
    os.symlink("/dev/zero", subs / "dev_zero.ipynb")
    made["dev_zero.ipynb"] = ("invalid", "symbolic link")
    os.symlink("/etc/shadow", subs / "shadow.ipynb")
    made["shadow.ipynb"] = ("invalid", "symbolic link")
    os.mkfifo(subs / "fifo.ipynb")
    made["fifo.ipynb"] = ("invalid", "FIFO")
    (subs / "folder.ipynb").mkdir()
    made["folder.ipynb"] = ("invalid", "folder")
    with (subs / "huge.ipynb").open("wb") as f:
        f.write(b'{"cells": [' + b" " * (17 << 20) + b"]}")
    made["huge.ipynb"] = ("invalid", "larger than")
    cell = {"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": [], "execution_count": None}
    (subs / "many_cells.ipynb").write_text(json.dumps({"cells": [cell] * 3000, "metadata": {}}))
    made["many_cells.ipynb"] = ("invalid", "cells")
    (subs / "deep.ipynb").write_text("[" * 100_000 + "]" * 100_000)
    made["deep.ipynb"] = ("invalid", "not a notebook")
    (subs / "binary.ipynb").write_bytes(b"\xff\xfe" + os.urandom(64))
    made["binary.ipynb"] = ("invalid", "UTF-8")
    return made


def _markers_outside(tmp: Path) -> list[str]:
    places = [*site.getsitepackages(), str(Path(efflab.__file__).parent), str(tmp / "outside"), "/usr/lib", "/etc", "/"]
    places += os.environ.get("PATH", "").split(":") + ["/usr/local/bin", "/usr/bin", "/bin"]
    found = []
    for place in places:
        for name in ("efflab_pwned.pth", "efflab_pwned.txt"):
            found += [f"{place}/{name}"] if os.path.lexists(os.path.join(place, name)) else []
        for tool in ("unshare", "bwrap", "setpriv", "mount", "efflab"):
            found += [f"{place}/{tool}-pwned"] if os.path.lexists(os.path.join(place, tool + "-pwned")) else []
    return found


def _job_uid_processes() -> list[str]:
    left = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid >= runner._JOB_UID_BASE:
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":  # a zombie runs nothing
                    left.append(entry.name)
        except (OSError, IndexError):
            continue
    return left


def test_attacks_score_nothing_harm_nobody_and_leave_no_trace(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFLAB_TEST_SECRET", SECRET)
    (tmp_path / "outside").mkdir()
    canary = tmp_path / "outside" / "canary.txt"
    canary.write_text("still here")
    subs = tmp_path / "subs"
    subs.mkdir()
    attacks = _attacks(tmp_path)
    files = []
    for number, (name, (nb, _, _)) in enumerate(attacks.items()):
        path = subs / f"{name}.ipynb"
        nbformat.write(nb, path)
        files.append(path)
        if number % 3 == 0:  # honest classmates graded beside the attacks (--jobs 2)
            control = subs / f"honest{number:02d}.ipynb"
            nbformat.write(nbformat.read(MASTER, 4), control)
            files.append(control)
    special = _special_files(subs)
    files += [subs / name for name in special]
    control = files[1]
    (subs / "sub").mkdir()
    files += [subs / "." / control.name, subs / "sub" / ".." / control.name]  # one file, three spellings
    files.append(subs / "missing.ipynb")
    rows = _grade(tmp_path / "out" / "gradebook.csv", files, "--jobs", "2", "--timeout", "30", "--memory-mb", "3072")
    by_name = {str(Path(f).relative_to(subs)).lstrip("'"): row for f, row in rows.items()}
    distinct = {str(p.relative_to(subs)).replace("sub/../", "").removeprefix("./") for p in files}
    assert set(by_name) == distinct and len(rows) == len(distinct)  # one row per distinct file, none lost
    feedback = {name: (tmp_path / "out" / row["feedback"]).read_text() for name, row in by_name.items()}
    assert not [name for name, text in feedback.items() if "FOUND" in text], feedback
    for name, (_, status, most) in attacks.items():
        row = by_name[f"{name}.ipynb"]
        assert row["status"] == status and float(row["total"]) <= most, (name, row, feedback[f"{name}.ipynb"])
    honest = [row for name, row in by_name.items() if name.startswith("honest")]
    assert len(honest) >= 5 and all(r["status"] == "graded" and float(r["total"]) == 5 for r in honest), honest
    for name, (status, words) in special.items():
        row = by_name[name]
        assert row["status"] == status and words in row["flags"] + feedback[name], (name, row)
        assert float(row["wall_s"]) == 0  # refused before anything ran
    assert "root:" not in feedback["shadow.ipynb"]  # nothing of an invalid file is echoed
    assert by_name["missing.ipynb"]["status"] == "invalid"
    for name in ("npz_method", "npz_encrypted", "npz_huge_shape"):
        assert "outputs-refused" in by_name[f"{name}.ipynb"]["flags"], by_name[f"{name}.ipynb"]
    assert "metadata-malformed" in by_name["metadata_malformed.ipynb"]["flags"]
    assert (
        "metadata-names=alice" in by_name["mallory.ipynb"]["flags"] and by_name["mallory.ipynb"]["student"] == "mallory"
    )
    raw = (tmp_path / "out" / "gradebook.csv").read_text()
    with (tmp_path / "out" / "gradebook.csv").open(newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not c[1:2].isdigit())], raw
    assert canary.read_text() == "still here"
    assert _markers_outside(tmp_path) == []
    assert _job_uid_processes() == []  # the fork bomb's sleepers died with their sandbox
    protections = set(by_name[control.name]["protections"].split(";"))
    assert set(REQUIRED_PROTECTIONS) <= protections, protections
    assert {"rlimits", "own-session", "output-cap"} <= protections


def test_duplicates_give_one_row_with_and_without_shards_and_merge_agrees(tmp_path):
    subs = tmp_path / "subs"
    (subs / "sub").mkdir(parents=True)
    files = []
    for name in ("a", "b", "c"):
        files.append(subs / f"{name}.ipynb")
        nbformat.write(nbformat.read(MASTER if name != "b" else STUDENT, 4), files[-1])
    spelled = [*files, subs / "." / "a.ipynb", subs / "sub" / ".." / "a.ipynb"]
    whole = _grade(tmp_path / "whole" / "gradebook.csv", spelled, "--jobs", "2")
    parts = [tmp_path / f"part{k}" / "gradebook.csv" for k in (1, 2)]
    for k, out in enumerate(parts, 1):
        _grade(out, shard(spelled, f"{k}/2"), "--jobs", "2")
    assert merge(parts, tmp_path / "merged.csv") == 3 == len(whole)
    with (tmp_path / "merged.csv").open(newline="") as handle:
        merged = {row["file"]: row for row in csv.DictReader(handle)}
    assert set(merged) == set(whole)
    for file, row in whole.items():
        assert {k: v for k, v in row.items() if k != "wall_s"} == {
            k: v for k, v in merged[file].items() if k != "wall_s"
        }


def test_without_bubblewrap_the_grader_refuses_unless_weak_isolation_is_allowed(tmp_path, monkeypatch, capsys):
    path = tmp_path / "subs" / "master.ipynb"
    path.parent.mkdir()
    nbformat.write(nbformat.read(MASTER, 4), path)
    real_which = runner._which
    monkeypatch.setattr(runner, "_which", lambda name: None if name == "bwrap" else real_which(name))
    out = tmp_path / "gradebook.csv"
    assert _cli("grade", str(path), "--lab", "demo", "--out", str(out)) == 2
    assert "refusing to grade" in capsys.readouterr().err and not out.exists()
    rows = _grade(out, [path], "--allow-weak-isolation")
    row = next(iter(rows.values()))
    assert (row["status"], float(row["total"])) == ("graded", 5)  # graded, and the row says how weakly
    assert "weak-isolation" in row["flags"] and "read-only-fs" not in row["protections"]


def test_npz_members_are_checked_before_loading():
    def npz(**arrays) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    good = npz(q1__0=np.arange(4.0))
    assert runner.load_outputs(good)["q1__0"].tolist() == [0, 1, 2, 3]
    for patch, expect in (((8, 99), "compression method 99"), ((6, 1), "encrypted")):
        data = bytearray(good)
        data[patch[0]] |= patch[1]
        central = data.find(b"PK\x01\x02")
        data[central + patch[0] + 2] |= patch[1]
        problems = []
        assert runner.load_outputs(bytes(data), problems=problems) == {} and expect in problems[0], problems
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("q1__0.npy", head.getvalue() + bytes(8))
    problems = []
    assert runner.load_outputs(buffer.getvalue(), problems=problems) == {}
    assert "declares 8796093022208 bytes" in problems[0]


def test_the_sandbox_verifies_every_protection_it_claims():
    """One empty sandbox: every required protection was verified from inside, by the driver's probes."""
    in_etc = next(p for p in ("/etc/hostname", "/etc/debian_version", "/etc/passwd") if os.path.getsize(p) > 0)
    probe = runner.probe_isolation(hide=(str(SPEC_DIR), in_etc))  # a folder in efflab, a file in a system folder
    assert probe.ended == "probe" and probe.missing == (), probe
    assert set(REQUIRED_PROTECTIONS) <= set(probe.protections)
    assert stat.S_ISDIR(os.stat(SPEC_DIR).st_mode) and any(SPEC_DIR.iterdir())  # hidden inside, untouched outside


def test_a_checkout_under_tmp_is_bound_inside_the_sandboxes_own_tmp(tmp_path, monkeypatch):
    """CI clones the repository anywhere, /tmp included: a bound folder under /tmp must not clash with the private
    /tmp (bwrap refused to start: "Can't make symlink at /tmp: File exists")."""
    extra = tmp_path / "checkout"
    extra.mkdir()
    (extra / "module.py").write_text("x = 1\n")
    os.chmod(tmp_path, 0o755)
    folders = runner._python_folders()
    monkeypatch.setattr(runner, "_python_folders", lambda: [*folders, extra.resolve()])
    probe = runner.probe_isolation(hide=(str(SPEC_DIR),))
    assert probe.ended == "probe" and probe.missing == (), probe
