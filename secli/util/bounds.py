"""Bounding what a user's file can hold before anything walks, formats or builds from it.

YAML aliases and pickle's memo both let a small file describe a structure whose expanded size
is exponential (shared nested lists: the "billion laughs"). Counting the expanded size with a
memo per object takes time linear in the *file*, so a hostile file is refused in microseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from secli.util.errors import SecliUsageError

#: The most values (containers and scalars, shared ones counted at every place they appear)
#: that a spec, an experiment file or a checkpoint's spec and meta may expand to.
MAX_EXPANDED = 200_000


def expanded_size(root: Any, children: Callable[[Any], Iterable[Any] | None], limit: int = MAX_EXPANDED,
                  where: str = "file") -> int:
    """The number of values ``root`` expands to; ``SecliUsageError`` beyond ``limit``.

    ``children(value)`` gives a container's members (None for a scalar). Shared members are
    sized once and counted at every place they are used; cycles are refused.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        value, done = stack.pop()
        key = id(value)
        if done:
            members = children(value) or ()
            size = 1 + sum(sizes[id(m)] for m in members)
            active.discard(key)
            sizes[key] = size
            if size > limit:
                raise SecliUsageError(f"{where} expands to more than {limit:,} values (shared or nested too deeply); refused")
            continue
        if key in sizes:
            continue
        if key in active:
            raise SecliUsageError(f"{where} refers to itself (a cycle); refused")
        found = children(value)
        if found is None:
            sizes[key] = 1
            continue
        active.add(key)
        stack.append((value, True))
        stack.extend((m, False) for m in found if id(m) not in sizes)
    return sizes[id(root)]


def python_children(value: Any) -> Iterable[Any] | None:
    """Members of lists, tuples, sets and dicts (keys and values); None for anything else."""
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return None


def check_python_size(value: Any, where: str, limit: int = MAX_EXPANDED) -> None:
    expanded_size(value, python_children, limit, where)
