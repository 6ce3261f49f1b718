"""The ReLU after an SK unit is gone from secli's SK-ResNet/ResNeXt, and nothing else changed."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from secli.blocks import SelectiveKernel
from secli.blocks.spec import BlockSpec
from secli.complexity.flops import fvcore_count
from secli.networks.inject import inject
from secli.networks.models import build_base


def with_relu_back(model: nn.Module) -> nn.Module:
    """The same weights with the dropped ReLU restored (the network as it was before the change)."""
    restored = copy.deepcopy(model)
    for block in restored.modules():
        if "forward" in vars(block):  # torchvision: the block's own forward again
            del block.forward
        for act in ("act1", "act2"):  # timm
            if hasattr(block, "drop_block") and isinstance(getattr(block, act, None), nn.Identity):
                bottleneck = hasattr(block, "conv3")
                if act == ("act2" if bottleneck else "act1"):
                    setattr(block, act, nn.ReLU(inplace=True))
    return restored


@pytest.mark.parametrize(("arch", "groups"), [("resnet18", 32), ("resnext50_32x4d", 32), ("timm:resnet10t", 8)])
def test_dropping_the_relu_after_sk_changes_no_output(arch: str, groups: int) -> None:
    if arch.startswith("timm:"):
        pytest.importorskip("timm")
    torch.manual_seed(0)
    model, info = build_base(arch, None, 10)
    inject(model, info.adapter, BlockSpec(kind="sk", groups=groups), arch)
    model.eval()
    before = with_relu_back(model).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), before(x))
    # one ReLU op fewer per SK output element
    sizes: list[int] = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel()))
             for m in model.modules() if isinstance(m, SelectiveKernel)]
    with torch.no_grad():
        model(x[:1])
    for h in hooks:
        h.remove()
    sk_outputs = sum(sizes)
    relu_now = fvcore_count(model, x[:1]).by_operator["relu"]
    relu_before = fvcore_count(before, x[:1]).by_operator["relu"]
    assert relu_before - relu_now == sk_outputs > 0

