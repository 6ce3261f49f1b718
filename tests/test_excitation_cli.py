"""``secli visualize-excitation`` through Typer's CliRunner: outputs, re-plotting, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from commands.app import app
from secli.build.checkpoint import save_checkpoint
from secli.build.models import build
from secli.build.spec import BlockSpec, ModelSpec

runner = CliRunner()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A tiny SE-ResNet-18 checkpoint (untrained) with synthetic class names and 32 px input."""
    torch.manual_seed(0)
    spec = ModelSpec(arch="resnet18", block=BlockSpec(kind="se", stages=(4, 5)), num_classes=10)
    built = build(spec)
    path = tmp_path_factory.mktemp("ckpt") / "se_r18.pt"
    save_checkpoint(path, spec.to_dict(), built.model.state_dict(), meta={"input_size": 32, "resize": 32})
    return path


def _images(root: Path, counts: dict[str, int], corrupt: str | None = None) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (36, 36, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    if corrupt:
        (root / corrupt / "bad.png").write_bytes(b"\x89PNG truncated")
    return root


def _err(result) -> str:
    return result.output + (result.stderr if hasattr(result, "stderr") else "")


def test_synthetic_run_writes_figures_stats_and_replots(ckpt, tmp_path):
    out = tmp_path / "figs"
    r = runner.invoke(app, ["visualize-excitation", str(ckpt), "--data", "synthetic", "--per-class", "2",
                            "--sites", "SE_5_2", "--out", str(out), "--svg", "--save-raw", "--figures", "all",
                            "--format", "json"])
    assert r.exit_code == 0, _err(r)
    payload = json.loads(r.stdout)
    assert payload["counts"] == {name: 2 for name in payload["classes"]} and len(payload["classes"]) == 10
    assert [s["name"] for s in payload["sites"]] == ["SE_5_2"]
    for name in ("class_means.png", "class_means.svg", "SE_5_2_mean_std.png", "SE_5_2_hist.png", "stats.npz", "summary.json"):
        assert (out / name).is_file(), name
    assert (out / "class_means.png").read_bytes()[:4] == b"\x89PNG"
    with np.load(out / "raw.npz") as raw:
        assert raw["x1/SE_5_2"].shape == (20, 1, 512) and raw["labels"].shape == (20,)
    # re-plot a subset without the network
    again = tmp_path / "again"
    r = runner.invoke(app, ["visualize-excitation", "--from-stats", str(out), "--classes", "disk,ring", "--out", str(again)])
    assert r.exit_code == 0, _err(r)
    assert (again / "class_means.png").is_file() and not (again / "stats.npz").exists()


def test_folder_with_corrupt_image_is_skipped_and_counted(ckpt, tmp_path):
    data = _images(tmp_path / "imgs", {"a": 2, "b": 2}, corrupt="b")
    r = runner.invoke(app, ["visualize-excitation", str(ckpt), "--data", str(data), "--sites", "SE_4_1",
                            "--out", str(tmp_path / "o"), "--format", "json"])
    assert r.exit_code == 0, _err(r)
    payload = json.loads(r.stdout)
    assert payload["meta"]["skipped"] == 1
    assert payload["counts"] == {"a": 2, "b": 2}


@pytest.mark.parametrize(
    "args, message",
    [
        (["resnet18", "--data", "synthetic"], "no excitation sites found in resnet18; inject some with secli inject"),
        (["CKPT", "--data", "synthetic", "--sites", "SE_2_1"], "unknown site 'SE_2_1'; valid sites: SE_4_1, SE_4_2, SE_5_1, SE_5_2"),
        (["CKPT", "--data", "synthetic", "--classes", "hexagon"], "unknown class 'hexagon'; valid classes: disk, square"),
        (["CKPT", "--data", "EMPTY"], "no images found in"),
        (["CKPT", "--data", "IMGS", "--per-class", "5"], "--per-class 5 is more than class 'a' has (2 images)"),
        (["CKPT", "--data", "synthetic", "--ddp"], "--ddp needs a torchrun launch"),
        (["CKPT", "--data", "synthetic", "--scales", "0.5"], "enlargement factors >= 1.0"),
        (["--from-stats", "NOSTATS"], "holds no excitation statistics"),
    ],
)
def test_bad_input_is_one_line(ckpt, tmp_path, args, message):
    (tmp_path / "empty" / "x").mkdir(parents=True)
    imgs = _images(tmp_path / "imgs", {"a": 2, "b": 3})
    subst = {"CKPT": str(ckpt), "EMPTY": str(tmp_path / "empty"), "IMGS": str(imgs), "NOSTATS": str(tmp_path / "empty")}
    r = runner.invoke(app, ["visualize-excitation", *[subst.get(a, a) for a in args], "--out", str(tmp_path / "o")])
    assert r.exit_code != 0
    text = " ".join(_err(r).split())
    assert message in text, text
    assert "Traceback" not in text and len(_err(r).strip().splitlines()) <= 3


def test_existing_output_folder_is_refused_without_force(ckpt, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = runner.invoke(app, ["visualize-excitation", str(ckpt), "--data", "synthetic", "--out", str(out)])
    assert r.exit_code != 0 and "exists and is not empty" in _err(r)
    assert (out / "keep.txt").read_text() == "mine"


def test_all_images_unreadable_is_an_error(ckpt, tmp_path):
    root = tmp_path / "bad"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.jpg").write_bytes(b"nope")
    r = runner.invoke(app, ["visualize-excitation", str(ckpt), "--data", str(root), "--sites", "SE_5_2", "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "could be read (1 skipped)" in " ".join(_err(r).split())


def test_ddp_joins_the_group_with_a_timeout(ckpt, tmp_path, monkeypatch):
    # the shared secli.util.distributed set-up (with a timeout), not a bare init_process_group that can hang forever
    import torch.distributed as dist

    seen = {}

    class Stop(Exception):
        pass

    def fake_init(backend, **kwargs):
        seen.update(kwargs, backend=backend)
        raise Stop

    monkeypatch.setattr(dist, "init_process_group", fake_init)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29599"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    r = runner.invoke(app, ["visualize-excitation", str(ckpt), "--data", "synthetic", "--device", "cpu", "--ddp",
                            "--out", str(tmp_path / "o")])
    assert r.exit_code != 0
    assert seen["backend"] == "gloo" and seen["timeout"].total_seconds() > 0


def test_progress_goes_through_the_shared_bar_and_is_off_for_json(ckpt, tmp_path, record_progress):
    import commands.progress

    calls = record_progress(commands.progress)
    r = runner.invoke(app, ["visualize-excitation", str(ckpt), "--data", "synthetic", "--per-class", "1",
                            "--out", str(tmp_path / "o"), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert [{k: c[k] for k in ("total", "enabled", "unit", "done")} for c in calls] == [
        {"total": 10, "enabled": False, "unit": "images", "done": 10}
    ]


def test_more_classes_than_plotted_are_capped_at_the_constant(tmp_path, monkeypatch):
    import secli.excitation.plots
    from commands.visualize_excitation import MAX_PLOTTED_CLASSES
    from secli.excitation.result import ExcitationResult, SiteInfo

    k = MAX_PLOTTED_CLASSES + 1
    rng = np.random.default_rng(0)
    g = rng.random((k, 1, 4))
    arrays = {"x1": {"SE_1": {"count": np.ones(k), "sum": g, "sumsq": g * g, "hist": np.ones((k, 1, 5)),
                              "above": np.zeros((k, 1))}}}
    ExcitationResult([SiteInfo("SE_1", "se", 4, 1, 0.0, 1.0, 5)], [f"c{i}" for i in range(k)], [1.0], arrays).save(tmp_path / "s")
    seen = []
    monkeypatch.setattr(secli.excitation.plots, "write_figures", lambda result, out, classes, **kw: seen.append(classes) or [])
    r = runner.invoke(app, ["visualize-excitation", "--from-stats", str(tmp_path / "s"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert seen == [list(range(MAX_PLOTTED_CLASSES))]
    assert f"first {MAX_PLOTTED_CLASSES} of {k} classes" in " ".join(r.output.split())
