"""``secli export``: a secli model as a TorchScript, PT2 or ONNX file that runs without secli."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer

from commands import options as opt
from commands.block_options import BLOCKS, BlockArgs, block_options
from commands.common import handle_errors
from commands.render import Table, emit


class ExportTarget(str, Enum):
    """Written out (not read from secli.networks.export) so that ``secli --help`` imports no torch;
    tests/test_export.py checks that it equals ``secli.networks.export.TARGETS``."""

    torchscript = "torchscript"
    pt2 = "pt2"
    onnx = "onnx"


Model = opt.model_argument("A name or factory is built with the block options.")
ImageSize = opt.image_size("the checkpoint's training size, else the architecture's",
                           "The example input's side; batch, height and width stay free where the network allows.")
To = Annotated[Optional[ExportTarget], typer.Option(
    "--to", metavar="<target>", rich_help_panel=opt.OUTPUT_PANEL,
    help="torchscript (torch.jit) | pt2 (torch.export) | onnx (opset 18; needs the onnx extra).",
)]
Out = opt.out("The file to write.")


@handle_errors
@block_options()
def export_command(
    model: Model = None,
    weights: opt.Weights = None,
    num_classes: opt.NumClasses = None,
    model_kwargs: opt.ModelKwargs = None,
    trust_code: opt.TrustCode = False,
    spec: opt.SpecFile = None,
    blocks: BlockArgs = BLOCKS,
    image_size: ImageSize = None,
    to: To = None,
    out: Out = None,
    force: opt.Force = False,
    fmt: opt.Format = opt.OutputFormat.table,
) -> None:
    """Write a model as a file that runs without secli (plain PyTorch, or onnxruntime); verified.

    Example: secli export resnet18 --block eca --to torchscript --out r18_eca.ts

    Example: secli export se_resnet50.pt --to onnx --out se_resnet50.onnx
    """
    from secli.api import export

    result = export(
        model, to=to.value if to is not None else None, out=out, image_size=image_size, force=force, spec=spec,
        weights=weights, num_classes=num_classes, block=blocks.kind, **blocks.options(), model_kwargs=model_kwargs,
        trust_code=trust_code,
    )
    document = result.to_dict()
    emit(fmt.value, csv_tables(document) if fmt.value == "csv" else tables(document), document)


def tables(document: dict[str, Any]) -> list[Table]:
    """The table of an export envelope (a run's, or a results file's)."""
    found = document["results"]
    shape = found["input_shape"]
    dims = found.get("dynamic_dims") or (["batch"] if found["dynamic_batch"] else [])
    table = Table(
        title=f"{found['model']}: exported to {found['to']}",
        columns=["file", "format", "example input (N, C, H, W)", "free dimensions", "max |Δ logit|"],
        rows=[[found["file"], found["to"] + (f" (opset {found['opset']})" if found.get("opset") else ""),
               "x".join(str(n) for n in shape), ", ".join(dims) or "none (fixed shape)",
               f"{found['max_abs_diff']:.2e}"]],
        right_align={2, 4},
    )
    checked = found.get("checked_in") or "plain torch"
    shapes = f" at {', '.join(found['checked_shapes'])}" if found.get("checked_shapes") else ""
    table.notes.append(f"verified: loaded back in {checked}; logits within atol {found['atol']:g}, "
                       f"rtol {found['rtol']:g}{shapes}")
    table.notes.append(f"load it: {found['load']} (docs/export.md)")
    table.notes.extend(found["notes"])
    return [table]


def csv_tables(document: dict[str, Any]) -> list[Table]:
    """``-f csv`` (and ``secli report -f csv``): one row, raw values, ASCII column names."""
    found = document["results"]
    columns = ["file", "to", "model", "input_shape", "dynamic_dims", "opset", "max_abs_diff", "atol", "rtol",
               "checked_in"]
    row = [found["file"], found["to"], found["model"], "x".join(str(n) for n in found["input_shape"]),
           " ".join(found.get("dynamic_dims") or (["batch"] if found["dynamic_batch"] else [])), found.get("opset"),
           found["max_abs_diff"], found["atol"], found["rtol"], found.get("checked_in")]
    return [Table(title="", columns=columns, rows=[row])]
