"""Labelled images for excitation statistics and training: image folders and a synthetic set.

Two sources, one interface (a torch ``Dataset`` of ``(image tensor, label)`` plus class names):

- ``ImageFolderData``: the ``root/class_name/image.jpg`` layout. Unreadable images do not abort
  a run: the sample comes back as ``None`` and ``collate_skipping`` drops it and counts it.
- ``SyntheticShapes``: ten classes of shapes and textures at random scales, positions and
  colours, drawn on the fly from ``(seed, index)`` alone, so the same index is the same image
  on every machine and in every worker, and nothing has to be downloaded.

Preprocessing follows the model's weights (torchvision's ``weights.transforms()``) where there
are any, ImageNet defaults (resize 256/224 of the size, centre crop, normalise) otherwise.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.utils.data import Dataset

from secli.util.errors import SecliError, SecliUsageError, did_you_mean

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
SYNTHETIC = "synthetic"
SYNTHETIC_SIZE = 48  # px; small enough to train on a CPU in minutes
SYNTHETIC_CLASSES = (
    "disk", "square", "triangle", "ring", "cross",
    "h_stripes", "v_stripes", "checker", "diag_stripes", "dots",
)
#: Index offsets of the synthetic splits, so training, validation and analysis never share images.
SYNTHETIC_SPLITS = {"train": 0, "val": 10_000_000, "test": 20_000_000}
_WNID = re.compile(r"^n\d{8}$")


# --------------------------------------------------------------------------- preprocessing
@dataclass(frozen=True)
class Preprocess:
    """Resize, centre crop and normalisation; from the weights' transforms or ImageNet defaults."""

    crop: int = 224
    resize: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    source: str = "ImageNet defaults"

    def transform(self) -> Callable[[Any], torch.Tensor]:
        from torchvision import transforms as T

        return T.Compose(
            [
                T.Resize(self.resize, antialias=True),
                T.CenterCrop(self.crop),
                T.ToTensor(),
                T.Normalize(self.mean, self.std),
            ]
        )


def weights_enum(arch: str, name: str | None) -> Any:
    """The torchvision weights enum member ``name`` of ``arch``, or None (never downloads).

    The lookup is ``secli.build.models``' own; here every failure (a local state-dict file, a timm
    model, an arch torchvision does not list, an unknown name) means "no transforms known",
    because building the model is where a bad weights name is reported.
    """
    if not name or arch.startswith("timm:"):
        return None
    from secli.build.models import _torchvision_weights, looks_like_file

    if looks_like_file(name):
        return None
    try:
        return _torchvision_weights(arch, name)
    except Exception:
        return None


def preprocess_for(arch: str, weights: str | None, size: int | None = None, default_input: int = 224) -> Preprocess:
    """The weights' own preprocessing where known (at ``size``, keeping their resize ratio and
    normalisation, when one is given); ImageNet defaults at ``size`` or ``default_input`` otherwise."""
    enum = weights_enum(arch, weights)
    if enum is not None:
        tf = enum.transforms()
        crop0, resize0 = int(tf.crop_size[0]), int(tf.resize_size[0])
        crop = size or crop0
        resize = resize0 if crop == crop0 else round(crop * resize0 / crop0)
        return Preprocess(crop, resize, tuple(tf.mean), tuple(tf.std), f"{arch} {enum.name} transforms")
    crop = size or default_input
    return Preprocess(crop=crop, resize=round(crop * 256 / 224))


def choose_preprocess(
    data: str,
    arch: str,
    weights: str | None,
    image_size: int | None = None,
    meta: dict[str, Any] | None = None,
    default_input: int = 224,
) -> Preprocess:
    """The preprocessing a model expects, from the most specific source there is.

    1. A secli checkpoint's ``meta`` (what ``secli train`` used: size, resize, mean, std), so a
       trained model sees its images as it did in training, whatever command reads it.
    2. ``--data synthetic``: images are drawn at the final size (no resize), 48 px by default.
    3. The torchvision weights' transforms.
    4. ImageNet defaults at the architecture's input size.

    ``image_size`` overrides the size; the resize ratio and normalisation are kept.
    """
    meta = meta or {}
    if meta.get("input_size"):
        crop0 = int(meta["input_size"])
        resize0 = int(meta.get("resize") or crop0)
        crop = image_size or crop0
        resize = resize0 if crop == crop0 else round(crop * resize0 / crop0)
        return Preprocess(crop, resize, tuple(meta.get("mean") or IMAGENET_MEAN),
                          tuple(meta.get("std") or IMAGENET_STD), "the checkpoint's meta")
    if data == SYNTHETIC:
        size = image_size or SYNTHETIC_SIZE
        return Preprocess(crop=size, resize=size, source="synthetic")
    return preprocess_for(arch, weights, image_size, default_input)


def weight_categories(arch: str, weights: str | None) -> list[str] | None:
    enum = weights_enum(arch, weights)
    return list(enum.meta.get("categories") or []) or None if enum is not None else None


# --------------------------------------------------------------------------- datasets
class ImageFolderData(Dataset):
    """``root/<class>/<image>`` read lazily; a sample that cannot be decoded comes back as None."""

    def __init__(self, root: str | Path, preprocess: Preprocess) -> None:
        root = Path(root).expanduser()
        if not root.exists():
            raise SecliError(f"data folder not found: {root}")
        if not root.is_dir():
            raise SecliError(f"--data must be a folder of class folders (or 'synthetic'), got the file {root}")
        try:
            class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError as exc:
            raise SecliError(f"cannot read data folder {root}: {exc.strerror}") from None
        samples: list[tuple[Path, int]] = []
        names: list[str] = []
        for class_dir in class_dirs:
            try:
                files = sorted(
                    p for p in class_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                )
            except OSError as exc:
                raise SecliError(f"cannot read {class_dir}: {exc.strerror}") from None
            if not files:
                continue
            label = len(names)
            names.append(class_dir.name)
            samples.extend((f, label) for f in files)
        if not samples:
            raise SecliError(
                f"no images found in {root}",
                hint="expected the ImageFolder layout root/<class>/<image>.jpg, or --data synthetic",
            )
        self.root = root
        self.classes = names
        self.samples = samples
        self.targets = [label for _, label in samples]
        self._transform = preprocess.transform()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, int]:
        from PIL import Image

        path, label = self.samples[index]
        try:
            with Image.open(path) as img:
                return self._transform(img.convert("RGB")), label
        except Exception:  # truncated, not an image, unreadable: skipped and counted by collate
            return None, label


class SyntheticShapes(Dataset):
    """Ten classes of shapes and textures, image ``i`` has label ``i % 10``, drawn from (seed, i).

    Shape classes (disk, square, triangle, ring, cross) vary in size (radius 0.3-0.7 of the
    half-width), position, colour and rotation; texture classes (stripes in three directions,
    checkerboard, dots) vary in period, phase and colour. Gaussian noise is added to every image.
    """

    classes = list(SYNTHETIC_CLASSES)

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
            raise SecliUsageError(f"the synthetic dataset needs at least 1 image, got {length}")
        if size < 8:
            raise SecliUsageError(f"synthetic images must be at least 8 px, got {size}")
        self.length = length
        self.size = size
        self.seed = seed
        self.offset = SYNTHETIC_SPLITS[split]
        self.targets = [i % len(SYNTHETIC_CLASSES) for i in range(length)]
        self._mean = torch.tensor(mean).view(3, 1, 1)
        self._std = torch.tensor(std).view(3, 1, 1)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = index % len(SYNTHETIC_CLASSES)
        image = render_synthetic(label, self.size, self.seed * 1_000_003 + self.offset + index)
        return (image - self._mean) / self._std, label


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


# --------------------------------------------------------------------------- selection
@dataclass
class LabelledData:
    """A dataset, the indices to use, class names, and what the names came from."""

    dataset: Dataset
    indices: list[int]
    class_names: list[str]
    names_from: str
    preprocess: Preprocess | None = None
    selected: list[int] = field(default_factory=list)  # the class indices chosen (all by default)

    @property
    def labels(self) -> list[int]:
        targets = self.dataset.targets  # type: ignore[attr-defined]
        return [targets[i] for i in self.indices]


def display_names(folder_names: list[str], categories: list[str] | None) -> tuple[list[str], str]:
    """Folder names, or the weights' category names for an ImageNet-style wnid folder layout.

    A folder of 1000 wnid folders (``n01443537``...) sorted by name is in the order of
    torchvision's category list, so ``goldfish`` can name the folder ``n01443537``.
    """
    if (
        categories
        and len(categories) == len(folder_names)
        and all(_WNID.match(name) for name in folder_names)
    ):
        return list(categories), "the weights' category list (wnid folders)"
    return list(folder_names), "folder names"


def resolve_classes(requested: list[str] | None, names: list[str]) -> list[int]:
    """Class names (or indices) chosen by the user; unknown names list the valid ones."""
    if not requested:
        return list(range(len(names)))
    lookup = {name: i for i, name in enumerate(names)}
    lookup.update({name.lower(): i for i, name in enumerate(names)})
    chosen: list[int] = []
    for item in requested:
        if item in lookup or item.lower() in lookup:
            index = lookup.get(item, lookup.get(item.lower()))
        elif item.isdigit() and int(item) < len(names):
            index = int(item)
        else:
            shown = ", ".join(names[:30]) + (f", ... ({len(names)} in all)" if len(names) > 30 else "")
            hint = did_you_mean(item, names)
            raise SecliUsageError(
                f"unknown class {item!r}; valid classes: {shown}" + (f" ({hint})" if hint else "")
            )
        if index not in chosen:
            chosen.append(int(index))  # type: ignore[arg-type]
    return chosen


def select_indices(
    targets: Sequence[int],
    classes: list[int],
    class_names: list[str],
    per_class: int | None,
    seed: int = 0,
) -> list[int]:
    """The dataset indices of the chosen classes; ``per_class`` draws that many per class, seeded."""
    by_class: dict[int, list[int]] = {c: [] for c in classes}
    for index, label in enumerate(targets):
        if label in by_class:
            by_class[label].append(index)
    rng = random.Random(seed)
    picked: list[int] = []
    for c in classes:
        pool = by_class[c]
        if per_class is not None:
            if per_class < 1:
                raise SecliUsageError(f"--per-class must be >= 1, got {per_class}")
            if per_class > len(pool):
                raise SecliUsageError(
                    f"--per-class {per_class} is more than class {class_names[c]!r} has ({len(pool)} images)",
                    hint=f"use --per-class {len(pool)} or fewer",
                )
            pool = sorted(rng.sample(pool, per_class))
        picked.extend(pool)
    return sorted(picked)


def open_data(
    data: str,
    preprocess: Preprocess,
    classes: list[str] | None = None,
    per_class: int | None = None,
    seed: int = 0,
    categories: list[str] | None = None,
    synthetic_per_class: int = 50,
    synthetic_split: str = "test",
) -> LabelledData:
    """``--data DIR`` or ``--data synthetic``, with the class choice and per-class sampling."""
    if data == SYNTHETIC:
        n = per_class if per_class is not None else synthetic_per_class
        if n < 1:
            raise SecliUsageError(f"--per-class must be >= 1, got {n}")
        dataset: Any = SyntheticShapes(
            n * len(SYNTHETIC_CLASSES), size=preprocess.crop, seed=seed, split=synthetic_split,
            mean=preprocess.mean, std=preprocess.std,
        )
        names, names_from = list(SYNTHETIC_CLASSES), "the synthetic dataset"
        chosen = resolve_classes(classes, names)
        indices = [i for i, t in enumerate(dataset.targets) if t in set(chosen)]
    else:
        dataset = ImageFolderData(data, preprocess)
        names, names_from = display_names(dataset.classes, categories)
        chosen = resolve_classes(classes, names)
        indices = select_indices(dataset.targets, chosen, names, per_class, seed)
    return LabelledData(dataset, indices, names, names_from, preprocess, chosen)


def collate_skipping(batch: list[tuple[torch.Tensor | None, int]]) -> tuple[torch.Tensor | None, torch.Tensor | None, int]:
    """Stack the readable samples; count the ones that could not be decoded."""
    good = [(x, y) for x, y in batch if x is not None]
    skipped = len(batch) - len(good)
    if not good:
        return None, None, skipped
    images = torch.stack([x for x, _ in good])
    labels = torch.tensor([y for _, y in good], dtype=torch.long)
    return images, labels, skipped


def make_loader(
    dataset: Dataset,
    indices: list[int],
    batch_size: int,
    workers: int = 0,
    shuffle: bool = False,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """A loader over ``indices``; under DDP each rank takes every ``world_size``-th index."""
    from torch.utils.data import DataLoader, Subset

    shard = list(indices)[rank::world_size]
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        Subset(dataset, shard),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=collate_skipping,
        generator=generator,
        pin_memory=pin_memory,
        persistent_workers=False,
    )


def zoom_center(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Enlarge the centre by ``factor``: crop the central 1/factor, resize back (SKNet's test)."""
    if factor == 1.0:
        return images
    if factor < 1.0:
        raise SecliUsageError(f"scales must be >= 1.0 (enlargement factors), got {factor}")
    import torch.nn.functional as F

    h, w = images.shape[-2:]
    ch, cw = max(1, round(h / factor)), max(1, round(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = images[..., top : top + ch, left : left + cw]
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False, antialias=False)
