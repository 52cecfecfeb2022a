"""A real three-stage input pipeline (decode -> augment -> model step), timed per stage, for Amdahl's law.

Chapter 5 ("Amdahl's law") and the "Amdahl in a real pipeline" lab run this pipeline to measure the fraction of the
time each stage takes, predict with :mod:`efflab.amdahl` what accelerating one stage buys end to end, and check the
prediction against the clock. Every stage does real work; nothing sleeps:

- **decode**: each image is stored the way PNG stores it, rows passed through the "Up" filter (row minus the row
  above, modulo 256) and then zlib-compressed. Decoding is ``zlib.decompress`` plus a wrapping ``cumsum`` down the
  rows, which restores the exact pixels.
- **augment**: a random crop, a random horizontal flip, a 2-D average-pool resize and per-channel normalisation, in
  numpy; the randomness of batch ``i`` comes from ``numpy.random.default_rng((seed, i))`` so every run, sequential or
  overlapped, yields the same batches.
- **model step**: one SGD training step (forward, cross-entropy, backward, update) of a torch MLP whose cost is
  dominated by ``depth`` identical hidden layers, so a model with fewer layers is an honest stand-in for the same step
  on a faster chip (the speedup used in Amdahl's law is the *measured* ratio of model-step times).

The loader (decode + augment) can run sequentially or overlapped with the model step in background threads with a
bounded prefetch queue, as ``torch.utils.data.DataLoader`` does with workers; zlib, numpy and torch release the GIL in
their inner loops, so threads use separate cores. torch is imported lazily.
"""

from __future__ import annotations

import os
import zlib
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from efflab import _validate as v
from efflab.style import wrap_text
from efflab.timing import timer, torch_threads

__all__ = [
    "STAGES",
    "InputPipeline",
    "ModelStep",
    "PipelineConfig",
    "PipelineRun",
    "bottleneck_claim",
    "decode_image",
    "encode_image",
    "fit_serial_fraction",
    "overlap_claim",
    "overlapped_time_s",
    "stage_cut_claim",
    "torch_threads",
]

STAGES = ("decode", "augment", "model")


@dataclass(frozen=True)
class PipelineConfig:
    """Sizes of the synthetic dataset, the augmentation and the model (defaults: tuned so that on one core of a
    2-core laptop-class CPU the model step takes roughly three quarters of a sequential batch)."""

    n_images: int = 64  # distinct stored images; batches cycle through them
    image_hw: int = 128  # stored side in pixels (3 channels, uint8): 48 KiB raw per image
    crop_hw: int = 96  # random crop side in pixels
    pool: int = 4  # average-pool factor after the crop: 96 / 4 = 24 pixels per side reach the model
    batch_size: int = 16  # images per batch
    hidden: int = 1024  # width of the hidden layers
    depth: int = 16  # identical hidden layers, 1 M multiply-adds per sample each at width 1024 (input layer: 1.8 M)
    n_classes: int = 10
    zlib_level: int = 6  # zlib's default compression level (what PNG encoders use by default)
    noise: float = 4.0  # pixel noise (std, grey levels) on the smooth pattern, so decoding has real entropy to undo
    seed: int = 0

    def __post_init__(self):
        for name in ("n_images", "image_hw", "crop_hw", "pool", "batch_size", "hidden", "depth", "n_classes"):
            v.integer(getattr(self, name), name, "count", low=1)
        if self.crop_hw > self.image_hw:
            raise ValueError(f"crop_hw must be <= image_hw = {self.image_hw} (in pixels); got {self.crop_hw}")
        if self.crop_hw % self.pool:
            raise ValueError(f"crop_hw ({self.crop_hw} pixels) must be a multiple of pool; got pool = {self.pool}")
        v.integer(self.zlib_level, "zlib_level", "zlib level", low=0, high=9)
        v.nonnegative(self.noise, "noise", "grey levels")

    @property
    def input_hw(self) -> int:
        """Side of the images that reach the model (pixels)."""
        return self.crop_hw // self.pool

    @property
    def model_flops(self) -> float:
        """FLOPs of one training step (forward + backward = 3x forward; 2 FLOPs per multiply-add) for the batch."""
        macs = 3 * self.input_hw**2 * self.hidden + self.depth * self.hidden**2 + self.hidden * self.n_classes
        return 2.0 * 3.0 * macs * self.batch_size


def encode_image(image: np.ndarray, level: int = 6) -> bytes:
    """Compress an ``(H, W, C)`` uint8 image the way PNG does: the "Up" filter, then zlib (deflate).

    ``filtered[r] = image[r] - image[r - 1] (mod 256)``, row 0 unchanged; ``blob = zlib.compress(filtered)``.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, C)
    level : int
        zlib compression level, 0-9.

    Returns
    -------
    bytes
        The compressed, filtered pixels (shape not stored; :func:`decode_image` takes it).

    References
    ----------
    PNG specification (W3C, 2003), section 9.2 "Filter types" (type 2, Up); RFC 1950/1951 (zlib, deflate).

    Examples
    --------
    >>> img = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    >>> bool((decode_image(encode_image(img), img.shape) == img).all())
    True
    """
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3:
        raise TypeError(f"image must be a uint8 array of shape (H, W, C); got {img.dtype} {img.shape}")
    level = v.integer(level, "level", "zlib level", low=0, high=9)
    rows = img.reshape(img.shape[0], -1)
    filtered = np.diff(rows, axis=0, prepend=np.zeros((1, rows.shape[1]), np.uint8))  # uint8: wraps mod 256
    return zlib.compress(filtered.tobytes(), level)


def decode_image(blob: bytes, shape: Sequence[int]) -> np.ndarray:
    """Decode :func:`encode_image`'s output: inflate, then undo the Up filter with a wrapping cumulative sum.

    ``image[r] = sum_{k <= r} filtered[k] (mod 256)``

    Parameters
    ----------
    blob : bytes
        zlib stream of the filtered rows.
    shape : (H, W, C)
        Shape of the image in pixels.

    Returns
    -------
    ndarray of uint8, shape (H, W, C)

    Examples
    --------
    >>> img = np.full((3, 2, 1), 250, np.uint8); img[1] = 3
    >>> decode_image(encode_image(img), (3, 2, 1))[:, :, 0].tolist()
    [[250, 250], [3, 3], [250, 250]]
    """
    h, w, c = (int(x) for x in shape)
    rows = np.frombuffer(zlib.decompress(blob), np.uint8)
    if rows.size != h * w * c:
        raise ValueError(f"blob holds {rows.size} bytes, shape {(h, w, c)} needs {h * w * c}")
    return np.cumsum(rows.reshape(h, w * c), axis=0, dtype=np.uint8).reshape(h, w, c)


class ModelStep:
    """One SGD training step of an MLP: ``Linear(3 h^2 -> hidden)``, ``depth x Linear(hidden -> hidden)``, a classifier.

    Built from ``torch.manual_seed(seed)`` so two ``ModelStep`` with the same arguments hold the same weights. Calling
    it with a float32 ``(B, 3, h, h)`` numpy batch and int64 labels runs forward, cross-entropy, backward and the
    update, and returns the loss (a float; ``.item()`` also waits for a GPU to finish).
    """

    def __init__(self, config: PipelineConfig, depth: int | None = None, device: str = "cpu", lr: float = 0.01):
        import torch

        self.config = config
        self.depth = config.depth if depth is None else v.integer(depth, "depth", "layers", low=0)
        self.device = torch.device(device)
        torch.manual_seed(config.seed)
        layers = [torch.nn.Flatten(), torch.nn.Linear(3 * config.input_hw**2, config.hidden), torch.nn.ReLU()]
        for _ in range(self.depth):
            layers += [torch.nn.Linear(config.hidden, config.hidden), torch.nn.ReLU()]
        layers.append(torch.nn.Linear(config.hidden, config.n_classes))
        self.model = torch.nn.Sequential(*layers).to(self.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> float:
        import torch

        xt = torch.from_numpy(x).to(self.device, non_blocking=True)
        yt = torch.from_numpy(y).to(self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(self.model(xt), yt)
        loss.backward()
        self.optimizer.step()
        return float(loss.item())


@dataclass(frozen=True)
class PipelineRun:
    """Per-batch stage times (s) of one run of :meth:`InputPipeline.run`, and what they imply.

    ``stage_times_s[stage][i]`` is the time stage ``stage`` took on batch ``i`` (in a worker thread when overlapped);
    ``wait_s[i]`` the time the model step waited for batch ``i`` to be ready (the loader's part of the critical path);
    ``total_s`` the wall time of the whole run.
    """

    stage_times_s: dict[str, tuple[float, ...]]
    wait_s: tuple[float, ...]
    total_s: float
    overlap: bool
    workers: int
    threads: int
    losses: tuple[float, ...] = field(default=(), repr=False)

    @property
    def n_batches(self) -> int:
        return len(self.wait_s)

    @property
    def time_per_batch_s(self) -> float:
        """Wall time per batch (s): ``total_s / n_batches``."""
        return self.total_s / self.n_batches

    @property
    def stage_time_s(self) -> dict[str, float]:
        """Median time per batch of each stage (s)."""
        return {k: float(np.median(t)) if t else 0.0 for k, t in self.stage_times_s.items()}

    @property
    def fractions(self) -> dict[str, float]:
        """Each stage's share of the summed stage times ``t_k / sum_j t_j`` (medians; sums to 1)."""
        t = self.stage_time_s
        total = sum(t.values())
        return {k: x / total for k, x in t.items()}

    @property
    def loader_time_s(self) -> float:
        """decode + augment per batch (s, medians)."""
        t = self.stage_time_s
        return t["decode"] + t["augment"]

    @property
    def wait_fraction(self) -> float:
        """Share of the wall time the model step spent waiting for data (the loader on the critical path)."""
        return sum(self.wait_s) / self.total_s

    @property
    def bottleneck(self) -> str:
        """Which part sets the pace, "loader" (decode + augment) or "model". Sequentially the larger of the two
        median times; overlapped "loader" when the model step waited for data more than a quarter of the wall time."""
        if not self.overlap:
            return "loader" if self.loader_time_s > self.stage_time_s["model"] else "model"
        return "loader" if self.wait_fraction > 0.25 else "model"

    def summary(self) -> str:
        """Two lines: time per batch and waiting share; per-stage median times and fractions."""
        parts = ", ".join(
            f"{k} {1e3 * t:.1f} ms ({100 * self.fractions[k]:.0f} %)" for k, t in self.stage_time_s.items()
        )
        mode = f"overlapped, {self.workers} loader thread(s)" if self.overlap else "sequential"
        return wrap_text(
            f"{mode}: {1e3 * self.time_per_batch_s:.1f} ms per batch, model step waited for data "
            f"{100 * self.wait_fraction:.0f} % of the time\n  {parts}"
        )


class InputPipeline:
    """decode -> augment -> model step over a synthetic, compressed image dataset made from a fixed seed.

    Examples
    --------
    >>> p = InputPipeline(PipelineConfig(n_images=4, image_hw=16, crop_hw=12, pool=2, batch_size=2, hidden=8, depth=1))
    >>> x, y = p.load(0)
    >>> x.shape, x.dtype.name, y.shape
    ((2, 3, 6, 6), 'float32', (2,))
    >>> run = p.run(3, ModelStep(p.config))
    >>> run.n_batches, sorted(run.fractions) == sorted(STAGES), round(sum(run.fractions.values()), 9)
    (3, True, 1.0)
    """

    def __init__(self, config: PipelineConfig | None = None):
        self.config = cfg = PipelineConfig() if config is None else config
        rng = np.random.default_rng(cfg.seed)
        side = cfg.image_hw
        # A smooth pattern (an 8x upsampled random grid) plus noise: compressible like a photo, not like white noise.
        coarse = rng.uniform(0, 255, (cfg.n_images, -(-side // 8), -(-side // 8), 3))
        smooth = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)[:, :side, :side]
        noisy = smooth + rng.normal(0.0, cfg.noise, smooth.shape) if cfg.noise else smooth
        self.images = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        self.labels = rng.integers(0, cfg.n_classes, cfg.n_images).astype(np.int64)
        self.records = tuple(encode_image(im, cfg.zlib_level) for im in self.images)
        # Normalisation constants computed from the dataset, as a real pipeline does once (per channel, in [0, 1]).
        self.mean = (self.images.mean(axis=(0, 1, 2)) / 255.0).astype(np.float32)
        self.std = (self.images.std(axis=(0, 1, 2)) / 255.0).astype(np.float32)

    @property
    def compressed_bytes(self) -> int:
        return sum(len(r) for r in self.records)

    def indices(self, i: int) -> np.ndarray:
        """Image indices in batch ``i`` (consecutive, wrapping around the dataset)."""
        b = self.config.batch_size
        return (int(i) * b + np.arange(b)) % self.config.n_images

    def decode(self, i: int) -> np.ndarray:
        """Decode the images of batch ``i``: uint8 ``(B, H, W, 3)``."""
        shape = self.images.shape[1:]
        return np.stack([decode_image(self.records[k], shape) for k in self.indices(i)])

    def augment(self, raw: np.ndarray, i: int) -> np.ndarray:
        """Random crop, random horizontal flip, average-pool resize, normalise: float32 ``(B, 3, h, h)``."""
        cfg = self.config
        rng = np.random.default_rng((cfg.seed, int(i)))
        n, side, crop, pool = int(raw.shape[0]), int(raw.shape[1]), cfg.crop_hw, cfg.pool
        tops = rng.integers(0, side - crop + 1, (n, 2))
        flips = rng.random(n) < 0.5
        out = np.empty((n, cfg.input_hw, cfg.input_hw, 3), np.float32)
        for k in range(n):
            (r, c), img = tops[k], raw[k]
            patch = img[r : r + crop, c : c + crop]
            if flips[k]:
                patch = patch[:, ::-1]
            small = patch.reshape(cfg.input_hw, pool, cfg.input_hw, pool, 3).mean(axis=(1, 3), dtype=np.float32)
            out[k] = small
        out *= np.float32(1.0 / 255.0)
        out -= self.mean
        out /= self.std
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """decode + augment batch ``i``: ``(x, y)``."""
        return self.augment(self.decode(i), i), self.labels[self.indices(i)]

    def _timed_load(self, i: int) -> tuple[np.ndarray, np.ndarray, float, float]:
        with timer(sync=False) as t_dec:
            raw = self.decode(i)
        with timer(sync=False) as t_aug:
            x = self.augment(raw, i)
        return x, self.labels[self.indices(i)], t_dec.seconds, t_aug.seconds

    def batches(self, n_batches: int, *, overlap: bool = False, workers: int = 1, prefetch: int | None = None):
        """Yield ``(x, y, decode_s, augment_s, wait_s)`` for batches ``0 .. n_batches-1`` in order.

        Overlapped, ``workers`` threads load up to ``prefetch`` (default ``2 * workers``, DataLoader's default
        ``prefetch_factor = 2`` per worker) batches ahead while the consumer works on the current one.
        """
        n = v.integer(n_batches, "n_batches", "batches", low=1)
        if not overlap:
            for i in range(n):
                with timer(sync=False) as t:
                    x, y, dec, aug = self._timed_load(i)
                yield x, y, dec, aug, t.seconds
            return
        workers = v.integer(workers, "workers", "threads", low=1)
        depth = 2 * workers if prefetch is None else v.integer(prefetch, "prefetch", "batches", low=1)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="efflab-loader") as pool:
            pending = deque(pool.submit(self._timed_load, i) for i in range(min(depth, n)))
            for i in range(n):
                with timer(sync=False) as t:
                    x, y, dec, aug = pending.popleft().result()
                if i + depth < n:
                    pending.append(pool.submit(self._timed_load, i + depth))
                yield x, y, dec, aug, t.seconds

    def run(
        self,
        n_batches: int,
        model_step: ModelStep | None = None,
        *,
        overlap: bool = False,
        workers: int = 1,
        prefetch: int | None = None,
        threads: int | None = 1,
        warmup_batches: int = 1,
    ) -> PipelineRun:
        """Run ``warmup_batches`` untimed batches, then ``n_batches`` timed ones, and return the per-stage times.

        ``model_step=None`` skips the model (its time is 0: the limit of an infinitely fast model step).
        ``threads`` sets ``torch.set_num_threads`` for the run (restored after); 1 by default, so one core trains
        while another loads.
        """
        n = v.integer(n_batches, "n_batches", "batches", low=1)
        warm = v.integer(warmup_batches, "warmup_batches", "batches", low=0)
        times: dict[str, list[float]] = {k: [] for k in STAGES}
        waits: list[float] = []
        losses: list[float] = []
        with torch_threads(threads) as used:
            if model_step is not None:
                for i in range(warm):
                    model_step(*self.load(i))
            with timer() as wall:
                for x, y, dec, aug, wait in self.batches(n, overlap=overlap, workers=workers, prefetch=prefetch):
                    model_s = 0.0
                    if model_step is not None:
                        with timer() as t:
                            losses.append(model_step(x, y))
                        model_s = t.seconds
                    times["decode"].append(dec)
                    times["augment"].append(aug)
                    times["model"].append(model_s)
                    waits.append(wait)
        return PipelineRun(
            {k: tuple(t) for k, t in times.items()},
            tuple(waits),
            wall.seconds,
            bool(overlap),
            int(workers) if overlap else 0,
            used,
            tuple(losses),
        )


def overlapped_time_s(loader_time_s, model_time_s, workers=1, cores=None) -> float | np.ndarray:
    """Time per batch of an overlapped loader and model step: the slowest of three resources sets the pace.

    ``T = max(t_loader / workers, t_model, (t_loader + t_model) / cores)``: the loader threads together, the model
    step, or the CPU cores that must do all the work (each stage on one core, times measured sequentially).

    Parameters
    ----------
    loader_time_s, model_time_s : float or array_like
        Per-batch times of decode + augment and of the model step, measured one at a time (s, >= 0).
    workers : int
        Loader threads (>= 1).
    cores : int, optional
        CPU cores available; default ``os.cpu_count()``.

    Returns
    -------
    float or ndarray
        Predicted time per batch (s): a lower bound that ignores interference between the threads.

    Examples
    --------
    A 30 ms loader and a 20 ms model step on 2 cores: one loader thread is the bottleneck (30 ms), two loader
    threads would need 15 ms but two cores can do the 50 ms of work no faster than 25 ms.

    >>> float(overlapped_time_s(0.030, 0.020, workers=1, cores=2)), float(overlapped_time_s(0.030, 0.020, 2, 2))
    (0.03, 0.025)
    """
    lt = v.nonnegative(loader_time_s, "loader_time_s", "s")
    mt = v.nonnegative(model_time_s, "model_time_s", "s")
    w = v.integer(workers, "workers", "threads", low=1)
    c = v.integer((os.cpu_count() or 1) if cores is None else cores, "cores", "cores", low=1)
    return v.scalar_or_array(np.maximum(np.maximum(lt / w, mt), (lt + mt) / c))


def fit_serial_fraction(threads, time_s) -> float:
    """Least-squares serial fraction ``e`` of Amdahl's model ``T(p) = T_1 (e + (1 - e) / p)`` from a thread sweep.

    Linear in ``a = T_1 e`` and ``b = T_1 (1 - e)``: fit ``T(p) = a + b / p``, then ``e = a / (a + b)``. With two
    thread counts, one of them 1, this equals :func:`efflab.amdahl.karp_flatt` of the measured speedup.

    Parameters
    ----------
    threads : array_like of int
        Thread (processor) counts ``p >= 1``, at least two distinct values.
    time_s : array_like
        Measured times at those counts (s, > 0).

    Returns
    -------
    float
        The fitted serial fraction (can fall outside [0, 1] for superlinear or anti-scaling data).

    References
    ----------
    A. H. Karp and H. P. Flatt, CACM 33(5), 1990.

    Examples
    --------
    >>> p = np.array([1, 2, 4, 8])
    >>> round(fit_serial_fraction(p, 10.0 * (0.2 + 0.8 / p)), 9)
    0.2
    """
    p = v.real(threads, "threads", "threads", low=1.0).ravel()
    t = v.positive(time_s, "time_s", "s").ravel()
    if p.shape != t.shape:
        raise ValueError(f"threads and time_s must have the same length; got {p.size} and {t.size}")
    if np.unique(p).size < 2:
        raise ValueError(f"threads must hold at least two distinct counts; got {p.tolist()}")
    (a, b), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(p), 1.0 / p]), t, rcond=None)
    return float(a / (a + b))


def bottleneck_claim(before: PipelineRun, after: PipelineRun):
    """ "Accelerating the model step moved the bottleneck to the loader", judged on two sequential runs
    (:mod:`efflab.claims`). Diagnoses: the model step did not speed up enough to fall below the loader (its speed-up
    and the loader's time are named); other processes used the cores.

    Examples
    --------
    >>> run = lambda d, a, m: PipelineRun({"decode": (d,), "augment": (a,), "model": (m,)}, (0.0,), d + a + m,
    ...                                   False, 0, 1)
    >>> print(bottleneck_claim(run(6.2e-3, 4.0e-3, 46.3e-3), run(6.2e-3, 4.0e-3, 6.5e-3)))
    held here: accelerating the model step moved the bottleneck to the loader (model 46.3 ms -> 6.5 ms,
      loader 10.2 ms)
    """
    from efflab.claims import check, cores_contended, reason

    if not isinstance(before, PipelineRun) or not isinstance(after, PipelineRun):
        raise TypeError("before and after must be PipelineRun objects (InputPipeline.run)")
    m0, m1, loader = before.stage_time_s["model"], after.stage_time_s["model"], after.loader_time_s
    return check(
        "accelerating the model step moved the bottleneck to the loader",
        before.bottleneck == "model" and after.bottleneck == "loader",
        f"model {m0 * 1e3:.3g} ms -> {m1 * 1e3:.3g} ms, loader {loader * 1e3:.3g} ms",
        [
            reason(
                m1 >= loader,
                f"the model step sped up only x{m0 / m1:.3g}, and at {m1 * 1e3:.3g} ms it still takes longer than "
                f"the {loader * 1e3:.3g} ms loader",
            ),
            reason(
                before.bottleneck != "model",
                f"the loader ({before.loader_time_s * 1e3:.3g} ms) already outweighed the model step "
                f"({m0 * 1e3:.3g} ms) before it was accelerated",
            ),
            cores_contended(),
        ],
    )


def overlap_claim(runs):
    """ "Overlapping hides part of the work": every overlapped run's time per batch is shorter than the sum of its own
    stage times (:mod:`efflab.claims`). Diagnoses: the threads slowed each other down so much that the stages grew
    (named with the growth of the longest), other processes used the cores.

    Examples
    --------
    >>> run = PipelineRun({"decode": (6e-3,), "augment": (4e-3,), "model": (7e-3,)}, (5e-3,), 11.6e-3, True, 1, 1)
    >>> print(overlap_claim([run]))
    held here: overlapping hides part of the work (1 loader thread(s): 11.6 ms per batch against 17 ms of stages)
    """
    from efflab.claims import check, cores_contended, reason

    runs = list(runs)
    if not runs or not all(isinstance(r, PipelineRun) and r.overlap for r in runs):
        raise TypeError("runs must be a non-empty sequence of overlapped PipelineRun objects (overlap=True)")
    sums = [sum(r.stage_time_s.values()) for r in runs]
    worst = max(range(len(runs)), key=lambda i: runs[i].time_per_batch_s / sums[i])
    return check(
        "overlapping hides part of the work",
        all(r.time_per_batch_s < s for r, s in zip(runs, sums, strict=True)),
        "; ".join(
            f"{r.workers} loader thread(s): {r.time_per_batch_s * 1e3:.3g} ms per batch against {s * 1e3:.3g} ms of "
            "stages"
            for r, s in zip(runs, sums, strict=True)
        ),
        [
            reason(
                runs[worst].threads + runs[worst].workers > (os.cpu_count() or 1),
                f"{runs[worst].workers} loader thread(s) and {runs[worst].threads} model thread(s) share "
                f"{os.cpu_count() or 1} core(s): the stages take turns instead of overlapping",
            ),
            cores_contended(),
        ],
    )


def stage_cut_claim(before: PipelineRun, after: PipelineRun, stage: str = "decode", keep_below: float = 0.5):
    """ "The fix removes most of a stage's time", judged on two runs (:mod:`efflab.claims`): the stage's median time
    after is under ``keep_below`` of before (caching decoded images should leave little of ``decode``).

    Examples
    --------
    >>> run = lambda d: PipelineRun({"decode": (d,), "augment": (4e-3,), "model": (6e-3,)}, (0.0,), d + 1e-2, False,
    ...                             0, 1)
    >>> print(stage_cut_claim(run(6.3e-3), run(0.2e-3)))
    held here: the fix removes most of the decode time (6.3 ms -> 0.2 ms, 3% left)
    """
    from efflab.claims import check, cores_contended

    if not isinstance(before, PipelineRun) or not isinstance(after, PipelineRun):
        raise TypeError("before and after must be PipelineRun objects")
    stage = v.choice(stage, "stage", STAGES)
    t0, t1 = before.stage_time_s[stage], after.stage_time_s[stage]
    if not t0 > 0:
        raise ValueError(f"the {stage} stage took no time before the fix; nothing to remove")
    return check(
        f"the fix removes most of the {stage} time",
        t1 < keep_below * t0,
        f"{t0 * 1e3:.3g} ms -> {t1 * 1e3:.3g} ms, {t1 / t0:.0%} left",
        [cores_contended()],
    )


# Names that moved to the presentation layer (efflab.plots, efflab.widgets) stay importable from here; they are looked
# up on first use, so this module never imports the layer above it (see the package docstring and
# tests/test_layering.py).
_MOVED = {"plot_runs": "efflab.plots"}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
