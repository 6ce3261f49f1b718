"""What one ATen op costs: the bytes it reads and writes, its FLOPs, and which peak it runs at.

The byte rules (applied to every op a ``TorchDispatchMode`` sees, so backward ops too):

- every distinct tensor an op takes is read once, at its dtype; a broadcast (stride-0) view counts
  the elements it really holds (SE's ``x * s`` reads all of x and C values of s, not C·H·W of s);
- every tensor it returns is written once; an argument the schema marks as written (in-place
  ``relu_``, ``add_``, ``out=``, ``_foreach_*_``) is written too, and read as well except for a
  plain destination (``out=``, ``copy_``, ``fill_``, ``zero_``), which is only written;
- a weight is an input like any other: read once per op call, however many images the call covers;
- views and metadata ops (``view``, ``t``, ``expand``, ``detach``, ``empty``...) move nothing and
  launch no kernel; every other op is one kernel.

FLOPs here follow the hardware's convention (one multiply-add = 2 FLOPs), because peaks are quoted
that way: convolutions and matrix products from ``torch.utils.flop_counter``'s formulas (the
same that ``FlopCounterMode`` uses, so fvcore's multiply-adds x 2); everything else one FLOP per
output element, reductions one per input element, softmax 3 per element, batch norm 2 per element
(5 when it computes batch statistics), copies and casts none.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch.utils._pytree import tree_flatten

#: Ops that run on the matrix units (tensor cores); the rest run on the vector units.
CONV_OPS = frozenset({"convolution", "_convolution", "convolution_backward", "cudnn_convolution",
                      "_slow_conv2d_forward"})
MATMUL_OPS = frozenset({
    "mm", "addmm", "bmm", "baddbmm", "_scaled_dot_product_efficient_attention", "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_efficient_attention_backward",
    "_scaled_dot_product_flash_attention_backward", "_scaled_dot_product_cudnn_attention_backward",
    "_flash_attention_forward", "_efficient_attention_forward", "_flash_attention_backward",
    "_efficient_attention_backward",
})
#: Ops that allocate or re-view memory without reading or writing it: no bytes, no kernel.
NO_KERNEL = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "lift_fresh", "detach",
                       "alias", "set_", "resize_", "_reshape_alias", "_unsafe_view", "promote_types"})
#: Ops that only write their destination argument (they do not read what it held).
WRITE_ONLY = frozenset({"copy_", "fill_", "zero_", "zeros_like", "ones_like", "full_like", "normal_", "uniform_",
                        "random_"})
#: Data movement: bytes, no arithmetic.
COPIES = frozenset({
    "clone", "copy_", "_to_copy", "cat", "stack", "constant_pad_nd", "index_select", "gather", "contiguous",
    "repeat", "fill_", "zero_", "zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "scalar_tensor",
    "_foreach_zero_", "new_zeros", "new_ones", "new_full", "arange", "randn", "rand", "randint", "normal_", "uniform_",
    "random_", "flip", "roll", "slice_backward", "select_backward", "as_strided_scatter", "index_put_", "masked_fill",
})
#: One FLOP per element read (the reduction's adds, compares or divides).
REDUCTIONS = frozenset({"mean", "sum", "amax", "amin", "max", "min", "var", "var_mean", "std", "std_mean", "norm",
                        "linalg_vector_norm", "logsumexp", "_adaptive_avg_pool2d", "adaptive_max_pool2d",
                        "nll_loss_forward"})
SOFTMAX = frozenset({"_softmax", "softmax", "_log_softmax", "log_softmax"})
BATCH_NORMS = frozenset({"native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
                         "cudnn_batch_norm", "miopen_batch_norm"})


def kind_of(name: str) -> str:
    """``conv`` or ``matmul`` (matrix units) or ``vector``."""
    if name in CONV_OPS:
        return "conv"
    return "matmul" if name in MATMUL_OPS else "vector"


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes of the elements ``t`` really holds: a broadcast dimension (stride 0) counts once."""
    try:
        count = 1
        for size, stride in zip(t.shape, t.stride(), strict=True):
            if stride != 0:
                count *= size
    except (RuntimeError, NotImplementedError):  # sparse, nested: no strides
        count = t.numel()
    return count * t.element_size()


def _tensors(value: Any) -> list[torch.Tensor]:
    return [v for v in tree_flatten(value)[0] if isinstance(v, torch.Tensor)]


@functools.lru_cache(maxsize=4096)
def _written_arguments(func: Any) -> tuple[frozenset[str], frozenset[str]]:
    """(names of arguments the op writes, names of those it only writes: ``out=`` destinations)."""
    written, only = set(), set()
    for argument in func._schema.arguments:
        alias = argument.alias_info
        if alias is not None and alias.is_write:
            written.add(argument.name)
            if argument.is_out:
                only.add(argument.name)
    return frozenset(written), frozenset(only)


def op_tensors(func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
               out: Any) -> tuple[dict[int, tuple[torch.Tensor, int]], dict[int, tuple[torch.Tensor, int]]]:
    """(tensors read, tensors written) by one call, each ``id -> (tensor, bytes)``, by the rules of
    this module's docstring."""
    written_names, out_names = _written_arguments(func)
    by_name = dict(zip((a.name for a in func._schema.arguments), args, strict=False))
    by_name.update(kwargs)
    reads: dict[int, tuple[torch.Tensor, int]] = {}
    writes: dict[int, tuple[torch.Tensor, int]] = {}
    for arg_name, value in by_name.items():
        for t in _tensors(value):
            if arg_name in written_names:
                writes[id(t)] = (t, tensor_bytes(t))
                if arg_name in out_names or name in WRITE_ONLY:
                    continue
            reads[id(t)] = (t, tensor_bytes(t))
    for t in _tensors(out):
        writes.setdefault(id(t), (t, tensor_bytes(t)))
    return reads, writes


def op_bytes(func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
    """(bytes read, bytes written) by one call."""
    reads, writes = op_tensors(func, name, args, kwargs, out)
    return sum(b for _, b in reads.values()), sum(b for _, b in writes.values())


def _numel(value: Any) -> int:
    return sum(t.numel() for t in _tensors(value))


def op_flops(func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> float:
    """FLOPs of one call (multiply-add = 2), by the rules of this module's docstring."""
    if name in CONV_OPS or name in MATMUL_OPS:
        from torch.utils.flop_counter import flop_registry

        count = flop_registry.get(func.overloadpacket)
        if count is not None:
            return float(count(*args, **kwargs, out_val=out))
    if name in COPIES:
        return 0.0
    if name in REDUCTIONS:
        return float(_numel(args[0]) if args else 0)
    if name in SOFTMAX:
        return 3.0 * _numel(out)
    if name in BATCH_NORMS:
        training = bool(args[5]) if len(args) > 5 and isinstance(args[5], bool) else False
        return (5.0 if training else 2.0) * (_numel(args[0]) if args else 0)
    outputs = _tensors(out)
    return float(max((t.numel() for t in outputs), default=0))


def compute_dtype(args: tuple[Any, ...]) -> str:
    """The dtype an op computes in: that of its first floating-point tensor argument."""
    for value in args:
        for t in _tensors(value):
            if t.is_floating_point():
                return str(t.dtype).removeprefix("torch.")
    return "float32"
