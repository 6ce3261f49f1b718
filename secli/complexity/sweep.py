"""Complexity experiments as data: one base block, rows given by hand, and a grid of variants.

A sweep file (YAML, read with ``safe_load``, unknown keys rejected):

    arch: resnet50            # required
    title: Table 10           # optional, used as the table title
    input_size: 224           # optional (default: the architecture's own, 299 for Inception v3)
    num_classes: 1000         # optional
    block: {kind: se}         # defaults for every row (any BlockSpec field)
    rows:                     # optional: explicit rows, each a set of fields over ``block``
      - {kind: none}          #   (kind none = the baseline network itself)
      - {kind: sk, paths: 3}
    sweep:                    # optional: every combination of these lists is one row
      ratio: [2, 4, 8, 16, 32]
      stages: [[2], [3], [4]] # a list per row; null = every stage

Rows come first, then the grid. A plain model spec (``arch``, ``block``, ``weights``,
``num_classes``, as ``secli inject --save-spec`` writes) is a valid sweep file of one row.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secli.util.errors import SecliUsageError
from secli.build.spec import BlockSpec, read_yaml

TOP_KEYS = ("arch", "title", "input_size", "num_classes", "weights", "block", "rows", "sweep")
BLOCK_KEYS = tuple(f.name for f in dataclasses.fields(BlockSpec))


@dataclass(frozen=True)
class Sweep:
    """What to count: an architecture and the block variants, one row each."""

    arch: str
    base: dict[str, Any] = field(default_factory=dict)  # BlockSpec fields shared by every row
    rows: tuple[dict[str, Any], ...] = ()
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    input_size: int | None = None
    num_classes: int | None = None
    title: str | None = None

    def blocks(self) -> list[BlockSpec]:
        """The BlockSpec of every row: explicit rows, then the grid (or the base alone)."""
        specs = [_block({**self.base, **row}, f"row {i + 1}") for i, row in enumerate(self.rows)]
        if self.grid:
            keys = list(self.grid)
            for values in itertools.product(*(self.grid[k] for k in keys)):
                specs.append(_block({**self.base, **dict(zip(keys, values))}, "sweep"))
        elif not self.rows:
            specs.append(_block(dict(self.base), "block"))
        return specs


def _block(fields: dict[str, Any], where: str) -> BlockSpec:
    fields = dict(fields)
    fields.setdefault("kind", "se")
    if fields.get("stages") is not None:
        stages = fields["stages"]
        fields["stages"] = tuple(stages) if isinstance(stages, (list, tuple)) else (stages,)
    try:
        return BlockSpec(**fields)
    except TypeError as exc:
        raise SecliUsageError(f"{where}: {exc}") from None


def _check_keys(data: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise SecliUsageError(f"{where}: unknown key {key!r}; allowed keys: {', '.join(allowed)}")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):  # "block: se" is short for {kind: se}
        return {"kind": value}
    if not isinstance(value, dict):
        raise SecliUsageError(f"{where} must be a mapping, got {type(value).__name__}")
    _check_keys(value, BLOCK_KEYS, where)
    return dict(value)


def _positive_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SecliUsageError(f"{where} must be a whole number >= 1, got {value!r}")
    return value


def sweep_from_dict(data: Any, source: str = "spec") -> Sweep:
    """Validate a parsed YAML document (strict keys) and turn it into a Sweep."""
    if not isinstance(data, dict):
        raise SecliUsageError(f"{source}: expected a mapping with at least 'arch'")
    _check_keys(data, TOP_KEYS, source)
    if "arch" not in data:
        raise SecliUsageError(f"{source}: missing required key 'arch'")
    rows_data = data.get("rows") or []
    if not isinstance(rows_data, list):
        raise SecliUsageError(f"{source}: 'rows' must be a list of mappings")
    rows = tuple(_mapping(row, f"{source}: rows[{i}]") for i, row in enumerate(rows_data))
    grid_data = data.get("sweep") or {}
    if not isinstance(grid_data, dict):
        raise SecliUsageError(f"{source}: 'sweep' must be a mapping of lists")
    _check_keys(grid_data, BLOCK_KEYS, f"{source}: sweep")
    grid: dict[str, tuple[Any, ...]] = {}
    for key, values in grid_data.items():
        if not isinstance(values, list) or not values:
            raise SecliUsageError(f"{source}: sweep.{key} must be a non-empty list")
        grid[key] = tuple(values)
    sweep = Sweep(
        arch=str(data["arch"]),
        base=_mapping(data.get("block"), f"{source}: block"),
        rows=rows,
        grid=grid,
        input_size=_positive_int(data.get("input_size"), f"{source}: input_size"),
        num_classes=_positive_int(data.get("num_classes"), f"{source}: num_classes"),
        title=str(data["title"]) if data.get("title") is not None else None,
    )
    sweep.blocks()  # validate every row now, before any model is built
    return sweep


def load_sweep(path: str | Path) -> Sweep:
    return sweep_from_dict(read_yaml(path), source=str(path))
