"""SKNet Fig. 3 style: per SK site, mean attention (largest kernel minus 3x3) against object scale.

The SK paper's finding is that the larger kernel gains weight as objects grow in low and
middle units, so one line per class (fixed colours) against the scale, a zero line for "both
paths equal", and the legend outside the panels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from secli.excitation.figures.style import (
    FONT,
    Margins,
    class_color,
    class_handles,
    class_marker,
    legend_width,
    outside_legend,
    panel_grid,
    panel_title,
    present_classes,
    title,
)
from secli.excitation.result import ExcitationResult


def sk_difference_figure(result: ExcitationResult, classes: Sequence[int] | None = None) -> Figure | None:
    """None when no site has two or more paths (an SE-only run)."""
    sk = [s for s in result.sites if s.paths >= 2]
    if not sk:
        return None
    ks = present_classes(result, classes)
    margins = Margins(right=legend_width(result, ks) + 0.2, bottom=0.6, hspace=0.7)
    fig, axes = panel_grid(len(sk), 4, 2.6, 2.0, margins, sharey=True)
    scales = result.scales
    for i, (ax, info) in enumerate(zip(axes, sk)):
        ax.axhline(0.0, color="#999999", lw=0.8, zorder=1)
        values = np.array([np.nanmean(result.sk_difference(info.name, s), axis=1) for s in scales])  # (S, K)
        for k in ks:
            ax.plot(scales, values[:, k], color=class_color(k), marker=class_marker(k), ms=4, lw=1.2, zorder=2)
        panel_title(ax, info.name, fontsize=FONT + 0.5, loc="left")
        ax.set_xlabel("object scale (centre enlarged, x)", fontsize=FONT - 0.5)
        ax.set_xticks(scales, [f"{s:g}" for s in scales])
        if len(scales) == 1:
            ax.set_xlim(scales[0] - 0.5, scales[0] + 0.5)
        if i % 4 == 0:
            ax.set_ylabel(f"attention, path {info.paths} − path 1", fontsize=FONT - 0.5)
    margins = title(fig, "SK: mean attention of the largest-kernel path minus the 3x3 path (mean over channels; "
                         "> 0: larger kernel preferred)", margins)
    outside_legend(fig, class_handles(result, ks), margins)
    return fig
