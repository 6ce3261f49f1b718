"""What ``train`` refuses: impossible option values before the run, and a run that learned
nothing after it (no training image read, or a loss that was never finite): nothing is saved."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from secli.util.checks import check_bounded, check_image_size, check_number
from secli.util.errors import SecliError

if TYPE_CHECKING:
    from secli.training.loop import TrainResult


def check_train_values(epochs: Any, batch_size: Any, lr: Any, weight_decay: Any, image_size: Any, train_size: Any,
                       val_size: Any, val_fraction: Any, workers: Any, num_classes: Any, seed: Any = 0) -> None:
    """Every number the request gives, before anything runs (ranges: ``secli.util.bounds``)."""
    for name, value in (("--epochs", epochs), ("--batch-size", batch_size), ("--train-size", train_size),
                        ("--val-size", val_size), ("--workers", workers), ("--seed", seed)):
        check_bounded(name, value)
    if lr is not None:
        check_number("--lr", lr, 0.0, 100.0, above=True)
    if weight_decay is not None:
        check_number("--weight-decay", weight_decay, 0.0, 100.0)
    check_image_size("--image-size", image_size)
    check_number("--val-fraction", val_fraction, 0.0, 0.95)
    if num_classes is not None:
        check_bounded("--num-classes", num_classes)


def check_trained(history: TrainResult, data: str) -> None:
    """Refuse to save a model that saw no training image or whose loss was never finite."""
    skipped = sum(e.skipped for e in history.epochs)
    if history.train_images == 0 or not history.epochs:
        raise SecliError(f"no training image in {data} could be read ({skipped} skipped); nothing was saved")
    if not math.isfinite(history.epochs[-1].train_loss):
        raise SecliError("the training loss was not finite (diverged: try a smaller --lr); nothing was saved")
