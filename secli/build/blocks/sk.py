"""Selective Kernel convolution (Li et al.): split, fuse, select.

    split:  U_m = ReLU(BN(conv3x3_dilation=m(X)))   m = 1..M, grouped, same stride on every path
    fuse:   U = sum_m U_m;  s = GAP(U);  z = ReLU(BN(W s)),  W: C -> d = max(C // r, L)
    select: a = softmax over paths of (A_m z), per channel;  V = sum_m a_m * U_m

The "5x5" path of the paper is a 3x3 kernel with dilation 2 (as in the authors' release), so
the M paths differ only in receptive field, not in parameter count. FCs carry no bias.
The per-path attention goes through ``attn_softmax`` so analysis code can hook it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from secli.build.blocks.se import hidden_width
from secli.build.registry import BlockKind, register
from secli.util.errors import SecliUsageError

if TYPE_CHECKING:
    from secli.build.architectures.base import Target
    from secli.build.spec import BlockSpec


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
    ) -> None:
        super().__init__()
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

    def attention(self, fused: torch.Tensor) -> torch.Tensor:
        """Per-path, per-channel weights (N, M, C, 1, 1) from the fused map U (N, C, H, W)."""
        z = self.fc(fused.mean(dim=(2, 3), keepdim=True))
        logits = self.select(z).view(fused.shape[0], self.num_paths, self.channels, 1, 1)
        return self.attn_softmax(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([path(x) for path in self.paths], dim=1)
        attn = self.attention(feats.sum(dim=1))
        return (feats * attn).sum(dim=1)

    def extra_repr(self) -> str:
        return f"paths={self.num_paths}, groups={self.groups}, hidden={self.hidden}"


# --------------------------------------------------------------------------- registration
def _build(spec: BlockSpec, target: Target) -> nn.Module:
    return SelectiveKernel(
        target.in_channels or target.channels,
        target.channels,
        stride=target.stride,
        paths=spec.paths,
        groups=spec.groups,
        ratio=spec.ratio,
        min_hidden=spec.hidden_floor,
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
        options=("ratio", "min_hidden", "paths", "groups"),
        targets="conv3x3",
        params=None,  # depends on the replaced conv's input width, which sites do not record
        default_min_hidden=32,  # the paper's L
        paths_attr="num_paths",
        describe=_describe,
        refusals={"position": "SK always replaces the 3x3 convolutions"},
        help="Selective Kernel (Li et al.); replaces 3x3 convs",
    )
)
