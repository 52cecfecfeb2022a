"""What a student needs to know about the machine a notebook runs on.

``efflab doctor`` (shell) and ``efflab.doctor()`` (notebook) report the Python and library versions, the CPU, the GPU if
any, whether this is Google Colab, which optional parts of efflab are usable, and for each missing part the command
that installs it. Nothing here imports torch unless it is installed; nothing here needs the network.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import sys
from dataclasses import dataclass, field

from efflab.style import wrap_text

__all__ = ["EXTRAS", "DoctorReport", "cpu_model", "describe_cpu", "doctor", "in_colab", "nvml_status"]

# Each extra of the package (see pyproject.toml) and the import names that prove it is usable.
EXTRAS: dict[str, tuple[str, ...]] = {
    "measure": ("torch", "pynvml", "tqdm"),
    "plots": ("matplotlib",),
    "widgets": ("ipywidgets", "matplotlib"),
    "data": ("sklearn",),
    "grading": ("nbformat", "nbclient", "ipykernel"),
    "book": ("jupyter_book", "jupyterlab"),
    "dev": ("pytest", "nbval", "hypothesis"),
}

# The import name of a module and the distribution that pip installs it from, where the two differ.
_DISTRIBUTION = {"sklearn": "scikit-learn", "jupyter_book": "jupyter-book", "pynvml": "nvidia-ml-py"}


def in_colab() -> bool:
    """Return True when running inside a Google Colab runtime.

    Colab's kernel imports ``google.colab`` at start and sets ``COLAB_RELEASE_TAG``; either is taken as proof.

    >>> isinstance(in_colab(), bool)
    True
    """
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


# AMD family 19h (25) model ranges -> microarchitecture, from AMD's Processor Programming References for family 19h
# (Zen 3: models 00-0Fh, 20-2Fh, 40-5Fh; Zen 4: 10-1Fh "Genoa", 60-7Fh, A0-AFh "Bergamo"). Family 1Ah (26) is Zen 5.
_AMD_FAMILY_19H = (
    (0x00, 0x0F, "Zen 3"),
    (0x10, 0x1F, "Zen 4"),
    (0x20, 0x2F, "Zen 3"),
    (0x40, 0x5F, "Zen 3"),
    (0x60, 0x7F, "Zen 4"),
    (0xA0, 0xAF, "Zen 4"),
)


def _cpuinfo_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            key, value = (part.strip() for part in line.split(":", 1))
            fields.setdefault(key.lower(), value)
    return fields


def describe_cpu(cpuinfo_text: str) -> str:
    r"""Name a CPU from the text of ``/proc/cpuinfo``: model name, microarchitecture when known, vector ISA, clock.

    Virtual machines often report a bare model name ("AMD EPYC"); the family/model numbers and the flags still say
    what the silicon is and which vector instructions it has, which is what the measured ceilings depend on.

    >>> describe_cpu("model name : AMD EPYC\ncpu family : 25\nmodel : 17\ncpu MHz : 2596.1\nflags : fma avx2 avx512f")
    'AMD EPYC (Zen 4, family 25 model 17), AVX-512, 2.60 GHz'
    >>> describe_cpu("model name : AMD EPYC\ncpu family : 23\nmodel : 1\ncpu MHz : 1996.2\nflags : fma avx2")
    'AMD EPYC (Zen/Zen+, family 23 model 1), AVX2, 2.00 GHz'
    >>> describe_cpu("model name : Intel Xeon\nflags : avx2 avx512f amx_bf16 amx_int8")
    'Intel Xeon, AVX-512, AMX'
    """
    fields = _cpuinfo_fields(cpuinfo_text)
    name = fields.get("model name") or fields.get("hardware") or "unknown CPU"
    details = []
    family, model = fields.get("cpu family"), fields.get("model")
    if family and model and family.isdigit() and model.isdigit():
        arch = ""
        if "amd" in (fields.get("vendor_id", "") + name).lower() and int(family) == 25:
            arch = next((a for lo, hi, a in _AMD_FAMILY_19H if lo <= int(model) <= hi), "")
        elif "amd" in (fields.get("vendor_id", "") + name).lower() and int(family) == 26:
            arch = "Zen 5"
        elif "amd" in (fields.get("vendor_id", "") + name).lower() and int(family) == 23:
            # Family 17h: Zen and Zen+ below model 30h (128-bit FP pipes), Zen 2 from 30h (AMD PPRs for family 17h).
            arch = "Zen/Zen+" if int(model) < 0x30 else "Zen 2"
        details.append(f"{arch + ', ' if arch else ''}family {family} model {model}")
    flags = set(fields.get("flags", fields.get("features", "")).split())
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "NEON" if "asimd" in flags else ""
    text = name + (f" ({details[0]})" if details else "")
    if isa:
        text += f", {isa}"
    if "amx_bf16" in flags:
        text += ", AMX"  # Intel's tile-matrix unit: bf16/int8 matmuls far faster than fp32
    mhz = fields.get("cpu mhz")
    if mhz:
        try:
            text += f", {float(mhz) / 1000:.2f} GHz"
        except ValueError:
            pass
    return text


def cpu_model() -> str:
    """Return a description of this machine's CPU (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere).

    >>> isinstance(cpu_model(), str)
    True
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return describe_cpu(fh.read())
    except OSError:
        return platform.processor() or platform.machine() or "unknown CPU"


def _version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return importlib.metadata.version(_DISTRIBUTION.get(module, module))
    except importlib.metadata.PackageNotFoundError:
        return "installed"


def _gpu_info() -> dict:
    """GPU facts from torch when it is installed; an empty dict when there is no usable CUDA device."""
    if importlib.util.find_spec("torch") is None:
        return {}
    import torch

    if not torch.cuda.is_available():
        return {}
    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "memory_bytes": int(props.total_memory),
        "count": torch.cuda.device_count(),
        "cuda": torch.version.cuda,
        "capability": f"{props.major}.{props.minor}",
    }


def nvml_status() -> str:
    """Whether NVML (the NVIDIA driver's energy and power counters) can be read here, in a few words.

    >>> isinstance(nvml_status(), str)
    True
    """
    if importlib.util.find_spec("pynvml") is None:
        return 'not installed: pip install "efflab[measure]" (nvidia-ml-py)'
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            count, driver = pynvml.nvmlDeviceGetCount(), pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # no driver (a CPU runtime), a container without the device, an old library
        return f"not usable here ({type(exc).__name__}: {exc}); energy on a GPU is then estimated"
    driver = driver.decode() if isinstance(driver, bytes) else driver
    return f"usable: driver {driver}, {count} GPU(s)"


@dataclass(frozen=True)
class DoctorReport:
    """The facts ``doctor()`` gathered, with a plain-text rendering for terminals and notebooks."""

    python: str
    platform: str
    cpu: str
    cpu_count: int
    colab: bool
    versions: dict[str, str | None]
    gpu: dict = field(default_factory=dict)
    extras: dict[str, bool] = field(default_factory=dict)
    nvml: str = ""

    @property
    def missing(self) -> dict[str, str]:
        """Each unusable extra and the command that installs it."""
        fixes = {}
        for extra, ok in self.extras.items():
            if ok:
                continue
            if extra == "measure" and not self.colab:
                # Locally the CPU wheel keeps the install small; Colab already ships a CUDA torch.
                fixes[extra] = 'pip install torch==2.13.0 "efflab[measure]"  (or: make test, which installs everything)'
            else:
                fixes[extra] = f'pip install "efflab[{extra}]"'
        return fixes

    def to_text(self) -> str:
        """Render the report as aligned lines of text."""
        lines = [
            f"{'python':<10} {self.python} ({self.platform})",
            f"{'cpu':<10} {self.cpu}, {self.cpu_count} logical cores",
        ]
        if self.gpu:
            gib = self.gpu["memory_bytes"] / 2**30
            lines.append(
                f"{'gpu':<10} {self.gpu['name']} x{self.gpu['count']}, {gib:.1f} GiB, "
                f"CUDA {self.gpu['cuda']}, compute capability {self.gpu['capability']}"
            )
        else:
            lines.append(f"{'gpu':<10} none usable (experiments run on the CPU; GPU-only cells say what they skip)")
        lines.append(f"{'colab':<10} {'yes' if self.colab else 'no'}")
        if self.nvml:
            lines.append(f"{'nvml':<10} {self.nvml}")
        for name, version in self.versions.items():
            lines.append(f"{name:<10} {version or 'not installed'}")
        ok = [e for e, usable in self.extras.items() if usable]
        lines.append(f"{'extras':<10} usable: {', '.join(ok) if ok else 'none'}")
        for extra, fix in self.missing.items():
            lines.append(f"{'missing':<10} {extra}: {fix}")
        return wrap_text("\n".join(lines))

    def __str__(self) -> str:
        return self.to_text()

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython display: the same text as the terminal
        printer.text(self.to_text())


def doctor() -> DoctorReport:
    """Describe this machine and this installation of efflab.

    Returns
    -------
    DoctorReport
        Printable; ``report.missing`` maps each unusable extra to the command that installs it.

    Examples
    --------
    >>> report = doctor()
    >>> report.cpu_count >= 1
    True
    >>> "numpy" in report.versions
    True
    """
    versions = {name: _version(name) for name in ("numpy", "torch", "matplotlib", "ipywidgets", "sklearn")}
    versions = {"efflab": _version("efflab"), **versions}
    extras = {extra: all(importlib.util.find_spec(m) is not None for m in mods) for extra, mods in EXTRAS.items()}
    return DoctorReport(
        python=platform.python_version(),
        platform=f"{platform.system()} {platform.machine()}",
        cpu=cpu_model(),
        cpu_count=os.cpu_count() or 1,
        colab=in_colab(),
        versions=versions,
        gpu=_gpu_info(),
        extras=extras,
        nvml=nvml_status(),
    )
