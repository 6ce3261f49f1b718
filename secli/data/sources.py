"""What ``--data`` names, opened for a model: the preprocessing to use and the labelled images.

One interface (a torch ``Dataset`` of ``(image tensor, label)`` plus class names) for an image
folder (``secli.data.folders``) or a built-in generated set: ``synthetic`` (shapes and textures,
``secli.data.synthetic``) or ``synthetic-parts`` (classes that differ only in the arrangement of
their parts, ``secli.data.parts``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import Dataset

from secli.data.classes import display_names, resolve_classes, select_indices
from secli.data.folders import ImageFolderData
from secli.data.parts import PARTS_CLASSES, PARTS_SIZE, SYNTHETIC_PARTS, SyntheticParts
from secli.data.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocess,
    preprocess_for,
)
from secli.data.synthetic import (
    SYNTHETIC,
    SYNTHETIC_CLASSES,
    SYNTHETIC_SIZE,
    SyntheticShapes,
)
from secli.util.checks import check_image_size
from secli.util.errors import SecliUsageError

#: The built-in generated sets by ``--data`` name: (dataset class, class names, default size in px).
GENERATED: dict[str, tuple[type[SyntheticShapes] | type[SyntheticParts], tuple[str, ...], int]] = {
    SYNTHETIC: (SyntheticShapes, SYNTHETIC_CLASSES, SYNTHETIC_SIZE),
    SYNTHETIC_PARTS: (SyntheticParts, PARTS_CLASSES, PARTS_SIZE),
}


def generated_set(data: str, length: int, preprocess: Preprocess, seed: int, split: str) -> Dataset:
    """``length`` images of the built-in set ``data`` (a key of ``GENERATED``), as ``preprocess`` says."""
    cls = GENERATED[data][0]
    return cls(length, size=preprocess.crop, seed=seed, split=split, mean=preprocess.mean, std=preprocess.std)


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
    2. ``--data synthetic`` or ``synthetic-parts``: images are drawn at the final size (no
       resize), 48 px (synthetic) or 64 px (synthetic-parts) by default.
    3. The torchvision weights' transforms.
    4. ImageNet defaults at the architecture's input size.

    ``image_size`` overrides the size; the resize ratio and normalisation are kept.
    """
    check_image_size("--image-size", image_size)
    meta = meta or {}
    if meta.get("input_size"):
        crop0 = int(meta["input_size"])
        resize0 = int(meta.get("resize") or crop0)
        crop = image_size or crop0
        resize = resize0 if crop == crop0 else round(crop * resize0 / crop0)
        return Preprocess(crop, resize, tuple(meta.get("mean") or IMAGENET_MEAN),
                          tuple(meta.get("std") or IMAGENET_STD), "the checkpoint's meta")
    if data in GENERATED:
        size = image_size or GENERATED[data][2]
        return Preprocess(crop=size, resize=size, source=data)
    return preprocess_for(arch, weights, image_size, default_input)


@dataclass
class LabelledData:
    """A dataset, the indices to use, class names, and what the names came from."""

    dataset: Dataset
    indices: list[int]
    class_names: list[str]
    names_from: str
    selected: list[int] = field(default_factory=list)  # the class indices chosen (all by default)


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
    """``--data DIR``, ``synthetic`` or ``synthetic-parts``, with the class choice and per-class sampling."""
    if data in GENERATED:
        n = per_class if per_class is not None else synthetic_per_class
        if n < 1:
            raise SecliUsageError(f"--per-class must be >= 1, got {n}")
        class_names = GENERATED[data][1]
        dataset: Any = generated_set(data, n * len(class_names), preprocess, seed, synthetic_split)
        names, names_from = list(class_names), f"the {data} dataset"
        chosen = resolve_classes(classes, names)
        indices = [i for i, t in enumerate(dataset.targets) if t in set(chosen)]
    else:
        dataset = ImageFolderData(data, preprocess)
        names, names_from = display_names(dataset.classes, categories)
        chosen = resolve_classes(classes, names)
        indices = select_indices(dataset.targets, chosen, names, per_class, seed)
    return LabelledData(dataset, indices, names, names_from, chosen)
