"""FcaNet's multi-spectral channel attention (Qin, Zhang, Wu, Li; "FcaNet: Frequency Channel Attention
Networks", ICCV 2021, arXiv 2012.11879).

SE's global average pooling is the lowest (0, 0) coefficient of a 2-D DCT. FcaNet splits the
channels into k equal groups and pools group i with the DCT basis of frequency (u_i, v_i):

    B_u,v(h, w) = b_u(h, H) · b_v(w, W),   b_f(p, P) = cos(π f (p + 1/2) / P) / √P  (· √2 if f > 0)
    z_c = sum_hw x_c(h, w) · B_{u_i, v_i}(h, w)          c in group i
    s = sigmoid(W_2 · ReLU(W_1 · z))                     W_1: C -> C/r, W_2: C/r -> C, no biases
    out = s · x

The paper's defaults: k = 16 frequencies, the first 16 of its "top" ranking (measured one
frequency at a time on a 7x7 grid), r = 16, FCs without biases; the filter is fixed, not learned
(a buffer computed from the map's size, so no parameter and no state). The released code sizes
its filter to each stage's map at 224 px (56, 28, 14, 7) and scales the 7x7 frequencies to it
(f · H / 7); any other map is first average-pooled to its filter's size. Here the filter is the
map's own where H and W are multiples of 7 (so every ResNet stage at 224 px gets exactly the
released filter), and other maps are pooled to 7x7 first, the released code's own fallback.
C must be a multiple of k. The gate (``gate``) is SE's, one value per channel.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from secli.blocks.common import hidden_width
from secli.blocks.registry import BlockKind, SiteShape, register
from secli.util.errors import SecliUsageError

if TYPE_CHECKING:
    from secli.blocks.spec import BlockSpec

#: The paper's frequency ranking on a 7x7 grid (u along H, v along W), best first.
TOP_U = (0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2, 4, 6, 3, 5, 5, 2, 6, 5, 5, 3, 3, 4, 2, 2, 6, 1)
TOP_V = (0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2, 6, 3, 3, 3, 5, 1, 1, 2, 4, 2, 1, 1, 3, 0, 5, 3)
FREQUENCY_COUNTS = (1, 2, 4, 8, 16, 32)
GRID = 7


def dct_basis(freq: int, size: int) -> np.ndarray:
    """b_f(p, P) for p = 0..P-1: the orthonormal DCT-II basis vector of frequency ``freq``."""
    p = np.arange(size, dtype=np.float64)
    values = np.cos(math.pi * freq * (p + 0.5) / size) / math.sqrt(size)
    return values * math.sqrt(2) if freq else values


def dct_filter(channels: int, height: int, width: int, frequencies: int) -> np.ndarray:
    """(C, H, W): group i of C / k channels gets frequency (u_i, v_i) of the ranking, scaled by H / 7."""
    out = np.zeros((channels, height, width))
    part = channels // frequencies
    for i, (u, v) in enumerate(zip(TOP_U[:frequencies], TOP_V[:frequencies])):
        out[i * part:(i + 1) * part] = np.outer(dct_basis(u * (height // GRID), height),
                                                dct_basis(v * (width // GRID), width))
    return out


def check_frequencies(frequencies: int, channels: int | None = None) -> None:
    if isinstance(frequencies, bool) or frequencies not in FREQUENCY_COUNTS:
        raise SecliUsageError("FcaNet frequencies must be one of "
                              f"{', '.join(map(str, FREQUENCY_COUNTS))}, got {frequencies!r}",
                              hint="the paper's top-k settings; 16 is its default")
    if channels is not None and channels % frequencies:
        raise SecliUsageError(f"FcaNet splits the channels into {frequencies} equal groups; a site "
                              f"has {channels} channels",
                              hint=f"use --frequencies with a divisor of {channels}")


class MultiSpectralAttention(nn.Module):
    """FcaNet's attention for a (N, C, H, W) tensor; returns a tensor of the same shape."""

    def __init__(self, channels: int, frequencies: int = 16, ratio: int = 16, min_hidden: int = 1) -> None:
        super().__init__()
        check_frequencies(frequencies, channels)
        self.channels = channels
        self.frequencies = frequencies
        self.hidden = hidden_width(channels, ratio, min_hidden)
        self.fc1 = nn.Linear(channels, self.hidden, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(self.hidden, channels, bias=False)
        self.gate = nn.Sigmoid()
        self._filters: dict[tuple[int, int, str, torch.dtype], torch.Tensor] = {}

    def filter_for(self, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
        """The fixed DCT filter for an (H, W) map, computed once per size, device and dtype."""
        key = (height, width, str(like.device), like.dtype)
        if key not in self._filters:
            values = dct_filter(self.channels, height, width, self.frequencies)
            with torch.inference_mode(False):  # a normal tensor: a training step may save it for backward
                self._filters[key] = torch.from_numpy(values).to(device=like.device, dtype=like.dtype)
        return self._filters[key]

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """The multi-spectral pooling z, shape (N, C)."""
        h, w = x.shape[2:]
        if h % GRID or w % GRID:
            x = F.adaptive_avg_pool2d(x, (GRID, GRID))
            h = w = GRID
        return (x * self.filter_for(h, w, x)).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        s = self.gate(self.fc2(self.act(self.fc1(self.pool(x)))).view(n, c, 1, 1))
        return x * s

    def extra_repr(self) -> str:
        return f"channels={self.channels}, hidden={self.hidden}, frequencies={self.frequencies}"


# --------------------------------------------------------------------------- registration
def _build(spec: BlockSpec, site: SiteShape) -> nn.Module:
    return MultiSpectralAttention(site.channels, spec.frequencies, spec.ratio, spec.hidden_floor)


def fca_params(channels: int, hidden: int | None, spec: BlockSpec) -> int:
    """Two bias-free FCs, 2·C·h (the DCT filter is fixed: a computed constant, no parameter)."""
    h = hidden if hidden is not None else hidden_width(channels, spec.ratio, spec.hidden_floor)
    return 2 * channels * h


register(
    BlockKind(
        name="fca",
        prefix="FCA",
        label="FcaNet multi-spectral attention",
        build=_build,
        gate="gate",
        options=("frequencies", "ratio", "min_hidden", "position"),
        params=fca_params,
        params_formula="2·C·h per site",
        default_min_hidden=1,
        describe=lambda spec: [f"top{spec.frequencies}", f"r={spec.ratio}", spec.position],
        check=lambda spec: check_frequencies(spec.frequencies),
        refusals={"bias": "FcaNet's FCs have no biases (the paper's code)"},
        help="FcaNet (Qin et al.): multi-spectral DCT pooling (top-16 frequencies), SE's excitation",
    )
)
