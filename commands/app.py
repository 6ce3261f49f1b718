"""The ``secli`` application: registers every command; imports no torch at start-up."""

from __future__ import annotations

from typing import Annotated

import typer

from secli import __version__

app = typer.Typer(
    name="secli",
    help="Analyse channel-attention blocks (Squeeze-and-Excitation, Selective Kernel) in CNNs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"secli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
) -> None:
    """Analyse channel-attention blocks (Squeeze-and-Excitation, Selective Kernel) in CNNs.

    Set SECLI_DEBUG=1 to see tracebacks instead of one-line errors.
    """


def _register() -> None:
    from commands.complexity import complexity_command
    from commands.inject import inject_command
    from commands.profile import profile_command
    from commands.train import train_command
    from commands.visualize_excitation import visualize_excitation_command

    app.command("inject")(inject_command)
    app.command("complexity")(complexity_command)
    app.command("profile")(profile_command)
    app.command("visualize-excitation")(visualize_excitation_command)
    app.command("train")(train_command)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
