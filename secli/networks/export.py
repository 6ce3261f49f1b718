"""``export()``: a secli model as a file that runs without secli: TorchScript, PT2 or ONNX.

Why: a checkpoint (spec + state dict) needs secli to rebuild the network, because injection
changes the module tree (``layer1.0.bn3`` becomes ``layer1.0.bn3.0`` and ``.1``). TorchScript
(``torch.jit``), PT2 (``torch.export``) and ONNX files carry the graph with the weights, so
``torch.jit.load(f)``, ``torch.export.load(f).module()`` or an onnxruntime session is all a user
needs. How each format is written and read: ``secli.networks.export_formats``.

The model is exported in eval mode without gradients. Fused SE/SK blocks (an autograd Function)
run their eager composition there (the Function pays off only when a backward is needed), so the
graph holds ordinary ops and the same parameters; if an exporter still fails on a model, it is
retried inside ``eager_composition()`` and the result says so. The batch, height and width are
asked to stay free; which ones do is found by running the file, not assumed. The bytes are
checked before they are written: loaded back from memory (ONNX: in onnxruntime), run at the
export's shape and at another batch and image size, compared with the secli model's logits, and
scanned for this machine's paths (home, working folder, Python prefix, temporary folder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from secli.blocks.options import resolve_model_spec
from secli.kernels.dispatch import eager_composition
from secli.networks.builders import object_info
from secli.networks.export_check import ATOL, RTOL, verify
from secli.networks.export_formats import DIM_NAMES, OPSET, WRITERS, require_onnx
from secli.networks.export_privacy import machine_strings_in, portable
from secli.networks.models import (
    BuiltModel,
    ModelRef,
    build,
    describe_reference,
    load_model,
    looks_like_file,
    with_kwargs,
)
from secli.util.checks import check_image_size
from secli.util.envelope import envelope
from secli.util.errors import SecliError, SecliUsageError, describe_exception, did_you_mean
from secli.util.outputs import atomic_write, check_writable

if TYPE_CHECKING:
    import torch

#: The file kinds ``export`` writes (the CLI's ``--to`` spells them literally; a test compares).
TARGETS: tuple[str, ...] = ("torchscript", "pt2", "onnx")
#: How a user loads each kind, shown in the result (``{}`` is the file name); docs/export.md
#: gives the whole recipe (TorchScript without torch's FutureWarning, ONNX inputs).
LOADERS = {"torchscript": 'torch.jit.load("{}")', "pt2": 'torch.export.load("{}").module()',
           "onnx": 'onnxruntime.InferenceSession("{}")'}
#: Where each kind is checked before it is written.
CHECKED_IN = {"torchscript": "plain torch (torch.jit.load)", "pt2": "plain torch (torch.export.load)",
              "onnx": "onnxruntime (CPU)"}
#: The name of the JSON document stored inside the file (spec, classes, preprocessing).
EXTRA_FILE = "secli.json"
#: Verification batch: 2, so a graph that baked in batch 1 would be caught by the dynamic check.
BATCH = 2
#: The dimensions asked to stay free, in the order they are given up when an exporter refuses.
DIMS_TRIED: tuple[tuple[int, ...], ...] = ((0, 2, 3), (0,), ())


@dataclass
class ExportResult:
    """What was exported, how it was checked, and how to load it."""

    inputs: dict[str, Any]
    path: str
    to: str
    label: str
    spec: dict[str, Any]
    input_shape: list[int]
    dynamic_dims: list[str]  # of batch, height, width: those that ran other sizes with secli's logits
    max_abs_diff: float
    fused_sites: int
    eager_fallback: bool  # the first try failed; exported inside ``eager_composition()``
    checked_shapes: list[str] = field(default_factory=list)
    preprocess: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def dynamic_batch(self) -> bool:
        return "batch" in self.dynamic_dims

    @property
    def load(self) -> str:
        """The one line that loads the file (plain PyTorch, or onnxruntime)."""
        return LOADERS[self.to].format(self.path)

    def to_dict(self) -> dict[str, Any]:
        """Exactly what ``secli export --format json`` prints: the common envelope."""
        results = {
            "file": self.path, "to": self.to, "model": self.label, "spec": self.spec,
            "input_shape": self.input_shape, "dynamic_batch": self.dynamic_batch, "dynamic_dims": self.dynamic_dims,
            "opset": OPSET if self.to == "onnx" else None, "verified": True, "checked_in": CHECKED_IN[self.to],
            "checked_shapes": self.checked_shapes, "max_abs_diff": self.max_abs_diff, "atol": ATOL, "rtol": RTOL,
            "fused_sites": self.fused_sites, "eager_fallback": self.eager_fallback, "preprocess": self.preprocess,
            "load": self.load, "notes": list(self.notes),
        }
        return envelope("export", self.inputs, results)


def export(
    model: ModelRef | None = None,
    *,
    to: str | None = None,
    out: str | Path | None = None,
    image_size: int | None = None,
    force: bool = False,
    spec: Any = None,
    weights: str | None = None,
    num_classes: int | None = None,
    block: str | None = None,
    model_kwargs: str | dict[str, Any] | None = None,
    trust_code: bool = False,
    **block_options: Any,
) -> ExportResult:
    """Export ``model`` (a secli checkpoint, or a network built with the block options as
    ``inject`` builds it: a name, a factory ``file.py:build`` with ``model_kwargs``, or a
    ``torch.nn.Module``) to ``out`` as ``to`` = torchscript | pt2 | onnx.

    ``image_size``: the example input's side (default: the checkpoint's training size, else the
    architecture's); ``dynamic_dims`` of the result says which of batch, height and width run other
    sizes (checked). Block options are ``inject``'s. ``trust_code``: let a checkpoint made from a
    factory import it. The file is verified before it is written; ONNX needs the ``onnx`` extra.
    """
    to = check_target(to)
    image_size = check_image_size("--image-size", image_size)
    if out is None:
        raise SecliUsageError(f"say where to write the {to} file with --out FILE")
    if to == "onnx":
        require_onnx()  # before the slow part
    given = {k: v for k, v in {"block": block, **block_options}.items() if v is not None}
    if isinstance(model, str) and looks_like_file(model):
        extra = [name for name, value in (("spec", spec), ("weights", weights), ("num_classes", num_classes),
                                          ("model_kwargs", model_kwargs)) if value is not None]
        if given or extra:
            option = (list(given) + extra)[0].replace("_", "-")
            raise SecliUsageError(f"{model} is a saved model; --{option} applies to architecture names only")
        check_writable(out, force, reads=[("the model", model)])  # before the slow part
        built = load_model(model, trust_code=trust_code)
    else:
        module = model if isinstance(model, nn.Module) else None
        name = object_info(module).name if module is not None else model if isinstance(model, str) else None
        model_spec = with_kwargs(resolve_model_spec(name, spec, weights, num_classes, block, **block_options),
                                 model_kwargs)
        check_writable(out, force, reads=[("the spec", spec), ("the weights", weights)])
        built = build(model_spec, base=module)
    inputs = {"model": describe_reference(model), "to": to, "out": str(out), "image_size": image_size,
              "spec": str(spec) if spec else None, "weights": weights, "num_classes": num_classes, **given}
    if model_kwargs is not None:
        inputs["model_kwargs"] = model_kwargs
    return export_built(built, to, out, image_size, force, inputs)


def check_target(to: str | None) -> str:
    """``to`` as one of ``TARGETS``; anything else is a usage error naming the choices."""
    if to is None:
        raise SecliUsageError(f"say what to export to with --to {' | '.join(TARGETS)}")
    if to not in TARGETS:
        raise SecliUsageError(f"unknown export format {to!r}",
                              hint=did_you_mean(to, list(TARGETS)) or f"choose {' or '.join(TARGETS)}")
    return to


def export_built(built: BuiltModel, to: str, out: str | Path, image_size: int | None, force: bool,
                 inputs: dict[str, Any]) -> ExportResult:
    """Export ``built`` to ``out``, verified before it is written (see the module doc)."""
    import torch

    to = check_target(to)
    size = image_size or _int_or_none(built.meta.get("input_size")) or built.info.default_input
    model = built.model.cpu().eval()
    example = torch.randn(BATCH, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = _logits(model(example), built.label)
    fused = sum(1 for site in built.sites if site.impl == "fused")
    info = {"format": "secli-export", "spec": portable(built.spec.to_dict()), "meta": portable(built.meta),
            "input_shape": list(example.shape), "mode": "eval"}
    extra = {EXTRA_FILE: json.dumps(info, default=str)}
    fallback, notes = False, []
    try:
        data, asked = _serialise(model, example, to, extra)
    except SecliError:
        raise
    except Exception as exc:  # exporters raise many types; retry with plain ops
        if not fused:
            raise SecliError(f"cannot export {built.label} to {to}: {describe_exception(exc, 160)}") from None
        with eager_composition():
            try:
                data, asked = _serialise(model, example, to, extra)
            except Exception as again:
                raise SecliError(f"cannot export {built.label} to {to}: {describe_exception(again, 160)}") from None
        fallback = True
        notes.append(f"{to} could not trace the fused blocks ({describe_exception(exc, 80)}); exported their eager "
                     "composition (same parameters)")
    if fused and not fallback:
        notes.append(f"{fused} fused sites run their eager composition at inference (no backward): the file holds "
                     "ordinary ops and the same parameters")
    diff, free, shapes = verify(data, to, model, example, reference, asked, built.info.min_input)
    fixed = [DIM_NAMES[d] for d in (0, 2, 3) if DIM_NAMES[d] not in free]
    if fixed:
        notes.append(f"fixed {' and '.join(fixed)} ({'x'.join(str(n) for n in example.shape)}): the file does not run "
                     "other sizes there")
    leaked = machine_strings_in(data)
    if leaked:
        raise SecliError(f"the {to} file would hold {leaked[0]!r}, a path of this machine; nothing written")
    if to == "pt2":
        notes.append("load with torch.export.load(f).module(): the module is the eval-mode graph; its .eval() and "
                     ".train() raise NotImplementedError (docs/export.md)")
    path = atomic_write(out, lambda handle: handle.write(data), force)
    preprocess = {k: built.meta[k] for k in ("input_size", "resize", "mean", "std") if built.meta.get(k) is not None}
    return ExportResult(
        inputs=inputs, path=str(path), to=to, label=built.label, spec=built.spec.to_dict(),
        input_shape=list(example.shape), dynamic_dims=free, max_abs_diff=diff, fused_sites=fused,
        eager_fallback=fallback, checked_shapes=shapes, preprocess=preprocess or None, notes=notes,
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _logits(output: Any, label: str) -> torch.Tensor:
    import torch

    if isinstance(output, torch.Tensor):
        return output
    raise SecliError(f"{label} returns {type(output).__name__} in eval mode, not a tensor of logits; "
                     "cannot verify an export")


def _serialise(model: Any, example: torch.Tensor, to: str, extra: dict[str, str]) -> tuple[bytes, tuple[int, ...]]:
    """The file's bytes and the dimensions asked to stay free: all of batch, height and width,
    else the batch alone, else none, as far as the exporter accepts (TorchScript asks none: a
    trace records ops, and the check finds which sizes run)."""
    if to == "torchscript":
        return WRITERS[to](model, example, extra, ()), (0, 2, 3)
    failure: Exception | None = None
    for dims in DIMS_TRIED:
        try:
            return WRITERS[to](model, example, extra, dims), dims
        except SecliError:
            raise
        except Exception as exc:  # a model that specialises on a size; ask for fewer free dims
            failure = failure or exc
    assert failure is not None
    raise failure
