"""Training batches that every model can train on, whatever the batch size and the data size.

In training mode a BatchNorm layer normalises each channel over the batch and the feature map;
with one image and a 1x1 map (an SK block's pooled vector, a ResNet's last stage at 32 px) it
has one value per channel and torch refuses it ("Expected more than 1 value per channel when
training"). So the smallest batch a model trains on is measured once before training
(``smallest_batch``: 2 where some BatchNorm layer sees one value per channel from one image,
else 1), and:

- a last batch smaller than that joins the batch before it (``TrainBatches``): with 41 images
  in batches of 8, the last batch holds 9; every image is trained on in every epoch;
- ``--batch-size`` or a training set smaller than it is refused before training, with the reason;
- a batch left smaller than it after unreadable images were dropped is skipped and counted
  (``EpochResult.dropped``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from secli.data.folders import collate_skipping
from secli.util.errors import SecliUsageError


def smallest_batch(model: nn.Module, sample: torch.Tensor) -> tuple[int, str | None]:
    """(the smallest batch ``model`` trains on, the BatchNorm layer that sets it, or None).

    One forward pass of one image in eval mode (no statistics change), with a hook on every
    BatchNorm layer counting the values per channel it would normalise for that image.
    """
    found: list[tuple[int, str]] = []
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            def record(module: nn.Module, args: tuple[Any, ...], name: str = name) -> None:
                x = args[0]
                if isinstance(x, torch.Tensor) and x.dim() >= 2 and x.shape[0] and x.shape[1]:
                    found.append((x.numel() // (x.shape[0] * x.shape[1]), name))
            hooks.append(module.register_forward_pre_hook(record))
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            model(sample[:1])
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    single = [name for values, name in found if values <= 1]
    return (2, single[0]) if single else (1, None)


def check_batch_size(batch_size: int, images: int, smallest: int, layer: str | None, image_size: int) -> None:
    """Refuse a batch size, or a training set, smaller than the smallest batch the model trains on."""
    if smallest <= 1:
        return
    why = (f"its BatchNorm layer {layer} sees one value per channel from one image at {image_size} px, "
           "and a batch of one cannot be normalised")
    if batch_size < smallest:
        raise SecliUsageError(f"--batch-size {batch_size} cannot train this model: {why}",
                              hint=f"use --batch-size {smallest} or more, or a larger --image-size")
    if images < smallest:
        raise SecliUsageError(f"{images} training image cannot train this model: {why}",
                              hint=f"give at least {smallest} training images")


class TrainBatches(Sampler[list[int]]):
    """Shuffled batches of ``batch_size`` positions (the order ``DataLoader(shuffle=True)`` draws
    with the same generator); a last batch smaller than ``smallest`` joins the one before it."""

    def __init__(self, length: int, batch_size: int, smallest: int, seed: int) -> None:
        self.length, self.batch_size, self.smallest = length, batch_size, smallest
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.length, generator=self.generator).tolist()
        batches = [order[i:i + self.batch_size] for i in range(0, self.length, self.batch_size)]
        if len(batches) > 1 and len(batches[-1]) < self.smallest:
            last = batches.pop()
            batches[-1] = batches[-1] + last
        return iter(batches)

    def __len__(self) -> int:
        count = -(-self.length // self.batch_size)
        last = self.length - (count - 1) * self.batch_size
        return count - 1 if count > 1 and last < self.smallest else count


def train_loader(dataset: Dataset, indices: list[int], batch_size: int, smallest: int, workers: int, seed: int,
                 pin_memory: bool) -> DataLoader:
    """The training loader: ``TrainBatches`` over ``indices``, batches as ``(images, labels, skipped)``."""
    return DataLoader(Subset(dataset, list(indices)),
                      batch_sampler=TrainBatches(len(indices), batch_size, smallest, seed),
                      num_workers=workers, collate_fn=collate_skipping, pin_memory=pin_memory,
                      persistent_workers=False)
