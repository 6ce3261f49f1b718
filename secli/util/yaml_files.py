"""Reading YAML input files strictly: one reader and one key check for every file secli accepts.

Model specs and complexity experiments are both hand-written YAML. A typo in a key (``ration:``)
must fail loudly rather than silently fall back to a default, and a broken file must give one
line, not a parser traceback; sharing the reader and the check keeps those messages identical.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from secli.util.errors import SecliError, SecliUsageError, first_line


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file with ``safe_load`` (never runs code), every failure a one-line error."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SecliError(f"spec file not found: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SecliError(f"cannot parse YAML in {path}: {first_line(exc)}") from None


def field_names(cls: type) -> tuple[str, ...]:
    """The keys a dataclass accepts, in declaration order (the order error messages list)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def reject_unknown_keys(data: dict[str, Any], allowed: Iterable[str] | type, where: str) -> None:
    """Fail on the first key not in ``allowed`` (key names, or a dataclass whose fields they are)."""
    names = field_names(allowed) if isinstance(allowed, type) else tuple(allowed)
    for key in data:
        if key not in names:
            raise SecliUsageError(f"{where}: unknown key {key!r}; allowed keys: {', '.join(names)}")
