"""Models from anywhere: every model reference becomes the same ``BuiltModel``.

A reference is a name (``resnet50``, ``timm:convnext_atto``), a user's factory
(``file.py:build``, ``package.module:build``), a secli checkpoint file, or, in Python, an
``nn.Module``. ``load_model`` resolves any of them; every command and API function goes through
it (or ``build``, for a spec), so nothing downstream learns where a model came from. Where its
blocks go is ``inject``'s business: ``--at`` patterns, an adapter, or the network's structure.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from secli.blocks.spec import BlockSpec, ModelSpec
from secli.networks.architectures import ArchInfo
from secli.networks.builders import build_base, load_state_dict_into, object_info, torchvision_weights
from secli.networks.checkpoint import read_checkpoint
from secli.networks.inject import InjectionReport, inject
from secli.networks.references import (
    CHECKPOINT_SUFFIXES,
    OBJECT_PREFIX,
    check_plain_python_file,
    looks_like_file,
    parse_factory,
    parse_model_kwargs,
    refuse_untrusted,
)
from secli.networks.sites import Site
from secli.util.errors import SecliUsageError

__all__ = [
    "CHECKPOINT_SUFFIXES", "BuiltModel", "ModelRef", "build", "build_base", "describe_reference", "from_module",
    "load_checkpoint_model", "load_model", "load_state_dict_into", "looks_like_file", "torchvision_weights",
]

#: What every API function takes as a model: a reference (name, factory, checkpoint) or a network.
ModelRef = str | nn.Module


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
        """Short name for tables: the file name for checkpoints, else the network + block."""
        if self.source != self.spec.arch:
            return self.source
        name = short_name(self.spec.arch)
        if self.spec.block.kind == "none":
            return name
        return f"{name} + {self.spec.block.label()}"


def short_name(arch: str) -> str:
    """``python:pkg.mod.Net`` -> ``Net``; every other reference as it is."""
    return arch.removeprefix(OBJECT_PREFIX).rsplit(".", 1)[-1] if arch.startswith(OBJECT_PREFIX) else arch


def describe_reference(model: Any) -> Any:
    """A model argument as the results' ``inputs`` record it: a network object by its class."""
    if isinstance(model, nn.Module):
        return f"{OBJECT_PREFIX}{type(model).__module__}.{type(model).__qualname__}"
    if isinstance(model, (list, tuple)):
        return [describe_reference(m) for m in model]
    return model


def build(spec: ModelSpec, load_weights: bool = True, source: str | None = None, base_dir: Path | None = None,
          base: nn.Module | None = None) -> BuiltModel:
    """The network ``spec`` describes, with its blocks. ``base``: the network itself, for a spec
    whose ``arch`` names a Python object (it is copied; the caller's object is never changed)."""
    if base is not None:
        model, info = copy.deepcopy(base), object_info(base)
    else:
        model, info = build_base(spec.arch, spec.weights if load_weights else None, spec.num_classes,
                                 spec.model_kwargs, base_dir)
    report = inject(model, info.adapter, spec.block, short_name(spec.arch), info.default_input)
    return BuiltModel(model=model, spec=spec, report=report, info=info, source=source or spec.arch)


def from_module(module: nn.Module, block: BlockSpec | None = None) -> BuiltModel:
    """A network given as an object, with ``block`` injected into a copy of it."""
    if not isinstance(module, nn.Module):
        raise SecliUsageError(f"expected a model reference or a torch.nn.Module, got {type(module).__name__}")
    spec = ModelSpec(arch=object_info(module).name, block=block or BlockSpec(kind="none"))
    return build(spec, base=module)


def load_checkpoint_model(path: str | Path, trust_code: bool = False, base: nn.Module | None = None) -> BuiltModel:
    """Rebuild the network a checkpoint describes, then load its weights (never downloads).

    A checkpoint made from a user's factory imports that code only with ``trust_code``; one
    made from a network object needs that network (``base``, before its blocks)."""
    ckpt = read_checkpoint(path)
    spec = ModelSpec.from_dict(ckpt["spec"], source=f"{path} (spec)")
    factory = parse_factory(spec.arch)
    if factory is not None and not trust_code:
        refuse_untrusted(factory, str(path))
    if spec.arch.startswith(OBJECT_PREFIX) and base is None:
        raise SecliUsageError(f"{path} was made from a Python object ({short_name(spec.arch)}); "
                              "secli cannot rebuild it",
                              hint="Python: secli.api.load_model(path, base=YourNet()) with the "
                                   "network before its blocks")
    built = build(spec, load_weights=False, source=Path(path).name, base_dir=Path(path).resolve().parent,
                  base=base if spec.arch.startswith(OBJECT_PREFIX) else None)
    load_state_dict_into(built.model, ckpt["state_dict"], str(path))
    built.meta = dict(ckpt.get("meta") or {})
    return built


def load_model(
    ref: ModelRef | Path,
    block: BlockSpec | None = None,
    weights: str | None = None,
    num_classes: int | None = None,
    model_kwargs: str | dict[str, Any] | None = None,
    trust_code: bool = False,
    base: nn.Module | None = None,
) -> BuiltModel:
    """Any model reference, as a ``BuiltModel``.

    ``ref``: an architecture name or ``timm:<name>``, a factory ``file.py:build`` or
    ``package.module:build`` (called with ``model_kwargs``: a mapping, ``"key=value,..."`` or a
    YAML file), or a ``torch.nn.Module`` (copied, then injected with ``block``); or a secli
    checkpoint (as saved: no block, weights or kwargs; ``trust_code`` to let one made from a
    factory import it; ``base``: the network of one made from an object).
    """
    if isinstance(ref, Path):
        ref = str(ref)
    if isinstance(ref, nn.Module):
        for name, value in (("weights", weights), ("num_classes", num_classes), ("model_kwargs", model_kwargs)):
            if value is not None:
                raise SecliUsageError(f"{name} applies to model references; a network object is used as it is")
        return from_module(ref, block)
    check_plain_python_file(ref)
    if looks_like_file(ref):
        given = [n for n, v in (("weights", weights), ("num_classes", num_classes), ("model_kwargs", model_kwargs))
                 if v is not None] + (["block"] if block is not None and block.kind != "none" else [])
        if given:
            raise SecliUsageError(f"{ref} is a saved model; --{given[0].replace('_', '-')} applies to "
                                  "architecture names only")
        return load_checkpoint_model(ref, trust_code, base)
    spec = ModelSpec(arch=ref, block=block or BlockSpec(kind="none"), weights=weights, num_classes=num_classes,
                     model_kwargs=parse_model_kwargs(model_kwargs))
    return build(spec)


def with_kwargs(spec: ModelSpec, model_kwargs: str | dict[str, Any] | None) -> ModelSpec:
    """``spec`` with ``--model-kwargs`` laid over its own (given keys win)."""
    given = parse_model_kwargs(model_kwargs)
    if not given:
        return spec
    return dataclasses.replace(spec, model_kwargs={**(spec.model_kwargs or {}), **given})
