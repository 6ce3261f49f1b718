"""`secli visualize-excitation`: not implemented yet (see its issue)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from commands.common import fail


def visualize_excitation_command(
    model: Annotated[Optional[str], typer.Argument(help="Architecture name or saved model.", show_default=False)] = None,
) -> None:
    """Not implemented yet."""
    raise fail("secli visualize-excitation is not implemented yet", 1)
