"""Sites found by structure: residual units of networks no adapter knows.

A residual unit is a module whose output adds a branch to its input: ``y = s + g * b`` or
``y = act(s + g * b)``, where ``s`` is its input (or a shortcut computed from it, such as a
strided 1x1 convolution), ``b`` the output of a module inside it (the branch's end) and ``g``
one factor per channel (1, or a layer scale as in ConvNeXt). This is found from what modules
compute in one probe forward (``secli.networks.probe``), never from class names, so ResNets,
ConvNeXt, RegNet, MNASNet, EfficientNet's inverted residuals and a user's own residual block
are found alike. DenseNet (concatenation) and ViT (no feature maps) have none.

During the probe, constant-initialised parameters (BatchNorm's ones and zeros, a
zero-initialised last BN, a 1e-6 layer scale) hold random values, and get their constants back
after it: a branch that starts at zero would otherwise add nothing and hide the unit.

Positions: ``standard`` puts the block after the branch's end, before the sum (the SE paper's
standard block); ``post`` after the whole unit. SK replaces the unit's one 3x3 convolution
(dense or grouped, not depthwise) and the BatchNorm right after it, where a unit has exactly one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from secli.networks.architectures.base import Target, wrap_after
from secli.networks.patterns import generalise, replace_conv
from secli.networks.probe import Call, call_counts, is_feature_map, probe_sizes, record_calls
from secli.networks.sites import number_sites
from secli.util.errors import SecliUsageError

STRUCTURE_POSITIONS = ("standard", "post")
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_RTOL, _ATOL = 1e-3, 1e-4


@dataclass(frozen=True)
class Unit:
    """One residual unit: its module, the module ending its branch, and its 3x3 convolution
    (with the BatchNorm after it) where it has exactly one."""

    path: str
    branch: str
    channels: int
    shortcut: str | None
    conv3x3: str | None = None
    conv_bn: str | None = None


@contextlib.contextmanager
def _varied_constants(model: nn.Module) -> Iterator[None]:
    """Give constant-initialised parameters random values in [0.5, 1.5] for the probe, then put
    the constants back: exact (a constant is one number), and no copy of the network is made."""
    generator = torch.Generator().manual_seed(0)
    saved: list[tuple[torch.Tensor, float]] = []
    try:
        with torch.no_grad():
            for param in model.parameters():
                if not param.numel() or not param.is_floating_point():
                    continue
                low, high = torch.aminmax(param.detach())
                if bool(low == high):
                    saved.append((param, float(low)))
                    param.copy_((torch.rand(param.shape, generator=generator) + 0.5).to(param))
        yield
    finally:
        with torch.no_grad():
            for tensor, value in saved:
                tensor.fill_(value)


def _transparent(call: Call) -> bool:
    """Identity, Dropout, DropPath in eval: no parameters, output equal to input."""
    return (call.input is not None and call.output is not None and call.input.shape == call.output.shape
            and next(call.module.parameters(), None) is None and torch.equal(call.input, call.output))


def _scaled(d: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``d`` is ``b`` times one non-zero factor per channel (a channel where ``b`` is
    all zero must be zero in ``d`` too)."""
    den = (b * b).sum(dim=(0, 2, 3))
    live = den > 0
    if float(live.float().mean()) < 0.5:
        return False
    g = torch.where(live, (d * b).sum(dim=(0, 2, 3)) / den.clamp_min(1e-30), torch.zeros_like(den))
    if bool((g[live] == 0).any()):
        return False
    scale = float(d.abs().max()) or 1.0
    return torch.allclose(d, g.view(1, -1, 1, 1) * b, rtol=_RTOL, atol=_ATOL * scale)


def _scaled_relu(y: torch.Tensor, s: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``y = relu(s + g * b)``, a ReLU called as a function after the sum: ``g`` is
    fitted where the output is positive; channels that are zero throughout say nothing."""
    if bool((y < 0).any()):
        return False
    mask = (y > 0).to(y.dtype)
    den = (b * b * mask).sum(dim=(0, 2, 3))
    live = den > 0
    if float(live.float().mean()) < 0.5:
        return False
    g = ((y - s) * b * mask).sum(dim=(0, 2, 3))[live] / den[live]
    if bool((g == 0).any()):
        return False
    scale = float(y.abs().max()) or 1.0
    fitted = torch.relu(s[:, live] + g.view(1, -1, 1, 1) * b[:, live])
    return torch.allclose(fitted, y[:, live], rtol=_RTOL, atol=_ATOL * scale)


def _residual(unit: Call, inner: list[Call], counts: dict[int, int]) -> Unit | None:
    x, y = unit.input, unit.output
    assert x is not None
    assert y is not None
    prefix = f"{unit.path}." if unit.path else ""

    def child(c: Call) -> bool:
        return "." not in c.path.removeprefix(prefix)

    def takes(c: Call, t: torch.Tensor | None) -> bool:
        return c.input is not None and t is not None and c.input.shape == t.shape and torch.equal(c.input, t)

    # the shortcut: the input itself, a module applied to it (a strided 1x1 convolution), or a
    # module applied to a pre-activation of it (ResNet v2: downsample(norm1(x)))
    from_x = [c for c in inner if takes(c, x)]
    preact = [c for c in inner if child(c) and any(takes(c, p.output) for p in from_x if child(p))]
    shortcuts: list[Call | None] = [None]
    shortcuts += [c for c in (*from_x, *preact) if c.output is not None and c.output.shape == y.shape]
    branches = [c for c in inner if c.output is not None and c.output.shape == y.shape and counts[id(c.module)] == 1]
    branches.sort(key=lambda c: (not _transparent(c), c.end), reverse=True)  # last real module first
    # the sum itself: the output, or the input of a last activation (a parameter-free leaf giving the output)
    sums = [y] + [c.input for c in inner if c.input is not None and c.output is not None and c.input.shape == y.shape
                  and child(c) and next(c.module.children(), None) is None
                  and next(c.module.parameters(), None) is None and torch.equal(c.output, y)]
    # ... computed by this module's own forward, not returned by a module inside it (a stage
    # holding blocks would otherwise read as "first block + branch of the second")
    sums = [t for t in sums if not any(c.output is not None and c.output.shape == t.shape and not _transparent(c)
                                       and torch.equal(c.output, t) for c in inner)]
    for s_call in shortcuts:
        s = x if s_call is None else s_call.output
        if s is None or s.shape != y.shape:
            continue
        for b in branches:
            if s_call is not None and (b is s_call or b.inside(s_call)):
                continue
            assert b.output is not None
            if (any(_scaled(t - s, b.output) for t in sums)
                    or (any(t is y for t in sums) and _scaled_relu(y, s, b.output))):
                return Unit(unit.path, b.path, y.shape[1], s_call.path if s_call else None)
    return None


def _with_conv(unit: Unit, inner: list[Call], calls: list[Call]) -> Unit:
    """``unit`` with its one 3x3 convolution on the branch (dense or grouped), if it has one."""
    def on_branch(c: Call) -> bool:
        return unit.shortcut is None or not (c.path == unit.shortcut or c.path.startswith(f"{unit.shortcut}."))

    convs = [c for c in inner if isinstance(c.module, nn.Conv2d) and c.module.kernel_size == (3, 3)
             and c.module.groups < c.module.in_channels and on_branch(c)]
    if len(convs) != 1:
        return unit
    conv = convs[0]
    after = next((c for c in calls if c.start > conv.end), None)
    bn = None
    if (after is not None and isinstance(after.module, nn.BatchNorm2d) and after.input is not None
            and conv.output is not None and torch.equal(after.input, conv.output)):
        bn = after.path
    return Unit(unit.path, unit.branch, unit.channels, unit.shortcut, conv.path, bn)


def residual_units(model: nn.Module, input_size: int, label: str = "the model") -> list[Unit]:
    """The residual units of ``model`` in forward order; of units nested in one another's
    branch, the inner ones (a block after an outer branch would move the inner sites)."""
    with _varied_constants(model):
        calls, _ = record_calls(model, probe_sizes(input_size), keep_values=True, label=label)
    counts = call_counts(calls)
    found: list[tuple[Unit, list[Call]]] = []
    for call in calls:
        if (isinstance(call.module, _CONTAINERS) or call.input is None or call.output is None
                or not is_feature_map(call.out_shape) or counts[id(call.module)] > 1):
            continue
        inner = [c for c in calls if c.inside(call)]
        unit = _residual(call, inner, counts) if inner else None
        if unit is not None:
            found.append((_with_conv(unit, inner, calls), inner))
    units = [u for u, _ in found]
    return [u for u in units if not any(v is not u and ((v.path.startswith(f"{u.path}.") and v.branch == u.branch)
                                                        or v.path.startswith(f"{u.branch}.")) for v in units)]


def no_units(label: str, model: nn.Module) -> SecliUsageError:
    """The refusal for a network without residual units, with patterns that would work."""
    leaves = [p for p, m in model.named_modules() if p and next(m.children(), None) is None
              and isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    common: dict[str, int] = {}
    for path in leaves:
        common[generalise(path)] = common.get(generalise(path), 0) + 1
    examples = [p for p, n in sorted(common.items(), key=lambda kv: -kv[1]) if n > 1][:3]
    hint = "place blocks by module path with --at PATTERN" + (f", e.g. --at '{examples[0]}'" if examples else "")
    return SecliUsageError(f"found no residual units in {label} (a module whose output adds a branch to its input, "
                           "on feature maps) and secli has no adapter for it", hint=hint)


def structure_targets(model: nn.Module, position: str, conv3x3: bool, input_size: int,
                      label: str = "the model") -> list[Target]:
    """Targets at the residual units: after each branch (``standard``) or unit (``post``), or,
    for SK (``conv3x3``), in place of each unit's one 3x3 convolution."""
    if not conv3x3 and position not in STRUCTURE_POSITIONS:
        raise SecliUsageError(f"position {position!r} needs an adapter; {label} has none, and for residual units "
                              f"found by structure secli places: {', '.join(STRUCTURE_POSITIONS)}",
                              hint="or place blocks by module path with --at PATTERN")
    units = residual_units(model, input_size, label)
    if not units:
        raise no_units(label, model)
    if conv3x3:
        units = [u for u in units if u.conv3x3 is not None]
        if not units:
            raise SecliUsageError(f"SK replaces the one 3x3 convolution (dense or grouped) of a residual unit; none of "
                                  f"the residual units of {label} has exactly one",
                                  hint="name the convolutions to replace with --at PATTERN, or use --block se")
        return [Target(stage=stage, index=index, channels=_conv(model, u).out_channels,
                       in_channels=_conv(model, u).in_channels, stride=_conv(model, u).stride[0],
                       attach=replace_conv(model, str(u.conv3x3), u.conv_bn))
                for (stage, index), u in zip(number_sites([u.path for u in units]), units)]
    return [Target(stage=stage, index=index, channels=u.channels,
                   attach=wrap_after(model, u.branch if position == "standard" else u.path))
            for (stage, index), u in zip(number_sites([u.path for u in units]), units)]


def _conv(model: nn.Module, unit: Unit) -> nn.Conv2d:
    conv = model.get_submodule(str(unit.conv3x3))
    assert isinstance(conv, nn.Conv2d)
    return conv
