"""SimAM, a parameter-free attention module (Yang, Zhang, Li, Xie; "SimAM: A Simple, Parameter-Free
Attention Module for Convolutional Neural Networks", ICML 2021).

Each neuron's weight is the inverse of its minimal energy against the other neurons of its
channel, in closed form (the paper's eq. 5 and its code):

    d = (x - mean_HW(x))²                       per position, per channel
    v = sum_HW(d) / n,  n = H·W - 1             the channel's variance (unbiased)
    e = d / (4 · (v + λ)) + 0.5                 λ = 1e-4
    out = x · sigmoid(e)

On a 1x1 map d is 0 and the paper's n is 0; n = max(H·W - 1, 1) there gives e = 0.5 instead of
NaN (the only difference from the released code). No parameters. The gate is one value per
position and channel, (N, C, H, W); ``gate`` is its sigmoid, and ``visualize-excitation`` reports
its mean over the positions of each channel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from secli.blocks.registry import BlockKind, SiteShape, register

if TYPE_CHECKING:
    from secli.blocks.spec import BlockSpec

LAMBDA = 1e-4


class SimAM(nn.Module):
    """SimAM for a (N, C, H, W) tensor; returns a tensor of the same shape."""

    def __init__(self, channels: int, lam: float = LAMBDA) -> None:
        super().__init__()
        self.channels = channels
        self.hidden = None
        self.lam = lam
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = max(x.shape[2] * x.shape[3] - 1, 1)  # a 1x1 map (d = 0): e = 0.5, not the paper's 0 / 0
        d = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
        energy = d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + self.lam)) + 0.5
        return x * self.gate(energy)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, lambda={self.lam:g}"


def _build(spec: BlockSpec, site: SiteShape) -> nn.Module:
    return SimAM(site.channels)


register(
    BlockKind(
        name="simam",
        prefix="SIMAM",
        label="SimAM (parameter-free energy gate)",
        build=_build,
        gate="gate",
        options=("position",),
        params=lambda channels, hidden, spec: 0,
        params_formula="0 (parameter-free)",
        describe=lambda spec: [f"lambda={LAMBDA:g}", spec.position],
        help="SimAM (Yang et al.): parameter-free energy gate per position, lambda 1e-4",
        gate_note="SIMAM: the gate is one value per position; its mean over the positions of each channel "
                  "is reported, its spatial pattern left out",
    )
)
