"""Files in the format asked, and CSV a program can read (issue 23, item 1).

``--out FILE`` writes the format its extension names (.json, .csv, .md), or refuses a clash with
``--format``; every command's ``-f csv`` (and ``secli report -f csv``) is one tidy table per
result whose column names are ASCII, unique and snake_case; an unknown option gets a suggestion.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, run
from test_schema import CLI_INVOCATIONS

from commands.render import out_format
from secli.util.errors import SecliUsageError

ROOT = Path(__file__).resolve().parents[1]
COLUMN = re.compile(r"^[a-z][a-z0-9_]*$")
COMPLEXITY = ["complexity", "resnet18", "--block", "se,eca", "--image-size", "32"]
FAST_PROFILE = ["profile", "resnet18", "--block", "se", "--device", "cpu", "--image-size", "32", "-b", "1",
                "--iters", "1", "--warmup", "0", "--threads", "1"]


def _header(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize(("out", "fmt", "expected"), [
    ("r.json", "table", "json"), ("r.json", "csv", "json"),  # the envelope to keep, CSV to read now
    ("r.csv", "table", "csv"), ("r.csv", "json", "csv"), ("r.CSV", "csv", "csv"),
    ("r.md", "markdown", "markdown"), ("r.markdown", "table", "markdown"),
    ("r.txt", "markdown", "markdown"), ("r.txt", "table", "json"), ("results", "csv", "csv"),
])
def test_the_extension_names_the_files_format(out: str, fmt: str, expected: str) -> None:
    assert out_format(Path(out), fmt) == expected


@pytest.mark.parametrize(("out", "fmt"), [("r.csv", "markdown"), ("r.md", "csv")])
def test_two_renderings_that_disagree_are_refused(out: str, fmt: str) -> None:
    with pytest.raises(SecliUsageError, match=f"names a .* file but --format is {fmt}"):
        out_format(Path(out), fmt)


def test_complexity_out_writes_what_the_format_prints(tmp_path: Path) -> None:
    shown_csv = run(*COMPLEXITY, "-f", "csv")
    assert shown_csv.exit_code == 0, shown_csv.output
    as_csv = tmp_path / "c.csv"
    table = run(*COMPLEXITY, "--out", str(as_csv))  # the terminal gets its table, the file CSV
    assert table.exit_code == 0
    assert "┃ model" in table.stdout
    assert as_csv.read_text() == shown_csv.stdout
    as_md = tmp_path / "c.md"
    shown_md = run(*COMPLEXITY, "-f", "markdown", "--out", str(as_md))
    assert as_md.read_text() == shown_md.stdout
    assert shown_md.stdout.startswith("**resnet18: parameters**")
    as_json = tmp_path / "c.json"
    run(*COMPLEXITY, "-f", "csv", "--out", str(as_json))
    assert json.loads(as_json.read_text())["format"] == "secli-complexity"
    again = run("report", str(as_json), "-f", "csv")  # the envelope re-rendered: the command's own CSV
    assert again.exit_code == 0
    assert again.stdout == shown_csv.stdout
    clash = run(*COMPLEXITY, "--out", str(tmp_path / "d.csv"), "-f", "markdown")
    assert_one_line_error(clash, 2, "names a csv file but --format is markdown")
    assert not (tmp_path / "d.csv").exists()
    kept = run(*COMPLEXITY, "--out", str(as_csv))
    assert_one_line_error(kept, 2, "exists")


def test_profile_out_csv_is_the_csv_it_prints(tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    result = run(*FAST_PROFILE, "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["label"] for r in rows] == ["resnet18", "resnet18 + SE"]
    assert all(r["mode"] == "inference" for r in rows)
    from commands.profile import CSV_COLUMNS

    assert _header(out.read_text()) == CSV_COLUMNS


@pytest.mark.parametrize("args", CLI_INVOCATIONS)
def test_every_commands_csv_is_one_table_with_ascii_snake_case_columns(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    args[args.index("--format") + 1] = "csv"
    result = run(*args)
    assert result.exit_code == 0, result.output
    tables = [t for t in result.stdout.split("\n\n") if t.strip()]
    assert len(tables) == 1, result.stdout[:500]
    columns = _header(tables[0])
    assert len(columns) == len(set(columns)), columns
    assert all(COLUMN.match(c) for c in columns), columns
    assert len(list(csv.reader(io.StringIO(tables[0])))) > 1  # a header and rows


@pytest.mark.parametrize("extra", [[], ["--by-stage"], ["--training-step"], ["--by-module", "--depth", "1"]])
def test_report_csv_of_a_complexity_run_is_its_one_table(extra: list[str], tmp_path: Path) -> None:
    """Whatever parts a complexity result holds, report -f csv shows the one table the run's -f csv did."""
    out = tmp_path / "c.json"
    printed = run("complexity", "resnet18", "--block", "se", "--image-size", "32", *extra, "-f", "csv", "--out",
                  str(out))
    assert printed.exit_code == 0, printed.output
    shown = run("report", str(out), "-f", "csv")
    assert shown.exit_code == 0
    assert shown.stdout == printed.stdout
    assert all(COLUMN.match(c) for c in _header(shown.stdout))


def _secli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "secli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize(("args", "hint"), [
    (["complexity", "resnet18", "--csv"], "did you mean '-f csv'?"),
    (["profile", "resnet18", "--iter", "3"], "did you mean '--iters'?"),
    (["complexity", "resnet18", "--latency"], "did you mean 'secli profile'?"),
    (["export", "resnet18", "--onnx"], "did you mean '--to onnx'?"),
    (["inject", "resnet18", "--gpu"], "no such option --gpu (see"),  # inject has no --device: no wrong hint
])
def test_an_unknown_option_gets_a_suggestion_that_exists(args: list[str], hint: str) -> None:
    result = _secli(*args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: no such option"), result.stderr
    assert hint in lines[0], lines[0]
