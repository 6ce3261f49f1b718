"""``secli report``: saved results (``--out FILE``) shown again as tables, Markdown, CSV or JSON.

Each command renders its own envelope with ``tables(document)`` in its module
(``commands.profile.tables``, ...); report only reads the files and looks that function up, so
a saved run reads exactly as the run printed it, and a command gains ``report`` support by
defining ``tables``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from commands import options as opt
from commands.common import handle_errors
from commands.render import Table, emit
from secli.util.errors import SecliUsageError


def renderer(command: str, name: str = "tables") -> Callable[[dict[str, Any]], list[Table]] | None:
    """``commands.<command>.<name>``, or None. Only the commands secli knows are looked up: the
    name comes from a file, and must never pick an arbitrary module to import."""
    from secli.util.envelope import COMMANDS

    if command not in COMMANDS:
        return None
    try:
        module = importlib.import_module(f"commands.{command.replace('-', '_')}")
    except ImportError:
        return None
    function = getattr(module, name, None)
    return function if callable(function) else None


def render_document(path: Path, document: dict[str, Any], fmt: str) -> list[Table]:
    """The tables of one results file; a file whose contents do not fit its format is the file's
    fault (exit 2, one line), not a crash."""
    from secli.util.envelope import format_name
    from secli.util.errors import SecliUsageError, shorten

    command = document["command"]
    if not isinstance(command, str) or document["format"] != format_name(command):
        raise SecliUsageError(f"{path}: 'format' {shorten(repr(document['format']), 60)} does not match "
                              f"'command' {shorten(repr(command), 60)}")
    tables = renderer(command, "csv_tables") if fmt == "csv" else None
    tables = tables or renderer(command)
    if tables is None:
        raise SecliUsageError(f"{path}: cannot render secli-{command[:60]} results (this secli has no tables for them)")
    try:
        return tables(document)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as exc:
        # the schema types the fields it knows; a renderer reading one it does not says which, in words
        raise SecliUsageError(f"{path}: not a valid secli-{command} results file ({_why(exc)})") from None


def _why(exc: BaseException) -> str:
    """What a renderer tripped on, in words (never a Python exception's name)."""
    from secli.util.errors import shorten

    if isinstance(exc, KeyError):
        return f"it lacks the field {shorten(repr(exc.args[0]) if exc.args else '?', 60)}"
    if isinstance(exc, IndexError):
        return "a list in it is shorter than its other fields say"
    if isinstance(exc, ArithmeticError):
        return "a number in it is out of range"
    return f"a field holds the wrong kind of value: {shorten(str(exc), 80)}"


Files = Annotated[list[Path], typer.Argument(
    show_default=False, help="Results files written with --out (JSON envelopes of any secli command).",
)]
ReportFormat = opt.output_format(
    "table, markdown: one set of tables per file, titled with its name; csv: one tidy table per result, ASCII "
    "column names, several files of one command in one table with a file column first; json: the documents as "
    "read, a list for several files")
Join = Annotated[bool, typer.Option(
    "--join", rich_help_panel=opt.OUTPUT_PANEL,
    help="Join complexity and profile results into one table, one row per model (matched by architecture and block "
         "options): parameters, FLOPs and time.",
)]


@handle_errors
def report_command(files: Files, join: Join = False, fmt: ReportFormat = opt.OutputFormat.table) -> None:
    """Show saved results again, as tables, Markdown, CSV or JSON, or several runs joined in one table.

    Example: secli report run.json -f markdown

    Example: secli report complexity.json profile.json --join -f csv
    """
    from secli.util.envelope import read_envelope

    documents = [read_envelope(path) for path in files]  # every file is checked before anything is printed
    if join:
        from commands.report_join import join_csv, join_tables

        if fmt.value == "json":
            raise SecliUsageError("--join makes a table; use -f table, markdown or csv (json: the files as read, "
                                  "without --join)")
        emit(fmt.value, join_csv(documents) if fmt.value == "csv" else join_tables(documents), None)
        return
    if fmt.value == "json":
        emit("json", [], documents[0] if len(documents) == 1 else documents)
        return
    shown: list[Table] = []
    for path, document in zip(files, documents, strict=True):
        tables = render_document(path, document, fmt.value)
        if len(files) > 1:
            for table in tables:
                if fmt.value == "csv":
                    table.columns = ["file", *table.columns]
                    table.rows = [[str(path), *row] for row in table.rows]
                else:
                    table.title = f"{path}: {table.title}" if table.title else str(path)
        shown += tables
    if fmt.value == "csv" and len(files) > 1:
        shown = _merge_csv(shown)
    emit(fmt.value, shown, None)


def _merge_csv(tables: list[Table]) -> list[Table]:
    """Tables with the same columns (files of one command) as one CSV table, one header."""
    merged: list[Table] = []
    for table in tables:
        if merged and merged[-1].columns == table.columns:
            merged[-1].rows += table.rows
        else:
            merged.append(Table(title=table.title, columns=list(table.columns), rows=list(table.rows)))
    return merged
