"""Shared set-up of the drop-in matrix (tests/test_dropin*.py): one network built twice with the
same weights, the default ``impl="fused"`` and ``impl="eager"``, and a comparison of everything
a program could observe.

Tolerances (float64): the fused blocks do the eager arithmetic in another order (a batched dot
where eager multiplies then sums, ``addcmul`` where eager multiplies then adds), so values agree
to float64 rounding (eps 2.2e-16), amplified by the network's conditioning. Measured, as the
largest difference over a tensor divided by its largest entry, over every mode of
tests/test_dropin.py: SE-ResNets <= 1.3e-12, SK-ResNet-18 <= 3.8e-13, SK-ResNet-50 <= 1.3e-10
(every block's attention BatchNorm normalises four values), ECA 0 (one implementation), and 0
wherever the default network falls back to the eager composition (jit trace, ``torch.func``
transforms, parametrized FCs). ``RTOL``/``ATOL`` = 1e-9 leave a margin of 7 over the worst, are 100 times below
one float32 rounding (a path that ran in float32 differs by 1e-7 to 1e-4), and a missed term
(``g * a`` or ``dz / HW``) or a second BatchNorm update changes values by O(1)
(``test_the_tolerance_would_see_a_missing_term``). ``ATOL`` scales with the tensor's largest
entry: rounding in a reordered sum is bounded by eps times the sum of the terms' magnitudes, so
an entry that is a near-cancellation of large terms (second derivatives through training-mode
BatchNorm reach 1e9 here) carries the error of its neighbours.

Batch 4, not 2: training-mode BatchNorm over two values per channel (SK's attention BN on its
(N, d, 1, 1) map, and every BN of layer4 at 32 px, where the map is 1x1) outputs exactly +-1
whatever its input, so the gradient through it is mathematically zero and numerically pure
rounding noise amplified by 1/std: fused and eager then differed by 1e-6 on SK-ResNet-50's
``fc`` weights, as two eager runs with another summation order would (batch 3: 5e-9, batch 4:
4e-11, batch 6: 1.5e-12). Micro-batches are never repeats of one image for the same reason.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

from secli.blocks.se import SqueezeExcitation
from secli.blocks.sk import SelectiveKernel
from secli.blocks.spec import BlockSpec, ModelSpec
from secli.networks.models import build

RTOL, ATOL = 1e-9, 1e-9
ARCHS = ("resnet18", "resnet50")  # a basic-block and a bottleneck network
KINDS = ("se", "sk", "eca")
CUDA = pytest.param("cuda",
                    marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")])
DEVICES = ("cpu", CUDA)
#: the module each kind's gate comes out of (where excitation analysis hooks)
GATE_MODULE = {"se": "gate_act", "sk": "attn_softmax", "eca": "gate"}


@dataclass
class Nets:
    """One architecture with one block kind, built twice with identical weights (float64)."""

    device: str
    arch: str
    kind: str
    eager: nn.Module
    fused: nn.Module
    x: torch.Tensor

    def copies(self) -> tuple[nn.Module, nn.Module]:
        return copy.deepcopy(self.eager), copy.deepcopy(self.fused)


def build_pair(device: str, arch: str, kind: str, dtype: torch.dtype = torch.float64) -> Nets:
    """Eager and default-impl networks with the same weights; ECA has one implementation only."""
    torch.manual_seed(0)
    fused = build(ModelSpec(arch, BlockSpec(kind=kind), num_classes=10), load_weights=False).model
    if kind == "eca":
        eager = copy.deepcopy(fused)
    else:
        eager = build(ModelSpec(arch, BlockSpec(kind=kind, impl="eager"), num_classes=10), load_weights=False).model
        eager.load_state_dict(fused.state_dict())
        blocks = [m for m in fused.modules() if isinstance(m, (SqueezeExcitation, SelectiveKernel))]
        assert blocks
        assert all(m.impl_used == "fused" for m in blocks)
        assert all(m.residual_folded for m in blocks if isinstance(m, SqueezeExcitation))
        assert not any(getattr(m, "impl_used", "eager") == "fused" for m in eager.modules())
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 32, 32, generator=generator, dtype=dtype)  # batch 4: see the module doc
    return Nets(device, arch, kind, eager.to(device=device, dtype=dtype), fused.to(device=device, dtype=dtype),
                x.to(device))


def net_params() -> list[Any]:
    """(device, arch, kind) for every network of the matrix, CUDA ones marked ``cuda``."""
    found = []
    for device in DEVICES:
        marks = device.marks if hasattr(device, "marks") else ()
        name = device.values[0] if hasattr(device, "values") else device
        for arch in ARCHS:
            for kind in KINDS:
                found.append(pytest.param((name, arch, kind), marks=marks, id=f"{name}-{arch}-{kind}"))
    return found


def leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf) for nested dicts/lists/tuples of tensors and plain values."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{prefix}/{key}")
    elif isinstance(value, (list, tuple)):
        yield (f"{prefix}#len", len(value))
        for index, item in enumerate(value):
            yield from leaves(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def assert_same(got: Any, expected: Any, rtol: float = RTOL, atol: float = ATOL) -> None:
    """Every leaf equal: tensors to float64 rounding (same dtype, shape and layout), others exactly."""
    got_leaves, expected_leaves = list(leaves(got)), list(leaves(expected))
    assert [k for k, _ in got_leaves] == [k for k, _ in expected_leaves]
    for (path, a), (_, b) in zip(got_leaves, expected_leaves, strict=True):
        if isinstance(b, torch.Tensor):
            assert isinstance(a, torch.Tensor), path
            assert a.dtype == b.dtype, path
            assert a.shape == b.shape, path
            if a.dim() == 4 and a.numel() > a.shape[0] * a.shape[1]:  # same memory format
                assert a.is_contiguous(memory_format=torch.channels_last) == b.is_contiguous(
                    memory_format=torch.channels_last), path
            scale = max(1.0, float(b.detach().abs().max())) if b.numel() and b.is_floating_point() else 1.0
            torch.testing.assert_close(a.detach(), b.detach(), rtol=rtol, atol=atol * scale,
                                       msg=lambda m, p=path: f"{p}: {m}")
        else:
            assert a == b, path


def state(model: nn.Module) -> dict[str, Any]:
    """Parameter gradients (None where none) and every buffer (BN statistics, num_batches_tracked)."""
    grads = {name: p.grad for name, p in model.named_parameters()}
    return {"grads": {k: v if v is not None else "none" for k, v in grads.items()},
            "buffers": dict(model.named_buffers())}
