"""secli's "all ops" rules: one fvcore handle per op that fvcore leaves out (or counts without bias).

One FLOP is one arithmetic operation, except for convolutions and matrix products, where fvcore's
convention holds (one multiply-add = one FLOP). N_in / N_out = elements of the first input /
output, B/H/L/S/E = batch, heads, query length, key length, head width.

    op                                         FLOPs                          key
    conv / linear / matmul (fvcore)            multiply-adds                  conv, linear, ...
      + their bias, if any                     N_out (one add per output)     bias_add
    batch_norm (fvcore, eval)                  2 N_in (1 without affine)      batch_norm
    adaptive_avg_pool2d (fvcore)               N_in                           adaptive_avg_pool2d
    mean                                       N_in (N_in-N_out adds, N_out divides)
    sum                                        N_in - N_out (adds)            sum
    amax, adaptive_max_pool2d                  N_in (every element compared)
    max_pool2d, avg_pool2d                     window area x N_out            max_pool2d, ...
    relu, relu6 (hardtanh), clamp, sigmoid,    N_out (a sigmoid's exp is
      tanh, hardsigmoid, hardswish, silu, ...    not weighted more than an add)
    mul, add, sub, div, pow (and in-place)     N_out (x.pow(2) one multiply, x.pow(0.5) one root)
      on 0-dim tensors only                    0: shape bookkeeping of the trace (H * W), listed
                                                 in "not counted" as "<op> (on shapes)"
    var                                        4 N_in (mean N_in, subtract N_in, square N_in,
                                                 sum N_in - N_out, divide N_out)             var
    upsample_nearest2d (fvcore)                N_out (fvcore's own rule, kept: one copy per output)
    softmax                                    3 N_out (exp, sum, divide)     softmax
    scaled_dot_product_attention               B·H·L·S·(E + E_v) multiply-adds (Q·K^T and A·V,
                                                 fvcore's matmul convention)  scaled_dot_product_attention
                                               + 4 B·H·L·S (scale, softmax)   sdpa_softmax
                                               + B·H·L·S if a mask is added
Ops that move data (view, stack, cat, ...) cost nothing and are listed as "not counted"; any
other op without a rule is listed as "unsupported" (its cost unknown, not zero).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from math import prod
from typing import Any

Handle = Callable[[list[Any], list[Any]], Any]

#: Ops that move or re-view data and do no arithmetic: counted as zero, reported by name.
ZERO_COST_OPS = (
    "aten::view", "aten::reshape", "aten::flatten", "aten::stack", "aten::cat", "aten::expand",
    "aten::contiguous", "aten::permute", "aten::transpose", "aten::squeeze", "aten::unsqueeze",
    "aten::dropout", "aten::dropout_", "aten::select", "aten::slice", "aten::chunk", "aten::split", "aten::to",
    "aten::copy_", "aten::t", "aten::unbind", "aten::clone", "aten::zeros", "aten::zeros_like",
    "aten::feature_dropout", "aten::alpha_dropout", "aten::detach", "aten::split_with_sizes",
    "aten::constant_pad_nd", "aten::pad", "aten::narrow", "aten::roll", "aten::expand_as",
    "aten::type_as", "aten::identity", "aten::view_as", "aten::lift_fresh",
)

#: Element-wise ops: one FLOP per output element.
ELEMENTWISE = (
    "sigmoid", "tanh", "relu", "hardsigmoid", "hardswish", "silu", "gelu", "hardtanh", "clamp",
    "leaky_relu", "elu", "mish", "exp", "sqrt", "rsqrt", "neg",
    "mul", "add", "sub", "div", "rsub", "pow",
)


def shape(value: Any) -> list[int] | None:
    try:
        if value.isCompleteTensor():
            return list(value.type().sizes())
    except (AttributeError, RuntimeError):
        pass
    return None


def numel(value: Any) -> int:
    dims = shape(value)
    return prod(dims) if dims is not None else 0


def constant(value: Any) -> Any:
    """A traced constant: a plain one, or a list built by ``prim::ListConstruct`` from constants."""
    try:
        found = value.toIValue()
    except RuntimeError:
        found = None
    if found is not None:
        return found
    node = value.node()
    if node.kind() == "prim::ListConstruct":
        items = [i.toIValue() for i in node.inputs()]
        return None if any(i is None for i in items) else items
    return None


def _per_input(key: str) -> Handle:
    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        return Counter({key: numel(inputs[0])})

    return handle


def _per_output(key: str, scale: int = 1) -> Handle:
    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        return Counter({key: scale * numel(outputs[0])})

    return handle


def _reduce_sum(inputs: list[Any], outputs: list[Any]) -> Counter:
    return Counter({"sum": numel(inputs[0]) - numel(outputs[0])})


def _variance(inputs: list[Any], outputs: list[Any]) -> Counter:
    """Per output, over its K inputs: mean (K), subtract (K), square (K), sum (K - 1), divide (1)."""
    return Counter({"var": 4 * numel(inputs[0])})


def pool_window(key: str, dims: int = 2) -> Handle:
    """Window area x output elements; the kernel size is a traced constant list."""

    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        kernel = constant(inputs[1])
        if isinstance(kernel, int):
            kernel = [kernel]
        if not isinstance(kernel, (list, tuple)) or not kernel:
            raise ValueError(f"cannot read the kernel size of {key}")
        area = kernel[0] ** dims if len(kernel) == 1 else prod(kernel)
        return Counter({key: area * numel(outputs[0])})

    return handle


def _has_tensor(value: Any) -> bool:
    return shape(value) is not None


def with_bias(key: str, fvcore_handle: Handle, bias_index: int) -> Handle:
    """fvcore's multiply-adds under ``key``, plus one add per output element if a bias is given."""

    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        found = fvcore_handle(inputs, outputs)
        counts = Counter(found) if isinstance(found, Counter) else Counter({key: found})
        if _has_tensor(inputs[bias_index]):
            counts["bias_add"] = numel(outputs[0])
        return counts

    return handle


def sdpa(inputs: list[Any], outputs: list[Any]) -> Counter:
    """Q (..., L, E), K (..., S, E), V (..., S, E_v): the two products, then scale + softmax."""
    q, k, v = shape(inputs[0]), shape(inputs[1]), shape(inputs[2])
    if q is None or k is None or v is None:
        raise ValueError("scaled_dot_product_attention without complete shapes")
    scores = prod(q[:-1]) * k[-2]  # B·H·L·S
    counts = Counter({"scaled_dot_product_attention": scores * (q[-1] + v[-1]), "sdpa_softmax": 4 * scores})
    if len(inputs) > 3 and _has_tensor(inputs[3]):
        counts["sdpa_softmax"] += scores
    return counts


def extra_handles() -> dict[str, Handle]:
    """The handles that turn fvcore's count into an "all ops" count (keys: op names)."""
    from fvcore.nn.jit_handles import addmm_flop_jit, conv_flop_jit, linear_flop_jit

    handles: dict[str, Handle] = {
        "aten::_convolution": with_bias("conv", conv_flop_jit, 2),
        "aten::linear": with_bias("linear", linear_flop_jit, 2),
        "aten::addmm": with_bias("addmm", addmm_flop_jit, 0),
        "aten::mean": _per_input("mean"),
        "aten::sum": _reduce_sum,
        "aten::var": _variance,
        "aten::amax": _per_input("amax"),
        "aten::adaptive_max_pool2d": _per_input("adaptive_max_pool2d"),
        "aten::softmax": _per_output("softmax", 3),
        "aten::max_pool2d": pool_window("max_pool2d"),
        "aten::avg_pool2d": pool_window("avg_pool2d"),
        "aten::scaled_dot_product_attention": sdpa,
    }
    for op in ELEMENTWISE:
        handles[f"aten::{op}"] = _per_output(op)
        handles[f"aten::{op}_"] = _per_output(op)
    return handles


#: by_operator keys that only the all-ops count has (the rest is fvcore's default, "FC only").
EXTRA_KEYS = frozenset(
    {"mean", "sum", "var", "amax", "adaptive_max_pool2d", "softmax", "max_pool2d", "avg_pool2d", "bias_add",
     "sdpa_softmax", *ELEMENTWISE}
)
