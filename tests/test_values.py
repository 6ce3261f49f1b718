"""Every option value is checked in the library, before anything runs (exit 2 through the CLI)."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from commands.app import app
from secli.api import profile, train, visualize_excitation
from secli.training.loop import EpochResult, TrainResult
from secli.training.values import check_trained
from secli.util.errors import SecliError, SecliUsageError

runner = CliRunner()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"image_size": 0}, "--image-size must be from 8"),
    ({"image_size": 100_000}, "--image-size must be from 8"),
    ({"batch_size": 0}, "--batch-size must be from 1"),
    ({"workers": -1}, "--workers must be from 0"),
    ({"bins": 0}, "--bins must be from 2"),
    ({"channels": 0}, "--channels must be from 1"),
    ({"per_class": 0}, "--per-class must be from 1 to 100,000"),
    ({"scales": [float("nan")]}, "--scales must be a finite number"),
    ({"scales": [float("inf")]}, "--scales must be a finite number"),
])
def test_visualize_excitation_refuses_bad_values(tmp_path, kwargs, message):
    with pytest.raises(SecliUsageError, match=message):
        visualize_excitation("resnet18", data="synthetic", out=tmp_path / "o", **kwargs)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"epochs": 0}, "--epochs must be from 1"),
    ({"batch_size": 0}, "--batch-size must be from 1"),
    ({"lr": float("nan")}, "--lr must be a finite number"),
    ({"lr": 0.0}, "--lr must be > 0"),
    ({"weight_decay": -1e-4}, "--weight-decay must be >= 0"),
    ({"weight_decay": float("inf")}, "--weight-decay must be a finite number"),
    ({"image_size": 0}, "--image-size must be from 8"),
    ({"train_size": 0}, "--train-size must be from 1 to 1,000,000"),
    ({"val_fraction": 1.0}, "--val-fraction must be <= 0.95"),
    ({"workers": -2}, "--workers must be from 0"),
])
def test_train_refuses_bad_values(tmp_path, kwargs, message):
    with pytest.raises(SecliUsageError, match=message):
        train("resnet18", data="synthetic", out=tmp_path / "m.pt", **kwargs)
    assert not (tmp_path / "m.pt").exists()


def test_profile_refuses_input_size_zero():
    with pytest.raises(SecliUsageError, match="--input-size must be from 8"):
        profile(["resnet18"], input_size=0)


def test_cli_exit_code_2_and_one_line(tmp_path):
    r = runner.invoke(app, ["train", "resnet18", "--data", "synthetic", "--epochs", "1", "--lr", "nan",
                            "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 2
    assert "--lr must be a finite number" in r.output


def _epoch(loss: float) -> EpochResult:
    return EpochResult(epoch=1, lr=0.1, train_loss=loss, train_accuracy=0.5, val_loss=None, val_accuracy=None,
                       seconds=1.0, skipped=3)


def test_a_run_that_learned_nothing_is_not_saved():
    with pytest.raises(SecliError, match=r"no training image in DIR could be read \(3 skipped\); nothing was saved"):
        check_trained(TrainResult(epochs=[_epoch(math.nan)], train_images=0), "DIR")
    with pytest.raises(SecliError, match="not finite"):
        check_trained(TrainResult(epochs=[_epoch(1.0), _epoch(math.inf)], train_images=10), "DIR")
    check_trained(TrainResult(epochs=[_epoch(1.0)], train_images=10), "DIR")


def test_train_on_a_folder_of_unreadable_images_saves_nothing(tmp_path):
    for name in ("a", "b"):
        (tmp_path / "d" / name).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "d" / name / f"{i}.png").write_bytes(b"not a png")
    r = runner.invoke(app, ["train", "resnet18", "--data", str(tmp_path / "d"), "--epochs", "1", "--image-size", "32",
                            "--device", "cpu", "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 1, r.output
    assert "nothing was saved" in r.output, r.output
    assert not (tmp_path / "m.pt").exists()
