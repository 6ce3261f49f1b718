"""A user's own network, three ways: a file's factory, a package's factory, an ``nn.Module``.

The network is a small CNN written here into tmp_path (two residual stages of two blocks each,
ReLU called as a function after the sum); its SE sites and their parameters are known by hand:
one after each block's last BN, C = w, w, 2w, 2w (w = 16 by default), each ``2*C*(C//r) + C//r + C``.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_one_line_error, run

from secli import api
from secli.util.errors import SecliError, SecliUsageError

SOURCE = textwrap.dedent('''
    import torch
    from torch import nn

    from pathlib import Path
    Path(__file__).with_suffix(".imported").write_text("yes")  # so a test sees whether it was imported


    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


    class TinyNet(nn.Module):
        input_size = 32

        def __init__(self, width=16, num_classes=10):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
            self.stage1 = nn.Sequential(Block(width), Block(width))
            self.down = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
            self.stage2 = nn.Sequential(Block(2 * width), Block(2 * width))
            self.head = nn.Linear(2 * width, num_classes)

        def forward(self, x):
            return self.head(self.stage2(self.down(self.stage1(self.stem(x)))).mean((2, 3)))


    def build(width=16, num_classes=10):
        return TinyNet(width, num_classes)


    def fixed_head(width=16):
        return TinyNet(width, 10)


    def broken(width=16):
        raise RuntimeError("out of coffee")


    def not_a_model():
        return 42
''')


def se_added(width: int, r: int = 16) -> int:
    """By hand: SE after each of the four blocks, C = w, w, 2w, 2w, hidden max(C // r, 1)."""
    return sum(2 * c * max(c // r, 1) + max(c // r, 1) + c for c in (width, width, 2 * width, 2 * width))


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_net.py"
    path.write_text(SOURCE)
    return path


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_file_factory_on_the_command_line(user_file: Path, tmp_path: Path) -> None:
    ref = f"{user_file}:build"
    doc = _json(run("inject", ref, "--model-kwargs", "width=16", "--block", "se", "-r", "4", "-o",
                    str(tmp_path / "se.pt"), "--format", "json"))["results"]
    assert [s["channels"] for s in doc["sites"]] == [16, 16, 32, 32]
    assert {s["source"] for s in doc["sites"]} == {"structure"}
    assert [s["module_path"] for s in doc["sites"]] == [f"stage{i}.{j}.bn2.1" for i in (1, 2) for j in (0, 1)]
    assert doc["params"]["added"] == se_added(16, 4)
    assert doc["formula"]["exact"]
    assert doc["spec"]["model_kwargs"] == {"width": 16}
    # counted as named: the same parameters, at the size the model declares (input_size = 32)
    counted = _json(run("complexity", ref, "--model-kwargs", "width=16", "--block", "se", "-r", "4", "--format",
                        "json"))
    (row,) = counted["results"]["rows"]
    assert row["params"]["added"] == se_added(16, 4)
    assert counted["results"]["image_size"] == 32


def test_a_checkpoint_of_a_factory_imports_it_only_when_trusted(user_file: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = tmp_path / "se.pt"
    assert run("inject", f"{user_file.name}:build", "--block", "se", "-o", str(ckpt), "--format", "json").exit_code == 2
    monkeypatch.chdir(tmp_path)
    made = run("inject", f"{user_file.name}:build", "--block", "se", "-o", str(ckpt))
    assert made.exit_code == 0, made.output
    marker = user_file.with_suffix(".imported")
    marker.unlink()
    for command in (["complexity", str(ckpt)], ["export", str(ckpt), "--to", "torchscript", "-o", "x.ts"],
                    ["profile", str(ckpt), "--iters", "1", "--warmup", "0"],
                    ["visualize-excitation", str(ckpt), "--data", "synthetic", "--per-class", "1", "-o", "figs"]):
        assert_one_line_error(run(*command), 2, f"was made from {user_file.name}:build; loading it "
                                                "imports and runs that code")
    assert not marker.exists()  # refused before anything was imported
    # from elsewhere, with the flag: the relative file is found beside the checkpoint
    monkeypatch.chdir(tmp_path.parent)
    counted = _json(run("complexity", str(ckpt), "--trust-code", "--format", "json"))
    assert counted["results"]["rows"][0]["params"]["added"] == se_added(16)


@pytest.mark.parametrize(("ref", "code", "message"), [
    (":biuld", 2, "has no 'biuld' (did you mean build?)"),
    (":broken", 1, ":broken failed: RuntimeError: out of coffee"),
    (":not_a_model", 2, ":not_a_model returned int, not a torch.nn.Module"),
    ("", 2, "is Python code: name the function that builds the model"),
])
def test_factory_mistakes_are_one_line(user_file: Path, ref: str, code: int, message: str) -> None:
    assert_one_line_error(run("inject", f"{user_file}{ref}", "--block", "se"), code, message)


def test_missing_files_modules_and_arguments_are_named_with_near_matches(user_file: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert_one_line_error(run("inject", f"{tmp_path}/tiny_nte.py:build"), 2, "no Python file")
    assert "tiny_net.py?" in run("inject", f"{tmp_path}/tiny_nte.py:build").stderr
    assert_one_line_error(run("inject", f"{user_file}:build", "--model-kwargs", "widht=4"), 2,
                          "got an unexpected keyword argument 'widht' (it takes width, num_classes) "
                          "(did you mean width?)")
    assert_one_line_error(run("inject", f"{user_file}:build", "--model-kwargs", "width"), 2, "key=value pairs")
    assert_one_line_error(run("inject", f"{user_file}:fixed_head", "--num-classes", "3"), 2,
                          "takes no num_classes argument")
    package = tmp_path / "userpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert_one_line_error(run("inject", "userpkg.modles:build"), 2,
                          "no Python module 'userpkg.modles' (did you mean userpkg.models?)")
    assert_one_line_error(run("inject", "userpkg.models:Build"), 2,
                          "userpkg.models has no 'Build' (did you mean build?)")


def test_a_package_factory_with_yaml_kwargs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "userpkg2"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(SOURCE)
    (tmp_path / "kw.yaml").write_text("width: 4\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    doc = _json(run("inject", "userpkg2.nets:build", "--model-kwargs", str(tmp_path / "kw.yaml"), "--block", "se",
                    "-r", "4", "--format", "json"))["results"]
    assert [s["channels"] for s in doc["sites"]] == [4, 4, 8, 8]
    assert doc["params"]["added"] == se_added(4, 4)


def test_train_then_every_command_on_the_trained_factory_model(user_file: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    trained = run("train", f"{user_file.name}:build", "--block", "se", "--data", "synthetic", "--epochs", "1",
                  "--train-size", "20", "--val-size", "10", "--batch-size", "10", "--lr", "0.01", "-o", "t.pt",
                  "--device", "cpu")
    assert trained.exit_code == 0, trained.output
    ckpt = torch.load(tmp_path / "t.pt", weights_only=True)
    assert ckpt["spec"]["arch"] == f"{user_file.name}:build"
    assert ckpt["spec"]["num_classes"] == 10
    figs = run("visualize-excitation", "t.pt", "--trust-code", "--data", "synthetic", "--per-class", "2", "-o", "figs")
    assert figs.exit_code == 0, figs.output
    assert json.loads((tmp_path / "figs" / "summary.json").read_text())["results"]["meta"]["images"] == 20
    assert run("export", "t.pt", "--trust-code", "--to", "torchscript", "-o", "t.ts").exit_code == 0
    timed = run("profile", f"{user_file.name}:build", "--block", "se", "--iters", "1", "--warmup", "0",
                "--batch-size", "2", "--format", "json")
    assert [m["label"] for m in json.loads(timed.stdout)["results"]["models"]] == [
        f"{user_file.name}:build", f"{user_file.name}:build + SE"]


def _module(user_file: Path) -> torch.nn.Module:
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_net_for_api", user_file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tiny_net_for_api"] = module
    spec.loader.exec_module(module)
    return module.TinyNet(width=16)


def test_every_api_function_takes_an_nn_module(user_file: Path, tmp_path: Path) -> None:
    net = _module(user_file)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = api.inject(net, block="se")
    assert result.built.label == "TinyNet + SE r=16 standard"
    assert result.report.params_added == se_added(16)
    assert result.to_dict()["inputs"]["arch"] == "python:tiny_net_for_api.TinyNet"
    counted = api.complexity(net, block="se,eca")
    assert next(r.params_injected - r.params_baseline for r in counted.rows) == se_added(16)
    assert counted.input_size == 32
    assert counted.flops_error is None
    timed = api.profile([net, net], iters=1, warmup=0, batch_size=2, device="cpu")
    assert [m.label for m in timed.models] == ["TinyNet", "TinyNet #2"]
    exported = api.export(net, block="se", to="torchscript", out=tmp_path / "n.ts")
    assert exported.max_abs_diff <= 1e-4
    run_ = api.visualize_excitation(net, block="se", data="synthetic", per_class=1, out=tmp_path / "figs", device="cpu")
    assert [s.name for s in run_.stats.sites] == ["SE_1_1", "SE_1_2", "SE_2_1", "SE_2_2"]
    trained = api.train(net, block="se", data="synthetic", out=tmp_path / "m.pt", epochs=1, train_size=10, val_size=0,
                        batch_size=10, lr=0.01, device="cpu")
    assert trained.model == "TinyNet + SE r=16 standard"
    with pytest.raises(SecliUsageError, match="made from a Python object"):
        api.load_model(tmp_path / "m.pt")
    reloaded = api.load_model(str(tmp_path / "m.pt"), base=_module(user_file))
    assert len(reloaded.sites) == 4
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the caller's network, untouched
    with pytest.raises(SecliUsageError, match="apply to model references"):
        api.inject(net, model_kwargs={"width": 4})


def test_model_kwargs_reach_timm_and_torchvision_builders() -> None:
    pytest.importorskip("timm")
    built = api.load_model("timm:resnet18", model_kwargs="block_args={attn_layer: eca}")
    assert {s.kind for s in built.sites} == {"native-eca"}
    assert len(built.sites) == 8
    assert api.load_model("resnet50", model_kwargs={"width_per_group": 32}).model.layer1[0].conv1.out_channels == 32
    with pytest.raises(SecliError, match="cannot build resnet18"):
        api.load_model("resnet18", model_kwargs={"no_such_thing": 1})
