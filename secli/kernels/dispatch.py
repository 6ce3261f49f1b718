"""The one place that decides, per call, whether a block's fast path may run or its eager composition.

The rule (``docs/guarantees.md``, "Drop-in contract"): a fast path runs only where it is the eager
computation with the same observable behaviour; everywhere else that call runs the eager
composition. Every fast path in ``secli.kernels`` asks here:

- ``fused_enabled``: gradients are wanted and nothing traces, compiles, counts or transforms
  (``torch.func``), so the fused autograd Functions may run;
- ``reference_wanted``: ordinary ops must run as the eager block writes them (FLOP counts, jit
  traces, dispatch modes, ``torch.func`` transforms);
- ``observed`` / ``hooked`` / ``any_global_module_hook``: a hook could see a module call that a
  fast path would skip or reshape (the residual fold's ReLU, an excitation's FCs), so the call
  runs the modules as the eager network does;
- ``kernels_if_wanted``: which kernels take these tensors (Triton on request, the compiled CPU
  kernels, else ATen's ops).

Each check is a few attribute reads or one C call: they run at every block of every step.
What needs no check: double backward (the Functions' backwards are differentiable when autograd
records them, ``squeeze.py``), saved-tensor hooks (activation checkpointing, ``save_on_cpu``:
the Functions save through ``save_for_backward`` and call no nested ``autograd.grad``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from secli.kernels import cpu_kernels
from secli.util.env_flags import env_value, switch_on, switch_value

_EAGER_REQUESTS = 0  # > 0 inside ``eager_composition()``
_RECORDING_AS_RUN = 0  # > 0 inside ``fast_paths_recorded()``


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


@contextlib.contextmanager
def fast_paths_recorded() -> Iterator[None]:
    """Let fused blocks take their ATen fast paths while a dispatch mode records them (the byte
    counter, ``secli.cost.record``, which must see the passes the implementation makes).

    Inside, a ``TorchDispatchMode`` no longer asks for the reference composition, and no
    compiled kernel runs (neither the CPU kernels nor Triton): what remains is ATen's ops, what a
    GPU without ``SECLI_TRITON`` runs, and the only thing fake tensors can run. jit traces and
    ``eager_composition()`` still get the reference.
    """
    global _RECORDING_AS_RUN
    _RECORDING_AS_RUN += 1
    try:
        yield
    finally:
        _RECORDING_AS_RUN -= 1


def recording_as_run() -> bool:
    """Inside ``fast_paths_recorded()``: the byte counter's own hooks watch every module only to
    attribute ops to it, so the fold must not decline for them (it would record another network)."""
    return _RECORDING_AS_RUN > 0


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
    return not compiling() and not transforms_active()


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
    if compiling() or _RECORDING_AS_RUN:  # the compiler traces ordinary ops anyway (and must not see the C++ check)
        return False
    return _dispatch_modes() > 0 or transforms_active()


_TRANSFORMS_ACTIVE = getattr(torch._C, "_are_functorch_transforms_active", None)


def transforms_active() -> bool:
    """Inside a ``torch.func`` transform (``grad``, ``vmap``, ``jacrev``...): the fused Functions
    define no ``setup_context``/``vmap`` rule and the kernels take no batched tensors, so the
    eager composition runs (``functional_call`` alone is no transform: the fast paths read the
    parameters it swaps in). True where torch no longer exposes the check."""
    return True if _TRANSFORMS_ACTIVE is None else bool(_TRANSFORMS_ACTIVE())


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
    if reference_wanted() or compiling() or _RECORDING_AS_RUN:
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
    if _RECORDING_AS_RUN:
        return None
    if single_input and env_value(TRITON_ENV) and triton_wanted(*tensors):
        from secli.kernels import triton_kernels  # imported by triton_wanted already

        return triton_kernels
    if tensors[0].device.type != "cpu":
        return None
    return _cpu_kernels(tensors)


_GLOBAL_HOOK_CHECK = getattr(torch.nn.modules.module, "_has_any_global_hook", None)


def any_global_module_hook() -> bool:
    """Whether a hook registered for every module (``torch.nn.modules.module.register_module_*``) exists;
    True where torch no longer exposes the check, so the modules then always run."""
    return True if _GLOBAL_HOOK_CHECK is None else bool(_GLOBAL_HOOK_CHECK())


def hooked(module: nn.Module) -> bool:
    """Whether a forward, pre-forward, backward or pre-backward hook is registered on ``module``
    (read from its dicts: ``Module.__getattr__`` is not involved)."""
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks)


def observed(*modules: nn.Module) -> bool:
    """Whether anything could see these modules' calls: a hook on one of them, a global module hook,
    or a counter/trace/transform that wants the eager ops (``reference_wanted``). A fast path that
    would skip or reshape calls of ``modules`` runs the eager composition where this is True."""
    if any_global_module_hook() or reference_wanted():
        return True
    return any(hooked(module) for module in modules)


def cpu_kernels_ready() -> Any:
    """``cpu_kernels`` where they may run now and no Triton run was asked for (``SECLI_TRITON``),
    else None; the caller checks its tensors (``cpu_kernels.squeeze_excite`` declines others)."""
    return None if env_value(TRITON_ENV) and switch_on(TRITON_ENV) else _cpu_kernels_allowed()
