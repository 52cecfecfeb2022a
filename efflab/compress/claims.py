"""What chapter 2 claims about its variants, judged on the measured ones with :mod:`efflab.claims`: lower precision
barely moves the accuracy, only kernels that skip the removed work get faster, and distillation changes little on a
task this easy. Each verdict comes with the figures it was judged on and, when it fails, its diagnosis.
"""

from __future__ import annotations

import numpy as np

from efflab import _validate as v
from efflab.compress.measure import Variant
from efflab.compress.precision import INT4_GROUP_SIZE

# "Accuracy barely moves" under lower precision: no format loses more than this many percentage points against fp32.
PRECISION_DROP_PP = 1.0
# "A dense kernel multiplies the zeros": a pruned model on the dense kernel takes fp32's time within this fraction.
DENSE_PRUNED_TIME_BAND = 0.15
# "On a task this easy": distillation changes the mean accuracy over the seeds by at most this many test images.
DISTILL_IMAGES = 3


def precision_claim(variants, max_drop_pp: float = PRECISION_DROP_PP):
    """ "Lower precision barely moves the accuracy", judged on :func:`~efflab.compress.variants.precision_variants`
    (:mod:`efflab.claims`): no format loses more than ``max_drop_pp`` percentage points against the first variant
    (fp32).

    Diagnosis of a larger drop: the coarsest format (4-bit: 16 levels per weight, one scale per group) rounded the
    weights too coarsely for this model.

    Examples
    --------
    >>> v = [Variant(n, "precision", a, 1, 1e-3, 1.0, 1) for n, a in (("fp32", .9866), ("int8 dynamic", .9866),
    ...      ("int4 weight-only", .9822))]
    >>> print(precision_claim(v))
    held here: lower precision barely moves the accuracy (largest drop: int4 weight-only, 0.44 percentage points)
    """
    from efflab.claims import check, reason

    variants = list(variants)
    if len(variants) < 2 or not all(isinstance(x, Variant) for x in variants):
        raise TypeError("variants must be the Variant list of precision_variants (fp32 first, then the formats)")
    base = variants[0]
    worst = max(variants[1:], key=lambda x: base.accuracy - x.accuracy)
    drop_pp = 100 * (base.accuracy - worst.accuracy)
    return check(
        "lower precision barely moves the accuracy",
        drop_pp <= max_drop_pp,
        f"largest drop: {worst.name}, {drop_pp:.2f} percentage points",
        [
            reason(
                "int4" in worst.name,
                f"{worst.name} keeps 16 levels per weight with one scale per group of {INT4_GROUP_SIZE}: rounding "
                "that coarse costs this model accuracy, where 8 and 16 bits do not",
            )
        ],
    )


def pruning_time_claim(fp32: Variant, variants):
    """ "Only kernels that skip the removed work get faster", judged on measured variants (:mod:`efflab.claims`):
    unstructured-pruned models on the dense kernel take fp32's time within ``DENSE_PRUNED_TIME_BAND``, and every
    structured (smaller dense) model is faster than fp32. CSR variants are left out: whether a sparse kernel wins
    depends on the machine, and the chapter says so.

    Examples
    --------
    >>> fp32 = Variant("fp32", "baseline", .98, 1, 501e-6, 1.0, 256)
    >>> v = [Variant("pruned 90%", "unstructured", .97, 1, 500e-6, 1.0, 256),
    ...      Variant("structured 64 units", "structured", .97, 1, 86.9e-6, 1.0, 256)]
    >>> print(pruning_time_claim(fp32, v))  # doctest: +NORMALIZE_WHITESPACE
    held here: only kernels that skip the removed work get faster (dense pruned x1.00-x1.00 of fp32's time,
      structured x0.17-x0.17)
    """
    from efflab.claims import check, cores_contended

    dense = [x for x in variants if x.family == "unstructured" and "CSR" not in x.name]
    smaller = [x for x in variants if x.family == "structured"]
    if not dense or not smaller:
        raise ValueError("variants must hold dense unstructured-pruned and structured variants (measured)")
    d = [x.latency_s / fp32.latency_s for x in dense]
    s = [x.latency_s / fp32.latency_s for x in smaller]
    return check(
        "only kernels that skip the removed work get faster",
        all(abs(r - 1) <= DENSE_PRUNED_TIME_BAND for r in d) and all(r < 1 for r in s),
        f"dense pruned x{min(d):.2f}-x{max(d):.2f} of fp32's time, structured x{min(s):.2f}-x{max(s):.2f}",
        [cores_contended()],
    )


def distillation_claim(runs: dict, n_test: int, max_images: float = DISTILL_IMAGES):
    """ "On a task this easy distillation changes the accuracy by a few test images at most", judged on
    :func:`~efflab.compress.distillation.compare_students` (:mod:`efflab.claims`): the means over the seeds differ by at
    most ``max_images``.

    Diagnosis of a larger difference: it is within the spread between seeds of one kind (the run-to-run noise of
    training itself).

    Examples
    --------
    >>> runs = {"distilled": [0.9710, 0.9755, 0.9800], "labels only": [0.9733, 0.9777, 0.9755]}
    >>> print(distillation_claim(runs, 449))
    held here: distillation changes the accuracy by a few test images at most (+0.0 of 449 test images)
    """
    from efflab.claims import check, reason

    distilled, labels = (np.asarray(runs[k], dtype=float) for k in ("distilled", "labels only"))
    n = v.integer(n_test, "n_test", "images", low=1)
    diff_images = (distilled.mean() - labels.mean()) * n
    spread_images = max(np.ptp(distilled), np.ptp(labels)) * n
    return check(
        "distillation changes the accuracy by a few test images at most",
        abs(diff_images) <= max_images,
        f"{diff_images:+.1f} of {n} test images",
        [
            reason(
                abs(diff_images) <= spread_images,
                f"the difference is within the spread between seeds of one kind ({spread_images:.0f} images): "
                "training noise, not the method",
            )
        ],
    )
