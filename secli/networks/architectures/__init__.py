"""Named architectures: which builder makes each one and which adapter knows its sites.

torchvision names are used as they are (``resnet50``, ``vgg16_bn``...); timm models are named
``timm:<name>`` and need the optional ``timm`` extra; which adapter a timm model takes is decided
from the built model (``timm_info``), since timm has hundreds of names.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import nn

from secli.networks.architectures.base import Adapter
from secli.networks.architectures.inception import InceptionAdapter
from secli.networks.architectures.inception_resnet import InceptionResNetV2Adapter, is_inception_resnet_v2
from secli.networks.architectures.mobile import MobileNetV2Adapter, ShuffleNetV2Adapter
from secli.networks.architectures.resnet import ResNetAdapter
from secli.networks.architectures.vgg import VGGAdapter
from secli.util.errors import SecliUsageError, did_you_mean

TIMM_PREFIX = "timm:"


@dataclass(frozen=True)
class ArchInfo:
    """What secli knows of an architecture. ``default_input`` is its native square input side:
    the crop its weights were trained and evaluated at where the weights define one (torchvision's
    ``weights.transforms().crop_size``, timm's ``pretrained_cfg["input_size"]``: EfficientNet-B4 is
    380 px, not 224), else 224; ``input_source`` says which."""

    name: str
    family: str
    adapter: Adapter | None  # None: the network already has SE modules; nothing to inject
    default_input: int = 224
    min_input: int = 32
    input_source: str = "the ImageNet default"

    @property
    def positions(self) -> tuple[str, ...]:
        return self.adapter.se_positions if self.adapter else ()

    @property
    def supports_sk(self) -> bool:
        return bool(self.adapter and self.adapter.supports_sk)


_RESNET = ResNetAdapter()
_VGG = VGGAdapter()


def _torchvision_table() -> dict[str, ArchInfo]:
    table: dict[str, ArchInfo] = {}
    for depth in (18, 34, 50, 101, 152):
        table[f"resnet{depth}"] = ArchInfo(f"resnet{depth}", "resnet", _RESNET)
    for name in ("resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d"):
        table[name] = ArchInfo(name, "resnext", _RESNET)
    for name in ("wide_resnet50_2", "wide_resnet101_2"):
        table[name] = ArchInfo(name, "wide_resnet", _RESNET)
    for depth in (11, 13, 16, 19):
        for suffix in ("", "_bn"):
            table[f"vgg{depth}{suffix}"] = ArchInfo(f"vgg{depth}{suffix}", "vgg", _VGG)
    table["mobilenet_v2"] = ArchInfo("mobilenet_v2", "mobilenet_v2", MobileNetV2Adapter())
    for width in ("0_5", "1_0", "1_5", "2_0"):
        name = f"shufflenet_v2_x{width}"
        table[name] = ArchInfo(name, "shufflenet_v2", ShuffleNetV2Adapter())
    table["inception_v3"] = ArchInfo(
        "inception_v3", "inception_v3", InceptionAdapter("inception_v3", 80), default_input=299, min_input=75
    )
    table["googlenet"] = ArchInfo("googlenet", "googlenet", InceptionAdapter("googlenet", 64), min_input=32)
    native = ["mobilenet_v3_small", "mobilenet_v3_large"]
    native += [f"efficientnet_b{i}" for i in range(8)]
    native += ["efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l"]
    native += [f"regnet_y_{s}" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf", "128gf")]
    for name in native:
        table[name] = ArchInfo(name, "native-se", None)
    return {name: _native_input(info) for name, info in table.items()}


def _native_input(info: ArchInfo) -> ArchInfo:
    """``info`` with the crop of torchvision's DEFAULT weights as its input size (read from the
    weights' metadata; nothing is downloaded), where torchvision defines them."""
    try:
        from torchvision.models import get_model_weights

        weights = get_model_weights(info.name).DEFAULT
        crop = int(weights.transforms().crop_size[0])
    except Exception:  # an architecture without torchvision weights keeps its default
        return info
    return replace(info, default_input=crop, input_source=f"torchvision {weights.name} weights")


ARCHITECTURES: dict[str, ArchInfo] = _torchvision_table()


def torchvision_names() -> list[str]:
    """Every classification model torchvision can build (densenet121, convnext_tiny, vit_b_16...)."""
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def _torchvision_info(name: str) -> ArchInfo:
    """A torchvision model without an adapter: sites by ``--at`` pattern or by structure, its
    own SE modules with ``--block none``; input sizes from its default weights' transforms."""
    from torchvision.models import get_model_weights

    default, least = 224, 32
    try:
        weights = get_model_weights(name).DEFAULT
        default = int(weights.transforms().crop_size[0])
        least = int(weights.meta.get("min_size", (least,))[0])
    except Exception:  # a model without weights keeps ImageNet's sizes
        pass
    return ArchInfo(name, "torchvision", None, default_input=default, min_input=least)


def arch_info(name: str) -> ArchInfo:
    """Look up a name; unknown names get the closest known ones as a hint."""
    if name.startswith(TIMM_PREFIX):
        return ArchInfo(name, "timm", None)
    info = ARCHITECTURES.get(name)
    if info is not None:
        return info
    known = torchvision_names()
    if name in known:
        return _torchvision_info(name)
    raise SecliUsageError(
        f"unknown architecture {name!r}",
        hint=did_you_mean(name, sorted({*ARCHITECTURES, *known})) or "see 'secli inject --list'",
    )


_INCEPTION_RESNET_V2 = InceptionResNetV2Adapter()


def timm_adapter(model: nn.Module) -> Adapter | None:
    """timm networks with ResNet-style stages take the ResNet adapter, Inception-ResNet-v2 its own;
    others only native sites."""
    if all(hasattr(model, f"layer{i}") for i in range(1, 5)):
        return _RESNET
    if is_inception_resnet_v2(model):
        return _INCEPTION_RESNET_V2
    return None


def timm_info(info: ArchInfo, model: nn.Module) -> ArchInfo:
    """``info`` for a built timm model: its adapter, the input size of its pretrained config, and
    for Inception-ResNet-v2 the minimum of Inception v3 (below 75 px its reduction modules have
    nothing to pool)."""
    adapter = timm_adapter(model)
    native = replace(info, adapter=adapter)
    size = _timm_input(model)
    if size is not None:
        native = replace(native, default_input=size, input_source="timm pretrained_cfg")
    if adapter is _INCEPTION_RESNET_V2:
        return replace(native, min_input=75)
    return native


def _timm_input(model: nn.Module) -> int | None:
    """The input side timm's pretrained config gives a model (``input_size`` = (3, H, W))."""
    size = (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
    if isinstance(size, (tuple, list)) and len(size) == 3 and isinstance(size[-1], int):
        return int(size[-1])
    return None
