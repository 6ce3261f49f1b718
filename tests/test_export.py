"""``secli export``: files that plain PyTorch loads and runs, with secli's logits, without secli.

The decisive check runs in a subprocess that cannot import secli (a meta-path finder refuses
``secli`` and ``commands``; no PYTHONPATH, a clean working folder): it loads the file with torch
alone and its logits are compared with the secli model's, computed here from the checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_one_line_error, run

#: Runs in the subprocess: secli and commands cannot be imported; torch loads and runs the file.
PLAIN_TORCH = r"""
import importlib.abc, sys

class NoSecli(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("secli", "commands"):
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, NoSecli())
try:
    import secli
except ImportError:
    pass
else:
    raise SystemExit("the finder did not block secli")

import torch
kind, model_file, input_file, output_file = sys.argv[1:]
x = torch.load(input_file, weights_only=True)
model = torch.jit.load(model_file) if kind == "torchscript" else torch.export.load(model_file).module()
with torch.no_grad():
    torch.save(model(x), output_file)
print("secli imported:", any(m.split(".")[0] in ("secli", "commands") for m in sys.modules))
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SE-ResNet-18 saved by secli inject (fused SE blocks, the default), small classifier."""
    from secli import api

    path = tmp_path_factory.mktemp("export") / "se_r18.pt"
    api.inject("resnet18", block="se", num_classes=10, out=path)
    return path


def _plain_torch_logits(kind: str, model_file: Path, x: torch.Tensor, folder: Path) -> torch.Tensor:
    torch.save(x, folder / "x.pt")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    clean = folder / "clean"
    clean.mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-I", "-c", PLAIN_TORCH, kind, str(model_file), str(folder / "x.pt"), str(folder / "y.pt")],
        cwd=clean, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "secli imported: False" in proc.stdout
    return torch.load(folder / "y.pt", weights_only=True)


@pytest.mark.parametrize("kind", ["torchscript", "pt2"])
def test_exported_file_runs_without_secli_and_gives_secli_logits(kind: str, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / f"model.{kind}"
    result = run("export", str(checkpoint), "--to", kind, "--out", str(out), "--image-size", "32", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    found = document["results"]
    assert document["command"] == "export" and found["file"] == str(out) and found["to"] == kind
    assert found["verified"] is True and 0 <= found["max_abs_diff"] <= 1e-4
    assert found["input_shape"] == [2, 3, 32, 32] and found["dynamic_batch"] is True
    assert found["fused_sites"] == 8 and found["eager_fallback"] is False
    assert "8 fused sites run their eager composition" in found["notes"][0]

    from secli import api

    model = api.load_model(str(checkpoint)).model.eval()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))  # another batch size than the export's
    with torch.no_grad():
        expected = model(x)
    got = _plain_torch_logits(kind, out, x, tmp_path)
    assert got.shape == (3, 10)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_architecture_with_block_options_exports(tmp_path: Path) -> None:
    """A named architecture is built like inject builds it: here ECA (nothing fused); table output."""
    out = tmp_path / "eca.ts"
    result = run("export", "resnet18", "--block", "eca", "--num-classes", "5", "--to", "torchscript", "-o", str(out),
                 "--image-size", "32")
    assert result.exit_code == 0, result.output
    assert "verified" in result.stdout and f'torch.jit.load("{out}")' in result.stdout
    assert "fused" not in result.stdout
    extra = {"secli.json": ""}
    loaded = torch.jit.load(str(out), _extra_files=extra)
    assert loaded(torch.zeros(1, 3, 32, 32)).shape == (1, 5)
    assert json.loads(extra["secli.json"])["spec"]["block"]["kind"] == "eca"  # the spec travels in the file


def test_an_exporter_that_fails_on_fused_blocks_is_retried_with_the_eager_composition(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secli.kernels import dispatch
    from secli.networks import export as export_module
    from secli.networks.models import load_model

    real_trace = torch.jit.trace

    def trace_refusing_fused(*args, **kwargs):
        if not dispatch._EAGER_REQUESTS:
            raise RuntimeError("Could not export Python function call 'GatedSum'")
        return real_trace(*args, **kwargs)

    monkeypatch.setattr(torch.jit, "trace", trace_refusing_fused)
    result = export_module.export_built(load_model(str(checkpoint)), "torchscript", tmp_path / "m.ts", 32, False, {})
    assert result.eager_fallback and "exported their eager composition" in result.notes[0]
    assert result.max_abs_diff <= 1e-4 and (tmp_path / "m.ts").is_file()


def test_a_file_that_does_not_verify_is_not_written(checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from secli.networks import export as export_module
    from secli.networks.models import load_model
    from secli.util.errors import SecliError

    real_load = torch.jit.load

    def load_wrong(*args, **kwargs):
        module = real_load(*args, **kwargs)
        return lambda x: module(x) + 1.0

    monkeypatch.setattr(torch.jit, "load", load_wrong)
    with pytest.raises(SecliError, match="differ from secli's by up to 1; nothing written"):
        export_module.export_built(load_model(str(checkpoint)), "torchscript", tmp_path / "m.ts", 32, False, {})
    assert not (tmp_path / "m.ts").exists()


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["resnet18", "--to", "pt2"], 2, "say where to write the pt2 file with --out"),
        (["resnet18", "--out", "m.pt2"], 2, "say what to export to with --to"),
        (["resnet18", "--to", "pt2", "--out", "m.pt2", "--image-size", "0"], 2, "--image-size"),
        (["resnet18", "--to", "pt2", "--out", "m.pt2", "--block", "eca", "--ratio", "8"], 2, "ratio"),
    ],
)
def test_mistakes_are_one_line_errors(args: list[str], code: int, text: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run("export", *args), code, text)


def test_a_checkpoint_refuses_block_options_and_an_existing_file_needs_force(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.pt2"
    assert_one_line_error(run("export", str(checkpoint), "--to", "pt2", "--out", str(out), "--block", "sk"), 2,
                          "is a saved model; --block applies to architecture names only")
    out.write_text("keep me")
    assert_one_line_error(run("export", str(checkpoint), "--to", "pt2", "--out", str(out)), 2, f"--out {out} exists")
    assert out.read_text() == "keep me"


def test_the_cli_spells_the_targets_the_library_has() -> None:
    from commands.export import ExportTarget
    from secli.networks.export import TARGETS

    assert tuple(t.value for t in ExportTarget) == TARGETS
