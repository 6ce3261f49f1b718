"""Which classes and images a run uses: class names, the user's choice, per-class sampling, splits."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from secli.util.errors import SecliUsageError, did_you_mean

_WNID = re.compile(r"^n\d{8}$")


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



def split_indices(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded random train/validation split of ``range(n)``: the same seed, the same split."""
    if not 0.0 <= val_fraction < 1.0:
        raise SecliUsageError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_val = round(n * val_fraction)
    if n - n_val < 1:
        raise SecliUsageError(f"no images left to train on ({n} images, validation fraction {val_fraction})")
    return sorted(order[n_val:]), sorted(order[:n_val])
