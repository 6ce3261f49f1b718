"""Outputs never clobbered or half-written: races, special files, folders replaced whole,
failed saves keep the result, and SIGINT/SIGTERM leave the old output or the new one."""

from __future__ import annotations

import errno
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from secli.util.errors import SecliError
from secli.util.output_folders import atomic_folder
from secli.util.outputs import atomic_write, atomic_write_text, check_writable

ROOT = Path(__file__).resolve().parents[1]


def _race_file(path: str, text: str, barrier, results) -> None:
    def write(handle):
        barrier.wait(timeout=30)  # both runs passed their checks and are writing at once
        handle.write(text.encode())

    try:
        atomic_write(path, write)
        results.put(("ok", text))
    except SecliError as exc:
        results.put(("error", str(exc)))


def _race_folder(path: str, name: str, barrier, results) -> None:
    try:
        with atomic_folder(path) as tmp:
            (tmp / f"{name}.txt").write_text(name)
            barrier.wait(timeout=30)
        results.put(("ok", name))
    except SecliError as exc:
        results.put(("error", str(exc)))


@pytest.mark.parametrize("target", [_race_file, _race_folder])
def test_two_processes_racing_for_one_output_exactly_one_wins(tmp_path, target):
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    out = str(tmp_path / "same")
    procs = [ctx.Process(target=target, args=(out, name, barrier, results)) for name in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    got = sorted(results.get(timeout=5) for _ in procs)
    assert [g[0] for g in got] == ["error", "ok"], got
    winner, message = got[1][1], got[0][1]
    assert "another run" in message
    assert "\n" not in message
    if target is _race_file:
        assert Path(out).read_text() == winner
    else:
        assert sorted(os.listdir(out)) == [f"{winner}.txt"]
    assert sorted(os.listdir(tmp_path)) == ["same"]  # no temporary file or folder left


def test_special_files_are_never_replaced_even_with_force(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(fifo)
    (tmp_path / "dir").mkdir()
    for path, what in ((fifo, "FIFO"), (Path("/dev/null"), "character device"), (link, "FIFO"),
                       (tmp_path / "dir", "directory")):
        with pytest.raises(SecliError, match=what):
            atomic_write_text(path, "x", force=True)
        with pytest.raises(SecliError, match="folder" if what == "directory" else what):
            check_writable(path, force=True)
    assert fifo.is_fifo()
    assert link.is_symlink()
    assert (tmp_path / "dir").is_dir()
    assert sorted(os.listdir(tmp_path)) == ["dir", "fifo", "link"]


def test_force_replaces_a_regular_file_and_a_link_to_one(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    assert atomic_write_text(target, "new", force=True).read_text() == "new"


def test_a_folder_is_replaced_whole_never_merged(tmp_path):
    out = tmp_path / "figs"
    with atomic_folder(out) as tmp:
        for name in ("a.png", "b.png", "stats.npz"):
            (tmp / name).write_text("old")
    with pytest.raises(SecliError, match="not empty"), atomic_folder(out):
        pass
    with atomic_folder(out, force=True) as tmp:
        (tmp / "a.png").write_text("new")
    assert sorted(os.listdir(out)) == ["a.png"]
    assert (out / "a.png").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["figs"]


def test_a_failed_folder_write_leaves_the_old_folder(tmp_path):
    out = tmp_path / "figs"
    out.mkdir()
    (out / "old.png").write_text("old")

    def write_then_fail() -> None:
        with atomic_folder(out, force=True) as tmp:
            (tmp / "new.png").write_text("new")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert os.listdir(out) == ["old.png"]
    assert sorted(os.listdir(tmp_path)) == ["figs"]


def _disk_full_where(monkeypatch, fails, rescue_dir: Path) -> None:
    """Writes into a folder for which ``fails(folder, prefix)`` holds raise ENOSPC; rescue files go
    to ``rescue_dir``."""
    import secli.util.outputs as outputs

    real = outputs._write_file_in

    def write_file_in(folder, prefix, write, keep_name=".tmp"):
        if fails(Path(folder), prefix):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(folder, prefix, write, keep_name)

    monkeypatch.setattr(outputs, "_write_file_in", write_file_in)
    rescue_dir.mkdir(exist_ok=True)
    monkeypatch.setattr(outputs.tempfile, "gettempdir", lambda: str(rescue_dir))


def test_a_full_disk_keeps_the_result_in_a_named_place(tmp_path, monkeypatch):
    _disk_full_where(monkeypatch, lambda folder, prefix: folder == tmp_path, tmp_path / "rescue")
    with pytest.raises(SecliError) as info:
        atomic_write_text(tmp_path / "model.pt", "trained weights")
    message = str(info.value)
    assert "No space left on device" in message
    assert "kept in" in message
    kept = Path(message.split("kept in ")[1])
    assert kept.read_text() == "trained weights"
    assert kept.parent == tmp_path / "rescue"
    assert not (tmp_path / "model.pt").exists()


def test_a_failed_final_rename_keeps_the_temporary_file(tmp_path, monkeypatch):
    import secli.util.outputs as outputs

    def no_link(src, dst):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(outputs.os, "link", no_link)
    with pytest.raises(SecliError, match="Permission denied; the result is kept in") as info:
        atomic_write_text(tmp_path / "m.pt", "weights")
    assert Path(str(info.value).split("kept in ")[1]).read_text() == "weights"


def _stats_folder(path: Path) -> Path:
    from secli.excitation.result import ExcitationResult, SiteInfo

    g = np.random.default_rng(0).random((2, 1, 4))
    arrays = {"x1": {"SE_1": {"count": np.ones(2), "sum": g, "sumsq": g * g, "hist": np.ones((2, 1, 5)),
                              "above": np.zeros((2, 1))}}}
    ExcitationResult([SiteInfo("SE_1", "se", 4, 1, 0.0, 1.0, 5)], ["a", "b"], [1.0], arrays).save(path)
    return path


def _cli(*args: str, signal_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    env.pop("SECLI_TEST_SIGNAL_AT", None)
    if signal_at:
        env["SECLI_TEST_SIGNAL_AT"] = signal_at
    return subprocess.run([sys.executable, "-m", "commands.app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("signal_name", "code"), [("INT", 130), ("TERM", 143)])
def test_a_signal_while_writing_a_folder_leaves_the_old_one_and_no_temporary(tmp_path, signal_name, code):
    stats = _stats_folder(tmp_path / "stats")
    out = tmp_path / "work" / "figs"
    out.mkdir(parents=True)
    (out / "old.png").write_text("old")
    r = _cli("visualize-excitation", "--from-stats", str(stats), "--out", str(out), "--force",
             signal_at=f"folder-written:{signal_name}")
    assert r.returncode == code, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
    assert os.listdir(out) == ["old.png"]
    assert os.listdir(out.parent) == ["figs"]
    r = _cli("visualize-excitation", "--from-stats", str(stats), "--out", str(out), "--force")
    assert r.returncode == 0, r.stderr
    assert "old.png" not in os.listdir(out)
    assert "class_means.png" in os.listdir(out)


def test_a_signal_while_saving_a_file_leaves_no_file_and_no_temporary(tmp_path):
    spec = tmp_path / "spec.yaml"
    r = _cli("inject", "resnet18", "--block", "se", "--save-spec", str(spec), signal_at="file-written:TERM")
    assert r.returncode == 143, r.stderr
    assert os.listdir(tmp_path) == []
    assert r.stderr.strip().splitlines() == ["error: terminated"]


def test_the_cli_refuses_a_fifo_and_a_device_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from commands.app import app

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in (str(fifo), "/dev/null"):
        r = CliRunner().invoke(app, ["inject", "resnet18", "--block", "se", "--save-spec", target, "--force"])
        assert r.exit_code == 1
        assert "not a regular file" in r.output
        assert len(r.output.strip().splitlines()) == 1
    assert fifo.is_fifo()


def test_a_full_disk_at_trains_final_save_keeps_the_trained_model(tmp_path, monkeypatch):
    from secli.api import train
    from secli.networks.models import load_model

    _disk_full_where(monkeypatch, lambda folder, prefix: folder == tmp_path / "out", tmp_path)
    with pytest.raises(SecliError, match="No space left on device; the result is kept in") as info:
        train("resnet18", data="synthetic", out=tmp_path / "out" / "m.pt", epochs=1, train_size=8, val_size=0,
              batch_size=8, image_size=32, device="cpu")
    kept = Path(str(info.value).split("kept in ")[1])
    assert kept.suffix == ".pt"
    assert load_model(str(kept)).meta["trained_by"] == "secli train"
    assert os.listdir(tmp_path / "out") == []


def test_a_full_disk_inside_an_output_folder_keeps_the_file_and_leaves_no_temporary_folder(tmp_path, monkeypatch):
    _disk_full_where(monkeypatch, lambda folder, prefix: folder.name.startswith(".figs."), tmp_path / "rescue")
    with (
        pytest.raises(SecliError, match="No space left on device; the result is kept in") as info,
        atomic_folder(tmp_path / "figs") as tmp,
    ):
        atomic_write_text(tmp / "summary.json", "{}")
    assert Path(str(info.value).split("kept in ")[1]).read_text() == "{}"
    assert sorted(os.listdir(tmp_path)) == ["rescue"]


def test_a_failed_save_inside_a_folder_keeps_what_was_written_before_it(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _disk_full_where(monkeypatch, lambda folder, prefix: folder.name.startswith(".figs.") and "fig" in prefix,
                     tmp_path / "rescue")

    def write_two() -> None:
        with atomic_folder(tmp_path / "figs") as tmp:
            atomic_write_text(tmp / "stats.json", "{\"sums\": 1}")
            atomic_write_text(tmp / "fig1.png", "png")

    with pytest.raises(SecliError, match="No space left on device") as info:
        write_two()
    message = str(info.value)
    kept_folder = Path(message.split("the files written before it are kept in ")[1])
    assert (kept_folder / "stats.json").read_text() == "{\"sums\": 1}"
    rescued = Path(message.split("the result is kept in ")[1].split(";")[0])
    assert rescued.read_text() == "png"
    assert not (tmp_path / "figs").exists()


EXISTING_OUT = {  # every command that writes a file or folder: the existing one, refused before any work
    "complexity": ["complexity", "resnet18", "--out", "{out}"],
    "profile": ["profile", "resnet18", "--device", "cpu", "--out", "{out}"],
    "inject --out": ["inject", "resnet18", "--block", "se", "--out", "{out}"],
    "inject --save-spec": ["inject", "resnet18", "--block", "se", "--save-spec", "{out}"],
    "train": ["train", "resnet18", "--data", "synthetic", "--epochs", "1", "--out", "{out}"],
    "export": ["export", "resnet18", "--to", "torchscript", "--out", "{out}"],
    "visualize-excitation": ["visualize-excitation", "resnet18", "--data", "synthetic", "--out", "{out}"],
}


@pytest.mark.parametrize("name", list(EXISTING_OUT))
def test_an_existing_output_is_a_usage_error_in_every_command(tmp_path: Path, name: str) -> None:
    from cli_helpers import assert_one_line_error, run

    args = EXISTING_OUT[name]
    option = args[args.index("{out}") - 1]
    if name == "visualize-excitation":  # an output folder: refused when something is in it
        out = tmp_path / "figs"
        out.mkdir()
        kept = out / "keep.txt"
    else:
        out = kept = tmp_path / "result.out"
    kept.write_bytes(b"keep me\x00\xff")
    result = run(*(str(out) if a == "{out}" else a for a in args))
    assert_one_line_error(result, 2, f"{option} {out} exists")
    assert "pass --force to replace it" in result.stderr
    assert kept.read_bytes() == b"keep me\x00\xff"
    assert sorted(os.listdir(tmp_path)) == [out.name]


def test_a_file_that_appears_during_the_run_is_a_runtime_failure_not_a_usage_error(tmp_path: Path) -> None:
    """The up-front check passed; by the final write another run has written the file: exit 1."""
    path = tmp_path / "x.txt"
    assert check_writable(path) == path  # what a command checks before its slow part
    path.write_text("the other run's")
    with pytest.raises(SecliError, match="another run may have written it meanwhile") as info:
        atomic_write_text(path, "ours")
    assert info.value.exit_code == 1
    assert path.read_text() == "the other run's"
    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "theirs.txt").write_text("x")
    with (
        pytest.raises(SecliError, match="another run may have written it meanwhile") as info,
        atomic_folder(tmp_path / "figs"),
    ):
        pass
    assert info.value.exit_code == 1
