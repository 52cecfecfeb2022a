"""A smaller model taught by the larger one: knowledge distillation, the labels-only control, and the FLOP accounting
that says when the extra training pays for itself (:func:`break_even_inferences`).

Distillation trades training FLOPs (the teacher's soft-target pass plus the student's training) for a cheaper model at
inference. torch is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from efflab import _validate as v
from efflab.compress.model import DigitsData, TrainResult, evaluate, forward_flops, make_mlp, train, widths_of
from efflab.timing import torch_threads

# Distillation settings: chosen on 5 seeds of the 64-32-10 and 64-16-10 students (T in 1..8, alpha 0.5/0.9, lr 3e-3 /
# 1e-2); T = 2, alpha = 0.5 at lr = 1e-2 was among the best and never worse than labels alone by more than noise.
DISTILL_SETTINGS: dict[str, Any] = {"temperature": 2.0, "alpha": 0.5, "lr": 1e-2, "epochs": 30}


def break_even_inferences(extra_training_flops, flops_saved_per_inference):
    """Inferences after which a cheaper model repays the extra FLOPs spent making it: ``N* = C_train / dF``.

    Parameters
    ----------
    extra_training_flops : float or array_like
        FLOPs spent to obtain the cheaper model (FLOP, >= 0).
    flops_saved_per_inference : float or array_like
        Teacher's minus student's FLOPs per inference (FLOP, > 0: a model that saves nothing never repays).

    Returns
    -------
    float or ndarray
        Number of inferences (not rounded).

    Examples
    --------
    >>> break_even_inferences(1e9, 164224.0)
    6089.2...
    """
    cost = v.nonnegative(extra_training_flops, "extra_training_flops", "FLOP")
    saved = v.positive(flops_saved_per_inference, "flops_saved_per_inference", "FLOP")
    return v.scalar_or_array(cost / saved)


def distill(teacher, data: DigitsData, widths: Sequence[int], **train_kwargs) -> TrainResult:
    """Train a student MLP of ``widths`` on the teacher's logits (soft targets) and the labels; count every FLOP.

    The teacher's logits for the training set are computed once (``n_train * F_teacher`` FLOPs); the returned
    ``flops`` adds them to the student's training FLOPs, so it is the whole price of the student. ``train_kwargs``
    go to :func:`~efflab.compress.model.train` (``seed`` also seeds the student's initialisation).

    Examples
    --------
    >>> from efflab.compress import load_digits_data, training_flops
    >>> d = load_digits_data()
    >>> r = distill(make_mlp((64, 32, 10)), d, (64, 8, 10), epochs=1)
    >>> r.flops == d.n_train * forward_flops((64, 32, 10)) + training_flops((64, 8, 10), d.n_train)
    True
    """
    import torch

    with torch.no_grad(), torch_threads(1):
        soft = teacher(data.x_train)
    student = make_mlp(widths, seed=train_kwargs.pop("seed", 0))
    r = train(student, data, soft_targets=soft, **train_kwargs)
    return TrainResult(r.model, r.samples, r.flops + data.n_train * forward_flops(widths_of(teacher)))


def compare_students(teacher, data: DigitsData, widths: Sequence[int] = (64, 32, 10), seeds=(0, 1, 2)) -> dict:
    """Test accuracy of the same student distilled and trained on labels alone (same settings), per seed.

    Returns ``{"distilled": [...], "labels only": [...]}`` (fractions), the control that says whether the teacher's
    soft targets helped at all on this data set.
    """
    settings = {k: val for k, val in DISTILL_SETTINGS.items() if k not in ("temperature", "alpha")}
    out: dict = {"distilled": [], "labels only": []}
    for s in seeds:
        out["distilled"].append(evaluate(distill(teacher, data, widths, seed=s, **DISTILL_SETTINGS).model, data))
        scratch = make_mlp(widths, seed=s)
        train(scratch, data, seed=s, **settings)
        out["labels only"].append(evaluate(scratch, data))
    return out
