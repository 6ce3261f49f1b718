"""Every architecture secli builds: secli's all-ops count against an independent op-by-op count.

The reference here is a ``TorchDispatchMode`` that sees each ATen kernel the forward pass runs
(below autograd, after PyTorch's own decompositions: ``linear`` arrives as ``addmm``, an
adaptive pool to 1x1 as ``mean``, a fused attention as its CPU kernel) and prices it by the rules
of the convention table in docs/complexity.md, written out again below without reading secli's handles. secli
counts from fvcore's JIT trace instead; the two must agree within 0.1% for every network, with an
SE block injected wherever the architecture takes one.

Input sizes are small (64 px; 75 px for Inception v3; ViT-Tiny at its fixed 224). By default one
network per family and variant of each op runs (15 networks, ~1 min on 2 cores); set
``SECLI_FULL_SWEEP=1`` for every torchvision name in ``ARCHITECTURES`` (~2.5 min more on 2 idle
cores) except the slowest to build and trace: regnet_y_16gf/32gf/128gf, efficientnet_b5..b7 and
efficientnet_v2_m/l (same blocks as their smaller siblings, which run). Every kind of the zoo
(docs/ZOO.md) is counted the same way in ResNet-18, where the two totals must be equal.
"""

from __future__ import annotations

import os
from math import prod
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from secli.blocks.spec import BlockSpec
from secli.complexity.flops import fvcore_count
from secli.networks.architectures import ARCHITECTURES
from secli.networks.inject import inject
from secli.networks.models import build_base

aten = torch.ops.aten

ELEMENTWISE = {
    "relu", "relu_", "hardtanh", "hardtanh_", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardsigmoid",
    "hardsigmoid_", "hardswish", "hardswish_", "silu", "silu_", "gelu", "mul", "mul_", "add", "add_",
    "sub", "sub_", "div", "div_", "clamp", "clamp_", "leaky_relu", "leaky_relu_",
    "pow", "sqrt", "upsample_nearest2d",  # upsample: fvcore's one copy per output, kept by secli
}
FREE = {
    "view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "clone", "cat", "stack",
    "split", "split_with_sizes", "chunk", "unbind", "select", "slice", "squeeze", "unsqueeze", "flatten",
    "detach", "alias", "empty", "zeros", "ones", "copy_", "_to_copy", "contiguous", "as_strided",
    "constant_pad_nd", "index", "lift_fresh", "new_zeros", "zeros_like", "empty_like", "fill_",
}


def numel(x: Any) -> int:
    return x.numel() if isinstance(x, torch.Tensor) else 0


class OpCounter(TorchDispatchMode):
    """One count per ATen kernel, by the documented rules; unknown kernels are collected."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self.unknown: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.total += self.price(func.overloadpacket.__name__, args, out)
        return out

    def price(self, name: str, args: tuple, out: Any) -> int:
        first = out[0] if isinstance(out, (tuple, list)) else out
        if name in FREE:
            return 0
        if name in ELEMENTWISE:
            return numel(first)
        if name == "addcmul":  # a + b * c: a multiply and an add per output element
            return 2 * numel(first)
        if name == "convolution":
            x, w, bias = args[0], args[1], args[2]
            macs = numel(first) * (x.shape[1] // args[8]) * prod(w.shape[2:])
            return macs + (numel(first) if bias is not None else 0)
        if name == "addmm":  # bias + a @ b
            a, b = args[1], args[2]
            return a.shape[0] * a.shape[1] * b.shape[1] + numel(first)
        if name == "mm":
            return args[0].shape[0] * args[0].shape[1] * args[1].shape[1]
        if name == "bmm":
            return args[0].shape[0] * args[0].shape[1] * args[0].shape[2] * args[1].shape[2]
        if name in ("_native_batch_norm_legit_no_training", "native_batch_norm"):
            return numel(args[0]) * (2 if args[1] is not None else 1)
        if name == "native_layer_norm":
            return numel(args[0]) * (5 if args[2] is not None else 4)
        if name in ("mean", "amax", "_adaptive_avg_pool2d", "adaptive_max_pool2d"):
            return numel(args[0])
        if name == "sum":
            return numel(args[0]) - numel(first)
        if name == "var":  # mean, subtract, square (N_in each), sum (N_in - N_out), divide (N_out)
            return 4 * numel(args[0])
        if name in ("max_pool2d_with_indices", "avg_pool2d"):
            kernel = list(args[1])
            area = kernel[0] ** 2 if len(kernel) == 1 else prod(kernel)
            return area * numel(first)
        if name == "_softmax":
            return 3 * numel(first)
        if name.startswith("_scaled_dot_product"):
            q, k, v = args[0], args[1], args[2]
            scores = prod(q.shape[:-1]) * k.shape[-2]
            return scores * (q.shape[-1] + v.shape[-1]) + 4 * scores
        self.unknown.add(name)
        return 0


def reference_count(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, set[str]]:
    counter = OpCounter()
    with torch.no_grad(), counter:
        model(x)
    return counter.total, counter.unknown


SLOW = {"regnet_y_16gf", "regnet_y_32gf", "regnet_y_128gf", "efficientnet_b5", "efficientnet_b6",
        "efficientnet_b7", "efficientnet_v2_m", "efficientnet_v2_l"}
QUICK = {"resnet18", "resnext50_32x4d", "vgg11", "vgg11_bn", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x0_5",
         "googlenet", "inception_v3", "efficientnet_b0", "regnet_y_400mf"}
FULL = os.environ.get("SECLI_FULL_SWEEP") == "1"
TORCHVISION = [name for name in ARCHITECTURES if name not in SLOW and (FULL or name in QUICK)]
TIMM = ["timm:resnet10t", "timm:efficientnet_b0", "timm:vit_tiny_patch16_224"]
SIZES = {"inception_v3": 75, "timm:vit_tiny_patch16_224": 224}


@pytest.mark.parametrize("arch", TORCHVISION + TIMM)
def test_all_ops_equals_an_op_by_op_count(arch: str) -> None:
    if arch.startswith("timm:"):
        pytest.importorskip("timm")
    torch.manual_seed(0)
    model, info = build_base(arch, None, 10)
    if info.adapter is not None:
        inject(model, info.adapter, BlockSpec(kind="se"), arch)
    model.eval()
    size = SIZES.get(arch, 64)
    x = torch.randn(1, 3, size, size)
    report = fvcore_count(model, x)
    expected, unknown = reference_count(model, x)
    assert not unknown, f"the reference counter has no rule for {sorted(unknown)}"
    assert not report.unsupported, report.unsupported
    assert abs(report.all_ops - expected) <= 1e-3 * expected, (report.all_ops, expected, report.by_operator)


ZOO = ["cbam", "cbam-channel", "gc", "coord", "simam", "ge", "ge-plus", "fca", "srm", "gct"]


# 56: every map a multiple of 7 (FcaNet's own-size filter), 64: pooled to 7x7
@pytest.mark.parametrize("size", [56, 64])
def test_every_zoo_kind_equals_an_op_by_op_count(size: int) -> None:
    """Each kind of docs/ZOO.md in resnet18, counted by secli and by the reference, op by op."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, size, size)
    for kind in ZOO:
        model, info = build_base("resnet18", None, 10)
        inject(model, info.adapter, BlockSpec(kind=kind), "resnet18")
        model.eval()
        report = fvcore_count(model, x)
        expected, unknown = reference_count(model, x)
        assert not unknown, (kind, sorted(unknown))
        assert not report.unsupported, (kind, report.unsupported)
        assert report.all_ops == expected, (kind, report.all_ops, expected, report.by_operator)
