"""Rendering: tables keep every cell whole, in every format."""

from __future__ import annotations

import contextlib
import csv
import io
import json

from commands.render import Table, emit


def _capture(fmt: str, table: Table, payload: object = None) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        emit(fmt, [table], payload)
    return buffer.getvalue()


WIDE = Table(
    title="wide",
    columns=["model"] + [f"column {i}" for i in range(10)],
    rows=[["resnext50_32x4d + SK r=16 M=2 G=32 L=32"] + [1_234_567_890 + i for i in range(10)]],
)


def test_a_table_wider_than_the_terminal_loses_no_cell() -> None:
    text = _capture("table", WIDE)
    assert "…" not in text
    assert "resnext50_32x4d + SK r=16 M=2 G=32 L=32" in text
    for i in range(10):
        assert f"{1_234_567_890 + i:,}" in text


def test_csv_and_markdown_carry_the_same_cells() -> None:
    rows = list(csv.reader(io.StringIO(_capture("csv", WIDE))))
    assert rows[0] == WIDE.columns
    assert rows[1] == [str(v) for v in WIDE.rows[0]]
    markdown = _capture("markdown", WIDE)
    lines = markdown.splitlines()
    assert lines[2].startswith("| model | column 0 |")
    assert lines[3].startswith("| --- | ---: |")  # names left, numbers right
    assert "1,234,567,899" in lines[4]


def test_json_output_has_no_nan() -> None:
    text = _capture("json", WIDE, {"accuracy": float("nan"), "history": [1.0, float("inf")]})
    assert json.loads(text) == {"accuracy": None, "history": [1.0, None]}


def test_one_precision_per_column_and_no_scientific_notation() -> None:
    table = Table(title="t", columns=["variant", "acc", "Δ (%)", "lr", "ok"],
                  rows=[["a", 1.0, 0.5, 1.438e-05, True], ["b", 0.8988, -12.25, 0.05, False],
                        ["c", None, None, None, None]],
                  formats={1: ".4f", 2: "+.2f"})
    lines = _capture("markdown", table).splitlines()
    assert lines[4] == "| a | 1.0000 | +0.50 | 0.0000 | yes |"
    assert lines[5] == "| b | 0.8988 | -12.25 | 0.0500 | no |"
    assert lines[6] == "| c | - | - | - | - |"
    assert "e-05" not in _capture("table", table)
    # CSV is for programs: the raw numbers, not the rounded text
    assert list(csv.reader(io.StringIO(_capture("csv", table))))[1] == ["a", "1.0", "0.5", "1.438e-05", "True"]
