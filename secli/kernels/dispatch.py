"""The one place that decides, per call, whether a block's fast path may run or its eager composition.

Every fast path in ``secli.kernels`` asks here: whether gradients are wanted and nothing traces,
compiles or counts (``fused_enabled``, ``reference_wanted``), whether a hook could observe what
a fast path would skip (``any_global_module_hook``), and which kernels take these tensors
(``kernels_if_wanted``: Triton on request, the compiled CPU kernels, else ATen's ops).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from secli.kernels import cpu_kernels
from secli.util.env_flags import env_value, switch_on, switch_value

_EAGER_REQUESTS = 0  # > 0 inside ``eager_composition()``


@contextlib.contextmanager
def eager_composition() -> Iterator[None]:
    """Run every fused block as its eager composition while inside (FLOP counting).

    Counting rules are written for ordinary ops; the fused backward does the same arithmetic in
    other ops (a batched dot where eager multiplies then sums), so counts use the reference.
    """
    global _EAGER_REQUESTS
    _EAGER_REQUESTS += 1
    try:
        yield
    finally:
        _EAGER_REQUESTS -= 1


def fused_enabled(*tensors: torch.Tensor) -> bool:
    """Whether the fused function pays off here: some gradient is needed and we are not traced.

    Without gradients the forward alone runs (one read to pool, one pass to scale, through
    ``kernels_if_wanted`` where kernels apply); under ``torch.compile`` the compiler fuses the
    composition itself;
    a jit trace (fvcore's FLOP count) must see the ordinary ops, not an opaque Python function.
    """
    if not torch.is_grad_enabled() or _EAGER_REQUESTS:
        return False
    if torch.jit.is_tracing() or torch.jit.is_scripting():  # fvcore counts FLOPs from a jit trace
        return False
    return not compiling()


_COMPILER = getattr(torch, "compiler", None)
_IS_COMPILING = getattr(_COMPILER, "is_compiling", None)
_IS_EXPORTING = getattr(_COMPILER, "is_exporting", None)


def compiling() -> bool:
    """Inside ``torch.compile``'s trace or ``torch.export``: both must see ordinary ops. (The
    checks are looked up once: this runs at every fused block of every step.)"""
    if _IS_COMPILING is None:
        return False
    return bool(_IS_COMPILING() or (_IS_EXPORTING is not None and _IS_EXPORTING()))


def reference_wanted() -> bool:
    """Whether ordinary ops must run as the eager block writes them (FLOP counts, jit traces,
    and any ``TorchDispatchMode`` such as ``torch.utils.flop_counter.FlopCounterMode``).

    Counting rules know ``mul``, ``add`` and ``relu``, not the compositions the fused path uses
    without gradients (``addcmul``), and a dispatch mode cannot see inside a compiled kernel at
    all, so counters see exactly the eager ops.
    """
    if _EAGER_REQUESTS or torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    if compiling():  # the compiler traces ordinary ops anyway (and must not see the C++ check)
        return False
    return _dispatch_modes() > 0


_DISPATCH_STACK_LEN = getattr(torch._C, "_len_torch_dispatch_stack", None)


def _dispatch_modes() -> int:
    return 1 if _DISPATCH_STACK_LEN is None else int(_DISPATCH_STACK_LEN())  # unknown torch: assume someone is watching


TRITON_ENV = "SECLI_TRITON"


def triton_wanted(*tensors: torch.Tensor) -> bool:
    """Whether the Triton kernels run here: opt-in (``SECLI_TRITON=1``) and CUDA tensors only.

    Off by default because nobody has yet measured them against PyTorch's composition on a GPU;
    ``SECLI_TRITON=force`` also runs them on CPU tensors (only sensible with TRITON_INTERPRET=1,
    which is how the tests check them without a GPU).
    """
    flag = switch_value(TRITON_ENV)  # strict: off, on (1, true, yes) or force; anything else refused
    if flag == "off":
        return False
    if flag == "on" and not all(t.is_cuda for t in tensors):
        return False
    from secli.kernels import (
        triton_kernels,  # here, not at the top: importing triton costs 0.2 s, and only SECLI_TRITON runs want it
    )

    return triton_kernels.available()


def _cpu_kernels_allowed() -> Any:
    """``cpu_kernels`` where they may run now (not counted, traced, compiled or exported; switched
    on with ``SECLI_CPU_KERNELS``; built), else None. The tensors' layout is the caller's check.

    On by default: unlike the Triton kernels they are measured (``benchmarks/bench_blocks.py``)
    and tested against the eager composition on every layout and dtype they accept.
    """
    if reference_wanted() or compiling():
        return None
    return cpu_kernels if cpu_kernels.available() else None


def _cpu_kernels(tensors: Sequence[torch.Tensor]) -> Any:
    kernels = _cpu_kernels_allowed()
    return kernels if kernels is not None and kernels.layout(*tensors) is not None else None


def kernels_if_wanted(*tensors: torch.Tensor, single_input: bool = True) -> Any:
    """The kernels module for these tensors: Triton where ``triton_wanted`` (one-input blocks
    only), the compiled CPU kernels where they may run and take these tensors, else None
    (ATen's ops).

    Runs once per block and step, so it checks the cheap conditions first.
    """
    if single_input and env_value(TRITON_ENV) and triton_wanted(*tensors):
        from secli.kernels import triton_kernels  # imported by triton_wanted already

        return triton_kernels
    if tensors[0].device.type != "cpu":
        return None
    return _cpu_kernels(tensors)


def any_global_module_hook() -> bool:
    """Whether a hook registered for every module (``torch.nn.modules.module.register_module_*``) exists;
    True where torch no longer exposes the check, so the modules then always run."""
    check = getattr(torch.nn.modules.module, "_has_any_global_hook", None)
    return True if check is None else bool(check())


def cpu_kernels_ready() -> Any:
    """``cpu_kernels`` where they may run now and no Triton run was asked for (``SECLI_TRITON``),
    else None; the caller checks its tensors (``cpu_kernels.squeeze_excite`` declines others)."""
    return None if env_value(TRITON_ENV) and switch_on(TRITON_ENV) else _cpu_kernels_allowed()
