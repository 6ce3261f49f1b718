"""Object scales for SKNet's attention-vs-scale test: enlarge the centre, key each scale.

SKNet (section 4.3) enlarges the object by cropping the image's centre and resizing it back;
a network whose large-kernel paths matter should shift attention to them as objects grow.
``zoom_center`` lives here, with its only user, rather than in ``secli.data``: it is a probe of
the network, not a way of reading images.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from secli.util.errors import SecliUsageError

if TYPE_CHECKING:  # torch only where images are zoomed: re-plots from saved statistics skip it
    import torch


def scale_key(scale: float) -> str:
    """The name a scale is saved and shown under (``x1``, ``x1.5``)."""
    return f"x{scale:g}"


def unique_scales(scales: Iterable[float]) -> list[float]:
    """The scales in order with repeats dropped (a repeat would count every image twice);
    refuses values below 1.0 and two values that print as the same key (``x1`` for 1 and 1.0000001)."""
    values = list(dict.fromkeys(float(s) for s in scales)) or [1.0]
    seen: dict[str, float] = {}
    for s in values:
        if s < 1.0:
            raise SecliUsageError(f"scales are enlargement factors >= 1.0, got {s:g}")
        key = scale_key(s)
        if key in seen:
            raise SecliUsageError(f"scales {seen[key]!r} and {s!r} are too close: both are saved as "
                                  f"the same key {key!r}")
        seen[key] = s
    return values


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
