"""``secli complexity`` through Typer's CliRunner: formats, sweeps, files, and every bad input.

Networks run at 32x32 (counts of parameters do not depend on the input size; FLOP checks that
need published figures live in test_complexity.py).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from commands.app import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()
R18_WIDTHS = {2: 64, 3: 128, 4: 256, 5: 512}  # two basic blocks per stage


def se_added(ratio: int, stages=(2, 3, 4, 5)) -> int:
    """SE on resnet18's residual branches, weights and biases, by hand."""
    return sum(2 * (2 * c * c // ratio + c // ratio + c) for s, c in R18_WIDTHS.items() if s in stages)


def invoke(*args: str):
    return runner.invoke(app, ["complexity", *args])


def one_line_error(result, code: int) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def json_sweep():
    result = invoke("resnet18", "--ratios", "4,16", "--stages", "2", "--stages", "3,4", "--image-size", "32",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def rows_of(result) -> list[dict]:
    """The variants of a complexity envelope printed by ``result``."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["results"]["rows"]


def test_json_sweep_is_one_envelope_with_the_baseline_once(json_sweep) -> None:
    assert (json_sweep["format"], json_sweep["version"], json_sweep["command"]) == ("secli-complexity", 1, "complexity")
    assert json_sweep["inputs"]["ratios"] == "4,16"
    assert json_sweep["inputs"]["stages"] == ["2", "3,4"]
    results = json_sweep["results"]
    assert results["image_size"] == 32
    assert results["baseline"]["params"] == 11_689_512  # torchvision resnet18
    base_flops = results["baseline"]["flops"]
    rows = results["rows"]
    assert len(rows) == 4
    combos = [(d["spec"]["block"]["ratio"], tuple(d["spec"]["block"]["stages"])) for d in rows]
    assert combos == [(4, (2,)), (4, (3, 4)), (16, (2,)), (16, (3, 4))]
    for item, (ratio, stages) in zip(rows, combos):
        params = item["params"]
        assert "baseline" not in params  # the baseline is given once, not per row
        assert params["added"] == params["injected"] - 11_689_512 == se_added(ratio, stages)
        assert params["formula"] == params["added"]
        assert params["formula_matches"] is True
        assert isinstance(params["formula"], int)
        assert isinstance(params["formula_weights"], int)
        for key in ("fc_only", "all_ops"):  # raw FLOP counts, typed as ints
            assert isinstance(item["flops"][key], int)
            assert item["flops"][f"{key}_added"] == item["flops"][key] - base_flops[key] > 0
        assert item["crosscheck"]["agree"] is True


def test_single_run_json_by_stage() -> None:
    (row,) = rows_of(invoke("resnet18", "--image-size", "32", "--by-stage", "-f", "json"))
    assert row["params"]["added"] == se_added(16)
    stages = {s["stage"]: s for s in row["by_stage"]}
    for stage, c in R18_WIDTHS.items():
        assert stages[stage]["blocks"] == 2
        assert stages[stage]["channels"] == [c]
        assert stages[stage]["formula"] == 2 * (2 * c * c // 16 + c // 16 + c)
        assert isinstance(stages[stage]["formula"], int)


def test_table_and_markdown_and_csv() -> None:
    table = invoke("resnet18", "--positions", "standard,post", "--image-size", "32")
    assert table.exit_code == 0, table.output
    assert "multiply-add" in table.stdout
    assert "not counted" in table.stdout
    assert "cross-check" in table.stdout
    md = invoke("resnet18", "--gate", "tanh", "--image-size", "32", "-f", "markdown")
    assert md.exit_code == 0
    assert "| model |" in md.stdout
    assert "| resnet18 + SE r=16 standard gate=tanh |" in md.stdout
    out = invoke("resnet18", "--squeeze", "avg,max", "--image-size", "32", "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["variant"] for r in rows] == ["SE r=16 standard", "SE r=16 standard squeeze=max"]
    assert [r["model"] for r in rows] == ["resnet18 + SE r=16 standard", "resnet18 + SE r=16 standard squeeze=max"]
    assert all(int(r["params_added"]) == se_added(16) for r in rows)
    assert int(rows[1]["flops_fc_only_injected"]) == int(rows[0]["flops_fc_only_injected"])


def test_saved_model_file(tmp_path: Path) -> None:
    path = tmp_path / "se_r18.pt"
    saved = runner.invoke(app, ["inject", "resnet18", "--block", "se", "--ratio", "8", "--out", str(path)])
    assert saved.exit_code == 0, saved.output
    (data,) = rows_of(invoke(str(path), "--image-size", "32", "-f", "json"))
    assert data["params"]["added"] == se_added(8)
    assert data["spec"]["block"]["ratio"] == 8


def test_spec_file_with_rows_and_sweep(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("arch: resnet18\nimage_size: 32\nblock: {kind: se, bias: false}\n"
                    "rows:\n  - {ratio: 4}\nsweep:\n  ratio: [8, 16]\n")
    data = rows_of(invoke(str(spec), "-f", "json"))  # a YAML file in place of the model means --spec
    weights = {r: sum(2 * 2 * c * c / r for c in R18_WIDTHS.values()) for r in (4, 8, 16)}
    assert [d["params"]["added"] for d in data] == [weights[4], weights[8], weights[16]]


@pytest.mark.parametrize(("args", "code", "needle"), [
    (["resnet5"], 2, "unknown architecture 'resnet5'"),
    (["no_such_model.pt"], 1, "no_such_model.pt"),
    (["resnet18", "--ratios", "4,0,8"], 2, "--ratios must be whole numbers >= 1"),
    (["resnet18", "--ratio", "4", "--ratios", "8,16"], 2, "either --ratio or --ratios"),
    (["resnet18", "--stages", "2,x"], 2, "--stages must be whole numbers"),
    (["resnet18", "--stages", "7"], 2, "unknown stage 7"),
    (["resnet18", "--positions", "standard,sideways"], 2, "unknown position 'sideways'"),
    ([], 2, "name an architecture"),
])
def test_bad_input_one_line(args: list[str], code: int, needle: str) -> None:
    assert needle in one_line_error(invoke(*args), code)


def test_unknown_yaml_keys(tmp_path: Path) -> None:
    cases = {
        "arch: resnet18\nblok: se\n": "unknown key 'blok'; allowed keys: arch,",
        "arch: resnet18\nsweep: {ratios: [2, 4]}\n": "sweep: unknown key 'ratios'; allowed keys: kind, ratio,",
        "arch: resnet18\nrows: [{kind: se, rato: 4}]\n": "rows[0]: unknown key 'rato'",
    }
    for i, (text, needle) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(text)
        assert needle in one_line_error(invoke("--spec", str(path)), 2)


def test_input_too_small_names_layer_and_minimum() -> None:
    line = one_line_error(invoke("vgg11", "--image-size", "16", "--num-classes", "10"), 2)
    assert "layer features.20 (MaxPool2d)" in line
    assert "smallest input that works is 32x32" in line


def test_fvcore_failure_still_prints_params(monkeypatch: pytest.MonkeyPatch) -> None:
    import secli.complexity.flops as flops

    real = flops.extra_handles

    def broken_mean():
        def handle(inputs, outputs):
            raise RuntimeError("cannot count this")

        return {**real(), "aten::mean": handle}

    monkeypatch.setattr(flops, "extra_handles", broken_mean)
    result = invoke("resnet18", "--image-size", "32", "-f", "markdown")
    line = one_line_error(result, 1)
    assert "fvcore failed on op aten::mean" in line
    assert f"{11_689_512 + se_added(16):,}" in result.stdout  # the parameter table came out


EXAMPLE_ROWS = {  # file -> number of rows it asks for (baseline not included)
    "table10_ratio.yaml": 5,
    "table13_stages.yaml": 4,
    "table15_se3x3.yaml": 2,
    "drop_last_stage.yaml": 2,
    "sknet50_vs_resnext50.yaml": 2,
    "sk_kernels.yaml": 2,
}


@pytest.mark.parametrize(("name", "rows"), sorted(EXAMPLE_ROWS.items()))
def test_examples_are_valid_specs(name: str, rows: int) -> None:
    from secli.networks.sweep import load_sweep

    assert len(load_sweep(EXAMPLES / name).blocks()) == rows


def test_sweep_files_take_image_size_and_its_old_name(tmp_path: Path) -> None:
    from secli.networks.sweep import load_sweep
    from secli.util.errors import SecliUsageError

    path = tmp_path / "s.yaml"
    for key in ("image_size", "input_size"):
        path.write_text(f"arch: resnet18\n{key}: 48\n")
        assert load_sweep(path).input_size == 48
    path.write_text("arch: resnet18\nimage_size: 48\ninput_size: 48\n")
    with pytest.raises(SecliUsageError, match="input_size is the old name of image_size"):
        load_sweep(path)


def test_plain_model_spec_is_a_one_row_sweep(tmp_path: Path) -> None:
    from secli.networks.sweep import load_sweep

    path = tmp_path / "model.yaml"
    path.write_text("arch: resnet50\nblock:\n  kind: se\n  ratio: 8\nweights: null\n")
    (block,) = load_sweep(path).blocks()
    assert (block.kind, block.ratio) == ("se", 8)


def test_a_spec_s_weights_are_not_loaded_and_a_warning_says_so(tmp_path: Path) -> None:
    """Counts do not depend on weights: the file is not read (it need not exist), the run says so
    once on stderr and in the envelope, and the counts are those of the same spec without it."""
    spec = tmp_path / "model.yaml"
    body = "arch: resnet18\nimage_size: 32\nblock: {kind: se, ratio: 8}\n"
    spec.write_text(body + "weights: missing/w.pth\n")
    result = invoke("--spec", str(spec), "--format", "json")
    assert result.exit_code == 0, result.output
    expected = "the spec's weights (missing/w.pth) are not loaded: parameter counts and FLOPs do not depend on weights"
    assert [line for line in result.stderr.splitlines() if line.strip()] == [f"warning: {expected}"]
    document = json.loads(result.stdout)
    assert document["results"]["warnings"] == [expected]
    spec.write_text(body)
    plain = json.loads(invoke("--spec", str(spec), "--format", "json").stdout)
    assert plain["results"]["warnings"] == []
    assert plain["results"]["rows"] == document["results"]["rows"]


def test_crosscheck_mismatch_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import secli.complexity.count as complexity

    real = complexity.torch_gemm_count
    monkeypatch.setattr(complexity, "torch_gemm_count", lambda model, x: real(model, x) + 1)
    line = one_line_error(invoke("resnet18", "--image-size", "32", "-f", "csv"), 1)
    assert "(cross-check)" in line
    assert "FlopCounterMode" in line


def test_network_with_its_own_se_modules() -> None:
    (data,) = rows_of(invoke("mobilenet_v3_small", "--block", "none", "--image-size", "32", "-f", "json"))
    from torchvision.models import mobilenet_v3_small
    from torchvision.ops import SqueezeExcitation

    network = mobilenet_v3_small()
    se_modules = [m for m in network.modules() if isinstance(m, SqueezeExcitation)]
    expected = sum(p.numel() for m in se_modules for p in m.parameters())
    # the network as built, against its baseline with those modules replaced by identities: Δ is theirs
    assert data["label"] == "mobilenet_v3_small"
    assert data["sites"] == len(se_modules) == 9
    assert data["params"]["injected"] == sum(p.numel() for p in network.parameters())
    assert data["params"]["added"] == expected == data["native"]["params"]
    assert sum(s["block_params"] for s in data["by_stage"]) == expected
    # their FLOPs seen from outside (the two models' difference) equal those counted inside them
    assert data["flops"]["all_ops_added"] == data["native"]["flops_all_ops"] > 0
    assert data["flops"]["fc_only_added"] == data["native"]["flops_fc_only"] > 0


def test_python_complexity_equals_the_cli_json(json_sweep) -> None:
    """secli.complexity.workflow.complexity with the CLI's options gives exactly its JSON."""
    from secli.complexity.workflow import complexity

    calls: list[tuple[int, int, str]] = []
    result = complexity("resnet18", ratios="4,16", stages=["2", "3,4"], image_size=32,
                        progress=lambda *a: calls.append(a))
    assert json.loads(json.dumps(result.to_dict())) == json_sweep
    as_lists = complexity("resnet18", ratios=[4, 16], stages=[[2], [3, 4]], input_size=32)  # the old keyword
    assert as_lists.to_dict()["results"] == result.to_dict()["results"]
    assert calls[0] == (0, 5, "baseline")
    assert calls[-1] == (5, 5, "done")


def test_python_complexity_of_a_saved_model_equals_the_cli_json(tmp_path: Path) -> None:
    from secli.complexity.workflow import complexity
    from secli.networks.workflow import inject

    saved = tmp_path / "se.pt"
    inject("resnet18", ratio=8, out=saved)
    cli = invoke(str(saved), "--image-size", "32", "-f", "json")
    assert cli.exit_code == 0, cli.output
    assert json.loads(json.dumps(complexity(str(saved), image_size=32).to_dict())) == json.loads(cli.stdout)


@pytest.mark.parametrize("size", ["0", "-5", "100000"])
def test_input_size_out_of_range_is_refused_not_replaced_by_the_default(size: str) -> None:
    result = CliRunner().invoke(app, ["complexity", "resnet18", "--block", "se", "--image-size", size])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "--image-size" in lines[0], result.stderr
