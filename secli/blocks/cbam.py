"""CBAM, the Convolutional Block Attention Module (Woo, Park, Lee, Kweon; ECCV 2018, arXiv 1807.06521).

    channel:  s = sigmoid(MLP(avgpool(x)) + MLP(maxpool(x)))      one shared MLP C -> C/r -> C
              x' = s * x                                           (N, C, 1, 1) gate
    spatial:  m = sigmoid(BN(conv_kxk([mean_c(x'); max_c(x')])))  k = 7, 2 -> 1 channels, no bias
              out = m * x'                                         (N, 1, H, W) gate

Two kinds: ``cbam`` (both, the paper's module) and ``cbam-channel`` (the channel module alone,
the paper's "channel attention" ablation rows, avg and max pooled). Defaults are the paper's
released code: r = 16, MLP biases on (``--no-bias`` gives timm's ``mlp_bias=False``), a 7x7
spatial conv with batch norm. The layout follows timm's ``CbamModule`` (``channel.fc1``,
``channel.fc2``, ``spatial.conv.conv``, ``spatial.conv.bn``), so its state dict loads as is;
the released code stacks the two channel pools max-first, timm (and this module) mean-first,
the same function up to the order of the conv's two input channels.

The hooked gate is the channel one (``channel.gate``): the spatial gate is one value per
position shared by every channel, which a per-channel analysis cannot hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from secli.blocks.common import check_odd_kernel, hidden_width
from secli.blocks.registry import BlockKind, SiteShape, register

if TYPE_CHECKING:
    from secli.blocks.spec import BlockSpec

SPATIAL_KERNEL = 7


class ChannelGate(nn.Module):
    """CBAM's channel attention: one MLP on the average- and the max-pooled vector, summed."""

    def __init__(self, channels: int, hidden: int, bias: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=bias)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=bias)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.fc2(self.act(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        top = self.fc2(self.act(self.fc1(x.amax(dim=(2, 3), keepdim=True))))
        return x * self.gate(avg + top)


class ConvBN(nn.Module):
    """A bias-free conv and its batch norm (timm's ``ConvNormAct`` without the activation)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SpatialGate(nn.Module):
    """CBAM's spatial attention: a k x k conv over the channel mean and max, one gate per position."""

    def __init__(self, kernel_size: int = SPATIAL_KERNEL) -> None:
        super().__init__()
        self.conv = ConvBN(2, 1, kernel_size)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * self.gate(self.conv(pooled))


class CBAM(nn.Module):
    """CBAM for a (N, C, H, W) tensor (``spatial=False``: the channel module alone)."""

    def __init__(self, channels: int, ratio: int = 16, min_hidden: int = 1, bias: bool = True,
                 kernel_size: int = SPATIAL_KERNEL, spatial: bool = True) -> None:
        super().__init__()
        check_kernel_size(kernel_size)
        self.channels = channels
        self.hidden = hidden_width(channels, ratio, min_hidden)
        self.channel = ChannelGate(channels, self.hidden, bias)
        self.spatial = SpatialGate(kernel_size) if spatial else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.channel(x)
        return self.spatial(x) if self.spatial is not None else x

    def extra_repr(self) -> str:
        side = self.spatial.conv.conv.kernel_size[0] if self.spatial else None
        spatial = f", spatial={side}x{side}" if self.spatial else ""
        return f"channels={self.channels}, hidden={self.hidden}{spatial}"


def check_kernel_size(kernel_size: int) -> None:
    check_odd_kernel(kernel_size, "CBAM's spatial kernel size",
                     "padded by k // 2 so the map keeps its size; the paper uses 7 (3 in its ablation)")


# --------------------------------------------------------------------------- registration
def _build(spec: BlockSpec, site: SiteShape, spatial: bool = True) -> nn.Module:
    return CBAM(site.channels, ratio=spec.ratio, min_hidden=spec.hidden_floor, bias=spec.bias,
                kernel_size=spec.kernel_size or SPATIAL_KERNEL, spatial=spatial)


def channel_params(channels: int, hidden: int | None, spec: BlockSpec) -> int:
    """The shared MLP: 2·C·h weights, plus h + C biases when they are on."""
    h = hidden if hidden is not None else hidden_width(channels, spec.ratio, spec.hidden_floor)
    return 2 * channels * h + ((h + channels) if spec.bias else 0)


def cbam_params(channels: int, hidden: int | None, spec: BlockSpec) -> int:
    """The channel MLP, plus the spatial conv (2·k² weights) and its batch norm (2)."""
    k = spec.kernel_size or SPATIAL_KERNEL
    return channel_params(channels, hidden, spec) + 2 * k * k + 2


def _describe(spec: BlockSpec, spatial: bool = True) -> list[str]:
    parts = [f"r={spec.ratio}"]
    if spatial:
        parts.append(f"{spec.kernel_size or SPATIAL_KERNEL}x{spec.kernel_size or SPATIAL_KERNEL}")
    parts.append(spec.position)
    if not spec.bias:
        parts.append("no-bias")
    return parts


def _check(spec: BlockSpec) -> None:
    if spec.kernel_size is not None:
        check_kernel_size(spec.kernel_size)


register(
    BlockKind(
        name="cbam",
        prefix="CBAM",
        label="Convolutional Block Attention Module",
        build=_build,
        gate="channel.gate",
        options=("ratio", "min_hidden", "position", "bias", "kernel_size"),
        params=cbam_params,
        params_formula="2·C·h (+ h + C biases) + 2·k² + 2 per site",
        default_min_hidden=1,
        describe=_describe,
        check=_check,
        help="CBAM (Woo et al.): channel MLP on avg and max pool, then a 7x7 spatial gate",
        gate_note="CBAM: the channel gate is reported; the spatial gate (one value per position, "
                  "shared by every channel) is left out",
    )
)

register(
    BlockKind(
        name="cbam-channel",
        prefix="CBAMC",
        label="CBAM channel attention only",
        build=lambda spec, site: _build(spec, site, spatial=False),
        gate="channel.gate",
        options=("ratio", "min_hidden", "position", "bias"),
        params=channel_params,
        params_formula="2·C·h (+ h + C biases) per site",
        default_min_hidden=1,
        describe=lambda spec: _describe(spec, spatial=False),
        refusals={"kernel_size": "the channel-only CBAM has no spatial conv; --block cbam has"},
        help="CBAM's channel module alone (avg and max pool, one shared MLP)",
    )
)
