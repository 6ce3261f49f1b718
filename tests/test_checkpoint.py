"""Saving and loading: checkpoints, base weights, YAML specs, and the files that must be refused."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
import torchvision

from secli.blocks.spec import BlockSpec, ModelSpec, dump_spec_yaml, load_spec_yaml
from secli.networks.checkpoint import read_checkpoint, save_checkpoint
from secli.networks.models import build, load_model
from secli.util.errors import SecliError, SecliUsageError
from secli.util.outputs import atomic_write_text


def _save(tmp_path: Path, spec: ModelSpec) -> tuple[Path, torch.nn.Module]:
    built = build(spec)
    path = tmp_path / "model.pt"
    save_checkpoint(path, spec.to_dict(), built.model.state_dict())
    return path, built.model


def test_checkpoint_round_trip_rebuilds_the_same_network(tmp_path: Path) -> None:
    spec = ModelSpec("resnet18", BlockSpec(kind="se", ratio=8, position="identity", stages=(3, 4)))
    path, model = _save(tmp_path, spec)
    loaded = load_model(str(path))
    assert loaded.spec == spec
    assert [s.name for s in loaded.sites] == ["SE_3_1", "SE_3_2", "SE_4_1", "SE_4_2"]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.eval()(x), model.eval()(x))


def test_checkpoints_are_read_with_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "secli-checkpoint", "payload": pickle.loads(pickle.dumps(Path("/etc")))}, path)
    with pytest.raises(SecliError, match="unsafe"):
        read_checkpoint(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "cannot read"),
        (b"not a torch file at all", "cannot read"),
    ],
)
def test_corrupt_files_are_one_line_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(SecliError, match=message):
        load_model(str(path))


def test_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    path, _ = _save(tmp_path, ModelSpec("resnet18", BlockSpec()))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SecliError, match="cannot read"):
        load_model(str(path))


def test_foreign_torch_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(SecliError, match="not a secli checkpoint"):
        load_model(str(path))


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SecliError, match="not found"):
        load_model(str(tmp_path / "nope.pt"))


def test_local_base_weights_are_loaded_before_injection(tmp_path: Path) -> None:
    base = torchvision.models.resnet18(num_classes=10)
    path = tmp_path / "base.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in base.state_dict().items()}}, path)
    built = build(ModelSpec("resnet18", BlockSpec(kind="se"), weights=str(path), num_classes=10))
    torch.testing.assert_close(built.model.conv1.weight, base.conv1.weight)
    torch.testing.assert_close(built.model.layer4[1].bn2[0].running_var, base.layer4[1].bn2.running_var)


def test_base_weights_that_do_not_fit_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "base.pth"
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), path)
    with pytest.raises(SecliError, match=r"fc\.weight.*check --num-classes"):
        build(ModelSpec("resnet18", BlockSpec(kind="se"), weights=str(path)))


def test_unknown_torchvision_weights_name_lists_the_known_ones() -> None:
    with pytest.raises(SecliUsageError, match="IMAGENET1K_V1"):
        build(ModelSpec("resnet18", BlockSpec(), weights="IMAGENET9K"))


def test_yaml_spec_round_trip(tmp_path: Path) -> None:
    spec = ModelSpec("resnext50_32x4d", BlockSpec(kind="sk", paths=3, groups=32, min_hidden=32))
    path = atomic_write_text(tmp_path / "spec.yaml", dump_spec_yaml(spec))
    assert load_spec_yaml(path) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("arch: resnet50\nblok: se\n", "unknown key 'blok'; allowed keys: arch, block"),
        ("arch: resnet50\nblock: {kind: se, ratoi: 4}\n", "unknown key 'ratoi'"),
        ("arch: [resnet50\n", "cannot parse YAML"),
        ("- just\n- a list\n", "expected a mapping"),
        ("block: se\n", "missing required key 'arch'"),
        ("arch: resnet50\nblock: {ratio: 0}\n", "'ratio' must be from 1 to"),
    ],
)
def test_bad_yaml_specs_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SecliError, match=message):
        load_spec_yaml(path)


def test_outputs_are_never_clobbered_without_force(tmp_path: Path) -> None:
    path = atomic_write_text(tmp_path / "x.txt", "first")
    with pytest.raises(SecliError, match="already exists"):
        atomic_write_text(path, "second")
    atomic_write_text(path, "second", force=True)
    assert path.read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]  # no temporary files left behind
    import os

    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # like open(), not mkstemp's 0600
