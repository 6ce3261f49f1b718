"""Help reads the same in every command (issue 23, item 5): the conventions ``commands.options``
writes down, checked over every command's declared options rather than on a few examples.

The expected values here are the conventions themselves (lowercase ``<word>`` metavars, one panel
order, an example per command, every registered kind named), not anything read from the help.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pytest
import typer.main
from typer.core import TyperOption

from commands.app import app
from tests.cli_helpers import run

#: The panels in the order help shows them (the order the issue asked for, written out here).
PANEL_ORDER = ["Options", "Model", "Block", "Sweep (one model per value)", "Input", "Training", "Timing",
               "Analysis", "Run", "Output"]
METAVAR = re.compile(r"^<[a-z0-9|,.=_-]+>$")
DEFAULT_IN_PROSE = re.compile(r"\(default|default:|defaults? (?:is|to)\b|by default", re.IGNORECASE)


def _commands() -> dict[str, Any]:
    return dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def _options(command: Any) -> list[TyperOption]:
    return [p for p in command.params if isinstance(p, TyperOption) and not p.hidden]


COMMANDS = sorted(_commands())


def test_every_command_is_checked() -> None:
    assert set(COMMANDS) == {"inject", "complexity", "profile", "visualize-excitation", "train", "export", "report"}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_shows_an_example_of_itself(name: str) -> None:
    result = run(name, "--help")
    assert result.exit_code == 0, result.output
    assert f"Example: secli {name} " in result.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_metavars_are_lowercase_words_in_angle_brackets(name: str) -> None:
    for option in _options(_commands()[name]):
        if option.is_flag or option.metavar is None:  # flags show none; None is Typer's own <int>, <float>...
            continue
        assert METAVAR.match(option.metavar), f"{name} {option.opts[0]}: {option.metavar!r}"


def test_one_option_has_one_metavar_and_one_panel_in_every_command() -> None:
    metavars: dict[str, set[tuple[str, str | None]]] = defaultdict(set)
    panels: dict[str, set[str | None]] = defaultdict(set)
    for name, command in _commands().items():
        for option in _options(command):
            # the sweep form of a block option is its one-model metavar plus ",..."
            metavar = option.metavar.replace(",...", "") if option.metavar else None
            metavars[option.opts[0]].add((name, metavar))
            panels[option.opts[0]].add(option.rich_help_panel)
    for option_name, seen in metavars.items():
        distinct = {metavar for _, metavar in seen}
        if option_name == "--out":  # visualize-excitation writes a folder of figures, the others one file
            assert distinct == {"<file>", "<dir>"}
            assert ("visualize-excitation", "<dir>") in seen
            continue
        assert len(distinct) == 1, f"{option_name}: {sorted(seen, key=str)}"
    mixed = {option_name: found for option_name, found in panels.items() if len(found) > 1}
    assert not mixed


@pytest.mark.parametrize("name", COMMANDS)
def test_panels_come_in_one_order(name: str) -> None:
    result = run(name, "--help")
    shown = re.findall(r"╭─ (.+?) ─", result.stdout)
    shown = [panel for panel in shown if panel != "Arguments"]
    assert shown, result.stdout
    unknown = [panel for panel in shown if panel not in PANEL_ORDER]
    assert not unknown
    assert shown == sorted(shown, key=PANEL_ORDER.index)


@pytest.mark.parametrize("name", COMMANDS)
def test_defaults_are_written_one_way(name: str) -> None:
    result = run(name, "--help")
    text = " ".join(result.stdout.split())
    assert "(default" not in text.lower()  # Typer's parenthesised style for written defaults
    for option in _options(_commands()[name]):  # "default" alone may be a value (--init default)
        assert not DEFAULT_IN_PROSE.search(option.help or ""), f"{name} {option.opts[0]}: a default in the sentence"


def test_a_written_default_reads_like_a_found_one() -> None:
    result = run("complexity", "--help")
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "[default: 1000, or the weights' own]" in text  # written (show_default="...")
    assert "[default: 16]" in text  # found by Typer


def test_every_registered_kind_is_named_in_the_top_level_help() -> None:
    from commands.options import KINDS
    from secli.blocks.registry import kind_names

    result = run("--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.replace("│", " ").split())
    assert set(KINDS) == set(kind_names())
    for kind in kind_names():
        assert re.search(rf"(?<![\w-]){re.escape(kind)}(?![\w-])", text), kind
    assert "ECA" in text


# Did-you-mean for unknown options: tests/test_formats.py (through the secli program, where the hint is made).


@pytest.mark.parametrize("name", COMMANDS)
def test_positional_arguments_show_a_concept_not_a_python_type(name: str) -> None:
    result = run(name, "--help")
    block = result.stdout.split("╭─ Arguments", 1)[1].split("╰", 1)[0]
    assert "<str>" not in block, block
    assert "list[" not in block, block
    assert re.search(r"<(name\|file|file)>", block), block
