"""SE paper Fig. 6 (mean gate per class, every site) and Fig. 7 (mean +-1 std per class, one site).

X is the real channel id of each sampled channel, so ticks name channels, not positions in
the sample. The all-classes reference is the mean over every analysed image (all classes of
the run, whether plotted or not, as the label says), drawn thin, dashed and *beneath* the class
curves, so a class that agrees with it stays visible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from secli.excitation.figures.depth import scores_by_site, specificity_text
from secli.excitation.figures.style import (
    FONT,
    REFERENCE,
    Margins,
    channel_label,
    class_color,
    class_handles,
    class_marker,
    legend_width,
    outside_legend,
    panel_grid,
    panel_title,
    path_of,
    present_classes,
    sampled_channels,
    title,
    value_label,
)
from secli.excitation.result import ExcitationResult

UNIT_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


def reference_label(result: ExcitationResult) -> str:
    """What the dashed line averages, in words: every image of every class of the run."""
    counts = result.counts()
    return f"all {int((counts > 0).sum())} classes ({int(counts.sum())} images)"


def class_means_figure(result: ExcitationResult, sites: Sequence[str] | None = None,
                       classes: Sequence[int] | None = None, max_channels: int = 50) -> Figure:
    """One panel per site: each plotted class's mean over its images, and the reference."""
    names = list(sites or [s.name for s in result.sites])
    ks = present_classes(result, classes)
    ref = reference_label(result)
    margins = Margins(right=legend_width(result, ks, [ref]) + 0.2, bottom=0.6, hspace=0.75)
    fig, axes = panel_grid(len(names), 3, 3.4, 2.3, margins)  # not sharey: its tick-label alignment costs
    rows = scores_by_site(result)
    for i, (ax, name) in enumerate(zip(axes, names)):
        info = result.site(name)
        path, _what = path_of(info)
        idx = sampled_channels(info.channels, max_channels)
        mean = result.mean(name)[:, path, :]
        every = max(1, len(idx) // 6)
        ax.plot(idx, result.mean_all(name)[path, idx], color=REFERENCE, lw=0.9, ls=(0, (3, 2)), zorder=1.5)
        for k in ks:
            ax.plot(idx, mean[k, idx], color=class_color(k), lw=1.1, marker=class_marker(k), ms=3.2,
                    markevery=(k % every, every), zorder=2)
        panel_title(ax, f"{name}  ({specificity_text(rows.get(name))})", fontsize=FONT + 0.5, loc="left")
        ax.set_xlabel(channel_label(idx, info.channels), fontsize=FONT - 0.5)
        if i % 3 == 0:
            ax.set_ylabel(value_label(info, "mean "), fontsize=FONT)
        if info.low == 0.0 and info.high == 1.0:
            ax.set_ylim(-0.02, 1.02)
            ax.set_yticks(UNIT_TICKS)
            if i % 3:
                ax.tick_params(labelleft=False)
    handles = class_handles(result, ks)
    handles.append(_reference_handle(ref))
    outside_legend(fig, handles, margins)
    model = result.meta.get("model")
    title(fig, f"Mean excitation per class{f' of {model}' if model else ''}; "
               f"dashed: mean over {ref}", margins)
    return fig


def _reference_handle(label: str):
    from matplotlib.lines import Line2D

    return Line2D([], [], color=REFERENCE, lw=0.9, ls=(0, (3, 2)), label=label)


def mean_std_figure(result: ExcitationResult, site: str, classes: Sequence[int] | None = None,
                    max_channels: int = 50) -> Figure:
    """Fig. 7: one panel per class, its mean over images with a +-1 std band (same y range)."""
    info = result.site(site)
    path, what = path_of(info)
    idx = sampled_channels(info.channels, max_channels)
    mean, std = result.mean(site)[:, path, :], result.std(site)[:, path, :]
    counts = result.counts()
    ks = present_classes(result, classes)
    margins = Margins(left=0.7, right=0.2, bottom=0.6, hspace=0.5, wspace=0.15)
    fig, axes = panel_grid(max(1, len(ks)), 5, 2.2, 1.6, margins, sharex=True, sharey=True)
    ref = result.mean_all(site)[path, idx]
    for i, (ax, k) in enumerate(zip(axes, ks)):
        color = class_color(k)
        m, s = mean[k, idx], std[k, idx]
        ax.plot(idx, ref, color=REFERENCE, lw=0.7, ls=(0, (3, 2)), zorder=1.5)
        ax.fill_between(idx, np.clip(m - s, info.low, info.high), np.clip(m + s, info.low, info.high),
                        color=color, alpha=0.3, lw=0, zorder=1)
        ax.plot(idx, m, color=color, lw=1.1, zorder=2)
        panel_title(ax, f"{result.class_names[k]} (n={int(counts[k])})", fontsize=FONT, loc="left")
        if i % 5 == 0:
            ax.set_ylabel(value_label(info), fontsize=FONT - 0.5)
        if i >= len(ks) - 5:
            ax.set_xlabel("channel id", fontsize=FONT - 0.5)
    if info.low == 0.0 and info.high == 1.0:
        axes[0].set_ylim(-0.02, 1.02)
        axes[0].set_yticks(UNIT_TICKS)
    title(fig, f"{site}: {what} per class, mean (line) and ±1 std across its images (band); "
               f"dashed: {reference_label(result)}; {len(idx)} of {info.channels} channels", margins)
    return fig
