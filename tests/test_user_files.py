"""Files from users are bounded and type-checked: YAML alias bombs, hostile checkpoints, bad field types."""

from __future__ import annotations

import time

import pytest
import torch

from secli.blocks.spec import ModelSpec, load_spec_yaml
from secli.networks.checkpoint import read_checkpoint
from secli.util.errors import SecliUsageError, shorten

BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""


@pytest.mark.parametrize("tail", ["arch: resnet18\nblock: {ratio: *g}\n", "arch: *g\n"])
def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, tail):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB + tail)
    start = time.perf_counter()
    with pytest.raises(SecliUsageError, match="expands to more than") as info:
        load_spec_yaml(path)
    assert time.perf_counter() - start < 2
    assert len(str(info.value)) < 300


def test_too_many_aliases_and_too_large_files_are_refused(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text("x: &x 1\narch: resnet18\nblock: {stages: [" + ",".join(["*x"] * 150) + "]}\n")
    with pytest.raises(SecliUsageError, match="aliases"):
        load_spec_yaml(path)
    path.write_text("arch: resnet18\n# " + "x" * 1_100_000 + "\n")
    with pytest.raises(SecliUsageError, match="at most 1,000,000 are read"):
        load_spec_yaml(path)


@pytest.mark.parametrize(("block", "message"), [
    ({"bias": "no"}, "'bias' must be true or false, got 'no'"),
    ({"ratio": True}, "'ratio' must be a whole number, got True"),
    ({"ratio": 4.5}, "'ratio' must be a whole number"),
    ({"stages": "2,3"}, "'stages' must be a list of whole numbers"),
    ({"stages": [2, True]}, "'stages' must be a list of whole numbers"),
    ({"gate": 3}, "'gate' must be a string"),
    ({"min_hidden": "8"}, "'min_hidden' must be a whole number"),
    ({"kind": ["se"]}, "'kind' must be a string"),
])
def test_every_block_field_has_its_type_checked(block, message):
    with pytest.raises(SecliUsageError, match=message.replace("(", r"\(")):
        ModelSpec.from_dict({"arch": "resnet18", "block": block})


def test_model_fields_are_checked_and_quotes_are_short():
    with pytest.raises(SecliUsageError, match="'arch' must be a string"):
        ModelSpec.from_dict({"arch": 5})
    with pytest.raises(SecliUsageError, match="'num_classes' must be a whole number"):
        ModelSpec.from_dict({"arch": "resnet18", "num_classes": "10"})
    with pytest.raises(SecliUsageError, match="'num_classes' must be from 1 to 100,000"):
        ModelSpec.from_dict({"arch": "resnet18", "num_classes": 0})
    with pytest.raises(SecliUsageError) as info:
        ModelSpec.from_dict({"arch": "resnet18", "block": {"gate": "x" * 100_000}})
    assert len(str(info.value)) < 250
    assert ModelSpec.from_dict({"arch": "resnet18", "block": {"stages": 3, "bias": False}}).block.stages == (3,)
    assert len(shorten([[list(range(100))] * 100] * 100)) <= 100


def _checkpoint(path, spec, meta=None):
    torch.save({"format": "secli-checkpoint", "version": 1, "spec": spec, "state_dict": {}, "meta": meta or {}}, path)
    return path


def test_a_checkpoint_with_shared_nested_lists_is_refused_quickly(tmp_path):
    nested: list = ["x"]
    for _ in range(40):
        nested = [nested, nested]
    path = _checkpoint(tmp_path / "bomb.pt", {"arch": "resnet18", "block": {"stages": nested}})
    assert path.stat().st_size < 20_000
    start = time.perf_counter()
    with pytest.raises(SecliUsageError, match="expands to more than"):
        read_checkpoint(path)
    path = _checkpoint(tmp_path / "meta.pt", {"arch": "resnet18"}, {"classes": nested})
    with pytest.raises(SecliUsageError, match="expands to more than"):
        read_checkpoint(path)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(("meta", "message"), [
    ({"classes": "abc"}, "'classes' must be a list"),
    ({"input_size": True}, "'input_size' must be a whole number"),
    ({"input_size": 0}, "'input_size' must be a whole number"),
    ({"mean": [0.5, float("nan"), 0.5]}, "'mean' must be a list of 1 or 3 finite"),
    ({"std": [0.0, 1.0, 1.0]}, "'std' must be positive"),
])
def test_checkpoint_meta_is_type_checked(tmp_path, meta, message):
    with pytest.raises(SecliUsageError, match=message):
        read_checkpoint(_checkpoint(tmp_path / "m.pt", {"arch": "resnet18"}, meta))


def _image_folder(tmp_path, sizes):
    from PIL import Image

    for i, (w, h) in enumerate(sizes):
        (tmp_path / "c").mkdir(exist_ok=True)
        Image.new("RGB", (w, h), (i * 40, 0, 0)).save(tmp_path / "c" / f"{i}.png")
    (tmp_path / "c" / "bad.png").write_bytes(b"not a png")
    return tmp_path


def test_an_image_over_the_pixel_budget_is_skipped_and_counted_as_too_large(tmp_path):
    from secli.data.folders import ImageFolderData, collate_skipping, too_large_in
    from secli.data.preprocess import Preprocess

    data = ImageFolderData(_image_folder(tmp_path, [(40, 40), (1, 100_000)]), Preprocess(crop=32, resize=36))
    batch = [data[i] for i in range(len(data))]
    images, _labels, skipped = collate_skipping(batch)
    assert images is not None
    assert images.shape[0] == 1
    assert int(skipped) == 2
    assert too_large_in(skipped) == 1


def test_a_memory_error_is_not_reported_as_an_unreadable_image(tmp_path, monkeypatch):
    from secli.data.folders import ImageFolderData
    from secli.data.preprocess import Preprocess

    data = ImageFolderData(_image_folder(tmp_path, [(40, 40)]), Preprocess(crop=32, resize=36))

    def no_memory(img):
        raise MemoryError

    monkeypatch.setattr(data, "_transform", no_memory)
    index = [p.name for p, _ in data.samples].index("0.png")
    with pytest.raises(MemoryError):
        data[index]


def test_model_spec_checks_its_fields_from_python_too():
    with pytest.raises(SecliUsageError, match="--num-classes must be from 1 to 100,000"):
        ModelSpec(arch="resnet18", num_classes=0)
    with pytest.raises(SecliUsageError, match="--num-classes must be a whole number"):
        ModelSpec(arch="resnet18", num_classes=True)
