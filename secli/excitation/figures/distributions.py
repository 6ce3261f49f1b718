"""How gate values are distributed per class, read off the saved histograms.

Ten overlapping step histograms in one axes cannot be read, so the default figure shows every
site as one panel of per-class quantile bars (a box plot without whiskers' conventions: thin
bar 5-95 %, thick bar 25-75 %, white tick at the median), classes on rows in their fixed
colours, with the all-classes distribution in black at the bottom. The per-site figure (only
with ``--figures all``) gives each class its own small histogram over the all-classes one.
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
    class_color,
    panel_grid,
    panel_title,
    path_of,
    present_classes,
    title,
    value_label,
)
from secli.excitation.result import ExcitationResult

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def histogram_quantiles(hist: np.ndarray, edges: np.ndarray, qs: Sequence[float] = QUANTILES) -> np.ndarray:
    """Quantiles of the values binned in ``hist`` (last axis), uniform within each bin.

    Returns shape ``hist.shape[:-1] + (len(qs),)``; NaN where a histogram is empty. Values
    outside the range sit in the end bins (that is how they were collected)."""
    hist = np.asarray(hist, dtype=float)
    flat = hist.reshape(-1, hist.shape[-1])
    out = np.full((flat.shape[0], len(qs)), np.nan)
    for row, h in enumerate(flat):
        total = h.sum()
        if total <= 0:
            continue
        cdf = np.concatenate([[0.0], np.cumsum(h) / total])
        for j, q in enumerate(qs):
            i = int(np.clip(np.searchsorted(cdf, q, side="left"), 1, len(h)))
            lo, hi = cdf[i - 1], cdf[i]
            frac = (q - lo) / (hi - lo) if hi > lo else 0.0
            out[row, j] = edges[i - 1] + frac * (edges[i] - edges[i - 1])
    return out.reshape((*hist.shape[:-1], len(qs)))


def distributions_figure(result: ExcitationResult, sites: Sequence[str] | None = None,
                         classes: Sequence[int] | None = None) -> Figure:
    """One panel per site, one row per plotted class plus "all classes" at the bottom."""
    names = list(sites or [s.name for s in result.sites])
    ks = present_classes(result, classes)
    labels = [result.class_names[k] for k in ks] + [f"all {int((result.counts() > 0).sum())} classes"]
    left = 0.3 + 0.065 * min(max(len(n) for n in labels), 28)
    margins = Margins(left=left, right=0.25, top=0.55, bottom=0.5, wspace=0.35, hspace=0.6)
    # not sharey: panels off the first column get no y ticks at all (each tick costs drawing time)
    fig, axes = panel_grid(len(names), 4, 2.3, 0.45 + 0.19 * len(labels), margins)
    rows = scores_by_site(result)
    y = np.arange(len(labels))[::-1]  # first class on top, "all" at the bottom
    colors = [class_color(k) for k in ks] + [REFERENCE]  # "all" in black, as the reference elsewhere
    spans = []
    for i, (ax, name) in enumerate(zip(axes, names)):
        info = result.site(name)
        path, _what = path_of(info)
        hist = result.get(name)["hist"][:, path, :]
        edges = np.linspace(info.low, info.high, info.bins + 1)
        q = histogram_quantiles(np.vstack([hist[ks], hist.sum(axis=0, keepdims=True)]), edges)
        ax.hlines(y, q[:, 0], q[:, 4], colors=colors, lw=1.2)
        ax.hlines(y, q[:, 1], q[:, 3], colors=colors, lw=5.0)
        ax.scatter(q[:, 2], y, marker="|", s=30, c="white", linewidths=1.4, zorder=3)
        spans.append((info.low, info.high, np.nanmin(q[:, 0]), np.nanmax(q[:, 4])))
        panel_title(ax, f"{name}  ({specificity_text(rows.get(name))})", fontsize=FONT + 0.5, loc="left")
        ax.grid(axis="x", color="#e5e5e5", lw=0.6)
        ax.set_axisbelow(True)
        ax.set_ylim(-0.7, len(labels) - 0.3)
        if i % 4 == 0:
            ax.set_yticks(y, labels, fontsize=FONT - 0.5)  # black text: pale palette colours read badly
        else:
            ax.set_yticks([])
    _zoom(axes, spans, [value_label(result.site(n)) for n in names])
    what = "SK attention" if any(result.site(n).paths > 1 for n in names) else "Gate values"
    title(fig, f"{what} per class: thick bar 25-75 %, thin bar 5-95 %, white tick median "
               "(from the saved histograms)", margins)
    return fig


def _zoom(axes: list, spans: list[tuple[float, float, float, float]], labels: list[str]) -> None:
    """One x range for all panels: the 5-95 % span of every bar, padded, snapped to tenths of
    the gate's range (so sites compare at a glance and the bars are not squeezed in the middle)."""
    low, high = min(s[0] for s in spans), max(s[1] for s in spans)
    finite = [v for s in spans for v in s[2:] if np.isfinite(v)]
    step = (high - low) / 10
    lo = max(low, np.floor((min(finite, default=low) - step / 2) / step) * step) if finite else low
    hi = min(high, np.ceil((max(finite, default=high) + step / 2) / step) * step) if finite else high
    zoomed = lo > low or hi < high
    for ax, label in zip(axes, labels):
        ax.set_xlim(lo, hi)
        ax.set_xlabel(label + (f", zoomed to {lo:.2g}-{hi:.2g}" if zoomed else ""), fontsize=FONT - 1)


def histogram_figure(result: ExcitationResult, site: str, classes: Sequence[int] | None = None) -> Figure:
    """Small multiples: each class's density (filled, its colour) over the all-classes one (grey)."""
    info = result.site(site)
    path, what = path_of(info)
    hist = result.get(site)["hist"][:, path, :]
    edges = np.linspace(info.low, info.high, info.bins + 1)
    width = edges[1] - edges[0]
    counts = result.counts()
    ks = present_classes(result, classes)
    margins = Margins(left=0.7, right=0.2, bottom=0.6, hspace=0.5, wspace=0.15)
    fig, axes = panel_grid(max(1, len(ks)), 5, 2.2, 1.4, margins, sharex=True, sharey=True)
    everything = hist.sum(axis=0)
    total_all = everything.sum()
    for i, (ax, k) in enumerate(zip(axes, ks)):
        if total_all:
            ax.stairs(everything / (total_all * width), edges, color="#333333", lw=0.7, zorder=3)
        total = hist[k].sum()
        if total:
            ax.stairs(hist[k] / (total * width), edges, color=class_color(k), fill=True, alpha=0.75, zorder=2)
        panel_title(ax, f"{result.class_names[k]} (n={int(counts[k])})", fontsize=FONT, loc="left")
        if i % 5 == 0:
            ax.set_ylabel("density (1 / unit)", fontsize=FONT - 0.5)
        if i >= len(ks) - 5:
            ax.set_xlabel(value_label(info), fontsize=FONT - 0.5)
    if info.low == 0.0 and info.high == 1.0:
        axes[0].set_xticks((0.0, 0.25, 0.5, 0.75, 1.0))  # shared x: sets every panel
    ends = " (values outside the range in the end bins)" if info.high == 2.0 else ""
    title(fig, f"{site}: distribution of the {what} per class (filled), all classes as a dark outline{ends}", margins)
    return fig
