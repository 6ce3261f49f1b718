"""The command line: help, inject's outputs, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, run

ROOT = Path(__file__).resolve().parents[1]




def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("inject", "complexity", "profile", "visualize-excitation", "train"):
        assert command in result.output


def test_version() -> None:
    from secli import __version__

    assert run("--version").output.strip() == f"secli {__version__}"


def test_cli_start_up_imports_no_torch() -> None:
    """``secli --help`` stays fast because the command modules import torch lazily."""
    code = "import sys, commands.app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_inject_json_is_parseable_and_complete() -> None:
    result = run("inject", "resnet18", "--block", "se", "--ratio", "8", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["format"], document["version"], document["command"]) == ("secli-inject", 1, "inject")
    assert document["inputs"] == {"arch": "resnet18", "block": "se", "ratio": 8}
    data = document["results"]
    assert data["params"]["baseline"] == 11_689_512
    assert len(data["sites"]) == 8
    assert data["sites"][0]["name"] == "SE_2_1"
    added = sum(2 * c * c // 8 + c // 8 + c for c in [64] * 2 + [128] * 2 + [256] * 2 + [512] * 2)
    assert data["params"]["added"] == added
    assert data["formula"]["exact"] is True
    # closed-form counts are parameter counts: ints, not 174080.0
    assert isinstance(data["formula"]["weights_formula"], int)
    assert isinstance(data["formula"]["predicted"], int)
    assert data["spec"]["block"]["ratio"] == 8


def test_inject_table_names_sites_and_totals() -> None:
    result = run("inject", "resnet50", "--block", "se", "--stages", "5")
    assert result.exit_code == 0, result.output
    assert "SE_5_3" in result.stdout
    assert "SE_4_6" not in result.stdout
    assert "25,557,032" in result.stdout
    assert "matches" in result.stdout


def test_inject_list_shows_positions() -> None:
    result = run("inject", "--list", "--format", "json")
    document = json.loads(result.stdout)
    assert document["format"] == "secli-inject"
    assert document["inputs"] == {"list": True}
    rows = {row["name"]: row for row in document["results"]}
    assert "3x3" in rows["resnet50"]["positions"]
    assert rows["vgg16"]["positions"] == ["standard"]
    assert rows["resnext50_32x4d"]["sk"] is True
    assert rows["vgg16"]["sk"] is False
    assert rows["efficientnet_b0"]["family"] == "native-se"
    assert rows["efficientnet_b0"]["positions"] == []
    assert rows["inception_v3"]["image_size"] == 299


def test_inject_out_then_reload_and_refuse_to_clobber(tmp_path: Path) -> None:
    out = tmp_path / "se_r18.pt"
    spec_out = tmp_path / "se_r18.yaml"
    args = ["inject", "resnet18", "--block", "se", "--position", "identity", "--stages", "3,4",
            "--out", str(out), "--save-spec", str(spec_out)]
    assert run(*args).exit_code == 0
    from secli.networks.models import load_model

    loaded = load_model(str(out))
    assert loaded.spec.block.position == "identity"
    assert loaded.spec.block.stages == (3, 4)
    assert_one_line_error(run(*args), 2, f"--out {out} exists (pass --force to replace it)")
    assert run(*args, "--force").exit_code == 0
    # the saved YAML builds the same model, and options given on the command line override it
    result = run("inject", "--spec", str(spec_out), "--ratio", "4", "--format", "json")
    data = json.loads(result.stdout)["results"]
    assert data["block"]["position"] == "identity"
    assert data["block"]["ratio"] == 4


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["inject", "resnet5O"], 2, "did you mean resnet50"),
        (["inject", "resnet50", "--ratio", "0"], 2, "ratio must be"),
        (["inject", "vgg11", "--ratio", "100"], 2, "larger than the 64 channels"),
        (["inject", "resnet50", "--stages", "7"], 2, "unknown stage 7"),
        (["inject", "resnet50", "--stages", "two"], 2, "whole numbers"),
        (["inject", "vgg16", "--position", "post"], 2, "supported: standard"),
        (["inject", "vgg16", "--block", "sk"], 2, "SK blocks replace"),
        (["inject", "resnet50", "--block", "bam"], 2, "unknown block 'bam'"),
        (["inject", "resnet50", "--gate", "softmax"], 2, "unknown gate"),
        (["inject", "resnet50", "--no-bias", "--init", "identity"], 2, "needs FC biases"),
        (["inject"], 2, "name an architecture"),
        (["inject", "--spec", "missing.yaml"], 2, "spec file not found"),
        (["inject", "resnet18", "--weights", "missing.pth"], 1, "file not found"),
        (["inject", "resnet18", "--weights", "IMAGENET9K"], 2, "unknown weights"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(args: list[str], code: int, text: str) -> None:
    assert_one_line_error(run(*args), code, text)


def test_unreadable_yaml_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("arch: [resnet50\n")
    assert_one_line_error(run("inject", "--spec", str(bad)), 2, "cannot parse YAML")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("arch: resnet50\nratio: 4\n")
    assert_one_line_error(run("inject", "--spec", str(unknown)), 2, "unknown key 'ratio'")


def test_out_and_save_spec_must_differ(tmp_path: Path) -> None:
    same = tmp_path / "model.pt"
    result = run("inject", "resnet18", "--out", str(same), "--save-spec", str(same))
    assert_one_line_error(result, 2, "same file")
    assert not same.exists()



def test_python_inject_equals_the_cli_json(tmp_path: Path) -> None:
    """secli.networks.workflow.inject with the CLI's options gives exactly the CLI's JSON."""
    from secli.networks.workflow import inject

    out, spec = tmp_path / "se.pt", tmp_path / "se.yaml"
    cli = run("inject", "resnet18", "--ratio", "8", "--stages", "2,3", "--no-bias", "-o", str(out), "--save-spec",
              str(spec), "-f", "json")
    assert cli.exit_code == 0, cli.output
    result = inject("resnet18", ratio=8, stages="2,3", bias=False, out=out, save_spec=spec, force=True)
    assert json.loads(json.dumps(result.to_dict())) == json.loads(cli.stdout)
    assert result.saved == [str(out), str(spec)]
    assert result.model is result.built.model
    again = inject(spec=spec, stages=[2, 3])  # a saved spec file, stages as a list
    assert again.spec == result.spec


def test_python_architecture_list_equals_the_cli_json() -> None:
    from secli.networks.workflow import list_architectures

    cli = run("inject", "--list", "-f", "json")
    assert cli.exit_code == 0, cli.output
    assert list_architectures() == json.loads(cli.stdout)["results"]


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["inject", "--list", "--ratio", "8"], "--ratio does not apply with --list"),
        (["inject", "--list", "--block", "sk"], "--block does not apply with --list"),
        (["inject", "--list", "resnet18"], "--list takes no architecture"),
        (["inject", "resnet18", "--block", "none", "--ratio", "8"], "--ratio does not apply with --block none"),
        (["inject", "resnet18", "--block", "none", "--stages", "3"], "--stages does not apply with --block none"),
        (["inject", "resnet18", "--block", "se", "--paths", "3"], "--paths does not apply to SE blocks"),
        (["inject", "resnet18", "--block", "eca", "--ratio", "8"], "--ratio does not apply to ECA blocks"),
        (["inject", "resnet18", "--stages", "3", "--stages", "4"], "--stages is one comma list here (--stages 3,4)"),
    ],
)
def test_options_that_do_not_apply_are_refused(args: list[str], text: str) -> None:
    assert_one_line_error(run(*args), 2, text)


BLOCK_OPTION_COMMANDS = {
    "inject": ["inject", "resnet18"],
    "complexity": ["complexity", "resnet18"],
    "profile": ["profile", "resnet18", "--device", "cpu"],
    "export": ["export", "resnet18", "--to", "torchscript", "--out", "unused.pt"],
    "train": ["train", "resnet18", "--data", "synthetic", "--out", "unused.pt"],
}
FOREIGN_AT_DEFAULT = [
    ("se", "--paths", "2"),            # SK-only, at SK's default
    ("se", "--groups", "32"),          # SK-only, at SK's default
    ("sk", "--squeeze", "avg"),        # SE-only, at SE's default (profile has no --squeeze)
    ("sk", "--position", "standard"),  # SE/ECA only, at the default
]


@pytest.mark.parametrize(("name", "block", "option", "value"), [
    (name, *case) for name in BLOCK_OPTION_COMMANDS for case in FOREIGN_AT_DEFAULT
    if not (name == "profile" and case[1] == "--squeeze")
])
def test_an_option_the_block_does_not_take_is_refused_even_at_its_default(
        name: str, block: str, option: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Typed on the command line it is a request, whatever its value: refused by name, nothing built or written."""
    monkeypatch.chdir(tmp_path)
    result = run(*BLOCK_OPTION_COMMANDS[name], "--block", block, option, value)
    assert_one_line_error(result, 2, f"{option} does not apply to {block.upper()} blocks")
    assert list(tmp_path.iterdir()) == []


def test_the_python_api_refuses_a_default_equal_option_the_block_does_not_take() -> None:
    from secli import api
    from secli.util.errors import SecliUsageError

    with pytest.raises(SecliUsageError, match="--paths does not apply to SE blocks"):
        api.inject("resnet18", block="se", paths=2)
    with pytest.raises(SecliUsageError, match="--gate does not apply to SK blocks"):
        api.complexity("resnet18", block="sk", gate="sigmoid", flops=False)
    # its own option: fine
    assert api.inject("resnet18", block="sk", paths=2).to_dict()["results"]["block"]["paths"] == 2


def test_inject_tables_render_from_the_envelope_alone(tmp_path: Path) -> None:
    """``commands.inject.tables`` needs nothing but the JSON (``secli report`` re-renders files)."""
    from commands.inject import tables

    cli = run("inject", "resnet18", "--stages", "5", "-f", "json")
    document = json.loads(cli.stdout)
    [table] = tables(document)
    assert [row[0] for row in table.rows] == ["SE_5_1", "SE_5_2"]
    assert "matches" in " ".join(table.notes)
    listing = json.loads(run("inject", "--list", "-f", "json").stdout)
    [arch_table] = tables(listing)
    resnet = next(row for row in arch_table.rows if row[0] == "resnet50")
    assert arch_table.cell(3, resnet[3]) == "yes"
    assert "3x3" in resnet[2]


def test_help_shows_defaults_and_flags_as_flags() -> None:
    import re

    text = " ".join(run("inject", "--help").output.split())
    # one style, whether Typer found the default or secli wrote it (issue 23: was "[default: (se)]")
    for default in ("[default: se]", "[default: 16]", "[default: standard]", "[default: table]"):
        assert default in text, default
    assert not re.search(r"--list <bool>|--force <bool>|--no-bias <bool>", text)
