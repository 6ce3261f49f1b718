"""synthetic-parts: classes share every low-level statistic and differ only in part arrangement.

The bounds come from the sample sizes, not from what the code produced: per-class means of
per-image statistics are compared with a one-way ANOVA-style statistic that is chi-square with
K - 1 degrees of freedom when the classes do not differ, and a nearest-centroid probe that
cannot use class information scores chance within binomial noise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from secli.data.parts import (
    GRID,
    MIN_CELLS_APART,
    PARTS_CLASSES,
    SyntheticParts,
    cell_centres,
    layout_features,
    part_layouts,
    render_parts,
)
from secli.data.preprocess import Preprocess
from secli.data.sources import choose_preprocess, open_data
from secli.data.synthetic import render_synthetic
from secli.util.errors import SecliUsageError

K = len(PARTS_CLASSES)
SIZE = 64
PER_CLASS = 30  # images per class in the statistics tests (300 images, ~0.5 s to draw)
ALPHA = 1e-3  # family-wise false-alarm rate of each statistics test


def _images(render, per_class: int, base: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, size, size) images in [0, 1] and their labels, image i of label i % K."""
    labels = np.arange(per_class * K) % K
    images = torch.stack([render(int(c), size, base + i) for i, c in enumerate(labels)])
    return images.numpy(), labels


def _chi2_quantile(q: float, df: int) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile (accurate to ~1% at df >= 3)."""
    z = math.sqrt(2) * _erfinv(2 * q - 1)
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def _erfinv(y: float) -> float:
    """erf^-1 by Newton's method from a rough start (the standard library has only erf)."""
    x = 0.0
    for _ in range(60):
        x -= (math.erf(x) - y) / (2 / math.sqrt(math.pi) * math.exp(-x * x))
    return x


def _class_difference(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per feature: sum_c n_c (mean_c - mean)^2 / pooled within-class variance ~ chi2(K - 1) if equal."""
    grand = features.mean(axis=0)
    between = np.zeros(features.shape[1])
    within = np.zeros(features.shape[1])
    for c in range(K):
        f = features[labels == c]
        between += len(f) * (f.mean(axis=0) - grand) ** 2
        within += ((f - f.mean(axis=0)) ** 2).sum(axis=0)
    pooled = within / (len(features) - K)
    keep = pooled > 1e-12  # a bin no image uses carries no information
    return between[keep] / pooled[keep]


def _bound(n_features: int) -> float:
    """The largest per-feature statistic expected under equal classes, Bonferroni over features."""
    return _chi2_quantile(1 - ALPHA / n_features, K - 1)


def colour_histograms(images: np.ndarray, bins: int = 4) -> np.ndarray:
    """Per image, the fraction of pixels in each of bins^3 RGB cells."""
    q = np.clip((images * bins).astype(int), 0, bins - 1)
    cell = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    return np.stack([np.bincount(c.ravel(), minlength=bins**3) / c.size for c in cell])


def local_statistics(images: np.ndarray) -> np.ndarray:
    """Per image: gradient-magnitude histogram, orientation histogram of strong edges, and the
    histogram of 8x8-patch contrast: what the first layers of a CNN can see."""
    grey = images.mean(axis=1)
    gx, gy = np.diff(grey, axis=2)[:, :-1], np.diff(grey, axis=1)[:, :, :-1]
    mag = np.hypot(gx, gy)
    mag_edges = [0, 0.05, 0.1, 0.2, 0.4, 0.8, 10]
    mag_hist = np.stack([np.histogram(m, mag_edges)[0] / m.size for m in mag])
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    strong = mag > 0.2
    ori_hist = np.stack([np.histogram(a[s], 4, (0, np.pi))[0] / a.size for a, s in zip(angle, strong)])
    n, h = len(grey), grey.shape[1] // 8 * 8
    patches = grey[:, :h, :h].reshape(n, h // 8, 8, h // 8, 8).std(axis=(2, 4)).reshape(n, -1)
    patch_hist = np.stack([np.histogram(p, [0, 0.06, 0.1, 0.2, 0.3, 1])[0] / p.size for p in patches])
    return np.concatenate([mag_hist, ori_hist, patch_hist], axis=1)


def coarse_grid(images: np.ndarray) -> np.ndarray:
    """Per image, the fraction of each grid cell that differs from the background (the median)."""
    n, _, size, _ = images.shape
    background = np.median(images.reshape(n, 3, -1), axis=2)[:, :, None, None]
    foreground = np.abs(images - background).max(axis=1) > 0.2
    half = (cell_centres()[1, 0] - cell_centres()[0, 0]).item() / 2
    cells = []
    for x, y in cell_centres().tolist():
        lo_x, hi_x = round((x - half) * size), round((x + half) * size)
        lo_y, hi_y = round((y - half) * size), round((y + half) * size)
        cells.append(foreground[:, lo_y:hi_y, lo_x:hi_x].mean(axis=(1, 2)))
    return np.stack(cells, axis=1)


def nearest_centroid_accuracy(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray) -> float:
    """A linear probe with nothing to tune: standardise, assign each test image to the nearest class mean."""
    mu, sd = train.mean(axis=0), train.std(axis=0) + 1e-9
    a, b = (train - mu) / sd, (test - mu) / sd
    centroids = np.stack([a[train_y == c].mean(axis=0) for c in range(K)])
    guess = ((b[:, None, :] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1)
    return float((guess == test_y).mean())


@pytest.fixture(scope="module")
def parts_images() -> tuple[np.ndarray, np.ndarray]:
    return _images(render_parts, PER_CLASS, base=1000)


def test_layouts_share_every_constraint_and_differ_in_cells() -> None:
    layouts = part_layouts()
    assert len(layouts) == K == len(set(layouts))
    assert len({layout_features(cells) for cells in layouts}) == 1
    for i, a in enumerate(layouts):
        assert all(0 <= c < GRID * GRID for c in a)
        for b in layouts[i + 1:]:
            assert len(set(a) - set(b)) >= MIN_CELLS_APART


def test_deterministic_by_seed_split_and_index() -> None:
    a = SyntheticParts(20, size=32, seed=3, split="train")
    b = SyntheticParts(20, size=32, seed=3, split="train")
    assert torch.equal(a[7][0], b[7][0])
    assert a[7][1] == 7
    assert a[13][1] == 3
    assert not torch.equal(a[7][0], SyntheticParts(20, size=32, seed=4, split="train")[7][0])
    assert not torch.equal(a[7][0], SyntheticParts(20, size=32, seed=3, split="val")[7][0])
    image = render_parts(0, 40, seed=1)
    assert image.shape == (3, 40, 40)
    assert float(image.min()) >= 0
    assert float(image.max()) <= 1


def test_the_label_moves_the_parts_and_changes_nothing_else() -> None:
    # same seed, two labels: the same background and part colours, only the positions differ
    a, b = render_parts(0, SIZE, seed=5), render_parts(1, SIZE, seed=5)
    assert not torch.equal(a, b)
    corner = (slice(None), slice(0, 3), slice(0, 3))  # inside the blank margin
    assert torch.allclose(a[corner].mean(), b[corner].mean(), atol=0.1)


def test_per_class_colour_histograms_are_equal_within_sampling_noise(parts_images) -> None:
    images, labels = parts_images
    stat = _class_difference(colour_histograms(images), labels)
    assert stat.max() < _bound(len(stat)), f"max {stat.max():.1f} over {len(stat)} colour bins"


def test_per_class_local_statistics_are_equal_within_sampling_noise(parts_images) -> None:
    images, labels = parts_images
    stat = _class_difference(local_statistics(images), labels)
    assert stat.max() < _bound(len(stat)), f"max {stat.max():.1f} over {len(stat)} local statistics"


def test_the_local_statistics_test_has_power_on_the_synthetic_set() -> None:
    # the same test, on the shapes-and-textures set, sees its classes differ (10 images per class suffice)
    images, labels = _images(render_synthetic, 10, base=1000)
    stat = _class_difference(local_statistics(images), labels)
    assert stat.max() > 3 * _bound(len(stat))


def test_labels_are_recoverable_from_arrangement_only(parts_images) -> None:
    test_x, test_y = parts_images
    train_x, train_y = _images(render_parts, 20, base=50_000)
    chance, n = 1 / K, len(test_y)
    noise = 4 * math.sqrt(chance * (1 - chance) / n)  # 4 binomial standard deviations
    global_acc = nearest_centroid_accuracy(coarse_grid(train_x), train_y, coarse_grid(test_x), test_y)
    local = [np.concatenate([colour_histograms(x), local_statistics(x)], axis=1) for x in (train_x, test_x)]
    local_acc = nearest_centroid_accuracy(local[0], train_y, local[1], test_y)
    assert global_acc > 0.8, global_acc
    assert abs(local_acc - chance) < noise, (local_acc, chance, noise)


def test_sources_open_synthetic_parts_at_64_px() -> None:
    pre = choose_preprocess("synthetic-parts", "resnet18", None)
    assert (pre.crop, pre.resize, pre.source) == (64, 64, "synthetic-parts")
    data = open_data("synthetic-parts", Preprocess(crop=32, resize=32), classes=["layout_3"], per_class=4)
    assert data.class_names == list(PARTS_CLASSES)
    assert data.selected == [3]
    assert len(data.indices) == 4
    assert all(data.dataset[i][1] == 3 for i in data.indices)
    assert data.dataset[data.indices[0]][0].shape == (3, 32, 32)


def test_refuses_sizes_too_small_for_parts() -> None:
    with pytest.raises(SecliUsageError, match="at least 24 px"):
        SyntheticParts(10, size=16)


def test_training_opens_two_disjoint_generated_splits() -> None:
    from secli.training.workflow import open_training_data

    sets = open_training_data("synthetic-parts", Preprocess(crop=32, resize=32), 20, 10, 0.2, seed=0)
    assert sets.class_names == list(PARTS_CLASSES)
    assert (sets.train_idx, sets.val_idx) == (list(range(20)), list(range(10)))
    assert sets.val_set is not None
    assert not torch.equal(sets.train_set[0][0], sets.val_set[0][0])


def test_train_command_treats_synthetic_parts_as_a_generated_set(tmp_path) -> None:
    from cli_helpers import assert_one_line_error, run

    result = run("train", "resnet18", "--data", "synthetic-parts", "--val-fraction", "0.3",
                 "--out", str(tmp_path / "m.pt"))
    assert_one_line_error(result, 2, "--val-fraction does not apply with --data synthetic-parts")
