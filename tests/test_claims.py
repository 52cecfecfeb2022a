"""efflab.claims: verdicts from a page's own figures, the first applicable reason, strict mode, the reason builders."""

from __future__ import annotations

import os

import pytest

from efflab import claims
from efflab.claims import UnexplainedClaim, check, cores_contended, fits_cache, overhead_dominated, reason, within_noise


def test_held_claim_has_no_reason(monkeypatch):
    monkeypatch.setenv(claims.STRICT_ENV, "1")
    v = check("fusion makes the GELU faster", 9.3 > 1.5, "9.3x for 9x fewer bytes", [reason(True, "unused")])
    assert v.held and v.explained and v.why is None
    assert str(v) == "held here: fusion makes the GELU faster (9.3x for 9x fewer bytes)"


def test_first_applicable_reason_explains_a_claim_that_did_not_hold(monkeypatch):
    monkeypatch.setenv(claims.STRICT_ENV, "1")
    reasons = [reason(False, "a"), reason(True, "b"), reason(True, "c")]
    v = check("int8 is 4x faster", 1.3 >= 3, "1.3x", reasons)
    assert not v.held and v.explained and v.why == "b"
    assert v.to_text().splitlines() == ["not here: int8 is 4x faster (1.3x)", "  why: b"]


def test_unexplained_claim_prints_so_and_raises_only_in_strict_mode(monkeypatch):
    monkeypatch.delenv(claims.STRICT_ENV, raising=False)
    v = check("the add gains nothing", False, "x1.8", [reason(False, "a")])
    assert not v.explained and "UNEXPLAINED" in str(v)
    monkeypatch.setenv(claims.STRICT_ENV, "1")
    with pytest.raises(UnexplainedClaim, match="the add gains nothing"):
        check("the add gains nothing", False, "x1.8", [reason(False, "a")])
    with pytest.raises(AssertionError):  # UnexplainedClaim is an AssertionError: a failed cell in nbval
        check("the add gains nothing", False, "x1.8")


def test_fits_cache_picks_the_smallest_level_that_holds_the_set():
    caches = {"l1": 48 << 10, "l2": 2 << 20, "l3": 480 << 20}
    assert "fits in the l2" in fits_cache(1 << 20, caches).text
    assert "fits in the l3" in fits_cache(256 << 20, caches).text
    assert fits_cache(480 << 20, caches).applies  # exactly the size: fits
    out = fits_cache((480 << 20) + 1, caches)
    assert not out.applies and "exceeds every cache (480 MiB)" in out.text
    assert not fits_cache(1, {}).applies
    assert isinstance(fits_cache(1 << 40).applies, bool)  # this machine's caches


def test_noise_overhead_and_contention_thresholds():
    assert within_noise(1.05, 0.05).applies and within_noise(0.95, 0.05).applies
    assert not within_noise(1.06, 0.05).applies
    assert overhead_dominated(9.9e-6, 1e-6).applies and not overhead_dominated(10.1e-6, 1e-6).applies
    assert overhead_dominated(3e-6, 1e-6, factor=2).applies is False
    assert cores_contended(1.01).applies and not cores_contended(1.0).applies
    assert isinstance(cores_contended().applies, bool)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: check("", True, "x"), TypeError, "statement"),
        (lambda: check("s", True, 1.5), TypeError, "figures"),
        (lambda: check("s", False, "x", ["text"]), TypeError, "reasons"),
        (lambda: reason(True, ""), TypeError, "text"),
        (lambda: fits_cache(0, {"l3": 1}), ValueError, "working_set_bytes"),
        (lambda: within_noise(0.0, 0.1), ValueError, "ratio"),
        (lambda: within_noise(1.0, -0.1), ValueError, "spread"),
        (lambda: overhead_dominated(0.0, 1e-6), ValueError, "time_s"),
        (lambda: claims.rounds_disagree([1.0], [0.0, 1.0]), ValueError, "rounds_s"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_steal_and_rounds_reasons():
    assert claims.hypervisor_steal((1000, 10), (2000, 70)).applies  # 6 % of the ticks were stolen
    assert not claims.hypervisor_steal((1000, 10), (2000, 50)).applies  # 4 %
    assert not claims.hypervisor_steal((1000, 10), (1000, 10)).applies  # no time passed
    assert claims.rounds_disagree([1.0, 1.21]).applies and not claims.rounds_disagree([1.0, 1.2]).applies
    sample = claims.cpu_times()
    assert sample is None or (sample[0] >= sample[1] >= 0)


@pytest.mark.skipif(claims.cpu_times() is None, reason="needs /proc/stat")
def test_others_busy_sees_a_neighbour_and_not_ourselves():
    import subprocess
    import sys
    import time

    def spin(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    before = claims.cpu_times()
    spin(1.0)  # our own work is not contention
    assert not claims.others_busy(before, claims.cpu_times()).applies
    before = claims.cpu_times()
    code = "import time\nend = time.time() + 1.5\nwhile time.time() < end: pass"
    neighbours = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 1)]
    for process in neighbours:
        process.wait()
    v = claims.others_busy(before, claims.cpu_times())
    assert v.applies, v.text  # one busy neighbour per CPU: far over 20 % of the machine
    assert not claims.others_busy((1000, 10), (2000, 20)).applies  # old 2-tuples: not readable, never a false reason


def test_hyperthreads_reason_from_the_topology(monkeypatch):
    assert claims.hyperthreads(2, 1).applies and not claims.hyperthreads(4, 4).applies
    monkeypatch.setattr(claims, "physical_cores", lambda: None)
    assert not claims.hyperthreads(2).applies  # unreadable topology is never a reason
