"""Squeeze-and-Excitation (Hu et al.), with the variants the paper's ablations use.

    z = squeeze(U)                      avg or max over H x W (Table 11), or none (Table 16)
    s = gate(W2 . ReLU(W1 . z))         W1: C -> C/r, W2: C/r -> C; sigmoid/tanh/relu (Table 12)
    out = s * U                         channel-wise scale

The FCs are 1x1 convolutions so that the same module also serves the "no squeeze" variant,
where the excitation runs at every position of the full feature map with the same parameter
count. The gate is its own submodule, ``gate_act``, so analysis code reads the excitation with
a forward hook there; the block itself stores nothing.

``impl="fused"`` (the avg squeeze only) hands each call to ``secli.kernels.se_path`` first,
which runs the same modules on a fast path (x read once to pool and once to scale; a backward
without the product tensor) or returns None, and then this module's eager composition runs.
The parameters and the state_dict are the same for both implementations; ``impl_used`` says
which one a block runs (max and no squeeze are eager). At the standard position of a ResNet
block the block's forward passes its identity in (``forward(x, residual)``) and the block
returns ``relu(s * x + identity)`` (``secli.kernels.fold``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from secli.blocks.common import gate_inverse, gate_module, hidden_width
from secli.blocks.registry import BlockKind, SiteShape, register
from secli.kernels import se_path
from secli.kernels.aten_ops import channel_mean
from secli.util.errors import SecliUsageError
from secli.util.vocabulary import IMPLS, SQUEEZES

if TYPE_CHECKING:
    from secli.blocks.spec import BlockSpec

#: Gate value an ``init="identity"`` block starts at: close enough to 1 that a pretrained
#: network keeps its outputs (see tests), far enough from saturation that gradients still flow.
IDENTITY_GATE_VALUE = 0.999


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
        self.gate_act = gate_module(gate)
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
            self.fc2.bias.fill_(gate_inverse(self.gate_name, value))

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

    def residual_no_grad(self, u: torch.Tensor, identity: torch.Tensor) -> torch.Tensor | None:
        """``self(u, identity, overwrite=True)`` in one kernel call with fewer checks, for ``fold._join``
        (which checked the hooks here and on the BN that made ``u``): at batch 1 the checks' Python is
        a measurable part of SE's cost. None where anything else rules the kernel out."""
        # instrumented, subclassed
        wrapped = "forward" in self.__dict__ or type(self).forward is not SqueezeExcitation.forward
        if self.impl != "fused" or self.squeeze != "avg" or wrapped:
            return None
        return se_path.whole_block(self, u, identity, overwrite=True)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None, overwrite: bool = False) -> torch.Tensor:
        """``s * x``; with ``residual`` (a residual block's folded forward), ``relu(s * x + residual)``.

        ``overwrite`` (the folded forward passes it): ``x`` is the block's own BN output, which
        nothing reads afterwards, so without gradients the result may be written into it, as the
        unfolded block's ``out += identity`` and in-place ReLU do.
        """
        if self.impl == "fused" and self.squeeze == "avg":  # ``impl_used``, spelled out: runs every step
            fast = se_path.fused_forward(self, x, residual, overwrite)
            if fast is not None:
                return fast
        if residual is not None:
            return torch.relu(self.forward(x) + residual)
        if self.squeeze == "avg":  # same pooling as the fused path (float32 accumulation)
            return x * se_path.gates_of_pooled(self, channel_mean(x))[0]
        return x * self.excitation(x)

    def extra_repr(self) -> str:
        impl = f", impl={self.impl_used}" if self.impl_used != "eager" else ""
        if self.residual_folded:
            impl += ", residual=folded"
        return f"channels={self.channels}, hidden={self.hidden}, squeeze={self.squeeze}, gate={self.gate_name}{impl}"


# --------------------------------------------------------------------------- registration
def _build(spec: BlockSpec, site: SiteShape) -> nn.Module:
    return SqueezeExcitation(
        site.channels,
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
