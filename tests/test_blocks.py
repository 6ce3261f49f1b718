"""SE and SK blocks against hand-written computations of the papers' equations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from secli.blocks import SelectiveKernel, SqueezeExcitation
from secli.blocks.se import IDENTITY_GATE_VALUE
from secli.util.errors import SecliUsageError

GATES = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "hardsigmoid": lambda t: torch.clamp(t / 6 + 0.5, 0, 1),
}


def _fc(block_conv: torch.nn.Conv2d, z: torch.Tensor) -> torch.Tensor:
    """A 1x1 conv on (N, C) vectors written as a matrix product."""
    weight = block_conv.weight[:, :, 0, 0]
    out = z @ weight.T
    return out + block_conv.bias if block_conv.bias is not None else out


@pytest.mark.parametrize("squeeze", ["avg", "max"])
@pytest.mark.parametrize("gate", list(GATES))
@pytest.mark.parametrize("bias", [True, False])
def test_se_matches_hand_written_squeeze_excite_scale(squeeze: str, gate: str, bias: bool) -> None:
    block = SqueezeExcitation(32, ratio=4, squeeze=squeeze, gate=gate, bias=bias).eval()
    x = torch.randn(3, 32, 7, 5)
    z = x.mean(dim=(2, 3)) if squeeze == "avg" else x.flatten(2).max(dim=2).values
    s = GATES[gate](_fc(block.fc2, torch.relu(_fc(block.fc1, z))))
    expected = x * s[:, :, None, None]
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-6)


def test_no_squeeze_variant_gates_every_position_with_same_params() -> None:
    block = SqueezeExcitation(16, ratio=4, squeeze="none").eval()
    x = torch.randn(2, 16, 5, 5)
    per_position = x.permute(0, 2, 3, 1).reshape(-1, 16)
    s = torch.sigmoid(_fc(block.fc2, torch.relu(_fc(block.fc1, per_position))))
    expected = x * s.reshape(2, 5, 5, 16).permute(0, 3, 1, 2)
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-6)
    standard = SqueezeExcitation(16, ratio=4)
    assert sum(p.numel() for p in block.parameters()) == sum(p.numel() for p in standard.parameters())


@pytest.mark.parametrize(("channels", "ratio"), [(256, 16), (2048, 16), (64, 2), (96, 8)])
def test_se_parameter_count_is_the_papers_closed_form(channels: int, ratio: int) -> None:
    hidden = channels // ratio
    with_bias = SqueezeExcitation(channels, ratio=ratio)
    without = SqueezeExcitation(channels, ratio=ratio, bias=False)
    assert sum(p.numel() for p in without.parameters()) == 2 * channels * channels // ratio
    assert sum(p.numel() for p in with_bias.parameters()) == 2 * channels * hidden + hidden + channels


def test_min_hidden_floors_the_width() -> None:
    assert SqueezeExcitation(64, ratio=16, min_hidden=8).hidden == 8
    assert SqueezeExcitation(64, ratio=16).hidden == 4


@pytest.mark.parametrize("ratio", [0, -1, 65])
def test_impossible_ratios_are_refused(ratio: int) -> None:
    with pytest.raises(SecliUsageError):
        SqueezeExcitation(64, ratio=ratio)


@pytest.mark.parametrize("gate", list(GATES))
def test_identity_init_starts_every_gate_at_the_chosen_value(gate: str) -> None:
    block = SqueezeExcitation(64, ratio=16, gate=gate, init="identity")
    s = block.excitation(torch.randn(4, 64, 6, 6) * 10)
    torch.testing.assert_close(s, torch.full_like(s, IDENTITY_GATE_VALUE), rtol=0, atol=1e-6)


def _bn_eval(x: torch.Tensor, bn: torch.nn.BatchNorm2d) -> torch.Tensor:
    shape = (1, -1, 1, 1)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (x - bn.running_mean.view(shape)) * scale.view(shape) + bn.bias.view(shape)


def _randomise_bn(module: torch.nn.Module) -> None:
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.2, 0.2)


@pytest.mark.parametrize(("paths", "stride"), [(2, 1), (3, 2), (1, 1)])
def test_sk_matches_hand_written_split_fuse_select(paths: int, stride: int) -> None:
    block = SelectiveKernel(32, 64, stride=stride, paths=paths, groups=8, ratio=16, min_hidden=8)
    _randomise_bn(block)
    block.eval()
    x = torch.randn(2, 32, 9, 9)
    # split: path m is a grouped 3x3 conv with dilation m, then BN and ReLU
    branches = []
    for m, path in enumerate(block.paths, start=1):
        conv, bn = path[0], path[1]
        u = F.conv2d(x, conv.weight, stride=stride, padding=m, dilation=m, groups=8)
        branches.append(torch.relu(_bn_eval(u, bn)))
    # fuse: sum, global average pooling, FC + BN + ReLU
    s = sum(branches).mean(dim=(2, 3))
    fc_conv, fc_bn = block.fc[0], block.fc[1]
    z = s @ fc_conv.weight[:, :, 0, 0].T
    z = torch.relu((z - fc_bn.running_mean) / torch.sqrt(fc_bn.running_var + fc_bn.eps) * fc_bn.weight + fc_bn.bias)
    # select: one C-vector per path, softmax across paths for each channel
    logits = (z @ block.select.weight[:, :, 0, 0].T).view(2, paths, 64)
    weights = torch.exp(logits) / torch.exp(logits).sum(dim=1, keepdim=True)
    expected = sum(weights[:, m, :, None, None] * branches[m] for m in range(paths))
    torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-5)


def test_sk_hidden_width_is_max_of_c_over_r_and_l() -> None:
    assert SelectiveKernel(128, 128, ratio=16, min_hidden=32).hidden == 32
    assert SelectiveKernel(1024, 1024, ratio=16, min_hidden=32).hidden == 64


def test_sk_parameter_count() -> None:
    c_in, c, groups, paths, d = 64, 128, 32, 2, 32
    block = SelectiveKernel(c_in, c, paths=paths, groups=groups, ratio=16, min_hidden=d)
    conv = c_in // groups * c * 9
    expected = paths * (conv + 2 * c) + (c * d + 2 * d) + d * c * paths
    assert sum(p.numel() for p in block.parameters()) == expected


def test_sk_refuses_groups_that_do_not_divide_the_width() -> None:
    with pytest.raises(SecliUsageError, match="groups"):
        SelectiveKernel(48, 48, groups=32)
