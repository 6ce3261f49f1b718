"""One model's step, in one mode, ready to be called again and again by the timing loop.

Everything a step needs (inputs, targets, optimizer) is made once, before timing; the step
only marks the stopwatch around its regions (forward, backward, whole step) and records which
phase it is in, so a failure can be named (out of memory, compile, backward).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from secli.profiling.results import Failure, ModelEntry
from secli.profiling.timing import Stats, Stopwatch
from secli.util.errors import describe_exception
from secli.util.tensors import logits_of


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _is_compile_error(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.startswith(("torch._dynamo", "torch._inductor", "torch.fx"))


class StepRunner:
    """One model's steps for one mode, with everything it needs already on the device."""

    def __init__(self, entry: ModelEntry, fn: Any, mode: str, x: torch.Tensor, y: torch.Tensor, amp: torch.dtype | None,
                 device: torch.device, train_module: nn.Module) -> None:
        self.entry = entry
        self.fn = fn
        self.mode = mode
        self.x = x
        self.y = y
        self.device = device
        self.amp = amp
        self.phase = "forward"
        self.marks: list[tuple[Any, ...]] = []
        trainable = [p for p in train_module.parameters() if p.requires_grad]
        # A model with nothing to train gets no optimizer; its backward then fails and is reported.
        self.optimizer = torch.optim.SGD(trainable, lr=1e-4, momentum=0.9) if mode == "train" and trainable else None

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp)

    def step(self, watch: Stopwatch) -> tuple[Any, ...]:
        if self.mode == "inference":
            self.phase = "forward"
            with torch.inference_mode(), self._autocast():
                start = watch.mark()
                self.fn(self.x)
                end = watch.mark()
            return (start, end)
        start = watch.mark()
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        fwd_start = watch.mark()
        self.phase = "forward"
        with self._autocast():
            logits = logits_of(self.fn(self.x))
            loss = nn.functional.cross_entropy(logits.float(), self.y) if logits.dim() == 2 else logits.float().mean()
        fwd_end = watch.mark()
        self.phase = "backward"
        loss.backward()
        bwd_end = watch.mark()
        self.phase = "optimizer"
        if self.optimizer is not None:
            self.optimizer.step()
        end = watch.mark()
        return (start, fwd_start, fwd_end, bwd_end, end)

    def stats(self, watch: Stopwatch) -> tuple[Stats, Stats | None, Stats]:
        if self.mode == "inference":
            times = [watch.elapsed_ms(m[0], m[1]) for m in self.marks]
            stats = Stats.of(times)
            return stats, None, stats
        forward = Stats.of([watch.elapsed_ms(m[1], m[2]) for m in self.marks])
        backward = Stats.of([watch.elapsed_ms(m[2], m[3]) for m in self.marks])
        step = Stats.of([watch.elapsed_ms(m[0], m[4]) for m in self.marks])
        return forward, backward, step


def classify_failure(exc: BaseException, runner_phase: str, mode: str, batch: int, compiled: bool) -> Failure:
    if is_out_of_memory(exc):
        hint = f"try -b {batch // 2} or --auto-batch" if batch > 1 else "try a smaller --image-size"
        return Failure("oom", f"out of memory at batch size {batch} ({hint})", mode)
    if compiled and _is_compile_error(exc):
        return Failure("compile", f"torch.compile failed: {describe_exception(exc)}", mode)
    if mode == "train" and runner_phase == "backward":
        return Failure("backward", f"cannot run backward: {describe_exception(exc)}", mode)
    return Failure("error", f"{mode} failed: {describe_exception(exc)}", mode)
