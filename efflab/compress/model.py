"""The model every variant is made from: scikit-learn's digits, an MLP of Linear layers, its training and its test
accuracy, with the matmul FLOPs a forward pass and a training run cost.

Everything here is deterministic (fixed seeds, one thread), so an accuracy measured twice is the same number. torch
and scikit-learn are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from efflab import _validate as v
from efflab.opcost import torch_dtype
from efflab.timing import torch_threads

# The teacher: 64 pixels -> two hidden layers of 256 -> 10 digits. 256 wide makes one batch of 256 a ~43 MFLOP
# forward pass (tenths of a millisecond on one core), large enough that halving the work is visible in the timing.
DEFAULT_WIDTHS = (64, 256, 256, 10)
# The floating-point formats a variant may run in (inputs are cast to the same one).
_DTYPES = ("fp32", "fp16", "bf16")


def _torch_dtype(name: str):
    return torch_dtype(name, _DTYPES)


@dataclass(frozen=True)
class DigitsData:
    """scikit-learn's 8x8 digits, pixels scaled to [0, 1], split once with a fixed seed (torch tensors)."""

    x_train: Any = field(repr=False)
    y_train: Any = field(repr=False)
    x_test: Any = field(repr=False)
    y_test: Any = field(repr=False)

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])


def load_digits_data(test_fraction: float = 0.25, seed: int = 0) -> DigitsData:
    """Load the 1797 bundled digit images (no download) and split them at random with ``seed``.

    Parameters
    ----------
    test_fraction : float
        Fraction of the images held out for testing (0 < f < 1).
    seed : int
        Seed of the permutation.

    Examples
    --------
    >>> d = load_digits_data()
    >>> d.n_train, d.n_test, tuple(d.x_train.shape[1:])
    (1348, 449, (64,))
    """
    import torch
    from sklearn.datasets import load_digits

    f = float(v.fraction(test_fraction, "test_fraction", open_low=True, open_high=True))
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)  # pixel values are 0..16
    y = torch.tensor(digits.target, dtype=torch.int64)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(v.integer(seed, "seed")))
    n_test = round(f * len(x))
    test, tr = perm[:n_test], perm[n_test:]
    return DigitsData(x[tr], y[tr], x[test], y[test])


def make_mlp(widths: Sequence[int] = DEFAULT_WIDTHS, seed: int = 0):
    """A ``Sequential`` of Linear layers with ReLU between them, initialised from ``seed`` (global RNG untouched).

    Examples
    --------
    >>> make_mlp((64, 32, 10))
    Sequential(
      (0): Linear(in_features=64, out_features=32, bias=True)
      (1): ReLU()
      (2): Linear(in_features=32, out_features=10, bias=True)
    )
    """
    import torch

    widths = [v.integer(w, "widths", "units", low=1) for w in widths]
    if len(widths) < 2:
        raise ValueError(f"widths must list at least an input and an output size; got {widths}")
    layers: list = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(v.integer(seed, "seed"))
        for i, (a, b) in enumerate(pairwise(widths)):
            layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(widths) - 2 else [])
    return torch.nn.Sequential(*layers)


def _linears(model) -> list:
    import torch

    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)]


def _n_weights(model) -> int:
    return sum(m.weight.numel() for m in _linears(model))


def widths_of(model) -> tuple[int, ...]:
    """Layer widths of an MLP of Linear layers, input first: ``(64, 256, 256, 10)``."""
    lin = _linears(model)
    return (lin[0].in_features, *(m.out_features for m in lin))


def forward_flops(widths: Sequence[int]) -> float:
    """Matmul FLOPs of one sample's forward pass: ``F = sum_l 2 * w_l * w_(l+1)`` (an FMA is 2 FLOPs).

    Bias adds and ReLU are left out, as ``torch.utils.flop_counter.FlopCounterMode`` leaves them out.

    Examples
    --------
    >>> forward_flops((64, 256, 256, 10))
    168960.0
    """
    w = [v.integer(x, "widths", "units", low=1) for x in widths]
    return float(sum(2 * a * b for a, b in pairwise(w)))


def training_flops(widths: Sequence[int], samples: int) -> float:
    """Matmul FLOPs of training on ``samples`` examples: ``samples * (3F - 2 w_0 w_1)``.

    The backward pass of each layer costs two matmuls of the forward's size (gradient of the input and of the
    weight), except that nothing needs the gradient of the data, which saves the first layer's input-gradient matmul.
    Matches ``FlopCounterMode`` over forward + backward (tested).

    Examples
    --------
    >>> training_flops((64, 32, 10), samples=1)  # 3 * 4736 - 2 * 64 * 32
    10112.0
    """
    w = [v.integer(x, "widths", "units", low=1) for x in widths]
    n = v.integer(samples, "samples", "examples", low=0)
    return float(n * (3 * forward_flops(w) - 2 * w[0] * w[1]))


@dataclass(frozen=True)
class TrainResult:
    """A trained model and what training cost: examples seen and matmul FLOPs (``training_flops``)."""

    model: Any = field(repr=False)
    samples: int
    flops: float


def train(
    model,
    data: DigitsData,
    *,
    epochs: int = 30,
    lr: float = 3e-3,
    batch_size: int = 128,
    seed: int = 0,
    soft_targets=None,
    temperature: float = 4.0,
    alpha: float = 0.9,
    masks=None,
) -> TrainResult:
    """Train in place with Adam on minibatches drawn with ``seed``, on one thread (reproducible accuracy).

    The loss is cross-entropy on the labels, or with ``soft_targets`` (teacher logits for ``data.x_train``) the
    distillation loss ``alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE`` (Hinton et al.
    2015; the ``T^2`` keeps the soft term's gradient scale independent of ``T``). ``masks`` (one 0/1 tensor per
    Linear weight, or None per layer) are re-applied after every step, so pruned weights stay zero.

    Examples
    --------
    >>> r = train(make_mlp((64, 16, 10)), load_digits_data(), epochs=1)
    >>> r.samples, r.flops
    (1348, 6815488.0)
    """
    import torch
    import torch.nn.functional as F

    epochs = v.integer(epochs, "epochs", "passes", low=0)
    batch_size = v.integer(batch_size, "batch_size", "examples", low=1)
    lr = float(v.positive(lr, "lr", "step size"))
    t = float(v.positive(temperature, "temperature"))
    a = float(v.fraction(alpha, "alpha"))
    weights = [m.weight for m in _linears(model)]
    masks = [None] * len(weights) if masks is None else list(masks)
    if len(masks) != len(weights):
        raise ValueError(f"masks must have one entry per Linear layer ({len(weights)}); got {len(masks)}")
    gen = torch.Generator().manual_seed(v.integer(seed, "seed"))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = data.n_train
    with torch_threads(1):
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                logits = model(data.x_train[idx])
                loss = F.cross_entropy(logits, data.y_train[idx])
                if soft_targets is not None:
                    soft = F.kl_div(
                        F.log_softmax(logits / t, dim=1),
                        F.log_softmax(soft_targets[idx] / t, dim=1),
                        reduction="batchmean",
                        log_target=True,
                    )
                    loss = a * t * t * soft + (1 - a) * loss
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for w, m in zip(weights, masks, strict=True):
                        if m is not None:
                            w.mul_(m)
        model.eval()
    samples = epochs * n
    return TrainResult(model, samples, training_flops(widths_of(model), samples))


def evaluate(model, data: DigitsData, dtype: str = "fp32") -> float:
    """Test accuracy (fraction of ``data.x_test`` classified right), inputs cast to ``dtype``, on one thread.

    Examples
    --------
    >>> evaluate(make_mlp((64, 10)), load_digits_data())  # untrained: about chance (1 in 10)
    0.1...
    """
    import torch

    with torch.inference_mode(), torch_threads(1):
        pred = model(data.x_test.to(_torch_dtype(dtype))).argmax(dim=1)
    return float((pred == data.y_test).double().mean())
