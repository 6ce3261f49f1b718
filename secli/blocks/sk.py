"""Selective Kernel convolution (Li et al.): split, fuse, select.

    split:  U_m = ReLU(BN(conv3x3_dilation=m(X)))   m = 1..M, grouped, same stride on every path
    fuse:   U = sum_m U_m;  s = GAP(U);  z = ReLU(BN(W s)),  W: C -> d = max(C // r, L)
    select: a = softmax over paths of (A_m z), per channel;  V = sum_m a_m * U_m

The "5x5" path of the paper is a 3x3 kernel with dilation 2 (as in the authors' release), so
the M paths differ only in receptive field, not in parameter count. FCs carry no bias.
The per-path attention goes through ``attn_softmax`` so analysis code can hook it.

Both implementations pool U as the sum of the paths' means (GAP is linear: the same value, and
U itself is never formed), so the composition ``complexity`` counts is the one that runs.
``impl="fused"`` never stacks the paths (``secli.kernels.sk_path``): the attention-weighted sum
and its backward run in ``secli.kernels.gated_sum`` (no (N, M, C, H, W) tensor, forward or
backward). The eager implementation stacks the paths for the weighted sum, as written above;
both have the same parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from secli.blocks.common import hidden_width
from secli.blocks.registry import BlockKind, SiteShape, register
from secli.kernels import sk_path
from secli.util.errors import SecliUsageError
from secli.util.vocabulary import IMPLS

if TYPE_CHECKING:
    from secli.blocks.spec import BlockSpec


class SelectiveKernel(nn.Module):
    """Replaces a 3x3 convolution (+ its BN and ReLU) of ``in_channels -> out_channels``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        paths: int = 2,
        groups: int = 32,
        ratio: int = 16,
        min_hidden: int = 32,
        impl: str = "fused",
    ) -> None:
        super().__init__()
        if impl not in IMPLS:
            raise SecliUsageError(f"unknown impl {impl!r}; choose one of: {', '.join(IMPLS)}")
        self.impl = impl
        if paths < 1:
            raise SecliUsageError(f"SK needs at least one path, got {paths}")
        if in_channels % groups or out_channels % groups:
            raise SecliUsageError(
                f"SK groups={groups} does not divide the {in_channels}->{out_channels} channels of a site",
                hint="pick --groups that divides every 3x3 conv width (e.g. 1, 8 or 32)",
            )
        self.in_channels = in_channels
        self.channels = out_channels
        self.num_paths = paths
        self.groups = groups
        self.hidden = hidden_width(out_channels, ratio, min_hidden)
        self.paths = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(
                    in_channels,
                    out_channels,
                    kernel_size=3,
                    stride=stride,
                    padding=dilation,
                    dilation=dilation,
                    groups=groups,
                    bias=False,
                ),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            )
            for dilation in range(1, paths + 1)
        )
        self.fc = nn.Sequential(
            nn.Conv2d(out_channels, self.hidden, kernel_size=1, bias=False),
            nn.BatchNorm2d(self.hidden),
            nn.ReLU(inplace=True),
        )
        self.select = nn.Conv2d(self.hidden, out_channels * paths, kernel_size=1, bias=False)
        self.attn_softmax = nn.Softmax(dim=1)

    @property
    def impl_used(self) -> str:
        return self.impl

    def attention(self, fused: torch.Tensor) -> torch.Tensor:
        """Per-path, per-channel weights (N, M, C, 1, 1) from the fused map U (N, C, H, W)."""
        return self._attention_pooled(fused.mean(dim=(2, 3), keepdim=True))

    def _attention_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        logits = self.select(self.fc(pooled)).view(pooled.shape[0], self.num_paths, self.channels, 1, 1)
        return self.attn_softmax(logits)

    def _excite_pooled(self, pooled: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self._attention_pooled(pooled).unbind(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [path(x) for path in self.paths]
        if self.impl == "fused":
            fast = sk_path.fused_forward(self, feats)
            if fast is not None:
                return fast
        stacked = torch.stack(feats, dim=1)
        attn_stacked = self._attention_pooled(sk_path.pooled_paths(feats))  # GAP(sum U_m) = sum GAP(U_m)
        return (stacked * attn_stacked).sum(dim=1)

    def extra_repr(self) -> str:
        impl = f", impl={self.impl}" if self.impl != "eager" else ""
        return f"paths={self.num_paths}, groups={self.groups}, hidden={self.hidden}{impl}"


# --------------------------------------------------------------------------- registration
def _build(spec: BlockSpec, site: SiteShape) -> nn.Module:
    return SelectiveKernel(
        site.in_channels or site.channels,
        site.channels,
        stride=site.stride,
        paths=spec.paths,
        groups=spec.groups,
        ratio=spec.ratio,
        min_hidden=spec.hidden_floor,
        impl=spec.impl,
    )


def _describe(spec: BlockSpec) -> list[str]:
    return [f"r={spec.ratio}", f"M={spec.paths}", f"G={spec.groups}", f"L={spec.hidden_floor}"]


register(
    BlockKind(
        name="sk",
        prefix="SK",
        label="Selective Kernel",
        build=_build,
        gate="attn_softmax",
        options=("ratio", "min_hidden", "paths", "groups", "impl"),
        targets="conv3x3",
        params=None,  # depends on the replaced conv's input width, which sites do not record
        default_min_hidden=32,  # the paper's L
        paths_attr="num_paths",
        describe=_describe,
        refusals={"position": "SK always replaces the 3x3 convolutions"},
        help="Selective Kernel (Li et al.); replaces 3x3 convs",
    )
)
