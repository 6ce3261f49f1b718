"""SE paper Fig. 6 (mean gate per class, every site) and Fig. 7 (mean +-1 std per class, one site).

X is the real channel id of each sampled channel, so ticks name channels, not positions in
the sample. The all-classes reference is the mean over every analysed image (all classes of
the run, whether plotted or not, as the label says). Fig. 6 draws up to four classes as lines
with the reference dashed on top (a class that agrees with it shows through the gaps); more
classes tangle, so they become a heat map of each class's difference from the reference, under
a strip that draws the reference itself. Fig. 7's band is outlined, so that it stays visible
in the palette's pale colours.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from secli.excitation.figures.depth import scores_by_site, specificity_text
from secli.excitation.figures.style import (
    DPI,
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
#: Up to this many classes Fig. 6 draws one line per class; more become a heat map.
LINE_CLASSES = 4
REFERENCE_DASH = (0, (4, 2.5))


def reference_label(result: ExcitationResult) -> str:
    """What the dashed line averages, in words: every image of every class of the run."""
    counts = result.counts()
    return f"all {int((counts > 0).sum())} classes ({int(counts.sum())} images)"


def class_means_figure(result: ExcitationResult, sites: Sequence[str] | None = None,
                       classes: Sequence[int] | None = None, max_channels: int = 50) -> Figure:
    """Fig. 6: every site, each plotted class's mean over its images against the all-classes mean.

    Up to ``LINE_CLASSES`` classes, one line each over the reference (the paper's figure). More
    lines only tangle, so from then on each site is a heat map instead: one row per class, its
    difference from the all-classes mean per channel (a shared, symmetric diverging scale), under
    a strip that draws the all-classes mean itself."""
    names = list(sites or [s.name for s in result.sites])
    ks = present_classes(result, classes)
    if len(ks) > LINE_CLASSES:
        return class_means_heatmap(result, names, ks, max_channels)
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
        for k in ks:
            ax.plot(idx, mean[k, idx], color=class_color(k), lw=1.1, marker=class_marker(k), ms=3.2,
                    markevery=(k % every, every), zorder=2)
        # the reference on top, black and dashed: the gaps of the dashes show a class that agrees with it
        ax.plot(idx, result.mean_all(name)[path, idx], color=REFERENCE, lw=1.5, ls=REFERENCE_DASH, zorder=3)
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
    model = result.meta.get("model")
    margins = title(fig, f"Mean excitation per class{f' of {model}' if model else ''}; "
                         f"dashed: mean over {ref}", margins)
    outside_legend(fig, handles, margins)
    return fig


def class_means_heatmap(result: ExcitationResult, names: list[str], ks: list[int], max_channels: int) -> Figure:
    """Per site: the all-classes mean as a line (top strip), and below it one row per class, its
    mean minus that reference per channel; red above the reference, blue below, one scale for
    every site so that sites compare (a later site whose rows differ more is more class-specific)."""
    from matplotlib.colors import TwoSlopeNorm

    rows = scores_by_site(result)
    labels = [result.class_names[k] for k in ks]
    cols = max(1, min(3, len(names)))
    grid = -(-len(names) // cols)
    left = 0.45 + 0.062 * min(max(len(n) for n in labels), 28)
    cell_w, strip_h, gap, heat_h = 3.2, 0.8, 0.06, 0.17 * len(ks) + 0.05
    col_gap, row_gap, top, bottom, right = 0.3, 0.85, 0.6, 0.55, 1.15
    fig_w = left + cols * cell_w + (cols - 1) * col_gap + right
    cell_h = strip_h + gap + heat_h
    fig_h = top + grid * cell_h + (grid - 1) * row_gap + bottom
    fig = Figure(figsize=(fig_w, fig_h), dpi=DPI)
    FigureCanvasAgg(fig)
    picked = {name: sampled_channels(result.site(name).channels, max_channels) for name in names}
    diffs = {}
    for name in names:
        path, _what = path_of(result.site(name))
        diffs[name] = result.mean(name)[ks][:, path, picked[name]] - result.mean_all(name)[path, picked[name]]
    finite = np.concatenate([np.abs(d[np.isfinite(d)]) for d in diffs.values()] or [np.zeros(1)])
    span = float(finite.max()) if finite.size and finite.max() > 0 else 1e-3
    norm = TwoSlopeNorm(vmin=-span, vcenter=0.0, vmax=span)
    image = None
    for i, name in enumerate(names):
        info = result.site(name)
        path, _what = path_of(info)
        idx = picked[name]
        r, c = divmod(i, cols)
        x0 = (left + c * (cell_w + col_gap)) / fig_w
        y_heat = fig_h - top - r * (cell_h + row_gap) - cell_h
        strip = fig.add_axes((x0, (y_heat + heat_h + gap) / fig_h, cell_w / fig_w, strip_h / fig_h))
        heat = fig.add_axes((x0, y_heat / fig_h, cell_w / fig_w, heat_h / fig_h))
        positions = np.arange(len(idx))
        strip.plot(positions, result.mean_all(name)[path, idx], color=REFERENCE, lw=1.4)
        strip.set_xlim(-0.5, len(idx) - 0.5)
        if np.isfinite(info.low) and np.isfinite(info.high):  # the gate's whole range: its level, not zoomed noise
            pad = 0.02 * (info.high - info.low)
            strip.set_ylim(info.low - pad, info.high + pad)
            strip.set_yticks((info.low, (info.low + info.high) / 2, info.high))
        else:
            strip.yaxis.set_major_locator(MaxNLocator(3))
        strip.tick_params(labelbottom=False, bottom=False, labelsize=FONT - 1, length=2.5, pad=2)
        strip.grid(axis="y", color="#e5e5e5", lw=0.6)
        if c == 0:
            strip.set_ylabel("all classes", fontsize=FONT - 0.5)
        else:
            strip.tick_params(labelleft=False)
        panel_title(strip, f"{name}  ({specificity_text(rows.get(name))})", fontsize=FONT + 0.5, loc="left")
        image = heat.imshow(diffs[name], aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest")
        ticks = positions[:: max(1, len(idx) // 5)]
        heat.set_xticks(ticks, [str(idx[t]) for t in ticks])
        heat.tick_params(labelsize=FONT - 1, length=2.5, pad=2)
        heat.set_xlabel(channel_label(idx, info.channels), fontsize=FONT - 0.5)
        if c == 0:
            heat.set_yticks(np.arange(len(ks)), labels, fontsize=FONT - 0.5)
            for row, k in enumerate(ks):  # each class's fixed colour, as in every other figure
                heat.scatter([-0.03], [row], transform=heat.get_yaxis_transform(), marker="s", s=14,
                             color=class_color(k), clip_on=False)
            heat.tick_params(axis="y", pad=9)
        else:
            heat.set_yticks([])
    if image is not None:
        bar = fig.add_axes(((fig_w - right + 0.35) / fig_w, (fig_h - top - min(cell_h, 2.2)) / fig_h, 0.12 / fig_w,
                            min(cell_h, 2.2) / fig_h))
        colorbar = fig.colorbar(image, cax=bar)
        colorbar.ax.tick_params(labelsize=FONT - 1)
        colorbar.set_label("class mean − all-classes mean", fontsize=FONT - 0.5)
    model = result.meta.get("model")
    what = "attention of the largest-kernel path" if any(result.site(n).paths > 1 for n in names) else "gate value"
    title(fig, f"Mean {what} per class{f' of {model}' if model else ''}: top strip, the "
               f"mean over {reference_label(result)}; rows, each class's mean minus it "
               f"(red: above, blue: below)", Margins(left=left, top=top))
    return fig


def _reference_handle(label: str) -> Line2D:
    return Line2D([], [], color=REFERENCE, lw=1.5, ls=REFERENCE_DASH, label=label)


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
        low, high = np.clip(m - s, info.low, info.high), np.clip(m + s, info.low, info.high)
        edge = _darker(color)
        ax.fill_between(idx, low, high, color=color, alpha=0.45, lw=0, zorder=1)
        ax.plot(idx, low, color=edge, lw=0.6, zorder=1.2)
        ax.plot(idx, high, color=edge, lw=0.6, zorder=1.2)
        ax.plot(idx, ref, color=REFERENCE, lw=0.8, ls=REFERENCE_DASH, zorder=1.5)
        ax.plot(idx, m, color=edge, lw=1.4, zorder=2)
        panel_title(ax, f"{result.class_names[k]} (n={int(counts[k])})", fontsize=FONT, loc="left")
        if i % 5 == 0:
            ax.set_ylabel(value_label(info), fontsize=FONT - 0.5)
        if i >= len(ks) - 5:
            ax.set_xlabel("channel id", fontsize=FONT - 0.5)
    if info.low == 0.0 and info.high == 1.0:
        axes[0].set_ylim(-0.02, 1.02)
        axes[0].set_yticks(UNIT_TICKS)
    title(fig, f"{site}: {what} per class, mean (line) and ±1 std across its images (outlined band); "
               f"dashed: {reference_label(result)}; {len(idx)} of {info.channels} channels", margins)
    return fig


def _darker(color: str, factor: float = 0.65) -> tuple[float, float, float]:
    """``color`` darkened toward black: lines and band edges in the palette's pale colours
    (light blue, sand) stay visible on white."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return (r * factor, g * factor, b * factor)
