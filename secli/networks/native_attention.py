"""Attention modules a network already has beyond SE: ECA, CBAM, global context (GC) and SK.

As for SE (``native_se``), modules are recognised by what they are made of and what they
compute, never by their class names, so timm's ``ecaresnet*``, ``gcresnet*``, ``skresnet*``,
ResNets built with ``attn_layer='cbam'`` and a user's own versions are found alike:

* ECA: its only learned layers are 1-D convolutions across channels (1 -> ... -> 1); it
  scales its input by a factor constant over H x W (probed as for SE).
* CBAM: two 1x1 maps C -> h -> C and one convolution of 2 maps (mean and max over channels)
  to 1; it scales its input by a channel factor times a spatial one. Its gate is the channel
  factor (the SE half); the spatial map is not analysed.
* GC: a 1x1 map C -> 1 (attention pooling) and one or two MLPs C -> h -> C; its output is the
  input scaled and/or shifted by per-channel terms. Its gate is the scale where it scales (a
  sigmoid), else the added term (unbounded: its histogram clips to [0, 2]).
* SK: M >= 2 convolution paths of C channels and maps C -> h -> M*C; its output is the sum of
  the paths weighted by a softmax over paths. Its gate is that softmax, (N, M, C).

Each probe runs the module alone on a seeded positive input, in eval mode under ``no_grad``,
training flags restored. Widths that the layers do not give (ECA's C, SK's input) come from
one probe forward of the whole network (``secli.networks.probe``), run only when a candidate
exists.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import nn

from secli.networks.native_se import discover_native_sites
from secli.networks.probe import probe_sizes, record_calls
from secli.networks.sites import Site, count_params, number_sites

_RTOL, _ATOL = 1e-3, 1e-5
_SIDE = 6


def _learned(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if next(m.parameters(recurse=False), None) is not None]


def _maps(layers: list[nn.Module]) -> list[tuple[int, int]]:
    """(in, out) of the 1x1 channel maps among ``layers``."""
    dims = []
    for m in layers:
        if isinstance(m, nn.Linear):
            dims.append((m.in_features, m.out_features))
        elif isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1:
            dims.append((m.in_channels, m.out_channels))
    return dims


def _vectors_only(layers: list[nn.Module], allowed: Callable[[nn.Module], bool]) -> bool:
    return all(allowed(m) or all(p.dim() <= 1 for p in m.parameters(recurse=False)) for m in layers)


def _run(module: nn.Module,
         shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]] | None:
    """(input, output, every submodule's tensor output) of one isolated forward, or None."""
    param = next(module.parameters(), None)
    if param is None:
        return None
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)) + 0.5
    x = x.to(device=param.device, dtype=param.dtype)
    outputs: dict[str, torch.Tensor] = {}
    handles = [sub.register_forward_hook(
        lambda _m, _i, out, name=name: (outputs.setdefault(name, out.detach().clone())
                                        if isinstance(out, torch.Tensor) else None))
        for name, sub in module.named_modules() if name]
    modes = {sub: sub.training for sub in module.modules()}
    try:
        module.eval()
        with torch.no_grad():
            out = module(x.clone())
    except Exception:  # not a module that takes this input: not a candidate
        return None
    finally:
        for handle in handles:
            handle.remove()
        for sub, mode in modes.items():
            sub.training = mode
    return (x, out, outputs) if isinstance(out, torch.Tensor) else None


def _factor_of(module: nn.Module, outputs: dict[str, torch.Tensor], n: int, c: int,
               fits: Callable[[torch.Tensor], bool]) -> str | None:
    """The submodule whose output, as (N, C, 1, 1), satisfies ``fits``: the last such leaf (a
    Sigmoid rather than the Sequential ending in it), else the last such module."""
    found = [name for name, value in outputs.items() if value.numel() == n * c and fits(value.reshape(n, c, 1, 1))]
    leaves = [name for name in found if next(module.get_submodule(name).children(), None) is None]
    chosen = leaves or found
    return chosen[-1] if chosen else None


# ------------------------------------------------------------------------- what they are made of
Shape = tuple[int, int | None, int]  # (C, hidden, paths) read from the layers


def _eca_layers(layers: list[nn.Module]) -> Shape | None:
    convs = [m for m in layers if isinstance(m, nn.Conv1d)]
    ok = convs and len(convs) == len(layers) and convs[0].in_channels == 1 and convs[-1].out_channels == 1
    return (0, None, 1) if ok else None  # C is not in its layers: the network's probe gives it


def _cbam_layers(layers: list[nn.Module]) -> Shape | None:
    maps = _maps(layers)
    spatial = [m for m in layers if isinstance(m, nn.Conv2d) and m.in_channels == 2 and m.out_channels == 1]
    if len(maps) != 2 or len(spatial) != 1 or maps[0] != maps[1][::-1]:
        return None
    if not _vectors_only(layers, lambda m: m is spatial[0] or _maps([m]) != []):
        return None
    return maps[0][0], maps[0][1], 1


def _gc_layers(layers: list[nn.Module]) -> Shape | None:
    maps = _maps(layers)
    pools = [d for d in maps if d[1] == 1]
    pairs = [d for d in maps if d[1] != 1]
    if not pairs or len(pairs) % 2 or len(pairs) > 4 or len(pools) > 1 or len(maps) != len(pools) + len(pairs):
        return None
    c, h = pairs[0]
    if any(d not in ((c, h), (h, c)) for d in pairs) or (pools and pools[0][0] != c) or (not pools and len(pairs) == 2):
        return None  # without attention pooling, one MLP is an SE block (``native_se``)
    return (c, h, 1) if _vectors_only(layers, lambda m: _maps([m]) != []) else None


def _sk_layers(layers: list[nn.Module]) -> Shape | None:
    maps = _maps(layers)
    convs = [m for m in layers if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    if len(convs) < 2 or len({m.out_channels for m in convs}) != 1:
        return None
    c = convs[0].out_channels
    select = [(a, b) for a, b in maps if b == len(convs) * c]
    if len(select) != 1 or (c, select[0][0]) not in maps or len(maps) != 2:
        return None
    return c, select[0][0], len(convs)


# ------------------------------------------------------------------------- what they compute
Found = tuple[int, int | None, str | None, int]  # (C, hidden, gate path in the module, paths)


def _eca(module: nn.Module, shape: Shape, width: int | None) -> Found | None:
    if width is None:
        return None
    ran = _run(module, (2, width, _SIDE, _SIDE))
    if ran is None:
        return None
    x, out, outputs = ran
    gate = _factor_of(module, outputs, 2, width, lambda g: torch.allclose(out, x * g, rtol=_RTOL, atol=_ATOL))
    if gate is None and out.shape == x.shape:  # a gate called as a function: the factor is out / x
        ratio = out / x
        if not torch.allclose(ratio, ratio.mean(dim=(2, 3), keepdim=True).expand_as(ratio), rtol=_RTOL, atol=1e-5):
            return None
    elif gate is None:
        return None
    return width, None, gate, 1


def _cbam(module: nn.Module, shape: Shape, width: int | None) -> Found | None:
    c = shape[0]
    ran = _run(module, (2, c, _SIDE, _SIDE))
    if ran is None or ran[1].shape != ran[0].shape:
        return None
    x, out, outputs = ran
    ratio = out / x
    if not bool((ratio > 0).all()):
        return None
    log = ratio.log()
    separable = (log.mean(dim=(2, 3), keepdim=True) + log.mean(dim=1, keepdim=True)
                 - log.mean(dim=(1, 2, 3), keepdim=True))
    if not torch.allclose(log, separable, rtol=_RTOL, atol=1e-4):
        return None
    # the channel factor: what is left of out / x is the same for every channel
    gate = _factor_of(module, outputs, 2, c, lambda g: bool((g > 0).all()) and torch.allclose(
        ratio / g, (ratio / g).mean(dim=1, keepdim=True).expand_as(ratio), rtol=_RTOL, atol=1e-4))
    return c, shape[1], gate, 1


def _gc(module: nn.Module, shape: Shape, width: int | None) -> Found | None:
    c = shape[0]
    ran = _run(module, (2, c, _SIDE, _SIDE))
    if ran is None or ran[1].shape != ran[0].shape:
        return None
    x, out, outputs = ran
    xm, om = x.mean(dim=(2, 3), keepdim=True), out.mean(dim=(2, 3), keepdim=True)
    scale = ((x - xm) * (out - om)).sum(dim=(2, 3), keepdim=True) / ((x - xm) ** 2).sum(dim=(2, 3), keepdim=True)
    shift = om - scale * xm
    if not torch.allclose(out, x * scale + shift, rtol=_RTOL, atol=1e-4):
        return None
    target = shift if torch.allclose(scale, torch.ones_like(scale), atol=1e-4) else scale
    gate = _factor_of(module, outputs, 2, c, lambda g: torch.allclose(g, target, rtol=_RTOL, atol=1e-4))
    return c, shape[1], gate, 1


def _sk(module: nn.Module, shape: Shape, width: int | None) -> Found | None:
    c, hidden, paths = shape
    ran = _run(module, (2, width, 2 * _SIDE, 2 * _SIDE)) if width is not None else None
    if ran is None:
        return None
    _x, out, outputs = ran
    feats: list[torch.Tensor] = []
    for other in outputs.values():
        if other.shape == out.shape and not any(torch.equal(other, f) for f in feats):
            feats.append(other)
    for name, value in outputs.items():
        if value.numel() != 2 * paths * c:
            continue
        weights = value.reshape(2, paths, c)
        if not torch.allclose(weights.sum(dim=1), torch.ones(2, c, dtype=weights.dtype), atol=1e-4):
            continue  # not a softmax over the paths
        for chosen in itertools.combinations(feats, paths):
            mixed = sum(w.view(2, c, 1, 1) * f for w, f in zip(weights.unbind(dim=1), chosen))
            if torch.allclose(out, mixed, rtol=_RTOL, atol=1e-4):  # type: ignore[arg-type]
                return c, hidden, name, paths
    return None


#: (kind, site prefix, layers test, function test), the broader kinds first: CBAM holds an SE half.
_KINDS: tuple[tuple[str, str, Callable[[list[nn.Module]], Shape | None],
                    Callable[[nn.Module, Shape, int | None], Found | None]], ...] = (
    ("sk", "SK", _sk_layers, _sk), ("cbam", "CBAM", _cbam_layers, _cbam),
    ("gc", "GC", _gc_layers, _gc), ("eca", "ECA", _eca_layers, _eca))


def _candidates(model: nn.Module) -> list[tuple[str, nn.Module, int, Shape]]:
    """(path, module, kind index, shape) of modules whose layers fit a kind, outermost first."""
    found = []
    for path, module in model.named_modules():
        if not path or next(module.children(), None) is None:
            continue
        layers = _learned(module)
        for i, (_, _, by_layers, _) in enumerate(_KINDS):
            shape = by_layers(layers)
            if shape is not None:
                found.append((path, module, i, shape))
                break
    return found


def discover_attention_sites(model: nn.Module, input_size: int) -> list[Site]:
    """Every attention module ``model`` already has: SK, CBAM, GC and ECA modules, then SE
    modules outside them (``native_se``). Only the outermost module of a kind is reported."""
    candidates = _candidates(model)
    found: list[tuple[str, int, Found]] = []
    if candidates:
        widths: dict[str, int | None] = {}
        calls, _ = record_calls(model, probe_sizes(input_size))
        for call in calls:
            widths.setdefault(call.path, call.in_shape[1] if call.in_shape and len(call.in_shape) == 4 else None)
        for path, module, i, shape in candidates:
            if any(path.startswith(f"{p}.") for p, _, _ in found):
                continue
            result = _KINDS[i][3](module, shape, widths.get(path))
            if result is not None:
                found.append((path, i, result))
    sites = []
    for i, (kind, prefix, _, _) in enumerate(_KINDS):
        own = [(p, r) for p, k, r in found if k == i]
        for (stage, index), (path, (channels, hidden, gate, paths)) in zip(number_sites([p for p, _ in own]), own):
            sites.append(Site(
                name=f"{prefix}_{stage}_{index}", kind=f"native-{kind}", module_path=path,
                gate_path=f"{path}.{gate}" if gate is not None else None, channels=channels, hidden=hidden,
                stage=stage, index=index, position="native", params=count_params(model.get_submodule(path)),
                source="native", paths=paths))
    return sites + discover_native_sites(model, skip=[p for p, _, _ in found])
