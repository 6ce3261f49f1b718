"""Every zoo kind through every command: inject, complexity and profile side by side (one row per
kind), train, visualize-excitation (with what it leaves out of a gate that is not one value per
channel), --ablate, and the options a kind does not take."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_one_line_error, run
from test_zoo_blocks import R18_PARAMS

from secli.blocks.registry import get_kind
from secli.networks.variants import block_variants

ZOO = ["cbam", "cbam-channel", "gc", "coord", "simam", "ge", "ge-plus", "fca", "srm", "gct"]
SIDE_BY_SIDE = "se,eca,cbam,gc,coord,simam,ge,fca,srm,gct"  # the command


def test_every_zoo_kind_is_in_the_test_tables() -> None:
    assert sorted(R18_PARAMS) == sorted(ZOO)
    for kind in ZOO:
        get_kind(kind)  # registered


def test_a_comma_list_gives_one_variant_per_kind_with_its_own_options() -> None:
    variants = block_variants("resnet50", SIDE_BY_SIDE, None, {})
    assert variants is not None
    assert [b.kind for b in variants.blocks] == SIDE_BY_SIDE.split(",")
    # an option goes to the kinds that take it: --kernel-size to ECA and CBAM, --extent to GE
    variants = block_variants("resnet50", "eca,cbam,ge,se", None, {"kernel_size": 3, "extent": 4})
    assert variants is not None
    assert [(b.kind, b.kernel_size, b.extent) for b in variants.blocks] == [
        ("eca", 3, None), ("cbam", 3, None), ("ge", None, 4), ("se", None, None)]


def test_complexity_side_by_side_one_row_per_kind() -> None:
    result = run("complexity", "resnet18", "--block", ",".join(ZOO), "--image-size", "32", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]["rows"]
    assert [r["spec"]["block"]["kind"] for r in rows] == ZOO
    for row in rows:
        kind = row["spec"]["block"]["kind"]
        assert row["params"]["added"] == R18_PARAMS[kind], kind
        assert row["params"]["formula_matches"] is True, kind
        assert row["flops"]["all_ops_added"] > 0, kind  # every kind does arithmetic, parameters or not
    params_free = [r for r in rows if r["spec"]["block"]["kind"] in ("simam", "ge")]
    assert all(r["flops"]["fc_only_added"] == 0 for r in params_free)  # fvcore's default sees none of it


def test_profile_side_by_side_one_row_per_kind() -> None:
    fast = ["--device", "cpu", "--image-size", "32", "-b", "2", "--iters", "1", "--warmup", "0", "--threads", "1"]
    before = torch.get_num_threads()
    try:
        result = run("profile", "resnet18", "--block", ",".join(ZOO), "--mode", "both", "--format", "json", *fast)
    finally:
        torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    models = json.loads(result.stdout)["results"]["models"]
    assert len(models) == 1 + len(ZOO)
    assert all(m["sites"] == 8 for m in models[1:])
    assert [m["label"].split(" + ")[1].split()[0] for m in models[1:]] == [get_kind(k).prefix for k in ZOO]


@pytest.mark.parametrize("kind", ZOO)
def test_train_then_analyse_each_kind(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if kind != "coord":  # the figures once (a gate with a spatial extent); the statistics for every kind
        monkeypatch.setattr("secli.excitation.workflow.write_figures", lambda *args, **kwargs: [])
    ckpt = tmp_path / "m.pt"
    result = run("train", "resnet18", "--block", kind, "--stages", "4,5", "--data", "synthetic", "--epochs", "1",
                 "--train-size", "20", "--val-size", "10", "--image-size", "32", "--batch-size", "10",
                 "--out", str(ckpt), "--format", "json")
    assert result.exit_code == 0, result.output
    prefix = get_kind(kind).prefix
    result = run("visualize-excitation", str(ckpt), "--data", "synthetic", "--per-class", "2", "--out",
                 str(tmp_path / "figs"), "--ablate", "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)["results"]
    assert [s["name"] for s in payload["sites"]] == [f"{prefix}_4_1", f"{prefix}_4_2", f"{prefix}_5_1", f"{prefix}_5_2"]
    assert [s["channels"] for s in payload["sites"]] == [256, 256, 512, 512]  # one value per channel, whatever the gate
    assert all(row["mean_gate"] is not None for row in payload["scores"])
    if kind == "coord":
        assert (tmp_path / "figs" / "distributions.png").is_file()
        assert (tmp_path / "figs" / "depth.png").is_file()
    note = get_kind(kind).gate_note
    assert payload["meta"].get("gate_notes", []) == ([note] if note else [])
    no_gate = {row["no_gate_value"] for row in payload["ablation"]["sites"]}
    assert no_gate == ({0.0} if kind == "gc" else {1.0})  # GC's added term is removed by 0


def test_the_score_table_says_what_a_spatial_gate_leaves_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("secli.excitation.workflow.write_figures", lambda *args, **kwargs: [])
    result = run("visualize-excitation", "resnet18", "--block", "cbam", "--num-classes", "10", "--data", "synthetic",
                 "--per-class", "1", "--image-size", "32", "--sites", "CBAM_5_2", "--out", str(tmp_path / "f"))
    assert result.exit_code == 0, result.output
    assert "spatial gate" in result.stdout
    assert "left out" in result.stdout
    # the gate hooked is CBAM's channel gate: (N, C, 1, 1) values in [0, 1]
    summary = json.loads((tmp_path / "f" / "summary.json").read_text())["results"]
    assert summary["sites"][0]["channels"] == 512
    assert (summary["sites"][0]["low"], summary["sites"][0]["high"]) == (0, 1)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["inject", "resnet18", "--block", "simam", "--ratio", "8"], "--ratio does not apply to SIMAM blocks"),
        (["inject", "resnet18", "--block", "coord", "--ratio", "8"], "reduction is the paper's 32"),
        (["inject", "resnet18", "--block", "cbam-channel", "--kernel-size", "3"], "no spatial conv"),
        (["inject", "resnet18", "--block", "cbam", "--kernel-size", "4"], "odd whole number"),
        (["inject", "resnet18", "--block", "gc", "--no-bias"], "--bias does not apply to GC blocks"),
        (["inject", "resnet18", "--block", "se", "--frequencies", "8"], "--frequencies does not apply to SE blocks"),
        (["inject", "resnet18", "--block", "fca", "--frequencies", "5"], "FcaNet frequencies must be one of"),
        (["inject", "resnet18", "--block", "ge", "--extent", "3"], "GE extent must be one of"),
        (["inject", "resnet18", "--block", "ge-plus", "--extent", "0"], "spatial size"),
        (["complexity", "resnet18", "--block", "srm,gct", "--extent", "2"], "--extent does not apply to SRM blocks"),
    ],
)
def test_options_a_kind_does_not_take_are_one_line_exit_2(args: list[str], text: str) -> None:
    assert_one_line_error(run(*args), 2, text)


def test_inject_with_new_options_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "fca.pt"
    result = run("inject", "resnet18", "--block", "fca", "--frequencies", "8", "--stages", "5", "--out", str(out),
                 "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["results"]
    assert data["block"]["frequencies"] == 8
    assert data["params"]["added"] == 2 * (2 * 512 * 32)
    from secli.networks.models import load_model

    assert load_model(str(out)).spec.block.frequencies == 8
