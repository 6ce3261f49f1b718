"""secli.data: synthetic images, image folders with corrupt files, class choice, sampling, zoom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from secli.data.classes import display_names, resolve_classes, select_indices
from secli.data.folders import collate_skipping, make_loader
from secli.data.preprocess import Preprocess
from secli.data.sources import open_data
from secli.data.synthetic import SyntheticShapes, render_synthetic
from secli.excitation.scales import zoom_center
from secli.util.errors import SecliError, SecliUsageError


def _folder(root: Path, counts: dict[str, int], corrupt: str | None = None) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 255, size=(20, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    if corrupt:
        (root / corrupt / "broken.jpg").write_bytes(b"this is not a jpeg")
    return root


def test_synthetic_is_deterministic_by_seed_and_index():
    a = SyntheticShapes(20, size=16, seed=3, split="train")
    b = SyntheticShapes(20, size=16, seed=3, split="train")
    assert torch.equal(a[7][0], b[7][0])
    assert a[7][1] == 7 % 10
    assert a[10][1] == 0
    assert not torch.equal(a[7][0], SyntheticShapes(20, size=16, seed=4, split="train")[7][0])
    # train and validation splits never share an image
    assert not torch.equal(a[7][0], SyntheticShapes(20, size=16, seed=3, split="val")[7][0])


def test_synthetic_images_are_in_range_and_classes_differ():
    img = render_synthetic(0, 32, seed=1)
    assert img.shape == (3, 32, 32)
    assert float(img.min()) >= 0
    assert float(img.max()) <= 1
    # a disk covers a compact central area; a stripe texture covers about half of the image
    disk = render_synthetic(0, 64, seed=5)
    stripes = render_synthetic(5, 64, seed=5)
    assert not torch.allclose(disk, stripes)


def test_image_folder_skips_and_counts_corrupt_images(tmp_path):
    root = _folder(tmp_path / "data", {"cat": 3, "dog": 2}, corrupt="dog")
    data = open_data(str(root), Preprocess(crop=16, resize=16))
    assert data.class_names == ["cat", "dog"]
    assert len(data.indices) == 6
    seen, skipped = 0, 0
    for images, _labels, bad in make_loader(data.dataset, data.indices, batch_size=4):
        skipped += bad
        seen += 0 if images is None else images.shape[0]
        if images is not None:
            assert images.shape[1:] == (3, 16, 16)
    assert (seen, skipped) == (5, 1)


def test_collate_of_only_corrupt_samples():
    assert collate_skipping([(None, 0), (None, 1)]) == (None, None, 2)


def test_empty_and_missing_folders_are_one_line_errors(tmp_path):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(SecliError, match="no images found"):
        open_data(str(tmp_path / "empty"), Preprocess(crop=16, resize=16))
    with pytest.raises(SecliError, match="not found"):
        open_data(str(tmp_path / "nope"), Preprocess(crop=16, resize=16))


def test_per_class_sampling_is_seeded_and_bounded():
    targets = [0] * 5 + [1] * 3
    a = select_indices(targets, [0, 1], ["a", "b"], per_class=2, seed=1)
    assert a == select_indices(targets, [0, 1], ["a", "b"], per_class=2, seed=1)
    assert sum(targets[i] == 0 for i in a) == 2
    assert sum(targets[i] == 1 for i in a) == 2
    with pytest.raises(SecliUsageError, match=r"--per-class 4 is more than class 'b' has \(3 images\)"):
        select_indices(targets, [0, 1], ["a", "b"], per_class=4)


def test_class_names_and_indices():
    names = ["goldfish", "pug", "cliff"]
    assert resolve_classes(["pug", "0"], names) == [1, 0]
    assert resolve_classes(None, names) == [0, 1, 2]
    with pytest.raises(SecliUsageError, match="unknown class 'pgu'; valid classes: goldfish, pug, cliff"):
        resolve_classes(["pgu"], names)


def test_wnid_folders_take_the_weights_category_names():
    folders = ["n01443537", "n02110958"]
    assert display_names(folders, ["goldfish", "pug"])[0] == ["goldfish", "pug"]
    assert display_names(["a", "b"], ["goldfish", "pug"])[0] == ["a", "b"]


def test_zoom_center_halves_the_slope_of_a_ramp():
    # bilinear resampling reproduces a linear ramp exactly away from the borders, so enlarging
    # the centre by 2 must halve its slope and keep the centre value
    x = torch.arange(16, dtype=torch.float32).view(1, 1, 1, 16).expand(1, 1, 16, 16).contiguous()
    z = zoom_center(x, 2.0)
    row = z[0, 0, 8]
    assert torch.allclose(row[3:13].diff(), torch.full((9,), 0.5))
    assert abs(float(row[7:9].mean()) - 7.5) < 1e-5
    assert zoom_center(x, 1.0) is x


def test_choose_preprocess_prefers_checkpoint_meta_then_synthetic_then_weights():
    from secli.data.preprocess import IMAGENET_MEAN
    from secli.data.sources import choose_preprocess

    meta = {"input_size": 32, "resize": 40, "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2]}
    p = choose_preprocess("some/dir", "resnet18", "IMAGENET1K_V1", None, meta)
    assert (p.crop, p.resize, p.mean, p.std) == (32, 40, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))
    p = choose_preprocess("synthetic", "resnet18", None, 64, meta)  # a new size keeps the meta's ratio and norm
    assert (p.crop, p.resize, p.mean) == (64, 80, (0.5, 0.4, 0.3))
    p = choose_preprocess("synthetic", "resnet18", None)
    assert (p.crop, p.resize, p.mean) == (48, 48, IMAGENET_MEAN)
    # torchvision's published transforms of these weights (no download: only the enum's metadata)
    p = choose_preprocess("some/dir", "resnet50", "IMAGENET1K_V2")
    assert (p.crop, p.resize) == (224, 232)
    p = choose_preprocess("some/dir", "resnet50", "IMAGENET1K_V2", 112)
    assert (p.crop, p.resize) == (112, 116)
    p = choose_preprocess("some/dir", "inception_v3", None, None, None, default_input=299)
    assert (p.crop, p.resize) == (299, round(299 * 256 / 224))


def test_weights_enum_uses_the_models_lookup_and_never_raises(tmp_path):
    from torchvision.models import ResNet18_Weights

    from secli.data.preprocess import weights_enum

    assert weights_enum("resnet18", "IMAGENET1K_V1") is ResNet18_Weights.IMAGENET1K_V1
    assert weights_enum("resnet18", "ResNet18_Weights.DEFAULT") is ResNet18_Weights.DEFAULT
    assert weights_enum("resnet18", "NOPE") is None
    f = tmp_path / "w.pth"
    f.write_bytes(b"")
    assert weights_enum("resnet18", str(f)) is None
    assert weights_enum("timm:resnet10t", "x") is None
