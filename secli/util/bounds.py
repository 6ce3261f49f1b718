"""Every upper bound secli puts on a value, in one table, and the size of a user's file.

``BOUNDS`` holds one row per numeric option or spec field: its range and why the upper end is
where it is (what would no longer run, or run for no purpose). ``secli.util.checks`` refuses a
value outside it, the help text of the option states it (``bound_help``), and
``docs/guarantees.md`` lists the table; an option added later joins by adding a row.

YAML aliases and pickle's memo both let a small file describe a structure whose expanded size
is exponential (shared nested lists: the "billion laughs"). Counting the expanded size with a
memo per object takes time linear in the *file*, so a hostile file is refused in microseconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from secli.util.errors import SecliUsageError


def _cpus() -> int:
    """Logical CPUs this process may run on (what ``--threads`` and ``--workers`` are bounded by)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


CPUS = _cpus()
#: The widest feature map (channels) of any network secli injects into: a hidden width, ratio,
#: group count or kernel beyond it changes nothing but the cost.
WIDEST_CHANNELS = 4096


@dataclass(frozen=True)
class Bound:
    """The range a value may take (both ends included) and why the upper end is there."""

    low: int | float
    high: int | float
    why: str

    def text(self) -> str:
        """``1 to 4,096`` as help texts and errors say it."""
        return f"{self.low:,} to {self.high:,}"


#: Keyed by the option's name without dashes (``min_hidden`` for ``--min-hidden``), which is
#: also the spec field's name where there is one.
BOUNDS: dict[str, Bound] = {
    "image_size": Bound(8, 4096, "below 8 px no network here keeps a feature map; at 4,096 px one image "
                                 "already takes gigabytes in a ResNet's first stage"),
    "batch_size": Bound(1, 65_536, "a sanity cap; the real limit is memory, estimated before the run"),
    "ratio": Bound(1, WIDEST_CHANNELS, "beyond the widest feature map every hidden width is its floor"),
    "min_hidden": Bound(1, WIDEST_CHANNELS, "a floor above every feature map only grows the FC layers; "
                                            "1,000,000 took 15.6 GB and 92 s"),
    "paths": Bound(1, 8, "each SK path is a full 3x3 convolution with dilation m; the papers use 2 or 3"),
    "groups": Bound(1, WIDEST_CHANNELS, "a group count divides the channels, and no feature map is wider"),
    "kernel_size": Bound(1, WIDEST_CHANNELS - 1, "an ECA kernel wider than the channels reads padding only"),
    "extent": Bound(0, 64, "GE's gather extent (0 = the whole map); the kinds take 0, 2, 4 or 8"),
    "frequencies": Bound(1, 32, "FcaNet's top-k DCT frequencies; the paper ranks 32"),
    "stage": Bound(1, 16, "stages are numbered as in the papers, ResNet 2..5"),
    "stages": Bound(1, 16, "a set names each stage once, and no network here has more"),
    "num_classes": Bound(1, 100_000, "a wider classifier outweighs the network; ImageNet-21k has 21,841 classes"),
    "per_class": Bound(1, 100_000, "ImageNet has about 1,300 images a class"),
    "train_size": Bound(1, 1_000_000, "generated images; a million takes hours on a CPU"),
    "val_size": Bound(0, 1_000_000, "as --train-size"),
    "epochs": Bound(1, 10_000, "a sanity cap"),
    "workers": Bound(0, 4 * CPUS, f"four loader processes per CPU, {CPUS} CPUs here; more only contend"),
    "threads": Bound(1, 4 * CPUS, f"four threads per CPU, {CPUS} CPUs here; 100,000 crashed torch"),
    "bins": Bound(2, 10_000, "histogram bins over the gate's range; memory is also estimated"),
    "channels": Bound(1, WIDEST_CHANNELS, "curves per figure; no feature map is wider"),
    "iters": Bound(1, 100_000, "timed iterations; a sanity cap"),
    "warmup": Bound(0, 10_000, "untimed iterations; a sanity cap"),
    "depth": Bound(0, 64, "module tree depth; no network here is deeper"),
    "seed": Bound(0, 2**32 - 1, "every generator secli seeds (Python, numpy, torch) takes it"),
    "scale": Bound(1, 16, "the SK test's object scale: a 1/16 centre crop is a few pixels"),
    "scales": Bound(1, 16, "object scales per run"),
    "progress_interval": Bound(0, 86_400, "seconds between two plain progress lines; a day is a sanity cap"),
    "sweep_models": Bound(1, 100, "models one complexity or profile run builds; the papers' largest tables "
                                  "have about 10 rows"),
}


def bound(name: str) -> Bound:
    """The row of ``BOUNDS`` for an option (``--min-hidden``) or a field (``min_hidden``)."""
    return BOUNDS[name.lstrip("-").replace("-", "_")]


def bound_help(name: str) -> str:
    """The range of ``name`` as its help text ends: ``(1 to 4,096)``."""
    return f"({bound(name).text()})"

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
                raise SecliUsageError(f"{where} expands to more than {limit:,} values (shared or nested "
                                      "too deeply); refused")
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
