"""SE's fast path: the calls an SE block (``secli.blocks.se``) hands to the kernels.

An SE block with ``impl="fused"`` and the avg squeeze asks ``fused_forward`` first; None means
"run your eager composition for this call". What runs instead, by case:

- no gradients (CPU): pool, both FCs, gate, scale (and the folded residual sum and ReLU) in one
  compiled kernel call (``whole_block``), where no hook observes the FCs or the gate;
- gradients, not traced, compiled or transformed, and no hook on the excitation's modules:
  ``gated_sum`` (or ``scale_add_relu`` with the residual), whose backward needs no saved product;
  with a hook there (one could replace a module's output, so the gates might not come from the
  squeeze) the eager composition runs, with the same module calls;
- otherwise without a reference wanted (no gradients elsewhere, or compiled): the forward in one
  pass (``scale_forward``/``scale_add_relu_forward``).

The excitation runs through ``gates_of_pooled``: where nothing observes ``fc1``, ``act`` or
``fc2`` (no hooks, not counted or traced) the two 1x1 convolutions run as ``linear`` on the
same weights, the same function without a convolution's set-up for one pixel (about 15 µs a
layer on one CPU thread, paid at every site and step). ``gate_act`` always runs as a module,
so analysis hooks there see every gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from secli.kernels.aten_ops import channel_mean
from secli.kernels.dispatch import any_global_module_hook, cpu_kernels_ready, fused_enabled, hooked, reference_wanted
from secli.kernels.gated_sum import gated_sum, scale_forward
from secli.kernels.gates import GATE_MODULES
from secli.kernels.residual import scale_add_relu, scale_add_relu_forward


class SEModules(Protocol):
    """What the fast path reads of an SE block: its width, its gate's name and its children
    ``fc1`` (1x1 conv C -> h), ``act`` (ReLU), ``fc2`` (1x1 conv h -> C) and ``gate_act``."""

    @property
    def channels(self) -> int: ...
    @property
    def gate_name(self) -> str: ...
    @property
    def _modules(self) -> Mapping[str, nn.Module | None]: ...
    @property
    def _forward_hooks(self) -> Mapping[int, object]: ...
    @property
    def _forward_pre_hooks(self) -> Mapping[int, object]: ...


#: The excitation's other children and their types, computed as ``linear``/``relu``
#: (``gates_of_pooled``) or in C++ (``whole_block``).
_FC_MODULES: dict[str, type[nn.Module]] = {"fc1": nn.Conv2d, "act": nn.ReLU, "fc2": nn.Conv2d}


def children_plain(block: SEModules, names: tuple[str, ...]) -> bool:
    """These children are the module types the fast paths compute in their place, with no hook on
    them. Read through ``_modules``: ``Module.__getattr__`` costs a microsecond a time."""
    modules = block._modules
    for name in names:
        module = modules[name]
        kind = GATE_MODULES[block.gate_name] if name == "gate_act" else _FC_MODULES[name]
        if type(module) is not kind or hooked(module):  # type first: may be None
            return False
    return True


_ALL = ("fc1", "act", "fc2", "gate_act")


def _fcs_unobserved(block: SEModules) -> bool:
    if reference_wanted() or any_global_module_hook():
        return False
    return children_plain(block, ("fc1", "act", "fc2"))


def gates_of_pooled(block: SEModules, z: torch.Tensor) -> tuple[torch.Tensor]:
    """The gate for a pooled ``z`` (N, C, 1, 1), as a one-tuple (the ``Excite`` interface)."""
    modules = block._modules
    fc1, act, fc2, gate_act = modules["fc1"], modules["act"], modules["fc2"], modules["gate_act"]
    assert fc1 is not None
    assert act is not None
    assert fc2 is not None
    assert gate_act is not None
    if not _fcs_unobserved(block):
        return (gate_act(fc2(act(fc1(z)))),)
    n, channels = z.shape[0], block.channels
    w1, w2 = fc1._parameters, fc2._parameters  # plain Conv2d children (just checked)
    hidden = F.linear(z.reshape(n, channels), w1["weight"].flatten(1), w1.get("bias")).relu_()  # type: ignore[union-attr]
    pre = F.linear(hidden, w2["weight"].flatten(1), w2.get("bias"))  # type: ignore[union-attr]
    return (gate_act(pre.view(n, channels, 1, 1)),)


def whole_block(block: SEModules, x: torch.Tensor, residual: torch.Tensor | None,
                overwrite: bool) -> torch.Tensor | None:
    """The block without gradients as one CPU kernel call (``cpu_kernels.squeeze_excite``),
    where the kernels may run and nothing observes the FCs or the gate (a hook on ``gate_act``,
    as excitation analysis adds, keeps the modules); None otherwise."""
    kernels = cpu_kernels_ready()
    if kernels is None or any_global_module_hook() or not children_plain(block, _ALL):
        return None
    fc1 = block._modules["fc1"]._parameters  # type: ignore[union-attr]
    fc2 = block._modules["fc2"]._parameters  # type: ignore[union-attr]
    out = x if overwrite and residual is not None else None
    done = kernels.squeeze_excite(x, residual, (fc1["weight"], fc1.get("bias")), (fc2["weight"], fc2.get("bias")),
                                  block.gate_name, out, gates=False)
    return None if done is None else done[0]


def fused_forward(block: SEModules, x: torch.Tensor, residual: torch.Tensor | None,
                  overwrite: bool) -> torch.Tensor | None:
    """``s * x`` (with ``residual``: ``relu(s * x + residual)``) on the fast path for this call,
    or None where the block's eager composition must run (FLOP counts, jit traces, dispatch modes,
    ``torch.func`` transforms, and with gradients a hook on the excitation's modules).

    ``overwrite``: ``x`` is a residual block's own BN output, which nothing reads afterwards, so
    without gradients the result may be written into it (unless a hook on the SE block may keep
    its input).
    """
    if overwrite and (block._forward_hooks or block._forward_pre_hooks):
        overwrite = False
    if not torch.is_grad_enabled():  # CPU: pool, FCs, gate and scale in one kernel call
        whole = whole_block(block, x, residual, overwrite)
        if whole is not None:
            return whole
    elif fused_enabled(x):
        if any_global_module_hook() or not children_plain(block, _ALL):
            return None  # the gates must come from the squeeze's z (``squeeze.activate``)

        def excite(z: torch.Tensor) -> tuple[torch.Tensor]:
            return gates_of_pooled(block, z)

        if residual is not None:
            return scale_add_relu(excite, x, residual)
        return gated_sum(excite, [x])
    if reference_wanted():
        return None
    gate = gates_of_pooled(block, channel_mean(x))[0]  # no gradients, or compiled: the forward in one pass
    if residual is not None:
        return scale_add_relu_forward(x, gate, residual, overwrite=overwrite)
    return scale_forward(x, gate)
