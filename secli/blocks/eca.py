"""Efficient Channel Attention (Wang et al., "ECA-Net", CVPR 2020).

    y = GAP(x)                              (N, C)
    s = sigmoid(conv1d_k(y))                one k-tap filter slid across the channels, no bias
    out = s * x

ECA drops SE's two FCs and their reduction: each channel's gate looks at its k neighbours
only, so a site costs k parameters whatever its width. The paper picks k from C:

    t = int(|(log2(C) + b) / gamma|),  k = t if t is odd else t + 1,   gamma = 2, b = 1

(C = 64 -> 3, 128..512 -> 5, 2048 -> 7). timm's ``EcaModule`` also raises k to at least 3;
the two agree for every C >= 8, which covers every network secli knows. The layout follows
timm's (``conv`` a ``Conv1d(1, 1, k)``, ``gate`` the sigmoid) so its state dict loads as is.
The gate runs on the (N, C, 1, 1) view, so a forward hook on ``gate`` reads the excitation in
the same shape as SE's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from secli.blocks.common import check_odd_kernel
from secli.blocks.registry import BlockKind, SiteShape, register
from secli.util.errors import SecliUsageError

if TYPE_CHECKING:
    from secli.blocks.spec import BlockSpec

GAMMA = 2
B = 1


def eca_kernel_size(channels: int, gamma: float = GAMMA, b: float = B) -> int:
    """The paper's adaptive kernel size for ``channels`` (always odd)."""
    if channels < 1:
        raise SecliUsageError(f"ECA needs at least one channel, got {channels}")
    t = int(abs((math.log2(channels) + b) / gamma))  # log2, not log(C, 2): exact for powers of two
    return t if t % 2 else t + 1


def check_kernel_size(kernel_size: int) -> None:
    check_odd_kernel(kernel_size, "ECA kernel size", "the 1-D conv is padded by (k - 1) // 2 on each side so C stays C")


class EfficientChannelAttention(nn.Module):
    """An ECA block for a (N, C, H, W) tensor; returns a tensor of the same shape."""

    def __init__(self, channels: int, kernel_size: int | None = None) -> None:
        super().__init__()
        k = eca_kernel_size(channels) if kernel_size is None else kernel_size
        check_kernel_size(k)
        self.channels = channels
        self.kernel_size = k
        self.hidden = None  # no reduction: sites record no hidden width
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)
        self.gate = nn.Sigmoid()

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The gate values s, shape (N, C, 1, 1)."""
        n, c = x.shape[:2]
        y = self.conv(x.mean(dim=(2, 3)).view(n, 1, c))
        return self.gate(y.view(n, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.excitation(x)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}"


# --------------------------------------------------------------------------- registration
def _build(spec: BlockSpec, site: SiteShape) -> nn.Module:
    return EfficientChannelAttention(site.channels, kernel_size=spec.kernel_size)


def eca_params(channels: int, hidden: int | None, spec: BlockSpec) -> int:
    """k weights per site: one shared 1-D filter, no bias."""
    return eca_kernel_size(channels) if spec.kernel_size is None else spec.kernel_size


def _describe(spec: BlockSpec) -> list[str]:
    return [f"k={spec.kernel_size}" if spec.kernel_size is not None else "k=adaptive", spec.position]


def _check(spec: BlockSpec) -> None:
    if spec.kernel_size is not None:
        check_kernel_size(spec.kernel_size)


register(
    BlockKind(
        name="eca",
        prefix="ECA",
        label="Efficient Channel Attention",
        build=_build,
        gate="gate",
        options=("position", "kernel_size"),
        targets="output",
        params=eca_params,
        params_formula="k per site",
        describe=_describe,
        check=_check,
        refusals={"ratio": "ECA has no reduction; its 1-D conv has k weights"},
        help="Efficient Channel Attention (Wang et al.); k-tap 1-D conv across channels",
    )
)
