"""Showing results: Rich tables on a terminal, or JSON / CSV / Markdown for scripts and papers.

Commands hand over plain data: ``Table`` objects for people and a JSON-ready payload for
programs. JSON goes to stdout alone (no colour, no progress), so ``| jq`` always works.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

from commands.common import stdout
from secli.util.errors import printable


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    right_align: set[int] | None = None  # column indexes; default: every column but the first
    #: column index -> a format spec for its numbers (``",.4f"``, ``"+.2f"``): one precision per
    #: column, so a column never mixes ``1`` and ``0.8988``. Tables and Markdown use it; CSV
    #: keeps the raw numbers (it is for programs).
    formats: dict[int, str] = field(default_factory=dict)

    def cell(self, index: int, value: Any) -> str:
        return _cell(value, self.formats.get(index))


def _cell(value: Any, fmt: str | None = None) -> str:
    """One cell as text: ``-`` for missing, yes/no for booleans, numbers in the column's format.

    Without a format, floats are fixed-point (4 decimals below 10,000, none above), never in
    scientific notation such as ``1.438e-05``: a reader compares digits down a column.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and fmt is not None:
        if isinstance(value, float) and not math.isfinite(value):
            return "n/a"
        return format(value, fmt)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:,.4f}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return printable(str(value))  # a name from a file: shown, never acted on by the terminal


def to_markdown(table: Table) -> str:
    lines = [f"**{table.title}**", ""] if table.title else []
    lines.append("| " + " | ".join(table.columns) + " |")
    aligns = ["---:" if _is_right(table, i) else "---" for i in range(len(table.columns))]
    lines.append("| " + " | ".join(aligns) + " |")
    for row in table.rows:
        lines.append("| " + " | ".join(table.cell(i, v).replace("|", "\\|") for i, v in enumerate(row)) + " |")
    lines += [""] + [f"_{note}_" for note in table.notes] if table.notes else []
    return "\n".join(lines)


def to_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow(["" if v is None else printable(v) if isinstance(v, str) else v for v in row])
    return buffer.getvalue()


def _is_right(table: Table, index: int) -> bool:
    return index in table.right_align if table.right_align is not None else index > 0


def print_rich(table: Table) -> None:
    from rich.table import Table as RichTable
    from rich.text import Text

    # Titles and cells hold paths, titles from YAML files and class names: Text objects are
    # shown as written, never read as Rich markup ("[/x]" would crash, "[bold]" would vanish).
    rich_table = RichTable(title=Text(table.title) if table.title else None, title_justify="left", header_style="bold")
    for i, column in enumerate(table.columns):
        rich_table.add_column(Text(column), justify="right" if _is_right(table, i) else "left", no_wrap=True)
    for row in table.rows:
        rich_table.add_row(*[Text(table.cell(i, v)) for i, v in enumerate(row)])
    # Never squeeze cells into ellipses or zero-width columns: a table wider than the terminal
    # (or than 80 columns when piped) is printed at its natural width instead.
    from rich.measure import Measurement

    natural = Measurement.get(stdout, stdout.options.update_width(10_000), rich_table).maximum
    width = stdout.width
    stdout.width = max(width, natural)
    try:
        stdout.print(rich_table)
    finally:
        stdout.width = width
    for note in table.notes:
        stdout.print(f"  {note}", style="dim", highlight=False, markup=False)


def as_text(fmt: str, tables: list[Table], payload: Any) -> str:
    """``tables`` as CSV or Markdown, or ``payload`` as JSON: what ``emit`` prints and what an
    ``--out`` file of that format holds, ending in one newline."""
    _escape(tables)
    if fmt == "json":
        from secli.util.envelope import dumps

        return dumps(payload) + "\n"
    if fmt == "csv":
        return "\n".join(to_csv(t) for t in tables)
    if fmt == "markdown":
        return "\n\n".join(to_markdown(t) for t in tables) + "\n"
    raise ValueError(f"no text form for format {fmt!r}")


def emit(fmt: str, tables: list[Table], payload: Any) -> None:
    """Print ``tables`` (table/csv/markdown) or ``payload`` (json) to stdout."""
    fmt = getattr(fmt, "value", fmt)
    if fmt in ("json", "csv", "markdown"):
        print(as_text(fmt, tables, payload), end="")
    else:
        _escape(tables)
        for i, table in enumerate(tables):
            if i:
                stdout.print()
            print_rich(table)


def _escape(tables: list[Table]) -> None:
    """Titles, headers and notes quote names from files: their control characters escaped."""
    for table in tables:
        table.title = printable(table.title) if table.title else table.title
        table.columns = [printable(str(c)) for c in table.columns]
        table.notes = [printable(str(n)) for n in table.notes]


def skipped_note(skipped: int, too_large: int) -> str:
    """``skipped 5 images (3 unreadable, 2 too large)``, or ``skipped 5 unreadable images``."""
    if not too_large:
        return f"skipped {skipped} unreadable images"
    return f"skipped {skipped} images ({skipped - too_large} unreadable, {too_large} too large)"


#: What an ``--out`` file holds, by its extension (``secli.util.outputs`` writes it).
FILE_FORMATS = {".json": "json", ".csv": "csv", ".md": "markdown", ".markdown": "markdown"}


def out_format(out: Any, fmt: str) -> str | None:
    """The format of the results file ``--out FILE`` (None without one): the one its extension
    names (.json, .csv, .md); for any other name, ``--format``'s when that is a file format,
    else the JSON envelope (which ``secli report`` reads back).

    ``--format`` says what stdout shows and the extension what the file holds, so
    ``-f csv --out run.json`` (a CSV to read now, the envelope to keep) is two choices, not a
    clash. Two renderings that disagree are one: ``--out t.csv -f markdown`` is refused (exit 2),
    since one of the two is a typo and guessing which would write the other silently.
    """
    from pathlib import Path

    from secli.util.errors import SecliUsageError

    fmt = getattr(fmt, "value", fmt)
    if out is None:
        return None
    named = FILE_FORMATS.get(Path(out).suffix.lower())
    if named is None:
        return fmt if fmt in ("json", "csv", "markdown") else "json"
    renderings = ("csv", "markdown")
    if fmt in renderings and named in renderings and fmt != named:
        raise SecliUsageError(f"--out {out} names a {named} file but --format is {fmt}; "
                              f"use --format {named}, or name the file {Path(out).stem}{_SUFFIX[fmt]}")
    return named


_SUFFIX = {"csv": ".csv", "markdown": ".md", "json": ".json"}


def write_results(out: Any, file_fmt: str, tables: list[Table], payload: Any, force: bool) -> None:
    """Write a CSV or Markdown results file (the library writes the JSON envelope itself);
    atomically, and an existing file only with ``force``."""
    from secli.util.outputs import atomic_write_text

    atomic_write_text(out, as_text(file_fmt, tables, payload), force=force)
