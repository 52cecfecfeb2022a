"""The GPU paths, checked on a CPU with small fakes: the spec set beside a measurement is that of the measured device
(no spec for an uncatalogued GPU or a MIG slice), work captured by a closure is timed on its CUDA device, NVML never
reads another GPU or a whole GPU for a slice, and the energy meter never switches to the CPU's counter silently."""

from __future__ import annotations

import sys
import types
import warnings

import pytest
import torch

from efflab import energy_meter, hardware, timing
from efflab.energy_meter import EnergyEstimateWarning, EnergyMeter

NAMES = {0: "Tesla T4", 1: "NVIDIA H100 80GB HBM3"}


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda answering as a two-GPU host (T4 as device 0, H100 as device 1, the current one)."""
    names = dict(NAMES)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: names[1 if i is None else int(i)])
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(uuid=f"uuid-of-{int(i)}"))
    return names


@pytest.mark.parametrize(
    ("device", "expected"),
    [("cuda:0", "T4"), ("cuda:1", "H100 SXM"), ("cuda", "H100 SXM"), (torch.device("cuda", 0), "T4")],
)
def test_the_spec_is_the_measured_devices_own(fake_cuda, device, expected):
    spec, why = hardware.spec_for(device)
    assert spec is hardware.CATALOG[expected] and expected in why


@pytest.mark.parametrize(
    ("name", "expected", "bandwidth_bytes_per_s"),
    [
        ("NVIDIA H100 PCIe", "H100 PCIe", 2.0e12),
        ("NVIDIA H100 NVL", "H100 NVL", 3.9e12),
        ("NVIDIA L40S", "L40S", 864e9),
    ],
)
def test_pcie_and_nvl_parts_get_their_own_datasheet(fake_cuda, name, expected, bandwidth_bytes_per_s):
    """Not the SXM part's: an H100 PCIe has 60 % of the SXM's bandwidth and 76 % of its fp32 peak."""
    fake_cuda[1] = name
    spec, why = hardware.spec_for("cuda:1")
    assert spec is hardware.MORE_GPUS[expected] and expected in why
    assert spec.bandwidth_bytes_per_s == bandwidth_bytes_per_s


def test_the_cpu_is_compared_with_the_cpu_estimate_on_a_gpu_host(fake_cuda):
    spec, why = hardware.spec_for("cpu")
    assert spec.kind == "cpu" and "estimate" in why


@pytest.mark.parametrize(
    "name",
    [
        "NVIDIA A10G",
        "NVIDIA GH200 480GB",
        "NVIDIA H800",
        "Tesla P100-PCIE-16GB",
    ],
)
def test_an_uncatalogued_gpu_gets_no_spec_and_a_plain_reason(fake_cuda, name):
    fake_cuda[1] = name
    spec, why = hardware.spec_for("cuda:1")  # GH200 holds "H200" in its name: it is not an H200 SXM either
    assert spec is None and "not in the efflab catalog" in why and name in why
    with pytest.warns(UserWarning):
        assert hardware.detect("cuda:1").kind == "cpu"


def test_a_mig_slice_gets_no_whole_gpu_spec(fake_cuda):
    fake_cuda[1] = "NVIDIA A100-SXM4-40GB MIG 1g.5gb"
    spec, why = hardware.spec_for("cuda:1")
    assert spec is None and "MIG slice" in why
    assert hardware.match_gpu_name("NVIDIA H100 80GB HBM3 MIG 3g.40gb") is None


class _FakeCudaTensor(torch.Tensor):
    """A CPU tensor that says it lives on cuda:1 (what _find_cuda_device reads)."""

    @property
    def is_cuda(self):
        return True

    @property
    def device(self):
        return torch.device("cuda", 1)


def test_a_closure_over_cuda_tensors_is_timed_on_their_device(monkeypatch):
    a = torch.ones(2).as_subclass(_FakeCudaTensor)

    def closure():
        return a + 1

    monkeypatch.setattr(timing, "_cuda_in_use", lambda: False)
    assert timing._resolve_device(None, closure, (), {}) == "cuda:1"
    assert timing._resolve_device(None, lambda: GLOBAL_TENSOR * 2, (), {}) == "cuda:1"  # a notebook global
    import functools

    assert timing._resolve_device(None, functools.partial(torch.add, a), (), {}) == "cuda:1"
    assert timing._resolve_device(None, lambda: 1 + 1, (), {}) == "cpu"
    assert timing._resolve_device("cpu", closure, (), {}) == "cpu"  # asked for explicitly


def test_work_with_no_visible_tensor_is_synchronised_once_cuda_is_in_use(monkeypatch, fake_cuda):
    monkeypatch.setattr(timing, "_cuda_in_use", lambda: True)
    assert timing._resolve_device(None, lambda: 1 + 1, (), {}) == "cuda:1"  # the current device


GLOBAL_TENSOR = torch.ones(2).as_subclass(_FakeCudaTensor)


class _NVMLError(Exception):
    pass


@pytest.fixture
def fake_nvml(monkeypatch):
    """A pynvml that knows one GPU, by UUID "GPU-uuid-of-0" and by index 0."""
    calls = []
    module = types.SimpleNamespace(
        NVMLError=_NVMLError,
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: calls.append(("index", i)) or f"handle-{i}",
        nvmlDeviceGetTotalEnergyConsumption=lambda handle: 1000,
    )

    def by_uuid(uuid):
        calls.append(("uuid", uuid))
        if uuid != "GPU-uuid-of-0":
            raise _NVMLError("Not Found")
        return "handle-0"

    module.nvmlDeviceGetHandleByUUID = by_uuid
    monkeypatch.setitem(sys.modules, "pynvml", module)
    return calls


def test_nvml_reads_the_device_with_the_same_uuid_and_never_falls_back_to_an_index(fake_cuda, fake_nvml):
    assert energy_meter._nvml_handle(0) == "handle-0"
    with pytest.raises(RuntimeError, match="UUID"):
        energy_meter._nvml_handle(1)  # NVML has no such UUID: its index 1 may be another GPU
    assert ("index", 1) not in fake_nvml


def test_nvml_is_not_read_for_a_mig_slice(fake_cuda, fake_nvml):
    fake_cuda[0] = "NVIDIA A100-SXM4-40GB MIG 1g.5gb"
    with pytest.raises(RuntimeError, match="MIG"):
        energy_meter._nvml_handle(0)


def test_auto_never_switches_to_the_cpu_counter_while_cuda_is_in_use(monkeypatch, fake_cuda, fake_nvml):
    monkeypatch.setattr(energy_meter, "rapl_zones", lambda *a, **k: {"package-0": ("/dev/null", 2**32)})
    meter = EnergyMeter(device=1)  # device 1's UUID is unknown to NVML: no GPU counter
    with pytest.warns(EnergyEstimateWarning, match="RAPL not used"):
        with meter:
            pass
    assert meter.source == "estimated" and "NVML" in meter.reason and "RAPL not used" in meter.reason


def test_auto_uses_rapl_when_the_work_is_on_the_cpu(monkeypatch, tmp_path):
    counter = tmp_path / "energy_uj"
    counter.write_text("1000")
    monkeypatch.setattr(energy_meter, "_cuda_in_use", lambda: False)
    monkeypatch.setattr(energy_meter, "rapl_zones", lambda *a, **k: {"package-0": (str(counter), 2**32)})
    with warnings.catch_warnings():
        warnings.simplefilter("error", EnergyEstimateWarning)
        with EnergyMeter() as meter:
            counter.write_text("3000")
    assert meter.source == "rapl" and meter.energy_j == pytest.approx(2000e-6)


def test_fp32_math_sets_both_backends_and_restores_them():
    b = torch.backends
    before = (b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision)
    with hardware.fp32_math(tf32=False):
        assert (b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision) == ("ieee", "ieee")
        with hardware.fp32_math(tf32=True):
            assert (b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision) == ("tf32", "tf32")
        assert b.cudnn.conv.fp32_precision == "ieee"
    assert (b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision) == before


def test_fp32_math_uses_the_old_flags_on_an_older_torch(monkeypatch):
    matmul, cudnn = types.SimpleNamespace(allow_tf32=True), types.SimpleNamespace(allow_tf32=True)
    monkeypatch.setattr(torch.backends.cuda, "matmul", matmul)
    monkeypatch.setattr(torch.backends, "cudnn", cudnn)
    with hardware.fp32_math(tf32=False):
        assert matmul.allow_tf32 is False and cudnn.allow_tf32 is False
    assert matmul.allow_tf32 is True and cudnn.allow_tf32 is True


@pytest.mark.parametrize("dtype", ["tf32", "bf16"])
def test_a_t4_is_not_asked_for_tf32_or_bf16(fake_cuda, monkeypatch, dtype):
    """Compute capability 7.5: 'tf32' would be plain fp32 and bf16 emulated; asking says why, before any work."""
    from efflab import ceilings

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    with pytest.raises(ValueError, match=r"compute capability 8\.0 .*this GPU is 7\.5"):
        ceilings.measure(device="cuda:0", dtypes=("fp32", dtype))
    assert "tf32 and bf16 not measured" in ceilings._older_gpu_note((7, 5))


@pytest.mark.parametrize(
    ("capability", "bf16_note", "mode", "text"),
    [((7, 5), "emulated in fp32", "fp16", "fp16 tensor cores"), ((9, 0), None, "tf32", "TF32 tensor cores")],
)
def test_the_gpu_levers_and_notes_follow_the_compute_capability(
    fake_cuda, monkeypatch, capability, bf16_note, mode, text
):
    """On a T4 (7.5) bf16 is flagged as emulated and the latency cliff's FLOP/s lever is fp16 tensor cores (TF32
    would change nothing); on an H100 (9.0) bf16 is native and the lever is TF32."""
    from efflab.scenarios import LatencyCliff

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    note = hardware.dtype_note("bf16", "cuda:0")
    assert note is None if bf16_note is None else bf16_note in note and "this GPU is 7.5" in note
    assert hardware.dtype_note("fp16", "cuda:0") is None and hardware.dtype_note("bf16", "cpu") is None
    cliff = LatencyCliff(device="cuda")
    assert cliff.faster_gpu_mode() == mode and text in cliff.lever_text["faster_gpu"]
    assert LatencyCliff(device="cpu").lever_text["faster_gpu"] == "more FLOP/s (all cores)"


@pytest.fixture
def fake_events(monkeypatch, fake_cuda):
    """CUDA events and synchronisation that read the host clock: enough to run the CUDA timing path on a CPU."""
    import contextlib
    import time

    class Event:
        def __init__(self, enable_timing=True):
            self.t = None

        def record(self):
            self.t = time.perf_counter()

        def elapsed_time(self, end):
            return (end.t - self.t) * 1e3  # ms, as torch.cuda.Event

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "device", lambda dev: contextlib.nullcontext())


def test_a_slow_cuda_call_stays_within_the_budget(fake_events):
    """A 0.1 s call with max_run_s = 0.5: the first call, warm-up, probes and samples all fit (the old path spent
    11 calls, the first and 10 probes, before its first sample)."""
    import time

    calls = []
    m = timing._benchmark_cuda(lambda: calls.append(time.sleep(0.1)), (), {}, 0.01, 0.2, 0.5, False, "cuda:0")
    samples, _, _, launch_s = m
    assert len(calls) <= 7 and len(samples) >= 1 and launch_s > 0.09


def test_a_fast_cuda_call_still_gets_the_full_warm_up_and_probes(fake_events):
    calls = []
    samples, _, _, _ = timing._benchmark_cuda(lambda: calls.append(1), (), {}, 0.0, 0.001, 1.0, False, "cuda:0")
    assert len(calls) >= 1 + timing.LAUNCH_PROBES + len(samples) and len(samples) >= timing.MIN_SAMPLES


def test_profile_keeps_the_gpu_index():
    from efflab.profile import _device_of

    x = torch.ones(2).as_subclass(_FakeCudaTensor)
    assert _device_of(torch.add, (x, x)) == "cuda:1"
    assert _device_of(torch.add, (torch.ones(2),)) == "cpu"


def test_a_gpus_dram_search_has_enough_sets_to_find_a_plateau():
    from efflab.ceilings import DRAM_MIN_SETS, GPU_DRAM_BUDGET_BYTES, dram_set_sizes

    for mode in ("quick", "full"):  # an H100's 50 MiB L2: sets start at 256 MiB per array
        sizes = dram_set_sizes(50 << 20, GPU_DRAM_BUDGET_BYTES[mode], on_gpu=True)
        assert len(sizes) >= DRAM_MIN_SETS and sizes[0] == 256 << 20, [s >> 20 for s in sizes]


def test_a_gpu_roofline_is_measured_once_whatever_the_spelling(fake_cuda, monkeypatch):
    """Chapter 6 asks for ("cuda", threads=1), the scenarios for ("cuda", None), the op profile for "cuda:1" (the
    current device): one measurement serves all three; another GPU gets its own."""
    from efflab import ceilings
    from efflab.roofline import Roofline

    calls = []

    def fake_measure(device=None, dtypes=None, quick=False):
        calls.append(device)
        return Roofline(compute={"fp32": 1e12}, memory={"dram": 1e11}, latency_s=1e-5, name=str(device))

    monkeypatch.setattr(ceilings, "measure_ceilings", fake_measure)
    ceilings.machine_roofline.cache_clear()
    try:
        first = ceilings.machine_roofline("cuda", threads=1)
        assert ceilings.machine_roofline("cuda") is first is ceilings.machine_roofline(torch.device("cuda", 1))
        assert ceilings.machine_roofline("cuda:0") is not first and calls == ["cuda:1", "cuda:0"]
        with pytest.raises(ValueError, match="device"):
            ceilings.machine_roofline("tpu")
    finally:
        ceilings.machine_roofline.cache_clear()


def test_gpu_check_compares_the_catalog_with_the_driver(fake_cuda, monkeypatch, repo_root):
    """The device script's first section sets the catalog's L2 and SM count beside the driver's (H200: 50 MiB in the
    catalog from the H100 whitepaper; the driver settles it)."""
    import importlib.util

    fake_cuda[0] = "NVIDIA H200"
    props = types.SimpleNamespace(
        name="NVIDIA H200", major=9, minor=0, L2_cache_size=60 * 2**20, multi_processor_count=132, total_memory=143e9
    )
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    spec = importlib.util.spec_from_file_location("gpu_check", repo_root / "benchmarks" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    text = "\n".join(gpu_check.spec_vs_device(torch))
    assert "| L2 | 60.0 MiB | 50.0 MiB |" in text and "| SMs | 132 | 132 |" in text and "H200 SXM" in text
