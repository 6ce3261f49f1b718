"""Adversarial cases, one or more per bug found by trying secli as an adversary would (issue 24).

Grows with each bug: a case reproduces the report first (it failed before the fix), then stays.
Sections follow the issue: outputs never touch inputs; training takes any batch against any
data size; every number is bounded; every file read back is checked; signals are survived;
messages are one line. The heavy cases are marked ``slow``.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, run
from torch import nn

from secli.util.errors import SecliError, SecliUsageError

ROOT = Path(__file__).resolve().parents[1]


def _stats(folder: Path, classes: tuple[str, ...] = ("a", "b"), sites: int = 1, model: str = "m.pt") -> Path:
    """A small statistics folder as visualize-excitation writes it (stats.npz + summary.json)."""
    from secli.excitation.result import ExcitationResult, SiteInfo

    rng = np.random.default_rng(0)
    k, infos, arrays = len(classes), [], {"x1": {}}
    for i in range(sites):
        info = SiteInfo(f"SE_{i + 2}_1", "se", 4, 1, 0.0, 1.0, 5)
        infos.append(info)
        g = rng.random((k, 1, 4))
        arrays["x1"][info.name] = {"count": np.ones(k), "sum": g, "sumsq": g * g, "hist": np.ones((k, 1, 5)),
                                   "above": np.zeros((k, 1))}
    ExcitationResult(infos, list(classes), [1.0], arrays, meta={"model": model}).save(folder)
    return folder


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# ============================================================ 1. outputs never touch an input
def test_out_holding_the_statistics_it_replots_is_refused_and_nothing_is_deleted(tmp_path: Path) -> None:
    """The report: ``--from-stats P/proj/stats --out P/proj --force`` exited 0 after deleting them."""
    stats = _stats(tmp_path / "P" / "proj" / "stats")
    before = _tree(tmp_path)
    result = run("visualize-excitation", "--from-stats", str(stats), "--out", str(tmp_path / "P" / "proj"), "--force")
    assert_one_line_error(result, 2, "contains the statistics folder")
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("relation", ["same", "parent", "grandparent", "child", "link-to-parent", "link-from-inside",
                                      "dotdot"])
def test_an_output_folder_is_never_an_input_its_parent_or_inside_it(tmp_path: Path, relation: str) -> None:
    from secli.util.output_folders import check_out_folder

    stats = _stats(tmp_path / "P" / "proj" / "stats")
    (tmp_path / "link").symlink_to(tmp_path / "P" / "proj")
    (tmp_path / "inside").symlink_to(stats)
    out = {"same": stats, "parent": stats.parent, "grandparent": tmp_path / "P", "child": stats / "figs",
           "link-to-parent": tmp_path / "link", "link-from-inside": tmp_path / "inside" / "figs",
           "dotdot": stats / "x" / ".." / ".."}[relation]
    before = _tree(tmp_path / "P")
    with pytest.raises(SecliUsageError, match=r"which this run reads|symbolic link") as info:
        check_out_folder(Path(out), force=True, reads=[("the statistics folder", stats)])
    assert info.value.exit_code == 2
    assert _tree(tmp_path / "P") == before


def test_a_sibling_folder_is_fine(tmp_path: Path) -> None:
    from secli.util.output_folders import check_out_folder
    from secli.util.outputs import check_writable

    stats = _stats(tmp_path / "P" / "proj" / "stats")
    check_out_folder(tmp_path / "P" / "proj" / "figs", force=True, reads=[("the statistics folder", stats)])
    check_writable(tmp_path / "P" / "proj" / "m.pt", reads=[("the statistics folder", stats)])


def test_an_output_file_that_is_an_input_or_sits_in_one_is_refused(tmp_path: Path) -> None:
    from secli.util.outputs import check_writable

    images = tmp_path / "imgs"
    (images / "cat").mkdir(parents=True)
    spec = tmp_path / "spec.yaml"
    spec.write_text("arch: resnet18\n")
    os.link(spec, tmp_path / "hard.yaml")
    for out, reads in ((spec, [("the spec", spec)]), (tmp_path / "hard.yaml", [("the spec", spec)]),
                       (images / "cat" / "m.pt", [("the image folder", images)])):
        with pytest.raises(SecliUsageError, match="which this run reads"):
            check_writable(out, force=True, reads=reads)
    assert spec.read_text() == "arch: resnet18\n"


def test_commands_refuse_to_write_into_what_they_read(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("arch: resnet18\nblock: se\n")
    assert_one_line_error(run("inject", "--spec", str(spec), "--save-spec", str(spec), "--force"), 2, "is the spec")
    assert spec.read_text() == "arch: resnet18\nblock: se\n"
    images = tmp_path / "imgs"
    (images / "a").mkdir(parents=True)
    result = run("train", "resnet18", "--data", str(images), "--out", str(images / "a" / "m.pt"), "--epochs", "1")
    assert_one_line_error(result, 2, "is inside the image folder")
    result = run("visualize-excitation", "resnet18", "--block", "se", "--data", str(images), "--out", str(tmp_path),
                 "--force")
    assert_one_line_error(result, 2, "contains the image folder")
    assert images.is_dir()
    assert spec.exists()


# ============================================================ 2. any batch size, any data size
class _TinyNet(nn.Module):
    """Pools to 1x1 before a BatchNorm, as an SK block's vector or a ResNet's last stage at 32 px."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.pool(self.conv(x))).flatten(1))


def test_every_batch_size_against_every_small_data_size_trains() -> None:
    from torch.utils.data import TensorDataset

    from secli.training.batches import check_batch_size, smallest_batch, train_loader
    from secli.training.loop import TrainConfig, train_model

    net = _TinyNet()
    smallest, layer = smallest_batch(net, torch.zeros(1, 3, 8, 8))
    assert (smallest, layer) == (2, "bn")  # measured: one value per channel from one image
    for images in range(1, 12):
        data = TensorDataset(torch.randn(images, 3, 8, 8), torch.arange(images) % 3)
        data_with_skips = [(x, int(y)) for x, y in data]
        for batch in range(1, 10):
            if batch < smallest or images < smallest:
                with pytest.raises(SecliUsageError, match="cannot train this model"):
                    check_batch_size(batch, images, smallest, layer, 8)
                continue
            loader = train_loader(data_with_skips, list(range(images)), batch, smallest, 0, 0, False)
            sizes = [len(b) for b in loader.batch_sampler]
            assert sum(sizes) == images, (images, batch)
            assert min(sizes) >= smallest, (images, batch)
            assert len(sizes) == len(loader), (images, batch)
            result = train_model(_TinyNet(), loader, None, 3, TrainConfig(epochs=1, batch_size=batch))
            assert result.train_images == images
            assert result.epochs[0].dropped == 0


def test_the_reported_last_batch_of_one_trains_and_says_how(tmp_path: Path) -> None:
    """The report: 41 images in batches of 8 at 32 px failed ('Expected more than 1 value per channel')."""
    from secli.api import train

    run_ = train("resnet18", block="se", data="synthetic", train_size=41, val_size=10, image_size=32, batch_size=8,
                 epochs=1, out=tmp_path / "t.pt", device="cpu")
    assert run_.history.train_images == 41
    assert (tmp_path / "t.pt").is_file()
    with pytest.raises(SecliUsageError, match="--batch-size 1 cannot train this model: its BatchNorm layer"):
        train("resnet18", block="se", data="synthetic", train_size=4, val_size=0, image_size=32, batch_size=1,
              epochs=1, out=tmp_path / "u.pt", device="cpu")
    assert not (tmp_path / "u.pt").exists()


# ============================================================ 3. every number bounded
BOUNDED = [
    (["inject", "resnet18", "--min-hidden", "1000000"], "--min-hidden must be from 1 to 4,096"),
    (["inject", "resnet18", "--block", "eca", "--kernel-size", "100001"], "--kernel-size must be from 1 to 4,095"),
    (["inject", "resnet18", "--block", "sk", "--paths", "50"], "--paths must be from 1 to 8"),
    (["inject", "resnet18", "--num-classes", "10000000"], "--num-classes must be from 1 to 100,000"),
    (["inject", "resnet18", "--stages", "99"], "--stages must be from 1 to 16"),
    (["profile", "resnet18", "--device", "cpu", "--threads", "100000"], "--threads must be from 1 to"),
    (["profile", "resnet18", "--device", "cpu", "--iters", "10000000"], "--iters must be from 1 to 100,000"),
    (["train", "resnet18", "--train-size", "10000000", "--out", "{tmp}/m.pt"], "--train-size must be from 1 to"),
    (["train", "resnet18", "--seed", str(2**70), "--out", "{tmp}/m.pt"], "--seed must be from 0 to"),
    (["visualize-excitation", "resnet18", "--block", "se", "--data", "synthetic", "--per-class", "1000000",
      "--out", "{tmp}/f"], "--per-class must be from 1 to 100,000"),
    (["visualize-excitation", "resnet18", "--block", "se", "--data", "synthetic", "--bins", "100000",
      "--out", "{tmp}/f"], "--bins must be from 2 to 10,000"),
    (["complexity", "resnet18", "--block", "se", "--ratios", ",".join(["8"] * 10_000)],
     "this sweep has 10,000 models; at most 100"),
    (["complexity", "resnet18", "--block", "se", "--ratios", "8,100000"],
     "--ratios must be whole numbers >= 1 and <= 4,096"),
    (["complexity", "resnet18", "--block", "se", *["--stages", "2"] * 300], "this sweep has 300 models; at most 100"),
    (["complexity", "resnet18", "--by-module", "--depth", "1000"], "--depth must be from 0 to 64"),
]


@pytest.mark.parametrize(("args", "message"), BOUNDED, ids=lambda a: a[0] if isinstance(a, list) else None)
def test_every_number_has_an_upper_bound_stated_in_the_error(tmp_path: Path, args: list[str], message: str) -> None:
    start = time.perf_counter()
    result = run(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert_one_line_error(result, 2, message)
    assert time.perf_counter() - start < 30  # refused before anything large is built


def test_the_bounds_are_in_help_the_python_api_and_the_docs() -> None:
    from secli.blocks.spec import BlockSpec
    from secli.util.bounds import BOUNDS

    shown = " ".join(run("inject", "--help").stdout.replace("│", " ").split())
    assert "Floor on the hidden width (SK's L) (1 to 4,096)" in shown
    assert "dilation m) (1 to 8)" in shown
    with pytest.raises(SecliUsageError, match="--min-hidden must be from 1 to 4,096"):
        BlockSpec(min_hidden=1_000_000)
    lines = {line.split("|")[1].strip(): line for line in (ROOT / "docs" / "guarantees.md").read_text().splitlines()
             if line.startswith("| `")}
    for name, row in BOUNDS.items():  # the docs' table of bounds lists every row, with its range
        line = lines.get(f"`{name}`", "")
        machine = "CPUs here" in row.why  # derived from this machine's CPUs: the docs give the rule
        assert f"{row.low:,}" in line, name
        assert machine or f"{row.high:,}" in line, name


def test_a_run_that_cannot_fit_in_memory_is_refused_with_the_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report: ``profile --image-size 4096 -b 64`` ran 100 s, then failed to allocate 12.9 GB."""
    import secli.util.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 8_000_000_000)
    start = time.perf_counter()
    result = run("profile", "resnet18", "--device", "cpu", "--image-size", "4096", "-b", "64")
    assert_one_line_error(result, 2, "resnet18's activations (inference, batch 64, 4096 px) need at least")
    assert "more than the 8.0 GB free" in result.stderr
    assert time.perf_counter() - start < 30


def test_the_activation_estimate_is_a_lower_bound() -> None:
    """Inference keeps at least the largest layer's input and output: for resnet18 at 224 px that
    is the first BatchNorm's (64 x 112 x 112 values in and out), by hand: 2 x 802,816 x 4 bytes."""
    import torchvision

    from secli.util.memory import activation_bytes

    model = torchvision.models.resnet18()
    assert activation_bytes(model, 224, 1, train=False) == 2 * 64 * 112 * 112 * 4
    assert activation_bytes(model, 448, 3, train=False) == 3 * 4 * 2 * 64 * 112 * 112 * 4


def test_statistics_that_cannot_fit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import secli.util.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 1_000_000)
    result = run("visualize-excitation", "resnet18", "--block", "se", "--data", "synthetic", "--per-class", "1",
                 "--image-size", "32", "--bins", "10000", "--out", str(tmp_path / "f"))
    assert_one_line_error(result, 2, "the statistics (8 sites x 10 classes x 10,000 bins) need at least")
    assert not (tmp_path / "f").exists()


# ============================================================ 4. every file read back is checked
@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_report_refuses_what_is_not_a_regular_file_at_once(tmp_path: Path, kind: str) -> None:
    """The report: a FIFO blocked forever, /dev/zero grew until memory ran out."""
    path = {"fifo": tmp_path / "fifo", "device": Path("/dev/zero"), "folder": tmp_path}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    code = ("from cli_helpers import run; import sys; r = run('report', sys.argv[1]); "
            "sys.stderr.write(r.stderr); sys.exit(r.exit_code)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT / "tests", capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"})
    assert done.returncode == 2
    assert "not a regular file" in done.stderr
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize(("text", "message"), [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"a": ' * 70 + "1" + "}" * 70, "nested more than 64 levels"),
    ('{"format": NaN}', "NaN is not a JSON number"),
    ('{"format": 1' + "0" * 5000 + "}", "a number has too many digits"),
    ('{"format": "secli-x", "format": "secli-y"}', "appears twice"),
])
def test_odd_json_is_refused_in_words(tmp_path: Path, text: str, message: str) -> None:
    """The report: deep or odd JSON gave RecursionError or ValueError with exit 1."""
    path = tmp_path / "odd.json"
    path.write_text(text)
    result = run("report", str(path))
    assert_one_line_error(result, 2, message)
    assert "Error" not in result.stderr


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["results"]["sites"][0].update(bins="5"), "results.sites[0].bins must be integer"),
    (lambda d: d["results"]["sites"][0].update(channels=7), "has shape (2, 1, 4), not (2, 1, 7)"),
    (lambda d: d["results"].update(classes=["a"]), "has shape (2,), not (1,)"),
    (lambda d: d["results"].update(sites=[]), "results.sites must hold at least 1 items"),
    (lambda d: d["results"].update(scales=[1.0, 1.0]), "lists an object scale twice"),
    (lambda d: d["results"].update(scales=[1e999]), "results.scales[0] must be number"),
    (lambda d: d["results"]["sites"][0].update(name="SE_9_9"), "has no statistics of site 'SE_9_9'"),
    (lambda d: d["results"].update(ablation={"sites": [{"site": "SE_2_1"}], "images": 1, "correct": 1, "scale": 1}),
     "ablation correct_mean_gate must be a whole number"),
    (lambda d: d.update(version=True), "has version True"),
])
def test_a_tampered_summary_is_one_line_exit_2(tmp_path: Path, change, message: str) -> None:
    """The report: tampered summary.json fields gave IndexError and ValueError."""
    folder = _stats(tmp_path / "stats")
    document = _summary(folder)
    change(document)
    (folder / "summary.json").write_text(json.dumps(document).replace("Infinity", "1e999"))
    result = run("visualize-excitation", "--from-stats", str(folder), "--out", str(tmp_path / "figs"))
    assert_one_line_error(result, 2, message)
    assert "Error" not in result.stderr
    assert not (tmp_path / "figs").exists()


def _npz(members: dict[str, bytes], compress: bool = True) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    from numpy.lib import format as npy

    buffer = io.BytesIO()
    npy.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_statistics_are_bounded_before_they_are_decompressed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report: a 3 MB stats.npz decompressed to 21.5 GB. Here 64 MB of zeros in a small file
    against a 16 MB budget: refused from the archive's directory, before a byte is inflated."""
    import secli.excitation.reading as reading

    folder = _stats(tmp_path / "stats")
    bomb = _npz({"x1/SE_2_1/count.npy": _npy_header((8_000_000,)) + bytes(64_000_000)})
    assert len(bomb) < 200_000
    (folder / "stats.npz").write_bytes(bomb)
    monkeypatch.setattr(reading, "MAX_STATS_BYTES", 16_000_000)
    result = run("visualize-excitation", "--from-stats", str(folder))
    assert_one_line_error(result, 2, "would decompress to 64,000,")


@pytest.mark.parametrize(("member", "message"), [
    (_npy_header((10**12,)) + bytes(80), "claims 8,000,000,000,000 bytes of data"),
    (_npy_header((2,), "|O") + bytes(16), "holds object values, not numbers"),
    (b"not an array", "is damaged"),
])
def test_an_array_header_never_decides_an_allocation(tmp_path: Path, member: bytes, message: str) -> None:
    folder = _stats(tmp_path / "stats")
    (folder / "stats.npz").write_bytes(_npz({"x1/SE_2_1/count.npy": member}))
    assert_one_line_error(run("visualize-excitation", "--from-stats", str(folder)), 2, message)


def test_names_from_files_are_shown_escaped(tmp_path: Path) -> None:
    """The report: terminal escape sequences in strings were printed raw."""
    folder = _stats(tmp_path / "stats", classes=("\x1b[31mred\x1b[0m", "b\nc"), model="\x1b]0;title\x07m\u202e.pt")
    for fmt in ("table", "markdown", "csv", "json"):
        result = run("report", str(folder / "summary.json"), "-f", fmt)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.stdout
        assert "\x07" not in result.stdout
        assert "\u202e" not in result.stdout
        if fmt in ("table", "markdown"):
            assert "\\x1b]0;title\\x07m\\u202e.pt" in result.stdout
    result = run("visualize-excitation", "--from-stats", str(folder), "--sites", "\x1b]0;pwned\x07")
    assert_one_line_error(result, 2, "unknown site '\\x1b]0;pwned\\x07'")
    assert "\x1b" not in result.stderr


@pytest.mark.parametrize(("body", "message"), [
    ("block: {kind: se, bias: 'no'}", "'bias' must be true or false, got 'no'"),
    ("block: {kind: se, stages: [2.9]}", "'stages' must be a list of whole numbers"),
    ("image_size: 100000", "image_size must be from 8 to 4,096"),
    ("sweep: {ratio: [4, 'x']}", "'ratio' must be a whole number"),
    ("sweep: {ratio: [" + ", ".join(map(str, range(1, 200))) + "]}", "this sweep has 199 models; at most 100"),
    ("rows: [{kind: sk, paths: 2.5}]", "'paths' must be a whole number"),
    ("title: [1, 2]", "title must be a string"),
])
def test_sweep_specs_get_the_field_checks_of_model_specs(tmp_path: Path, body: str, message: str) -> None:
    """The report: ``bias: "no"`` counted as true, ``stages: [2.9]`` became 2, ``image_size: 100000`` was tried."""
    path = tmp_path / "sweep.yaml"
    path.write_text(f"arch: resnet18\n{body}\n")
    assert_one_line_error(run("complexity", "--spec", str(path)), 2, message)


def test_model_files_are_read_through_the_reader(tmp_path: Path) -> None:
    fifo = tmp_path / "m.pt"
    os.mkfifo(fifo)
    assert_one_line_error(run("complexity", str(fifo)), 2, "is a FIFO, not a regular file")
    legacy = tmp_path / "legacy.pt"
    torch.save({"format": "secli-checkpoint"}, legacy, _use_new_zipfile_serialization=False)
    assert_one_line_error(run("complexity", str(legacy)), 2, "not a zip-format PyTorch file")


# ============================================================ 5. signals
def test_sighup_while_saving_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The report: SIGHUP left a 40 MB ``.tmp`` beside ``--out``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SECLI_TEST_SIGNAL_AT": "file-written:HUP"}
    done = subprocess.run([sys.executable, "-m", "commands.app", "inject", "resnet18", "--block", "se", "--out",
                           str(tmp_path / "m.pt")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 129
    assert done.stderr.strip().splitlines() == ["error: hung up"]
    assert os.listdir(tmp_path) == []


def test_a_worker_that_dies_is_an_error_and_none_is_left_behind() -> None:
    from secli.util.forks import fork_map

    def job(index: int) -> int:
        if index == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return index * index

    assert fork_map(lambda i: i * i, 6, 3) == [0, 1, 4, 9, 16, 25]
    with pytest.raises(SecliError, match="killed by SIGKILL"):
        fork_map(job, 6, 3)
    with pytest.raises(ZeroDivisionError):
        fork_map(lambda i: 1 // (i - 4), 6, 2)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child left, not even a zombie


_ZYGOTE = r"""
import json, os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)  # a run signalled before secli handles signals just dies
sys.argv = ["secli"]
import commands.app, secli.excitation.workflow, secli.networks.workflow, secli.excitation.plots  # imported once
import matplotlib.figure, torchvision.models
for line in sys.stdin:
    args = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.setsid()
        out = os.open(os.devnull, os.O_WRONLY)
        err = os.open(args["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1), os.dup2(err, 2)
        sys.argv = ["secli", *args["argv"]]
        code = 70
        try:
            commands.app.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:
            os._exit(code)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


@pytest.mark.slow
def test_signals_at_random_moments_leave_the_old_output_or_the_new(tmp_path: Path) -> None:
    """SIGTERM, SIGINT and SIGHUP, to the process or its whole group (figure workers included),
    at random moments of a run that draws figures in worker processes or writes a checkpoint:
    it ends within seconds, with the old output or the new, no temporary file, no process left.
    (SIGTERM to the group hung 4 of 20 runs; SIGHUP left a 40 MB ``.tmp``.) Each run is forked
    from a process that has imported secli once, so 21 runs take well under a minute."""
    stats = _stats(tmp_path / "stats", classes=tuple(f"c{i}" for i in range(10)), sites=8)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "SECLI_FIGURE_WORKERS": "2"}
    env.pop("SECLI_TEST_SIGNAL_AT", None)
    zygote = subprocess.Popen([sys.executable, "-c", _ZYGOTE], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    rng = random.Random(24)
    outcomes, durations = [], {}
    try:
        for trial in range(-2, 21):  # two runs left alone first: how long each kind takes here
            signum = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)[trial % 3]
            group, folder = trial % 2 == 0, (trial % 4 < 2 if trial >= 0 else trial == -2)
            out = tmp_path / "folder" / "figs" if folder else tmp_path / "file" / "m.pt"
            if folder:
                out.mkdir(exist_ok=True)
                (out / "old.png").write_text("old")
                argv = ["visualize-excitation", "--from-stats", str(stats), "--out", str(out), "--force"]
            else:
                out.write_text("old")
                argv = ["inject", "resnet18", "--block", "se", "--out", str(out), "--force"]
            zygote.stdin.write(json.dumps({"argv": argv, "stderr": str(tmp_path / "err.txt")}) + "\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            started = time.perf_counter()
            if trial < 0:
                assert int(zygote.stdout.readline()) == 0
                durations[folder] = time.perf_counter() - started
                shutil.rmtree(out) if folder else out.unlink()
                continue
            time.sleep(rng.uniform(0.0, durations[folder]))  # a random moment of the run
            sent = time.perf_counter()
            with contextlib.suppress(ProcessLookupError):  # already done: the new output must be there
                (os.killpg if group else os.kill)(pid, signum)
            code = int(zygote.stdout.readline())
            took = time.perf_counter() - sent
            left = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout.split()
            stderr = (tmp_path / "err.txt").read_text()
            outcomes.append((signum.name, group, code, round(took, 1)))
            assert took < 10, (outcomes[-1], left)
            assert not left, (outcomes[-1], left)
            assert code in (0, 128 + signum, -signum), (outcomes[-1], stderr)
            assert os.listdir(out.parent) == [out.name], (outcomes[-1], os.listdir(out.parent))  # no temporary
            if folder:
                names = sorted(os.listdir(out))
                assert names == ["old.png"] or ("class_means.png" in names and "old.png" not in names), names
                for name in names:
                    (out / name).unlink()
            else:
                assert out.read_text() == "old" if out.stat().st_size == 3 else out.stat().st_size > 40_000_000
            assert code == 0 or len(stderr.strip().splitlines()) <= 1, stderr
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=60)
    assert sum(code != 0 for _, _, code, _ in outcomes) >= 10, outcomes  # most runs were interrupted


# ============================================================ 6. messages
@pytest.mark.parametrize("value", ["0", "false", "No", " off "])
def test_secli_debug_off_spellings_are_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """The report: SECLI_DEBUG=false turned tracebacks on."""
    monkeypatch.setenv("SECLI_DEBUG", value)
    assert_one_line_error(run("inject", "nonet"), 2, "unknown architecture")


@pytest.mark.parametrize("name", ["SECLI_DEBUG", "SECLI_CPU_KERNELS", "SECLI_TRITON", "SECLI_FIGURE_WORKERS"])
def test_junk_in_a_secli_variable_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "maybe\n")
    assert_one_line_error(run("inject", "resnet18"), 2, f"{name} must be")


def test_names_with_newlines_and_escapes_stay_one_line(tmp_path: Path) -> None:
    result = run("inject", "--spec", str(tmp_path / "a\nb\x1b[2J.yaml"))
    assert_one_line_error(result, 2, "a\\nb\\x1b[2J.yaml")


def test_a_huge_value_is_quoted_short(tmp_path: Path) -> None:
    """The report: some errors quoted 900 KB of a value."""
    for args in (["inject", "resnet18", "--position", "x" * 900_000], ["complexity", "resnet18", "--block", "se",
                                                                       "--ratios", "1," + "9" * 900_000]):
        result = run(*args)
        assert result.exit_code == 2, len(result.stderr)
        assert len(result.stderr) < 1_200, len(result.stderr)


def test_inject_keeps_its_result_when_the_disk_is_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report: inject on a full disk failed with torch's RuntimeError and kept no copy.
    ``torch.save`` turns the file system's ENOSPC into its own error; the rescue still happens."""
    import secli.util.outputs as outputs
    from secli.api import inject
    from secli.networks.models import load_model

    real = os.fdopen

    class Full:
        """A file on a full disk: every write fails as the file system says."""

        def __init__(self, handle: io.BufferedWriter) -> None:
            self.handle = handle

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def __getattr__(self, name: str):
            return getattr(self.handle, name)

    def fdopen(fd: int, *args, **kwargs):
        handle = real(fd, *args, **kwargs)
        return Full(handle) if os.path.dirname(os.readlink(f"/proc/self/fd/{fd}")) == str(tmp_path) else handle

    monkeypatch.setattr(outputs.os, "fdopen", fdopen)
    monkeypatch.setattr(outputs.tempfile, "gettempdir", lambda: str(tmp_path / "rescue"))
    (tmp_path / "rescue").mkdir()
    with pytest.raises(SecliError, match="No space left on device; the result is kept in") as info:
        inject("resnet18", block="se", out=tmp_path / "m.pt")
    kept = Path(str(info.value).split("kept in ")[1])
    assert kept.parent == tmp_path / "rescue"
    assert load_model(str(kept)).spec.block.kind == "se"
    assert sorted(os.listdir(tmp_path)) == ["rescue"]
