"""Squeeze-and-Excitation (Hu et al.), with the variants the paper's ablations use.

    z = squeeze(U)                      avg or max over H x W (Table 11), or none (Table 16)
    s = gate(W2 . ReLU(W1 . z))         W1: C -> C/r, W2: C/r -> C; sigmoid/tanh/relu (Table 12)
    out = s * U                         channel-wise scale

The FCs are 1x1 convolutions so that the same module also serves the "no squeeze" variant,
where the excitation runs at every position of the full feature map with the same parameter
count. The gate is its own submodule, ``gate_act``, so analysis code reads the excitation with
a forward hook there; the block itself stores nothing.

``impl="fused"`` (the avg squeeze only) runs the same modules through
``secli.build.blocks.fused.GatedSum``: x is read once to pool and once to scale, and the
backward computes sum_hw(g*x) and g*s + broadcast(dz/HW) without the product tensor. The
parameters and the state_dict are the same for both implementations; ``impl_used`` says which
one a block runs (max and no squeeze fall back to eager). At the standard position of a ResNet
block the block's forward passes its identity in (``forward(x, residual)``) and the block
returns ``relu(s * x + identity)`` (``secli.build.blocks.fused_residual``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from secli.build.blocks.fused import (
    any_global_module_hook,
    channel_mean,
    cpu_kernels_ready,
    fused_enabled,
    gated_sum,
    reference_wanted,
    scale_forward,
)
from secli.build.blocks.fused_residual import scale_add_relu, scale_add_relu_forward
from secli.build.registry import BlockKind, register
from secli.util.errors import SecliUsageError
from secli.util.vocabulary import GATES, IMPLS, SQUEEZES

if TYPE_CHECKING:
    from secli.build.architectures.base import Target
    from secli.build.spec import BlockSpec

#: Gate value an ``init="identity"`` block starts at: close enough to 1 that a pretrained
#: network keeps its outputs (see tests), far enough from saturation that gradients still flow.
IDENTITY_GATE_VALUE = 0.999


#: The module behind each gate name of ``secli.util.vocabulary.GATES`` (a test checks both agree).
GATE_MODULES: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "hardsigmoid": nn.Hardsigmoid,
}


def _gate_module(name: str) -> nn.Module:
    if name not in GATE_MODULES:
        raise SecliUsageError(f"unknown gate {name!r}; choose one of: {', '.join(GATES)}")
    return GATE_MODULES[name]()


def _gate_inverse(name: str, value: float) -> float:
    """The pre-activation that makes ``gate`` output ``value`` (for the identity init)."""
    if name == "sigmoid":
        return math.log(value / (1.0 - value))
    if name == "tanh":
        return math.atanh(value)
    if name == "hardsigmoid":
        return (value - 0.5) * 6.0
    return value  # relu


#: The excitation's other children and their types, which the fast paths compute as
#: ``linear``/``relu`` (``_excite_pooled``) or in C++ (``_whole_block``).
_FC_MODULES: dict[str, type[nn.Module]] = {"fc1": nn.Conv2d, "act": nn.ReLU, "fc2": nn.Conv2d}


def hidden_width(channels: int, ratio: int, floor: int = 1) -> int:
    """C // r with a floor; an impossible ratio is a user error, not a zero-width layer."""
    if ratio < 1:
        raise SecliUsageError(f"ratio must be >= 1, got {ratio}")
    if ratio > channels:
        raise SecliUsageError(
            f"ratio {ratio} is larger than the {channels} channels of a site",
            hint=f"use a ratio <= {channels}",
        )
    return max(channels // ratio, floor)


class SqueezeExcitation(nn.Module):
    """An SE block for a (N, C, H, W) tensor; returns a tensor of the same shape."""

    def __init__(
        self,
        channels: int,
        ratio: int = 16,
        min_hidden: int = 1,
        squeeze: str = "avg",
        gate: str = "sigmoid",
        bias: bool = True,
        init: str = "default",
        impl: str = "fused",
    ) -> None:
        super().__init__()
        if squeeze not in SQUEEZES:
            raise SecliUsageError(f"unknown squeeze {squeeze!r}; choose one of: {', '.join(SQUEEZES)}")
        if impl not in IMPLS:
            raise SecliUsageError(f"unknown impl {impl!r}; choose one of: {', '.join(IMPLS)}")
        self.impl = impl
        #: set by a residual block whose forward passes its identity in (``forward(x, residual)``)
        self.residual_folded = False
        self.channels = channels
        self.hidden = hidden_width(channels, ratio, min_hidden)
        self.squeeze = squeeze
        self.gate_name = gate
        self.fc1 = nn.Conv2d(channels, self.hidden, kernel_size=1, bias=bias)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(self.hidden, channels, kernel_size=1, bias=bias)
        self.gate_act = _gate_module(gate)
        if init == "identity":
            self.init_identity()
        elif init != "default":
            raise SecliUsageError(f"unknown init {init!r}; choose one of: default, identity")

    def init_identity(self, value: float = IDENTITY_GATE_VALUE) -> None:
        """Start with every gate at ``value`` for every input, so the block is ~the identity."""
        if self.fc2.bias is None:
            raise SecliUsageError("identity init needs FC biases")
        with torch.no_grad():
            self.fc2.weight.zero_()
            self.fc2.bias.fill_(_gate_inverse(self.gate_name, value))

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The gate values s, shape (N, C, 1, 1), or (N, C, H, W) without a squeeze."""
        if self.squeeze == "avg":
            z = x.mean(dim=(2, 3), keepdim=True)
        elif self.squeeze == "max":
            z = x.amax(dim=(2, 3), keepdim=True)
        else:
            z = x
        return self.gate_act(self.fc2(self.act(self.fc1(z))))

    @property
    def impl_used(self) -> str:
        """The implementation this block runs: ``fused`` only for the avg squeeze."""
        return "fused" if self.impl == "fused" and self.squeeze == "avg" else "eager"

    def _excite_pooled(self, z: torch.Tensor) -> tuple[torch.Tensor]:
        """The gate for a pooled ``z`` (N, C, 1, 1). Where nothing observes ``fc1``, ``act`` or
        ``fc2`` (no hooks, not counted or traced), the two 1x1 convolutions run as ``linear``
        on the same weights: the same function, without a convolution's set-up for one pixel
        (about 15 µs a layer on one CPU thread, a cost paid at every site and step). ``gate_act``
        always runs as a module, so analysis hooks there see every gate."""
        if not self._fcs_unobserved():
            return (self.gate_act(self.fc2(self.act(self.fc1(z)))),)
        n = z.shape[0]
        hidden = F.linear(z.reshape(n, self.channels), self.fc1.weight.flatten(1), self.fc1.bias).relu_()
        pre = F.linear(hidden, self.fc2.weight.flatten(1), self.fc2.bias)
        return (self.gate_act(pre.view(n, self.channels, 1, 1)),)

    def _fcs_unobserved(self) -> bool:
        if reference_wanted() or any_global_module_hook():
            return False
        return self._children_plain(("fc1", "act", "fc2"))

    def _children_plain(self, names: tuple[str, ...]) -> bool:
        """These children are the module types the fast paths compute in their place, with no
        hook on them. Read through ``_modules``: ``Module.__getattr__`` costs a microsecond a time."""
        modules = self._modules
        for name in names:
            module = modules[name]
            kind = GATE_MODULES[self.gate_name] if name == "gate_act" else _FC_MODULES[name]
            if type(module) is not kind or module._forward_hooks or module._forward_pre_hooks or (  # type first: may be None
                    module._backward_hooks or module._backward_pre_hooks):
                return False
        return True

    def _whole_block(self, x: torch.Tensor, residual: torch.Tensor | None, overwrite: bool) -> torch.Tensor | None:
        """The block without gradients as one CPU kernel call (``cpu_kernels.squeeze_excite``),
        where the kernels may run and nothing observes the FCs or the gate (a hook on
        ``gate_act``, as excitation analysis adds, keeps the modules); None otherwise."""
        kernels = cpu_kernels_ready()
        if kernels is None or any_global_module_hook() or not self._children_plain(("fc1", "act", "fc2", "gate_act")):
            return None
        # plain Conv2d children (just checked): ``_parameters`` skips ``Module.__getattr__`` (~1.5 µs a read)
        fc1 = self._modules["fc1"]._parameters  # type: ignore[union-attr]
        fc2 = self._modules["fc2"]._parameters  # type: ignore[union-attr]
        out = x if overwrite and residual is not None else None
        done = kernels.squeeze_excite(x, residual, (fc1["weight"], fc1.get("bias")), (fc2["weight"], fc2.get("bias")),
                                      self.gate_name, out, gates=False)
        return None if done is None else done[0]

    def residual_no_grad(self, u: torch.Tensor, identity: torch.Tensor) -> torch.Tensor | None:
        """``self(u, identity, overwrite=True)`` in one kernel call with fewer checks, for ``resnet._join``
        (which checked the hooks here and on the BN that made ``u``): at batch 1 the checks' Python is
        a measurable part of SE's cost. None where anything else rules the kernel out."""
        wrapped = "forward" in self.__dict__ or type(self).forward is not SqueezeExcitation.forward  # instrumented, subclassed
        if self.impl != "fused" or self.squeeze != "avg" or wrapped:
            return None
        return self._whole_block(u, identity, overwrite=True)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None, overwrite: bool = False) -> torch.Tensor:
        """``s * x``; with ``residual`` (a residual block's folded forward), ``relu(s * x + residual)``.

        ``overwrite`` (the folded forward passes it): ``x`` is the block's own BN output, which
        nothing reads afterwards, so without gradients the result may be written into it, as the
        unfolded block's ``out += identity`` and in-place ReLU do.
        """
        if self.impl == "fused" and self.squeeze == "avg":  # ``impl_used``, spelled out: runs every step
            if overwrite and (self._forward_hooks or self._forward_pre_hooks):
                overwrite = False  # a hook on this block may keep its input: it must see the input
            if not torch.is_grad_enabled():  # CPU: pool, FCs, gate and scale in one kernel call
                whole = self._whole_block(x, residual, overwrite)
                if whole is not None:
                    return whole
            elif fused_enabled(x):
                parameters = list(self.parameters())
                if residual is not None:
                    return scale_add_relu(self._excite_pooled, x, residual, parameters)
                return gated_sum(self._excite_pooled, [x], parameters)
            if not reference_wanted():  # no gradients, or compiled: the forward in one pass
                gate = self._excite_pooled(channel_mean(x))[0]
                if residual is not None:
                    return scale_add_relu_forward(x, gate, residual, overwrite=overwrite)
                return scale_forward(x, gate)
        if residual is not None:
            return torch.relu(self.forward(x) + residual)
        if self.squeeze == "avg":  # same pooling as the fused path (float32 accumulation)
            return x * self._excite_pooled(channel_mean(x))[0]
        return x * self.excitation(x)

    def extra_repr(self) -> str:
        impl = f", impl={self.impl_used}" if self.impl_used != "eager" else ""
        if self.residual_folded:
            impl += ", residual=folded"
        return f"channels={self.channels}, hidden={self.hidden}, squeeze={self.squeeze}, gate={self.gate_name}{impl}"


# --------------------------------------------------------------------------- registration
def _build(spec: BlockSpec, target: Target) -> nn.Module:
    return SqueezeExcitation(
        target.channels,
        ratio=spec.ratio,
        min_hidden=spec.hidden_floor,
        squeeze=spec.squeeze,
        gate=spec.gate,
        bias=spec.bias,
        init=spec.init,
        impl=spec.impl,
    )


def se_params(channels: int, hidden: int | None, spec: BlockSpec) -> int:
    """Two 1x1 convs C -> h -> C (2·C·h weights) plus h + C biases when they are on."""
    h = hidden if hidden is not None else hidden_width(channels, spec.ratio, spec.hidden_floor)
    return 2 * channels * h + ((h + channels) if spec.bias else 0)


def _describe(spec: BlockSpec) -> list[str]:
    parts = [f"r={spec.ratio}", spec.position]
    if spec.squeeze != "avg":
        parts.append(f"squeeze={spec.squeeze}")
    if spec.gate != "sigmoid":
        parts.append(f"gate={spec.gate}")
    if not spec.bias:
        parts.append("no-bias")
    return parts


def _check(spec: BlockSpec) -> None:
    if spec.init == "identity" and not spec.bias:
        raise SecliUsageError(
            "--init identity needs FC biases: without them the gate starts at gate(0)",
            hint="drop --no-bias",
        )


register(
    BlockKind(
        name="se",
        prefix="SE",
        label="Squeeze-and-Excitation",
        build=_build,
        gate="gate_act",
        options=("ratio", "min_hidden", "position", "squeeze", "gate", "bias", "init", "impl"),
        targets="output",
        params=se_params,
        params_formula="2·C·h (+ h + C biases) per site",
        default_min_hidden=1,
        describe=_describe,
        check=_check,
        help="Squeeze-and-Excitation (Hu et al.)",
    )
)
