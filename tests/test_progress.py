"""Progress off a terminal: plain, rate-limited lines on stderr, never anything on stdout."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from commands.app import app
from commands.progress import DEFAULT_INTERVAL, PlainProgress, progress_bar, progress_interval
from secli.util.env_flags import BadEnvironment


def test_plain_lines_go_to_stderr_at_most_every_interval(capsys, monkeypatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("commands.progress.time.monotonic", lambda: clock[0])
    handle = PlainProgress(title="complexity", total=4, unit="models", interval=10.0)
    handle.update(1, 4, "resnet50 + SE r=8")  # 0 s in: too soon
    clock[0] += 9.0
    handle.update(2, 4, "resnet50 + SE r=16")  # 9 s: still too soon
    clock[0] += 2.0
    handle.update(3, 4, "resnet50 + SE r=32")  # 11 s: one line
    clock[0] += 1.0
    handle.advance()  # 12 s: too soon after the last line
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.splitlines() == ["complexity: models 3/4, resnet50 + SE r=32 (11 s)"]


def test_the_interval_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("SECLI_PROGRESS_INTERVAL", "0")
    assert progress_interval() == 0
    monkeypatch.setenv("SECLI_PROGRESS_INTERVAL", " ")
    assert progress_interval() == DEFAULT_INTERVAL
    for bad in ("soon", "-1", "nan", "inf", "86401"):  # refused, not read as the default (issue 24: strict, bounded)
        monkeypatch.setenv("SECLI_PROGRESS_INTERVAL", bad)
        with pytest.raises(BadEnvironment, match="SECLI_PROGRESS_INTERVAL must be a number of seconds"):
            progress_interval()


def test_a_bad_interval_is_one_line_and_exit_2(monkeypatch) -> None:
    from tests.cli_helpers import assert_one_line_error, run

    monkeypatch.setenv("SECLI_PROGRESS_INTERVAL", "soon")
    result = run("complexity", "resnet18", "--block", "se", "--image-size", "32")
    assert_one_line_error(result, 2, "SECLI_PROGRESS_INTERVAL must be a number of seconds")


def test_off_a_terminal_the_handle_is_plain_and_disabled_is_silent(capsys, monkeypatch) -> None:
    monkeypatch.setenv("SECLI_PROGRESS_INTERVAL", "0")
    monkeypatch.setattr("commands.progress.is_tty", lambda: False)
    with progress_bar("training resnet18", 6, unit="images") as handle:
        assert isinstance(handle, PlainProgress)
        handle.advance(3)
        handle.advance(3)
    with progress_bar("quiet", 6, enabled=False) as handle:
        handle.advance(6)
    lines = capsys.readouterr().err.splitlines()
    assert [line.rsplit(" (", 1)[0] for line in lines] == ["training resnet18: images 3/6",
                                                           "training resnet18: images 6/6"]


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_complexity_reports_progress_on_stderr_only(monkeypatch, fmt: str) -> None:
    monkeypatch.setenv("SECLI_PROGRESS_INTERVAL", "0")
    r = CliRunner().invoke(app, ["complexity", "resnet18", "--ratios", "8,16", "--image-size", "32", "-f", fmt])
    assert r.exit_code == 0, r.output
    lines = [line.rsplit(" (", 1)[0] for line in r.stderr.splitlines()]
    assert lines[0] == "complexity: models 0/3, baseline"
    assert "complexity: models 1/3, resnet18 + SE r=8 standard" in lines
    assert lines[-1] == "complexity: models 3/3, done"
    assert "complexity:" not in r.stdout
    if fmt == "json":
        assert json.loads(r.stdout)["format"] == "secli-complexity"  # stdout is the JSON alone
