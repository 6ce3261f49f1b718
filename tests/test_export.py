"""``secli export``: files that run without secli (plain PyTorch, or onnxruntime alone), with
secli's logits, and that say nothing about the machine that wrote them.

The decisive checks run in subprocesses that cannot import secli (a meta-path finder refuses
``secli`` and ``commands``; no PYTHONPATH, a clean working folder): TorchScript and PT2 files are
loaded with torch alone, ONNX files with onnxruntime and numpy alone (torch refused too), and
their logits are compared with the secli model's, computed here from the checkpoint, at another
batch and image size than the export's. Every file's bytes (and, for zip archives, every member's)
are scanned for this machine's paths: the repository, $HOME, the user name, /tmp paths.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_one_line_error, run

#: Runs in the subprocess: secli and commands (and, for ONNX, torch) cannot be imported; torch
#: (or onnxruntime) loads and runs the file.
PLAIN = r"""
import importlib.abc, sys

kind, model_file, input_file, output_file = sys.argv[1:]
blocked = ("secli", "commands") + (("torch",) if kind == "onnx" else ())

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, Refuse())
for name in blocked:
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"the finder did not block {name}")

if kind == "onnx":
    import numpy as np
    import onnxruntime
    session = onnxruntime.InferenceSession(model_file, providers=["CPUExecutionProvider"])
    x = np.load(input_file)
    np.save(output_file, session.run(None, {session.get_inputs()[0].name: x})[0])
else:
    import warnings
    import torch
    x = torch.load(input_file, weights_only=True)
    with warnings.catch_warnings():  # the warning-free loading docs/export.md shows
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.load")
        model = torch.jit.load(model_file) if kind == "torchscript" else torch.export.load(model_file).module()
    with torch.no_grad():
        torch.save(model(x), output_file)
print("imported:", sorted({m.split(".")[0] for m in sys.modules} & {"secli", "commands", "torch"}))
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SE-ResNet-18 saved by secli inject (fused SE blocks, the default), small classifier;
    its meta names a data folder by absolute path, as a trained model's does."""
    from secli import api
    from secli.networks.checkpoint import read_checkpoint, save_checkpoint

    folder = tmp_path_factory.mktemp("export")
    api.inject("resnet18", block="se", num_classes=10, out=folder / "plain.pt")
    saved = read_checkpoint(folder / "plain.pt")
    path = folder / "se_r18.pt"
    save_checkpoint(path, saved["spec"], saved["state_dict"], meta={"data": str(folder / "private_images")})
    return path


def _plain_logits(kind: str, model_file: Path, x: torch.Tensor, folder: Path) -> torch.Tensor:
    """The file's logits for ``x`` in a subprocess without secli (and without torch for ONNX)."""
    import numpy as np

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    clean = folder / "clean"
    clean.mkdir(exist_ok=True)
    onnx = kind == "onnx"
    given, taken = folder / ("x.npy" if onnx else "x.pt"), folder / ("y.npy" if onnx else "y.pt")
    np.save(given, x.numpy()) if onnx else torch.save(x, given)
    proc = subprocess.run([sys.executable, "-I", "-c", PLAIN, kind, str(model_file), str(given), str(taken)],
                          cwd=clean, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ("imported: []" if onnx else "imported: ['torch']") in proc.stdout
    return torch.from_numpy(np.load(taken)) if onnx else torch.load(taken, weights_only=True)


def _machine_strings() -> list[str]:
    """What a file must not hold: this repository's path, $HOME, the user name, /tmp paths."""
    import getpass

    user = getpass.getuser()
    found = [str(Path(__file__).resolve().parents[1]), os.path.expanduser("~"), "/tmp/", os.path.realpath("/tmp") + "/"]
    found.append(user if len(user) >= 4 else f"/{user}")  # a 2-letter name would match any binary blob
    return [s for s in found if len(s) >= 4]


def _leaks(path: Path, also: list[str]) -> dict[str, int]:
    """Occurrences of each machine string in the file's bytes and in its zip members' bytes."""
    import io
    import zipfile

    data = path.read_bytes()
    texts = [data]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            texts += [archive.read(name) for name in archive.namelist()]
    counts = {s: sum(t.count(s.encode()) for t in texts) for s in [*_machine_strings(), *also]}
    return {s: n for s, n in counts.items() if n}


@pytest.mark.parametrize("kind", ["torchscript", "pt2", "onnx"])
def test_exported_file_runs_without_secli_and_gives_secli_logits(kind: str, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / f"model.{kind}"
    result = run("export", str(checkpoint), "--to", kind, "--out", str(out), "--image-size", "32", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    found = document["results"]
    assert document["command"] == "export"
    assert found["file"] == str(out)
    assert found["to"] == kind
    assert found["verified"] is True
    assert 0 <= found["max_abs_diff"] <= 1e-4
    assert found["input_shape"] == [2, 3, 32, 32]
    assert found["dynamic_batch"] is True
    assert found["dynamic_dims"] == ["batch", "height", "width"]
    assert found["checked_shapes"] == ["2x3x32x32", "3x3x32x32", "2x3x64x32", "2x3x32x64"]
    assert found["opset"] == (18 if kind == "onnx" else None)
    assert found["fused_sites"] == 8
    assert found["eager_fallback"] is False
    assert "8 fused sites run their eager composition" in found["notes"][0]

    # nothing of this machine in the bytes: not the data folder the checkpoint's meta names either
    assert _leaks(out, [str(checkpoint.parent)]) == {}
    assert json.loads(_secli_json(kind, out))["meta"]["data"] == "private_images"  # the name, not its folder

    from secli import api

    model = api.load_model(str(checkpoint)).model.eval()
    for shape in ((3, 3, 32, 32), (1, 3, 48, 40)):  # other batch and image sizes than the export's
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected = model(x)
        got = _plain_logits(kind, out, x, tmp_path)
        assert got.shape == (shape[0], 10)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def _secli_json(kind: str, path: Path) -> str:
    """The ``secli.json`` document stored in an exported file, read as docs/export.md shows."""
    extra = {"secli.json": ""}
    if kind == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.load(str(path), _extra_files=extra)
    elif kind == "pt2":
        torch.export.load(str(path), extra_files=extra)
    else:
        import onnx

        return {p.key: p.value for p in onnx.load(str(path)).metadata_props}["secli.json"]
    return extra["secli.json"]


def test_architecture_with_block_options_exports(tmp_path: Path) -> None:
    """A named architecture is built like inject builds it: here ECA (nothing fused); table output."""
    out = tmp_path / "eca.ts"
    result = run("export", "resnet18", "--block", "eca", "--num-classes", "5", "--to", "torchscript", "-o", str(out),
                 "--image-size", "32")
    assert result.exit_code == 0, result.output
    assert "verified" in result.stdout
    assert f'torch.jit.load("{out}")' in result.stdout
    assert "fused" not in result.stdout
    extra = {"secli.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation note
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
    assert result.eager_fallback
    assert "exported their eager composition" in result.notes[0]
    assert result.max_abs_diff <= 1e-4
    assert (tmp_path / "m.ts").is_file()


def test_a_file_that_does_not_verify_is_not_written(checkpoint: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
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


def test_onnx_without_its_packages_is_refused_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    result = run("export", "resnet18", "--to", "onnx", "--out", str(tmp_path / "m.onnx"))
    assert_one_line_error(result, 1, "--to onnx needs onnxruntime (not installed) (pip install 'secli[onnx]')")
    assert not (tmp_path / "m.onnx").exists()


def test_paths_are_reduced_to_names_and_a_leftover_path_stops_the_export(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from secli.networks import export_privacy
    from secli.networks.export import export_built
    from secli.networks.models import load_model
    from secli.util.errors import SecliError

    assert export_privacy.portable({"data": "/home/ann/imagenet", "w": ["~/w.pth", "rel/x.pt"], "n": 3}) == {
        "data": "imagenet", "w": ["w.pth", "rel/x.pt"], "n": 3}
    assert "/tmp/" in export_privacy.machine_strings()
    assert "/" not in export_privacy.machine_strings()
    # a path the exporters would leave (here: the spec, written as it is) is found and nothing is written
    built = load_model("resnet18")
    monkeypatch.setattr("secli.networks.export.portable", lambda value: value)
    built.meta = {"data": str(tmp_path / "images")}
    with pytest.raises(SecliError, match="a path of this machine; nothing written"):
        export_built(built, "torchscript", tmp_path / "m.ts", 32, False, {})
    assert not (tmp_path / "m.ts").exists()


def test_the_cli_spells_the_targets_the_library_has() -> None:
    from commands.export import ExportTarget
    from secli.networks.export import TARGETS

    assert tuple(t.value for t in ExportTarget) == TARGETS
