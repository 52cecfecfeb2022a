"""Per-op profile of a PyTorch model: FLOPs, compulsory bytes, measured time and roofline regime for every aten op.

``profile_ops(model, x)`` runs the model under a ``TorchDispatchMode`` that sees every aten op after autograd and
``CompositeImplicit`` decomposition -- the ops that actually execute. For each op it records:

- **FLOPs**: GEMM, convolution and attention use ``torch.utils.flop_counter``'s registered formulas (an FMA counts 2),
  with the same decomposition rule as ``FlopCounterMode``, so those totals equal ``FlopCounterMode``'s exactly
  (``OpProfile.flop_counter_flops``). ``FlopCounterMode`` counts every other op as 0 FLOPs and has no formula for the
  CPU attention kernel ``_scaled_dot_product_flash_attention_for_cpu``; efflab adds: the same SDPA formula for that
  kernel; 1 FLOP per output element for pointwise ops (``torch.Tag.pointwise``; a transcendental such as ``exp`` or
  ``tanh`` counts as one, as FLOP counters conventionally do; ``addcmul``/``addcdiv`` 2; GELU as its elementary
  operations, 5 for the erf form and 8 for the tanh form, ``GELU_*_FLOPS_PER_ELEMENT``); 1 per input element for
  reductions (sum, mean, max, ...), 4 for ``var``/``std`` (mean pass, subtract, square, accumulate); softmax and
  layer norm as in :mod:`efflab.roofline` (``SOFTMAX_FLOPS_PER_ELEMENT``, ``LAYERNORM_*``); batch norm 4 per element
  at inference (subtract, scale by 1/sigma, weight, bias) and 8 in training (+ mean and variance); pooling one
  compare/add per window element. Copies and views count 0 FLOPs. In eval mode without autograd (``torch.no_grad()``,
  ``torch.inference_mode()``) ``nn.TransformerEncoderLayer`` runs as one fused ``_transformer_encoder_layer_fwd`` and
  ``nn.MultiheadAttention`` as ``_native_multi_head_attention`` (PyTorch's "fast path";
  ``torch.backends.mha.set_fastpath_enabled(False)`` turns it off); ``FlopCounterMode`` counts both as 0 FLOPs. efflab
  counts each from its argument shapes as the sum of the unfused ops the same module runs otherwise, with the rules
  above (QKV projection GEMM + bias add, attention as SDPA -- or, for attention weights, scale, QK^T, softmax, AV and the
  head average --, output projection, and for the encoder layer the two residual adds, two layer norms, the two FFN
  GEMMs and the ReLU/GELU), so its FLOPs, and with them its regime, match the unfused path; a nested-tensor input (the
  encoder's ``src_key_padding_mask`` path) is counted on each sequence's real tokens (``_fused_flop_parts``).
  ``OpRecord.flop_rule`` says which rule applied.
- **Compulsory bytes** = unique bytes of tensor inputs read + outputs written (a broadcast/expanded input counts its
  real storage once; the same tensor passed twice is read once). View ops (``view``, ``t``, ``expand``, ``split`` ...)
  and ``empty`` move nothing: 0 bytes. In-place ops read and write their target; ``copy_``/``fill_``/``zero_`` only
  write it. An embedding reads only the gathered rows.
- **Time**: each op is timed where it runs (``perf_counter_ns``; CUDA events on the GPU, read after one final
  synchronisation), in the recording run and ``repeats`` more runs; the per-op minimum is kept (interference and a cold
  first call only add time). The mode's own bookkeeping happens outside the timed calls, so the sum of per-op times tracks the
  model's end-to-end time (``benchmarks/bench_profile.py`` checks it). The mode adds a few microseconds of Python
  dispatch to each op, so on tiny ops the per-op times are an upper bound.
- **Regime**: ``Roofline.classify(flops, bytes)`` on the given roofline, else on this machine's measured roofline
  (``measure_ceilings(quick=True)``, measured once per process). Ops that move no data are dispatch-only: "latency".
"""

from __future__ import annotations

import contextlib
import html
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from math import prod
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from efflab import _validate as v
from efflab.opcost import (
    GELU_ERF_FLOPS_PER_ELEMENT,
    GELU_TANH_FLOPS_PER_ELEMENT,
    LAYERNORM_AFFINE_FLOPS_PER_ELEMENT,
    LAYERNORM_FLOPS_PER_ELEMENT,
    LAYERNORM_FLOPS_PER_ROW,
    SOFTMAX_FLOPS_PER_ELEMENT,
    dtype_name,
)
from efflab.roofline import Roofline
from efflab.timing import format_time_s

if TYPE_CHECKING:
    import torch

__all__ = ["OpRecord", "OpProfile", "profile_ops", "dtype_name"]

# Default timed runs after the (also timed) recording run; the per-op minimum over all runs is kept (as timeit
# advises: interference only adds time; it also drops a cold first call). Two runs in all keep profile_ops near 2 model
# calls of wall time (P4 budget: 3x torch.profiler's single profiled call).
REPEATS = 1
# FLOPs per *input* element of reductions; var/std: mean pass + subtract, square, accumulate.
_REDUCTION_FLOPS = {
    **dict.fromkeys(("sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "prod", "any", "all"), 1),
    **dict.fromkeys(("var", "std", "var_mean", "std_mean"), 4),
    "linalg_vector_norm": 2,  # square and accumulate
    "logsumexp": 4,  # max, subtract, exp, accumulate
}
# Pointwise ops that are not one FLOP per element: fused multiply-adds count 2, pure data movement 0.
_POINTWISE_FLOPS = {"addcmul": 2, "addcdiv": 2, "copy": 0, "_to_copy": 0, "clone": 0, "fill": 0, "zero": 0}
# Ops whose mutated argument is only written, never read.
_WRITE_ONLY = {"copy_", "fill_", "zero_", "normal_", "uniform_", "random_", "bernoulli_", "exponential_"}
# Fused inference kernels of torch.nn (the "fast path" of nn/modules/transformer.py and nn/modules/activation.py, taken in
# eval mode without autograd), counted as the sum of the unfused ops the same module runs otherwise (_fused_flop_parts).
_FUSED_RULES = {
    "_transformer_encoder_layer_fwd": "efflab: fused transformer encoder layer = sum of its unfused parts",
    "_native_multi_head_attention": "efflab: fused multi-head attention = sum of its unfused parts",
}
# Parts of _fused_flop_parts counted with torch.utils.flop_counter's GEMM/SDPA formulas (what FlopCounterMode counts on
# the unfused path, the CPU SDPA kernel included); the other parts use efflab's elementwise, softmax and norm rules.
_FUSED_GEMM_PARTS = frozenset(
    {
        "qkv_projection_gemm",
        "attention_sdpa",
        "attention_qk_gemm",
        "attention_av_gemm",
        "out_projection_gemm",
        "ffn_gemms",
    }
)


@dataclass(frozen=True)
class OpRecord:
    """One aten op: what it computed and moved, how long it took, and its roofline regime."""

    name: str  # aten overload packet, e.g. "aten.addmm"
    module_path: str  # innermost module running it, e.g. "Block.mlp.0" (the function's name outside modules)
    shapes: tuple  # shapes of tensor inputs (a nested tensor's: its components' shapes)
    out_shapes: tuple  # shapes of tensor outputs
    dtype: str  # of the first tensor output (else input)
    flops: float  # FLOP
    bytes_moved: float  # compulsory bytes: inputs read + outputs written
    time_s: float  # measured, minimum over the runs
    intensity_flops_per_byte: float  # flops / bytes_moved (inf when no bytes and flops > 0, 0 when neither)
    regime: str  # "memory", "compute" or "latency"
    model_time_s: float  # iron-law time on the roofline
    flop_rule: str  # where the FLOP count came from


@dataclass(frozen=True)
class OpProfile:
    """Records of one profiled run, their totals, aggregations and tables."""

    records: tuple[OpRecord, ...]
    roofline: Roofline
    runs: int = 1 + REPEATS  # runs behind each per-op minimum

    @property
    def total_flops(self) -> float:
        """All FLOPs counted (FLOP)."""
        return float(sum(r.flops for r in self.records))

    @property
    def flop_counter_flops(self) -> float:
        """FLOPs from ``torch.utils.flop_counter`` formulas only: what ``FlopCounterMode`` reports (FLOP)."""
        return float(sum(r.flops for r in self.records if r.flop_rule.startswith("torch.utils.flop_counter")))

    @property
    def total_bytes(self) -> float:
        """Compulsory bytes summed over ops (bytes; an intermediate written then read counts twice)."""
        return float(sum(r.bytes_moved for r in self.records))

    @property
    def total_time_s(self) -> float:
        """Sum of per-op times (s)."""
        return float(sum(r.time_s for r in self.records))

    def to_records(self) -> list[dict]:
        """One dict per op (for pandas: ``pd.DataFrame(profile.to_records())``)."""
        return [asdict(r) for r in self.records]

    def _group(self, key: Callable[[OpRecord], str], label: str) -> list[dict]:
        groups: dict[str, dict] = defaultdict(lambda: {"count": 0, "flops": 0.0, "bytes_moved": 0.0, "time_s": 0.0})
        for r in self.records:
            g = groups[key(r)]
            g["count"] += 1
            g["flops"] += r.flops
            g["bytes_moved"] += r.bytes_moved
            g["time_s"] += r.time_s
        total = self.total_time_s or 1.0
        rows = [{label: k, **g, "time_fraction": g["time_s"] / total} for k, g in groups.items()]
        return sorted(rows, key=lambda row: -row["time_s"])

    def by_op(self) -> list[dict]:
        """Totals per aten op name, slowest first."""
        return self._group(lambda r: r.name, "name")

    def by_module(self, depth: int | None = None) -> list[dict]:
        """Totals per module path (truncated to ``depth`` components when given), slowest first."""
        return self._group(lambda r: ".".join(r.module_path.split(".")[: depth or None]), "module_path")

    def _rows(self, max_rows: int | None):
        head = ["op", "module", "dtype", "FLOP", "bytes", "FLOP/B", "time", "regime"]
        rows = [
            [
                r.name.removeprefix("aten."),
                r.module_path,
                r.dtype,
                f"{r.flops:.3g}",
                f"{r.bytes_moved:.3g}",
                f"{r.intensity_flops_per_byte:.3g}",
                format_time_s(r.time_s),
                r.regime,
            ]
            for r in self.records[:max_rows]
        ]
        total = [
            "total",
            f"{len(self.records)} ops",
            "",
            f"{self.total_flops:.3g}",
            f"{self.total_bytes:.3g}",
            "",
            format_time_s(self.total_time_s),
            "",
        ]
        return head, rows, total

    def to_table(self, max_rows: int | None = None) -> str:
        """Plain-text table, one line per op plus a total."""
        head, rows, total = self._rows(max_rows)
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, total, strict=True)]
        line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
        return "\n".join([line(head), *(line(r) for r in rows), line(total), f"roofline: {self.roofline.name}"])

    def _repr_html_(self) -> str:
        head, rows, total = self._rows(None)
        cell = lambda tag, cells: "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"  # noqa: E731
        body = "".join(cell("td", r) for r in rows)
        caption = html.escape(f"roofline: {self.roofline.name}")
        return f"<table><caption>{caption}</caption>{cell('th', head)}{body}{cell('th', total)}</table>"

    def __str__(self) -> str:
        return self.to_table()


def _measured_roofline(device: str) -> Roofline:
    from efflab.ceilings import machine_roofline

    return machine_roofline(device)


def _shape(t) -> tuple:
    """Shape of a tensor; a nested tensor's is the tuple of its components' shapes (one per sequence)."""
    return tuple(tuple(c.shape) for c in t.unbind()) if t.is_nested else tuple(t.shape)


def _seq_lengths(t) -> list[int]:
    """Sequence lengths of a batched ``(batch, seq, feature)`` input: its own length for each sequence of a nested one."""
    if t.is_nested:
        return [int(c.shape[0]) for c in t.unbind()]
    return [int(t.shape[1])] * int(t.shape[0])


def _mha_flop_parts(query, key, value, embed_dim, num_heads, need_weights, average_weights) -> dict[str, float]:
    """FLOPs of the ops ``F.multi_head_attention_forward`` runs (``batch_first``, packed in-projection), by part."""
    from torch.utils.flop_counter import bmm_flop, mm_flop, sdpa_flop_count

    d, h = int(embed_dim), int(num_heads)
    dh = d // h
    lq, lk = _seq_lengths(query), _seq_lengths(key)
    tokens = [sum(lengths) for lengths in (lq, lk, _seq_lengths(value))]
    # In-projection: the (seq, batch, embed) transposed view is not contiguous, so F.linear runs mm + a bias add (with
    # batch 1 the view is contiguous and it runs addmm, whose bias flop_counter does not count: 3*d*tokens fewer).
    parts = {
        "qkv_projection_gemm": float(sum(mm_flop((n, d), (d, d)) for n in tokens)),
        "qkv_bias_add": float(sum(tokens) * d),
    }
    pairs = list(zip(lq, lk, strict=True))
    if need_weights:  # q * scale, bmm(q, k^T) (baddbmm with a mask: same count), softmax, bmm(weights, v), head mean
        scores = sum(h * tq * tk for tq, tk in pairs)
        parts["attention_q_scale"] = float(sum(lq) * d)
        parts["attention_qk_gemm"] = float(sum(bmm_flop((h, tq, dh), (h, dh, tk)) for tq, tk in pairs))
        parts["attention_softmax"] = float(SOFTMAX_FLOPS_PER_ELEMENT * scores)
        parts["attention_av_gemm"] = float(sum(bmm_flop((h, tq, tk), (h, tk, dh)) for tq, tk in pairs))
        if average_weights:
            parts["attention_head_mean"] = float(scores)  # a reduction: 1 FLOP per input element
    else:  # scaled_dot_product_attention, flop_counter's formula (the mask does not change it)
        parts["attention_sdpa"] = float(
            sum(sdpa_flop_count((1, h, tq, dh), (1, h, tk, dh), (1, h, tk, dh)) for tq, tk in pairs)
        )
    parts["out_projection_gemm"] = float(mm_flop((sum(lq), d), (d, d)))  # addmm: its bias is not counted
    return parts


def _layer_norm_flops(tokens: int, features: int, weight) -> float:
    """``native_layer_norm``'s count (see ``_flops``) on ``tokens`` rows of ``features``."""
    per = LAYERNORM_FLOPS_PER_ELEMENT + (LAYERNORM_AFFINE_FLOPS_PER_ELEMENT if weight is not None else 0)
    return float(per * tokens * features + LAYERNORM_FLOPS_PER_ROW * tokens)


def _fused_flop_parts(func, args, kwargs) -> tuple[dict[str, float], str]:
    """FLOPs of a fused ``torch.nn`` inference op as the sum of the ops of its unfused composition, and the rule.

    ``aten._native_multi_head_attention`` is counted as ``nn.MultiheadAttention`` runs without the fast path: QKV
    projection (GEMM + bias add), attention (SDPA formula without weights; with ``need_weights`` the query scale, QK^T,
    softmax, AV and, with ``average_attn_weights``, the mean over heads) and the output projection.
    ``aten._transformer_encoder_layer_fwd`` adds what ``nn.TransformerEncoderLayer`` runs around that attention (with
    ``need_weights=False``): two residual adds, two layer norms, the FFN GEMMs and its ReLU (one FLOP per element) or
    GELU (``GELU_ERF_FLOPS_PER_ELEMENT``); ``norm_first`` reorders these without changing the count, and a mask changes
    no count (the unfused SDPA and ``baddbmm`` formulas ignore it). A nested-tensor input is counted sequence by sequence on its real tokens.

    Parameters
    ----------
    func : torch._ops.OpOverload
        ``aten._transformer_encoder_layer_fwd`` or ``aten._native_multi_head_attention`` (an overload of either).
    args, kwargs
        Its arguments, as the dispatcher passes them.

    Returns
    -------
    tuple of (dict of str to float, str)
        FLOPs of each part (FLOP; parts named in ``_FUSED_GEMM_PARTS`` use ``torch.utils.flop_counter``'s formulas) and
        the record's ``flop_rule``.
    """
    from torch.utils.flop_counter import mm_flop

    name = func._overloadpacket.__name__
    a = {arg.name: arg.default_value for arg in func._schema.arguments if arg.has_default_value()}
    a.update(zip((arg.name for arg in func._schema.arguments), args, strict=False))
    a.update(kwargs)
    if name == "_native_multi_head_attention":
        query = a["query"]
        parts = _mha_flop_parts(
            query, a["key"], a["value"], a["embed_dim"], a["num_head"], a["need_weights"], a["average_attn_weights"]
        )
        how = "QKV, attention weights, softmax, head mean" if a["need_weights"] else "QKV, SDPA, projection"
        if a["need_weights"] and not a["average_attn_weights"]:
            how = "QKV, attention weights, softmax"
    else:
        query = a["src"]
        d = int(a["embed_dim"])
        tokens = sum(_seq_lengths(query))
        ffn = int(a["ffn_weight_1"].shape[0])
        parts = _mha_flop_parts(query, query, query, d, a["num_heads"], False, False)
        parts["residual_adds"] = float(2 * tokens * d)
        parts["layer_norms"] = _layer_norm_flops(tokens, d, a["norm_weight_1"]) + _layer_norm_flops(
            tokens, d, a["norm_weight_2"]
        )
        parts["ffn_gemms"] = float(mm_flop((tokens, d), (d, ffn)) + mm_flop((tokens, ffn), (ffn, d)))  # addmm each
        # ReLU: 1 FLOP per element; GELU (the layer's F.gelu, erf form) as profile counts aten.gelu.
        parts["ffn_activation"] = float(tokens * ffn * (GELU_ERF_FLOPS_PER_ELEMENT if a["use_gelu"] else 1))
        how = f"{'gelu' if a['use_gelu'] else 'relu'}, {'pre' if a['norm_first'] else 'post'}-norm"
    rule = f"{_FUSED_RULES[name]} ({how})"
    if query.is_nested:
        rule += "; nested input: each sequence counted on its real tokens, padding skipped"
    return parts, rule


def _flops(func, args, kwargs, out, registry) -> tuple[float, str]:
    """FLOPs of one op and the rule used (see the module docstring)."""
    import torch

    packet = func._overloadpacket
    if packet in registry:
        return float(registry[packet](*args, **kwargs, out_val=out)), "torch.utils.flop_counter"
    name = packet.__name__
    if name in _FUSED_RULES:
        parts, rule = _fused_flop_parts(func, args, kwargs)
        return float(sum(parts.values())), rule
    base = name.rstrip("_")
    outs = [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
    first_in = next((a for a in args if isinstance(a, torch.Tensor)), None)
    numel_out = outs[0].numel() if outs else 0
    if name == "_scaled_dot_product_flash_attention_for_cpu":
        from torch.utils.flop_counter import sdpa_flop_count

        return float(sdpa_flop_count(args[0].shape, args[1].shape, args[2].shape)), "flop_counter's SDPA formula"
    if name in ("_softmax", "_log_softmax"):
        return float(SOFTMAX_FLOPS_PER_ELEMENT * numel_out), f"efflab: {SOFTMAX_FLOPS_PER_ELEMENT}/element"
    if name == "native_layer_norm":
        n = prod(args[1]) if len(args) > 1 else 1
        affine = len(args) > 2 and args[2] is not None
        per = LAYERNORM_FLOPS_PER_ELEMENT + (LAYERNORM_AFFINE_FLOPS_PER_ELEMENT if affine else 0)
        return float(per * numel_out + LAYERNORM_FLOPS_PER_ROW * numel_out / max(n, 1)), "efflab: layer norm"
    if name in ("native_group_norm",):
        return float((LAYERNORM_FLOPS_PER_ELEMENT + LAYERNORM_AFFINE_FLOPS_PER_ELEMENT) * numel_out), "efflab: norm"
    if "batch_norm" in name and first_in is not None:
        training = bool(args[5]) if name in ("native_batch_norm", "_native_batch_norm_legit") and len(args) > 5 else 0
        return float((8 if training else 4) * first_in.numel()), "efflab: batch norm"
    if "pool" in name and "backward" not in name and first_in is not None and numel_out:
        if name.startswith("adaptive"):
            return float(first_in.numel()), "efflab: 1/input element"
        window = prod(args[1]) if len(args) > 1 and isinstance(args[1], (list, tuple)) else 1
        return float(numel_out * (window + (1 if "avg" in name else 0))), "efflab: 1/window element"
    if base in _REDUCTION_FLOPS and first_in is not None:
        per = _REDUCTION_FLOPS[base]
        return float(per * first_in.numel()), f"efflab: {per}/input element"
    if base in ("gelu", "gelu_") and numel_out:
        form = kwargs.get("approximate", args[1] if len(args) > 1 else "none")
        per = GELU_TANH_FLOPS_PER_ELEMENT if form == "tanh" else GELU_ERF_FLOPS_PER_ELEMENT
        return float(per * numel_out), f"efflab: {per}/element (GELU, {form}: one per elementary operation)"
    if torch.Tag.pointwise in func.tags or base in _POINTWISE_FLOPS:
        per = _POINTWISE_FLOPS.get(base, 1)
        return float(per * numel_out), f"efflab: {per}/element"
    return 0.0, "not counted"


def _unique_bytes(t) -> int:
    """Bytes of storage a strided tensor really spans: broadcast (stride-0) dimensions count once; a nested tensor's
    elements."""
    if t.is_nested:
        return t.numel() * t.element_size()
    n = prod(s for s, st in zip(t.shape, t.stride(), strict=True) if st != 0) if t.numel() else 0
    return n * t.element_size()


def _bytes(func, args, kwargs, out) -> float:
    import torch

    if func.is_view or func._overloadpacket.__name__.startswith(("empty", "new_empty")):
        return 0.0
    name = func._overloadpacket.__name__
    written_only = set()
    if name in _WRITE_ONLY:
        for a, val in zip(func._schema.arguments, args, strict=False):
            if a.alias_info is not None and a.alias_info.is_write and isinstance(val, torch.Tensor):
                written_only.add(id(val))
    seen, total = set(), 0
    inputs = torch.utils._pytree.tree_leaves((args, kwargs))
    if name == "embedding":  # reads the gathered rows, not the whole table
        inputs = inputs[1:]
    for t in inputs:
        if isinstance(t, torch.Tensor) and id(t) not in written_only:
            key = (t.data_ptr(), _shape(t), None if t.is_nested else t.stride(), t.dtype)
            if key not in seen:
                seen.add(key)
                total += _unique_bytes(t)
    outputs = [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
    total += sum(_unique_bytes(t) for t in outputs)
    if name == "embedding":
        total += sum(_unique_bytes(t) for t in outputs)  # the rows read equal the rows written
    return float(total)


class _State(TypedDict):
    """What the dispatch mode and the module hooks of one :func:`profile_ops` call share."""

    cuda: bool  # time with CUDA events (else perf_counter_ns)
    times: list[float | tuple[torch.cuda.Event, torch.cuda.Event]]  # per op: seconds, or (begin, end) on a GPU
    ops: list[dict[str, Any]]  # per op, recording run only: OpRecord fields from _describe
    record: bool  # whether this run records ops
    stack: list[str]  # module paths entered and not yet left
    root: str  # name of the profiled module or function


def _seconds(timing: float | tuple[torch.cuda.Event, torch.cuda.Event]) -> float:
    """An op's time in seconds: as measured on the CPU, or from its CUDA event pair (after a synchronisation)."""
    if isinstance(timing, tuple):
        begin, end = timing
        return begin.elapsed_time(end) * 1e-3  # ms -> s
    return timing


def _make_mode(state):
    """The TorchDispatchMode class (built lazily so this module imports without torch)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    skip = {
        torch.ops.aten.size.default,
        torch.ops.aten.stride.default,
        torch.ops.aten.numel.default,
        torch.ops.aten.dim.default,
        torch.ops.aten.is_contiguous.default,
        torch.ops.aten.storage_offset.default,
        torch.ops.aten.sym_size.default,
        torch.ops.aten.sym_stride.default,
        torch.ops.aten.sym_numel.default,
        torch.ops.prim.layout.default,
    }
    own = {"_scaled_dot_product_flash_attention_for_cpu"}

    class _ProfileMode(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in skip:
                return func(*args, **kwargs)
            packet = func._overloadpacket
            # Same rule as FlopCounterMode: decompose what has no formula, so counted ops match its ops exactly.
            if packet not in flop_registry and packet.__name__ not in own and func is not torch.ops.prim.device.default:
                with self:
                    r = func.decompose(*args, **kwargs)
                    if r is not NotImplemented:
                        return r
            if state["cuda"]:
                begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                begin.record()
                out = func(*args, **kwargs)
                end.record()
                timing = (begin, end)
            else:
                t0 = time.perf_counter_ns()
                out = func(*args, **kwargs)
                timing = (time.perf_counter_ns() - t0) * 1e-9
            state["times"].append(timing)
            if state["record"]:
                state["ops"].append(_describe(func, args, kwargs, out, state, flop_registry))
            return out

    return _ProfileMode


def _describe(func, args, kwargs, out, state, registry) -> dict:
    import torch

    tensors_in = [t for t in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
    tensors_out = [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
    flops, rule = _flops(func, args, kwargs, out, registry)
    first = tensors_out[0] if tensors_out else tensors_in[0] if tensors_in else None
    return {
        "name": f"aten.{func._overloadpacket.__name__}",
        "module_path": state["stack"][-1] if state["stack"] else state["root"],
        "shapes": tuple(_shape(t) for t in tensors_in),
        "out_shapes": tuple(_shape(t) for t in tensors_out),
        "dtype": dtype_name(first.dtype) if first is not None else "",
        "flops": flops,
        "bytes_moved": _bytes(func, args, kwargs, out),
        "flop_rule": rule,
    }


def _device_of(fn_or_module, inputs) -> str:
    import torch

    # "cuda:N", not "cuda": on a multi-GPU host the events must be recorded, and the roofline measured, on that GPU
    for t in torch.utils._pytree.tree_leaves(inputs):
        if isinstance(t, torch.Tensor):
            return str(t.device) if t.is_cuda else "cpu"
    if isinstance(fn_or_module, torch.nn.Module):
        for p in fn_or_module.parameters():
            return str(p.device) if p.is_cuda else "cpu"
    return "cpu"


def _classify(rows: list[dict], roofline: Roofline) -> list[tuple[str, float]]:
    """(regime, iron-law time) per op, one vectorised classify call per dtype."""
    result: list[tuple[str, float]] = [("latency" if roofline.latency_s else "none", roofline.latency_s or 0.0)] * len(
        rows
    )
    by_dtype: dict[str | None, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        if row["bytes_moved"] > 0:
            by_dtype[row["dtype"] if row["dtype"] in roofline.compute else None].append(i)
    for dtype, idx in by_dtype.items():
        flops = np.array([rows[i]["flops"] for i in idx])
        bytes_moved = np.array([rows[i]["bytes_moved"] for i in idx])
        c = roofline.classify(flops, bytes_moved, dtype=dtype)
        for k, i in enumerate(idx):
            result[i] = (str(np.atleast_1d(c.regime)[k]), float(np.atleast_1d(c.time_s)[k]))
    return result


def profile_ops(fn_or_module: Callable, *inputs, roofline: Roofline | None = None, repeats: int = REPEATS) -> OpProfile:
    """Run a model or function and return one record per aten op: FLOPs, compulsory bytes, time and regime.

    ``intensity = flops / bytes_moved``; ``regime = argmax(bytes/BW, flops/R_peak, L_lat)`` on the roofline (the iron
    law, :meth:`efflab.roofline.Roofline.classify`). FLOP and byte conventions are in the module docstring.

    Parameters
    ----------
    fn_or_module : callable or torch.nn.Module
        The workload, called ``1 + repeats`` times as ``fn_or_module(*inputs)``; the first call also records.
    *inputs
        Its arguments.
    roofline : Roofline, optional
        Ceilings to classify against; default: this machine's, measured once per process with
        ``measure_ceilings(quick=True)`` (several seconds the first time).
    repeats : int
        Timed calls after the recording call (>= 0); each op's time is its minimum over all calls.

    Returns
    -------
    OpProfile
        ``records``, ``total_flops``, ``total_bytes``, ``total_time_s``, ``by_op()``, ``by_module()``, ``to_table()``.

    References
    ----------
    ``torch.utils.flop_counter.FlopCounterMode`` (formulas and decomposition rule); Williams, Waterman & Patterson,
    "Roofline", CACM 52(4), 2009.

    Examples
    --------
    >>> import torch
    >>> from efflab.roofline import Roofline
    >>> roof = Roofline(compute={"fp32": 1e11}, memory={"dram": 2.5e10}, latency_s=2e-6, name="example CPU")
    >>> lin = torch.nn.Linear(256, 256)
    >>> p = profile_ops(lin, torch.randn(64, 256), roofline=roof)
    >>> [(r.name, r.module_path, r.flops) for r in p.records]
    [('aten.t', 'Linear', 0.0), ('aten.addmm', 'Linear', 8388608.0)]
    >>> p.records[1].bytes_moved == 4 * (256 + 64 * 256 + 256 * 256 + 64 * 256)
    True
    """
    import torch

    if not callable(fn_or_module):
        raise TypeError(f"fn_or_module must be a callable or torch.nn.Module; got {type(fn_or_module).__name__}")
    if roofline is not None and not isinstance(roofline, Roofline):
        raise TypeError(f"roofline must be an efflab.roofline.Roofline or None; got {type(roofline).__name__}")
    repeats = v.integer(repeats, "repeats", "calls", low=0)
    device = _device_of(fn_or_module, inputs)
    is_module = isinstance(fn_or_module, torch.nn.Module)
    root = type(fn_or_module).__name__ if is_module else getattr(fn_or_module, "__name__", type(fn_or_module).__name__)
    state: _State = {
        "cuda": device.startswith("cuda"),
        "times": [],
        "ops": [],
        "record": True,
        "stack": [],
        "root": root,
    }
    names: dict[int, str] = {}
    if isinstance(fn_or_module, torch.nn.Module):
        names = {id(m): f"{root}.{n}" if n else root for n, m in fn_or_module.named_modules()}

    def pre_hook(module, args):
        state["stack"].append(names.get(id(module), type(module).__name__))

    def post_hook(module, args, output):
        if state["stack"]:
            state["stack"].pop()

    mode_cls = _make_mode(state)
    per_run: list[list[float | tuple[torch.cuda.Event, torch.cuda.Event]]] = []
    hooks = [
        torch.nn.modules.module.register_module_forward_pre_hook(pre_hook),
        torch.nn.modules.module.register_module_forward_hook(post_hook, always_call=True),
    ]
    try:
        # Run 0 records FLOPs, bytes, shapes and modules (bookkeeping outside the timed calls) and is timed too; then
        # `repeats` timed runs; the per-op time is the minimum over all runs.
        on_device = torch.cuda.device(device) if state["cuda"] else contextlib.nullcontext()
        with on_device:  # events go on the current stream of the device the work runs on
            for run in range(1 + repeats):
                state["times"], state["stack"], state["record"] = [], [], run == 0
                with mode_cls():
                    fn_or_module(*inputs)
                per_run.append(state["times"])
    finally:
        for h in hooks:
            h.remove()
    if state["cuda"]:
        torch.cuda.synchronize(device)
    rows = state["ops"]
    # a run that took another path cannot be matched op by op
    runs = [[_seconds(t) for t in times] for times in per_run if len(times) == len(rows)]
    times = np.min(np.array(runs), axis=0) if rows else np.zeros(0)
    roof = roofline if roofline is not None else _measured_roofline(device)
    records = []
    for row, t, (regime, model_t) in zip(rows, times, _classify(rows, roof), strict=True):
        f, b = row["flops"], row["bytes_moved"]
        intensity = f / b if b > 0 else (float("inf") if f > 0 else 0.0)
        records.append(
            OpRecord(**row, time_s=float(t), intensity_flops_per_byte=intensity, regime=regime, model_time_s=model_t)
        )
    return OpProfile(records=tuple(records), roofline=roof, runs=len(runs))
