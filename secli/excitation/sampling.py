"""``--per-class N`` over an image folder whose classes may hold fewer than N images.

``secli.data.classes.select_indices`` refuses a class that is too small (right for training,
where a silently smaller class skews the split). An analysis is better served by the images
there are: a class of 30 under ``--per-class 50`` still has a mean gate worth plotting. So the
workflow opens the folder with every image and samples here, taking a short class whole and
reporting it, so the command can say so in one warning line.

The draw is the one ``select_indices`` makes (``random.Random(seed)``, classes in order, each
sample sorted), so a run where every class is large enough analyses the same images as before.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def sample_per_class(
    targets: Sequence[int],
    indices: Sequence[int],
    classes: Sequence[int],
    class_names: Sequence[str],
    per_class: int | None,
    seed: int = 0,
) -> tuple[list[int], dict[str, int]]:
    """Up to ``per_class`` of ``indices`` per class in ``classes``, seeded; and the classes
    that had fewer (name -> images taken, all of them)."""
    if per_class is None:
        return sorted(indices), {}
    by_class: dict[int, list[int]] = {c: [] for c in classes}
    for index in indices:
        label = int(targets[index])
        if label in by_class:
            by_class[label].append(index)
    rng = random.Random(seed)
    picked: list[int] = []
    short: dict[str, int] = {}
    for c in classes:
        pool = sorted(by_class[c])
        if per_class > len(pool):
            short[class_names[c]] = len(pool)
        else:
            pool = sorted(rng.sample(pool, per_class))
        picked.extend(pool)
    return sorted(picked), short


def short_classes_note(per_class: int, short: dict[str, int]) -> str:
    """``--per-class 50: took all images of 2 classes with fewer: cat (30), dog (12)``."""
    listed = ", ".join(f"{name} ({n})" for name, n in list(short.items())[:10])
    more = f", ... ({len(short)} in all)" if len(short) > 10 else ""
    noun = "class" if len(short) == 1 else "classes"
    return f"--per-class {per_class}: took all images of {len(short)} {noun} with fewer: {listed}{more}"
