"""Image folders (``root/<class>/<image>``) and the loaders every command reads images through.

Unreadable images do not abort a run: ``ImageFolderData`` returns the sample as ``None`` and
``collate_skipping`` drops it and counts it, so a batch is ``(images, labels, skipped)``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from secli.data.preprocess import Preprocess
from secli.util.errors import SecliError

#: Pixel budget: an image whose decoded size, or whose size once its shorter side is resized for
#: the model, exceeds this is skipped and counted as "too large" (checked before decoding).
MAX_IMAGE_PIXELS = 40_000_000
#: What a too-large sample is returned as (a string, so it crosses worker processes unchanged).
TOO_LARGE = "too large"

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


class ImageFolderData(Dataset):
    """``root/<class>/<image>`` read lazily; a sample that cannot be decoded comes back as None."""

    def __init__(self, root: str | Path, preprocess: Preprocess) -> None:
        root = Path(root).expanduser()
        if not root.exists():
            raise SecliError(f"data folder not found: {root}")
        if not root.is_dir():
            raise SecliError(f"--data must be a folder of class folders (or 'synthetic'), got the file {root}")
        try:
            class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError as exc:
            raise SecliError(f"cannot read data folder {root}: {exc.strerror}") from None
        samples: list[tuple[Path, int]] = []
        names: list[str] = []
        for class_dir in class_dirs:
            try:
                files = sorted(
                    p for p in class_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                )
            except OSError as exc:
                raise SecliError(f"cannot read {class_dir}: {exc.strerror}") from None
            if not files:
                continue
            label = len(names)
            names.append(class_dir.name)
            samples.extend((f, label) for f in files)
        if not samples:
            raise SecliError(
                f"no images found in {root}",
                hint="expected the ImageFolder layout root/<class>/<image>.jpg, or --data synthetic",
            )
        self.root = root
        self.classes = names
        self.samples = samples
        self.targets = [label for _, label in samples]
        self._transform = preprocess.transform()
        self._resize = preprocess.resize

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | str | None, int]:
        from PIL import Image

        path, label = self.samples[index]
        try:
            with Image.open(path) as img:  # reads the header only: the size is known before decoding
                if self._too_large(*img.size):
                    return TOO_LARGE, label
                return self._transform(img.convert("RGB")), label
        except MemoryError:
            raise  # never "unreadable": the run is out of memory
        except Image.DecompressionBombError:
            return TOO_LARGE, label
        except Exception:  # truncated, not an image, unreadable: skipped and counted by collate
            return None, label

    def _too_large(self, width: int, height: int) -> bool:
        short, long = sorted((max(width, 1), max(height, 1)))
        resized = self._resize * self._resize * long / short
        return width * height > MAX_IMAGE_PIXELS or resized > MAX_IMAGE_PIXELS


class SkipCount(int):
    """Samples skipped in a batch (an int), with how many of them were too large."""

    too_large: int = 0

    def __new__(cls, skipped: int, too_large: int = 0) -> SkipCount:
        count = super().__new__(cls, skipped)
        count.too_large = too_large
        return count

    def __reduce__(self) -> tuple[type, tuple[int, int]]:
        return SkipCount, (int(self), self.too_large)


def too_large_in(skipped: object) -> int:
    return int(getattr(skipped, "too_large", 0))


def collate_skipping(
        batch: list[tuple[torch.Tensor | str | None, int]]) -> tuple[torch.Tensor | None, torch.Tensor | None, int]:
    """Stack the readable samples; count the ones that could not be decoded (``SkipCount``:
    its ``too_large`` says how many of them were over the pixel budget)."""
    good = [(x, y) for x, y in batch if isinstance(x, torch.Tensor)]
    skipped = SkipCount(len(batch) - len(good), sum(1 for x, _ in batch if isinstance(x, str)))
    if not good:
        return None, None, skipped
    images = torch.stack([x for x, _ in good])
    labels = torch.tensor([y for _, y in good], dtype=torch.long)
    return images, labels, skipped


def make_loader(
    dataset: Dataset,
    indices: list[int],
    batch_size: int,
    workers: int = 0,
    shuffle: bool = False,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """A loader over ``indices``; under DDP each rank takes every ``world_size``-th index."""
    from torch.utils.data import DataLoader, Subset

    shard = list(indices)[rank::world_size]
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        Subset(dataset, shard),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=collate_skipping,
        generator=generator,
        pin_memory=pin_memory,
        persistent_workers=False,
    )
