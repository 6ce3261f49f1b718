"""Estimating the memory a run will need before it allocates it, and refusing what cannot fit.

Why: ``profile --image-size 4096 -b 64`` once ran 100 s before failing to allocate 12.9 GB.
A run whose activations (or statistics) cannot fit in the free memory is refused up front,
with the estimate, instead of running until the allocator gives up or the machine swaps.

The estimates are lower bounds, so nothing that would run is refused:

- ``activation_bytes``: one image through the model at a small probe size, with a hook on
  every leaf module; per image, inference keeps at least the largest layer's input and output
  alive at once, training at least every parametrised layer's output (what backward needs);
  scaled by the batch and by (image size / probe size)^2, since a conv net's feature maps grow
  with the image's area.
- the caller's own arithmetic for statistics (``secli.excitation``: sites x classes x bins).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from secli.util.errors import SecliUsageError

if TYPE_CHECKING:
    from torch import nn

#: The probe's image side: small enough to cost milliseconds, large enough for every network
#: here (Inception v3 needs 75 px).
PROBE_SIZE = 128


def available_bytes(device: Any = "cpu") -> int | None:
    """Memory free for a new allocation on ``device`` (CPU: the kernel's MemAvailable; CUDA:
    ``torch.cuda.mem_get_info``); None where it cannot be told."""
    kind = str(device).split(":")[0]
    if kind == "cuda":
        import torch

        try:
            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        except (RuntimeError, AssertionError, ValueError):
            return None
    if kind != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def gigabytes(count: float) -> str:
    return f"{count / 1e9:,.1f} GB"


def check_fits(needed: int | None, what: str, device: Any, hint: str) -> None:
    """Refuse (exit 2) when ``needed`` bytes exceed what ``device`` has free; the message gives both."""
    if needed is None:
        return
    free = available_bytes(device)
    if free is not None and needed > free:
        raise SecliUsageError(f"{what} need at least {gigabytes(needed)}, more than the {gigabytes(free)} free on "
                              f"{device}; refused before allocating it", hint=hint)


def activation_bytes(model: nn.Module, image_size: int, batch: int, train: bool,
                     bytes_per_value: int = 4) -> int | None:
    """A lower bound on the activation memory of one step of ``model`` at ``image_size`` px and
    ``batch`` images (see the module's docstring); None when the probe cannot run the model."""
    import torch

    probe = min(image_size, PROBE_SIZE)
    largest = 0  # inference: the largest input + output of one leaf module, per image
    kept = 0  # training: the outputs of every leaf module with parameters, per image

    def record(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        nonlocal largest, kept
        inputs = [a for a in args if isinstance(a, torch.Tensor)]
        size_out = output.numel() if isinstance(output, torch.Tensor) else 0
        in_place = size_out and any(a.data_ptr() == output.data_ptr() for a in inputs)  # ReLU(inplace=True)
        largest = max(largest, sum(a.numel() for a in inputs) + (0 if in_place else size_out))
        if any(True for _ in module.parameters(recurse=False)):
            kept += size_out

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    hooks = [m.register_forward_hook(record) for m in leaves]
    was_training = model.training
    try:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        model.eval()
        with torch.inference_mode():
            model(torch.zeros(1, 3, probe, probe, device=device))
    except Exception:  # a model the probe cannot run is simply not estimated
        return None
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    per_image = kept if train else largest
    return int(per_image * bytes_per_value * batch * (image_size / probe) ** 2)
