"""Figures of ``visualize-excitation``: which files, fixed class colours, NaN scores, re-plots.

Most tests build an ``ExcitationResult`` from random gates (no network), so they check the
figures alone; one runs a real SK model end to end. Nothing here is timed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from secli.excitation.figures.curves import class_means_figure, mean_std_figure
from secli.excitation.figures.depth import depth_figure
from secli.excitation.figures.distributions import distributions_figure, histogram_quantiles
from secli.excitation.figures.style import MARKERS, PALETTE, class_color, class_marker
from secli.excitation.plots import write_figures
from secli.excitation.result import ExcitationResult, SiteInfo
from secli.util.errors import SecliUsageError

NAMES = [f"class_{i}" for i in range(10)]


def _result(k: int = 10, sites: tuple[tuple[str, int, int], ...] = (("SE_2_1", 8, 1), ("SE_5_1", 16, 1)),
            per_class: int = 4, bins: int = 10, seed: int = 0) -> ExcitationResult:
    """Per-class sums of random gates in (0, 1), as the collection pass would keep them."""
    rng = np.random.default_rng(seed)
    infos, arrays = [], {}
    for name, channels, paths in sites:
        g = rng.beta(2, 2, size=(k, per_class, paths, channels))
        if paths > 1:
            g = g / g.sum(axis=2, keepdims=True)
        hist = np.stack([[np.histogram(g[c, :, p, :], bins=bins, range=(0, 1))[0] for p in range(paths)]
                         for c in range(k)])
        arrays[name] = {"count": np.full(k, float(per_class)), "sum": g.sum(axis=1), "sumsq": (g * g).sum(axis=1),
                        "hist": hist.astype(float), "above": (g > 0.95).sum(axis=(1, 3)).astype(float)}
        infos.append(SiteInfo(name, "sk" if paths > 1 else "se", channels, paths, 0.0, 1.0, bins))
    return ExcitationResult(infos, NAMES[:k], [1.0], {"x1": arrays}, {"model": "test"})


def _class_lines(ax) -> list[str]:
    """Colour of every solid data line in ``ax`` (the dashed reference left out), in drawing order."""
    return [line.get_color() for line in ax.get_lines() if line.get_linestyle() == "-"]


def test_class_colour_follows_the_class_index_not_its_position():
    assert len(set(PALETTE)) == 10  # ten classes, ten distinct colours
    assert len({(class_color(k), class_marker(k)) for k in range(70)}) == 70
    assert len(MARKERS) == 7
    result = _result()
    subset, everything = class_means_figure(result, classes=[7, 2]), class_means_figure(result)
    assert _class_lines(subset.axes[0]) == [class_color(2), class_color(7)]
    # ten classes are a heat map: each row marked with its class's colour, in class order
    markers = everything.axes[1].collections  # one square per row, left of the heat map
    assert [tuple(m.get_facecolor()[0]) for m in markers] == [_rgba(class_color(k)) for k in range(10)]
    # the same class is drawn in the same colour in the other figures too (Fig. 7: its band)
    per_class = mean_std_figure(result, "SE_5_1", classes=[7, 2])
    bands = [ax.collections[0].get_facecolor()[0][:3] for ax in per_class.axes if ax.get_visible()]
    assert [tuple(b) for b in bands] == [_rgba(class_color(k))[:3] for k in (2, 7)]
    bars = distributions_figure(result, classes=[7, 2]).axes[0].collections[0]
    assert [tuple(c) for c in bars.get_colors()[:2]] == [tuple(_rgba(class_color(k))) for k in (2, 7)]


def _rgba(color: str) -> tuple[float, ...]:
    from matplotlib.colors import to_rgba

    return to_rgba(color)


def test_legend_sits_outside_every_axes_and_names_the_reference():
    fig = class_means_figure(_result(), classes=[0, 3])
    fig.canvas.draw()
    legend = fig.legends[0]
    box = legend.get_window_extent()
    assert all(box.x0 >= ax.get_window_extent().x1 for ax in fig.axes if ax.get_visible())
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["class_0", "class_3", "all 10 classes (40 images)"]
    # the reference is drawn on top of the class lines (dashed: a class that agrees shows in the gaps)
    reference = next(line for line in fig.axes[0].get_lines() if line.get_linestyle() != "-")
    assert reference.get_zorder() > max(line.get_zorder() for line in fig.axes[0].get_lines() if line is not reference)
    assert reference.get_color() == "#000000"
    assert reference.get_linewidth() >= 1.5


def test_undefined_specificity_is_a_gap_not_zero(monkeypatch):
    result = _result()
    rows = result.scores()
    rows[1]["specificity"] = None  # what "undefined" looks like in the summary
    monkeypatch.setattr(result, "scores", lambda scale=None: rows)
    fig = depth_figure(result)
    eta = fig.axes[0].get_lines()[0].get_ydata()
    assert math.isclose(eta[0], rows[0]["specificity"])
    assert math.isnan(eta[1])
    assert "n/a" in [t.get_text() for t in fig.axes[0].texts]
    rows[1]["specificity"] = float("nan")
    assert math.isnan(depth_figure(result).axes[0].get_lines()[0].get_ydata()[1])
    titles = [ax.get_title(loc="left") for ax in class_means_figure(result).axes]
    assert "SE_5_1  (η² n/a)" in titles
    assert "SE_5_1  (η² n/a)" in [
        ax.get_title(loc="left") for ax in class_means_figure(result, classes=[1, 2]).axes]


def test_quantiles_read_off_a_histogram():
    edges = np.linspace(0.0, 1.0, 11)
    q = histogram_quantiles(np.ones((1, 10)), edges, (0.05, 0.5, 0.95))
    np.testing.assert_allclose(q[0], [0.05, 0.5, 0.95])
    one_bin = np.zeros(10)
    one_bin[3] = 7
    np.testing.assert_allclose(histogram_quantiles(one_bin, edges, (0.0 + 1e-9, 0.5, 1.0)), [0.3, 0.35, 0.4],
                               atol=1e-6)
    assert np.isnan(histogram_quantiles(np.zeros((2, 10)), edges)).all()


def test_default_and_all_figure_sets(tmp_path):
    result = _result()
    written = write_figures(result, tmp_path / "d", classes=[1, 4])
    assert sorted(p.name for p in written) == ["class_means.png", "depth.png", "distributions.png"]
    written = write_figures(result, tmp_path / "a", figures="all", svg=True)
    names = {p.name for p in written}
    assert {"SE_2_1_mean_std.png", "SE_5_1_hist.png", "SE_5_1_hist.svg", "depth.svg"} <= names
    assert all(p.read_bytes()[:4] in (b"\x89PNG", b"<?xm") for p in written)
    with pytest.raises(SecliUsageError, match="figure set"):
        write_figures(result, tmp_path / "x", figures="some")


def test_sk_sites_get_the_attention_difference_figure(tmp_path):
    result = _result(sites=(("SK_2_1", 8, 2), ("SK_4_1", 16, 3)))
    written = write_figures(result, tmp_path / "sk", figures="all")
    assert {"sk_difference.png", "SK_4_1_mean_std.png", "distributions.png"} <= {p.name for p in written}


def test_se_and_sk_models_end_to_end_and_replot(tmp_path):
    """A real network each (tiny input), then ``from_stats`` re-plots a class subset."""
    from secli.excitation.workflow import visualize_excitation

    for block, site in (("se", "SE_5_1"), ("sk", "SK_5_1")):
        run = visualize_excitation("resnet18", block=block, num_classes=10, data="synthetic", per_class=1,
                                   image_size=32, sites=site, out=tmp_path / block, batch_size=10)
        names = {p.name for p in run.files}
        assert {"class_means.png", "depth.png", "distributions.png", "stats.npz"} <= names
        assert ("sk_difference.png" in names) == (block == "sk")
    again = visualize_excitation(from_stats=tmp_path / "sk", out=tmp_path / "again", classes="ring,dots",
                                 figures="all")
    names = {p.name for p in again.files}
    assert {"class_means.png", "sk_difference.png", "SK_5_1_hist.png"} <= names
    assert "stats.npz" not in names
    with pytest.raises(SecliUsageError, match="--figures"):
        visualize_excitation(from_stats=tmp_path / "sk", out=tmp_path / "bad", figures="every")


def test_figures_drawn_in_worker_processes_equal_those_drawn_here(tmp_path, monkeypatch):
    """The same files, pixel for pixel, whether the figures are drawn in forked workers or in
    this process (SECLI_FIGURE_WORKERS=1); and a worker's error reaches the caller."""
    import matplotlib.image

    from secli.excitation import plots

    result = _result()
    monkeypatch.setenv("SECLI_FIGURE_WORKERS", "1")
    here = write_figures(result, tmp_path / "here", figures="all")
    monkeypatch.setenv("SECLI_FIGURE_WORKERS", "2")
    if plots._figure_workers(len(here)) < 2:
        pytest.skip("one CPU or no fork here: nothing to compare")
    pooled = write_figures(result, tmp_path / "pooled", figures="all")
    assert [p.name for p in pooled] == [p.name for p in here]
    for a, b in zip(here, pooled):
        assert np.array_equal(matplotlib.image.imread(a), matplotlib.image.imread(b)), a.name

    def broken(*_args, **_kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(plots, "depth_figure", broken)
    with pytest.raises(RuntimeError, match="drawing failed"):
        write_figures(result, tmp_path / "broken")


def test_ten_classes_are_a_heat_map_of_differences_under_the_all_classes_mean():
    """Fig. 6 with more than four classes: per site a strip with the all-classes mean (drawn, in
    black) and one heat-map row per class holding its mean minus that reference."""
    from secli.excitation.figures.style import sampled_channels

    result = _result()
    fig = class_means_figure(result, max_channels=6)
    strip, heat = fig.axes[2], fig.axes[3]  # the second site: SE_5_1 (16 channels, 6 sampled)
    idx = sampled_channels(16, 6)
    reference = result.mean_all("SE_5_1")[0, idx]
    np.testing.assert_allclose(strip.get_lines()[0].get_ydata(), reference)
    assert strip.get_lines()[0].get_color() == "#000000"
    rows = heat.get_images()[0].get_array()
    assert rows.shape == (10, 6)
    np.testing.assert_allclose(rows, result.mean("SE_5_1")[:, 0, idx] - reference)
    norm = heat.get_images()[0].norm  # one symmetric scale for every site
    assert norm.vmin == -norm.vmax
    assert norm is fig.axes[1].get_images()[0].norm
    four = class_means_figure(result, classes=[0, 1, 2, 3])
    assert not four.axes[0].get_images()
    assert len(_class_lines(four.axes[0])) == 4  # up to four: lines


def test_titles_wrap_inside_the_figure_at_two_sites():
    """The captions of narrow figures (two sites) wrap instead of running off the right edge."""
    result = _result()
    sk = _result(sites=(("SK_2_1", 8, 2), ("SK_4_1", 16, 3)))
    from secli.excitation.figures.sk import sk_difference_figure

    for fig in (distributions_figure(result), sk_difference_figure(sk), class_means_figure(result)):
        fig.canvas.draw()
        caption = fig.texts[-1]
        box = caption.get_window_extent()
        assert box.x1 <= fig.bbox.x1, caption.get_text()
        assert box.y1 <= fig.bbox.y1, caption.get_text()
        top = max(ax.get_window_extent().y1 for ax in fig.axes if ax.get_visible())
        assert box.y0 > top, caption.get_text()  # above every panel, not over one


def test_the_std_band_is_outlined():
    fig = mean_std_figure(_result(), "SE_5_1", classes=[1])  # class_1: the palette's light blue
    ax = fig.axes[0]
    assert ax.collections[0].get_alpha() >= 0.4
    edges = [line for line in ax.get_lines() if line.get_linewidth() < 1.0 and line.get_linestyle() == "-"]
    assert len(edges) == 2  # the band's lower and upper edges, in a darker shade of the class colour
