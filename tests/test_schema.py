"""secli/schemas/result.schema.json describes the one JSON envelope every command prints.

Validated here: the schema itself (draft 2020-12), envelopes made by ``util.envelope.envelope``
for every command, what each converted command really prints with ``--format json``, and
documents that must be refused. A command whose JSON becomes an envelope joins by adding its
invocation to ``CLI_INVOCATIONS``.
"""

from __future__ import annotations

import copy
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run

jsonschema = pytest.importorskip("jsonschema")  # in the dev extra

from secli.util.envelope import COMMANDS, ENVELOPE_VERSION, envelope  # noqa: E402 - after the importorskip

ROOT = Path(__file__).resolve().parents[1]

#: One CLI invocation per command whose ``--format json`` output is an envelope; ``{tmp}`` is a
#: fresh temporary folder. Keep them cheap (resnet18, 32 px).
CLI_INVOCATIONS = [
    pytest.param(["inject", "resnet18", "--block", "se", "--format", "json"], id="inject"),
    pytest.param(["inject", "--list", "--format", "json"], id="inject-list"),
    pytest.param(["complexity", "resnet18", "--block", "se", "--ratios", "8,16", "--image-size", "32",
                  "--format", "json"], id="complexity"),
    pytest.param(["complexity", "resnet18", "--block", "se", "--image-size", "32", "--roofline", "h100",
                  "--dtype", "bf16", "--training-step", "--format", "json"], id="complexity-roofline"),
    pytest.param(["profile", "resnet18", "--block", "se", "--image-size", "32", "--iters", "1", "--warmup", "0",
                  "-b", "1", "--device", "cpu", "--format", "json"], id="profile"),
    pytest.param(["train", "resnet18", "--block", "se", "--data", "synthetic", "--epochs", "1", "--train-size", "20",
                  "--val-size", "10", "--image-size", "32", "-b", "10", "--out", "{tmp}/t.pt", "--format", "json"],
                 id="train"),
    pytest.param(["visualize-excitation", "resnet18", "--block", "se", "--data", "synthetic", "--per-class", "1",
                  "--image-size", "32", "--out", "{tmp}/figs", "--format", "json"], id="visualize-excitation"),
    pytest.param(["export", "resnet18", "--block", "eca", "--to", "torchscript", "--out", "{tmp}/m.ts",
                  "--image-size", "32", "--format", "json"], id="export"),
]


def _schema() -> dict[str, Any]:
    """Read as an installed package reads it: package data beside the library's modules."""
    text = resources.files("secli").joinpath("schemas", "result.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _export_results() -> dict[str, Any]:
    return {
        "file": "m.pt2", "to": "pt2", "model": "resnet18 + SE", "spec": {"arch": "resnet18", "block": {"kind": "se"}},
        "input_shape": [2, 3, 32, 32], "dynamic_batch": True, "verified": True, "max_abs_diff": 0.0, "atol": 1e-4,
        "rtol": 1e-4, "fused_sites": 8, "eager_fallback": False, "preprocess": None,
        "load": 'torch.export.load("m.pt2").module()', "notes": [],
    }


def _sample(command: str) -> dict[str, Any]:
    """An envelope as ``envelope()`` makes it, with the awkward values it must turn into JSON."""
    if command == "export":
        results: Any = _export_results()
    elif command == "complexity":
        results = [{"label": "SE r=16", "params": {"added": 2_530_992}, "gflops": math.nan}]
    elif command == "train":
        results = {"epochs": [{"epoch": 1, "lr": 0.05, "train_loss": math.nan, "train_accuracy": 0.5, "val_loss": None,
                               "val_accuracy": None, "seconds": 1.0}], "classes": 2, "chance": 0.5, "train_images": 4,
                   "val_images": 0, "seconds": 1.0, "saved": "m.pt", "model": "resnet18 + SE", "data": "synthetic",
                   "class_names": ("a", "b"), "image_size": 32, "device": "cpu"}
    elif command == "visualize-excitation":
        results = {"sites": [{"name": "SE_2_1", "kind": "se", "channels": 4, "paths": 1, "low": 0.0, "high": 1.0,
                              "bins": 5}], "classes": ["a", "b"], "scales": [1.0], "counts": {"a": 1, "b": 1},
                   "scores": [{"site": "SE_2_1", "channels": 4, "specificity": math.nan}], "ablation": None, "meta": {}}
    else:
        results = {"rows": [(1, 2.5, True)], "undefined": math.inf, "classes": {"b", "a"}}
    inputs = {"model": "resnet18", "out": Path("x.json"), "ratios": (8, 16), "force": False}
    return json.loads(json.dumps(envelope(command, inputs, results)))


@pytest.mark.parametrize("command", COMMANDS)
def test_envelopes_made_by_the_library_validate(command: str, validator: Any) -> None:
    document = _sample(command)
    validator.validate(document)
    assert document["version"] == ENVELOPE_VERSION
    assert document["format"] == f"secli-{command}"


@pytest.mark.parametrize("args", CLI_INVOCATIONS)
def test_what_each_command_prints_validates(args: list[str], validator: Any, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(*[arg.replace("{tmp}", str(tmp_path)) for arg in args])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    validator.validate(document)
    assert document["command"] == args[0]


def _without(key: str):
    return lambda d: d.pop(key)


def _set(path: tuple[str, ...], value: Any):
    def change(document: dict[str, Any]) -> None:
        for key in path[:-1]:
            document = document[key]
        document[path[-1]] = value

    return change


@pytest.mark.parametrize(
    "change",
    [
        _without("results"),
        _without("format"),
        _set(("version",), "1"),
        _set(("version",), True),
        _set(("version",), 0),
        _set(("command",), "frobnicate"),
        _set(("format",), "secli-inject"),  # another command's format
        _set(("format",), "csv"),
        _set(("inputs",), ["resnet18"]),
        _set(("results",), "done"),
        _set(("results", "verified"), False),
        _set(("results", "input_shape"), [2, 3, 32]),
        _set(("results", "to"), "tflite"),
    ],
    ids=["no-results", "no-format", "version-string", "version-bool", "version-0", "unknown-command",
         "format-of-another-command", "format-not-secli", "inputs-list", "results-string", "export-unverified",
         "export-shape", "export-target"],
)
def test_documents_that_break_the_shape_are_refused(change: Any, validator: Any) -> None:
    document = copy.deepcopy(_sample("export"))
    validator.validate(document)
    change(document)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(document)


def test_schema_names_exactly_the_commands_that_make_envelopes() -> None:
    schema = _schema()
    assert tuple(schema["properties"]["command"]["enum"]) == COMMANDS
    paired = {rule["if"]["properties"]["command"]["const"] for rule in schema["allOf"]
              if "format" in rule["then"].get("properties", {})}
    assert paired == set(COMMANDS)


def test_schema_is_package_data() -> None:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["secli"]
    assert any(Path("schemas/result.schema.json").match(p) for p in patterns)


@pytest.fixture(scope="module")
def roofline_document() -> dict[str, Any]:
    from secli import api

    return api.complexity("resnet18", block="se", image_size=32, roofline="a100", dtype="fp16",
                          training_step=True).to_dict()


@pytest.mark.parametrize(
    "change",
    [
        _set(("results", "dtype"), "fp8"),
        _set(("results", "baseline", "bytes", "read"), -1),
        _set(("results", "baseline", "bytes", "kernels"), 1.5),
        lambda d: d["results"]["roofline"]["device"].pop("source"),
        _set(("results", "roofline", "device", "bandwidth_gb_per_s"), 0),
        lambda d: d["results"]["rows"][0]["roofline"]["inference"].pop("vs_baseline"),
        lambda d: d["results"]["roofline"]["baseline"]["training_step"].pop("phases"),
    ],
    ids=["dtype", "negative-bytes", "fractional-kernels", "device-without-source", "zero-bandwidth",
         "row-without-comparison", "prediction-without-phases"],
)
def test_complexity_bytes_and_roofline_that_break_the_shape_are_refused(change: Any, validator: Any,
                                                                        roofline_document: dict[str, Any]) -> None:
    document = json.loads(json.dumps(roofline_document))
    validator.validate(document)
    change(document)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(document)


_BREAKS = [
    _without("results"), _without("format"), _set(("version",), "1"), _set(("version",), True), _set(("version",), 0),
    _set(("command",), "frobnicate"), _set(("format",), "secli-inject"), _set(("format",), "csv"),
    _set(("inputs",), ["resnet18"]), _set(("results",), "done"),
]
_RESULT_BREAKS = {
    "export": [_set(("results", "verified"), False), _set(("results", "input_shape"), [2, 3, 32]),
               _set(("results", "to"), "caffe"), _set(("results", "atol"), -1)],
    "train": [_set(("results", "epochs"), [{"epoch": 0}]), _set(("results", "image_size"), "32"),
              _set(("results", "class_names"), [1]), _without("results")],
    "visualize-excitation": [_set(("results", "sites"), []), _set(("results", "scales"), [0.5]),
                             _set(("results", "counts"), {"a": "1"}), _set(("results", "scores"), [{"site": "x"}])],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_secli_s_own_checker_agrees_with_jsonschema(command: str, validator: Any) -> None:
    """``secli report`` checks files with ``secli.util.schema`` (no dependency); it must accept and
    refuse exactly what the reference implementation does, on the schema secli ships."""
    from secli.util.schema import problem, result_schema

    schema = result_schema()
    for change in [None, *_BREAKS, *_RESULT_BREAKS.get(command, [])]:
        document = copy.deepcopy(_sample(command))
        if change is not None:
            change(document)
        assert (problem(document, schema, schema) is None) == validator.is_valid(document), (command, document)
