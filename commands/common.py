"""What every command shares: error handling, debug mode, and option parsing helpers.

Nothing here imports torch: ``secli --help`` must stay fast.
"""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def debug_enabled() -> bool:
    """``SECLI_DEBUG`` on (1, true, yes, on): tracebacks instead of one-line errors. A value that
    is neither on nor off is refused by ``check_environment`` at the start of every command;
    here, where an error is already being reported, it reads as off."""
    from secli.util.env_flags import BadEnvironment, switch_on

    try:
        return switch_on("SECLI_DEBUG")
    except BadEnvironment:
        return False


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line on stderr and give the Exit to raise. ``message`` is Rich markup
    (callers escape text from files and users); control characters are shown escaped and a
    very long message is cut in the middle, so it is always one readable line."""
    from secli.util.errors import one_line

    stderr.print(f"[bold red]error:[/] {one_line(message)}", highlight=False, markup=True)
    return typer.Exit(code)


def report_error(message: str) -> None:
    """An error line for one part of a run that goes on (e.g. one model of several failed)."""
    from secli.util.errors import one_line

    stderr.print(f"[bold red]error:[/] {escape_markup(one_line(message))}", highlight=False)


def warn(message: str) -> None:
    from secli.util.errors import one_line

    stderr.print(f"[yellow]warning:[/] {escape_markup(one_line(message))}", highlight=False)


def handle_errors(func: F) -> F:
    """Turn library errors into one line on stderr and an exit code; no tracebacks.

    SecliError carries its own exit code (2 for usage mistakes, 1 for runtime failures).
    Anything unexpected is still one line, with a pointer to SECLI_DEBUG=1 for the traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import warnings

        from secli.util.env_flags import check_environment
        from secli.util.errors import SecliError, describe_exception
        from secli.util.signals import Terminated, received_signal, termination_raises

        try:
            try:
                # SIGINT, SIGTERM and SIGHUP unwind as exceptions (temporary files are removed);
                # warnings become one line
                with termination_raises(), warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("default")
                    try:
                        check_environment()  # SECLI_DEBUG=junk: one line, exit 2, before anything runs
                        return func(*args, **kwargs)
                    finally:
                        summarise_warnings(caught)
            except (typer.Exit, Terminated, KeyboardInterrupt):
                raise
            except BaseException as exc:
                # a signal's exception raised inside a library's callback (torch.save's writer)
                # comes out as that library's own error: the run still ends as the signal
                signum = received_signal()
                if signum is not None:
                    raise (KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)) from exc
                raise
        except typer.Exit:
            raise
        except BrokenPipeError:
            raise  # stdout's reader went away (| head): not an error line; commands.app.main ends quietly
        except Terminated as exc:
            hung_up = exc.signum == getattr(signal, "SIGHUP", None)
            raise fail("hung up" if hung_up else "terminated", exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except SecliError as exc:
            if debug_enabled():
                raise
            raise fail(escape_markup(str(exc)), exc.exit_code) from None
        except MemoryError:
            raise fail("out of memory; try a smaller batch or input size", 1) from None
        except Exception as exc:  # the last line of defence against tracebacks
            if debug_enabled():
                raise
            raise fail(
                escape_markup(f"{describe_exception(exc, 200)} (run with SECLI_DEBUG=1 for the traceback)"), 1
            ) from None

    return wrapper  # type: ignore[return-value]


def summarise_warnings(caught: list[Any]) -> None:
    """Warnings from torch, matplotlib and the like as one line on stderr, not pages of them."""
    if not caught:
        return
    from secli.util.errors import shorten

    first = caught[0]
    text = shorten(str(first.message).splitlines()[0] if str(first.message).strip() else first.category.__name__)
    more = f" (and {len(caught) - 1} more)" if len(caught) > 1 else ""
    warn(f"{first.category.__name__}: {text}{more}")


def escape_markup(text: str) -> str:
    """Text shown through Rich exactly as written (file names may contain [brackets])."""
    from rich.markup import escape

    return escape(text)


def is_tty() -> bool:
    return sys.stderr.isatty()
