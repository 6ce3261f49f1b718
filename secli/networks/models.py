"""Turning what a user typed into a network: an architecture name, ``timm:<name>``, or a file.

Every command accepts the same model references, so they all go through ``load_model``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from secli.blocks.spec import BlockSpec, ModelSpec
from secli.networks.architectures import TIMM_PREFIX, ArchInfo, arch_info, timm_info
from secli.networks.checkpoint import read_checkpoint, read_state_dict
from secli.networks.inject import InjectionReport, inject
from secli.networks.sites import Site
from secli.util.errors import SecliError, SecliUsageError, describe_exception, did_you_mean

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")


@dataclass
class BuiltModel:
    """A network ready for analysis, with the spec that made it and the sites it holds."""

    model: nn.Module
    spec: ModelSpec
    report: InjectionReport
    info: ArchInfo
    source: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def sites(self) -> list[Site]:
        return self.report.sites

    @property
    def label(self) -> str:
        """Short name for tables: the file name for checkpoints, else arch + block."""
        if self.source != self.spec.arch:
            return self.source
        if self.spec.block.kind == "none":
            return self.spec.arch
        return f"{self.spec.arch} + {self.spec.block.label()}"


def looks_like_file(ref: str) -> bool:
    return ref.endswith(CHECKPOINT_SUFFIXES) or Path(ref).is_file() or "/" in ref


def _build_timm(name: str, num_classes: int | None) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise SecliError(
            "timm models need the optional extra", hint="pip install 'secli[timm]'"
        ) from None
    known = timm.list_models()
    if name not in known:
        raise SecliUsageError(f"unknown timm model {name!r}", hint=did_you_mean(name, known))
    kwargs: dict[str, Any] = {"num_classes": num_classes} if num_classes else {}
    return timm.create_model(name, pretrained=False, **kwargs)


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


def _build_torchvision(info: ArchInfo, weights: Any, num_classes: int | None) -> nn.Module:
    from torchvision.models import get_model

    kwargs: dict[str, Any] = {}
    if num_classes:
        kwargs["num_classes"] = num_classes
    if info.name in ("inception_v3", "googlenet") and weights is None:
        kwargs["init_weights"] = True  # the explicit choice silences torchvision's warning
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return get_model(info.name, weights=weights, **kwargs)
    except ValueError as exc:  # e.g. num_classes that disagrees with the weights
        raise SecliUsageError(f"cannot build {info.name}: {exc}") from None
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
                f"{len(mismatched)} with other shapes (first {k}: {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)})"
            )
        if missing:
            parts.append(f"{len(missing)} missing (first {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]})")
        hint = "check --num-classes" if any("fc." in k or "classifier" in k for k in mismatched) else None
        raise SecliError(f"weights in {source} do not fit the model: " + "; ".join(parts), hint=hint)
    model.load_state_dict(state_dict)


def build_base(arch: str, weights: str | None = None, num_classes: int | None = None) -> tuple[nn.Module, ArchInfo]:
    """The base network, with base weights loaded from a local file or a torchvision name."""
    info = arch_info(arch)
    if info.family == "timm":
        model = _build_timm(arch[len(TIMM_PREFIX):], num_classes)
        info = timm_info(info, model)
        if weights:
            load_state_dict_into(model, read_state_dict(weights), weights)
        return model, info
    if weights and looks_like_file(weights):
        model = _build_torchvision(info, None, num_classes)
        load_state_dict_into(model, read_state_dict(weights), weights)
        return model, info
    enum_weights = torchvision_weights(arch, weights) if weights else None
    return _build_torchvision(info, enum_weights, num_classes), info


def build(spec: ModelSpec, load_weights: bool = True, source: str | None = None) -> BuiltModel:
    model, info = build_base(spec.arch, spec.weights if load_weights else None, spec.num_classes)
    report = inject(model, info.adapter, spec.block, spec.arch)
    return BuiltModel(model=model, spec=spec, report=report, info=info, source=source or spec.arch)


def load_checkpoint_model(path: str | Path) -> BuiltModel:
    """Rebuild the network a checkpoint describes, then load its weights (never downloads)."""
    ckpt = read_checkpoint(path)
    spec = ModelSpec.from_dict(ckpt["spec"], source=f"{path} (spec)")
    built = build(spec, load_weights=False, source=Path(path).name)
    load_state_dict_into(built.model, ckpt["state_dict"], str(path))
    built.meta = dict(ckpt.get("meta") or {})
    return built


def load_model(
    ref: str,
    block: BlockSpec | None = None,
    weights: str | None = None,
    num_classes: int | None = None,
) -> BuiltModel:
    """An architecture name (built, then injected with ``block``) or a secli checkpoint file."""
    if looks_like_file(ref):
        if block is not None and block.kind != "none":
            raise SecliUsageError(f"{ref} is a saved model; block options apply to architecture names only")
        return load_checkpoint_model(ref)
    return build(ModelSpec(arch=ref, block=block or BlockSpec(kind="none"), weights=weights, num_classes=num_classes))
