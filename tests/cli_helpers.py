"""What CLI tests share: running a command in-process, and the one-line error promise."""

from __future__ import annotations

from typer.testing import CliRunner

from commands.app import app

runner = CliRunner()


def run(*args: str):
    """``secli ARGS`` in this process; the result has ``exit_code``, ``stdout`` and ``stderr``."""
    return runner.invoke(app, list(args))


def assert_one_line_error(result, code: int, text: str) -> None:
    """Exit ``code``, exactly one non-blank line on stderr, starting 'error:' and holding ``text``."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), result.stderr
    assert text in lines[0], lines[0]
