"""``secli train``: train an injected network on an image folder or the built-in synthetic set.

Parses the options, calls ``secli.training.workflow.train`` and renders what it returns; the
run itself is the library's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from commands import options as opt
from commands.bar_callback import BarCallback
from commands.block_options import BLOCKS, BlockArgs, block_options
from commands.common import handle_errors, stderr
from commands.progress import progress_bar
from commands.render import Table, emit, skipped_note
from secli.util.bounds import bound_help as _range

if TYPE_CHECKING:
    from secli.training.loop import EpochResult

# the library's defaults, shown in help; the options default to None so that one given where it
# does not apply (--train-size with an image folder) can be told from one left alone
TRAIN_SIZE, VAL_SIZE, VAL_FRACTION = 1500, 500, 0.2
INPUT, TRAINING = opt.INPUT_PANEL, opt.TRAINING_PANEL

Model = opt.model_argument("A checkpoint is trained further.")
ImageSize = opt.image_size("the checkpoint's; synthetic 48; else the weights' or the architecture's")
BatchSize = opt.batch_size("a last batch too small to train on joins the one before it")
TrainSize = Annotated[Optional[int], typer.Option(
    "--train-size", rich_help_panel=INPUT, show_default=str(TRAIN_SIZE),
    help=f"Synthetic only: training images (10 classes, balanced) {_range('train_size')}.",
)]
ValSize = Annotated[Optional[int], typer.Option(
    "--val-size", rich_help_panel=INPUT, show_default=str(VAL_SIZE),
    help=f"Synthetic only: validation images (a disjoint split) {_range('val_size')}.",
)]
ValFraction = Annotated[Optional[float], typer.Option(
    "--val-fraction", rich_help_panel=INPUT, show_default=str(VAL_FRACTION),
    help="Image folders only: fraction held out for validation (seeded).",
)]
Epochs = Annotated[int, typer.Option(
    "--epochs", rich_help_panel=TRAINING, help=f"Passes over the training images {_range('epochs')}.",
)]
Optimizer = Annotated[str, typer.Option(
    "--optimizer", metavar="<optimizer>", rich_help_panel=TRAINING, help="sgd (Nesterov momentum 0.9) | adamw.",
)]
Lr = Annotated[Optional[float], typer.Option(
    "--lr", rich_help_panel=TRAINING, show_default="0.05 SGD, 2e-3 AdamW",
    help="Peak learning rate (cosine decay to 0).",
)]
WeightDecay = Annotated[Optional[float], typer.Option(
    "--weight-decay", rich_help_panel=TRAINING, show_default="5e-4 SGD, 0.05 AdamW", help="Weight decay.",
)]
NoAmp = Annotated[bool, typer.Option(
    "--no-amp", rich_help_panel=TRAINING, help="Train in float32 on CUDA too (mixed precision is the default there).",
)]
Seed = opt.seed("data, split, initialisation and order")
Out = opt.out("Where to save the trained model (a secli checkpoint, as inject --out writes).")


@handle_errors
@block_options()
def train_command(
    model: Model = None,
    weights: opt.Weights = None,
    num_classes: opt.NumClasses = None,
    model_kwargs: opt.ModelKwargs = None,
    trust_code: opt.TrustCode = False,
    spec: opt.SpecFile = None,
    blocks: BlockArgs = BLOCKS,
    data: opt.Data = "synthetic",
    image_size: ImageSize = None,
    input_size: opt.InputSizeAlias = None,
    batch_size: BatchSize = 32,
    train_size: TrainSize = None,
    val_size: ValSize = None,
    val_fraction: ValFraction = None,
    epochs: Epochs = 5,
    optimizer: Optimizer = "sgd",
    lr: Lr = None,
    weight_decay: WeightDecay = None,
    no_amp: NoAmp = False,
    device: opt.Device = "auto",
    workers: opt.Workers = 0,
    seed: Seed = 0,
    out: Out = None,
    force: opt.Force = False,
    fmt: opt.Format = opt.OutputFormat.table,
) -> None:
    """Train a network with attention blocks (SGD or AdamW, cosine schedule); save a checkpoint.

    Example: secli train resnet18 --block se --data synthetic --epochs 5 --out se_r18_synth.pt

    Example: secli train resnet18 --block eca --data synthetic-parts --epochs 1 --train-size 200 --out eca_r18.pt
    """
    from secli.data.sources import GENERATED
    from secli.training.workflow import train

    size = opt.pick("--image-size", image_size, "--input-size", input_size)
    if data in GENERATED:  # synthetic, synthetic-parts
        opt.refuse(f"with --data {data} (it has its own validation split: --val-size)", val_fraction=val_fraction)
    else:
        opt.refuse("with an image folder (the folder sets the sizes; use --val-fraction)", train_size=train_size,
                   val_size=val_size)
    if blocks.kind == "none":
        blocks.refuse("with --block none (no blocks are added)")
    if device == "cpu":
        opt.refuse("with --device cpu (mixed precision is used on CUDA only)", no_amp=no_amp)
    quiet = fmt.value == "json"

    def on_epoch(record: EpochResult) -> None:
        if not quiet:
            val = f"{record.val_accuracy:.3f}" if record.val_accuracy is not None else "-"
            stderr.print(f"epoch {record.epoch}/{epochs}: train loss {record.train_loss:.3f}, "
                         f"train acc {record.train_accuracy:.3f}, val acc {val} ({record.seconds:.0f} s)",
                         highlight=False)

    # progress goes to stderr, so it stays on for --format json (a log still shows the run moving)
    with BarCallback(lambda what, total: progress_bar(what, total, enabled=True, unit="images")) as bar:
        run = train(
            model, data=data, out=out, block=blocks.kind, **blocks.options(), weights=weights, num_classes=num_classes,
            spec=spec, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
            image_size=size, train_size=TRAIN_SIZE if train_size is None else train_size,
            val_size=VAL_SIZE if val_size is None else val_size,
            val_fraction=VAL_FRACTION if val_fraction is None else val_fraction,
            workers=workers, seed=seed, device=device, no_amp=no_amp, force=force, progress=bar, on_epoch=on_epoch,
            model_kwargs=model_kwargs, trust_code=trust_code,
        )
    document = run.to_dict()
    emit(fmt.value, csv_tables(document) if fmt.value == "csv" else tables(document), document)


def tables(document: dict[str, Any]) -> list[Table]:
    """The table of a train envelope (a run's, or a results file's)."""
    return [history_table(document["results"])]


def csv_tables(document: dict[str, Any]) -> list[Table]:
    """``-f csv`` (and ``secli report -f csv``): one row per epoch, raw numbers, ASCII names."""
    columns = ["epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"]
    return [Table(title="", columns=columns, rows=[[e.get(c) for c in columns] for e in document["results"]["epochs"]])]


def history_table(run: dict[str, Any]) -> Table:
    """One row per epoch, with notes on the data, the speed, the head and the saved file."""
    classes = len(run["class_names"])
    table = Table(
        title=f"{run['model']} on {run['data']}: {classes} classes, {run['image_size']} px",
        columns=["epoch", "lr", "train loss", "train acc", "val loss", "val acc", "time (s)"],
        rows=[[e["epoch"], e["lr"], e["train_loss"], e["train_accuracy"], e["val_loss"], e["val_accuracy"],
               e["seconds"]] for e in run["epochs"]],
        formats={1: ".6f", 2: ".4f", 3: ".4f", 4: ".4f", 5: ".4f", 6: ",.1f"},
        right_align=set(range(7)),  # every column is a number
    )
    seconds = run["seconds"] or 0.0
    ips = len(run["epochs"]) * run["train_images"] / seconds if seconds else 0.0
    table.notes.append(f"{run['train_images']} training / {run['val_images']} validation images; "
                       f"chance = {run['chance']:.4f}")
    table.notes.append(f"{seconds:.0f} s in all on {run['device']} ({ips:.1f} training images/s incl. validation)")
    if run.get("new_head"):
        table.notes.append(f"the weights' classifier {run['new_head']} was replaced by a fresh {classes}-class one")
    if run.get("skipped"):
        table.notes.append(skipped_note(run["skipped"], run.get("too_large", 0)))
    if run.get("dropped"):
        table.notes.append(f"{run['dropped']} images not trained on: their batches were left with fewer images "
                           "than the model trains on once unreadable ones were skipped")
    table.notes.append(f"saved {run['saved']}")
    return table
