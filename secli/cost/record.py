"""Every ATen op of a forward (or a training step) with its bytes and FLOPs, without computing anything.

The model runs on fake tensors (``torch._subclasses.FakeTensorMode``: shapes and dtypes, no
data), so a ResNet-50 forward at 224 px is recorded in a fraction of a second whatever the dtype,
under a ``TorchDispatchMode`` that applies ``secli.cost.rules`` to each op. What is recorded is
what the implementation runs on a GPU without ``SECLI_TRITON``: fused SE/SK blocks take their
fast paths with ATen's ops (``secli.kernels.dispatch.fast_paths_recorded``), so the folded
``addcmul`` + ``relu_`` and the fused backward's ``bmm`` and ``addcmul`` are what is counted, not
the reference composition.

``--dtype bf16|fp16`` runs the forward under ``torch.autocast`` (CPU autocast, on fake tensors):
convolutions and matrix products read 16-bit copies of their inputs (the casts are recorded as
``_to_copy`` ops, weights included, as AMP makes them every step) and write 16-bit outputs; the
other ops follow their inputs' dtype. CUDA's autocast differs only in ops that run in float32
there (softmax, sum): for the networks here those touch per-channel vectors, a few KB.

Each op is attributed to the module that ran it: forward pre/post hooks keep a stack of module
paths; for backward, each autograd node is stamped with the module whose forward created it
(walking from the module's inputs and outputs to nodes not stamped yet), and the node running
an op (``torch._C._current_autograd_node``) names its module.

Costs are linear in the batch (activations scale, weights do not), so a model is recorded at two
batch sizes and each op's cost split into a fixed part and a per-image part: ``OpCost.at(batch)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch._ops import OpOverload
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from secli.cost.rules import NO_KERNEL, compute_dtype, kind_of, op_flops, op_tensors, tensor_bytes
from secli.kernels.dispatch import fast_paths_recorded
from secli.util.errors import SecliError, describe_exception
from secli.util.tensors import logits_of

DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_STAMP = "secli_module"


@dataclass(slots=True)
class RawOp:
    """One op call as recorded at one batch size."""

    name: str
    kind: str  # conv | matmul | vector
    dtype: str  # the dtype it computes in (float32, bfloat16, float16)
    phase: str  # forward | backward | optimizer
    module: str  # path of the module that ran it ("" = the model, or nothing in it)
    flops: float
    read: int
    written: int
    read_fixed: int = 0  # of which weights (and what is made of weights alone): the same at any batch
    written_fixed: int = 0
    all_fixed: bool = False  # every input is a weight (a cast of one): the FLOPs do not grow with the batch either


@dataclass(slots=True)
class OpCost:
    """One op, its cost a fixed part plus a part per image: ``at(batch)``."""

    name: str
    kind: str
    dtype: str
    phase: str
    module: str
    fixed: tuple[float, float, float]  # (flops, read, written) that do not grow with the batch
    per_image: tuple[float, float, float]

    def at(self, batch: float) -> tuple[float, float, float]:
        """(FLOPs, bytes read, bytes written) of this call at ``batch`` images."""
        f, r, w = self.fixed
        pf, pr, pw = self.per_image
        return f + batch * pf, r + batch * pr, w + batch * pw


@dataclass
class Recording:
    """A model's ops at one setting (dtype, inference or training step)."""

    ops: list[OpCost]
    dtype: str
    training: bool
    image_size: int
    site_bytes: dict[str, float] = field(default_factory=dict)  # per image: bytes of each site module's output


class _Recorder(TorchDispatchMode):
    """Records every kernel-launching op; with ``fixed`` (ids of the parameters and buffers), also
    which bytes belong to weights, so one recording splits each op into fixed and per-image parts."""

    def __init__(self, stack: list[str], fixed: set[int] | None = None) -> None:
        super().__init__()
        self.ops: list[RawOp] = []
        self.stack = stack
        self.phase_override: str | None = None
        self.paused = False  # set while the recording itself makes tensors (targets, optimizer state)
        self.fixed = fixed
        self._alive: list[Any] = []  # keeps the fixed tensors' ids from being reused

    def _mark_fixed(self, out: Any) -> None:
        assert self.fixed is not None
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.fixed.add(id(t))
                self._alive.append(t)

    def __torch_dispatch__(self, func: OpOverload, types: Sequence[type], args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if self.paused:
            return out
        if name in NO_KERNEL or func.is_view:
            if self.fixed is not None and any(id(t) in self.fixed for t in tree_flatten(args)[0]
                                              if isinstance(t, torch.Tensor)):
                self._mark_fixed(out)  # a view (t, detach...) of a weight is a weight
            return out
        reads, writes = op_tensors(func, name, args, kwargs, out)
        read, written = sum(b for _, b in reads.values()), sum(b for _, b in writes.values())
        if not written:
            return out  # metadata (prim.device, sizes): writes no tensor, so runs no kernel
        read_fixed = written_fixed = 0
        all_fixed = False
        if self.fixed is not None:
            read_fixed = sum(b for key, (_, b) in reads.items() if key in self.fixed)
            all_fixed = bool(reads) and read_fixed == read and all(key in self.fixed for key in reads)
            if all_fixed:
                self._mark_fixed(out)  # a cast of a weight (autocast's) is a weight too
            written_fixed = written if all_fixed else sum(b for key, (_, b) in writes.items() if key in self.fixed)
        if self.phase_override is not None:
            phase, module = self.phase_override, ""
        elif torch._C._current_graph_task_id() != -1:
            node: Any = torch._C._current_autograd_node()
            phase, module = "backward", (node.metadata.get(_STAMP, "") if node is not None else "")
        else:
            phase, module = "forward", self.stack[-1]
        self.ops.append(RawOp(name, kind_of(name), compute_dtype(args), phase, module,
                              op_flops(func, name, args, kwargs, out), read, written, read_fixed, written_fixed,
                              all_fixed))
        return out


def _stamp(value: Any, path: str) -> None:
    """Name ``path`` in every autograd node behind ``value`` that no module has named yet."""
    todo: list[Any] = [t.grad_fn for t in tree_flatten(value)[0]
                       if isinstance(t, torch.Tensor) and t.grad_fn is not None]
    while todo:
        node = todo.pop()
        if node is None or _STAMP in node.metadata:
            continue
        node.metadata[_STAMP] = path
        todo.extend(next_node for next_node, _ in node.next_functions)


@contextlib.contextmanager
def _module_hooks(model: nn.Module, stack: list[str], sites: set[str], site_bytes: dict[str, float]) -> Iterator[None]:
    handles = []
    for path, module in model.named_modules():
        def pre(_m: nn.Module, args: Any, kwargs: Any, path: str = path) -> None:
            _stamp((args, kwargs), stack[-1])
            stack.append(path)

        def post(_m: nn.Module, _args: Any, _kwargs: Any, out: Any, path: str = path) -> None:
            _stamp(out, path)
            if path in sites:
                first = next((t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)), None)
                if first is not None:
                    site_bytes[path] = float(tensor_bytes(first))
            if len(stack) > 1:
                stack.pop()

        handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(module.register_forward_hook(post, with_kwargs=True))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _record_once(model: nn.Module, sample: tuple[int, ...], batch: int, dtype: str, training: bool, sites: set[str],
                 optimizer: str | None) -> tuple[list[RawOp], dict[str, float]]:
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    stack = [""]
    site_bytes: dict[str, float] = {}
    amp = DTYPES[dtype]
    was_training = model.training
    with mode:  # fake CPU tensors of the parameters' shapes, strides and dtypes, wherever the model lives
        params = {k: _fake_like(p).requires_grad_(p.requires_grad and training) for k, p in model.named_parameters()}
        buffers = {k: _fake_like(b) for k, b in model.named_buffers()}
        x = torch.randn(batch, *sample)
    # inference: the weights are known, so one recording splits fixed from per-image bytes
    recorder = _Recorder(stack, None if training else {id(t) for t in (*params.values(), *buffers.values())})
    model.train(training)
    try:
        with mode, fast_paths_recorded(), _module_hooks(model, stack, sites, site_bytes), recorder, \
                torch.set_grad_enabled(training):
            with torch.autocast("cpu", dtype=amp or torch.bfloat16, enabled=amp is not None):
                logits = logits_of(torch.func.functional_call(model, {**params, **buffers}, (x,)))
                if training:
                    recorder.paused = True
                    target = torch.zeros(batch, dtype=torch.long)
                    recorder.paused = False
                    loss = (nn.functional.cross_entropy(logits.float(), target) if logits.dim() == 2
                            else logits.float().mean())
            if training:
                loss.backward()
                if optimizer is not None:
                    _optimizer_step(recorder, list(params.values()), foreach=optimizer == "foreach")
    finally:
        model.train(was_training)
    return recorder.ops, {k: v / batch for k, v in site_bytes.items()}


def _fake_like(t: torch.Tensor) -> torch.Tensor:
    return torch.empty_strided(t.size(), t.stride(), dtype=t.dtype)


def _optimizer_step(recorder: _Recorder, params: list[torch.Tensor], foreach: bool) -> None:
    """SGD with momentum 0.9 in its steady state (momentum buffers exist), as ``secli profile``'s step."""
    trained = [p for p in params if p.requires_grad and p.grad is not None]
    if not trained:
        return
    optimizer = torch.optim.SGD(trained, lr=1e-4, momentum=0.9, foreach=foreach)
    recorder.paused = True
    for p in trained:
        optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p)
    recorder.paused = False
    recorder.phase_override = "optimizer"
    try:
        optimizer.step()
    finally:
        recorder.phase_override = None


def record(model: nn.Module, image_size: int, dtype: str = "fp32", training: bool = False,
           sites: Sequence[str] = (), optimizer: str | None = None, batch: int = 1,
           sample: tuple[int, ...] | None = None) -> Recording:
    """``model``'s ops at ``image_size`` px, split into fixed and per-image parts.

    A forward is recorded once at ``batch`` images, its bytes split by what they belong to (weights
    and what is cast from them are fixed, the rest grows with the batch); a training step (whose
    weight gradients no tensor marks as such) is recorded at ``batch`` and ``2 * batch`` images
    (2 or more: BatchNorm) and each op's cost split between the two. ``sites``:
    module paths whose output size is kept (one pass over a block's tensor). ``optimizer``
    (training only): ``"foreach"`` (as on CUDA) or ``"loop"`` (as on CPU) adds an SGD step.
    ``sample``: one input's shape (default ``(3, image_size, image_size)``).
    """
    if dtype not in DTYPES:
        raise SecliError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
    small = max(batch, 2 if training else 1)
    wanted = set(sites)
    shape = sample if sample is not None else (3, image_size, image_size)
    try:
        first, site_bytes = _record_once(model, shape, small, dtype, training, wanted, optimizer)
        second = _record_once(model, shape, 2 * small, dtype, training, wanted, optimizer)[0] if training else None
    except SecliError:
        raise
    except Exception as exc:  # an op fake tensors cannot run: reported, not a traceback
        raise SecliError(f"cannot record the ops on fake tensors: {describe_exception(exc, 200)}") from None
    ops = _split(first, second, small) if second is not None else [_known(op, small) for op in first]
    return Recording(ops, dtype, training, image_size, site_bytes)


def _known(op: RawOp, batch: int) -> OpCost:
    """An op whose weight bytes were marked while it was recorded."""
    flops_fixed = op.flops if op.all_fixed else 0.0
    fixed = (flops_fixed, float(op.read_fixed), float(op.written_fixed))
    per = ((op.flops - flops_fixed) / batch, (op.read - op.read_fixed) / batch, (op.written - op.written_fixed) / batch)
    return OpCost(op.name, op.kind, op.dtype, op.phase, op.module, fixed, per)


def _split(first: list[RawOp], second: list[RawOp], batch: int) -> list[OpCost]:  # training steps
    """Each op's fixed and per-image parts from the same op at ``batch`` and ``2 * batch``."""
    same = len(first) == len(second) and all(a.name == b.name for a, b in zip(first, second, strict=True))
    ops = []
    for index, a in enumerate(first):
        at_one = (a.flops, float(a.read), float(a.written))
        if same:
            b = second[index]
            per = tuple((y - x) / batch
                        for x, y in zip(at_one, (b.flops, float(b.read), float(b.written)), strict=True))
            fixed = tuple(max(0.0, x - batch * p) for x, p in zip(at_one, per, strict=True))
        else:  # the op sequence depends on the batch: scale the whole cost with it
            per, fixed = tuple(v / batch for v in at_one), (0.0, 0.0, 0.0)
        ops.append(OpCost(a.name, a.kind, a.dtype, a.phase, a.module, fixed, per))  # type: ignore[arg-type]
    return ops
