"""FLOP counting with fvcore, plus the element-wise ops that fvcore leaves out.

fvcore counts one multiply-add as one FLOP, and by default only convolutions, matrix products,
normalisation and a few pooling ops. An SE block's pooling (``aten::mean``), gate
(``aten::sigmoid``) and scaling (``aten::mul``), and an SK block's sum, softmax and weighting,
are skipped: either listed as "unsupported" or silently ignored (``aten::relu_``,
``aten::stack``). So one trace here carries extra handles, and the result keeps both totals:

- ``fc_only``: what fvcore's default handles count (the number papers and fvcore users quote);
- ``all_ops``: that plus the element-wise ops below, one FLOP per arithmetic operation.

Conventions for the extra ops (N = elements):
    mean, sum, amax (reductions)        N of the input (one add / compare per input element)
    sigmoid, tanh, relu, hardsigmoid,   N of the output (one op per element; a sigmoid's exp
      hardswish, silu, gelu              is not weighted more than an add)
    mul, add, sub, div                  N of the output
    softmax                             3 N of the output (exp, sum, divide)
    max_pool2d, avg_pool2d              N of the output x kernel area
    adaptive_max_pool2d                 N of the input
Data-movement ops (view, stack, cat, ...) cost nothing and are listed as "not counted".

The convolution/linear part is cross-checked with ``torch.utils.flop_counter.FlopCounterMode``
(two FLOPs per multiply-add, so halved); the two must agree exactly.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from math import prod
from typing import Any

import torch
from torch import nn

from secli.util.errors import SecliError, describe_exception

Handle = Callable[[list[Any], list[Any]], Any]

#: fvcore's own output keys for multiply-add heavy ops, checked against FlopCounterMode.
GEMM_KEYS = ("conv", "linear", "addmm", "matmul", "mm", "bmm", "einsum")

#: Ops that move or re-view data and do no arithmetic: counted as zero, reported by name.
ZERO_COST_OPS = (
    "aten::view", "aten::reshape", "aten::flatten", "aten::stack", "aten::cat", "aten::expand",
    "aten::contiguous", "aten::permute", "aten::transpose", "aten::squeeze", "aten::unsqueeze",
    "aten::dropout", "aten::dropout_", "aten::select", "aten::slice", "aten::chunk", "aten::split", "aten::to",
    "aten::copy_", "aten::t", "aten::unbind", "aten::clone", "aten::zeros", "aten::zeros_like",
)


def _shape(value: Any) -> list[int] | None:
    try:
        if value.isCompleteTensor():
            return list(value.type().sizes())
    except (AttributeError, RuntimeError):
        pass
    return None


def _numel(value: Any) -> int:
    shape = _shape(value)
    return prod(shape) if shape is not None else 0


def _per_input(key: str, scale: int = 1) -> Handle:
    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        return Counter({key: scale * _numel(inputs[0])})

    return handle


def _per_output(key: str, scale: int = 1) -> Handle:
    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        return Counter({key: scale * _numel(outputs[0])})

    return handle


def _pool_window(key: str) -> Handle:
    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        kernel = inputs[1].toIValue() if len(inputs) > 1 else None
        area = prod(kernel) if isinstance(kernel, (list, tuple)) and kernel else 1
        if isinstance(kernel, (list, tuple)) and len(kernel) == 1:
            area = kernel[0] ** 2  # a single number means a square window
        return Counter({key: area * _numel(outputs[0])})

    return handle


def extra_handles() -> dict[str, Handle]:
    """The handles that turn fvcore's count into an "all block ops" count (keys: op names)."""
    handles: dict[str, Handle] = {}
    for op in ("mean", "sum", "amax"):
        handles[f"aten::{op}"] = _per_input(op)
    for op in ("sigmoid", "tanh", "relu", "hardsigmoid", "hardswish", "silu", "gelu"):
        handles[f"aten::{op}"] = _per_output(op)
        handles[f"aten::{op}_"] = _per_output(op)
    for op in ("mul", "add", "sub", "div"):
        handles[f"aten::{op}"] = _per_output(op)
        handles[f"aten::{op}_"] = _per_output(op)
    handles["aten::softmax"] = _per_output("softmax", 3)
    handles["aten::max_pool2d"] = _pool_window("max_pool2d")
    handles["aten::avg_pool2d"] = _pool_window("avg_pool2d")
    handles["aten::adaptive_max_pool2d"] = _per_input("adaptive_max_pool2d")
    return handles


EXTRA_KEYS = frozenset(
    key.split("::")[1].rstrip("_") for key in extra_handles()
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
    not_counted: dict[str, int] = field(default_factory=dict)  # op -> occurrences
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
        except Exception as exc:  # noqa: BLE001 - any handle failure is reported by op name
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
) -> FlopReport:
    """One fvcore trace with the extra handles; both totals come from it.

    ``modules``: module paths whose per-operator counts to keep (e.g. the sites' blocks).
    ``handles``: replaces ``extra_handles()`` (tests use this to make fvcore fail on purpose).
    """
    analysis_cls = import_fvcore()
    seen: Counter = Counter()
    analysis = analysis_cls(model, inputs)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    table = {**_default_handles(), **(extra_handles() if handles is None else handles)}
    for kind, handle in table.items():
        analysis.set_op_handle(kind, _guarded(kind, handle))
    for kind in ZERO_COST_OPS:
        if kind not in table:
            analysis.set_op_handle(kind, _recorder(kind, seen))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            by_op = {k: int(v) for k, v in analysis.by_operator().items()}
            by_module_all = analysis.by_module_and_operator() if modules else {}
    except FlopCountError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed trace is a user-facing error
        raise FlopCountError("(trace)", describe_exception(exc, 200)) from None
    not_counted = Counter(seen)
    for kind, count in analysis.unsupported_ops().items():
        not_counted[kind] += count
    total = sum(by_op.values())
    extra = sum(v for k, v in by_op.items() if k in EXTRA_KEYS)
    return FlopReport(
        fc_only=total - extra,
        all_ops=total,
        by_operator=by_op,
        gemm=sum(by_op.get(k, 0) for k in GEMM_KEYS),
        not_counted=dict(sorted(not_counted.items())),
        by_module={m: {k: int(v) for k, v in by_module_all.get(m, {}).items()} for m in modules or []},
    )


def torch_gemm_count(model: nn.Module, inputs: torch.Tensor) -> int:
    """Convolution + matrix-product multiply-adds from PyTorch's own counter (its FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(inputs)
    return int(counter.get_total_flops()) // 2
