"""Input sizes: the example tensor a count runs on, and a clear error when it is too small.

A network fails deep inside a pooling or convolution layer when the feature map shrinks to
nothing; PyTorch's message names neither the layer's place in the network nor the size that
would work. Here the failing layer is found with forward pre-hooks, and the smallest working
size is found by trying (a few cheap forwards at small sizes), not taken on trust.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from secli.util.errors import SecliUsageError, first_line


def example_input(size: int) -> torch.Tensor:
    if size < 1:
        raise SecliUsageError(f"--input-size must be >= 1, got {size}")
    return torch.zeros(1, 3, size, size)


def _runs(model: nn.Module, size: int) -> bool:
    try:
        with torch.no_grad():
            model(example_input(size))
    except (RuntimeError, ValueError):
        return False
    return True


def _failing_layer(model: nn.Module, size: int) -> tuple[str, str, str]:
    """(module path, class name, PyTorch's first message line) of the layer that raises."""
    entered: list[str] = []
    handles = []
    names = {module: name for name, module in model.named_modules()}

    def pre_hook(module: nn.Module, args: object) -> None:
        entered.append(names.get(module, "?"))

    for module in model.modules():
        if not list(module.children()):
            handles.append(module.register_forward_pre_hook(pre_hook))
    message = ""
    try:
        with torch.no_grad():
            model(example_input(size))
    except (RuntimeError, ValueError) as exc:
        message = first_line(exc)
    finally:
        for handle in handles:
            handle.remove()
    path = entered[-1] if entered else "(model)"
    cls = type(model.get_submodule(path)).__name__ if entered else type(model).__name__
    return path, cls, message


def smallest_working_size(model: nn.Module, too_small: int, upper: int) -> int | None:
    """The smallest square input in (too_small, upper] the model accepts, found by trying.

    Doubling first, then bisection, so that most tries run at small (cheap) sizes.
    """
    low, high = too_small, None  # low fails; high works
    probe = max(2 * too_small, too_small + 1)
    while high is None:
        probe = min(probe, upper)
        if _runs(model, probe):
            high = probe
        elif probe >= upper:
            return None
        else:
            low, probe = probe, 2 * probe
    while high - low > 1:
        mid = (low + high) // 2
        if _runs(model, mid):
            high = mid
        else:
            low = mid
    return high


def run_or_explain(
    model: nn.Module,
    size: int,
    label: str,
    upper: int,
    action: Callable[[torch.Tensor], object] | None = None,
) -> object:
    """Run ``action`` (default: a forward) on a 1x3xSxS input; explain a size failure in one line."""
    inputs = example_input(size)
    try:
        if action is not None:
            return action(inputs)
        with torch.no_grad():
            return model(inputs)
    except (RuntimeError, ValueError):
        minimum = smallest_working_size(model, size, max(size, upper))
        if minimum is None:
            raise  # not a size problem: let the caller report it
    path, cls, message = _failing_layer(model, size)
    raise SecliUsageError(
        f"input {size}x{size} is too small for {label}: layer {path} ({cls}) fails ({message[:120]}); "
        f"the smallest input that works is {minimum}x{minimum}",
        hint="raise --input-size",
    )
