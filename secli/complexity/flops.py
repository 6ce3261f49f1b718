"""FLOP counting with fvcore, plus the ops that fvcore leaves out (rules in ``handles``).

fvcore counts one multiply-add as one FLOP, and by default only convolutions, matrix products,
normalisation and adaptive average pooling. An SE block's pooling (``aten::mean``), gate
(``aten::sigmoid``) and scaling (``aten::mul``), an SK block's sum, softmax and weighting, the
activations and the biases are skipped. So one trace here carries extra handles, and the result
keeps both totals:

- ``fc_only``: what fvcore's default handles count (the number papers and fvcore users quote),
  plus the two matrix products of a fused ``scaled_dot_product_attention`` (fvcore counts them
  when attention is written as matmuls, so the figure does not depend on the fusion);
- ``all_ops``: that plus every other arithmetic op, by the rules in ``secli.complexity.handles``.

Ops that do no arithmetic are listed in ``not_counted``; ops whose cost secli does not know in
``unsupported`` (their cost is missing from both totals, never taken as zero silently).
The convolution/linear part is cross-checked with ``torch.utils.flop_counter.FlopCounterMode``
(two FLOPs per multiply-add, so halved); the two must agree exactly.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from secli.complexity.handles import ELEMENTWISE, EXTRA_KEYS, ZERO_COST_OPS, Handle, extra_handles, shape
from secli.util.errors import SecliError, describe_exception

__all__ = ["EXTRA_KEYS", "ZERO_COST_OPS", "FlopCountError", "FlopReport", "extra_handles", "fvcore_count",
           "torch_gemm_count"]

#: fvcore's own output keys for multiply-add heavy ops, checked against FlopCounterMode.
# not fused attention: FlopCounterMode skips its CPU kernel
GEMM_KEYS = ("conv", "linear", "addmm", "matmul", "mm", "bmm", "einsum")

#: Ops fvcore skips silently although they compute something: reported as unsupported here.
ARITHMETIC_IGNORED_BY_FVCORE = (
    "aten::max", "aten::eq", "aten::ge", "aten::gt", "aten::floor", "aten::floor_divide",
    "aten::remainder", "aten::masked_fill", "aten::bitwise_not", "aten::__and__", "aten::index_put_",
)


class FlopCountError(SecliError):
    """fvcore could not count an op; ``op`` names it so the user knows what to blame."""

    def __init__(self, op: str, detail: str) -> None:
        super().__init__(f"fvcore failed on op {op}: {detail}")
        self.op = op


@dataclass
class FlopReport:
    """One model's counts at one input size (batch 1). FLOPs = multiply-adds, as fvcore counts."""

    fc_only: int
    all_ops: int
    by_operator: dict[str, int]
    gemm: int  # the conv/linear part, as fvcore counts it
    torch_gemm: int | None = None  # the same part from FlopCounterMode, halved
    not_counted: dict[str, int] = field(default_factory=dict)  # op -> occurrences (no arithmetic)
    unsupported: dict[str, int] = field(default_factory=dict)  # op -> occurrences (cost unknown)
    by_module: dict[str, dict[str, int]] = field(default_factory=dict)  # requested modules only

    @property
    def crosscheck_ok(self) -> bool | None:
        return None if self.torch_gemm is None else self.torch_gemm == self.gemm

    def module_split(self, path: str) -> tuple[int, int]:
        """(fc_only, all_ops) for one requested module."""
        ops = self.by_module.get(path, {})
        extra = sum(v for k, v in ops.items() if k in EXTRA_KEYS)
        total = sum(ops.values())
        return total - extra, total


def _guarded(kind: str, handle: Handle) -> Handle:
    def guarded(inputs: list[Any], outputs: list[Any]) -> Any:
        try:
            return handle(inputs, outputs)
        except Exception as exc:  # any handle failure is reported by op name
            raise FlopCountError(kind, describe_exception(exc, 200)) from None

    return guarded


def _default_handles() -> dict[str, Handle]:
    try:
        from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS  # the table fvcore itself uses
    except ImportError:  # pragma: no cover - layout of other fvcore versions
        return {}
    return dict(_DEFAULT_SUPPORTED_OPS)


def _recorder(kind: str, seen: Counter) -> Handle:
    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        seen[kind] += 1
        return Counter()

    return handle


def _arithmetic_recorder(kind: str, unknown: Counter, seen: Counter) -> Handle:
    """Unsupported on tensors; on scalars it is shape bookkeeping (``C // groups``), not counted."""

    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        if all(not shape(value) for value in inputs):  # no input with a dimension: scalars only
            seen[f"{kind} (on shapes)"] += 1
        else:
            unknown[kind] += 1
        return Counter()

    return handle


def _on_tensors(kind: str, handle: Handle, seen: Counter) -> Handle:
    """An element-wise rule for tensors; on 0-dim operands only it is the trace's shape
    bookkeeping (``H * W - 1`` of a traced size), not arithmetic of the model: not counted."""

    def counted(inputs: list[Any], outputs: list[Any]) -> Any:
        if all(not shape(value) for value in inputs):
            seen[f"{kind} (on shapes)"] += 1
            return Counter()
        return handle(inputs, outputs)

    return counted


def import_fvcore() -> Any:
    """fvcore's FlopCountAnalysis, with the deprecation noise its import makes kept quiet."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from fvcore.nn import FlopCountAnalysis
    except ImportError:
        raise SecliError("FLOP counting needs fvcore", hint="pip install fvcore") from None
    return FlopCountAnalysis


def fvcore_count(
    model: nn.Module,
    inputs: torch.Tensor,
    modules: list[str] | None = None,
    handles: dict[str, Handle] | None = None,
    module_depth: int | None = None,
) -> FlopReport:
    """One fvcore trace with the extra handles; both totals come from it.

    ``modules``: module paths whose per-operator counts to keep (e.g. the sites' blocks).
    ``handles``: replaces ``extra_handles()`` (tests use this to make fvcore fail on purpose).
    ``module_depth``: also keep every module down to this depth ("" = the model, depth 0).
    """
    analysis_cls = import_fvcore()
    seen: Counter = Counter()
    unknown: Counter = Counter()
    analysis = analysis_cls(model, inputs)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    table = {**_default_handles(), **(extra_handles() if handles is None else handles)}
    for kind, handle in table.items():
        if kind.removeprefix("aten::").rstrip("_") in ELEMENTWISE:
            handle = _on_tensors(kind, handle, seen)
        analysis.set_op_handle(kind, _guarded(kind, handle))
    for kind in ZERO_COST_OPS:
        if kind not in table:
            analysis.set_op_handle(kind, _recorder(kind, seen))
    for kind in ARITHMETIC_IGNORED_BY_FVCORE:
        if kind not in table:
            analysis.set_op_handle(kind, _arithmetic_recorder(kind, unknown, seen))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            by_op = {k: int(v) for k, v in analysis.by_operator().items()}
            by_module_all = analysis.by_module_and_operator() if modules or module_depth is not None else {}
    except FlopCountError:
        raise
    except Exception as exc:  # a failed trace is a user-facing error
        raise FlopCountError("(trace)", describe_exception(exc, 200)) from None
    for kind, count in analysis.unsupported_ops().items():
        unknown[kind] += count
    total = sum(by_op.values())
    extra = sum(v for k, v in by_op.items() if k in EXTRA_KEYS)
    return FlopReport(
        fc_only=total - extra,
        all_ops=total,
        by_operator=by_op,
        gemm=sum(by_op.get(k, 0) for k in GEMM_KEYS),
        not_counted=dict(sorted(seen.items())),
        unsupported=dict(sorted(unknown.items())),
        by_module={m: {k: int(v) for k, v in by_module_all.get(m, {}).items()}
                   for m in _kept(by_module_all, modules, module_depth)},
    )


def _kept(by_module: dict[str, Any], modules: list[str] | None, depth: int | None) -> list[str]:
    kept = list(modules or [])
    if depth is not None:
        kept += [m for m in by_module if (0 if not m else m.count(".") + 1) <= depth]
    return kept


def torch_gemm_count(model: nn.Module, inputs: torch.Tensor) -> int:
    """Convolution + matrix-product multiply-adds from PyTorch's own counter (its FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(inputs)
    return int(counter.get_total_flops()) // 2
