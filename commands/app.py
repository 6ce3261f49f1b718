"""The ``secli`` application: registers every command; imports no torch at start-up."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from commands.options import APP_HELP, ARGUMENT_TYPES
from secli import __version__


class _Option(TyperOption):
    """An option whose default reads ``[default: x]`` whether Typer found it or secli wrote it
    (``show_default="the architecture's"``): Typer puts the written ones in parentheses, which
    made two styles of one thing in every command's help."""

    def _get_default_string(self, *, ctx: Any, show_default_is_str: bool, default_value: Any) -> str:
        if show_default_is_str:
            return str(self.show_default)
        return str(super()._get_default_string(ctx=ctx, show_default_is_str=show_default_is_str,
                                               default_value=default_value))


class _Argument(TyperArgument):
    """A positional argument whose type column shows the metavar of its concept
    (``ARGUMENT_TYPES``: ``<name|file>``, ``<file>``) instead of Typer's ``<str>`` or ``<list[Path]>``."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return ARGUMENT_TYPES.get(self.name or "") or super().display_type_rich(ctx)


def _help_style(params: list[Any]) -> list[Any]:
    """Every option as ``commands.options`` says help shows it: on/off options (``--help``,
    ``--version``, the completion ones, ``--force``...) as bare flags, without Typer's ``<bool>``
    type column (a flag takes no value, so none is shown); defaults in one style (``_Option``)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        if type(param) is TyperOption:
            param.__class__ = _Option  # same object, same state: only how its default is written differs
        elif type(param) is TyperArgument:
            param.__class__ = _Argument  # likewise: only its type column differs
    return params


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _help_style(super().get_params(ctx))


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _help_style(super().get_params(ctx))


app = typer.Typer(
    name="secli",
    cls=_Group,
    help=APP_HELP,
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"secli {__version__}")
        raise typer.Exit()


@app.callback(help=APP_HELP)
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """The options before the command (``--version``); the help text is ``APP_HELP``."""


def _register() -> None:
    from commands.complexity import complexity_command
    from commands.export import export_command
    from commands.inject import inject_command
    from commands.profile import profile_command
    from commands.report import report_command
    from commands.train import train_command
    from commands.visualize_excitation import visualize_excitation_command

    app.command("inject", cls=_Command)(inject_command)
    app.command("complexity", cls=_Command)(complexity_command)
    app.command("profile", cls=_Command)(profile_command)
    app.command("visualize-excitation", cls=_Command)(visualize_excitation_command)
    app.command("train", cls=_Command)(train_command)
    app.command("export", cls=_Command)(export_command)
    app.command("report", cls=_Command)(report_command)


_register()


def main() -> None:
    """Run the app (the ``secli`` script and ``python -m secli``); a mistake on the command line
    is one line on stderr and exit 2, as every other error (Click would draw a boxed panel with a
    usage line above it)."""
    import sys

    from commands.common import escape_markup, fail

    try:
        # one program name however it was started (``secli``, ``python -m secli``, torchrun -m):
        # usage lines read "secli ...", and completion scripts use the $_SECLI_COMPLETE variable
        try:
            code = app(standalone_mode=False, prog_name="secli")
        finally:
            sys.stdout.flush()  # output still buffered fails here, where it is caught, not at exit
    except BrokenPipeError:
        code = _stdout_closed()
    except typer.Abort:
        code = fail("interrupted", 130).exit_code
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare 'secli': the help text, as before
            exc.show()
            sys.exit(exc.exit_code)
        text = " ".join(exc.format_message().split())
        if type(exc).__name__ == "NoSuchOption":
            text = unknown_option_message(exc)
        command = getattr(getattr(exc, "ctx", None), "command_path", "secli")
        code = fail(escape_markup(f"{text} (see '{command} --help')"), exc.exit_code).exit_code
    sys.exit(code if isinstance(code, int) else 0)


#: Options people reach for that secli spells otherwise: what to type instead. An entry that
#: names an option is suggested only where the command has that option; an entry that names
#: another command (``secli profile``) is a pointer, shown anywhere.
ALIASES: dict[str, tuple[str, ...]] = {
    "--csv": ("-f csv",), "--json": ("-f json",), "--markdown": ("-f markdown",), "--md": ("-f markdown",),
    "--table": ("-f table",), "--output": ("--out",), "--output-dir": ("--out",), "--save": ("--out",),
    "--onnx": ("--to onnx",), "--torchscript": ("--to torchscript",), "--pt2": ("--to pt2",),
    "--size": ("--image-size",), "--input": ("--image-size",), "--resolution": ("--image-size",),
    "--img-size": ("--image-size",), "--batch": ("--batch-size",), "--bs": ("--batch-size",),
    "--gpu": ("--device cuda",), "--cuda": ("--device cuda",), "--cpu": ("--device cpu",),
    "--iterations": ("--iters",), "--repeat": ("--iters",), "--warmup-iters": ("--warmup",),
    "--epoch": ("--epochs",), "--reduction": ("--ratio",), "--kind": ("--block",), "--attention": ("--block",),
    "--latency": ("secli profile",), "--timing": ("secli profile",), "--time": ("secli profile",),
    "--flops": ("--with-complexity", "secli complexity"), "--params": ("--with-complexity", "secli complexity"),
    "--macs": ("--with-complexity", "secli complexity"), "--complexity": ("--with-complexity",),
    "--list-models": ("secli inject --list",), "--list": ("secli inject --list",), "--overwrite": ("--force",),
}


def unknown_option_message(exc: Any) -> str:
    """``no such option --csv; did you mean -f csv?``: Click's own guess is by spelling alone
    (``--latency`` -> ``--gate``), so secli first looks the name up among the spellings other
    tools use, then among this command's options by spelling (close matches only)."""
    import difflib

    name = str(getattr(exc, "option_name", "") or "")
    command = getattr(getattr(exc, "ctx", None), "command", None)
    own = sorted({opt for param in getattr(command, "params", []) for opt in getattr(param, "opts", [])
                  if opt.startswith("--")})
    stem = name.split("=")[0]
    ideas = []
    for idea in ALIASES.get(stem, ()):
        option = idea.split()[0]
        if idea.startswith("secli "):
            running = getattr(getattr(exc, "ctx", None), "command_path", "")
            if running != idea.split(" --")[0]:  # a pointer to another command, not to the one running
                ideas.append(idea)
        elif option in own or (option == "-f" and "--format" in own):
            ideas.append(idea)
    if not ideas:
        ideas = [o for o in own if o.startswith(stem) and len(stem) > 3][:3]
    if not ideas:
        ideas = difflib.get_close_matches(stem, own, n=2, cutoff=0.75)
    hint = f"; did you mean {' or '.join(repr(i) for i in ideas[:2])}?" if ideas else ""
    return f"no such option {name}{hint}"


def _stdout_closed() -> int:
    """stdout's reader went away (``secli report FILE | head -1``): end quietly, exit 1.

    Python's recipe (https://docs.python.org/3/library/signal.html#note-on-sigpipe): point stdout
    at /dev/null so that the interpreter's last flush does not fail again and print a traceback.
    Exit 1, not 0: the output was cut short, and ``set -o pipefail`` should see it; it is the code
    Click and Rich use for the same case, so every path through secli ends alike.
    """
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 1


if __name__ == "__main__":
    main()
