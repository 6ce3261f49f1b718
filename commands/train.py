"""``secli train``: train an injected network on an image folder or the built-in synthetic set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from commands import options as opt
from commands.common import handle_errors, stderr
from commands.progress import progress_bar
from commands.render import Table, emit

DATA_PANEL = "Data"
TRAIN_PANEL = "Training"


@handle_errors
def train_command(
    model: Annotated[Optional[str], typer.Argument(help="Architecture name (e.g. resnet18) or a secli checkpoint to train further.", show_default=False)] = None,
    data: Annotated[str, typer.Option("--data", help="'synthetic' (built in) or an ImageFolder root (root/<class>/<image>).", rich_help_panel=DATA_PANEL)] = "synthetic",
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
    from secli.util.errors import SecliUsageError
    from secli.util.outputs import check_writable

    if out is None:
        raise SecliUsageError("say where to save the trained model with --out FILE.pt")
    check_writable(out, force)  # fail before the slow part

    import torch

    from secli.data.classes import split_indices
    from secli.data.folders import ImageFolderData, make_loader
    from secli.data.sources import choose_preprocess
    from secli.data.synthetic import SYNTHETIC, SyntheticShapes
    from secli.build.models import load_model, looks_like_file
    from secli.util.device import resolve_device
    from secli.training.training import (
        TrainConfig,
        check_head,
        replace_head,
        save_trained,
        train_model,
    )

    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
        seed=seed, device=str(resolve_device(device)), amp=not no_amp, workers=workers,
    )
    torch.manual_seed(seed)
    model_spec = None
    if model is not None and looks_like_file(model):
        given = {k: v for k, v in dict(block=block, ratio=ratio, min_hidden=min_hidden, position=position,
                 stages=stages, squeeze=squeeze, gate=gate, bias=bias, init=init, paths=paths, groups=groups,
                 weights=weights, num_classes=num_classes, spec=spec).items() if v is not None}
        if given:
            raise SecliUsageError(
                f"{model} is a saved model; --{next(iter(given)).replace('_', '-')} applies to architecture names only"
            )
        built = load_model(model)
        spec_dict = built.spec.to_dict()
        arch, arch_weights, meta = built.spec.arch, built.spec.weights, built.meta
    else:
        built = None
        model_spec = opt.model_spec_from_options(
            model, spec, weights, num_classes,
            block=block, ratio=ratio, min_hidden=min_hidden, position=position, stages=stages,
            squeeze=squeeze, gate=gate, bias=bias, init=init, paths=paths, groups=groups,
        )
        arch, arch_weights, meta = model_spec.arch, model_spec.weights, {}
    from secli.build.architectures import arch_info

    pre = choose_preprocess(data, arch, arch_weights, image_size, meta, arch_info(arch).default_input)
    if data == SYNTHETIC:
        train_set: Any = SyntheticShapes(train_size, size=pre.crop, seed=seed, split="train", mean=pre.mean, std=pre.std)
        val_set: Any = (SyntheticShapes(val_size, size=pre.crop, seed=seed, split="val", mean=pre.mean, std=pre.std)
                        if val_size > 0 else None)
        class_names = list(SyntheticShapes.classes)
        train_idx, val_idx = list(range(train_size)), list(range(val_size))
    else:
        train_set = ImageFolderData(data, pre)
        val_set = train_set
        class_names = train_set.classes
        train_idx, val_idx = split_indices(len(train_set), val_fraction, seed)
        if not val_idx:
            val_set = None
    new_head = None
    if model_spec is not None:
        import dataclasses

        from secli.build.models import build

        # Pretrained weights bring their own head: build with it, then swap in one for this data.
        keep_weights_head = model_spec.weights is not None and num_classes is None
        if not keep_weights_head and num_classes is None:
            model_spec = dataclasses.replace(model_spec, num_classes=len(class_names))
        built = build(model_spec)
        if keep_weights_head:
            new_head = replace_head(built.model, len(class_names))
            model_spec = dataclasses.replace(model_spec, num_classes=len(class_names))
            built.spec = model_spec
        spec_dict = model_spec.to_dict()
    train_loader = make_loader(train_set, train_idx, config.batch_size, workers, shuffle=True, seed=seed,
                               pin_memory=config.device.startswith("cuda"))
    val_loader = make_loader(val_set, val_idx, 2 * config.batch_size, workers) if val_set is not None else None
    first = next(iter(make_loader(train_set, train_idx[:1], 1)))[0]
    if first is not None:
        check_head(built.model, first, len(class_names))

    quiet = fmt.value == "json"
    total = config.epochs * len(train_idx)
    lines: list[str] = []

    with progress_bar(f"training {built.label}", total, enabled=not quiet, unit="images") as bar:
        def on_epoch(record: Any) -> None:
            val = f"{record.val_accuracy:.3f}" if record.val_accuracy is not None else "-"
            line = (f"epoch {record.epoch}/{config.epochs}: train loss {record.train_loss:.3f}, "
                    f"train acc {record.train_accuracy:.3f}, val acc {val} ({record.seconds:.0f} s)")
            if not quiet:
                stderr.print(line, highlight=False)
            lines.append(line)

        result = train_model(built.model, train_loader, val_loader, len(class_names), config, bar.advance, on_epoch)
    built.model.cpu()
    path = save_trained(out, spec_dict, built.model, class_names, pre, data, result, config, force)
    payload = {**result.to_dict(), "saved": str(path), "model": built.label, "class_names": class_names,
               "input_size": pre.crop, "device": config.device}
    table = Table(
        title=f"{built.label} on {data}: {len(class_names)} classes, {pre.crop} px",
        columns=["epoch", "lr", "train loss", "train acc", "val loss", "val acc", "s"],
        rows=[[e.epoch, e.lr, e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy, round(e.seconds, 1)]
              for e in result.epochs],
    )
    ips = config.epochs * result.train_images / result.seconds if result.seconds else 0.0
    table.notes.append(f"{result.train_images} training / {result.val_images} validation images; chance = {result.chance:.3f}")
    table.notes.append(f"{result.seconds:.0f} s in all on {config.device} ({ips:.1f} training images/s incl. validation)")
    if new_head:
        table.notes.append(f"the weights' classifier {new_head} was replaced by a fresh {len(class_names)}-class one")
    skipped = sum(e.skipped for e in result.epochs)
    if skipped:
        table.notes.append(f"skipped {skipped} unreadable images")
    table.notes.append(f"saved {path}")
    emit(fmt.value, [table], payload)
