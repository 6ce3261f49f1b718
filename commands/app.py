"""The ``secli`` application: registers every command; imports no torch at start-up."""

from __future__ import annotations

from typing import Annotated

import typer

from secli import __version__

app = typer.Typer(
    name="secli",
    help="Analyse channel-attention blocks (Squeeze-and-Excitation, Selective Kernel) in CNNs.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
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
    from commands.export import export_command
    from commands.inject import inject_command
    from commands.profile import profile_command
    from commands.report import report_command
    from commands.train import train_command
    from commands.visualize_excitation import visualize_excitation_command

    app.command("inject")(inject_command)
    app.command("complexity")(complexity_command)
    app.command("profile")(profile_command)
    app.command("visualize-excitation")(visualize_excitation_command)
    app.command("train")(train_command)
    app.command("export")(export_command)
    app.command("report")(report_command)


_register()


def main() -> None:
    """Run the app (the ``secli`` script and ``python -m secli``); a mistake on the command line is one line on stderr and exit 2, as every
    other error (Click would draw a boxed panel with a usage line above it)."""
    import sys

    from commands.common import escape_markup, fail

    try:
        # one program name however it was started (``secli``, ``python -m secli``, torchrun -m):
        # usage lines read "secli ...", and completion scripts use the $_SECLI_COMPLETE variable
        code = app(standalone_mode=False, prog_name="secli")
    except typer.Abort:
        code = fail("interrupted", 130).exit_code
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare 'secli': the help text, as before
            exc.show()
            sys.exit(exc.exit_code)
        text = " ".join(exc.format_message().split())
        command = getattr(getattr(exc, "ctx", None), "command_path", "secli")
        code = fail(escape_markup(f"{text} (see '{command} --help')"), exc.exit_code).exit_code
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
