"""``secli train``: train an injected network on an image folder or the built-in synthetic set.

Parses the options, calls ``secli.training.workflow.train`` and renders what it returns; the
run itself is the library's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from commands import options as opt
from commands.bar_callback import BarCallback
from commands.common import handle_errors, stderr
from commands.progress import progress_bar
from commands.render import Table, emit, skipped_note

if TYPE_CHECKING:
    from secli.training.loop import EpochResult
    from secli.training.workflow import TrainRun

DATA_PANEL = "Data"
TRAIN_PANEL = "Training"


@handle_errors
def train_command(
    model: Annotated[Optional[str], typer.Argument(help="Architecture name (e.g. resnet18) or a secli checkpoint to train further.", show_default=False)] = None,
    data: Annotated[str, typer.Option("--data", help="'synthetic' or 'synthetic-parts' (built in; parts: classes differ only in where their parts sit) or an ImageFolder root (root/<class>/<image>).", rich_help_panel=DATA_PANEL)] = "synthetic",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to save the trained model (secli checkpoint, as inject --out writes).")] = None,
    block: opt.Block = None,
    ratio: opt.Ratio = None,
    min_hidden: opt.MinHidden = None,
    position: opt.Position = None,
    stages: opt.Stages = None,
    squeeze: opt.Squeeze = None,
    gate: opt.Gate = None,
    bias: opt.Bias = None,
    init: opt.Init = None,
    paths: opt.Paths = None,
    groups: opt.Groups = None,
    kernel_size: opt.KernelSize = None,
    impl: opt.Impl = None,
    weights: opt.Weights = None,
    num_classes: opt.NumClasses = None,
    spec: opt.SpecFile = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the training images.", rich_help_panel=TRAIN_PANEL)] = 5,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Images per step.", rich_help_panel=TRAIN_PANEL)] = 32,
    optimizer: Annotated[str, typer.Option("--optimizer", help="sgd (Nesterov momentum 0.9) | adamw.", rich_help_panel=TRAIN_PANEL)] = "sgd",
    lr: Annotated[Optional[float], typer.Option("--lr", help="Peak learning rate (cosine decay to 0). Default 0.05 SGD, 2e-3 AdamW.", rich_help_panel=TRAIN_PANEL)] = None,
    weight_decay: Annotated[Optional[float], typer.Option("--weight-decay", help="Default 5e-4 SGD, 0.05 AdamW.", rich_help_panel=TRAIN_PANEL)] = None,
    image_size: Annotated[Optional[int], typer.Option("--image-size", help="Input size in px. Default: the checkpoint's, else 48 for synthetic, else the weights' transforms or the architecture's own.", rich_help_panel=DATA_PANEL)] = None,
    train_size: Annotated[int, typer.Option("--train-size", help="Synthetic: training images (10 classes, balanced).", rich_help_panel=DATA_PANEL)] = 1500,
    val_size: Annotated[int, typer.Option("--val-size", help="Synthetic: validation images (a disjoint split).", rich_help_panel=DATA_PANEL)] = 500,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Folders: fraction held out for validation (seeded).", rich_help_panel=DATA_PANEL)] = 0.2,
    workers: Annotated[int, typer.Option("--workers", help="Data loader worker processes.", rich_help_panel=DATA_PANEL)] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed for data, split, initialisation and order.")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N (AMP is used on CUDA).")] = "auto",
    no_amp: Annotated[bool, typer.Option("--no-amp", help="Train in float32 on CUDA too.")] = False,
    force: opt.Force = False,
    fmt: Annotated[opt.OutputFormat, typer.Option("--format", "-f", help="Output format.")] = opt.OutputFormat.table,
) -> None:
    """Train a network with SE/SK blocks (SGD or AdamW, cosine schedule); save a checkpoint.

    Example: secli train resnet18 --block se --data synthetic --epochs 5 --out se_r18_synth.pt
    """
    from secli.training.workflow import train

    quiet = fmt.value == "json"

    def on_epoch(record: EpochResult) -> None:
        if not quiet:
            val = f"{record.val_accuracy:.3f}" if record.val_accuracy is not None else "-"
            stderr.print(f"epoch {record.epoch}/{epochs}: train loss {record.train_loss:.3f}, "
                         f"train acc {record.train_accuracy:.3f}, val acc {val} ({record.seconds:.0f} s)",
                         highlight=False)

    from secli.build.spec import block_fields

    block_options = block_fields(block=block, ratio=ratio, min_hidden=min_hidden, position=position,
                                        stages=stages, squeeze=squeeze, gate=gate, bias=bias, init=init,
                                        paths=paths, groups=groups, kernel_size=kernel_size, impl=impl)
    with BarCallback(lambda what, total: progress_bar(what, total, enabled=not quiet, unit="images")) as bar:
        run: TrainRun = train(
            model, data=data, out=out, block=block_options or None, weights=weights, num_classes=num_classes,
            spec=spec, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
            image_size=image_size, train_size=train_size, val_size=val_size, val_fraction=val_fraction,
            workers=workers, seed=seed, device=device, no_amp=no_amp, force=force, progress=bar, on_epoch=on_epoch,
        )
    emit(fmt.value, [history_table(run)], run.to_dict())


def history_table(run: TrainRun) -> Table:
    """One row per epoch, with notes on the data, the speed, the head and the saved file."""
    result = run.history
    table = Table(
        title=f"{run.model} on {run.data}: {len(run.class_names)} classes, {run.input_size} px",
        columns=["epoch", "lr", "train loss", "train acc", "val loss", "val acc", "s"],
        rows=[[e.epoch, e.lr, e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy, round(e.seconds, 1)]
              for e in result.epochs],
    )
    ips = len(result.epochs) * result.train_images / result.seconds if result.seconds else 0.0
    table.notes.append(f"{result.train_images} training / {result.val_images} validation images; chance = {result.chance:.3f}")
    table.notes.append(f"{result.seconds:.0f} s in all on {run.device} ({ips:.1f} training images/s incl. validation)")
    if run.new_head:
        table.notes.append(f"the weights' classifier {run.new_head} was replaced by a fresh {len(run.class_names)}-class one")
    if run.skipped:
        table.notes.append(skipped_note(run.skipped, run.too_large))
    table.notes.append(f"saved {run.saved}")
    return table
