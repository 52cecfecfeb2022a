"""Lab 1, "Your machine's roofline": intensity from shapes, the measured ceilings, placing ops, and which lever works.

Master notebook ``labs/masters/lab1_roofline.ipynb``; student notebook ``labs/lab1_roofline.ipynb`` (``efflab assign``).
Function questions are checked against :mod:`efflab.roofline` (``matmul_cost``, ``conv2d_cost``, ``attention_cost``,
``classify``) on hidden shapes; derived questions are recomputed from the times and ceilings the student recorded.

Counting conventions (stated in the notebook too): an FMA is 2 FLOPs; bytes are compulsory traffic (every input read
once, every output written once); convolutions have no bias and padding zeros are never read; attention is the fused
(flash) view, softmax FLOPs not counted, and a causal mask is top-left aligned (query ``i`` sees keys ``0..i``).
"""

from __future__ import annotations

import numpy as np

from efflab.grading.spec import Case, Lab, Question
from efflab.roofline import attention_cost, classify, conv2d_cost, matmul_cost

# Bytes per element the hidden cases draw from: int8, fp16/bf16, fp32, fp64.
_DTYPE_BYTES = (1, 2, 4, 8)


def matmul_intensity(m, n, k, dtype_bytes):
    """Intensity (FLOP/byte) of ``(m, k) @ (k, n)``: ``2mnk / ((mk + kn + mn) s)``."""
    return matmul_cost(m, n, k, dtype_bytes).intensity_flops_per_byte


def conv2d_intensity(
    batch, in_channels, out_channels, height, width, kernel_size, stride, padding, groups, dtype_bytes
):
    """Intensity (FLOP/byte) of a bias-free square-kernel 2-D convolution on an NCHW input."""
    cost = conv2d_cost(
        batch, in_channels, out_channels, height, width, kernel_size, stride, padding, groups, dtype_bytes, bias=False
    )
    return cost.intensity_flops_per_byte


def attention_intensity(batch, heads, seq_len, kv_seq_len, head_dim, dtype_bytes, causal):
    """Intensity (FLOP/byte) of fused scaled dot-product attention, optionally causal (top-left aligned)."""
    cost = attention_cost(
        batch, heads, seq_len, head_dim, kv_seq_len=kv_seq_len, dtype_bytes=dtype_bytes, causal=causal
    )
    return cost.intensity_flops_per_byte


def regime(flops, bytes_moved, peak_flops_per_s, bandwidth_bytes_per_s, latency_s):
    """The largest iron-law term: "memory", "compute" or "latency" (:func:`efflab.roofline.classify`)."""
    return classify(flops, bytes_moved, peak_flops_per_s, bandwidth_bytes_per_s, latency_s=latency_s).regime


def ridge(peak_flops_per_s, bandwidth_bytes_per_s):
    """Ridge point ``I* = R_peak / BW`` (FLOP/byte) of the recorded ceilings."""
    return float(np.asarray(peak_flops_per_s, float).item() / np.asarray(bandwidth_bytes_per_s, float).item())


def achieved(op_flops, op_time_s):
    """Achieved FLOP/s of each measured op: ``flops / time``."""
    return np.asarray(op_flops, float) / np.asarray(op_time_s, float)


def roof_fraction(op_flops, op_bytes, op_time_s, peak_flops_per_s, bandwidth_bytes_per_s):
    """Achieved over attainable: ``(F / t) / min(R_peak, (F / B) * BW)`` for each op (latency not included)."""
    f, b, t = (np.asarray(a, float) for a in (op_flops, op_bytes, op_time_s))
    peak, bw = float(np.asarray(peak_flops_per_s).item()), float(np.asarray(bandwidth_bytes_per_s).item())
    return (f / t) / np.minimum(peak, f / b * bw)


def throughput_gain(lever_items, lever_time_s):
    """Per op (rows), the throughput ``items / time`` of each lever (columns 1, 2) over the baseline (column 0)."""
    rate = np.asarray(lever_items, float) / np.asarray(lever_time_s, float)
    return rate[:, 1:] / rate[:, :1]


def _scalar_ok(value, low, high, what, unit):
    a = np.asarray(value, float)
    if a.size != 1 or not np.isfinite(a).all():
        return f"{what} must be one finite number ({unit})"
    if not low <= a.item() <= high:
        return f"{what} = {a.item():.3g} {unit} is outside the plausible range [{low:g}, {high:g}]"
    return ""


def _plausible_ceilings(peak_flops_per_s, bandwidth_bytes_per_s):
    # from a slow laptop core (1 GFLOP/s, 1 GB/s) to beyond any 2025 accelerator (1e16 FLOP/s, 1e14 B/s)
    return _scalar_ok(peak_flops_per_s, 1e8, 1e16, "peak_flops_per_s", "FLOP/s") or _scalar_ok(
        bandwidth_bytes_per_s, 1e8, 1e14, "bandwidth_bytes_per_s", "bytes/s"
    )


def _plausible_ops(op_flops, op_time_s, op_bytes=None, peak=None, bw=None):
    f, t = np.ravel(op_flops), np.ravel(op_time_s)
    b = f if op_bytes is None else np.ravel(op_bytes)
    if not f.shape == t.shape == b.shape or f.size < 4:
        return "record at least 4 ops, with op_flops, op_bytes and op_time_s of the same length"
    if not (np.all(f > 0) and np.all(b > 0) and np.all(t > 0)):
        return "FLOPs, bytes and times must be positive (leave out ops without FLOPs)"
    if np.any(t > 60):
        return "a time above 60 s per call is not a timing of these ops (record seconds per call)"
    return "" if peak is None else _plausible_ceilings(peak, bw)


def _plausible_levers(lever_items, lever_time_s):
    items, times = np.asarray(lever_items, float), np.asarray(lever_time_s, float)
    if items.shape != (2, 3) or times.shape != (2, 3):
        return "lever_items and lever_time_s must both have shape (2, 3): 2 ops x (baseline, lever A, lever B)"
    if not (np.all(items >= 1) and np.all(times > 0) and np.all(np.isfinite(times))):
        return "items must be >= 1 and times positive"
    return ""


def _matmul_cases(rng):
    # square, skinny (batch-1 linear: m = 1), dot product (m = n = 1), and random shapes up to 8192
    cases = [Case((1, 4096, 4096, 2)), Case((1, 1, 1000, 4)), Case((4096, 4096, 4096, 2)), Case((7, 3, 5, 8))]
    for _ in range(8):
        m, n, k = (int(x) for x in 2 ** rng.uniform(0, 13, 3))
        cases.append(Case((m, n, k, int(rng.choice(_DTYPE_BYTES)))))
    return cases


def _conv_cases(rng):
    # edge cases: 1x1 (pointwise), depthwise (groups = channels), stride 2 with padding, a kernel as large as the
    # padded input, a stride that does not divide evenly (floor), grouped (ResNeXt-style); then random valid shapes.
    cases = [
        Case((1, 64, 128, 56, 56, 1, 1, 0, 1, 4)),
        Case((8, 144, 144, 56, 56, 3, 1, 1, 144, 2)),
        Case((4, 3, 64, 224, 224, 7, 2, 3, 1, 4)),
        Case((2, 16, 8, 5, 5, 7, 1, 1, 1, 4)),
        Case((1, 32, 32, 10, 11, 3, 3, 0, 1, 2)),
        Case((2, 128, 256, 28, 28, 3, 2, 1, 32, 2)),
    ]
    while len(cases) < 14:
        groups = int(rng.choice((1, 1, 2, 4, 8)))
        c_in, c_out = groups * int(rng.integers(1, 33)), groups * int(rng.integers(1, 33))
        h, w = (int(x) for x in rng.integers(4, 65, 2))
        kernel, stride, padding = int(rng.choice((1, 3, 5))), int(rng.integers(1, 4)), int(rng.integers(0, 3))
        if min(h, w) + 2 * padding < kernel:
            continue
        batch, size = int(rng.integers(1, 9)), int(rng.choice(_DTYPE_BYTES))
        cases.append(Case((batch, c_in, c_out, h, w, kernel, stride, padding, groups, size)))
    return cases


def _attention_cases(rng):
    # prefill (s = s_kv), causal prefill, decode (1 query vs a long cache), causal with more queries than keys and
    # with fewer (chunked prefill), then random shapes
    cases = [
        Case((1, 32, 2048, 2048, 128, 2, False)),
        Case((1, 32, 2048, 2048, 128, 2, True)),
        Case((8, 32, 1, 4096, 128, 2, False)),
        Case((2, 4, 300, 100, 64, 4, True)),
        Case((1, 8, 256, 1024, 64, 2, True)),
    ]
    for _ in range(9):
        s = int(2 ** rng.uniform(0, 12))
        s_kv = s if rng.random() < 0.5 else int(2 ** rng.uniform(0, 13))
        cases.append(
            Case(
                (
                    int(rng.integers(1, 9)),
                    int(rng.choice((1, 4, 8, 12, 32))),
                    s,
                    s_kv,
                    int(rng.choice((32, 64, 80, 128))),
                    int(rng.choice((2, 4))),
                    bool(rng.random() < 0.5),
                )
            )
        )
    return cases


def _regime_cases(rng):
    # peaks and bandwidths from a CPU core to an H200; op sizes from a 64-element add to a large matmul, so all three
    # regimes appear (latency 2-20 us)
    cases = [
        Case((1e9, 4e9, 1e11, 2e10, 5e-6)),
        Case((2e11, 1e8, 1e11, 2e10, 5e-6)),
        Case((64.0, 768.0, 1e11, 2e10, 5e-6)),
    ]
    for _ in range(15):
        peak, bw = float(10 ** rng.uniform(10, 15.3)), float(10 ** rng.uniform(10, 12.7))
        b = float(10 ** rng.uniform(4, 11))
        f = float(b * peak / bw * 10 ** rng.uniform(-2, 2))
        cases.append(Case((f, b, peak, bw, float(10 ** rng.uniform(-5.7, -4.7)))))
    return cases


_CONVENTION = "an FMA is 2 FLOPs; bytes are compulsory: each input read once, each output written once"

LAB = Lab(
    lab_id="lab1_roofline",
    title="Lab 1: Your machine's roofline",
    seed=20250301,
    # efflab grade's defaults for this lab: its master ran alone in the sandbox in 17.1 s with a 1898 MB
    # peak address space (benchmarks/bench_grading.py --limits, 2-core build machine, 2026-12-03): 120 s
    # and 4096 MB leave 7x and 2.2x room for slower machines and --jobs sharing the cores.
    timeout_s=120.0,
    memory_mb=4096,
    questions=(
        Question(
            id="q1",
            name="matmul_intensity",
            points=2,
            reference=matmul_intensity,
            public=(Case((1024, 1024, 1024, 4)), Case((1, 4096, 4096, 2))),
            hidden=_matmul_cases,
            partial=True,
            hint=f"O = 2mnk; D = (mk + kn + mn) * dtype_bytes ({_CONVENTION})",
        ),
        Question(
            id="q2",
            name="conv2d_intensity",
            points=3,
            reference=conv2d_intensity,
            public=(Case((8, 64, 64, 56, 56, 3, 1, 1, 1, 4)), Case((1, 32, 32, 28, 28, 3, 2, 1, 32, 2))),
            hidden=_conv_cases,
            partial=True,
            hint="H_out = (H + 2p - k) // stride + 1; each output does (C_in / groups) * k * k FMAs; the weights are "
            "C_out * (C_in / groups) * k * k; the input is read without its padding",
        ),
        Question(
            id="q3",
            name="attention_intensity",
            points=3,
            reference=attention_intensity,
            public=(Case((1, 8, 1024, 1024, 64, 2, False)), Case((1, 8, 1024, 1024, 64, 2, True))),
            hidden=_attention_cases,
            partial=True,
            hint="O = 4 * b * h * P * d with P the query/key pairs (s * s_kv, or sum_i min(i + 1, s_kv) when causal); "
            "D = b * h * d * (2 s + 2 s_kv) * dtype_bytes (Q, K, V read, O written; scores stay on chip)",
        ),
        Question(
            id="q4",
            name="ridge_flops_per_byte",
            kind="derived",
            data=("peak_flops_per_s", "bandwidth_bytes_per_s"),
            points=1,
            reference=ridge,
            validate_data=_plausible_ceilings,
            hint="the ridge is the intensity where the two roofs meet: peak FLOP/s divided by bandwidth",
        ),
        Question(
            id="q5",
            name="regime",
            points=2,
            reference=regime,
            public=(
                Case((1e9, 4e9, 1e11, 2e10, 5e-6)),
                Case((2e11, 1e8, 1e11, 2e10, 5e-6)),
                Case((64.0, 768.0, 1e11, 2e10, 5e-6)),
            ),
            hidden=_regime_cases,
            partial=True,
            hint='compare the three iron-law terms bytes / BW, flops / peak and latency; return "memory", "compute" or '
            '"latency" for the largest',
        ),
        Question(
            id="q6",
            name="achieved_flops_per_s",
            kind="derived",
            data=("op_flops", "op_time_s"),
            points=1,
            reference=achieved,
            validate_data=_plausible_ops,
            hint="achieved FLOP/s = FLOPs / measured time, one value per op (a numpy array)",
        ),
        Question(
            id="q7",
            name="fraction_of_roof",
            kind="derived",
            data=("op_flops", "op_bytes", "op_time_s", "peak_flops_per_s", "bandwidth_bytes_per_s"),
            points=2,
            reference=roof_fraction,
            validate_data=lambda f, b, t, peak, bw: _plausible_ops(f, t, b, peak, bw),
            hint="divide each op's achieved FLOP/s by the roof above it: min(peak, intensity * bandwidth)",
        ),
        Question(
            id="q8",
            name="throughput_gain",
            kind="derived",
            data=("lever_items", "lever_time_s"),
            points=2,
            reference=throughput_gain,
            validate_data=_plausible_levers,
            hint="throughput = items / time; divide columns 1 and 2 by column 0, row by row: shape (2, 2)",
        ),
    ),
)
