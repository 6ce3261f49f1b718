"""One forward pass with hooks on every module: what each call received and returned.

Sites by pattern need the channels after a module, sites by structure need to see which
module's output is added to a block's input, and native attention needs the width a module
runs at. None of this is in the module tree, all of it is in one forward pass: a probe.

The probe runs in eval mode under ``no_grad`` (BatchNorm statistics stay as they were) on a
small seeded input, batch 2; every module's training flag is restored and every hook removed
afterwards, so the model is left exactly as it was. It tries a small side first (cheap, and
channel counts do not depend on it), then the model's own input size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from secli.util.errors import SecliError, describe_exception

#: Batch 2: per-sample values differ, and a 1 x 1 map still gives two values per channel.
PROBE_BATCH = 2
#: The small side tried first; a model that needs another size is probed at its own.
SMALL_SIDE = 64


@dataclass
class Call:
    """One call of one module in the probe forward, in the order the calls started."""

    path: str
    module: nn.Module
    start: int
    end: int = -1
    in_shape: tuple[int, ...] | None = None  # of the first tensor argument
    out_shape: tuple[int, ...] | None = None  # of the output, when it is one tensor
    input: torch.Tensor | None = None  # values, kept only where asked (4-D tensors)
    output: torch.Tensor | None = None

    def inside(self, other: Call) -> bool:
        """Whether this call ran during ``other`` (a nested call, by time)."""
        return other.start < self.start and self.end < other.end


def _first_tensor(args: tuple[object, ...]) -> torch.Tensor | None:
    return next((a for a in args if isinstance(a, torch.Tensor)), None)


def probe_sizes(input_size: int) -> tuple[int, ...]:
    return (SMALL_SIDE, input_size) if input_size > SMALL_SIDE else (input_size,)


def record_calls(model: nn.Module, sizes: Sequence[int], keep_values: bool = False,
                 label: str = "the model") -> tuple[list[Call], int]:
    """The calls of one forward pass at the first of ``sizes`` that runs, and that side.

    ``keep_values``: also keep (a copy of) every 4-D input and output, for the structure
    checks; shapes only otherwise.
    """
    errors: list[str] = []
    for size in dict.fromkeys(sizes):
        try:
            return _record(model, size, keep_values), size
        except SecliError:
            raise
        except Exception as exc:  # a model that cannot take this size; try the next
            errors.append(f"{size} px: {describe_exception(exc, 100)}")
    raise SecliError(
        f"cannot run {label} on a probe input to find its sites ({'; '.join(errors)})",
        hint="a model that needs another input size can say so with an 'input_size' attribute",
    )


def _record(model: nn.Module, size: int, keep_values: bool) -> list[Call]:
    calls: list[Call] = []
    stack: dict[int, list[Call]] = {}
    counter = [0]

    def keep(t: torch.Tensor | None) -> torch.Tensor | None:
        return t.detach().clone() if keep_values and t is not None and t.dim() == 4 else None

    def pre(module: nn.Module, args: tuple[object, ...], path: str) -> None:
        counter[0] += 1
        first = _first_tensor(args)
        call = Call(path, module, counter[0], in_shape=tuple(first.shape) if first is not None else None,
                    input=keep(first))
        calls.append(call)
        stack.setdefault(id(module), []).append(call)

    def post(module: nn.Module, _args: tuple[object, ...], out: object) -> None:
        counter[0] += 1
        call = stack[id(module)].pop()
        call.end = counter[0]
        if isinstance(out, torch.Tensor):
            call.out_shape = tuple(out.shape)
            call.output = keep(out)

    handles = []
    for path, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(lambda m, a, path=path: pre(m, a, path)))
        handles.append(module.register_forward_hook(post))
    modes = {module: module.training for module in model.modules()}
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.randn(PROBE_BATCH, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in modes.items():
            module.training = mode
    return calls


def call_counts(calls: Sequence[Call]) -> dict[int, int]:
    """How many times each module (by id) was called: a module called twice cannot be wrapped
    for one site without changing the other."""
    counts: dict[int, int] = {}
    for call in calls:
        counts[id(call.module)] = counts.get(id(call.module), 0) + 1
    return counts


def is_feature_map(shape: tuple[int, ...] | None) -> bool:
    """(N, C, H, W) from a square probe: 4-D with H == W. A 4-D output whose last two sides
    differ is most likely channels-last (N, H, W, C), as inside ConvNeXt blocks."""
    return shape is not None and len(shape) == 4 and shape[2] == shape[3]
