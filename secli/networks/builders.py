"""The base network a reference names, before any block: torchvision, timm, a user's factory.

``build_base`` is the one place a model reference becomes an ``nn.Module`` and its
``ArchInfo`` (adapter, input sizes). A user's factory is imported only when the caller says the
reference is trusted: the user named it (command line, API call, their spec), or passed
``trust_code`` for a checkpoint that names it (``secli.networks.references``).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

from torch import nn

from secli.networks.architectures import TIMM_PREFIX, ArchInfo, arch_info, timm_info
from secli.networks.checkpoint import read_state_dict
from secli.networks.references import (
    OBJECT_PREFIX,
    call_factory,
    check_plain_python_file,
    load_factory,
    looks_like_file,
    parse_factory,
    takes_keyword,
)
from secli.util.errors import SecliError, SecliUsageError, describe_exception, did_you_mean

#: The input side a network is probed and counted at when it does not say (ImageNet's).
DEFAULT_INPUT = 224


def _build_timm(name: str, num_classes: int | None, kwargs: dict[str, Any]) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise SecliError(
            "timm models need the optional extra", hint="pip install 'secli[timm]'"
        ) from None
    known = timm.list_models()
    if name not in known:
        raise SecliUsageError(f"unknown timm model {name!r}", hint=did_you_mean(name, known))
    if num_classes:
        kwargs = {"num_classes": num_classes, **kwargs}
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except (TypeError, ValueError, KeyError, AssertionError) as exc:
        if not kwargs:
            raise
        raise SecliUsageError(f"cannot build timm:{name} with {_listed(kwargs)}: "
                              f"{describe_exception(exc, 120)}") from None


def _listed(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())[:160]


def torchvision_weights(arch: str, name: str) -> Any:
    from torchvision.models import get_model_weights

    enum = get_model_weights(arch)
    key = name.split(".")[-1]
    if key == "DEFAULT":
        return enum.DEFAULT
    try:
        return enum[key]
    except KeyError:
        raise SecliUsageError(
            f"unknown weights {name!r} for {arch}",
            hint=f"choose one of: {', '.join(w.name for w in enum)}, or a local state-dict file",
        ) from None


def _build_torchvision(info: ArchInfo, weights: Any, num_classes: int | None, extra: dict[str, Any]) -> nn.Module:
    from torchvision.models import get_model

    kwargs: dict[str, Any] = dict(extra)
    if num_classes:
        kwargs["num_classes"] = num_classes
    if info.name in ("inception_v3", "googlenet") and weights is None:
        kwargs.setdefault("init_weights", True)  # the explicit choice silences torchvision's warning
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return get_model(info.name, weights=weights, **kwargs)
    except (ValueError, TypeError) as exc:  # e.g. num_classes that disagrees with the weights, unknown kwargs
        raise SecliUsageError(f"cannot build {info.name}: {describe_exception(exc, 160)}") from None
    except (OSError, RuntimeError) as exc:  # downloads without a network end here
        if weights is None:
            raise
        raise SecliError(
            f"could not fetch weights {weights} ({describe_exception(exc, 120)})",
            hint="download them where there is internet, or pass a local state-dict file",
        ) from None


def load_state_dict_into(model: nn.Module, state_dict: dict[str, Any], source: str) -> None:
    """Strict loading, with a one-line summary of what does not fit instead of a wall of keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        k for k in own if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            k = mismatched[0]
            parts.append(
                f"{len(mismatched)} with other shapes (first {k}: {tuple(state_dict[k].shape)} vs "
                f"{tuple(own[k].shape)})"
            )
        if missing:
            parts.append(f"{len(missing)} missing (first {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]})")
        hint = "check --num-classes" if any("fc." in k or "classifier" in k for k in mismatched) else None
        raise SecliError(f"weights in {source} do not fit the model: " + "; ".join(parts), hint=hint)
    if getattr(state_dict, "_metadata", None) is None and getattr(own, "_metadata", None) is not None:
        # a state dict rebuilt key by key (a checkpoint) lost the module versions some
        # networks' loaders read (torchvision's MNASNet): they are the model's own
        state_dict = OrderedDict(state_dict)
        state_dict._metadata = own._metadata  # type: ignore[attr-defined]
    model.load_state_dict(state_dict)


def declared_input(model: nn.Module) -> int:
    """The input side a network says it takes: an ``input_size`` attribute (a side, or a shape
    ending in one), else ImageNet's 224."""
    size = getattr(model, "input_size", None)
    if isinstance(size, (tuple, list)) and size:
        size = size[-1]
    return size if isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= 4096 else DEFAULT_INPUT


def object_info(model: nn.Module) -> ArchInfo:
    """``ArchInfo`` for a network given as an object or made by a factory: no adapter (its sites
    come from ``--at`` patterns or its structure), its declared input size."""
    cls = type(model)
    size = declared_input(model)
    return ArchInfo(f"{OBJECT_PREFIX}{cls.__module__}.{cls.__qualname__}", "module", None, default_input=size,
                    min_input=min(size, 32))


def _factory_model(arch: str, num_classes: int | None, kwargs: dict[str, Any], base_dir: Path | None) -> nn.Module:
    factory = parse_factory(arch)
    assert factory is not None
    func = load_factory(factory, base_dir)
    if num_classes is not None:
        if not takes_keyword(func, "num_classes"):
            raise SecliUsageError(f"{factory.reference} takes no num_classes argument; the head of "
                                  "its model is its own",
                                  hint="drop --num-classes, or give the factory a num_classes parameter")
        if kwargs.get("num_classes", num_classes) != num_classes:
            raise SecliUsageError("--num-classes and num_classes in --model-kwargs differ; give one")
        kwargs = {**kwargs, "num_classes": num_classes}
    return call_factory(factory, func, kwargs)


def build_base(
    arch: str, weights: str | None = None, num_classes: int | None = None, model_kwargs: dict[str, Any] | None = None,
    base_dir: Path | None = None,
) -> tuple[nn.Module, ArchInfo]:
    """The base network of a reference (a name, ``timm:<name>`` or a user's factory), with base
    weights from a local file or a torchvision name. The caller has checked that a factory may
    be imported (``secli.networks.models``); ``base_dir``: where a checkpoint's relative factory
    file is also looked for."""
    kwargs = dict(model_kwargs or {})
    check_plain_python_file(arch)
    if arch.startswith(OBJECT_PREFIX):
        raise SecliUsageError(f"{arch} names a Python object secli cannot rebuild",
                              hint="Python: pass the network itself (secli.api.load_model(path, base=YourNet()))")
    if parse_factory(arch) is not None:
        model = _factory_model(arch, num_classes, kwargs, base_dir)
        info = object_info(model)
        info = ArchInfo(arch, "factory", None, info.default_input, info.min_input)
        if weights:
            if not looks_like_file(weights):
                raise SecliUsageError(f"--weights {weights}: a factory's model takes a local state-dict file")
            load_state_dict_into(model, read_state_dict(weights), weights)
        return model, info
    info = arch_info(arch)
    if info.family == "timm":
        model = _build_timm(arch[len(TIMM_PREFIX):], num_classes, kwargs)
        info = timm_info(info, model)
        if weights:
            load_state_dict_into(model, read_state_dict(weights), weights)
        return model, info
    if weights and looks_like_file(weights):
        model = _build_torchvision(info, None, num_classes, kwargs)
        load_state_dict_into(model, read_state_dict(weights), weights)
        return model, info
    enum_weights = torchvision_weights(arch, weights) if weights else None
    return _build_torchvision(info, enum_weights, num_classes, kwargs), info
