"""Global context block (Cao, Xu, Lin, Wei, Hu; "GCNet: Non-local Networks Meet Squeeze-Excitation
Networks and Beyond", ICCVW 2019 / TPAMI 2020, arXiv 1904.11492).

    a = softmax_HW(W_k · x)                      attention pooling: a 1x1 conv C -> 1 (with bias),
    c = sum_j a_j · x_j                          one softmax over the H·W positions, (N, C, 1, 1)
    t = W_2 · ReLU(LN(W_1 · c))                  bottleneck C -> C/r -> C, LayerNorm over C/r, biases
    out = x + t                                  fusion by addition, broadcast over H x W

The paper's defaults: r = 16 (its ablations; r = 4 in its detection models, ``--ratio 4``),
addition fusion, the last conv initialised to zero (the block starts as the identity). The
layout is timm's ``GlobalContext(fuse_add=True, fuse_scale=False)`` (``conv_attn``,
``mlp_add.fc1``, ``mlp_add.norm``, ``mlp_add.fc2``), so its state dict loads as is.

GC has no multiplicative gate: its per-channel output is the term ``t`` added at every position.
``mlp_add`` is hooked as the gate: the analysis reads t (one value per channel), whose
"no gate" value is 0, not 1 (``identity_value``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from secli.blocks.common import hidden_width
from secli.blocks.registry import BlockKind, SiteShape, register

if TYPE_CHECKING:
    from secli.blocks.spec import BlockSpec


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of a (N, C, 1, 1) context (the paper's LayerNorm([C/r, 1, 1]);
    weights of shape (C,) as timm's LayerNorm2d keeps them)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        return F.layer_norm(x.reshape(n, c), (c,), self.weight, self.bias, self.eps).view_as(x)


class ContextTransform(nn.Module):
    """The bottleneck transform of the pooled context: its output is added to every position."""

    #: what visualize-excitation's histograms span, and the value that removes the block (--ablate)
    gate_range = (-1.0, 1.0)
    identity_value = 0.0

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.norm = ChannelLayerNorm(hidden)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.norm(self.fc1(x))))


class GlobalContext(nn.Module):
    """A GC block for a (N, C, H, W) tensor; returns a tensor of the same shape."""

    def __init__(self, channels: int, ratio: int = 16, min_hidden: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.hidden = hidden_width(channels, ratio, min_hidden)
        self.conv_attn = nn.Conv2d(channels, 1, kernel_size=1)
        self.mlp_add = ContextTransform(channels, self.hidden)
        nn.init.kaiming_normal_(self.conv_attn.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.mlp_add.fc2.weight)  # the paper's last-zero init: the block starts as x
        nn.init.zeros_(self.mlp_add.fc2.bias)  # type: ignore[arg-type]  # a conv built with bias=True

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """The attention-pooled context, (N, C, 1, 1)."""
        n, c, h, w = x.shape
        attn = torch.softmax(self.conv_attn(x).reshape(n, 1, h * w), dim=-1).unsqueeze(3)  # (N, 1, HW, 1)
        return (x.reshape(n, c, h * w).unsqueeze(1) @ attn).view(n, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp_add(self.context(x))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, hidden={self.hidden}, fusion=add"


# --------------------------------------------------------------------------- registration
def _build(spec: BlockSpec, site: SiteShape) -> nn.Module:
    return GlobalContext(site.channels, ratio=spec.ratio, min_hidden=spec.hidden_floor)


def gc_params(channels: int, hidden: int | None, spec: BlockSpec) -> int:
    """Attention conv C + 1, fc1 C·h + h, LayerNorm 2h, fc2 h·C + C: 2·C·h + 3h + 2C + 1."""
    h = hidden if hidden is not None else hidden_width(channels, spec.ratio, spec.hidden_floor)
    return 2 * channels * h + 3 * h + 2 * channels + 1


register(
    BlockKind(
        name="gc",
        prefix="GC",
        label="Global context block",
        build=_build,
        gate="mlp_add",
        options=("ratio", "min_hidden", "position"),
        params=gc_params,
        params_formula="2·C·h + 3h + 2C + 1 per site",
        default_min_hidden=1,
        describe=lambda spec: [f"r={spec.ratio}", spec.position],
        refusals={"bias": "GC's convs always have biases (the paper's code)"},
        help="Global context (Cao et al.): attention pooling, bottleneck with LayerNorm, added",
        gate_note="GC: its channel term is added at every position, not multiplied; the value reported is "
                  "that term (histogram -1 to 1, values beyond in the end bins; 'saturation' does not apply; "
                  "--ablate's no gate sets it to 0); the attention pooling's weights over positions are left out",
    )
)
