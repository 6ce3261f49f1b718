"""Sites by pattern: a block after each module whose path matches a glob (``--at``).

Patterns are matched part by part on dotted module paths, with ``fnmatch`` inside each part:
``*`` (and ``?``, ``[0-9]``) stays within one part, ``**`` spans any number of parts. So
``layer*.*.bn3`` is the last BN of every torchvision ResNet bottleneck, ``stages.*.blocks.*``
every timm ConvNeXt block, and ``features.*.block.2`` one layer of each torchvision block,
without also matching the modules nested below them.

The channels at each site are read from a probe forward (``secli.networks.probe``), so any
network works, a user's own included. A pattern that matches nothing, a module whose output is
not a feature map (N, C, H, W), a module called more than once (one wrapper would sit at every
call) or matches nested in one another are refused in one line, with near matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase

from torch import nn

from secli.networks.architectures.base import Target, wrap_after
from secli.networks.probe import Call, call_counts, is_feature_map, probe_sizes, record_calls
from secli.networks.sites import get_module, number_sites, set_module
from secli.util.errors import SecliUsageError, closest_names


def matches(pattern: str, path: str) -> bool:
    """Whether ``path`` matches ``pattern`` part by part (``**``: any number of parts)."""
    return _match(pattern.split("."), path.split(".") if path else [])


def _match(pattern: list[str], parts: list[str]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], pattern[0]) and _match(pattern[1:], parts[1:])


def generalise(path: str) -> str:
    """A module path with its indices as ``*`` (``layer1.0.bn3`` -> ``layer*.*.bn3``): the
    pattern a user most likely meant, offered as a near match."""
    return re.sub(r"\d+", "*", path)


def _forms(path: str) -> list[str]:
    """Patterns a user may have meant for ``path``: indices as ``*`` (``layer1.0.bn3`` ->
    ``layer1.*.bn3``), the first part's number too (``layer*.*.bn3``), every number."""
    parts = ["*" if p.isdigit() else p for p in path.split(".")]
    indexed = ".".join(parts)
    first = ".".join([re.sub(r"\d+", "*", parts[0]), *parts[1:]])
    return [first, indexed, generalise(path)]


def near_matches(pattern: str, paths: Sequence[str], n: int = 3) -> str | None:
    """A hint naming the patterns (from ``paths``) closest to ``pattern``."""
    candidates = list(dict.fromkeys(form for p in paths if p for form in _forms(p)))
    close = closest_names(pattern, candidates, n) or closest_names(generalise(pattern), candidates, n)
    return f"near matches: {', '.join(close)}" if close else None


def _describe(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "not one tensor"
    if len(shape) == 4 and shape[2] != shape[3]:
        return f"{tuple(shape)}, a channels-last map (N, H, W, C)"
    return f"a {len(shape)}-D tensor {tuple(shape)}"


def matched_paths(model: nn.Module, patterns: Sequence[str], calls: Sequence[Call] | None = None) -> list[str]:
    """Every module path matched by any pattern, in module order; each pattern must match one."""
    paths = [p for p, _ in model.named_modules() if p]
    found: list[str] = []
    for pattern in patterns:
        hits = [p for p in paths if matches(pattern, p)]
        if not hits:
            raise SecliUsageError(f"--at {pattern!r} matches no module", hint=near_matches(pattern, paths))
        found += hits
    found = sorted(set(found), key=paths.index)
    for a in found:
        inner = next((b for b in found if b.startswith(f"{a}.")), None)
        if inner is not None:
            raise SecliUsageError(f"--at matches {a} and {inner} inside it; a block after both is ambiguous",
                                  hint="name one level: * stays within one part of the path")
    return found


def pattern_targets(model: nn.Module, patterns: Sequence[str], conv3x3: bool, input_size: int,
                    label: str = "the model") -> list[Target]:
    """Targets after each module ``patterns`` match (SE, ECA...), or, for a kind that replaces 3x3
    convolutions (``conv3x3``, SK), at each matching 3x3 convolution."""
    found = matched_paths(model, patterns)
    calls, _ = record_calls(model, probe_sizes(input_size), label=label)
    first: dict[str, Call] = {}
    for call in calls:
        first.setdefault(call.path, call)
    counts = call_counts(calls)
    ordered = sorted(found, key=lambda p: first[p].start if p in first else 1 << 30)
    maps = [c.path for c in first.values() if c.path and is_feature_map(c.out_shape)]
    targets = []
    for (stage, index), path in zip(number_sites(ordered), ordered):
        if path not in first:
            raise SecliUsageError(f"--at matches {path}, which forward never calls", hint=near_matches(path, maps))
        call = first[path]
        if counts[id(call.module)] > 1:
            raise SecliUsageError(f"--at matches {path}, which is called {counts[id(call.module)]} times in one "
                                  "forward pass; a block after it would sit at every call")
        if conv3x3:
            targets.append(_conv_target(model, path, call, calls, stage, index))
            continue
        if not is_feature_map(call.out_shape):
            raise SecliUsageError(f"--at matches {path}, whose output is {_describe(call.out_shape)}, not a feature "
                                  "map (N, C, H, W)", hint=near_matches(path, maps))
        assert call.out_shape is not None
        targets.append(Target(stage=stage, index=index, channels=call.out_shape[1], attach=wrap_after(model, path)))
    return targets


def _conv_target(model: nn.Module, path: str, call: Call, calls: Sequence[Call], stage: int, index: int) -> Target:
    conv = call.module
    if not isinstance(conv, nn.Conv2d) or conv.kernel_size != (3, 3):
        raise SecliUsageError(f"--at matches {path}, which is not a 3x3 convolution; SK replaces 3x3 convolutions",
                              hint=near_matches(path, [c.path for c in calls if _is_3x3(c.module)]))
    after = next((c for c in calls if c.start > call.end), None)
    bn = after.path if after is not None and _follows(after, conv) else None
    return Target(stage=stage, index=index, channels=conv.out_channels, in_channels=conv.in_channels,
                  stride=conv.stride[0], attach=replace_conv(model, path, bn))


def _is_3x3(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3)


def _follows(call: Call, conv: nn.Conv2d) -> bool:
    """A BatchNorm run right after the convolution, on its output: SK's paths carry their own."""
    return isinstance(call.module, nn.BatchNorm2d) and call.module.num_features == conv.out_channels


def replace_conv(model: nn.Module, conv_path: str, bn_path: str | None) -> Callable[[nn.Module], str]:
    """An ``attach`` that puts the block in place of the convolution (and its BN, if any)."""

    def attach(block: nn.Module) -> str:
        set_module(model, conv_path, block)
        if bn_path is not None and not isinstance(get_module(model, bn_path), nn.Identity):
            set_module(model, bn_path, nn.Identity())
        return conv_path

    return attach
