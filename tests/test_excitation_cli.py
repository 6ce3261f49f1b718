"""``secli visualize-excitation`` through Typer's CliRunner: outputs, re-plotting, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from commands.app import app
from secli.blocks.spec import BlockSpec, ModelSpec
from secli.networks.checkpoint import save_checkpoint
from secli.networks.models import build

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
    payload = json.loads(r.stdout)["results"]
    assert payload["counts"] == dict.fromkeys(payload["classes"], 2)
    assert len(payload["classes"]) == 10
    assert [s["name"] for s in payload["sites"]] == ["SE_5_2"]
    for name in ("class_means.png", "class_means.svg", "SE_5_2_mean_std.png", "SE_5_2_hist.png", "stats.npz",
                 "summary.json"):
        assert (out / name).is_file(), name
    assert (out / "class_means.png").read_bytes()[:4] == b"\x89PNG"
    with np.load(out / "raw.npz") as raw:
        assert raw["x1/SE_5_2"].shape == (20, 1, 512)
        assert raw["labels"].shape == (20,)
    # re-plot a subset without the network
    again = tmp_path / "again"
    r = runner.invoke(app, ["visualize-excitation", "--from-stats", str(out), "--classes", "disk,ring",
                            "--out", str(again)])
    assert r.exit_code == 0, _err(r)
    assert (again / "class_means.png").is_file()
    assert not (again / "stats.npz").exists()


def test_folder_with_corrupt_image_is_skipped_and_counted(ckpt, tmp_path):
    data = _images(tmp_path / "imgs", {"a": 2, "b": 2}, corrupt="b")
    r = runner.invoke(app, ["visualize-excitation", str(ckpt), "--data", str(data), "--sites", "SE_4_1",
                            "--out", str(tmp_path / "o"), "--format", "json"])
    assert r.exit_code == 0, _err(r)
    payload = json.loads(r.stdout)["results"]
    assert payload["meta"]["skipped"] == 1
    assert payload["counts"] == {"a": 2, "b": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["resnet18", "--data", "synthetic"], "no excitation sites found in resnet18; inject some with secli inject"),
        (["CKPT", "--data", "synthetic", "--sites", "SE_2_1"], "unknown site 'SE_2_1'; valid sites: SE_4_1, "
                                                               "SE_4_2, SE_5_1, SE_5_2"),
        (["CKPT", "--data", "synthetic", "--classes", "hexagon"],
         "unknown class 'hexagon'; valid classes: disk, square"),
        (["CKPT", "--data", "EMPTY"], "no images found in"),
        (["CKPT", "--data", "synthetic", "--ablate"], "--ablate needs the names of se_r18.pt's outputs"),
        (["CKPT", "--data", "IMGS", "--ablate"], "--ablate needs the names of se_r18.pt's outputs"),
        (["CKPT", "--data", "synthetic", "--from-stats", "NOSTATS"], "give no model and no --data"),
        (["CKPT", "--data", "synthetic", "--num-classes", "3"], "saved model; --num-classes applies to "
                                                                "architecture names only"),
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
    assert "Traceback" not in text
    assert len(_err(r).strip().splitlines()) <= 3


def test_existing_output_folder_is_refused_without_force(ckpt, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = runner.invoke(app, ["visualize-excitation", str(ckpt), "--data", "synthetic", "--out", str(out)])
    assert r.exit_code == 2
    assert "exists and is not empty" in _err(r)
    assert (out / "keep.txt").read_text() == "mine"


def test_all_images_unreadable_is_an_error(ckpt, tmp_path):
    root = tmp_path / "bad"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.jpg").write_bytes(b"nope")
    r = runner.invoke(app, ["visualize-excitation", str(ckpt), "--data", str(root), "--sites", "SE_5_2", "--out",
                            str(tmp_path / "o")])
    assert r.exit_code == 1
    assert "could be read (1 skipped)" in " ".join(_err(r).split())


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
    assert seen["backend"] == "gloo"
    assert seen["timeout"].total_seconds() > 0


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
    import secli.excitation.workflow
    from commands.visualize_excitation import MAX_PLOTTED_CLASSES
    from secli.excitation.result import ExcitationResult, SiteInfo

    k = MAX_PLOTTED_CLASSES + 1
    rng = np.random.default_rng(0)
    g = rng.random((k, 1, 4))
    arrays = {"x1": {"SE_1": {"count": np.ones(k), "sum": g, "sumsq": g * g, "hist": np.ones((k, 1, 5)),
                              "above": np.zeros((k, 1))}}}
    ExcitationResult([SiteInfo("SE_1", "se", 4, 1, 0.0, 1.0, 5)], [f"c{i}" for i in range(k)], [1.0],
                     arrays).save(tmp_path / "s")
    seen = []
    monkeypatch.setattr(secli.excitation.workflow, "write_figures",
                        lambda result, out, classes, **kw: seen.append(classes) or [])
    r = runner.invoke(app, ["visualize-excitation", "--from-stats", str(tmp_path / "s"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert seen == [list(range(MAX_PLOTTED_CLASSES))]
    assert f"first {MAX_PLOTTED_CLASSES} of {k} classes" in " ".join(r.output.split())


def test_per_class_beyond_a_class_takes_what_there_is_and_says_so(ckpt, tmp_path):
    imgs = _images(tmp_path / "imgs", {"a": 2, "b": 4, "c": 1})
    r = runner.invoke(app, ["visualize-excitation", str(ckpt), "--data", str(imgs), "--per-class", "3",
                            "--sites", "SE_5_2", "--out", str(tmp_path / "o"), "--format", "json"])
    assert r.exit_code == 0, _err(r)
    results = json.loads(r.stdout)["results"]
    assert results["counts"] == {"a": 2, "b": 3, "c": 1}
    note = "--per-class 3: took all images of 2 classes with fewer: a (2), c (1)"
    assert results["warnings"] == [note]
    assert [line for line in r.stderr.splitlines() if line.strip()] == [f"warning: {note}"]


@pytest.fixture(scope="module")
def named_ckpt(tmp_path_factory) -> Path:
    """resnet18 with SE in stage 5 whose 10 outputs are named as synthetic's classes (as secli train saves)."""
    from secli.data.synthetic import SYNTHETIC_CLASSES

    torch.manual_seed(3)
    spec = ModelSpec(arch="resnet18", block=BlockSpec(kind="se", stages=(5,)), num_classes=10)
    built = build(spec)
    path = tmp_path_factory.mktemp("named") / "named.pt"
    save_checkpoint(path, spec.to_dict(), built.model.state_dict(),
                    meta={"input_size": 32, "resize": 32, "classes": list(SYNTHETIC_CLASSES)})
    return path


class _Constant(torch.nn.Module):
    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.view(1, -1, 1, 1).expand_as(x)


def test_ablate_counts_equal_a_network_with_the_gate_swapped_for_a_constant(named_ckpt, tmp_path):
    out = tmp_path / "o"
    r = runner.invoke(app, ["visualize-excitation", str(named_ckpt), "--data", "synthetic", "--per-class", "2",
                            "--sites", "SE_5_1,SE_5_2", "--ablate", "--save-raw", "--out", str(out),
                            "--format", "json"])
    assert r.exit_code == 0, _err(r)
    ablation = json.loads(r.stdout)["results"]["ablation"]
    # the reference: the same images, the gate module itself replaced (no hooks), argmax by hand
    from secli.data.sources import choose_preprocess, open_data
    from secli.networks.models import load_model
    from secli.networks.sites import set_module

    built = load_model(str(named_ckpt))
    pre = choose_preprocess("synthetic", "resnet18", None, None, built.meta)
    data = open_data("synthetic", pre, None, 2, 0)
    x = torch.stack([data.dataset[i][0] for i in data.indices])
    y = torch.tensor([data.dataset[i][1] for i in data.indices])
    model = built.model.eval()

    def correct() -> int:
        with torch.no_grad():
            return int((model(x).argmax(1) == y).sum())

    with np.load(out / "raw.npz") as raw:
        gates = {name: raw[f"x1/{name}"][:, 0] for name in ("SE_5_1", "SE_5_2")}
        labels = raw["labels"]
    assert ablation["images"] == 20
    assert ablation["correct"] == correct()
    for row in ablation["sites"]:
        site = next(s for s in built.sites if s.name == row["site"])
        original = model.get_submodule(site.gate_path)
        class_means = np.stack([gates[site.name][labels == k].mean(axis=0) for k in range(10)])
        mean_gate = torch.tensor(class_means.mean(axis=0), dtype=torch.float32)
        set_module(model, site.gate_path, _Constant(mean_gate))
        expect_mean = correct()
        set_module(model, site.gate_path, _Constant(torch.ones(site.channels)))
        expect_none = correct()
        set_module(model, site.gate_path, original)
        assert (row["correct_mean_gate"], row["correct_no_gate"]) == (expect_mean, expect_none), row["site"]
        assert row["acc_no_gate"] == pytest.approx(expect_none / 20)
        assert row["delta_no_gate"] == pytest.approx((expect_none - ablation["correct"]) / 20)
    # the saved statistics print their scores and ablation with no --out, in every format
    r = runner.invoke(app, ["visualize-excitation", "--from-stats", str(out)])
    assert r.exit_code == 0, _err(r)
    text = " ".join(r.stdout.split())
    assert "Ablation: top-1 on 20 images" in text
    assert "SE_5_2" in text
    assert "wrote" not in text
    r = runner.invoke(app, ["visualize-excitation", "--from-stats", str(out), "--ablate", "--sites", "SE_5_2",
                            "--format", "csv"])
    assert r.exit_code == 0, _err(r)
    # one tidy table: the scores and the ablation joined on the site, ASCII column names, raw fractions
    header, row = r.stdout.splitlines()
    assert header == ("site,channels,specificity,chance,saturation,mean_gate,"
                      "acc_mean_gate,delta_mean_gate,acc_no_gate,delta_no_gate")
    assert row.startswith("SE_5_2,512,")
    assert "SE_5_1" not in r.stdout


def test_from_stats_refuses_what_does_not_apply(ckpt, tmp_path):
    from commands.visualize_excitation import tables

    stats = tmp_path / "s"
    r = runner.invoke(app, ["visualize-excitation", str(ckpt), "--data", "synthetic", "--per-class", "1",
                            "--sites", "SE_5_2", "--out", str(stats)])
    assert r.exit_code == 0, _err(r)
    for args, text in [
        (["--ablate"], "hold no ablation; run the model again with --ablate"),
        (["--batch-size", "4"], "--batch-size does not apply to --from-stats: it is for computing statistics"),
        (["--per-class", "4"], "--per-class does not apply to --from-stats"),
        (["--svg"], "--svg does not apply to --from-stats: it is for drawing figures (add --out DIR)"),
        (["--classes", "disk"], "--classes does not apply to --from-stats"),
    ]:
        r = runner.invoke(app, ["visualize-excitation", "--from-stats", str(stats), *args])
        assert r.exit_code == 2, (args, r.output)
        assert text in " ".join(r.stderr.split()), (args, r.output)
        assert len([line for line in r.stderr.splitlines() if line.strip()]) == 1
    # summary.json is the command's envelope: tables() renders it as the command does
    document = json.loads((stats / "summary.json").read_text())
    assert document["format"] == "secli-visualize-excitation"
    assert document["inputs"]["per_class"] == 1
    [table] = tables(document)
    assert table.columns[:3] == ["site", "C", "specificity (eta^2)"]
    assert table.rows[0][0] == "SE_5_2"
    # one image per class at 10 classes: defined; and the older bare summary renders too
    bare = {"format": "secli-excitation", "version": 1, **document["results"]}
    assert tables(bare)[0].rows == table.rows


def test_undefined_specificity_is_n_a_in_tables_and_null_in_json(tmp_path):
    from secli.excitation.result import ExcitationResult, SiteInfo

    g = np.full((2, 1, 4), 0.5)
    arrays = {"x1": {"SE_1": {"count": np.ones(2), "sum": g, "sumsq": g * g, "hist": np.ones((2, 1, 5)),
                              "above": np.zeros((2, 1))}}}
    ExcitationResult([SiteInfo("SE_1", "se", 4, 1, 0.0, 1.0, 5)], ["a", "b"], [1.0], arrays).save(tmp_path / "s")
    r = runner.invoke(app, ["visualize-excitation", "--from-stats", str(tmp_path / "s"), "--format", "json"])
    assert r.exit_code == 0, _err(r)
    assert json.loads(r.stdout)["results"]["scores"][0]["specificity"] is None
    r = runner.invoke(app, ["visualize-excitation", "--from-stats", str(tmp_path / "s"), "--format", "markdown"])
    assert "| SE_1 | 4 | n/a | 1.000 | 0.0 | 0.500 |" in r.stdout


def test_help_shows_the_ablate_flag_and_defaults():
    r = runner.invoke(app, ["visualize-excitation", "--help"], env={"COLUMNS": "200"})
    text = " ".join(r.stdout.split())
    assert "--ablate" in text
    assert "class-agnostic mean" in text
    assert "[default: 32]" in text
    assert "[default: auto]" in text
    for flag in ("--ablate", "--ddp", "--svg", "--save-raw"):  # flags, not options taking a <bool>
        line = next(line for line in r.stdout.splitlines() if f" {flag} " in line)
        assert "<bool>" not in line, line


def test_ablation_gets_its_own_progress_bar(named_ckpt, tmp_path, record_progress):
    import commands.progress

    calls = record_progress(commands.progress)
    r = runner.invoke(app, ["visualize-excitation", str(named_ckpt), "--data", "synthetic", "--per-class", "1",
                            "--sites", "SE_5_2", "--ablate", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, _err(r)
    assert [(c["total"], c["done"], c["unit"]) for c in calls] == [(10, 10, "images"), (10, 10, "images")]
    assert "3 forward passes per image" in " ".join(r.stdout.split())


def test_the_ablation_time_is_the_computing_runs_and_a_replot_says_so():
    """A --from-stats re-plot of one site of two does not claim 3 passes in the 2-site run's time."""
    from commands.visualize_excitation import _ablation_time

    sites = [{"site": "SE_4_1"}, {"site": "SE_5_2"}]
    run = {"meta": {"ablation_seconds": 112.1, "ablation_sites": 2}, "ablation": {"sites": sites}, "computed": True}
    passes = "5 forward passes per image (2 sites, 2 passes each, + 1 unmodified) in 112.1 s"
    assert _ablation_time(run) == [passes]
    replot = {**run, "computed": False, "ablation": {"sites": sites[1:]}}
    assert _ablation_time(replot) == [f"the run that computed these statistics: {passes}; 1 of its 2 sites shown here"]
    older = {"meta": {"ablation_seconds": 112.1}, "ablation": {"sites": sites[1:]}, "computed": False}
    assert _ablation_time(older) == ["the ablation took 112.1 s in the run that computed these statistics"]
