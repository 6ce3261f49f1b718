"""Reading the tensor out of whatever a module returns.

Models and blocks return a tensor, a tuple (Inception's auxiliary heads, GoogLeNet's named
tuple) or a dict (``{"logits": ...}``); analysis code wants the main tensor, so one helper says
which one that is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def first_tensor(output: Any) -> torch.Tensor | None:
    """The tensor itself, the first element of a tuple/list, or a dict's ``logits``; else None."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if isinstance(output, dict) and isinstance(output.get("logits"), torch.Tensor):
        return output["logits"]
    return None


def logits_of(output: Any) -> torch.Tensor:
    """The class scores of a forward pass; anything else is a clear error, not a crash later."""
    tensor = first_tensor(output)
    if tensor is None:
        raise TypeError(f"the model returned {type(output).__name__}, not a tensor of class scores")
    return tensor
