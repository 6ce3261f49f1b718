"""What one ``train`` call did, as data: ``TrainRun.to_dict()`` is ``secli train --format json``.

Kept apart from the workflow so renderers and ``secli report`` read the same shape without the
training code, and so the workflow stays one screenful per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secli.util.envelope import envelope

if TYPE_CHECKING:
    from secli.training.loop import TrainResult

#: train()'s arguments that are not part of the request (callbacks).
_NOT_INPUTS = ("progress", "on_epoch")


def run_inputs(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments a ``train`` call was given (None left out), as JSON-ready values."""
    inputs: dict[str, Any] = {}
    for key, value in arguments.items():
        if value is None or key in _NOT_INPUTS:
            continue
        if is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        inputs[key] = value
    return inputs


@dataclass
class TrainRun:
    """What one :func:`train` call did; ``to_dict()`` is what ``secli train --format json`` prints."""

    history: TrainResult
    saved: Path
    model: str  # the model's label, e.g. "resnet18 + SE r=16 standard"
    class_names: list[str]
    input_size: int
    device: str
    data: str
    new_head: str | None = None  # the pretrained classifier that was replaced, if one was
    inputs: dict[str, Any] = field(default_factory=dict)  # what was asked: the envelope's inputs

    @property
    def skipped(self) -> int:
        """Unreadable images skipped, summed over the epochs."""
        return sum(e.skipped for e in self.history.epochs)

    @property
    def too_large(self) -> int:
        """Of the skipped images, those over the pixel budget, summed over the epochs."""
        return sum(e.too_large for e in self.history.epochs)

    @property
    def dropped(self) -> int:
        """Images of batches left too small to train on (``secli.training.batches``), over the epochs."""
        return sum(e.dropped for e in self.history.epochs)

    def to_dict(self) -> dict[str, Any]:
        """The results envelope: the history, the saved file and what the run used."""
        results = {
            **self.history.to_dict(), "saved": str(self.saved), "model": self.model, "data": self.data,
            "class_names": self.class_names, "image_size": self.input_size, "device": self.device,
            "new_head": self.new_head, "skipped": self.skipped, "too_large": self.too_large,
            "dropped": self.dropped,
        }
        return envelope("train", self.inputs, results)
