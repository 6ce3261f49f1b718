"""Compiled CPU kernels for the fused SE blocks: one pass where ATen's composition takes several.

Why compiled code: on a CPU, ATen has no single op for ``relu(u * s + identity)``, for the
backward's ``(g * (out > 0), sum_hw(g * (out > 0) * u))`` or for ``g * s + dz / HW``, and two of
the ops it does have are slow at these shapes (``bmm`` as a batched dot, a broadcasting
``addcmul``; per step in ``benchmarks/bench_blocks.py --groups kernels``). Without gradients the
whole SE block (pool, both FCs, gate, scale, residual sum and ReLU) is one call
(``squeeze_excite``): at batch 1 its arithmetic is small and Python around eight small ops was
most of what it cost.

How: ``cpu_kernels.cpp`` (beside this file) is compiled on first use with the system C++
compiler by ``cpu_build`` (about 1 s, cached per user, source, compiler and CPU) and loaded with
``ctypes`` (which releases the GIL during each call). Threads: OpenMP with
``torch.get_num_threads()``, through the libgomp torch has already loaded.

Scope: float32 and float64 CPU tensors, all NCHW-contiguous or all channels_last. Everything else
(fp16/bf16, other strides, no compiler, ``SECLI_CPU_KERNELS=0``) keeps ATen's composition, which
computes the same function; ``status()`` says which applies and why. The kernels never run
under ``torch.compile``, ``torch.export``, a jit trace or a dispatch mode
(``dispatch.kernels_if_wanted``, ``dispatch.cpu_kernels_ready``).
"""

from __future__ import annotations

import ctypes
import subprocess
import threading
from typing import Any

import torch

from secli.kernels import aten_ops, cpu_build
from secli.util.env_flags import switch_on

ENV_SWITCH = "SECLI_CPU_KERNELS"
_SUFFIX = cpu_build.SUFFIX
_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_failure: str | None = None  # why the kernels are unavailable, once a load was tried
_FUNCTIONS: dict[tuple[str, str, torch.dtype], Any] = {}  # (name, layout, dtype) -> entry point


def library() -> ctypes.CDLL | None:
    """The loaded kernels, building them on the first call; None where they cannot be had."""
    global _library, _failure
    if _library is not None or _failure is not None:
        return _library
    with _lock:
        if _library is None and _failure is None:
            try:
                _library, functions = cpu_build.load()
                _FUNCTIONS.update(functions)
            except (OSError, subprocess.SubprocessError, AttributeError) as exc:
                _failure = str(exc) or type(exc).__name__
    return _library


def enabled() -> bool:
    """Not switched off with ``SECLI_CPU_KERNELS=0`` (strict: ``secli.util.env_flags.switch_value``)."""
    return switch_on(ENV_SWITCH)


def available() -> bool:
    """Switched on and loaded (compiling them now if needed)."""
    return enabled() and (bool(_FUNCTIONS) or library() is not None)


def status() -> str:
    """One line for reports: which implementation fused blocks use on CPU, and why."""
    if not enabled():
        return f"CPU kernels off ({ENV_SWITCH}=0): fused blocks use ATen's composition on CPU"
    if library() is None:
        return f"CPU kernels unavailable ({_failure}): fused blocks use ATen's composition on CPU"
    return "CPU kernels compiled: fused blocks run one pass per step on CPU"


# ----------------------------------------------------------------------------- layout
def layout(*tensors: torch.Tensor) -> str | None:
    """``"nchw"`` or ``"nhwc"`` when every tensor is a 4-d CPU tensor of the first one's shape
    and (supported) dtype, all NCHW-contiguous or all channels_last; None otherwise (the caller
    keeps ATen's composition). Called once per block and step, so kept to plain checks."""
    first = tensors[0]
    dtype, shape = first.dtype, first.shape
    if dtype not in _SUFFIX or first.device.type != "cpu" or len(shape) != 4:
        return None
    for tensor in tensors[1:]:
        if tensor.dtype != dtype or tensor.shape != shape or tensor.device.type != "cpu":
            return None
    if all(t.is_contiguous() for t in tensors):
        return "nchw"
    if all(t.is_contiguous(memory_format=torch.channels_last) for t in tensors):
        return "nhwc"
    return None


def _vec(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (N, C, 1, 1) per-channel tensor as a dense (N, C) buffer in ``like``'s dtype."""
    if values.dtype != like.dtype:
        values = values.to(like.dtype)
    return values.detach().reshape(like.shape[0], like.shape[1]).contiguous()


def _call(name: str, like: torch.Tensor, kind: str, *tensors: torch.Tensor | None) -> None:
    """Run entry point ``name`` for ``like``'s layout and dtype on the tensors' buffers (None: a
    null pointer). Takes the tensors, not their addresses, so every buffer stays alive during
    the call."""
    if not _FUNCTIONS and library() is None:
        raise RuntimeError(f"cpu_kernels: not available ({_failure})")
    n, c, h, w = like.shape
    sizes = (n * c, h * w) if kind == "nchw" else (n, h * w, c)
    pointers = [None if t is None else t.data_ptr() for t in tensors]
    _FUNCTIONS[(name, kind, like.dtype)](*pointers, *sizes, torch.get_num_threads())


def _kind(*tensors: torch.Tensor) -> str:
    kind = layout(*tensors)
    if kind is None:
        raise ValueError("cpu_kernels: tensors of mixed or unsupported layout/dtype (check layout() first)")
    return kind


# ----------------------------------------------------------------------------- the kernels
def channel_mean(x: torch.Tensor) -> torch.Tensor:
    """The squeeze: ATen's mean already reads x once (the same interface as ``triton_kernels``)."""
    return aten_ops.channel_mean(x)


def scale(x: torch.Tensor, s: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
    """``x * s``, or ``relu(x * s + add)`` when ``add`` is given; one pass, x's layout.

    The plain scale is ATen's broadcasting ``mul``: already one pass, and with less call
    overhead than a kernel call at batch 1 (measured: 0.67 against 0.86 ms over ResNet-50's
    sites on one thread)."""
    if add is None:
        return x * s
    return scale_add_relu(x, s, add)


def scale_add_relu(u: torch.Tensor, s: torch.Tensor, identity: torch.Tensor,
                   out: torch.Tensor | None = None) -> torch.Tensor:
    """``relu(u * s + identity)``: reads u and identity once, writes the output once.

    ``out`` may be ``u`` itself (each element is read before it is written): the in-place form a
    residual block uses without gradients, as torchvision's ``out += identity; relu_`` does,
    which spares a fresh allocation (fresh pages cost the kernel a zero-fill pass)."""
    kind = _kind(u, identity) if out is None else _kind(u, identity, out)
    result = torch.empty_like(u) if out is None else out
    _call("sar", u, kind, result, u, _vec(s, u), identity)
    return result


def channel_dot(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``sum_hw(g * x)`` as (N, C, 1, 1), the product never written."""
    kind = _kind(g, x)
    ds = torch.empty(x.shape[0], x.shape[1], dtype=x.dtype)
    _call("dot", x, kind, None, ds, g, None, x)
    return ds.view(x.shape[0], x.shape[1], 1, 1)


def relu_mask_and_dot(g: torch.Tensor, out: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g * (out > 0), sum_hw(g * (out > 0) * u))`` in one pass over g, out and u."""
    kind = _kind(g, out, u)
    masked = torch.empty_like(u)
    ds = torch.empty(u.shape[0], u.shape[1], dtype=u.dtype)
    _call("dot", u, kind, masked, ds, g, out, u)
    return masked, ds.view(u.shape[0], u.shape[1], 1, 1)


def scale_add_mean_grad(g: torch.Tensor, s: torch.Tensor, dz: torch.Tensor) -> torch.Tensor:
    """``g * s + broadcast(dz / HW)``: SE's input gradient in one pass."""
    kind = _kind(g)
    h, w = g.shape[2], g.shape[3]
    out = torch.empty_like(g)
    _call("ss", g, kind, out, g, _vec(s, g), _vec(dz / (h * w), g))
    return out


#: the gate codes of ``cpu_kernels.cpp``'s ``apply_gate``
GATE_CODES = {"sigmoid": 0, "tanh": 1, "relu": 2, "hardsigmoid": 3}


def squeeze_excite(
    u: torch.Tensor,
    identity: torch.Tensor | None,
    fc1: tuple[torch.Tensor, torch.Tensor | None],
    fc2: tuple[torch.Tensor, torch.Tensor | None],
    gate: str,
    out: torch.Tensor | None = None,
    gates: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """The whole SE block without gradients in one call: pool, both FCs, the gate, then
    ``relu(u * s + identity)`` (or ``u * s`` without ``identity``). Returns (output, gates), or
    None where the tensors are not ones the kernel takes (the caller then runs the modules).
    ``gates=False`` (a network's forward has no use for them) returns (output, None) and spares
    the gates' allocation.

    Why one call: at batch 1 the block's arithmetic is small and what it costs is Python and
    dispatch around eight small ops (measured inside ResNet-50 on one thread: about 0.4 ms a
    site, against 0.1 ms for this call). ``fc1`` and ``fc2`` are (weight, bias) as 1x1
    convolutions or linear layers store them; ``out`` may be ``u`` (in place). The checks are
    written out, not looped, and read ``is_cpu`` rather than ``device.type`` (which builds a
    device object): this runs at every site of every inference step, where each microsecond
    of Python costs several once the convolutions have pushed the interpreter out of the caches.
    """
    dtype = u.dtype
    if not u.is_cpu or u.dim() != 4:
        return None
    if u.is_contiguous():
        kind, memory = "nchw", torch.contiguous_format
    elif u.is_contiguous(memory_format=torch.channels_last):
        kind, memory = "nhwc", torch.channels_last
    else:
        return None
    if not _FUNCTIONS:
        library()  # the first call builds or loads them
    function = _FUNCTIONS.get(("se", kind, dtype))  # None for dtypes without a kernel, or none built
    if function is None:
        return None
    shape = u.shape
    for other in (identity, out):
        if other is not None and (other.dtype != dtype or other.shape != shape or not other.is_cpu
                                  or not other.is_contiguous(memory_format=memory)):
            return None
    n, c, h, w = shape
    (w1, b1), (w2, b2) = fc1, fc2
    hidden = w1.shape[0]
    if w1.numel() != hidden * c or w2.numel() != hidden * c or w2.shape[0] != c:
        return None
    for param in (w1, b1, w2, b2):
        if param is not None and (param.dtype != dtype or not param.is_cpu or not param.is_contiguous()):
            return None
    result = torch.empty_like(u) if out is None else out
    gate_values = torch.empty(n, c, dtype=dtype) if gates else None
    function(result.data_ptr(), None if gate_values is None else gate_values.data_ptr(), u.data_ptr(),
             None if identity is None else identity.data_ptr(), w1.data_ptr(), None if b1 is None else b1.data_ptr(),
             w2.data_ptr(), None if b2 is None else b2.data_ptr(), GATE_CODES[gate], n, c, hidden, h * w,
             torch.get_num_threads())
    return result, None if gate_values is None else gate_values.view(n, c, 1, 1)
