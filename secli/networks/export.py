"""``export()``: a secli model as a file that plain PyTorch loads and runs without secli.

Why: a checkpoint (spec + state dict) needs secli to rebuild the network, because injection
changes the module tree (``layer1.0.bn3`` becomes ``layer1.0.bn3.0`` and ``.1``). TorchScript
(``torch.jit.trace`` + ``torch.jit.save``) and PT2 (``torch.export.export`` + ``torch.export.save``)
files carry the graph with the weights, so ``torch.jit.load(f)`` or
``torch.export.load(f).module()`` is all a user needs.

The model is exported in eval mode without gradients. Fused SE/SK blocks (an autograd Function)
run their eager composition there (the Function pays off only when a backward is needed), so the
graph holds ordinary ops and the same parameters; if an exporter still fails on a model, it is
retried inside ``eager_composition()`` and the result says so. The bytes are checked before they
are written: loaded back from memory, run, and compared with the secli model's logits.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secli.blocks.options import resolve_model_spec
from secli.kernels.dispatch import eager_composition
from secli.networks.models import BuiltModel, build, load_model, looks_like_file
from secli.util.checks import check_image_size
from secli.util.envelope import envelope
from secli.util.errors import SecliError, SecliUsageError, describe_exception, did_you_mean
from secli.util.outputs import atomic_write, check_writable

if TYPE_CHECKING:
    import torch
    from torch import nn

#: The file kinds ``export`` writes (the CLI's ``--to`` spells them literally; a test compares).
TARGETS: tuple[str, ...] = ("torchscript", "pt2")
#: How a user loads each kind, shown in the result (``{}`` is the file name).
LOADERS = {"torchscript": 'torch.jit.load("{}")', "pt2": 'torch.export.load("{}").module()'}
#: The name of the JSON document stored inside the file (spec, classes, preprocessing).
EXTRA_FILE = "secli.json"
#: Exported logits must match the secli model's within these (float32, same ops).
ATOL, RTOL = 1e-4, 1e-4
#: Verification batch: 2, so a graph that baked in batch 1 would be caught by the dynamic check.
BATCH = 2


@dataclass
class ExportResult:
    """What was exported, how it was checked, and how to load it."""

    inputs: dict[str, Any]
    path: str
    to: str
    label: str
    spec: dict[str, Any]
    input_shape: list[int]
    dynamic_batch: bool
    max_abs_diff: float
    fused_sites: int
    eager_fallback: bool  # the first try failed; exported inside ``eager_composition()``
    preprocess: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def load(self) -> str:
        """The one line of plain PyTorch that loads the file."""
        return LOADERS[self.to].format(self.path)

    def to_dict(self) -> dict[str, Any]:
        """Exactly what ``secli export --format json`` prints: the common envelope."""
        results = {
            "file": self.path, "to": self.to, "model": self.label, "spec": self.spec,
            "input_shape": self.input_shape, "dynamic_batch": self.dynamic_batch,
            "verified": True, "max_abs_diff": self.max_abs_diff, "atol": ATOL, "rtol": RTOL,
            "fused_sites": self.fused_sites, "eager_fallback": self.eager_fallback, "preprocess": self.preprocess,
            "load": self.load, "notes": list(self.notes),
        }
        return envelope("export", self.inputs, results)


def export(
    model: str | None = None,
    *,
    to: str | None = None,
    out: str | Path | None = None,
    image_size: int | None = None,
    force: bool = False,
    spec: Any = None,
    weights: str | None = None,
    num_classes: int | None = None,
    block: str | None = None,
    **block_options: Any,
) -> ExportResult:
    """Export ``model`` (a secli checkpoint, or an architecture name built with the block options
    as ``inject`` builds it) to ``out`` as ``to`` = torchscript | pt2, for plain PyTorch.

    ``image_size``: the side of the example input (default: the checkpoint's training size, else
    the architecture's); TorchScript and PT2 (batch dimension free where torch.export allows it)
    run other batch sizes. Block options are ``inject``'s (``block``, ``ratio``, ``impl``...).
    The file is verified before it is written; an existing ``out`` is refused unless ``force``.
    """
    to = check_target(to)
    image_size = check_image_size("--image-size", image_size)
    if out is None:
        raise SecliUsageError(f"say where to write the {to} file with --out FILE")
    given = {k: v for k, v in {"block": block, **block_options}.items() if v is not None}
    if model is not None and looks_like_file(model):
        extra = [name for name, value in (("spec", spec), ("weights", weights), ("num_classes", num_classes)) if value is not None]
        if given or extra:
            option = (list(given) + extra)[0].replace("_", "-")
            raise SecliUsageError(f"{model} is a saved model; --{option} applies to architecture names only")
        check_writable(out, force, reads=[("the model", model)])  # before the slow part
        built = load_model(model)
    else:
        model_spec = resolve_model_spec(model, spec, weights, num_classes, block, **block_options)
        check_writable(out, force, reads=[("the spec", spec), ("the weights", weights)])
        built = build(model_spec)
    inputs = {"model": model, "to": to, "out": str(out), "image_size": image_size, "spec": str(spec) if spec else None,
              "weights": weights, "num_classes": num_classes, **given}
    return export_built(built, to, out, image_size, force, inputs)


def check_target(to: str | None) -> str:
    """``to`` as one of ``TARGETS``; anything else is a usage error naming the choices."""
    if to is None:
        raise SecliUsageError(f"say what to export to with --to {' | '.join(TARGETS)}")
    if to not in TARGETS:
        raise SecliUsageError(f"unknown export format {to!r}", hint=did_you_mean(to, list(TARGETS)) or f"choose {' or '.join(TARGETS)}")
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
    info = {"format": "secli-export", "spec": built.spec.to_dict(), "meta": built.meta, "input_shape": list(example.shape)}
    extra = {EXTRA_FILE: json.dumps(info, default=str)}
    fallback, notes = False, []
    try:
        data, dynamic = _serialise(model, example, to, extra)
    except Exception as exc:  # noqa: BLE001 - exporters raise many types; retry with plain ops
        if not fused:
            raise SecliError(f"cannot export {built.label} to {to}: {describe_exception(exc, 160)}") from None

        with eager_composition():
            try:
                data, dynamic = _serialise(model, example, to, extra)
            except Exception as again:  # noqa: BLE001
                raise SecliError(f"cannot export {built.label} to {to}: {describe_exception(again, 160)}") from None
        fallback = True
        notes.append(f"{to} could not trace the fused blocks ({describe_exception(exc, 80)}); exported their eager "
                     "composition (same parameters)")
    if fused and not fallback:
        notes.append(f"{fused} fused sites run their eager composition at inference (no backward): the file holds "
                     "ordinary ops and the same parameters")
    diff, dynamic = _verify(data, to, example, reference, dynamic)
    if not dynamic:
        notes.append(f"the batch size is fixed at {BATCH}: the exported graph does not run other batch sizes")
    path = atomic_write(out, lambda handle: handle.write(data), force)
    preprocess = {k: built.meta[k] for k in ("input_size", "resize", "mean", "std") if built.meta.get(k) is not None}
    return ExportResult(
        inputs=inputs, path=str(path), to=to, label=built.label, spec=built.spec.to_dict(),
        input_shape=list(example.shape), dynamic_batch=dynamic, max_abs_diff=diff, fused_sites=fused, eager_fallback=fallback,
        preprocess=preprocess or None, notes=notes,
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _logits(output: Any, label: str) -> torch.Tensor:
    import torch

    if isinstance(output, torch.Tensor):
        return output
    raise SecliError(f"{label} returns {type(output).__name__} in eval mode, not a tensor of logits; cannot verify an export")


def _serialise(model: nn.Module, example: torch.Tensor, to: str, extra: dict[str, str]) -> tuple[bytes, bool]:
    """The file's bytes, and whether the batch dimension stays free."""
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch.jit is deprecated upstream in favour of torch.export: the user chose TorchScript
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
        if to == "torchscript":
            with torch.no_grad():
                traced = torch.jit.trace(model, example, check_trace=False)
            torch.jit.save(traced, buffer, _extra_files=extra)
            return buffer.getvalue(), True
        program, dynamic = _export_program(model, example)
        torch.export.save(program, buffer, extra_files=extra)
    return buffer.getvalue(), dynamic


def _export_program(model: nn.Module, example: torch.Tensor) -> tuple[Any, bool]:
    """``torch.export.export`` with a free batch dimension, or a fixed one where that fails."""
    import torch
    from torch.export import Dim

    with torch.no_grad():
        try:
            return torch.export.export(model, (example,), dynamic_shapes=({0: Dim.AUTO},)), True
        except Exception:  # noqa: BLE001 - some models specialise on the batch size
            return torch.export.export(model, (example,)), False


def _verify(data: bytes, to: str, example: torch.Tensor, reference: torch.Tensor, dynamic: bool) -> tuple[float, bool]:
    """Load ``data`` as plain PyTorch would and run it: the largest logit difference from the
    secli model's, and whether another batch size runs too."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit")
            loaded: Any = torch.jit.load(io.BytesIO(data)) if to == "torchscript" else torch.export.load(io.BytesIO(data)).module()
        with torch.no_grad():
            got = loaded(example)
    except Exception as exc:  # noqa: BLE001
        raise SecliError(f"the exported {to} file does not load and run ({describe_exception(exc, 160)}); nothing written") from None
    if not isinstance(got, torch.Tensor) or got.shape != reference.shape:
        raise SecliError(f"the exported {to} model returns {getattr(got, 'shape', type(got).__name__)}, "
                         f"expected logits of shape {tuple(reference.shape)}; nothing written")
    diff = float((got - reference).abs().max())
    if not torch.allclose(got, reference, atol=ATOL, rtol=RTOL):
        raise SecliError(f"the exported {to} model's logits differ from secli's by up to {diff:.3g}; nothing written")
    if dynamic:  # a free batch dimension is claimed only where another batch size runs
        try:
            with torch.no_grad():
                dynamic = tuple(loaded(example[:1].repeat(BATCH + 1, 1, 1, 1)).shape) == (BATCH + 1, *reference.shape[1:])
        except Exception:  # noqa: BLE001
            dynamic = False
    return diff, dynamic
