"""``inject()``: the whole ``secli inject`` run as one Python call.

Why a workflow layer: the CLI and a notebook must build the same network from the same options,
so everything between parsing and rendering lives here: laying the block options over a spec
(``blocks.options.resolve_model_spec``), refusing to clobber files before the slow build, saving the
checkpoint and the spec, and checking the added parameters against the kind's closed form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from secli.blocks.options import BlockOptions, resolve_model_spec
from secli.blocks.spec import BlockSpec, ModelSpec, dump_spec_yaml
from secli.networks.architectures import ARCHITECTURES
from secli.networks.builders import object_info
from secli.networks.checkpoint import save_checkpoint
from secli.networks.formula import closed_form
from secli.networks.models import BuiltModel, ModelRef, build, describe_reference, with_kwargs
from secli.util.envelope import envelope
from secli.util.errors import SecliUsageError
from secli.util.outputs import atomic_write_text, check_writable

if TYPE_CHECKING:
    from secli.networks.formula import Check
    from secli.networks.inject import InjectionReport


@dataclass
class InjectResult:
    """An injected network, the spec that rebuilds it, the formula check and the files written."""

    built: BuiltModel
    spec: ModelSpec
    formula: Check | None
    saved: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)  # what was asked: the envelope's inputs

    @property
    def model(self) -> nn.Module:
        return self.built.model

    @property
    def report(self) -> InjectionReport:
        return self.built.report

    def to_dict(self) -> dict[str, Any]:
        """Exactly what ``secli inject --format json`` prints: the results envelope."""

        report = self.report.to_dict()
        base = report["params"]["baseline"]
        report["params"]["added_pct"] = 100.0 * report["params"]["added"] / base if base else None
        results = {
            "label": self.built.label,
            **report,
            "spec": self.spec.to_dict(),
            "saved": list(self.saved),
            "formula": formula_dict(self.formula),
        }
        return envelope("inject", self.inputs, results)


def formula_dict(check: Check | None) -> dict[str, Any] | None:
    """A closed-form check as JSON, with parameter counts as ints where they are whole."""
    if check is None:
        return None
    data = check.to_dict()
    for part in (data, *data.get("stages", [])):
        for key in ("weights_formula", "predicted"):
            if isinstance(part.get(key), float) and part[key].is_integer():
                part[key] = int(part[key])
    return data


def inject(
    arch: ModelRef | None = None,
    *,
    spec: ModelSpec | str | Path | None = None,
    block: str | BlockSpec | BlockOptions | None = None,
    weights: str | None = None,
    num_classes: int | None = None,
    model_kwargs: str | dict[str, Any] | None = None,
    out: str | Path | None = None,
    save_spec: str | Path | None = None,
    force: bool = False,
    list_sites: bool = False,
    **block_options: Any,
) -> InjectResult:
    """Build ``arch`` with blocks at the paper's positions; optionally save it and its spec.

    ``arch``: an architecture name (``resnet50``, ``timm:<name>``), a factory (``file.py:build``,
    ``package.module:build``, called with ``model_kwargs``: a mapping, "key=value,..." or a YAML
    file), or a ``torch.nn.Module`` (a copy is injected; yours is not changed); may be left out
    when ``spec`` names one. Sites come from ``at`` patterns, else the architecture's adapter,
    else its residual structure (``secli.networks.inject.find_targets``); ``list_sites`` only
    records that the sites were asked for (the table then names each one's source). ``spec``: a
    ModelSpec or a YAML spec file; the block options given here override it. ``block``: se | sk |
    eca | none (none: report the SE modules a network already has), or a whole ``BlockSpec``.
    ``block_options``: the other ``BlockSpec`` fields (None: the spec's value, else the paper's
    default): ``ratio`` r, ``min_hidden``, ``position``, ``stages`` ("2,3" or [2, 3]; paper
    numbering), ``squeeze``, ``gate``, ``bias``, ``init``, ``paths`` and ``groups`` (SK),
    ``kernel_size`` (ECA), ``impl`` eager | fused (SE, SK). ``weights``: a local state-dict file or
    a torchvision weights name. ``num_classes``: classifier width. ``out``: write a secli checkpoint
    (spec + state dict); ``save_spec``: write the spec as YAML. Existing files are refused unless
    ``force``, and checked before building so a slow build is not wasted. ``result.to_dict()`` is
    what ``--format json`` prints.
    """
    module = arch if isinstance(arch, nn.Module) else None
    if module is not None and (weights is not None or num_classes is not None or model_kwargs is not None):
        raise SecliUsageError("weights, num_classes and model_kwargs apply to model references; a network "
                              "object is used as it is")
    name = object_info(module).name if module is not None else arch
    model_spec = resolve_model_spec(name, spec, weights, num_classes, block, **block_options)  # type: ignore[arg-type]
    model_spec = with_kwargs(model_spec, model_kwargs)
    if out is not None and save_spec is not None and Path(out).resolve() == Path(save_spec).resolve():
        raise SecliUsageError("--out and --save-spec name the same file")
    for option, path in (("--out", out), ("--save-spec", save_spec)):
        if path is not None:
            # before the slow part
            check_writable(path, force, option, reads=[("the spec", spec), ("the weights", weights)])

    built = build(model_spec, base=module)
    saved = []
    if out is not None:
        save_checkpoint(out, model_spec.to_dict(), built.model.state_dict(), force=force)
        saved.append(str(out))
    if save_spec is not None:
        atomic_write_text(save_spec, dump_spec_yaml(model_spec), force=force)
        saved.append(str(save_spec))
    check = closed_form(built.sites, model_spec.block)
    asked = {"arch": describe_reference(arch), "spec": spec if not isinstance(spec, ModelSpec) else spec.to_dict(),
             "block": block if not isinstance(block, (BlockSpec, BlockOptions)) else _as_inputs(block),
             **block_options, "weights": weights, "num_classes": num_classes, "model_kwargs": model_kwargs, "out": out,
             "save_spec": save_spec, "list_sites": list_sites or None}
    inputs = {key: value for key, value in asked.items() if value is not None}
    return InjectResult(built=built, spec=model_spec, formula=check, saved=saved, inputs=inputs)


def _as_inputs(block: BlockSpec | BlockOptions) -> dict[str, Any]:
    """A block given as an object, as the envelope's ``inputs`` record it."""
    return ModelSpec(arch="-", block=block).to_dict()["block"] if isinstance(block, BlockSpec) else dict(block.values)


def list_architectures() -> list[dict[str, Any]]:
    """The architectures ``inject`` knows, with the SE positions each takes and SK support.

    Typed for programs: ``positions`` a list (empty for networks that have SE modules of their
    own: analyse those with ``--block none``), ``sk`` a boolean. The ``results`` of what
    ``secli inject --list --format json`` prints (see ``architectures_document``).
    """

    rows = []
    for info in ARCHITECTURES.values():
        native = info.family == "native-se"
        rows.append({
            "name": info.name, "family": info.family, "positions": [] if native else list(info.positions),
            "sk": False if native else info.supports_sk, "image_size": info.default_input,
            "image_size_source": info.input_source,
            "note": "has SE modules: analyse them with --block none" if native else None,
        })
    resnet = ARCHITECTURES["resnet50"]
    rows.append({
        "name": "timm:<name>", "family": "timm (extra)", "positions": list(resnet.positions), "sk": True,
        "image_size": None, "image_size_source": "timm pretrained_cfg",
        "note": "ResNet-style timm models as resnet; timm's SE nets: --block none",
    })
    rows.append({
        "name": "<any other>", "family": "pattern | structure", "positions": ["standard", "post"], "sk": True,
        "image_size": 224, "note": "other torchvision and timm names, file.py:build, package.module:build: "
        "--at PATTERN, or residual units found by structure (docs/networks.md)",
    })
    return rows


def architectures_document() -> dict[str, Any]:
    """``secli inject --list --format json``: the architecture list in the results envelope."""

    return envelope("inject", {"list": True}, list_architectures())
