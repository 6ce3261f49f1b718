"""Reading YAML input files strictly: one reader and one key check for every file secli accepts.

Model specs and complexity experiments are both hand-written YAML. A typo in a key (``ration:``)
must fail loudly rather than silently fall back to a default, and a broken file must give one
line, not a parser traceback; sharing the reader and the check keeps those messages identical.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from secli.util.bounds import expanded_size
from secli.util.errors import SecliUsageError, first_line, shorten
from secli.util.user_files import read_text

#: A hand-written spec or experiment is a few KB; anything this large is not one.
MAX_YAML_BYTES = 1_000_000
#: Aliases (``*name``) a file may use; specs need none, a sweep maybe a few.
MAX_ALIASES = 100
#: Values the document may expand to once aliases are followed (see ``secli.util.bounds``).
MAX_YAML_VALUES = 100_000


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file with the safe loader (never runs code), every failure a one-line error.

    Bounded: a regular file only (``secli.util.user_files``: a FIFO or a device is refused, not
    read), the file's size, the number of aliases, and the size the document expands to once
    aliases are followed are all checked before a single Python object is built, so an alias
    bomb is refused at once (exit 2) instead of taking minutes and gigabytes.
    """
    import yaml

    path = Path(path)
    if not os.path.lexists(path):
        raise SecliUsageError(f"spec file not found: {path}")
    text = read_text(path, "spec file", MAX_YAML_BYTES)  # a regular file, bounded, UTF-8
    try:
        loader = _BoundedLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None

            expanded_size(node, _node_children, MAX_YAML_VALUES, str(path))
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except (yaml.YAMLError, RecursionError) as exc:
        raise SecliUsageError(f"cannot parse YAML in {path}: {shorten(first_line(exc), 200)}") from None


def _node_children(node: Any) -> list[Any] | None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return None


@functools.cache
def _bounded_loader_class() -> type:
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """SafeLoader that refuses more than ``MAX_ALIASES`` aliases."""

        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise SecliUsageError(f"YAML file uses more than {MAX_ALIASES} aliases (*name); refused")
            return super().compose_node(parent, index)

    return BoundedLoader


def _BoundedLoader(text: str) -> Any:  # reads as the class it builds
    return _bounded_loader_class()(text)


def field_names(cls: type) -> tuple[str, ...]:
    """The keys a dataclass accepts, in declaration order (the order error messages list)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def reject_unknown_keys(data: dict[str, Any], allowed: Iterable[str] | type, where: str) -> None:
    """Fail on the first key not in ``allowed`` (key names, or a dataclass whose fields they are)."""
    names = field_names(allowed) if isinstance(allowed, type) else tuple(allowed)
    for key in data:
        if key not in names:
            raise SecliUsageError(f"{where}: unknown key {shorten(repr(key))}; allowed keys: {', '.join(names)}")
