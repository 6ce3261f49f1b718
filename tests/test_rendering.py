"""No string from a user or a file is read as Rich markup; warnings are summarised in one line."""

from __future__ import annotations

import warnings

import numpy as np
from typer.testing import CliRunner

from commands.app import app
from commands.common import handle_errors
from commands.render import Table, print_rich

runner = CliRunner()
MARKUP = "[/x][bold]odd[/bold]"


def test_tables_show_titles_cells_and_notes_as_written(capsys):
    print_rich(Table(title=f"title {MARKUP}", columns=["site", MARKUP], rows=[[MARKUP, 1]], notes=[f"saved {MARKUP}"]))
    out = capsys.readouterr().out
    assert out.count(MARKUP) == 4


def test_a_path_with_markup_reaches_the_output_and_the_error_line(tmp_path):
    from secli.excitation.result import ExcitationResult, SiteInfo

    g = np.random.default_rng(0).random((2, 1, 4))
    arrays = {"x1": {"SE_1": {"count": np.ones(2), "sum": g, "sumsq": g * g, "hist": np.ones((2, 1, 5)),
                              "above": np.zeros((2, 1))}}}
    stats = tmp_path / f"s{MARKUP}"
    ExcitationResult([SiteInfo("SE_1", "se", 4, 1, 0.0, 1.0, 5)], ["[red]a", "b[/]"], [1.0], arrays).save(stats)
    out = tmp_path / f"o{MARKUP}"
    r = runner.invoke(app, ["visualize-excitation", "--from-stats", str(stats), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert str(out) in " ".join(r.output.split()).replace(" ", "") or MARKUP in r.output
    r = runner.invoke(app, ["visualize-excitation", "--from-stats", str(stats), "--out", str(out)])
    assert r.exit_code == 2
    assert MARKUP in r.output
    assert "Traceback" not in r.output


def test_warnings_during_a_command_are_one_line(capsys):
    @handle_errors
    def noisy() -> int:
        for i in range(5):
            warnings.warn(f"torch says something long\nover lines {i}", UserWarning, stacklevel=1)
        return 7

    assert noisy() == 7
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["warning: UserWarning: torch says something long (and 4 more)"]


def test_a_command_line_mistake_is_one_line_with_exit_2():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    for args in (["inject", "resnet18", "--ratio", "[/x]"], ["inject", "--bogus"], ["nosuch"]):
        r = subprocess.run([sys.executable, "-m", "commands.app", *args], cwd=root, env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert lines[0].startswith("error: "), r.stderr
        assert "--help" in lines[0], r.stderr
        assert "--ratio" not in args or "Invalid value for '--ratio'" in lines[0]
