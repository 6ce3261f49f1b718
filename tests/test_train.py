"""secli.training and ``secli train``: the loop learns what is learnable; checkpoints round-trip."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from commands.app import app
from secli.data.classes import split_indices
from secli.training.heads import check_head
from secli.training.loop import TrainConfig, train_model
from secli.util.errors import SecliUsageError

runner = CliRunner()


def _separable(n: int, seed: int):
    """Two Gaussian blobs far apart: any working training loop gets them all right."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 4, generator=g) * 0.3 + (y.float() * 2 - 1).unsqueeze(1) * 2.0
    return [(x[i : i + 8], y[i : i + 8], 0) for i in range(0, n, 8)]


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_loop_learns_separable_data(optimizer):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    config = TrainConfig(epochs=3, batch_size=8, optimizer=optimizer, lr=0.1 if optimizer == "sgd" else 0.05)
    seen = []
    result = train_model(model, _separable(64, 0), _separable(32, 1), 2, config, progress=seen.append)
    assert sum(seen) == 3 * 64
    assert [e.epoch for e in result.epochs] == [1, 2, 3]
    assert result.final_val_accuracy == 1.0
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss
    # the cosine schedule starts at the peak and decays
    assert result.epochs[0].lr == pytest.approx(config.learning_rate)
    assert result.epochs[-1].lr < config.learning_rate


def test_split_is_seeded_and_disjoint():
    train, val = split_indices(10, 0.3, seed=1)
    assert sorted(train + val) == list(range(10))
    assert len(val) == 3
    assert (train, val) == split_indices(10, 0.3, seed=1)
    with pytest.raises(SecliUsageError):
        split_indices(10, 1.0, 0)


def test_config_and_head_errors():
    with pytest.raises(SecliUsageError, match="unknown optimizer 'adam'"):
        TrainConfig(optimizer="adam")
    with pytest.raises(SecliUsageError, match="--epochs must be >= 1"):
        TrainConfig(epochs=0)
    with pytest.raises(SecliUsageError, match="predicts 2 classes but the data has 10"):
        check_head(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), torch.zeros(1, 3, 2, 2), 10)


def test_train_command_saves_a_checkpoint_other_commands_read(tmp_path):
    out = tmp_path / "m.pt"
    args = ["train", "resnet18", "--block", "se", "--stages", "5", "--data", "synthetic", "--epochs", "1",
            "--train-size", "20", "--val-size", "10", "--image-size", "32", "--batch-size", "10",
            "--out", str(out), "--format", "json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    document = json.loads(r.stdout)
    assert document["format"] == "secli-train"
    assert document["inputs"]["epochs"] == 1
    payload = document["results"]
    assert payload["image_size"] == 32
    assert payload["new_head"] is None
    assert payload["skipped"] == 0
    assert payload["train_images"] == 20
    assert payload["val_images"] == 10
    assert len(payload["epochs"]) == 1
    from secli.networks.models import load_model

    built = load_model(str(out))
    assert built.meta["classes"][:2] == ["disk", "square"]
    assert built.meta["input_size"] == 32
    assert [s.name for s in built.sites] == ["SE_5_1", "SE_5_2"]
    assert built.model.fc.out_features == 10
    # the saved weights are the trained ones: evaluation reproduces the reported accuracy
    from secli.data.folders import make_loader
    from secli.data.synthetic import SyntheticShapes
    from secli.training.loop import evaluate

    val = SyntheticShapes(10, size=32, seed=0, split="val")
    _, acc, n = evaluate(built.model, make_loader(val, list(range(10)), 10), torch.device("cpu"))
    assert n == 10
    assert acc == pytest.approx(payload["final_val_accuracy"])
    # never clobbers
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert " exists (pass --force to replace it)" in r.output


def test_train_command_bad_input(tmp_path):
    r = runner.invoke(app, ["train", "resnet18", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "m.pt")])
    assert r.exit_code != 0
    assert "data folder not found" in r.output
    r = runner.invoke(app, ["train", "resnet18", "--data", "synthetic"])
    assert r.exit_code == 2
    assert "--out" in r.output


def test_train_on_an_image_folder_then_continue_from_the_checkpoint(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / name / f"{i}.png")
    (tmp_path / "imgs" / "a" / "broken.png").write_bytes(b"not a png")
    first = tmp_path / "m.pt"
    base = ["--data", str(tmp_path / "imgs"), "--epochs", "1", "--image-size", "32", "--batch-size", "4",
            "--val-fraction", "0.25", "--format", "json"]
    r = runner.invoke(app, ["train", "resnet18", "--block", "se", "--stages", "5", *base, "--out", str(first)])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)["results"]
    assert payload["class_names"] == ["a", "b"]
    assert payload["train_images"] + payload["val_images"] == 8  # the broken file is skipped, not fatal
    r = runner.invoke(app, ["train", str(first), *base, "--out", str(tmp_path / "m2.pt")])
    assert r.exit_code == 0, r.output
    from secli.networks.models import load_model

    assert load_model(str(tmp_path / "m2.pt")).model.fc.out_features == 2
    r = runner.invoke(app, ["train", str(first), "--block", "sk", *base, "--out", str(tmp_path / "m3.pt")])
    assert r.exit_code == 2
    assert "is a saved model; --block applies to architecture names only" in " ".join(r.output.split())


def test_train_googlenet_whose_train_forward_returns_aux_outputs(tmp_path):
    # In train mode torchvision's GoogLeNet returns GoogLeNetOutputs(logits, aux2, aux1), not a tensor.
    out = tmp_path / "g.pt"
    r = runner.invoke(app, ["train", "googlenet", "--data", "synthetic", "--epochs", "1", "--train-size", "4",
                            "--val-size", "2", "--image-size", "32", "--batch-size", "4", "--out", str(out),
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)["results"]
    assert payload["train_images"] == 4
    assert payload["val_images"] == 2


def test_train_from_a_1000_class_state_dict_on_10_class_data_gets_a_new_head(tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(1)
    base = resnet18()  # the weights' own 1000-class head
    weights = tmp_path / "r18.pth"
    torch.save(base.state_dict(), weights)
    out = tmp_path / "m.pt"
    r = runner.invoke(app, ["train", "resnet18", "--weights", str(weights), "--data", "synthetic", "--epochs", "1",
                            "--train-size", "4", "--val-size", "2", "--image-size", "32", "--batch-size", "4",
                            "--lr", "1e-7", "--out", str(out), "--format", "json"])
    assert r.exit_code == 0, r.output
    from secli.networks.models import load_model

    built = load_model(str(out))
    assert built.model.fc.out_features == 10
    assert built.spec.num_classes == 10
    # the body is the file's (one step at lr 1e-7 barely moves it), not a fresh initialisation
    torch.testing.assert_close(built.model.conv1.weight, base.conv1.weight, atol=1e-5, rtol=0)
    torch.testing.assert_close(built.model.layer4[1].conv2.weight, base.layer4[1].conv2.weight, atol=1e-5, rtol=0)


def test_replace_head_finds_torchvision_and_timm_classifiers():
    from torchvision.models import efficientnet_b0, squeezenet1_0

    from secli.training.heads import replace_head

    m = efficientnet_b0()
    assert replace_head(m, 7) == "classifier.1"
    assert m.classifier[1].out_features == 7
    assert replace_head(m, 7) is None  # already the right width: kept
    s = squeezenet1_0().eval()
    assert replace_head(s, 5) == "classifier.1"
    assert s(torch.zeros(1, 3, 64, 64)).shape == (1, 5)
    import timm

    t = timm.create_model("resnet10t", pretrained=False).eval()
    assert replace_head(t, 3) is not None
    assert t(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


def test_training_a_checkpoint_further_uses_its_own_preprocessing(tmp_path):
    import numpy as np
    from PIL import Image

    from secli.blocks.spec import BlockSpec, ModelSpec
    from secli.networks.checkpoint import save_checkpoint
    from secli.networks.models import build

    spec = ModelSpec(arch="resnet18", block=BlockSpec(kind="se", stages=(5,)), num_classes=2)
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "c.pt", spec.to_dict(), build(spec).model.state_dict(),
                           meta={"classes": ["a", "b"], "input_size": 32, "resize": 40,
                                 "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]})
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / name / f"{i}.png")
    out = tmp_path / "m.pt"
    r = runner.invoke(app, ["train", str(ckpt), "--data", str(tmp_path / "imgs"), "--epochs", "1", "--batch-size", "2",
                            "--val-fraction", "0", "--out", str(out), "--format", "json"])
    assert r.exit_code == 0, r.output
    from secli.networks.checkpoint import read_checkpoint

    meta = read_checkpoint(out)["meta"]
    assert (meta["input_size"], meta["resize"]) == (32, 40)
    assert meta["mean"] == [0.5, 0.5, 0.5]
    assert meta["std"] == [0.25, 0.25, 0.25]


def test_train_reports_progress_through_the_shared_bar(tmp_path, record_progress):
    import commands.train

    calls = record_progress(commands.train)
    r = runner.invoke(app, ["train", "resnet18", "--block", "se", "--stages", "5", "--data", "synthetic",
                            "--epochs", "2", "--train-size", "6", "--val-size", "2", "--image-size", "32",
                            "--batch-size", "3",
                            "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 0, r.output
    assert len(calls) == 1
    assert calls[0]["unit"] == "images"
    assert calls[0]["enabled"]
    assert calls[0]["total"] == calls[0]["done"] == 2 * 6


@pytest.mark.parametrize(("args", "needle"), [
    (["--data", "DIR", "--train-size", "10"], "--train-size does not apply with an image folder"),
    (["--data", "DIR", "--val-size", "10"], "--val-size does not apply with an image folder"),
    (["--val-fraction", "0.1"], "--val-fraction does not apply with --data synthetic"),
    (["--device", "cpu", "--no-amp"], "--no-amp does not apply with --device cpu"),
    (["--image-size", "32", "--input-size", "32"], "--input-size is the old spelling of --image-size"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--stages", "4", "--stages", "5"], "--stages is one comma list here"),
    (["--block", "none", "--ratio", "8"], "--ratio does not apply with --block none"),
])
def test_options_that_do_not_apply_or_conflict_are_refused(tmp_path, args, needle):
    args = [str(tmp_path) if a == "DIR" else a for a in args]
    r = runner.invoke(app, ["train", "resnet18", *args, "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 2, r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0], r.stderr
    assert not (tmp_path / "m.pt").exists()


def test_train_table_renders_from_the_envelope_alone():
    """``commands.train.tables`` needs only the JSON: one precision per column, no 1.438e-05."""
    from commands.render import to_markdown
    from commands.train import tables

    epoch = {"epoch": 1, "lr": 1.438e-05, "train_loss": 2.0, "train_accuracy": 1.0, "val_loss": None,
             "val_accuracy": 0.8988, "seconds": 3.25, "skipped": 0, "too_large": 0}
    document = {"format": "secli-train", "version": 1, "command": "train", "inputs": {}, "results": {
        "epochs": [epoch], "classes": 2, "chance": 0.5, "train_images": 8, "val_images": 2, "seconds": 3.25,
        "final_val_accuracy": 0.8988, "saved": "m.pt", "model": "resnet18 + SE", "data": "synthetic",
        "class_names": ["a", "b"], "image_size": 32, "device": "cpu", "new_head": None, "skipped": 0, "too_large": 0}}
    (table,) = tables(document)
    row = to_markdown(table).splitlines()[4]
    assert row == "| 1 | 0.000014 | 2.0000 | 1.0000 | - | 0.8988 | 3.2 |", row
    assert "e-05" not in to_markdown(table)
    assert "time (s)" in table.columns
