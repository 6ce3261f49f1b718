"""Figures of excitation statistics, in the style of the SE paper's Fig. 6/7 and SKNet's Fig. 3.

Built with matplotlib's object API (``Figure`` + the Agg canvas), never ``pyplot``, so nothing
global changes and figures can be made from worker threads and tests. Every figure reads an
``ExcitationResult`` only, so ``--from-stats`` re-plots without the network.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from secli.excitation.result import ExcitationResult, SiteInfo

MAX_CHANNELS = 50


def sampled_channels(channels: int, n: int = MAX_CHANNELS) -> np.ndarray:
    """Up to ``n`` channel indices spread evenly from the first to the last (deterministic)."""
    return np.unique(np.linspace(0, channels - 1, min(n, channels)).round().astype(int))


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _path_of(info: SiteInfo) -> tuple[int, str]:
    """Which path the per-channel figures show: the only one (SE) or the largest kernel (SK)."""
    if info.paths > 1:
        return info.paths - 1, f"attention of path {info.paths} (3x3, dilation {info.paths})"
    return 0, "excitation (gate output)"


def _present(result: ExcitationResult, classes: Sequence[int] | None) -> list[int]:
    counts = result.counts()
    chosen = range(len(result.class_names)) if classes is None else classes
    return [k for k in chosen if counts[k] > 0]


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def draw_class_means(ax, result: ExcitationResult, site: str, classes: Sequence[int] | None = None,
                     max_channels: int = MAX_CHANNELS, legend: bool = True) -> None:
    """Fig. 6: per-class mean of up to 50 sampled channels, and the all-classes reference."""
    info = result.site(site)
    path, what = _path_of(info)
    idx = sampled_channels(info.channels, max_channels)
    mean = result.mean(site)[:, path, :]
    x = np.arange(len(idx))
    ks = _present(result, classes)
    for color, k in zip(_colors(len(ks)), ks):
        ax.plot(x, mean[k, idx], lw=1.2, color=color, label=result.class_names[k])
    ax.plot(x, result.mean_all(site)[path, idx], color="black", lw=2.0, ls="--", label="all classes")
    ax.set_title(site)
    ax.set_xlabel(f"channel ({len(idx)} of {info.channels}, evenly spaced)")
    ax.set_ylabel(f"mean {what.split(' (')[0]}")
    if info.low == 0.0 and info.high == 1.0:
        ax.set_ylim(-0.02, 1.02)
    if legend:
        ax.legend(fontsize=7, loc="best", ncol=2 if len(ks) > 5 else 1)


def class_means_figure(result: ExcitationResult, sites: Sequence[str] | None = None,
                       classes: Sequence[int] | None = None, max_channels: int = MAX_CHANNELS) -> Figure:
    """One panel per site (Fig. 6 of the SE paper)."""
    names = list(sites or [s.name for s in result.sites])
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig = _new_figure(4.2 * cols, 3.2 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for i, (ax, name) in enumerate(zip(axes, names)):
        draw_class_means(ax, result, name, classes, max_channels, legend=(i == 0))
    for ax in axes[len(names):]:
        ax.set_visible(False)
    n = int(result.counts().sum())
    fig.suptitle(f"Mean excitation per class ({n} images); dashed: all classes")
    return fig


def mean_std_figure(result: ExcitationResult, site: str, classes: Sequence[int] | None = None,
                    max_channels: int = MAX_CHANNELS) -> Figure:
    """Fig. 7: for each class, the mean over its images with a band of +-1 std."""
    info = result.site(site)
    path, what = _path_of(info)
    idx = sampled_channels(info.channels, max_channels)
    mean, std = result.mean(site)[:, path, :], result.std(site)[:, path, :]
    counts = result.counts()
    ks = _present(result, classes)
    cols = min(4, max(1, len(ks)))
    rows = -(-max(1, len(ks)) // cols)
    fig = _new_figure(3.4 * cols, 2.8 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharey=True)).ravel()
    x = np.arange(len(idx))
    for ax, color, k in zip(axes, _colors(len(ks)), ks):
        m, s = mean[k, idx], std[k, idx]
        ax.fill_between(x, m - s, m + s, color=color, alpha=0.3, lw=0, label="±1 std")
        ax.plot(x, m, color=color, lw=1.2, label="mean")
        ax.set_title(f"{result.class_names[k]} (n={int(counts[k])})", fontsize=9)
        ax.set_xlabel("channel")
        ax.set_ylabel(what.split(" (")[0])
        ax.legend(fontsize=7, loc="lower right")
    for ax in axes[len(ks):]:
        ax.set_visible(False)
    fig.suptitle(f"{site}: {what}, mean and spread across images of each class")
    return fig


def histogram_figure(result: ExcitationResult, site: str, classes: Sequence[int] | None = None) -> Figure:
    """The distribution of all gate values of a site, one step curve per class."""
    info = result.site(site)
    path, what = _path_of(info)
    hist = result.get(site)["hist"][:, path, :]
    edges = np.linspace(info.low, info.high, info.bins + 1)
    width = edges[1] - edges[0]
    fig = _new_figure(6.0, 3.6)
    ax = fig.subplots()
    ks = _present(result, classes)
    for color, k in zip(_colors(len(ks)), ks):
        total = hist[k].sum()
        if total:
            ax.stairs(hist[k] / (total * width), edges, color=color, lw=1.3, label=result.class_names[k])
    ax.set_xlabel(what + (" (values outside the range in the end bins)" if info.high == 2.0 else ""))
    ax.set_ylabel("density")
    ax.set_title(f"{site}: distribution of {what.split(' (')[0]} per class")
    ax.legend(fontsize=7, ncol=2 if len(ks) > 5 else 1)
    return fig


def sk_difference_figure(result: ExcitationResult, classes: Sequence[int] | None = None) -> Figure | None:
    """SKNet Fig. 3 style: per SK site, mean attention (largest kernel - 3x3) against scale."""
    sk = [s for s in result.sites if s.paths >= 2]
    if not sk:
        return None
    cols = min(4, len(sk))
    rows = -(-len(sk) // cols)
    fig = _new_figure(3.6 * cols, 3.0 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharey=True)).ravel()
    ks = _present(result, classes)
    scales = result.scales
    for i, (ax, info) in enumerate(zip(axes, sk)):
        for color, k in zip(_colors(len(ks)), ks):
            values = [float(np.mean(result.sk_difference(info.name, s)[k])) for s in scales]
            ax.plot(scales, values, marker="o", color=color, label=result.class_names[k])
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_title(info.name)
        ax.set_xlabel("object scale (centre enlarged)")
        ax.set_ylabel(f"attention: path {info.paths} - 3x3")
        ax.set_xticks(scales)
        if i == 0:
            ax.legend(fontsize=7)
    for ax in axes[len(sk):]:
        ax.set_visible(False)
    fig.suptitle("SK: mean attention difference, largest-kernel path minus 3x3 path (over channels)")
    return fig


def save_figure(fig: Figure, path: Path, svg: bool, force: bool) -> list[Path]:
    """PNG (and SVG), written atomically; never overwrite without ``force``."""
    import io

    from secli.util.outputs import atomic_write

    written = []
    for suffix in (".png", ".svg") if svg else (".png",):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=suffix[1:], dpi=110)
        written.append(atomic_write(path.with_suffix(suffix), functools.partial(_write_bytes, buffer.getvalue()), force))
    return written


def _write_bytes(data: bytes, handle: IO[bytes]) -> None:
    handle.write(data)


def write_figures(result: ExcitationResult, out: str | Path, classes: Sequence[int] | None = None,
                  svg: bool = False, force: bool = False, max_channels: int = MAX_CHANNELS) -> list[Path]:
    """Every figure for every site into ``out``; returns the files written."""
    out = Path(out)
    written = save_figure(class_means_figure(result, None, classes, max_channels), out / "class_means", svg, force)
    for info in result.sites:
        written += save_figure(mean_std_figure(result, info.name, classes, max_channels), out / f"{info.name}_mean_std", svg, force)
        written += save_figure(histogram_figure(result, info.name, classes), out / f"{info.name}_hist", svg, force)
    sk = sk_difference_figure(result, classes)
    if sk is not None:
        written += save_figure(sk, out / "sk_difference", svg, force)
    return written
