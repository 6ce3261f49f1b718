"""SE modules a network already has (torchvision MobileNetV3/EfficientNet/RegNetY, timm SE nets).

Found sites are analysed exactly like injected ones: the same ``Site`` records, named in the
paper's style.
"""

from __future__ import annotations

import re

from torch import nn

from secli.build.sites import Site, count_params, site_name


# Classes of other libraries that are SE blocks, by name, so that neither torchvision's nor
# timm's module has to be imported to recognise them. Each maps to the attribute holding the
# gate activation whose output is the excitation.
_NATIVE_SE_GATES: dict[str, str] = {
    "torchvision.ops.misc.SqueezeExcitation": "scale_activation",
    "timm.layers.squeeze_excite.SEModule": "gate",
    "timm.layers.squeeze_excite.EffectiveSEModule": "gate",
    "timm.models._efficientnet_blocks.SqueezeExcite": "gate",
}


def _qualified_name(module: nn.Module) -> str:
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def _native_channels(module: nn.Module) -> tuple[int, int | None]:
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) >= 2:
        return convs[-1].out_channels, convs[0].out_channels
    if convs:
        return convs[0].out_channels, None
    return 0, None


def discover_native_sites(model: nn.Module) -> list[Site]:
    """SE modules a model already has (MobileNetV3, EfficientNet, RegNetY, timm SE nets).

    Names follow the first number of the module path (the stage or feature index, with timm's
    ``layerK`` shifted to the paper's K+1) and the order within it, e.g. ``SE_2_3``.
    """
    sites: list[Site] = []
    per_stage: dict[int, int] = {}
    for path, module in model.named_modules():
        gate_attr = _NATIVE_SE_GATES.get(_qualified_name(module))
        if gate_attr is None:
            continue
        numbers = [int(n) for n in re.findall(r"\d+", path)]
        stage = numbers[0] if numbers else 0
        if path.startswith("layer"):
            stage += 1
        per_stage[stage] = per_stage.get(stage, 0) + 1
        channels, hidden = _native_channels(module)
        sites.append(
            Site(
                name=site_name("se", stage, per_stage[stage]),
                kind="native-se",
                module_path=path,
                gate_path=f"{path}.{gate_attr}" if hasattr(module, gate_attr) else None,
                channels=channels,
                hidden=hidden,
                stage=stage,
                index=per_stage[stage],
                position="native",
                params=count_params(module),
            )
        )
    return sites
