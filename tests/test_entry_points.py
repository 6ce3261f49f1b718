"""``python -m secli`` is the ``secli`` program, and shell completion is on.

Run in subprocesses: ``-m`` goes through runpy and secli/__main__.py, which CliRunner would skip,
and a bad option value is turned into one line by ``commands.app.main``, not by Typer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _secli(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120", **extra_env}
    return subprocess.run([sys.executable, "-m", "secli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_python_m_secli_version_and_help() -> None:
    from secli import __version__

    version = _secli("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"secli {__version__}", version.stderr
    helped = _secli("--help")
    assert helped.returncode == 0, helped.stderr
    assert "Usage: secli" in helped.stdout  # one program name, however it was started
    for command in ("inject", "complexity", "profile", "visualize-excitation", "train", "export"):
        assert command in helped.stdout
    assert "--install-completion" in helped.stdout
    assert "--show-completion" in helped.stdout


def test_python_m_secli_gives_one_line_errors() -> None:
    bad = _secli("export", "resnet18", "--to", "tflite", "--out", "never.pt2")
    assert bad.returncode == 2
    assert not bad.stdout
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, bad.stderr
    assert lines[0].startswith("error:"), bad.stderr
    assert "'tflite' is not one of" in lines[0], bad.stderr
    assert not (ROOT / "never.pt2").exists()


def test_bash_completion_script_is_for_the_secli_program() -> None:
    # Typer detects the shell from the parent processes, which under CI is no shell at all; its
    # switch for tests makes --show-completion take the shell's name instead.
    shown = _secli("--show-completion", "bash", _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert shown.returncode == 0, shown.stderr
    assert "_SECLI_COMPLETE=complete_bash" in shown.stdout
    assert "complete -o default -F _secli_completion secli" in shown.stdout


def test_completion_completes_command_names() -> None:
    """What bash asks when the user presses tab after ``secli ex``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "_SECLI_COMPLETE": "complete_bash", "COMP_WORDS": "secli ex",
           "COMP_CWORD": "1"}
    done = subprocess.run([sys.executable, "-m", "secli"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["export"]


@pytest.mark.parametrize("command", [[], ["inject"], ["complexity"], ["profile"], ["visualize-excitation"], ["train"],
                                     ["export"], ["report"]])
def test_help_shows_flags_as_flags(command: list[str]) -> None:
    """``--help``, ``--version`` and every on/off option take no value, so help shows no type."""
    from tests.cli_helpers import run

    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "--help" in result.stdout, result.stdout
    assert "<bool>" not in result.stdout, result.stdout


def _stdout_closed_early(args: list[str], buffered: bool) -> subprocess.CompletedProcess[bytes]:
    """``secli ARGS | head -0``: the reader closes the pipe before secli writes its first byte."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    env.pop("PYTHONUNBUFFERED", None)
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "secli", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()
    stderr = proc.stderr.read()
    return subprocess.CompletedProcess(args, proc.wait(timeout=120), b"", stderr)


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_a_closed_stdout_ends_quietly_with_exit_1(tmp_path: Path, fmt: str, buffered: bool) -> None:
    """No 'BrokenPipeError' line and no 'Exception ignored' at exit, whether the write fails in the
    command (unbuffered, or Rich's table) or at the final flush (buffered json and csv)."""
    from test_report import DOCUMENT, _save

    saved = _save(tmp_path / "run.json", DOCUMENT)
    ended = _stdout_closed_early(["report", str(saved), "--format", fmt], buffered)
    assert ended.stderr == b"", ended.stderr.decode()
    assert ended.returncode == 1, ended.stderr.decode()


def test_a_closed_stdout_after_help_ends_quietly() -> None:
    ended = _stdout_closed_early(["--help"], buffered=True)
    assert ended.stderr == b"", ended.stderr.decode()
    assert ended.returncode == 1, ended.stderr.decode()
