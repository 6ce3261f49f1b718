"""SE modules a network already has, found by what they are rather than by what they are called.

Every library writes its own SE class (torchvision's ``SqueezeExcitation``, timm's ``SEModule``,
``EffectiveSEModule`` and EfficientNet ``SqueezeExcite``, the legacy SENet ``SEModule``, secli's
own block...), so a list of class names always misses the next one. What they share is their
shape and what they compute:

* structure: their only learned layers are one 1x1 map C -> C or two, C -> h -> C (1x1
  convolutions or linear layers), plus optional per-channel layers at the hidden width
  (a BatchNorm between the FCs); any other layer (a 3x3 or 1-D convolution, a norm at C)
  rules a module out. This is a cheap filter that keeps ECA, SK and convolution stacks out.
* function: on a random positive input their output is the input times a factor that a
  submodule (the gate) produced, or at least one that is constant over H x W per channel.
  This probe rules out lookalikes with the right layers that do not scale their input (an MLP
  or a 1x1 bottleneck).

Found sites are analysed exactly like injected ones: the same ``Site`` records, named in the
paper's style, with ``gate_path`` at the module whose output is the excitation (``None`` when the
gate is a function call inside ``forward``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from secli.networks.sites import Site, count_params, set_module, site_name, stage_of

#: Probe input: batch 2 (so that per-sample factors differ), 4 x 4 positions (so that "constant
#: over H x W" means something), values in [0.5, 1.5] (so that out / x is well defined).
_PROBE_BATCH, _PROBE_SIDE = 2, 4
_RTOL, _ATOL = 1e-4, 1e-6


@dataclass(frozen=True)
class _Shape:
    channels: int
    hidden: int | None


def _map_dims(module: nn.Module) -> tuple[int, int] | None:
    """(in, out) of a channel map that mixes channels only: a 1x1 convolution or a linear layer."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1:
        return module.in_channels, module.out_channels
    return None


def _se_shape(module: nn.Module) -> _Shape | None:
    """C (and h) when the module's learned layers could be an SE block's, else None."""
    if next(module.children(), None) is None:  # a lone 1x1 convolution is a map, not a block
        return None
    maps: list[tuple[int, int]] = []
    others: list[torch.Tensor] = []
    for sub in module.modules():
        own = list(sub.parameters(recurse=False))
        if not own:
            continue
        dims = _map_dims(sub)
        if dims is None:
            if any(p.dim() != 1 for p in own):  # a kxk or 1-D convolution: not an SE block's layer
                return None
            others.extend(own)
        else:
            maps.append(dims)
            if len(maps) > 2:
                return None
    if len(maps) == 1:
        (c_in, c_out), = maps
        return _Shape(c_in, None) if c_in == c_out and not others else None
    if len(maps) != 2:
        return None
    (a_in, a_out), (b_in, b_out) = maps
    if a_in == b_out and a_out == b_in:
        channels, hidden = a_in, a_out
    else:
        return None
    # only per-channel layers at the hidden width may sit between the two maps
    if any(p.dim() != 1 or p.numel() != hidden for p in others):
        return None
    return _Shape(channels, hidden)


def _as_factor(gate: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
    """``gate`` shaped to multiply ``x``: as it is, or (N, C) -> (N, C, 1, 1) for linear FCs."""
    n, c = x.shape[:2]
    if gate.shape in (x.shape, (n, c, 1, 1)):
        return gate
    if gate.numel() == n * c:
        return gate.reshape(n, c, 1, 1)
    return None


def _probe(module: nn.Module, channels: int) -> tuple[bool, str | None]:
    """(scales its input per channel?, relative path of the gate module) from one tiny forward.

    The module runs in eval mode under ``no_grad`` (so BatchNorm statistics stay as they were)
    and every submodule's training flag is restored afterwards.
    """
    try:
        param = next(module.parameters())
    except StopIteration:
        return False, None
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(_PROBE_BATCH, channels, _PROBE_SIDE, _PROBE_SIDE, generator=generator) + 0.5
    x = x.to(device=param.device, dtype=param.dtype)
    outputs: list[tuple[str, bool, torch.Tensor]] = []
    handles = []
    for name, sub in module.named_modules():
        if not name:
            continue
        is_leaf = next(sub.children(), None) is None

        def hook(_m: nn.Module, _i: object, out: object, name: str = name, is_leaf: bool = is_leaf) -> None:
            if isinstance(out, torch.Tensor):
                outputs.append((name, is_leaf, out.detach().clone()))

        handles.append(sub.register_forward_hook(hook))
    modes = {sub: sub.training for sub in module.modules()}
    try:
        module.eval()
        with torch.no_grad():
            out = module(x.clone())
    except Exception:  # a module that cannot take an (N, C, H, W) tensor is no SE block
        return False, None
    finally:
        for handle in handles:
            handle.remove()
        for sub, mode in modes.items():
            sub.training = mode
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        return False, None
    gates = []
    for name, is_leaf, value in outputs:
        factor = _as_factor(value, x)
        if factor is not None and torch.allclose(out, x * factor, rtol=_RTOL, atol=_ATOL):
            gates.append((is_leaf, name))
    if gates:
        # the innermost module that produced the factor (a Sigmoid rather than a Sequential ending in one)
        leaves = [name for is_leaf, name in gates if is_leaf]
        return True, (leaves or [name for _, name in gates])[-1]
    ratio = out / x
    constant = torch.allclose(ratio, ratio.mean(dim=(2, 3), keepdim=True).expand_as(ratio), rtol=_RTOL, atol=_ATOL)
    return constant, None


def discover_native_sites(model: nn.Module, skip: Sequence[str] = ()) -> list[Site]:
    """The SE modules a model already has (MobileNetV3, EfficientNet, RegNetY, timm SE nets...).

    Only the outermost SE module is reported when one wraps another. Names follow
    ``stage_of`` and the order within the stage, e.g. ``SE_2_3``. Modules at or under a path in
    ``skip`` (attention modules of other kinds, such as CBAM's channel half) are left out.
    """
    sites: list[Site] = []
    per_stage: dict[int, int] = {}
    found: list[str] = list(skip)
    for path, module in model.named_modules():
        if "" in found:  # the model itself is one SE block
            break
        if any(path == f or path.startswith(f"{f}.") for f in found):
            continue
        shape = _se_shape(module)
        if shape is None:
            continue
        scales, gate = _probe(module, shape.channels)
        if not scales:
            continue
        found.append(path)
        stage = stage_of(path)
        per_stage[stage] = per_stage.get(stage, 0) + 1
        gate_path = None if gate is None else (f"{path}.{gate}" if path else gate)
        sites.append(
            Site(
                name=site_name("se", stage, per_stage[stage]),
                kind="native-se",
                module_path=path,
                gate_path=gate_path,
                channels=shape.channels,
                hidden=shape.hidden,
                stage=stage,
                index=per_stage[stage],
                position="native",
                params=count_params(module),
                source="native",
            )
        )
    return sites


def strip_native_se(model: nn.Module, sites: list[Site]) -> int:
    """Replace each of ``sites`` (found by ``discover_native_sites``) with ``nn.Identity``: the
    network without its own SE modules, for comparing it with itself as built. An SE module
    returns its input rescaled, so the identity keeps every shape; returns how many went."""
    removed = 0
    for site in sites:
        if site.kind != "native-se" or not site.module_path:
            continue
        set_module(model, site.module_path, nn.Identity())
        removed += 1
    return removed
