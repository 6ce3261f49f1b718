"""What to build: a base architecture and the block to put into it.

Specs are plain frozen dataclasses so that every command, a YAML file, a checkpoint and a
notebook describe a model the same way, and so a spec can be saved next to the weights and
rebuilt exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secli.blocks.registry import KIND_OPTIONS, NO_BLOCK, get_kind, kind_names
from secli.util.bounds import BOUNDS, check_python_size
from secli.util.errors import SecliUsageError, shorten
from secli.util.vocabulary import GATES, IMPLS, INITS, POSITIONS, SQUEEZES
from secli.util.yaml_files import read_yaml, reject_unknown_keys


@dataclass(frozen=True)
class BlockSpec:
    """One kind of block and where it goes.

    ``kind`` is a registered block kind (``secli.blocks.registry``: se, sk, eca, ...) or
    ``"none"`` (the network's own SE modules). Each kind takes some of the option fields; one it
    does not take must stay at its default, so a spec never carries a setting that silently does
    nothing. ``min_hidden`` is the floor on the hidden width (SE: ``max(C // r, min_hidden)``,
    default 1; SK: the paper's L, default 32). ``impl`` (SE, SK) picks secli's fused function
    (``fused``, the default; tests/test_fast_blocks.py proves it equal) or autograd's composition
    (``eager``); both have the same parameters and state_dict. ``kernel_size`` is ECA's fixed
    1-D kernel (None: the paper's adaptive k) and CBAM's spatial kernel (None: 7). ``extent`` is
    GE's gather extent (2, 4, 8, or 0 for the whole map; None: the kind's default), ``frequencies``
    FcaNet's number of DCT frequencies (the paper's top-k ranking, default 16). ``stages`` uses the
    paper's numbering (ResNet: 2..5 = torchvision ``layer1``..``layer4``); ``None`` means every
    stage. ``at``: glob patterns on module paths (``layer*.*.bn3``): a block after each matching
    module instead of the positions an adapter or the network's structure gives
    (``secli.networks.patterns``); SK replaces the matching 3x3 convolutions. It is a block field,
    like ``position`` and ``stages``, because it says where this block goes, so a checkpoint's spec
    rebuilds the same sites.
    """

    kind: str = "se"
    ratio: int = 16
    min_hidden: int | None = None
    position: str = "standard"
    stages: tuple[int, ...] | None = None
    squeeze: str = "avg"
    gate: str = "sigmoid"
    bias: bool = True
    init: str = "default"
    paths: int = 2
    groups: int = 32
    kernel_size: int | None = None
    impl: str = "fused"
    extent: int | None = None
    frequencies: int = 16
    at: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in _FIELD_NAMES:  # types and bounds first: BlockSpec(bias="no") is refused, not read as true
            object.__setattr__(self, name, _typed(f"--{name.replace('_', '-')}", name, getattr(self, name)))
        if self.at is not None and self.position != "standard":
            raise SecliUsageError("--position does not apply with --at: a block goes after each "
                                  "module the pattern matches")
        if self.kind != NO_BLOCK:
            get_kind(self.kind)  # refuses an unknown kind, with a did-you-mean hint
        _check_choice("position", self.position, POSITIONS)
        _check_choice("squeeze", self.squeeze, SQUEEZES)
        _check_choice("gate", self.gate, GATES)
        _check_choice("init", self.init, INITS)
        _check_choice("impl", self.impl, IMPLS)
        if self.stages is not None:
            object.__setattr__(self, "stages", tuple(sorted(set(self.stages))))
        if self.kind != NO_BLOCK:
            self._check_kind_options()

    def _check_kind_options(self) -> None:
        """Refuse options the kind does not take (set away from their defaults), then run the
        kind's own checks (SE: identity init needs biases; ECA: odd kernel size)."""
        kind = get_kind(self.kind)
        for name in KIND_OPTIONS:
            if name in kind.options or getattr(self, name) == _DEFAULTS[name]:
                continue
            raise does_not_apply(self.kind, name)
        if kind.check is not None:
            kind.check(self)

    @property
    def hidden_floor(self) -> int:
        """``min_hidden`` if given, else the kind's default floor (SE 1, SK's L = 32)."""
        if self.min_hidden is not None:
            return self.min_hidden
        kind = None if self.kind == NO_BLOCK else get_kind(self.kind)
        return kind.default_min_hidden if kind and kind.default_min_hidden is not None else 1

    def label(self) -> str:
        """A short human name such as ``SE r=16 standard`` for tables and plot titles."""
        if self.kind == NO_BLOCK:
            return "baseline"
        kind = get_kind(self.kind)
        parts = [kind.prefix, *(kind.describe(self) if kind.describe else [])]
        if self.stages:
            parts.append("stages=" + ",".join(map(str, self.stages)))
        if self.at:
            parts.append("at " + ",".join(self.at))
        return " ".join(parts)


@dataclass(frozen=True)
class ModelSpec:
    """A base network, optional base weights, and the block injected into it.

    ``arch`` is a model reference (``secli.networks.references``): a name, ``timm:<name>``,
    or a user's factory ``file.py:build`` / ``package.module:build``, called with
    ``model_kwargs`` (timm and torchvision builders take them too).
    """

    arch: str
    block: BlockSpec = field(default_factory=BlockSpec)
    weights: str | None = None
    num_classes: int | None = None
    model_kwargs: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        _typed("arch", "arch", self.arch)
        if self.num_classes is not None:
            _typed("--num-classes", "num_classes", self.num_classes)
        if self.model_kwargs is not None:
            _check_kwargs("model_kwargs", self.model_kwargs)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("stages", "at"):
            if data["block"][key] is not None:
                data["block"][key] = list(data["block"][key])
        if data["block"]["at"] is None:
            del data["block"]["at"]  # specs without patterns read as they always did
        if data["model_kwargs"] is None:
            del data["model_kwargs"]
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str = "spec") -> ModelSpec:
        """A spec from a YAML file or a checkpoint: sizes bounded, every field's type checked
        (a bool is a bool, an int is not a bool, stages a list of ints), the key named, exit 2."""
        check_python_size(data, source)
        if not isinstance(data, dict):
            raise SecliUsageError(f"{source}: expected a mapping with at least 'arch', got {type(data).__name__}")
        reject_unknown_keys(data, cls, source)
        if "arch" not in data:
            raise SecliUsageError(f"{source}: missing required key 'arch'")
        block_data = data.get("block") or {}
        if isinstance(block_data, str):
            block_data = {"kind": block_data}
        if not isinstance(block_data, dict):
            raise SecliUsageError(f"{source}: 'block' must be a mapping or a block kind, got {shorten(block_data)}")
        block_data = typed_block_fields(block_data, f"{source}: block")
        try:
            block = BlockSpec(**block_data)
        except TypeError as exc:  # a type no check above foresaw
            raise SecliUsageError(f"{source}: {shorten(str(exc), 200)}") from None
        return cls(
            arch=_typed(f"{source}: 'arch'", "arch", data["arch"]),
            block=block,
            weights=_typed(f"{source}: 'weights'", "weights", data.get("weights")),
            num_classes=_typed(f"{source}: 'num_classes'", "num_classes", data.get("num_classes")),
            model_kwargs=_check_kwargs(f"{source}: 'model_kwargs'", data.get("model_kwargs")),
        )


#: Fields whose default is None (so the default's type says nothing): their type when given.
_OPTIONAL_TYPES: dict[str, type] = {"min_hidden": int, "kernel_size": int, "extent": int, "weights": str,
                                    "num_classes": int}
_MAX_TEXT = 200


def _quote(value: Any) -> str:
    return shorten(repr(value)) if isinstance(value, str) else shorten(value)


def _patterns(value: Any) -> tuple[str, ...]:
    """``at`` as a tuple of non-empty patterns: from a comma string or a list of strings."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise SecliUsageError(f"--at takes module path patterns (a comma list of strings), got {_quote(value)}")
    patterns = tuple(i.strip() for i in items if i.strip())
    if not patterns:
        raise SecliUsageError("--at needs at least one pattern, e.g. --at 'layer*.*.bn3'")
    if len(patterns) > 100 or any(len(p) > _MAX_TEXT for p in patterns):
        raise SecliUsageError(f"--at takes at most 100 patterns of at most {_MAX_TEXT} characters each")
    return patterns


def _check_kwargs(where: str, value: Any) -> dict[str, Any] | None:
    """A factory's keyword arguments: a mapping with identifier keys (None: none given)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and k.isidentifier() for k in value):
        raise SecliUsageError(f"{where} must be a mapping of keyword arguments, got {_quote(value)}")
    return dict(value)


def _typed(where: str, key: str, value: Any) -> Any:
    """``value`` checked against the field's type (from its default, or ``_OPTIONAL_TYPES``) and,
    for a whole number, its range in ``secli.util.bounds.BOUNDS`` (the reason in the message).

    One check for every way a spec arrives: a YAML file, a sweep file's rows and grid, a
    checkpoint, the command line and the Python API (``BlockSpec.__post_init__``)."""
    if value is None and key in ("min_hidden", "kernel_size", "extent", "stages", "weights", "num_classes", "at"):
        return None
    if key == "at":
        return _patterns(value)
    if key == "stages":
        return _typed_stages(where, value)
    expected = _OPTIONAL_TYPES.get(key) or (str if key == "arch" else type(_DEFAULTS.get(key, "")))
    if expected is bool and not isinstance(value, bool):
        raise SecliUsageError(f"{where} must be true or false, got {_quote(value)}")
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SecliUsageError(f"{where} must be a whole number, got {_quote(value)}")
        if key in BOUNDS:
            _in_bounds(where, key, value)
    if expected is str:
        if not isinstance(value, str):
            raise SecliUsageError(f"{where} must be a string, got {_quote(value)}")
        if len(value) > _MAX_TEXT:
            raise SecliUsageError(f"{where} is {len(value):,} characters long; at most {_MAX_TEXT}")
    if expected is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise SecliUsageError(f"{where} must be a number, got {_quote(value)}")
    return value


def _typed_stages(where: str, value: Any) -> tuple[int, ...]:
    """A list of stage numbers (one number is a list of one), each within ``BOUNDS["stage"]``."""
    items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in items):
        raise SecliUsageError(f"{where} must be a list of whole numbers, got {_quote(value)}")
    limit = int(BOUNDS["stages"].high)
    if len(items) > limit:
        raise SecliUsageError(f"{where} lists {len(items):,} stages; at most {limit}")
    for item in items:
        _in_bounds(where, "stage", item)
    return tuple(items)


def _in_bounds(where: str, key: str, value: int) -> None:
    row = BOUNDS[key]
    if not row.low <= value <= row.high:
        raise SecliUsageError(f"{where} must be from {row.text()} ({row.why}), got {shorten(str(value), 40)}")


def typed_block_fields(fields: dict[str, Any], where: str) -> dict[str, Any]:
    """A block's fields from a file (a spec's ``block``, a sweep's rows and grid): unknown keys
    refused, every value type- and range-checked with its key named (``where: 'bias'``)."""
    reject_unknown_keys(fields, BlockSpec, where)
    return {key: _typed(f"{where}: {key!r}", key, value) for key, value in fields.items()}


def does_not_apply(kind_name: str, option: str) -> SecliUsageError:
    kind = get_kind(kind_name)
    reason = kind.refusals.get(option)
    takes = ", ".join(f"--{o.replace('_', '-')}" for o in (*kind.options, "stages"))
    return SecliUsageError(
        f"--{option.replace('_', '-')} does not apply to {kind.prefix} blocks" + (f": {reason}" if reason else ""),
        hint=f"{kind.name} takes {takes}",
    )


def block_kinds() -> tuple[str, ...]:
    """Every value ``kind`` takes: the registered kinds, then ``"none"``."""
    return (*kind_names(), NO_BLOCK)


def _check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SecliUsageError(f"unknown {what} {shorten(repr(value))}; choose one of: {', '.join(allowed)}")


def load_spec_yaml(path: str | Path) -> ModelSpec:
    return ModelSpec.from_dict(read_yaml(path), source=str(path))


def dump_spec_yaml(spec: ModelSpec) -> str:
    import yaml

    return yaml.safe_dump(spec.to_dict(), sort_keys=False)


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(BlockSpec)}
_FIELD_NAMES = tuple(_DEFAULTS)
