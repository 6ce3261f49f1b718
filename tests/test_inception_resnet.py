"""SE-Inception-ResNet-v2 (timm's ``inception_resnet_v2``): the SE paper's Fig. 3.

Expected numbers come from the network's published layout (Szegedy et al. 2016: 10 x Block35 at
320 channels, 20 x Block17 at 1088, 10 x Block8 at 2080) and the SE closed form, and where the
block sits is checked through what the module computes (timm's ``act(branch * scale + x)``).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from secli.blocks.spec import BlockSpec, ModelSpec
from secli.networks.models import build, build_base
from secli.networks.sites import count_params
from secli.util.errors import SecliUsageError

pytest.importorskip("timm")

ARCH = "timm:inception_resnet_v2"
LAYOUT = {5: (10, 320), 6: (20, 1088), 7: (10, 2080)}  # stage: (modules, channels)


@pytest.fixture(scope="module")
def se_irv2():
    return build(ModelSpec(ARCH, BlockSpec(kind="se")))


@pytest.fixture(scope="module")
def base_irv2():
    model, info = build_base(ARCH)
    return model, info


def test_sites_are_the_40_inception_resnet_modules(se_irv2) -> None:
    expected = [(f"SE_{stage}_{i}", c) for stage, (n, c) in LAYOUT.items() for i in range(1, n + 1)]
    assert [(s.name, s.channels) for s in se_irv2.sites] == expected
    assert se_irv2.sites[-1].module_path == "block8.conv2d.1"  # the last Block8 is outside repeat_2


def test_added_parameters_equal_the_closed_form(se_irv2, base_irv2) -> None:
    r = 16
    expected = sum(n * (2 * c * c // r + c // r + c) for n, c in LAYOUT.values())
    assert se_irv2.report.params_added == expected == 8_543_980
    assert count_params(se_irv2.model) - count_params(base_irv2[0]) == expected


def test_forward_at_the_smallest_input(se_irv2, base_irv2) -> None:
    _, info = base_irv2
    assert (info.default_input, info.min_input) == (299, 75)
    with torch.no_grad():
        out = se_irv2.model.eval()(torch.randn(1, 3, info.min_input, info.min_input))
    assert out.shape == (1, 1000)
    assert torch.isfinite(out).all()


def _force_gate(module: nn.Module, value: float) -> None:
    """Make the module's SE output exactly ``value`` (0 or 1) for every input: sigmoid(+-1e4)."""
    se = module.conv2d[1]
    with torch.no_grad():
        se.fc2.weight.zero_()
        se.fc2.bias.fill_(1e4 if value == 1 else -1e4)


@pytest.mark.parametrize(("path", "channels", "side"),
                         [("repeat.3", 320, 7), ("repeat_1.0", 1088, 5), ("block8", 2080, 3)])
def test_se_scales_the_branch_before_the_residual_sum(se_irv2, base_irv2, path: str, channels: int, side: int) -> None:
    """Gate 0 leaves act(0 * scale + x): relu(x), or x for the last Block8 (no ReLU); gate 1
    leaves the original module. Only an SE on the branch, before the sum, does both."""
    original = base_irv2[0].get_submodule(path).eval()
    module = copy.deepcopy(se_irv2.model.get_submodule(path)).eval()
    x = torch.randn(2, channels, side, side)
    with torch.no_grad():
        _force_gate(module, 0)
        closed = module(x)
        _force_gate(module, 1)
        module.conv2d[0].load_state_dict(original.conv2d.state_dict())
        for name, child in original.named_children():
            if name != "conv2d":
                getattr(module, name).load_state_dict(child.state_dict())
        opened, reference = module(x), original(x)
    assert torch.equal(closed, x if path == "block8" else torch.relu(x))
    assert torch.allclose(opened, reference, atol=1e-5)


def test_only_the_standard_position_and_no_sk() -> None:
    with pytest.raises(SecliUsageError, match="supported: standard"):
        build(ModelSpec(ARCH, BlockSpec(kind="se", position="pre")))
    with pytest.raises(SecliUsageError, match="Inception-ResNet modules have multi-branch convolutions"):
        build(ModelSpec(ARCH, BlockSpec(kind="sk")))


def test_the_base_network_has_no_se_of_its_own(base_irv2) -> None:
    from secli.networks.native_se import discover_native_sites

    assert discover_native_sites(base_irv2[0]) == []
