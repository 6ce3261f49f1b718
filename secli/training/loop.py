"""A small, honest training loop, so ``visualize-excitation`` has a trained SE/SK network to read.

Nothing clever: cross-entropy, SGD (Nesterov momentum, weight decay) or AdamW, a cosine
learning-rate schedule over all steps, automatic mixed precision on CUDA only, accuracy on a
held-out split after every epoch. Batches are ``(images, labels, skipped)`` as
``secli.data.folders.make_loader`` gives them; setting up the data, the model and the
checkpoint is ``secli.training.workflow``'s job.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from secli.data.folders import too_large_in
from secli.util.errors import SecliUsageError
from secli.util.tensors import logits_of

OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class TrainConfig:
    """How to train (not what on): saved in the checkpoint's meta so a run can be repeated."""

    epochs: int = 5
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float | None = None  # default: 0.05 for SGD, 2e-3 for AdamW
    weight_decay: float | None = None  # default: 5e-4 for SGD, 0.05 for AdamW
    momentum: float = 0.9
    seed: int = 0
    device: str = "cpu"
    amp: bool = True  # only ever used on CUDA

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise SecliUsageError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.epochs < 1:
            raise SecliUsageError(f"--epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise SecliUsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.lr is not None and not self.lr > 0:
            raise SecliUsageError(f"--lr must be > 0, got {self.lr}")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (0.05 if self.optimizer == "sgd" else 2e-3)

    @property
    def decay(self) -> float:
        if self.weight_decay is not None:
            return self.weight_decay
        return 5e-4 if self.optimizer == "sgd" else 0.05


@dataclass
class EpochResult:
    """One epoch's learning rate (at its start), losses, accuracies, time and skipped images."""

    epoch: int
    lr: float
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    skipped: int = 0
    too_large: int = 0  # of the skipped images, those over the pixel budget
    dropped: int = 0  # images of batches left too small to train on once unreadable ones were skipped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """The whole run: every epoch, the data sizes and the wall time."""

    epochs: list[EpochResult] = field(default_factory=list)
    classes: int = 0
    train_images: int = 0
    val_images: int = 0
    seconds: float = 0.0

    @property
    def chance(self) -> float:
        return 1.0 / self.classes if self.classes else 0.0

    @property
    def final_val_accuracy(self) -> float | None:
        return self.epochs[-1].val_accuracy if self.epochs else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": [e.to_dict() for e in self.epochs],
            "classes": self.classes,
            "chance": self.chance,
            "train_images": self.train_images,
            "val_images": self.val_images,
            "seconds": self.seconds,
            "final_val_accuracy": self.final_val_accuracy,
        }


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on BN and bias parameters (1-D tensors), as is usual.
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": config.decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.learning_rate, momentum=config.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.learning_rate)


def _amp_dtype(device: torch.device, wanted: bool) -> torch.dtype | None:
    if not wanted or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def evaluate(model: nn.Module, loader: Any, device: torch.device,
             amp: torch.dtype | None = None) -> tuple[float, float, int]:
    """(mean loss, accuracy, images) over ``loader``; batches are (images, labels, skipped)."""
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    with torch.inference_mode():
        for images, labels, _ in loader:
            if images is None:
                continue
            images, labels = images.to(device), labels.to(device)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                logits = logits_of(model(images))
            loss_sum += float(nn.functional.cross_entropy(logits.float(), labels, reduction="sum"))
            correct += int((logits.argmax(dim=1) == labels).sum())
            seen += labels.numel()
    return (loss_sum / seen if seen else math.nan), (correct / seen if seen else math.nan), seen


def train_model(
    model: nn.Module,
    train_loader: Any,
    val_loader: Any | None,
    classes: int,
    config: TrainConfig,
    progress: Callable[[int], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    smallest: int = 1,
) -> TrainResult:
    """Train in place; ``progress`` gets the number of images of each step, ``on_epoch`` each
    epoch's losses and accuracies. A batch of fewer than ``smallest`` images (the smallest the
    model trains on: ``secli.training.batches``), left so by unreadable images, is skipped and
    counted in ``EpochResult.dropped``."""
    torch.manual_seed(config.seed)
    device = torch.device(config.device)
    model.to(device)
    amp = _amp_dtype(device, config.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    optimizer = _optimizer(model, config)
    steps = config.epochs * max(1, len(train_loader))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps))
    )
    result = TrainResult(classes=classes)
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        loss_sum, correct, seen, skipped, too_large, dropped = 0.0, 0, 0, 0, 0, 0
        for images, labels, bad in train_loader:
            skipped += int(bad)
            too_large += too_large_in(bad)
            if images is None:
                continue
            if images.shape[0] < smallest:
                dropped += images.shape[0]
                if progress:
                    progress(images.shape[0])
                continue
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                # GoogLeNet / Inception v3 return (logits, aux...) in train mode; only the main
                # head is trained here (the auxiliary heads get no loss).
                logits = logits_of(model(images))
                loss = nn.functional.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            loss_sum += float(loss.detach()) * labels.numel()
            correct += int((logits.detach().argmax(dim=1) == labels).sum())
            seen += labels.numel()
            if progress:
                progress(labels.numel())
        val_loss = val_acc = None
        if val_loader is not None:
            val_loss, val_acc, result.val_images = evaluate(model, val_loader, device, amp)
        record = EpochResult(
            epoch=epoch,
            lr=lr,
            train_loss=loss_sum / seen if seen else math.nan,
            train_accuracy=correct / seen if seen else math.nan,
            val_loss=val_loss,
            val_accuracy=val_acc,
            seconds=time.perf_counter() - t0,
            skipped=skipped,
            too_large=too_large,
            dropped=dropped,
        )
        result.train_images = seen
        result.epochs.append(record)
        if on_epoch:
            on_epoch(record)
    result.seconds = time.perf_counter() - start
    model.eval()
    return result
