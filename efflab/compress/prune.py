"""Fewer weights: unstructured magnitude pruning (zeros kept in dense storage, or executed as CSR by
:class:`CsrLinear`) and structured pruning (whole hidden units removed, smaller dense layers rebuilt).

Pruning trades capacity for bytes, and for time only when the kernel skips the removed work: a dense kernel multiplies
the zeros like any other number. torch is imported inside the functions; :class:`CsrLinear` is a ``torch.nn.Module``
made on first access (a module ``__getattr__``), so this module imports without torch.
"""

from __future__ import annotations

import copy
import warnings
from functools import cache
from typing import Any

from efflab import _validate as v
from efflab.compress.model import _linears

# torch's notice on building a sparse CSR tensor (torch/sparse/__init__.py, beta-state warning).
KNOWN_CSR_NOTICE = r"Sparse CSR tensor support is in beta state"


def magnitude_prune(model, sparsity: float):
    """Unstructured magnitude pruning: in each Linear weight zero the ``round(s * numel)`` smallest ``|w|``.

    Ties are broken by position (stable sort), so the count of zeros is exact. Biases are kept. Returns
    ``(pruned copy, masks)``; pass ``masks`` to :func:`~efflab.compress.model.train` to fine-tune without reviving
    pruned weights.

    Examples
    --------
    >>> from efflab.compress import make_mlp
    >>> p, masks = magnitude_prune(make_mlp((64, 10)), 0.9)
    >>> int((p[0].weight == 0).sum()), p[0].weight.numel()
    (576, 640)
    """
    import torch

    s = float(v.fraction(sparsity, "sparsity"))
    out, masks = copy.deepcopy(model), []
    with torch.no_grad():
        for lin in _linears(out):
            w = lin.weight
            k = round(s * w.numel())
            order = torch.argsort(w.abs().flatten(), stable=True)
            mask = torch.ones(w.numel(), dtype=w.dtype)
            mask[order[:k]] = 0
            mask = mask.reshape(w.shape)
            w.mul_(mask)
            masks.append(mask)
    return out, masks


def csr_bytes(nnz, rows, value_bytes: int = 4, index_bytes: int = 4):
    """Bytes of a CSR matrix: ``nnz * (value + column index) + (rows + 1) * row pointer``.

    Examples
    --------
    >>> csr_bytes(nnz=6554, rows=256)  # a 256x256 fp32 matrix at 90 % sparsity, int32 indices
    53460
    """
    nnz = v.integer(nnz, "nnz", "non-zeros", low=0)
    rows = v.integer(rows, "rows", "rows", low=1)
    vb = v.integer(value_bytes, "value_bytes", "bytes", low=1)
    ib = v.integer(index_bytes, "index_bytes", "bytes", low=1)
    return nnz * (vb + ib) + (rows + 1) * ib


@cache
def _csr_linear_class() -> type:
    """Make :class:`CsrLinear` (once: every caller gets the same class)."""
    import torch

    class CsrLinear(torch.nn.Module):
        """Linear whose weight is a CSR sparse matrix (int32 indices), computed as ``(W_csr @ x^T)^T + b``."""

        def __init__(self, linear):
            super().__init__()
            self.in_features, self.out_features = linear.in_features, linear.out_features
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=KNOWN_CSR_NOTICE, category=UserWarning)
                csr = linear.weight.detach().to_sparse_csr()
                self.weight = torch.sparse_csr_tensor(
                    csr.crow_indices().int(), csr.col_indices().int(), csr.values(), size=csr.shape,
                    check_invariants=True,  # opt in: torch warns when neither is chosen
                )  # fmt: skip
            self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())

        def forward(self, x):
            y = torch.sparse.mm(self.weight, x.t()).t()
            return y if self.bias is None else y + self.bias

    CsrLinear.__qualname__ = "CsrLinear"  # found as efflab.compress.prune.CsrLinear (pickle looks it up so)
    return CsrLinear


def __getattr__(name: str) -> Any:
    """``CsrLinear``: the torch module class, made on first access so that importing this module needs no torch."""
    if name == "CsrLinear":
        return _csr_linear_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_csr(model):
    """A copy whose Linear weights are stored and multiplied as CSR sparse matrices (:class:`CsrLinear`).

    Examples
    --------
    >>> from efflab.compress import make_mlp
    >>> to_csr(magnitude_prune(make_mlp((64, 10)), 0.9)[0])
    Sequential(
      (0): CsrLinear()
    )
    """
    import torch

    cls, out = _csr_linear_class(), copy.deepcopy(model)
    for name, child in list(out.named_children()):
        if isinstance(child, torch.nn.Linear):
            setattr(out, name, cls(child))
    return out


def hidden_unit_norms(model) -> list:
    """L2 norm of each hidden unit's incoming weights, one tensor per hidden layer (the structured-pruning score)."""
    return [lin.weight.detach().norm(dim=1) for lin in _linears(model)[:-1]]


def structured_prune(model, keep_fraction: float):
    """Remove hidden units with the smallest incoming-weight L2 norm; rebuild smaller dense Linear layers.

    In each hidden layer ``k = max(1, round(f * width))`` units are kept (in their original order): their rows of
    that layer's weight and bias, and their columns of the next layer's weight. The result computes exactly what the
    original computes with the removed units' activations forced to zero. Returns ``(pruned model, kept indices)``.

    References
    ----------
    H. Li et al., "Pruning filters for efficient ConvNets", ICLR 2017 (norm-ranked structured pruning).

    Examples
    --------
    >>> from efflab.compress import make_mlp, widths_of
    >>> p, kept = structured_prune(make_mlp((64, 256, 256, 10)), 0.25)
    >>> widths_of(p), [len(k) for k in kept]
    ((64, 64, 64, 10), [64, 64])
    """
    import torch

    f = float(v.fraction(keep_fraction, "keep_fraction", open_low=True))
    lin = _linears(model)
    kept = []
    for norms in hidden_unit_norms(model):
        k = max(1, round(f * norms.numel()))
        kept.append(torch.sort(torch.argsort(norms, descending=True, stable=True)[:k]).values)
    ins = [None, *kept]  # input units of each Linear (None: all)
    outs = [*kept, None]
    layers = []
    with torch.no_grad():
        for i, (layer, a, b) in enumerate(zip(lin, ins, outs, strict=True)):
            w = layer.weight.detach()
            w = w if b is None else w[b]
            w = w if a is None else w[:, a]
            new = torch.nn.Linear(w.shape[1], w.shape[0], bias=layer.bias is not None)
            new.weight.copy_(w)
            if layer.bias is not None:
                new.bias.copy_(layer.bias if b is None else layer.bias[b])
            layers += [new] + ([torch.nn.ReLU()] if i < len(lin) - 1 else [])
    return torch.nn.Sequential(*layers), kept
