"""``secli export``: a secli model as a TorchScript or PT2 file that plain PyTorch loads."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from commands import options as opt
from commands.common import handle_errors
from commands.render import Table, emit


class ExportTarget(str, Enum):
    """Written out (not read from secli.networks.export) so that ``secli --help`` imports no torch;
    tests/test_export.py checks that it equals ``secli.networks.export.TARGETS``."""

    torchscript = "torchscript"
    pt2 = "pt2"


@handle_errors
@opt.block_options()
def export_command(
    model: Annotated[Optional[str], typer.Argument(help="A network: a name (resnet50, convnext_tiny, timm:<name>), your factory (path/to/file.py:build or package.module:build), or a secli checkpoint. A name or factory is built with the block options.", show_default=False)] = None,
    to: Annotated[Optional[ExportTarget], typer.Option("--to", help="File kind: torchscript (torch.jit) or pt2 (torch.export).", show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="The file to write.", show_default=False)] = None,
    image_size: Annotated[Optional[int], typer.Option("--image-size", help="Side of the example input in px (default: the checkpoint's training size, else the architecture's).", show_default=False)] = None,
    blocks: opt.BlockArgs = opt.BLOCKS,
    weights: opt.Weights = None,
    num_classes: opt.NumClasses = None,
    model_kwargs: opt.ModelKwargs = None,
    trust_code: opt.TrustCode = False,
    spec: opt.SpecFile = None,
    force: opt.Force = False,
    fmt: Annotated[opt.OutputFormat, typer.Option("--format", "-f", help="Output format.")] = opt.OutputFormat.table,
) -> None:
    """Write a model as a file that loads and runs in plain PyTorch, without secli; verified."""
    from secli.api import export

    result = export(
        model, to=to.value if to is not None else None, out=out, image_size=image_size, force=force, spec=spec,
        weights=weights, num_classes=num_classes, block=blocks.kind, **blocks.options(), model_kwargs=model_kwargs,
        trust_code=trust_code,
    )
    document = result.to_dict()
    found = document["results"]
    table = Table(
        title=f"{found['model']}: exported to {found['to']}",
        columns=["file", "format", "input (N, C, H, W)", "batch", "max |Δ logit|"],
        rows=[[found["file"], found["to"], "x".join(str(n) for n in found["input_shape"]),
               "any" if found["dynamic_batch"] else str(found["input_shape"][0]), f"{found['max_abs_diff']:.2e}"]],
        right_align={2, 3, 4},
    )
    table.notes.append(f"verified: loaded back with plain torch; logits within atol {found['atol']:g}, rtol {found['rtol']:g}")
    table.notes.append(f"load it anywhere with torch installed: {found['load']}")
    table.notes.extend(found["notes"])
    emit(fmt.value, [table], document)
