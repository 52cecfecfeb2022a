"""Three seeded workloads for the D·A·M chapter and the capstone lab, each with the lever that works and one wasted.

Each scenario runs a real PyTorch workload, measures its time terms with :mod:`efflab.timing`, counts its FLOPs and
compulsory bytes with :func:`efflab.profile.profile_ops`, and returns a :class:`ScenarioRun` whose
:meth:`ScenarioRun.diagnose` feeds :func:`efflab.dam.diagnose`. :meth:`Scenario.trial` applies both levers and
re-measures.

=====================  =========================================  =======================  ===========================
scenario               workload                                   lever that works         lever that is wasted
=====================  =========================================  =======================  ===========================
StarvingAccelerator    per-sample decode (zlib + numpy) feeding   ``cache_dataset``:       ``change_model``: a 4x
                       a small MLP, one batch at a time           decode once, reuse       smaller MLP (model twiddle)
LatencyCliff           32 tiny Linear+ReLU layers at batch 1      ``bigger_batch``: serve  ``faster_gpu``: all cores
                                                                  64 requests per call     (CPU), TF32 or fp16
                                                                                           tensor cores (CUDA)
ComputeWall            ``relu(x @ W + b)``, a large square         ``prune``: keep the half ``fuse_kernels``: fuse the
                       matmul                                     of W's columns with the  bias and ReLU into the
                                                                  largest norm             matmul's epilogue
=====================  =========================================  =======================  ===========================

How each term is measured (a CPU has no separate device clock, so each split is stated):

- **data**: ``efflab.timing.timer`` around the input stage (decode, stack, copy to the device), per-batch median;
- **compute** and **idle** (fixed per-call dispatch cost): the starving loop times its model stage with ``timer``; the
  latency cliff fits the measured per-call time ``T(b) = L + b t`` at two batch sizes (``idle = L``, ``compute = b t``);
  the compute wall charges ``idle = ops x L_floor`` (the measured time of a one-element add, per dispatched op).

On the CPU the scenarios pin torch to ``threads=1`` (default) so that all three run on the same one-core "device"
and a busy neighbour cannot stall a multi-threaded kernel; the hardware lever then hands the workload every core.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from efflab import _validate as v
from efflab.ceilings import machine_roofline
from efflab.dam import Diagnosis, diagnose
from efflab.style import wrap_text
from efflab.timing import format_time_s, torch_threads

__all__ = [
    "ComputeWall",
    "LatencyCliff",
    "LeverTrial",
    "Scenario",
    "ScenarioRun",
    "StarvingAccelerator",
    "machine_roofline",
]

# Stored image side (pixels) and the side the model sees after average pooling: decode does 3x3 pooling.
_STORED_SIDE, _POOL = 96, 3
_MODEL_SIDE = _STORED_SIDE // _POOL
# Per-channel normalisation, the ImageNet statistics every torchvision example uses (mean, std of RGB in [0, 1]).
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]


@dataclass(frozen=True)
class ScenarioRun:
    """One measured run of a scenario: its time terms (s), work, ceilings and what one ``wall_time_s`` covers."""

    scenario: str
    variant: str  # "baseline" or the FIXES key of the lever applied
    unit: str  # what one wall_time_s covers, e.g. "epoch of 16 batches x 64"
    items: int  # requests/samples served per wall_time_s
    data_time_s: float
    compute_time_s: float
    idle_time_s: float
    wall_time_s: float
    flops: float  # FLOP per wall_time_s (profile_ops)
    bytes_moved: float  # compulsory bytes per wall_time_s (profile_ops)
    peak_flops_per_s: float  # fp32 ceiling used for MFU
    bandwidth_bytes_per_s: float
    device: str
    how: str  # how the terms were measured
    params_total: int | None = None  # the model's parameters, and how many are non-zero (the scorecard's
    params_nonzero: int | None = None  # active-parameters row)

    @property
    def time_per_item_s(self) -> float:
        """Wall time per request or sample (s)."""
        return self.wall_time_s / self.items

    def diagnose_kwargs(self) -> dict:
        """Keyword arguments for :func:`efflab.dam.diagnose` (the peak raised to the achieved rate if it was lower)."""
        achieved = self.flops / self.wall_time_s
        return {
            "data_time_s": self.data_time_s,
            "compute_time_s": self.compute_time_s,
            "idle_time_s": self.idle_time_s,
            "wall_time_s": self.wall_time_s,
            "flops": self.flops,
            "bytes_moved": self.bytes_moved,
            "peak_flops_per_s": max(self.peak_flops_per_s, achieved),
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
            "params_total": self.params_total,
            "params_nonzero": self.params_nonzero,
        }

    def diagnose(self, proposed_fix: str | None = None) -> Diagnosis:
        """:func:`efflab.dam.diagnose` of this run, optionally checking ``proposed_fix`` (a key of ``FIXES``).

        Examples
        --------
        >>> run = ScenarioRun("demo", "baseline", "call", 1, 0.0, 1e-6, 9e-6, 1e-5, 1e4, 1e4, 1e11, 2e10, "cpu", "")
        >>> d = run.diagnose("faster_gpu")
        >>> d.regime, d.anti_pattern
        ('latency', 'hardware crutch')
        """
        return diagnose(**self.diagnose_kwargs(), proposed_fix=proposed_fix)

    def to_text(self) -> str:
        """One short line: the variant, its terms and the time per item."""
        f = lambda t: format_time_s(t) if t > 0 else "0"  # noqa: E731
        return wrap_text(
            f"{self.variant:<14} data {f(self.data_time_s)} + compute {f(self.compute_time_s)} + idle "
            f"{f(self.idle_time_s)} = {f(self.wall_time_s)}; {f(self.time_per_item_s)} per item"
        )


# The lever that works "pays off by a large factor": at least this speed-up per item.
WORKS_GAIN_ABOVE = 1.5
# A wasted lever "gives close to nothing": its per-item speed-up stays inside this band (a shared 2-core VM moves
# repeated runs by a few percent, and a lever on a minor term can still shave a little).
WASTED_BAND = (0.8, 1.25)
# A measured speed-up may exceed its Amdahl bound by this much before the bound counts as beaten (run-to-run spread).
BOUND_SLACK = 0.05


@dataclass(frozen=True)
class LeverTrial:
    """A scenario's baseline and its two levers, each re-measured; speedups are per item (request or sample).

    :meth:`claims` judges what the D·A·M chapter expects of the levers on these runs. ``works_range`` is the
    speed-up the lever that works should reach; ``wasted_bound`` the Amdahl bound of the wasted lever (None when it
    cannot be stated); ``rounds_s`` the per-item times of every round per variant; ``reasons`` the scenario's own
    candidate causes per claim ("works", "wasted", "bound"), evaluated on these runs.
    """

    scenario: str
    baseline: ScenarioRun
    works: ScenarioRun
    wasted: ScenarioRun
    lever_text: dict
    works_statement: str = "the lever that works pays off by a large factor"
    works_range: tuple = (WORKS_GAIN_ABOVE, float("inf"))
    wasted_bound: float | None = None
    rounds_s: Mapping = field(default_factory=dict)
    reasons: Mapping = field(default_factory=dict)
    cpu_times_before: tuple | None = None
    expected_regime: str | None = None

    def claims(self) -> tuple:
        """The chapter's expectations, judged on this trial (:mod:`efflab.claims`): the lever that works reaches
        ``works_range``; the wasted one stays inside ``WASTED_BAND``; and, where stated, under its Amdahl bound.

        Examples
        --------
        >>> run = lambda v, t: ScenarioRun("demo", v, "call", 1, 0.0, t, 0.0, t, 1.0, 1.0, 1e9, 1e9, "cpu", "")
        >>> trial = LeverTrial("demo", run("baseline", 1.0), run("a", 0.2), run("b", 0.97), {"a": "", "b": ""})
        >>> for verdict in trial.claims():
        ...     print(verdict)
        held here: the lever that works pays off by a large factor (x5.00 per item)
        held here: the wasted lever gives close to nothing (x1.03 per item)
        """
        from efflab.claims import check, cores_contended, cpu_times, hypervisor_steal, others_busy, rounds_disagree

        def common():
            after = cpu_times() if self.cpu_times_before else None
            return [
                hypervisor_steal(self.cpu_times_before, after),
                others_busy(self.cpu_times_before, after),
                cores_contended(),
                rounds_disagree(*self.rounds_s.values()),
            ]

        low, high = self.works_range
        out = []
        if self.expected_regime is not None:
            b = self.baseline
            found = b.diagnose().regime
            shares = ", ".join(
                f"{name} {t / b.wall_time_s:.0%}"
                for name, t in (("data", b.data_time_s), ("compute", b.compute_time_s), ("idle", b.idle_time_s))
            )
            out.append(
                check(
                    f"the {self.scenario} is {self.expected_regime}-bound",
                    found == self.expected_regime,
                    f"diagnosed {found}-bound; of the time: {shares}",
                    common(),
                )
            )
        out += [
            check(
                self.works_statement,
                low <= self.works_speedup <= high,
                f"x{self.works_speedup:.2f} per item",
                [*self.reasons.get("works", ()), *common()],
            ),
            check(
                "the wasted lever gives close to nothing",
                WASTED_BAND[0] <= self.wasted_speedup <= WASTED_BAND[1],
                f"x{self.wasted_speedup:.2f} per item",
                [*self.reasons.get("wasted", ()), *common()],
            ),
        ]
        if self.wasted_bound is not None:
            out.append(
                check(
                    f"the wasted lever stays under its Amdahl bound, x{self.wasted_bound:.3g}",
                    self.wasted_speedup <= self.wasted_bound * (1 + BOUND_SLACK),
                    f"x{self.wasted_speedup:.2f} per item",
                    [*self.reasons.get("bound", ()), *common()],
                )
            )
        return tuple(out)

    @property
    def works_speedup(self) -> float:
        """Baseline / lever time per item for the lever that works."""
        return self.baseline.time_per_item_s / self.works.time_per_item_s

    @property
    def wasted_speedup(self) -> float:
        """Baseline / lever time per item for the wasted lever."""
        return self.baseline.time_per_item_s / self.wasted.time_per_item_s

    def to_text(self) -> str:
        """The three runs (per ``unit``) and the two speedups, wrapped at the course's text width."""
        lines = [f"{self.scenario}, per {self.baseline.unit}:"]
        lines += [f"  {r.to_text()}" for r in (self.baseline, self.works, self.wasted)]
        for run, s in ((self.works, self.works_speedup), (self.wasted, self.wasted_speedup)):
            lines.append(f"  {run.variant:<14} ({self.lever_text[run.variant]}): {s:.3g}x per item")
        return wrap_text("\n".join(lines))


def _median_s(fn, *args, min_run_s: float) -> float:
    """Median per-call time from ``benchmark`` (a shared CPU's spread stays in the Measurement's warnings)."""
    from efflab.timing import benchmark

    return benchmark(fn, *args, min_run_s=min_run_s, max_run_s=max(1.0, 5 * min_run_s)).median_s


def _param_counts(tensors) -> tuple[int, int]:
    """(total, non-zero) elements of the given parameter tensors."""
    import torch

    tensors = list(tensors)
    return sum(t.numel() for t in tensors), sum(int(torch.count_nonzero(t)) for t in tensors)


class Scenario:
    """Base class: ``run(variant)`` measures one variant, ``trial()`` measures the baseline and both levers."""

    name = ""
    works_fix = ""
    wasted_fix = ""
    lever_text: dict = {}

    def __init__(self, *, device=None, threads: int | None = 1, seed: int = 0, roofline=None, min_run_s=0.2):
        import torch

        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        if self.device.type not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda'; got {device!r}")
        self.threads = None if threads is None else v.integer(threads, "threads", "CPU threads", low=1)
        self.seed = v.integer(seed, "seed", low=0)
        self.min_run_s = float(v.positive(min_run_s, "min_run_s", "s"))
        self._roofline = roofline

    @property
    def roofline(self):
        """Ceilings for MFU and the intensity check: the one given, else this machine's measured with the threads the
        scenario pins (``threads``), measured once per process."""
        return self._roofline_for(all_cores=False)

    def _roofline_for(self, all_cores: bool):
        """The roofline given, else the measured one of the cores the work runs on: ``threads``, or every core."""
        if self._roofline is not None:
            return self._roofline
        cpu = self.device.type == "cpu"
        return machine_roofline(self.device.type, self.threads if cpu and not all_cores else None)

    def _variant(self, variant: str) -> str:
        return v.choice(variant, "variant", ("baseline", self.works_fix, self.wasted_fix))

    def _sync(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _profile(self, fn, *inputs) -> tuple[float, float, int]:
        """FLOPs, compulsory bytes and data-moving op count of one call."""
        import torch

        from efflab.profile import profile_ops

        with torch.no_grad():
            prof = profile_ops(fn, *inputs, roofline=self.roofline)
        return prof.total_flops, prof.total_bytes, sum(1 for r in prof.records if r.bytes_moved > 0)

    def _run(
        self, variant, unit, items, data, compute, idle, wall, flops, nbytes, how, all_cores=False, params=()
    ) -> ScenarioRun:
        roof = self._roofline_for(all_cores)
        total, nonzero = _param_counts(params) if params else (None, None)
        return ScenarioRun(
            self.name, variant, unit, items, data, compute, idle, wall, flops, nbytes,
            roof.peak_flops_per_s("fp32" if "fp32" in roof.compute else None), roof.bandwidth_bytes_per_s(),
            str(self.device), how, total, nonzero,
        )  # fmt: skip

    def run(self, variant: str = "baseline") -> ScenarioRun:
        """Measure one variant: ``"baseline"``, ``self.works_fix`` or ``self.wasted_fix``."""
        raise NotImplementedError

    def trial(self, rounds: int = 3) -> LeverTrial:
        """Measure the baseline and both levers ``rounds`` times, interleaved, keeping each one's median run.

        Interleaving (A B C A B C ...) spreads slow drifts of a shared machine over all three variants alike.
        """
        from efflab.claims import cpu_times

        rounds = v.integer(rounds, "rounds", "repetitions", low=1)
        before = cpu_times()
        keys = ("baseline", self.works_fix, self.wasted_fix)
        runs: dict[str, list[ScenarioRun]] = {k: [] for k in keys}
        for _ in range(rounds):
            for k in keys:
                runs[k].append(self.run(k))
        median = [sorted(runs[k], key=lambda r: r.time_per_item_s)[rounds // 2] for k in keys]
        rounds_s = {k: tuple(r.time_per_item_s for r in runs[k]) for k in keys}
        return self._trial(*median, rounds_s=rounds_s, cpu_times_before=before)

    def _trial(self, baseline, works, wasted, **kwargs) -> LeverTrial:
        """A :class:`LeverTrial` with this scenario's expectations and candidate reasons."""
        return LeverTrial(
            self.name,
            baseline,
            works,
            wasted,
            lever_text=dict(self.lever_text),
            works_statement=self.works_statement,
            works_range=self.works_range,
            wasted_bound=self._wasted_bound(baseline),
            reasons=self._reasons(baseline, works, wasted),
            expected_regime=self.expected_regime,
            **kwargs,
        )

    expected_regime: str | None = None  # what efflab.dam.diagnose should find on the baseline

    works_statement = "the lever that works pays off by a large factor"
    works_range = (WORKS_GAIN_ABOVE, float("inf"))

    def _wasted_bound(self, baseline: ScenarioRun) -> float | None:
        """Amdahl's bound of the wasted lever on ``baseline`` (per item), or None when it cannot be stated."""
        return None

    def _reasons(self, baseline, works, wasted) -> dict:
        """Scenario-specific candidate causes per claim ("works", "wasted", "bound"), from the measured runs."""
        return {}


class StarvingAccelerator(Scenario):
    """A small MLP fed by a slow per-sample decode: the device waits on the input pipeline (input-bound).

    Each sample is stored zlib-compressed (3 x 96 x 96 uint8); decoding it decompresses, pools 3x3 to 32 x 32 and
    normalises in numpy. ``cache_dataset`` decodes once and keeps the tensors on the device; ``change_model`` shrinks
    the hidden layer 4x (fewer FLOPs, same input stage).

    Examples
    --------
    >>> from efflab.roofline import Roofline
    >>> roof = Roofline(compute={"fp32": 1e11}, memory={"dram": 2e10}, latency_s=1e-6)
    >>> s = StarvingAccelerator(batches=2, batch_size=4, hidden=8, device="cpu", roofline=roof)
    >>> run = s.run()
    >>> run.items, run.diagnose().regime
    (8, 'input')
    """

    name = "starving accelerator"
    expected_regime = "input"
    works_fix, wasted_fix = "cache_dataset", "change_model"
    lever_text = {"cache_dataset": "decode once, reuse the tensors", "change_model": "a 4x smaller MLP"}

    def __init__(self, batches: int = 12, batch_size: int = 32, hidden: int = 256, **kwargs):
        super().__init__(**kwargs)
        self.batches = v.integer(batches, "batches", "batches per epoch", low=1)
        self.batch_size = v.integer(batch_size, "batch_size", "samples", low=1)
        self.hidden = v.integer(hidden, "hidden", "features", low=4)
        rng = np.random.default_rng(self.seed)
        yy, xx = np.mgrid[0:_STORED_SIDE, 0:_STORED_SIDE].astype(np.float32) / _STORED_SIDE
        freq = rng.uniform(1, 6, size=(self.batches * self.batch_size, 3, 2, 1, 1)).astype(np.float32)
        # Smooth colour waves, one frequency pair per channel: an image that compresses, like a photo.
        waves = np.sin(2 * np.pi * (freq[:, :, 0] * yy + freq[:, :, 1] * xx))
        images = (127.5 * (1 + 0.9 * waves)).astype(np.uint8)
        self.blobs = [zlib.compress(img.tobytes(), 1) for img in images]

    @staticmethod
    def decode(blob: bytes) -> np.ndarray:
        """Decompress, 3x3 average-pool and normalise one sample to a float32 (3, 32, 32) array."""
        img = np.frombuffer(zlib.decompress(blob), dtype=np.uint8).astype(np.float32)
        # 3x3 average pooling as two axis sums (rows of 3, then columns of 3), then scale to [0, 1] and normalise.
        rows = img.reshape(3, _MODEL_SIDE, _POOL, _STORED_SIDE).sum(axis=2)
        small = rows.reshape(3, _MODEL_SIDE, _MODEL_SIDE, _POOL).sum(axis=3) / (_POOL * _POOL * 255.0)
        return (small - _MEAN) / _STD

    def _batch(self, i: int):
        import torch

        chunk = self.blobs[i * self.batch_size : (i + 1) * self.batch_size]
        return torch.from_numpy(np.stack([self.decode(b) for b in chunk])).to(self.device)

    def _model(self, hidden: int):
        import torch

        torch.manual_seed(self.seed)
        features = 3 * _MODEL_SIDE * _MODEL_SIDE
        layers = [torch.nn.Flatten(), torch.nn.Linear(features, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)]
        return torch.nn.Sequential(*layers).to(self.device).eval()

    def _measure(self, variants, rounds: int) -> list[ScenarioRun]:
        """Run ``variants`` batch by batch in turn (v1, v2, v1, v2 ...), ``rounds`` epochs, one run per variant."""
        import torch

        from efflab.timing import timer

        models = {k: self._model(self.hidden // 4 if k == "change_model" else self.hidden) for k in variants}
        cache = None
        if "cache_dataset" in variants:  # paid once, before the epochs: not part of an epoch's time
            cache = torch.cat([self._batch(i) for i in range(self.batches)])
        steps: dict[str, list[tuple[float, float, float]]] = {k: [] for k in variants}  # (data, compute, idle), s
        with torch_threads(self.threads if self.device.type == "cpu" else None), torch.no_grad():
            for model in models.values():
                model(self._batch(0))  # warm-up: lazy initialisation, allocator
            for _ in range(rounds):
                for i in range(self.batches):
                    for k in variants:  # interleaved per batch: a neighbour's burst hits every variant alike
                        with timer() as t_step:
                            with timer() as t_data:
                                x = (
                                    cache[i * self.batch_size :][: self.batch_size]
                                    if k == "cache_dataset" and cache is not None  # cache is set for this variant
                                    else self._batch(i)
                                )
                            with timer() as t_compute:
                                models[k](x)
                        idle = max(t_step.seconds - t_data.seconds - t_compute.seconds, 0.0)
                        steps[k].append((t_data.seconds, t_compute.seconds, idle))
            work = {k: self._profile(m, x) for k, m in models.items()}
        runs = []
        unit = f"epoch of {self.batches} batches x {self.batch_size}"
        how = "timer() around the input and model stages; per-batch medians x batches"
        for k in variants:
            # Per-batch medians x batches: one burst from a neighbour on a shared machine does not swing the epoch.
            data, compute, idle = (float(np.median(col)) * self.batches for col in zip(*steps[k], strict=True))
            flops, nbytes, _ = work[k]
            runs.append(
                self._run(
                    k,
                    unit,
                    self.batches * self.batch_size,
                    data,
                    compute,
                    idle,
                    data + compute + idle,
                    flops * self.batches,
                    nbytes * self.batches,
                    how,
                    params=list(models[k].parameters()),
                )  # fmt: skip
            )
        return runs

    def run(self, variant: str = "baseline", rounds: int = 1) -> ScenarioRun:
        """Measure one variant over ``rounds`` epochs (per-batch medians)."""
        return self._measure([self._variant(variant)], v.integer(rounds, "rounds", "epochs", low=1))[0]

    def trial(self, rounds: int = 3) -> LeverTrial:
        """Measure the baseline and both levers, interleaved batch by batch, over ``rounds`` epochs."""
        from efflab.claims import cpu_times

        rounds = v.integer(rounds, "rounds", "epochs", low=1)
        before = cpu_times()
        runs = self._measure(["baseline", self.works_fix, self.wasted_fix], rounds)
        return self._trial(*runs, cpu_times_before=before)

    def _wasted_bound(self, baseline):
        # A 4x smaller model removes at most 3/4 of the compute term (Amdahl; the input stage is untouched).
        return baseline.wall_time_s / (baseline.wall_time_s - 0.75 * baseline.compute_time_s)

    def _reasons(self, baseline, works, wasted):
        from efflab.claims import reason

        fell = 1 - wasted.data_time_s / baseline.data_time_s if baseline.data_time_s > 0 else 0.0
        text = (
            f"the input stage, which the smaller model does not touch, ran {fell:.0%} faster beside it (data "
            f"{format_time_s(baseline.data_time_s)} -> {format_time_s(wasted.data_time_s)}): a second-order effect, "
            "the decoding sharing the core and caches with less model work"
        )
        return {"wasted": [reason(fell > BOUND_SLACK, text)], "bound": [reason(fell > BOUND_SLACK, text)]}


class LatencyCliff(Scenario):
    """A stack of tiny Linear+ReLU layers served at batch 1: fixed dispatch cost per op dominates (latency-bound).

    The per-call time is measured at batch 1 and at ``micro_batch`` and fitted as ``T(b) = L + b t``: the intercept
    ``L`` is the idle (dispatch) term, ``b t`` the compute term. ``bigger_batch`` serves ``micro_batch`` requests per
    call; ``faster_gpu`` gives the job more FLOP/s: every CPU core instead of one, TF32 tensor cores on a GPU of compute
    capability 8.0 or later, fp16 tensor cores below it (see :meth:`faster_gpu_mode`).

    Examples
    --------
    >>> from efflab.roofline import Roofline
    >>> roof = Roofline(compute={"fp32": 1e11}, memory={"dram": 2e10}, latency_s=1e-6)
    >>> s = LatencyCliff(layers=8, device="cpu", roofline=roof, min_run_s=0.02)
    >>> run = s.run()
    >>> run.items, run.diagnose().regime
    (1, 'latency')
    """

    name = "latency cliff"
    expected_regime = "latency"
    works_fix, wasted_fix = "bigger_batch", "faster_gpu"
    lever_text = {"bigger_batch": "serve a micro-batch per call", "faster_gpu": "more FLOP/s (cores / tensor cores)"}

    def __init__(self, layers: int = 32, width: int = 32, micro_batch: int = 64, **kwargs):
        super().__init__(**kwargs)
        self._mode = self.faster_gpu_mode()
        how = {"all cores": "all cores", "tf32": "TF32 tensor cores", "fp16": "fp16 tensor cores"}[self._mode]
        self.lever_text = {**type(self).lever_text, "faster_gpu": f"more FLOP/s ({how})"}  # what it does here
        self.layers = v.integer(layers, "layers", "Linear+ReLU pairs", low=1)
        self.width = v.integer(width, "width", "features", low=1)
        self.micro_batch = v.integer(micro_batch, "micro_batch", "requests", low=2)

    def model(self):
        """The seeded stack of ``layers`` Linear(width, width) + ReLU pairs, in eval mode on the device."""
        import torch

        torch.manual_seed(self.seed)
        pairs = [m for _ in range(self.layers) for m in (torch.nn.Linear(self.width, self.width), torch.nn.ReLU())]
        return torch.nn.Sequential(*pairs).to(self.device).eval()

    def faster_gpu_mode(self) -> str:
        """How ``faster_gpu`` adds FLOP/s here: "all cores" on the CPU, "tf32" tensor cores on a GPU of compute
        capability 8.0 or later, "fp16" tensor cores below it (a T4 or V100 has no TF32: it would change nothing).

        >>> LatencyCliff(device="cpu").faster_gpu_mode()
        'all cores'
        """
        from efflab.hardware import TF32_BF16_MIN_CAPABILITY, cuda_capability

        if self.device.type == "cpu":
            return "all cores"
        capability = cuda_capability(self.device)
        return "tf32" if capability is None or capability >= TF32_BF16_MIN_CAPABILITY else "fp16"

    @contextmanager
    def _more_flops(self, on: bool):
        import torch

        from efflab.hardware import fp32_math

        if self._mode == "all cores":
            with torch_threads(None if on else self.threads):
                yield
        elif self._mode == "tf32":
            with fp32_math(tf32=bool(on)):
                yield
        else:  # fp16 autocast: the tensor cores of a GPU without TF32
            with fp32_math(tf32=False), torch.autocast("cuda", dtype=torch.float16, enabled=bool(on)):
                yield

    def run(self, variant: str = "baseline") -> ScenarioRun:
        import torch

        variant = self._variant(variant)
        model = self.model()
        gen = torch.Generator().manual_seed(self.seed)
        x1 = torch.randn(1, self.width, generator=gen).to(self.device)
        xb = torch.randn(self.micro_batch, self.width, generator=gen).to(self.device)
        with self._more_flops(variant == "faster_gpu"), torch.no_grad():
            t1 = _median_s(model, x1, min_run_s=self.min_run_s)
            tb = _median_s(model, xb, min_run_s=self.min_run_s)
            batched = variant == "bigger_batch"
            flops, nbytes, _ = self._profile(model, xb if batched else x1)
        per_item = max((tb - t1) / (self.micro_batch - 1), 0.0)
        b, wall = (self.micro_batch, tb) if batched else (1, t1)
        compute = min(b * per_item, wall)
        unit = f"call of batch {b}"
        how = f"T(b) = L + b t fitted to T(1) and T({self.micro_batch}); idle = L, compute = b t"
        all_cores = variant == "faster_gpu" and self.device.type == "cpu"  # judged against every core's peak
        return self._run(
            variant, unit, b, 0.0, compute, wall - compute, wall, flops, nbytes, how, all_cores,
            params=list(model.parameters()),
        )  # fmt: skip

    def _wasted_bound(self, baseline):
        # More FLOP/s can at most remove the compute term; the fixed dispatch cost stays (Amdahl).
        return baseline.wall_time_s / max(baseline.wall_time_s - baseline.compute_time_s, 1e-12)


class ComputeWall(Scenario):
    """``relu(x @ W + b)`` with large square ``x`` and ``W``: the matmul's FLOPs dominate (compute-bound).

    ``prune`` keeps the half of ``W``'s output columns with the largest L2 norm (structured pruning: half the FLOPs);
    ``fuse_kernels`` computes ``addmm(b, x, W).relu_()``, folding the bias add and the ReLU into the matmul's output
    pass instead of writing and re-reading two intermediates.

    Examples
    --------
    >>> from efflab.roofline import Roofline
    >>> roof = Roofline(compute={"fp32": 1e11}, memory={"dram": 2e10}, latency_s=1e-6)
    >>> s = ComputeWall(n=128, device="cpu", roofline=roof, min_run_s=0.02)
    >>> run = s.run("prune")
    >>> run.items, run.flops >= 128 * 64 * 128 * 2
    (128, True)
    """

    name = "compute wall"
    expected_regime = "compute"
    works_statement = "halving the FLOPs nearly halves the time"
    works_range = (1.6, 2.2)  # "nearly halves": within 20 % of x2, a little more allowed for the halved bytes
    works_fix, wasted_fix = "prune", "fuse_kernels"
    lever_text = {"prune": "prune half of W's columns (half the FLOPs)", "fuse_kernels": "fuse bias + ReLU"}

    def __init__(self, n: int | None = None, **kwargs):
        super().__init__(**kwargs)
        default = 4096 if self.device.type == "cuda" else 1024  # a CPU core needs ~50 ms, an H100 a few ms
        self.n = v.integer(default if n is None else n, "n", "rows = features", low=2)

    def tensors(self, variant: str = "baseline"):
        """Seeded ``(x, W, b)`` on the device; for ``prune``, ``W`` and ``b`` keep the top half columns by norm."""
        import torch

        gen = torch.Generator().manual_seed(self.seed)
        x = torch.randn(self.n, self.n, generator=gen)
        w = torch.randn(self.n, self.n, generator=gen) / self.n**0.5
        b = torch.randn(self.n, generator=gen)
        if self._variant(variant) == "prune":
            keep = torch.linalg.vector_norm(w, dim=0).topk(self.n // 2).indices.sort().values
            w, b = w[:, keep].contiguous(), b[keep].contiguous()
        return x.to(self.device), w.to(self.device), b.to(self.device)

    @staticmethod
    def unfused(x, w, b):
        """``relu(x @ w + b)`` as three ops (mm, add, relu)."""
        import torch

        return torch.relu(torch.mm(x, w) + b)

    @staticmethod
    def fused(x, w, b):
        """``relu(x @ w + b)`` as addmm with the bias in its epilogue and an in-place ReLU."""
        import torch

        return torch.addmm(b, x, w).relu_()

    def run(self, variant: str = "baseline") -> ScenarioRun:
        import torch

        variant = self._variant(variant)
        fn = self.fused if variant == "fuse_kernels" else self.unfused
        x, w, b = self.tensors(variant)
        one = torch.ones(1, device=self.device)
        with torch_threads(self.threads if self.device.type == "cpu" else None), torch.no_grad():
            wall = _median_s(fn, x, w, b, min_run_s=self.min_run_s)
            floor = _median_s(torch.add, one, one, min_run_s=0.05)
            flops, nbytes, ops = self._profile(fn, x, w, b)
        idle = min(ops * floor, wall)
        how = f"benchmark median; idle = {ops} ops x {floor * 1e6:.3g} µs (one-element add), compute = the rest"
        return self._run(
            variant, f"call ({self.n} rows)", self.n, 0.0, wall - idle, idle, wall, flops, nbytes, how, params=(w, b)
        )

    def working_set_bytes(self, variant: str = "baseline") -> int:
        """fp32 bytes of the matmul's operands and output: ``x``, ``W`` and ``x @ W`` (``W`` and the output halve
        when pruned)."""
        cols = self.n // 2 if self._variant(variant) == "prune" else self.n
        return 4 * (self.n * self.n + 2 * self.n * cols)

    def _reasons(self, baseline, works, wasted):
        from efflab.claims import cache_level, reason

        if self.device.type != "cpu":
            return {}
        pruned, full = self.working_set_bytes("prune"), self.working_set_bytes()
        fits = cache_level(pruned)
        superlinear = reason(
            fits is not None and cache_level(full) != fits,
            f"the pruned layer's {pruned / 2**20:.3g} MiB of operands fit in the {fits[0] if fits else ''} the OS "
            f"reports, where the full layer's {full / 2**20:.3g} MiB did not: it runs from a faster memory level",
        )
        overhead = works.idle_time_s / works.wall_time_s
        sublinear = reason(
            overhead > 0.2,
            f"fixed dispatch cost is {overhead:.0%} of the pruned call and does not halve with the FLOPs",
        )
        return {"works": [superlinear, sublinear]}


# Names that moved to the presentation layer (efflab.plots, efflab.widgets) stay importable from here; they are looked
# up on first use, so this module never imports the layer above it (see the package docstring and
# tests/test_layering.py).
_MOVED = {"plot_time_split": "efflab.plots", "lever_explorer": "efflab.widgets"}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
