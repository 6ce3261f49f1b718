"""A built-in labelled image set: ten classes of shapes and textures, drawn on the fly.

Every image is drawn from ``(seed, index)`` alone, so the same index is the same image on
every machine and in every worker, and nothing has to be downloaded: tests, demos and a CPU
training run all work offline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch.utils.data import Dataset

from secli.data.preprocess import IMAGENET_MEAN, IMAGENET_STD
from secli.util.errors import SecliUsageError

SYNTHETIC = "synthetic"
SYNTHETIC_SIZE = 48  # px; small enough to train on a CPU in minutes
SYNTHETIC_CLASSES = (
    "disk", "square", "triangle", "ring", "cross",
    "h_stripes", "v_stripes", "checker", "diag_stripes", "dots",
)
#: Index offsets of the synthetic splits, so training, validation and analysis never share images.
SYNTHETIC_SPLITS = {"train": 0, "val": 10_000_000, "test": 20_000_000}


class GeneratedImages(Dataset):
    """Labelled images drawn on the fly from (seed, split, index): image ``i`` has label
    ``i % len(classes)``, normalised with ``mean``/``std``. Subclasses say which classes, how an
    image is drawn (``render(label, size, seed)``) and the smallest size that still shows them.
    """

    classes: ClassVar[list[str]]
    name = "generated"
    min_size = 8
    min_size_why = ""

    @staticmethod
    def render(label: int, size: int, seed: int) -> torch.Tensor:
        raise NotImplementedError

    def __init__(
        self,
        length: int,
        size: int = 64,
        seed: int = 0,
        split: str = "test",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        if length < 1:
            raise SecliUsageError(f"the {self.name} dataset needs at least 1 image, got {length}")
        if size < self.min_size:
            raise SecliUsageError(f"{self.name} images must be at least {self.min_size} "
                                  f"px{self.min_size_why}, got {size}")
        self.length = length
        self.size = size
        self.seed = seed
        self.offset = SYNTHETIC_SPLITS[split]
        self.targets = [i % len(self.classes) for i in range(length)]
        self._mean = torch.tensor(mean).view(3, 1, 1)
        self._std = torch.tensor(std).view(3, 1, 1)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = index % len(self.classes)
        image = type(self).render(label, self.size, self.seed * 1_000_003 + self.offset + index)
        return (image - self._mean) / self._std, label


class SyntheticShapes(GeneratedImages):
    """Ten classes of shapes and textures, image ``i`` has label ``i % 10``, drawn from (seed, i).

    Shape classes (disk, square, triangle, ring, cross) vary in size (radius 0.3-0.7 of the
    half-width), position, colour and rotation; texture classes (stripes in three directions,
    checkerboard, dots) vary in period, phase and colour. Gaussian noise is added to every image.
    """

    classes: ClassVar[list[str]] = list(SYNTHETIC_CLASSES)
    name = SYNTHETIC
    min_size = 8

    @staticmethod
    def render(label: int, size: int, seed: int) -> torch.Tensor:
        return render_synthetic(label, size, seed)


def _frac(t: torch.Tensor) -> torch.Tensor:
    """The fractional part in [0, 1), also for negative numbers (``torch.frac`` keeps the sign)."""
    return t - torch.floor(t)


def render_synthetic(label: int, size: int, seed: int) -> torch.Tensor:
    """One (3, size, size) image in [0, 1] of class ``label``, fully determined by ``seed``."""
    g = torch.Generator().manual_seed(seed)

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=g))

    bg = torch.rand(3, generator=g)
    fg = torch.rand(3, generator=g)
    if float((fg - bg).abs().sum()) < 0.6:
        fg = 1.0 - bg
    coords = torch.linspace(-1.0, 1.0, size)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    radius = uniform(0.3, 0.7)
    cx, cy = uniform(-0.25, 0.25), uniform(-0.25, 0.25)
    angle = uniform(0.0, 2 * math.pi) if label in (1, 2, 4) else 0.0
    x0, y0 = xx - cx, yy - cy
    u = (x0 * math.cos(angle) + y0 * math.sin(angle)) / radius
    v = (-x0 * math.sin(angle) + y0 * math.cos(angle)) / radius
    r = torch.sqrt(u * u + v * v)
    period = uniform(0.15, 0.45)  # texture period, in half-widths
    phase = uniform(0.0, 1.0)
    if label == 0:
        mask = r < 1.0
    elif label == 1:
        mask = torch.maximum(u.abs(), v.abs()) < 0.8
    elif label == 2:
        mask = (v > -0.9) & (u.abs() < (v + 0.9) * 0.6) & (v < 0.8)
    elif label == 3:
        mask = (r < 1.0) & (r > 0.6)
    elif label == 4:
        mask = ((u.abs() < 0.25) & (v.abs() < 0.95)) | ((v.abs() < 0.25) & (u.abs() < 0.95))
    elif label == 5:
        mask = _frac(yy / period + phase) < 0.5
    elif label == 6:
        mask = _frac(xx / period + phase) < 0.5
    elif label == 7:
        mask = (_frac(xx / period + phase) < 0.5) ^ (_frac(yy / period + phase) < 0.5)
    elif label == 8:
        mask = _frac((xx + yy) / (1.4 * period) + phase) < 0.5
    else:
        fx, fy = _frac(xx / period + phase) - 0.5, _frac(yy / period + phase) - 0.5
        mask = fx * fx + fy * fy < 0.09
    m = mask.to(torch.float32)
    image = fg.view(3, 1, 1) * m + bg.view(3, 1, 1) * (1.0 - m)
    image = image + 0.05 * torch.randn(3, size, size, generator=g)
    return image.clamp_(0.0, 1.0)
