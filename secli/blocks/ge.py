"""Gather-Excite (Hu, Shen, Albanie, Sun, Vedaldi; NeurIPS 2018, arXiv 1810.12348).

A gather ξ_G pools each channel over a spatial extent e (2, 4, 8, or the whole map); an excite
ξ_E resizes the pooled map back to H x W (nearest neighbour) and gates x with its sigmoid:

    ge (GE-θ⁻, parameter-free):  g = avgpool_e(x)      window 2e - 1, stride e, padding e - 1
                                                       (pads not counted); e = global: the mean
    ge-plus (GE-θ⁺):             g = MLP(dwconv_e(x))  log2(e) depth-wise 3x3 convs of stride 2,
                                                       each with batch norm, ReLU between them;
                                                       MLP = 1x1 conv C -> C/r -> C with biases, ReLU
    out = x · resize(sigmoid(g), H x W)

The paper's θ⁻ is the parameter-free one (its abstract: ResNet-50 with GE beats ResNet-101 "with
no additional learnable parameters"); its θ has the depth-wise gather and θ⁺ adds the MLP.
Defaults: ``ge`` at global extent, ``ge-plus`` at extent 8 (the largest the paper tries short of
global) with r = 16. A global
depth-wise gather (one kernel spanning the map, the paper's θ⁺ at global extent) needs the
site's spatial size, which sites do not carry: ``ge-plus --extent 0`` is refused. The layout
is timm's ``GatherExcite`` (``gather.conv1``, ``gather.norm1``, ..., ``mlp.fc1``, ``mlp.fc2``), so
its state dict loads as is.

The gate (``gate``, the sigmoid) runs on the gathered grid, (N, C, ceil(H/e), ceil(W/e)), before
the resize (the same values as timm's resize-then-sigmoid); ``visualize-excitation`` reports
its mean over that grid per channel.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from secli.blocks.common import hidden_width
from secli.blocks.registry import BlockKind, register
from secli.util.errors import SecliUsageError

if TYPE_CHECKING:
    from secli.blocks.spec import BlockSpec

GLOBAL = 0
EXTENTS = (2, 4, 8, 16, 32)  # the paper tries 2, 4, 8 and global


def check_extent(extent: int, allow_global: bool = True) -> None:
    allowed = ((GLOBAL,) if allow_global else ()) + EXTENTS
    if isinstance(extent, bool) or not isinstance(extent, int) or extent not in allowed:
        raise SecliUsageError(
            f"GE extent must be one of {', '.join(map(str, allowed))}" + (" (0: the whole map)" if allow_global else "")
            + f", got {extent!r}",
            hint=None if allow_global else "a global depth-wise gather needs the site's spatial size; "
                                           "--block ge --extent 0 is the parameter-free global GE",
        )


def excite(x: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """x scaled by ``gates`` resized to x's map (nearest neighbour), as the paper's excite."""
    if gates.shape[-1] != 1 or gates.shape[-2] != 1:
        gates = F.interpolate(gates, size=x.shape[-2:], mode="nearest")
    return x * gates


class GatherExcite(nn.Module):
    """GE-θ⁻: average pooling at extent e (0: global), sigmoid, resize, scale. No parameters."""

    def __init__(self, channels: int, extent: int = GLOBAL) -> None:
        super().__init__()
        check_extent(extent)
        self.channels = channels
        self.hidden = None
        self.extent = extent
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.extent
        if e == GLOBAL:
            gathered = x.mean(dim=(2, 3), keepdim=True)
        else:
            gathered = F.avg_pool2d(x, kernel_size=2 * e - 1, stride=e, padding=e - 1, count_include_pad=False)
        return excite(x, self.gate(gathered))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, extent={self.extent or 'global'}"


class ExciteMlp(nn.Module):
    """The θ⁺ excite's 1x1 conv bottleneck (timm's ``ConvMlp`` layout: fc1, act, fc2)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class GatherExcitePlus(nn.Module):
    """GE-θ⁺: strided depth-wise gather at extent e, 1x1 MLP, sigmoid, resize, scale."""

    def __init__(self, channels: int, extent: int = 8, ratio: int = 16, min_hidden: int = 1) -> None:
        super().__init__()
        check_extent(extent, allow_global=False)
        self.channels = channels
        self.extent = extent
        self.hidden = hidden_width(channels, ratio, min_hidden)
        convs = int(math.log2(extent))
        self.gather = nn.Sequential()
        for i in range(1, convs + 1):
            self.gather.add_module(f"conv{i}",
                                   nn.Conv2d(channels, channels, 3, stride=2, padding=1, groups=channels, bias=False))
            self.gather.add_module(f"norm{i}", nn.BatchNorm2d(channels))
            if i != convs:
                self.gather.add_module(f"act{i}", nn.ReLU(inplace=True))
        self.mlp = ExciteMlp(channels, self.hidden)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return excite(x, self.gate(self.mlp(self.gather(x))))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, hidden={self.hidden}, extent={self.extent}"


# --------------------------------------------------------------------------- registration
PLUS_EXTENT = 8


def _extent(spec: BlockSpec, default: int) -> int:
    return default if spec.extent is None else spec.extent


def plus_params(channels: int, hidden: int | None, spec: BlockSpec) -> int:
    """log2(e) depth-wise 3x3 convs (9C) with batch norm (2C), then the MLP 2·C·h + h + C."""
    h = hidden if hidden is not None else hidden_width(channels, spec.ratio, spec.hidden_floor)
    convs = int(math.log2(_extent(spec, PLUS_EXTENT)))
    return convs * 11 * channels + 2 * channels * h + h + channels


def _label(extent: int) -> str:
    return "extent=global" if extent == GLOBAL else f"extent={extent}"


def _check(spec: BlockSpec, allow_global: bool) -> None:
    if spec.extent is not None:
        check_extent(spec.extent, allow_global)


NOTE = ("{prefix}: at an extent other than global the gate is one value per region of the gathered grid; its mean "
        "over the grid per channel is reported, the spatial pattern left out")

register(
    BlockKind(
        name="ge",
        prefix="GE",
        label="Gather-Excite theta-minus (parameter-free)",
        build=lambda spec, site: GatherExcite(site.channels, _extent(spec, GLOBAL)),
        gate="gate",
        options=("extent", "position"),
        params=lambda channels, hidden, spec: 0,
        params_formula="0 (parameter-free)",
        describe=lambda spec: ["theta-", _label(_extent(spec, GLOBAL)), spec.position],
        check=lambda spec: _check(spec, True),
        help="Gather-Excite theta-minus (Hu et al.): average-pool gather at extent 2/4/8/global, sigmoid, resize",
        gate_note=NOTE.format(prefix="GE"),
    )
)

register(
    BlockKind(
        name="ge-plus",
        prefix="GEP",
        label="Gather-Excite theta-plus",
        build=lambda spec, site: GatherExcitePlus(site.channels, _extent(spec, PLUS_EXTENT), spec.ratio,
                                                  spec.hidden_floor),
        gate="gate",
        options=("extent", "ratio", "min_hidden", "position"),
        params=plus_params,
        params_formula="log2(e)·11·C + 2·C·h + h + C per site",
        default_min_hidden=1,
        describe=lambda spec: ["theta+", _label(_extent(spec, PLUS_EXTENT)), f"r={spec.ratio}", spec.position],
        check=lambda spec: _check(spec, False),
        help="Gather-Excite theta-plus (Hu et al.): depth-wise strided gather at extent 2/4/8, 1x1 "
             "MLP, sigmoid, resize",
        gate_note=NOTE.format(prefix="GEP"),
    )
)
