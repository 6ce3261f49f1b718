"""What every excitation figure shares: class colours and markers, panel grids, labels.

Colours follow a class's index among *all* classes of the run (``class_color(k)``), never its
position among the plotted ones, so a class looks the same in every figure and in every re-plot
with another ``--classes`` subset. The palette is Paul Tol's "muted" scheme (colour-blind safe)
extended to ten with a neutral grey; each class also gets a marker, so colour-blind readers and
grey-scale prints can still tell curves apart, and (colour, marker) pairs stay unique up to 70
classes.

Figures use fixed margins in inches instead of constrained layout: the layout solver measured
every tick label twice per figure and took about half of the drawing time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from secli.excitation.result import ExcitationResult, SiteInfo

#: Paul Tol's muted palette (https://personal.sron.nl/~pault/) + grey as the tenth colour.
PALETTE = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933",
           "#DDCC77", "#CC6677", "#882255", "#AA4499", "#888888")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
REFERENCE = "#000000"  # the all-classes reference: black, thin, dashed, drawn beneath
FONT = 8.0
DPI = 110


def class_color(index: int) -> str:
    """Colour of the class with this index among all classes of the run (figure-independent)."""
    return PALETTE[index % len(PALETTE)]


def class_marker(index: int) -> str:
    """Marker of the class with this index; with 7 markers and 10 colours pairs repeat after 70."""
    return MARKERS[index % len(MARKERS)]


def present_classes(result: ExcitationResult, classes: Sequence[int] | None) -> list[int]:
    """The requested classes (default all) that have at least one image, in index order."""
    counts = result.counts()
    chosen = range(len(result.class_names)) if classes is None else classes
    return sorted(int(k) for k in chosen if counts[k] > 0)


def path_of(info: SiteInfo) -> tuple[int, str]:
    """Which path the per-channel figures show, and what its values are called.

    SE: the only path, the gate. SK: the largest kernel's attention (the other paths' sum to
    one minus it, so it carries all the information with two paths)."""
    if info.paths > 1:
        return info.paths - 1, f"attention of path {info.paths} (3x3, dilation {info.paths})"
    return 0, "gate value"


def value_label(info: SiteInfo, prefix: str = "") -> str:
    """Y axis label with its range (the unit of a gate: a factor between 0 and 1)."""
    _path, what = path_of(info)
    span = f"{info.low:g} to {info.high:g}"
    return f"{prefix}{what.split(' (')[0]} ({span})"


def site_order(name: str) -> tuple[int, int] | None:
    """(stage, block) of a site named like ``SE_4_2`` or ``SK_3_1``; None for other names."""
    match = re.search(r"_(\d+)_(\d+)$", name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def sampled_channels(channels: int, n: int) -> np.ndarray:
    """Up to ``n`` channel ids spread evenly from the first to the last (deterministic)."""
    return np.unique(np.linspace(0, channels - 1, min(n, channels)).round().astype(int))


def channel_label(idx: np.ndarray, channels: int) -> str:
    """X label that says the curve joins a sample of channels, not all of them."""
    if len(idx) == channels:
        return "channel id"
    return f"channel id ({len(idx)} of {channels} sampled, evenly spaced)"


@dataclass(frozen=True)
class Margins:
    """Space around and between panels, in inches (kept fixed so no layout solver runs)."""

    left: float = 0.75
    right: float = 0.2
    top: float = 0.65
    bottom: float = 0.55
    wspace: float = 0.35
    hspace: float = 0.6


def panel_grid(n: int, cols: int, width: float, height: float, margins: Margins = Margins(),
               sharex: bool = False, sharey: bool = False) -> tuple[Figure, list[Axes]]:
    """A figure of ``n`` panels of ``width`` x ``height`` inches in ``cols`` columns; unused
    grid cells are hidden. Margins are fixed in inches, so text sizes stay the same whatever
    the number of panels."""
    cols = max(1, min(cols, n))
    rows = -(-max(n, 1) // cols)
    fig_w = margins.left + margins.right + cols * width + (cols - 1) * margins.wspace
    fig_h = margins.top + margins.bottom + rows * height + (rows - 1) * margins.hspace
    fig = Figure(figsize=(fig_w, fig_h), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=margins.left / fig_w, right=1 - margins.right / fig_w,
                        bottom=margins.bottom / fig_h, top=1 - margins.top / fig_h,
                        wspace=margins.wspace / width, hspace=margins.hspace / height)
    axes = list(np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharex=sharex, sharey=sharey)).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[:n]:  # few ticks: each one is two lines and a text to build, lay out and draw
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.tick_params(labelsize=FONT - 1, length=2.5, pad=2)
    return fig, axes[:n]


def panel_title(ax: Axes, text: str, fontsize: float = FONT + 0.5, loc: Literal["left", "center"] = "left") -> None:
    """A panel title at a fixed height: with ``y`` given, matplotlib skips measuring every tick
    label to place it (that search took a quarter of the drawing time)."""
    ax.set_title(text, fontsize=fontsize, loc=loc, y=1.0, pad=3.0)


def title(fig: Figure, text: str, margins: Margins) -> Margins:
    """Suptitle placed in the top margin (left-aligned, as a caption), wrapped to the figure's
    width: a figure of two panels is narrower than its caption, which ran off its right edge.
    Each extra line makes the figure taller at the top (panels keep their size and place from
    the bottom). Returns the margins with the top as it now is: place legends after this."""
    import textwrap

    fig_w, fig_h = fig.get_size_inches()
    room = fig_w - margins.left - 0.15
    probe = fig.text(0, 0, text, fontsize=FONT + 1)
    width = probe.get_window_extent(renderer=fig.canvas.get_renderer()).width / fig.dpi  # type: ignore[attr-defined]
    probe.remove()
    lines = [text]
    if width > room:
        lines = textwrap.wrap(text, max(20, int(len(text) * room / width * 0.97)), break_on_hyphens=False)
    extra = (len(lines) - 1) * (FONT + 1) * 1.3 / 72
    if extra:
        boxes = [(ax, ax.get_position()) for ax in fig.axes]
        fig.set_size_inches(fig_w, fig_h + extra)
        for ax, box in boxes:  # the same inches from the bottom, so the new room is at the top
            ax.set_position((box.x0, box.y0 * fig_h / (fig_h + extra), box.width, box.height * fig_h / (fig_h + extra)))
        fig_h += extra
    fig.text(margins.left / fig_w, 1 - 0.12 / fig_h, "\n".join(lines), ha="left", va="top", fontsize=FONT + 1,
             linespacing=1.3)
    return replace(margins, top=margins.top + extra)


def class_handles(result: ExcitationResult, ks: Sequence[int], marker: bool = True) -> list[Line2D]:
    """Legend entries of the classes ``ks`` with their fixed colours (and markers)."""
    return [Line2D([], [], color=class_color(k), marker=class_marker(k) if marker else None, markersize=4,
                   lw=1.4, label=result.class_names[k]) for k in ks]


def outside_legend(fig: Figure, handles: list, margins: Margins, columns: int = 1) -> None:
    """A legend in the figure's right margin, never over data (the margin is reserved for it)."""
    fig_w, _fig_h = fig.get_size_inches()
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=((fig_w - margins.right + 0.1) / fig_w,
                                                                  1 - margins.top / fig.get_size_inches()[1]),
               fontsize=FONT - 0.5, frameon=False, ncols=columns, handlelength=2.2, borderaxespad=0.0)


def legend_width(result: ExcitationResult, ks: Sequence[int], extra: Sequence[str] = ()) -> float:
    """Inches the right-hand legend needs (a rough text width; no renderer is consulted)."""
    names = [result.class_names[k] for k in ks] + list(extra)
    longest = max((len(n) for n in names), default=4)
    return 0.55 + 0.065 * min(longest, 32)
