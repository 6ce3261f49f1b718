"""One error type for user mistakes, so the CLI can print one line and choose the exit code."""

from __future__ import annotations

import re

#: Characters a terminal acts on instead of showing: C0 and C1 controls (ESC starts the escape
#: sequences that recolour, move the cursor or retitle a terminal; newlines split an error line),
#: DEL, the Unicode line and paragraph separators, bidirectional overrides and isolates (which
#: reorder what is shown), the byte-order mark, and lone surrogates (undecodable bytes of a file
#: name, which cannot be printed at all).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff"
                          "\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: The longest error line printed; a longer message keeps its start and its end (where a
#: message names the file that holds a rescued result).
MAX_LINE = 1000


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on shown as an escape (``\\x1b``,
    ``\\n``): names and strings from files and command lines print as one inert line."""
    return _UNPRINTABLE.sub(_escape, text)


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """``printable(text)`` cut to ``limit`` characters in the middle (`` ... ``)."""
    text = printable(text)
    if len(text) <= limit:
        return text
    keep = (limit - 5) // 2
    return f"{text[:keep]} ... {text[-keep:]}"


class SecliError(Exception):
    """A problem the user can fix (bad name, bad file, impossible option).

    ``exit_code`` follows the shell convention the CLI uses: 2 for usage mistakes, 1 for
    runtime failures (a file that cannot be read, a model that does not run).
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class SecliUsageError(SecliError):
    """The request itself is wrong (unknown name, impossible ratio, unsupported position)."""

    exit_code = 2


def shorten(value: object, limit: int = 100) -> str:
    """``repr`` of a value (a string as it is) cut to ``limit`` characters, safe for any size:
    nested and shared containers are abbreviated before anything is formatted."""
    import reprlib

    if isinstance(value, str):
        text = value
    else:
        short = reprlib.Repr()
        short.maxlevel, short.maxlist, short.maxtuple, short.maxdict, short.maxset = 3, 6, 6, 6, 6
        short.maxstring, short.maxother, short.maxlong = limit, limit, limit
        text = short.repr(value)
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none).

    Library errors from torch, pickle or YAML can run to pages; a one-line CLI error needs one.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe_exception(exc: BaseException, limit: int = 160) -> str:
    """``Type: first line`` (cut to ``limit`` characters), or just ``Type`` without a message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:limit]}" if text else type(exc).__name__


def closest_names(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """Names close to ``name``, best first, for "did you mean ..." hints."""
    import difflib

    return difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)


def did_you_mean(name: str, candidates: list[str]) -> str | None:
    close = closest_names(name, candidates)
    return f"did you mean {' or '.join(close)}?" if close else None
