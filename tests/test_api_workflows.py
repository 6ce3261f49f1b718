"""The Python calls equal the commands: ``visualize_excitation(...)`` and ``train(...)`` return
results whose ``to_dict()`` is the JSON the CLI prints for the same options (inject's and
complexity's are compared in test_cli_inject.py and test_complexity_cli.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from commands.app import app
from secli.excitation.workflow import visualize_excitation
from secli.training.workflow import train

runner = CliRunner()
TIMINGS = {"seconds", "images_per_second", "ablation_seconds"}


def _without_timings(value: Any) -> Any:
    """The same structure with wall-clock times blanked: they differ between any two runs."""
    if isinstance(value, dict):
        return {k: None if k in TIMINGS else _without_timings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _cli_json(args: list[str]) -> dict:
    r = runner.invoke(app, [*args, "--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_visualize_excitation_equals_the_command(tmp_path):
    from secli.blocks.spec import BlockSpec, ModelSpec
    from secli.networks.checkpoint import save_checkpoint
    from secli.networks.models import build

    spec = ModelSpec(arch="resnet18", block=BlockSpec(kind="se", stages=(5,)), num_classes=10)
    ckpt = save_checkpoint(tmp_path / "m.pt", spec.to_dict(), build(spec).model.state_dict(),
                           meta={"input_size": 32, "resize": 32})
    out = tmp_path / "figs"
    payload = _cli_json(["visualize-excitation", str(ckpt), "--data", "synthetic", "--per-class", "1",
                         "--classes", "disk,ring,dots", "--sites", "SE_5_2", "--out", str(out), "--save-raw"])
    assert (payload["format"], payload["command"]) == ("secli-visualize-excitation", "visualize-excitation")
    assert payload["inputs"]["classes"] == ["disk", "ring", "dots"]
    assert payload["inputs"]["per_class"] == 1
    import shutil

    shutil.rmtree(out)  # the same options, --force included
    seen: list[tuple[int, int, str]] = []
    run = visualize_excitation(str(ckpt), data="synthetic", per_class=1, classes="disk,ring,dots",
                               sites="SE_5_2", out=str(out), save_raw=True,
                               progress=lambda *report: seen.append(report))
    assert _without_timings(run.to_dict()) == _without_timings(payload)
    assert run.to_dict()["results"]["files"] == payload["results"]["files"]
    assert (out / "raw.npz").is_file()
    assert seen[0] == (0, 3, f"excitation of {run.source}")
    assert seen[-1][:2] == (3, 3)
    # saved statistics: identical, timings included (nothing is recomputed), with and without --out
    again = _cli_json(["visualize-excitation", "--from-stats", str(out), "--out", str(tmp_path / "a")])
    assert visualize_excitation(from_stats=out, out=tmp_path / "a", force=True).to_dict()["results"] == again["results"]
    printed = _cli_json(["visualize-excitation", "--from-stats", str(out)])
    assert visualize_excitation(from_stats=str(out)).to_dict() == printed
    assert printed["results"]["files"] == []
    assert printed["results"]["scores"] == payload["results"]["scores"]


def test_train_equals_the_command(tmp_path):
    out = tmp_path / "m.pt"
    payload = _cli_json(["train", "resnet18", "--block", "se", "--stages", "5", "--ratio", "8", "--data", "synthetic",
                         "--epochs", "2", "--train-size", "8", "--val-size", "4", "--image-size", "32",
                         "--batch-size", "4", "--out", str(out)])
    seen: list[tuple[int, int, str]] = []
    epochs: list[int] = []
    from secli.blocks.spec import BlockSpec

    torch.manual_seed(123)  # the call seeds itself, like the command: earlier random draws do not matter
    run = train("resnet18", block="se", stages=(5,), ratio=8, data="synthetic", epochs=2,
                train_size=8, val_size=4, image_size=32, batch_size=4, out=out, force=True,
                progress=lambda *report: seen.append(report), on_epoch=lambda e: epochs.append(e.epoch))
    document = run.to_dict()
    assert (document["format"], document["version"], document["command"]) == ("secli-train", 1, "train")
    assert document["inputs"].pop("force") is True
    assert payload["inputs"].pop("force") is False  # the file exists now
    assert _without_timings(document) == _without_timings(payload)
    assert train("resnet18", block=BlockSpec(kind="se", stages=(5,), ratio=8), data="synthetic", epochs=1,
                 train_size=4, val_size=2, image_size=32, batch_size=4, out=out,
                 force=True).to_dict()["inputs"]["block"]["ratio"] == 8  # a BlockSpec is recorded as its fields
    assert epochs == [1, 2]
    assert seen[0] == (0, 16, f"training {run.model}")
    assert seen[-1][:2] == (16, 16)
    # a checkpoint says what the model is: a block option given with one names itself
    from secli.util.errors import SecliUsageError

    with pytest.raises(SecliUsageError, match="saved model; --ratio applies to architecture names only"):
        train(str(out), ratio=8, out=tmp_path / "again.pt")


def test_train_block_options_override_a_spec_file_field_by_field(tmp_path):
    from secli.blocks.options import resolve_model_spec

    path = tmp_path / "s.yaml"
    path.write_text("arch: resnet18\nblock: {kind: se, ratio: 4, stages: [4, 5]}\n")
    spec = resolve_model_spec(None, path, None, 3, ratio=8)
    assert (spec.arch, spec.block.ratio, spec.block.stages, spec.num_classes) == ("resnet18", 8, (4, 5), 3)


def test_workflow_errors_are_the_commands(tmp_path):
    from secli.util.errors import SecliUsageError

    with pytest.raises(SecliUsageError, match="--out"):
        visualize_excitation("resnet18", data="synthetic")
    with pytest.raises(SecliUsageError, match=r"--out FILE\.pt"):
        train("resnet18")
