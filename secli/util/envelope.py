"""One shape for every result secli prints as JSON or keeps in a results file.

Scripts that read several commands' output (or ``secli report``) should not have to learn five
shapes: each result is an object that names its format and version, the command, what the
command was asked (``inputs``) and what it found (``results``). The schema that documents the
shape lives in ``secli/schemas/``; tests validate every command's output against it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from secli import __version__
from secli.util.errors import SecliUsageError, shorten

#: Raised when a field's meaning changes or a field goes away; adding a field keeps the version.
ENVELOPE_VERSION = 1
#: The commands whose results come in an envelope.
COMMANDS: tuple[str, ...] = ("inject", "complexity", "profile", "visualize-excitation", "train", "export")
#: Results files larger than this are not read back (``secli report``): results are small.
MAX_RESULTS_FILE_BYTES = 64 * 1024 * 1024


def format_name(command: str) -> str:
    """``secli-complexity`` for ``complexity``: the value of the envelope's ``format`` key."""
    return f"secli-{command}"


def envelope(command: str, inputs: dict[str, Any], results: Any) -> dict[str, Any]:
    """The object a command prints with ``--format json`` and writes with ``--out``."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}")
    return {
        "format": format_name(command),
        "version": ENVELOPE_VERSION,
        "command": command,
        "secli_version": __version__,
        "inputs": plain(inputs),
        "results": plain(results),
    }


def plain(value: Any) -> Any:
    """``value`` as JSON types only: NaN and infinities become null (JSON cannot spell them),
    tuples and sets lists, numpy and torch scalars Python numbers, objects their ``to_dict()``,
    paths strings. Integers stay integers and booleans booleans."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in (sorted(value) if isinstance(value, (set, frozenset)) else value)]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return plain(value.to_dict())
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # numpy / torch scalar
        return plain(value.item())
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    return str(value)


def dumps(document: Any) -> str:
    """The JSON text of an envelope, or of a list of them (indented, strict: no NaN)."""
    return json.dumps(plain(document), indent=2, allow_nan=False)


def read_envelope(path: str | Path) -> dict[str, Any]:
    """A results file read back (untrusted input): a regular file of at most
    ``MAX_RESULTS_FILE_BYTES``, strict JSON (``secli.util.user_files``), an envelope of a version
    this secli reads, every field it has a type for checked against the schema
    (``secli.util.schema``). Anything else is one line, exit 2."""
    from secli.util.schema import check_result
    from secli.util.user_files import read_json

    path = Path(path)
    document = read_json(path, "results file", MAX_RESULTS_FILE_BYTES)
    if not isinstance(document, dict) or not isinstance(document.get("format"), str) \
            or not document["format"].startswith("secli-"):
        raise SecliUsageError(f"{path} is not a secli results file (no 'format': 'secli-...' key)")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > ENVELOPE_VERSION:
        raise SecliUsageError(f"{path} has results version {shorten(repr(version), 40)}; this secli reads up "
                              f"to {ENVELOPE_VERSION}")
    for key in ("command", "inputs", "results"):
        if key not in document:
            raise SecliUsageError(f"{path} lacks the {key!r} key of a secli results file")
    command = document["command"]
    if not isinstance(command, str) or command not in COMMANDS:
        raise SecliUsageError(f"{path} holds results of {shorten(repr(command), 60)}, which this secli cannot render "
                              f"(it reads {', '.join(COMMANDS)})")
    if document["format"] != format_name(command):
        raise SecliUsageError(f"{path}: 'format' {shorten(repr(document['format']), 60)} does not match "
                              f"'command' {command!r}")
    check_result(document, str(path))
    return document
