"""One table of parameters, FLOPs and time, and defaults that say what they are (issue 23, 2 and 4).

complexity takes profile's comma lists and labels its rows as profile does; profile carries
FLOPs with --with-complexity; report --join matches rows of separate runs by what the model is;
each architecture's default input is its weights' own; a network's own SE modules are measured
against the network without them; SK says what it replaces.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_one_line_error, run

FAST = ["--device", "cpu", "-b", "1", "--iters", "1", "--warmup", "0", "--threads", "1"]


@pytest.fixture(autouse=True)
def _threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_complexity_takes_a_comma_list_of_kinds_one_row_each_labelled_as_profile_labels_them(tmp_path: Path) -> None:
    counted = run("complexity", "resnet18", "--block", "se,eca,sk", "--image-size", "32", "-f", "json")
    assert counted.exit_code == 0, counted.output
    results = json.loads(counted.stdout)["results"]
    assert [r["label"] for r in results["rows"]] == ["resnet18 + SE", "resnet18 + ECA", "resnet18 + SK"]
    assert [r["kind"] for r in results["rows"]] == ["se", "eca", "sk"]
    assert results["baseline"]["label"] == "resnet18"
    timed = run("profile", "resnet18", "--block", "se,eca,sk", "--image-size", "32", *FAST, "-f", "json")
    assert timed.exit_code == 0, timed.output
    labels = [m["label"] for m in json.loads(timed.stdout)["results"]["models"]]
    assert labels == ["resnet18", *(r["label"] for r in results["rows"])]  # one scheme, row for row
    table = run("complexity", "resnet18", "--block", "se,eca,sk", "--image-size", "32")
    for label in ("resnet18 + SE ", "resnet18 + ECA ", "resnet18 + SK "):
        assert sum(label in line for line in table.stdout.splitlines()) == 3  # once each in params, FLOPs and bytes


def test_profile_with_complexity_counts_what_complexity_counts_in_the_same_rows() -> None:
    timed = run("profile", "resnet18", "--block", "se", "--image-size", "32", *FAST, "--with-complexity", "-f", "json")
    counted = run("complexity", "resnet18", "--block", "se", "--image-size", "32", "-f", "json")
    assert timed.exit_code == 0, timed.output + counted.output
    assert counted.exit_code == 0, timed.output + counted.output
    models = json.loads(timed.stdout)["results"]["models"]
    results = json.loads(counted.stdout)["results"]
    assert models[0]["flops"] == {"flops_fc_only": results["baseline"]["flops"]["fc_only"],
                                  "flops_all_ops": results["baseline"]["flops"]["all_ops"]}
    (row,) = results["rows"]
    assert models[1]["flops"] == {"flops_fc_only": row["flops"]["fc_only"], "flops_all_ops": row["flops"]["all_ops"]}
    assert models[1]["params"] == row["params"]["injected"]
    shown = run("profile", "resnet18", "--block", "se", "--image-size", "32", *FAST, "--with-complexity")
    assert "GFLOPs (FC only)" in shown.stdout
    assert "params (M)" in shown.stdout
    plain = json.loads(run("profile", "resnet18", "--image-size", "32", *FAST, "-f", "json").stdout)
    assert plain["results"]["models"][0]["flops"] is None
    assert plain["inputs"]["with_complexity"] is False


def test_report_joins_separate_runs_by_model_not_by_label(tmp_path: Path) -> None:
    """complexity of r=8 and r=16 (long labels), profile of the default SE (short label): the
    r=16 row joins the timed 'resnet18 + SE', r=8 stays counted only."""
    cx, pr = tmp_path / "cx.json", tmp_path / "pr.json"
    assert run("complexity", "resnet18", "--block", "se", "--ratios", "8,16", "--image-size", "48", "--out",
               str(cx)).exit_code == 0
    assert run("profile", "resnet18", "--block", "se", "--impl", "eager", "--image-size", "32", *FAST, "--out",
               str(pr)).exit_code == 0
    joined = run("report", str(cx), str(pr), "--join", "-f", "csv")
    assert joined.exit_code == 0, joined.output
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(joined.stdout)))
    by_model = {r["model"]: r for r in rows}
    assert list(by_model) == ["resnet18", "resnet18 + SE (eager)", "resnet18 + SE r=8 standard"]
    counted = json.loads(cx.read_text())["results"]
    r16 = next(r for r in counted["rows"] if r["spec"]["block"]["ratio"] == 16)
    assert int(by_model["resnet18 + SE (eager)"]["flops_all_ops"]) == r16["flops"]["all_ops"]  # impl is not in the key
    assert int(by_model["resnet18"]["flops_fc_only"]) == counted["baseline"]["flops"]["fc_only"]
    assert by_model["resnet18 + SE (eager)"]["mode"] == "inference"
    assert float(by_model["resnet18"]["step_median_ms"]) > 0
    assert by_model["resnet18 + SE r=8 standard"]["mode"] == ""  # counted, not timed
    table = run("report", str(cx), str(pr), "--join")
    assert "image sizes differ: FLOPs counted at [48] px, timings at [32] px" in " ".join(table.stdout.split())
    assert "not timed: resnet18 + SE r=8 standard" in table.stdout
    assert_one_line_error(run("report", str(cx), "--join", "-f", "json"), 2, "--join makes a table")


def test_native_input_sizes_come_from_the_weights() -> None:
    """The crop of each network's DEFAULT torchvision weights (torchvision's model docs; EfficientNet
    B2 is trained at 288 there, not the paper's 260), not 224 for everything."""
    from secli.networks.architectures import ARCHITECTURES

    published = {"efficientnet_b0": 224, "efficientnet_b1": 240, "efficientnet_b2": 288, "efficientnet_b3": 300,
                 "efficientnet_b4": 380, "efficientnet_b5": 456, "efficientnet_b6": 528, "efficientnet_b7": 600,
                 "efficientnet_v2_s": 384, "efficientnet_v2_m": 480, "efficientnet_v2_l": 480, "inception_v3": 299,
                 "regnet_y_400mf": 224, "regnet_y_128gf": 384, "resnet50": 224, "mobilenet_v3_small": 224}
    assert {name: ARCHITECTURES[name].default_input for name in published} == published
    assert "IMAGENET1K_V1" in ARCHITECTURES["efficientnet_b4"].input_source
    listed = json.loads(run("inject", "--list", "-f", "json").stdout)["results"]
    b4 = next(r for r in listed if r["name"] == "efficientnet_b4")
    assert b4["image_size"] == 380
    assert b4["image_size_source"] == "torchvision IMAGENET1K_V1 weights"


def test_timm_models_take_their_pretrained_configs_size() -> None:
    pytest.importorskip("timm")
    from secli.networks.models import build_base

    _model, info = build_base("timm:tf_efficientnet_b4")  # timm's default cfg: 380 px
    assert info.default_input == 380
    assert info.input_source == "timm pretrained_cfg"


def test_native_se_is_measured_against_the_network_without_it() -> None:
    """complexity --block none: the baseline is the network with its own SE modules replaced by
    identities (so the row's Δ is theirs); profile --block none times the same two networks."""
    from torchvision.models import mobilenet_v3_small
    from torchvision.ops import SqueezeExcitation

    network = mobilenet_v3_small()
    se = sum(p.numel() for m in network.modules() if isinstance(m, SqueezeExcitation) for p in m.parameters())
    total = sum(p.numel() for p in network.parameters())
    counted = json.loads(run("complexity", "mobilenet_v3_small", "--block", "none", "--image-size", "64", "-f",
                             "json").stdout)
    results = counted["results"]
    assert results["baseline"]["params"] == total - se
    assert results["baseline"]["stripped_native"] == 9
    assert results["baseline"]["label"] == "mobilenet_v3_small without its SE"
    table = run("complexity", "mobilenet_v3_small", "--block", "none", "--image-size", "64")
    assert "mobilenet_v3_small without its SE" in table.stdout
    assert "Δ is what those modules cost" in table.stdout
    timed = run("profile", "mobilenet_v3_small", "--block", "none", "--image-size", "64", *FAST, "-f", "json")
    assert timed.exit_code == 0, timed.output
    models = json.loads(timed.stdout)["results"]["models"]
    assert [m["label"] for m in models] == ["mobilenet_v3_small without its SE", "mobilenet_v3_small"]
    assert [m["params"] for m in models] == [total - se, total]
    assert [m["sites"] for m in models] == [0, 9]
    assert models[0]["spec"]["stripped_native"] is True


def test_stripping_keeps_every_shape_and_removes_only_the_se_modules() -> None:
    from torchvision.models import efficientnet_b0
    from torchvision.ops import SqueezeExcitation

    from secli.networks.native_se import discover_native_sites, strip_native_se

    model = efficientnet_b0().eval()
    sites = discover_native_sites(model)
    assert strip_native_se(model, sites) == 16 == len(sites)
    assert not any(isinstance(m, SqueezeExcitation) for m in model.modules())
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


def test_sk_says_what_it_replaces() -> None:
    """ResNet-50's 16 dense 3x3 convolutions and their BatchNorms, counted by hand:
    (3·64² + 4·128² + 6·256² + 3·512²)·9 weights + 2·(3·64 + 4·128 + 6·256 + 3·512) BN parameters."""
    from commands.complexity import base_changes
    from secli.complexity.workflow import complexity

    result = complexity("resnet50", block="sk", flops=False).to_dict()["results"]
    (row,) = result["rows"]
    convs = (3 * 64**2 + 4 * 128**2 + 6 * 256**2 + 3 * 512**2) * 9
    norms = 2 * (3 * 64 + 4 * 128 + 6 * 256 + 3 * 512)
    assert row["replaces"] == {"modules": 16, "params": convs + norms, "block_params": row["replaces"]["block_params"],
                               "groups": [1]}
    assert row["params"]["added"] == row["replaces"]["block_params"] - (convs + norms) < 0
    (note,) = base_changes(result)
    assert note.startswith("resnet50 + SK: replaces 16 3x3 convolutions of the network (groups 1)")
    assert "2 paths of 32-group 3x3 convolutions" in note
    assert "negative where" in note
    se = complexity("resnet50", block="se", flops=False).to_dict()["results"]
    assert se["rows"][0]["replaces"] is None
    assert base_changes(se) == []


def test_inject_says_what_sk_replaces() -> None:
    """The same hand count as above, in inject's table: why -40% parameters."""
    shown = run("inject", "resnet50", "--block", "sk")
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    convs_and_norms = ((3 * 64**2 + 4 * 128**2 + 6 * 256**2 + 3 * 512**2) * 9
                       + 2 * (3 * 64 + 4 * 128 + 6 * 256 + 3 * 512))
    assert f"SK replaces 16 3x3 convolutions of the network and their BatchNorms ({convs_and_norms:,} params)" in text
    assert "replaces" not in run("inject", "resnet50", "--block", "se").stdout
