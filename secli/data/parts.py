"""A built-in set whose classes differ only in the global arrangement of their parts.

Why: on ``synthetic`` the classes differ already in low-level statistics (a stripe texture and
a disk have different edge histograms), so every SE site, even the first, is class-specific and
the SE paper's depth story (sec. 7.2: early gates class-agnostic, later ones class-specific)
cannot show. Here every local statistic is drawn from one distribution for all classes:

- the background colour, the noise, and every part's shape (disk, square, ring, cross, diamond),
  colour, size and rotation are drawn independently of the class;
- every class has the same number of parts, the same number of them on the outer ring of the
  grid and in its corners (so zero padding near the border sees the same), no two parts in
  neighbouring cells, and the same part pairs two cells apart, one of each unsigned offset (so
  small receptive fields see nearly the same pairs; the sign of a diagonal is not matched).

A class is only a fixed set of occupied cells of a 5 x 5 grid (its layout), each part jittered
around its cell's centre. Telling classes apart needs features that see several parts at once,
i.e. deeper layers. Image ``i`` has label ``i % 10`` and is drawn from (seed, split, i) alone.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from typing import ClassVar

import torch

from secli.data.preprocess import IMAGENET_MEAN, IMAGENET_STD
from secli.data.synthetic import GeneratedImages

SYNTHETIC_PARTS = "synthetic-parts"
PARTS_SIZE = 64  # px; parts stay ~8 px wide, a few stem strides apart
GRID = 5  # cells per side
PARTS_PER_IMAGE = 5
PARTS_ON_RING = 4  # of the parts, how many sit on the outer ring of the grid
CORNERS = 1  # of those, how many in a corner cell
#: part pairs two cells apart (closer pairs are not allowed), one of each (|rows|, |columns|) offset
PAIRS_TWO_APART = ((0, 2), (1, 2), (2, 0), (2, 1), (2, 2))
MIN_CELLS_APART = 3  # two class layouts differ in at least this many of their cells
PARTS_CLASSES = tuple(f"layout_{k}" for k in range(10))
SHAPES = ("disk", "square", "ring", "cross", "diamond")
MARGIN = 0.08  # blank border, as a fraction of the side
PART_RADIUS = (0.05, 0.075)  # fraction of the side, drawn uniformly
JITTER = 0.03  # fraction of the side, each part's offset from its cell centre (uniform, per axis)
NOISE = 0.05  # std of the Gaussian pixel noise


def layout_features(cells: Sequence[int]) -> tuple[int, int, tuple[tuple[int, int], ...], bool]:
    """(parts on the outer ring, parts in corners, sorted offsets of the pairs two cells apart,
    any neighbouring pair) of one layout: what every class must share."""
    rc = [divmod(c, GRID) for c in cells]
    edge = (0, GRID - 1)
    ring = sum(r in edge or c in edge for r, c in rc)
    corners = sum(r in edge and c in edge for r, c in rc)
    offsets = [(abs(a[0] - b[0]), abs(a[1] - b[1])) for a, b in itertools.combinations(rc, 2)]
    two_apart = tuple(sorted(o for o in offsets if max(o) == 2))
    return ring, corners, two_apart, any(max(o) < 2 for o in offsets)


def _spread_sets(n: int, start: int = 0, taken: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Every set of ``n`` cells (ascending) with no two in neighbouring cells (rows, columns, diagonals)."""
    if n == 0:
        return [taken]
    found: list[tuple[int, ...]] = []
    for cell in range(start, GRID * GRID):
        r, c = divmod(cell, GRID)
        if all(max(abs(r - t // GRID), abs(c - t % GRID)) >= 2 for t in taken):
            found += _spread_sets(n - 1, cell + 1, (*taken, cell))
    return found


@functools.lru_cache(maxsize=1)
def part_layouts() -> tuple[tuple[int, ...], ...]:
    """The ten class layouts (sorted cell indices, row-major on the grid), the same for every seed.

    Drawn once from a fixed generator among the layouts that satisfy the constraints in the
    module docstring, greedily keeping those at least ``MIN_CELLS_APART`` cells from each other.
    """
    g = torch.Generator().manual_seed(12)
    want = (PARTS_ON_RING, CORNERS, PAIRS_TWO_APART, False)
    candidates = [cells for cells in _spread_sets(PARTS_PER_IMAGE) if layout_features(cells) == want]
    order = torch.randperm(len(candidates), generator=g).tolist()
    chosen: list[tuple[int, ...]] = []
    for i in order:
        cells = candidates[i]
        if all(len(set(cells) ^ set(other)) // 2 >= MIN_CELLS_APART for other in chosen):
            chosen.append(cells)
            if len(chosen) == len(PARTS_CLASSES):
                return tuple(chosen)
    raise AssertionError("the layout constraints leave fewer than ten classes")  # fixed: never at runtime


def cell_centres() -> torch.Tensor:
    """(GRID * GRID, 2) cell centres as (x, y) fractions of the side, row-major."""
    pitch = (1.0 - 2 * MARGIN) / GRID
    axis = torch.tensor([MARGIN + pitch * (i + 0.5) for i in range(GRID)])
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)


class SyntheticParts(GeneratedImages):
    """Ten classes that share every local statistic and differ only in where the parts are.

    Same interface as ``SyntheticShapes``: ``length`` images, label ``i % 10``, drawn from
    (seed, split, i), normalised with ``mean``/``std``.
    """

    classes: ClassVar[list[str]] = list(PARTS_CLASSES)
    name = "synthetic-parts"
    min_size = 24
    min_size_why = " (parts would vanish)"

    @staticmethod
    def render(label: int, size: int, seed: int) -> torch.Tensor:
        return render_parts(label, size, seed)

    def __init__(self, length: int, size: int = PARTS_SIZE, seed: int = 0, split: str = "test",
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__(length, size, seed, split, mean, std)  # a larger default size than synthetic's


def _shape_mask(shape: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """A part's mask in its own coordinates (unit radius, already rotated)."""
    if shape == "disk":
        return u * u + v * v < 1.0
    if shape == "square":
        return torch.maximum(u.abs(), v.abs()) < 0.8
    if shape == "ring":
        r2 = u * u + v * v
        return (r2 < 1.0) & (r2 > 0.36)
    if shape == "cross":
        return ((u.abs() < 0.3) & (v.abs() < 1.0)) | ((v.abs() < 0.3) & (u.abs() < 1.0))
    return u.abs() + v.abs() < 1.0  # diamond


def render_parts(label: int, size: int, seed: int) -> torch.Tensor:
    """One (3, size, size) image in [0, 1] of layout ``label``, fully determined by ``seed``.

    Everything drawn here except the cells is drawn the same way for every label, and the
    draws happen in the same order, so the label changes nothing but the parts' positions.
    """
    g = torch.Generator().manual_seed(seed)
    cells = part_layouts()[label]
    centres = cell_centres()[list(cells)]
    n = len(cells)
    bg = torch.rand(3, generator=g)
    colours = torch.rand(n, 3, generator=g)
    shapes = torch.randint(len(SHAPES), (n,), generator=g).tolist()
    radii = PART_RADIUS[0] + (PART_RADIUS[1] - PART_RADIUS[0]) * torch.rand(n, generator=g)
    angles = 2 * math.pi * torch.rand(n, generator=g)
    shifts = JITTER * (2 * torch.rand(n, 2, generator=g) - 1)
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    image = bg.view(3, 1, 1).expand(3, size, size).clone()
    for k in range(n):
        x0, y0 = xx - (centres[k, 0] + shifts[k, 0]), yy - (centres[k, 1] + shifts[k, 1])
        cos, sin = math.cos(float(angles[k])), math.sin(float(angles[k]))
        r = float(radii[k])
        u, v = (x0 * cos + y0 * sin) / r, (-x0 * sin + y0 * cos) / r
        mask = _shape_mask(SHAPES[shapes[k]], u, v)
        image[:, mask] = colours[k].view(3, 1)
    image = image + NOISE * torch.randn(3, size, size, generator=g)
    return image.clamp_(0.0, 1.0)
