"""Complexity experiments as data: one base block, rows given by hand, and a grid of variants.

A sweep file (YAML, read with ``safe_load``, unknown keys rejected):

    arch: resnet50            # required
    title: Table 10           # optional, used as the table title
    image_size: 224           # optional (default: the architecture's own, 299 for Inception v3;
                              #   ``input_size``, its old name, is read too)
    num_classes: 1000         # optional
    model_kwargs: {width: 16} # optional: keyword arguments of a factory (arch: file.py:build)
    block: {kind: se}         # defaults for every row (any BlockSpec field)
    rows:                     # optional: explicit rows, each a set of fields over ``block``
      - {kind: none}          #   (kind none = the baseline network itself)
      - {kind: sk, paths: 3}
    sweep:                    # optional: every combination of these lists is one row
      ratio: [2, 4, 8, 16, 32]
      stages: [[2], [3], [4]] # a list per row; null = every stage

Rows come first, then the grid. A plain model spec (``arch``, ``block``, ``weights``,
``num_classes``, as ``secli inject --save-spec`` writes) is a valid sweep file of one row.

Every field goes through the checks a model spec's fields do (``secli.blocks.spec.typed_block_fields``:
``bias: "no"`` is refused, not read as true; ``stages: [2.9]`` is refused, not read as 2), sizes
through their bounds (``secli.util.bounds``), and a sweep of more models than
``BOUNDS["sweep_models"]`` is refused before any is built.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secli.blocks.options import refuse_given_options
from secli.blocks.spec import BlockSpec, ModelSpec, typed_block_fields
from secli.util.bounds import BOUNDS, check_python_size
from secli.util.checks import check_bounded, check_image_size
from secli.util.errors import SecliUsageError, shorten
from secli.util.yaml_files import field_names, read_yaml, reject_unknown_keys

TOP_KEYS = ("arch", "title", "image_size", "input_size", "num_classes", "weights", "model_kwargs", "block", "rows",
            "sweep")
BLOCK_KEYS = field_names(BlockSpec)


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
    weights: str | None = None  # the file's ``weights`` key: never loaded here (see ``weights_warning``)
    model_kwargs: dict[str, Any] | None = None  # keyword arguments of the model's builder (a factory's)
    # BlockSpec fields the caller set (``override``): refused by name where a row's kind does not take them
    given: tuple[str, ...] = ()

    def weights_warning(self, figures: str) -> str | None:
        """The warning for a spec that names weights: counting and timing read none, because
        ``figures`` (parameter counts, FLOPs, timings) are the same whatever the weights hold; so
        the file is not loaded, and not even looked for, rather than ignored in silence."""
        if self.weights is None:
            return None
        return f"the spec's weights ({self.weights}) are not loaded: {figures} do not depend on weights"

    def blocks(self) -> list[BlockSpec]:
        """The BlockSpec of every row: explicit rows, then the grid (or the base alone)."""
        grid_rows = math.prod(len(values) for values in self.grid.values()) if self.grid else 0
        check_sweep_size(len(self.rows) + grid_rows)  # counted before a single row is made
        specs = [_block({**self.base, **row}, f"row {i + 1}") for i, row in enumerate(self.rows)]
        if self.grid:
            keys = list(self.grid)
            for values in itertools.product(*(self.grid[k] for k in keys)):
                specs.append(_block({**self.base, **dict(zip(keys, values))}, "sweep"))
        elif not self.rows:
            specs.append(_block(dict(self.base), "block"))
        for spec in specs:
            refuse_given_options(spec.kind, self.given)
        return specs


def check_sweep_size(models: int) -> None:
    """Refuse a sweep of more models than ``BOUNDS["sweep_models"]`` allows (exit 2)."""
    row = BOUNDS["sweep_models"]
    if models > row.high:
        raise SecliUsageError(f"this sweep has {models:,} models; at most {row.high:,} ({row.why})",
                              hint="sweep fewer values, or split the sweep into several runs")


def _block(fields: dict[str, Any], where: str) -> BlockSpec:
    fields = typed_block_fields(dict(fields), where)
    fields.setdefault("kind", "se")
    try:
        return BlockSpec(**fields)
    except TypeError as exc:
        raise SecliUsageError(f"{where}: {shorten(str(exc), 200)}") from None


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):  # "block: se" is short for {kind: se}
        return {"kind": value}
    if not isinstance(value, dict):
        raise SecliUsageError(f"{where} must be a mapping, got {type(value).__name__}")
    return typed_block_fields(value, where)


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 200:
        raise SecliUsageError(f"{where} must be a string of at most 200 characters, got {shorten(value)}")
    return value


def sweep_from_dict(data: Any, source: str = "spec") -> Sweep:
    """Validate a parsed YAML document (strict keys, typed and bounded values) and turn it into a Sweep."""
    check_python_size(data, source)
    if not isinstance(data, dict):
        raise SecliUsageError(f"{source}: expected a mapping with at least 'arch'")
    reject_unknown_keys(data, TOP_KEYS, source)
    if "arch" not in data:
        raise SecliUsageError(f"{source}: missing required key 'arch'")
    if "image_size" in data and "input_size" in data:
        raise SecliUsageError(f"{source}: input_size is the old name of image_size; give image_size only")
    size_key = "input_size" if "input_size" in data else "image_size"
    rows_data = data.get("rows") or []
    if not isinstance(rows_data, list):
        raise SecliUsageError(f"{source}: 'rows' must be a list of mappings")
    rows = tuple(_mapping(row, f"{source}: rows[{i}]") for i, row in enumerate(rows_data))
    grid_data = data.get("sweep") or {}
    if not isinstance(grid_data, dict):
        raise SecliUsageError(f"{source}: 'sweep' must be a mapping of lists")
    reject_unknown_keys(grid_data, BLOCK_KEYS, f"{source}: sweep")
    grid: dict[str, tuple[Any, ...]] = {}
    for key, values in grid_data.items():
        if not isinstance(values, list) or not values:
            raise SecliUsageError(f"{source}: sweep.{key} must be a non-empty list")
        check_sweep_size(len(values))
        grid[key] = tuple(typed_block_fields({key: v}, f"{source}: sweep")[key] for v in values)
    num_classes = data.get("num_classes")
    sweep = Sweep(
        arch=_text(data["arch"], f"{source}: arch") or "",
        base=_mapping(data.get("block"), f"{source}: block"),
        rows=rows,
        grid=grid,
        input_size=check_image_size(f"{source}: {size_key}", data.get(size_key)),
        num_classes=None if num_classes is None else check_bounded(f"{source}: num_classes", num_classes,
                                                                   "num_classes"),
        title=_text(data.get("title"), f"{source}: title"),
        weights=_text(data.get("weights"), f"{source}: weights"),
        model_kwargs=ModelSpec(arch="-", model_kwargs=data.get("model_kwargs")).model_kwargs,
    )
    sweep.blocks()  # validate every row now, before any model is built
    return sweep


def load_sweep(path: str | Path) -> Sweep:
    return sweep_from_dict(read_yaml(path), source=str(path))


def override(
    sweep: Sweep,
    arch: str | None = None,
    single: dict[str, Any] | None = None,
    lists: Mapping[str, Sequence[Any] | None] | None = None,
    input_size: int | None = None,
    num_classes: int | None = None,
) -> Sweep:
    """A sweep with options given by the caller laid over it (as the CLI does over ``--spec``).

    ``single`` holds one value per BlockSpec field (``ratio=8``): it sets the base and replaces
    the file's grid for that field. ``lists`` holds one row per value (``ratio=[2, 4]``): each
    becomes a grid axis, dropping the same field from the base (``kind`` stays as the default).
    """
    single = single or {}
    base = dict(sweep.base)
    base.update({k: v for k, v in single.items() if v is not None})
    base.setdefault("kind", "se")
    grid = {k: v for k, v in sweep.grid.items() if single.get(k) is None}
    for key, values in (lists or {}).items():
        if not values:
            continue
        if key in base and key != "kind":
            base.pop(key)
        grid[key] = tuple(values)
    given = [k for k, v in single.items() if v is not None and k != "kind"]
    given += [k for k, v in (lists or {}).items() if v and k not in given]
    return dataclasses.replace(
        sweep,
        given=tuple(dict.fromkeys((*sweep.given, *given))),
        arch=arch or sweep.arch,
        base=base,
        grid=grid,
        input_size=input_size or sweep.input_size,
        num_classes=num_classes or sweep.num_classes,
    )
