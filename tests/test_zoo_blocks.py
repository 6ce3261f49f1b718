"""The zoo's kinds (docs/ZOO.md), each against an independent implementation.

timm's module with secli's weights copied in where timm has one (CBAM and its channel module,
GC, Coordinate attention, Gather-Excite theta-minus and theta-plus); elsewhere (SimAM, FcaNet,
SRM, GCT) the paper's released code written out again here, loops where it has loops, without
importing secli's module. Parameter counts are sums worked by hand in the comments.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from secli.blocks.cbam import CBAM
from secli.blocks.coord import CoordinateAttention
from secli.blocks.fca import MultiSpectralAttention
from secli.blocks.gc import GlobalContext
from secli.blocks.gct import GatedChannelTransformation
from secli.blocks.ge import GatherExcite, GatherExcitePlus
from secli.blocks.simam import SimAM
from secli.blocks.spec import BlockSpec, ModelSpec
from secli.blocks.srm import StyleRecalibration
from secli.networks.models import build
from secli.networks.sites import count_params
from secli.util.errors import SecliUsageError

timm_cbam = pytest.importorskip("timm.layers.cbam")
timm_coord = pytest.importorskip("timm.layers.coord_attn")
timm_gc = pytest.importorskip("timm.layers.global_context")
timm_ge = pytest.importorskip("timm.layers.gather_excite")


def randomise(module: nn.Module) -> nn.Module:
    """Every parameter and batch-norm statistic away from its initial value, in eval mode."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.1)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
    return module.eval()


def same_as_timm(ours: nn.Module, reference: nn.Module, x: torch.Tensor) -> None:
    randomise(reference)
    ours.load_state_dict(reference.state_dict())  # strict: the same names and shapes
    ours.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))
    assert count_params(ours) == count_params(reference)


# --------------------------------------------------------------------------- timm references


@pytest.mark.parametrize(("channels", "kernel"), [(64, 7), (48, 3)])
def test_cbam_equals_timms_cbam_module(channels: int, kernel: int) -> None:
    ours = CBAM(channels, ratio=16, kernel_size=kernel)
    reference = timm_cbam.CbamModule(channels, rd_channels=channels // 16, spatial_kernel_size=kernel, mlp_bias=True)
    same_as_timm(ours, reference, torch.randn(2, channels, 9, 7))


def test_cbam_channel_equals_timms_channel_attn_without_biases() -> None:
    ours = CBAM(32, ratio=8, bias=False, spatial=False)
    reference = timm_cbam.ChannelAttn(32, rd_channels=4, mlp_bias=False)
    randomise(reference)
    ours.channel.load_state_dict(reference.state_dict())
    x = torch.randn(3, 32, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), reference(x))
    assert count_params(ours) == 2 * 32 * 4  # two bias-free 1x1 convs 32 -> 4 -> 32


def test_gc_equals_timms_global_context_with_add_fusion() -> None:
    ours = GlobalContext(64, ratio=16)
    ours.mlp_add.norm.eps = 1e-6  # timm's LayerNorm2d; the paper's code (and secli) use 1e-5
    reference = timm_gc.GlobalContext(64, fuse_add=True, fuse_scale=False, rd_channels=4)
    same_as_timm(ours, reference, torch.randn(2, 64, 6, 5))


def test_gc_starts_as_the_identity() -> None:
    block = GlobalContext(32, ratio=4).eval()
    x = torch.randn(2, 32, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)  # the last conv is zero at the start (the paper's init)


@pytest.mark.parametrize("channels", [64, 512])
def test_coordinate_attention_equals_timms_coord_attn(channels: int) -> None:
    ours = CoordinateAttention(channels)
    m = max(8, channels // 32)  # the paper's width: 64 -> 8, 512 -> 16
    assert ours.hidden == m
    reference = timm_coord.CoordAttn(channels, rd_channels=m, bias=True, act_layer=nn.Hardswish)
    same_as_timm(ours, reference, torch.randn(2, channels, 7, 5))


@pytest.mark.parametrize("extent", [0, 2, 4, 8])
def test_ge_theta_minus_equals_timms_parameter_free_gather_excite(extent: int) -> None:
    ours = GatherExcite(16, extent=extent).eval()
    reference = timm_ge.GatherExcite(16, extra_params=False, extent=extent, use_mlp=False).eval()
    x = torch.randn(2, 16, 11, 9)  # not a multiple of the extent: the resize repeats unevenly
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))
    assert count_params(ours) == count_params(reference) == 0


def timm_gather_excite_with_params(monkeypatch: pytest.MonkeyPatch, **kwargs: object) -> nn.Module:
    """timm 1.0.31's ``GatherExcite(extra_params=True)``, built past its constructor's bug: it passes
    ``*dd`` (the keys "device", "dtype") positionally to ``create_conv2d``, ``nn.BatchNorm2d`` and
    ``ConvMlp``. The three are wrapped to drop those strings; the module and its forward are timm's own."""
    create_conv2d, conv_mlp = timm_ge.create_conv2d, timm_ge.ConvMlp

    class NN:  # timm's gather_excite sees this as ``nn``: BatchNorm2d without the stray strings
        def __getattr__(self, name: str) -> object:
            return getattr(nn, name)

        @staticmethod
        def BatchNorm2d(channels: int, *stray: str) -> nn.BatchNorm2d:  # torch's name
            return nn.BatchNorm2d(channels)

    monkeypatch.setattr(timm_ge, "create_conv2d", lambda c_in, c_out, *stray, **kw: create_conv2d(c_in, c_out, **kw))
    monkeypatch.setattr(timm_ge, "nn", NN())
    monkeypatch.setattr(timm_ge, "ConvMlp", lambda c_in, hidden, *stray, **kw: conv_mlp(c_in, hidden, **kw))
    return timm_ge.GatherExcite(**kwargs)


@pytest.mark.parametrize("extent", [2, 4, 8])
def test_ge_theta_plus_equals_timms_gather_excite_with_params(extent: int, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = GatherExcitePlus(32, extent=extent, ratio=16)
    reference = timm_gather_excite_with_params(monkeypatch, channels=32, extra_params=True, extent=extent,
                                               use_mlp=True, rd_channels=2)
    same_as_timm(ours, reference, torch.randn(2, 32, 16, 12))
    convs = int(math.log2(extent))
    assert count_params(ours) == convs * (9 * 32 + 2 * 32) + (32 * 2 + 2) + (2 * 32 + 32)


def test_ge_extents_are_checked() -> None:
    with pytest.raises(SecliUsageError, match="GE extent must be one of"):
        BlockSpec(kind="ge", extent=3)
    with pytest.raises(SecliUsageError, match="spatial size"):
        BlockSpec(kind="ge-plus", extent=0)


# --------------------------------------------------------------------------- written-out references


def simam_reference(x: torch.Tensor, lam: float = 1e-4) -> torch.Tensor:
    """The released SimAM forward."""
    _b, _c, h, w = x.size()
    n = w * h - 1
    x_minus_mu_square = (x - x.mean(dim=[2, 3], keepdim=True)).pow(2)
    y = x_minus_mu_square / (4 * (x_minus_mu_square.sum(dim=[2, 3], keepdim=True) / n + lam)) + 0.5
    return x * torch.sigmoid(y)


def test_simam_equals_the_released_forward() -> None:
    x = torch.randn(2, 8, 5, 6)
    torch.testing.assert_close(SimAM(8)(x), simam_reference(x))
    assert count_params(SimAM(8)) == 0
    one = torch.randn(2, 8, 1, 1)  # the released code divides 0 by 0 here; secli gives sigmoid(0.5)
    torch.testing.assert_close(SimAM(8)(one), one * torch.sigmoid(torch.tensor(0.5)))


def fca_reference(x: torch.Tensor, fc1: torch.Tensor, fc2: torch.Tensor, dct: int, num_freq: int) -> torch.Tensor:
    """The released MultiSpectralAttentionLayer with a dct x dct filter, written out with loops."""
    top_x = [0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2, 4, 6, 3, 5, 5, 2, 6, 5, 5, 3, 3, 4, 2, 2, 6, 1]
    top_y = [0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2, 6, 3, 3, 3, 5, 1, 1, 2, 4, 2, 1, 1, 3, 0, 5, 3]
    mapper_x = [u * (dct // 7) for u in top_x[:num_freq]]
    mapper_y = [v * (dct // 7) for v in top_y[:num_freq]]

    def build_filter(pos: int, freq: int, size: int) -> float:
        result = math.cos(math.pi * freq * (pos + 0.5) / size) / math.sqrt(size)
        return result if freq == 0 else result * math.sqrt(2)

    n, c, h, w = x.shape
    weight = torch.zeros(c, dct, dct)
    part = c // num_freq
    for i, (u, v) in enumerate(zip(mapper_x, mapper_y)):
        for tx in range(dct):
            for ty in range(dct):
                weight[i * part:(i + 1) * part, tx, ty] = build_filter(tx, u, dct) * build_filter(ty, v, dct)
    pooled = x if (h, w) == (dct, dct) else torch.nn.functional.adaptive_avg_pool2d(x, (dct, dct))
    y = torch.sum(pooled * weight, dim=[2, 3])
    y = torch.sigmoid(torch.relu(y @ fc1.t()) @ fc2.t()).view(n, c, 1, 1)
    return x * y.expand_as(x)


@pytest.mark.parametrize(("size", "dct"), [(14, 14), (7, 7), (10, 7), (4, 7)])
def test_fca_equals_the_released_layer(size: int, dct: int) -> None:
    block = randomise(MultiSpectralAttention(32, frequencies=16, ratio=8))
    x = torch.randn(2, 32, size, size)
    expected = fca_reference(x, block.fc1.weight.detach(), block.fc2.weight.detach(), dct, 16)
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected)
    assert count_params(block) == 2 * 32 * 4  # two bias-free FCs 32 -> 4 -> 32; the filter is no parameter
    assert not block.state_dict().keys() - {"fc1.weight", "fc2.weight"}


def test_fca_lowest_frequency_is_the_scaled_average() -> None:
    # one frequency, (0, 0): b_0 = 1/sqrt(P), so z = sum(x) / sqrt(H W) = mean(x) * sqrt(H W)
    block = MultiSpectralAttention(8, frequencies=1, ratio=2)
    x = torch.randn(2, 8, 14, 7)
    torch.testing.assert_close(block.pool(x), x.mean(dim=(2, 3)) * math.sqrt(14 * 7))
    with pytest.raises(SecliUsageError, match="16 equal groups"):
        MultiSpectralAttention(24)


def srm_reference(x: torch.Tensor, cfc: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """The released SRM forward (style pooling, channel-wise fc, BN, sigmoid)."""
    n, c, _, _ = x.size()
    channel_mean = x.view(n, c, -1).mean(dim=2, keepdim=True)
    channel_var = x.view(n, c, -1).var(dim=2, keepdim=True) + 1e-5
    t = torch.cat((channel_mean, channel_var.sqrt()), dim=2)
    z = torch.sum(t * cfc[None, :, :], dim=2)[:, :, None, None]
    return x * torch.sigmoid(bn(z))


def test_srm_equals_the_released_forward() -> None:
    block = randomise(StyleRecalibration(16))
    x = torch.randn(3, 16, 5, 4)
    with torch.no_grad():
        torch.testing.assert_close(block(x), srm_reference(x, block.cfc, block.bn))
    assert count_params(block) == 4 * 16  # cfc (16 x 2) and the BN's weight and bias


def gct_reference(x: torch.Tensor, alpha: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """The released GCT forward, l2 mode, one channel at a time."""
    n, c = x.shape[:2]
    out = torch.empty_like(x)
    for i in range(n):
        embedding = [alpha[c_] * math.sqrt(float((x[i, c_] ** 2).sum()) + 1e-5) for c_ in range(c)]
        scale = math.sqrt(sum(float(e) ** 2 for e in embedding) / c + 1e-5)
        for c_ in range(c):
            out[i, c_] = x[i, c_] * (1 + math.tanh(float(embedding[c_] * gamma[c_] / scale + beta[c_])))
    return out


def test_gct_equals_the_released_forward_and_starts_as_the_identity() -> None:
    block = GatedChannelTransformation(6)
    x = torch.randn(2, 6, 3, 4)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)  # gamma = beta = 0: every gate 1
        randomise(block)
        expected = gct_reference(x, block.alpha.view(-1), block.gamma.view(-1), block.beta.view(-1))
        torch.testing.assert_close(block(x), expected)
    assert count_params(block) == 3 * 6


# --------------------------------------------------------------------------- parameters in a network

# resnet18's sites (standard position): two each at C = 64, 128, 256, 512; h = C // 16 = 4, 8, 16, 32
R18_PARAMS = {
    # 2·C·h + h + C: 580, 2184, 8464, 33312; plus 2·7² + 2 = 100 per site for the spatial conv and BN
    "cbam": 2 * (580 + 2184 + 8464 + 33312) + 8 * 100,
    "cbam-channel": 2 * (580 + 2184 + 8464 + 33312),
    # 2·C·h + 3h + 2C + 1: 653, 2329, 8753, 33889
    "gc": 2 * (653 + 2329 + 8753 + 33889),
    # m = max(8, C // 32) = 8, 8, 8, 16; 3·C·m + 3m + 2C: 1688, 3352, 6680, 25648
    "coord": 2 * (1688 + 3352 + 6680 + 25648),
    "simam": 0,
    "ge": 0,
    # extent 8: 3 depth-wise convs + BNs (33C) + MLP 2·C·h + h + C: 2692, 6408, 16912, 50208
    "ge-plus": 2 * (2692 + 6408 + 16912 + 50208),
    "fca": 2 * (512 + 2048 + 8192 + 32768),  # 2·C·h
    "srm": 2 * 4 * (64 + 128 + 256 + 512),  # 4C
    "gct": 2 * 3 * (64 + 128 + 256 + 512),  # 3C
}


@pytest.mark.parametrize("kind", sorted(R18_PARAMS))
def test_resnet18_params_and_closed_form(kind: str) -> None:
    from secli.networks.formula import closed_form

    built = build(ModelSpec("resnet18", BlockSpec(kind=kind)))
    assert built.report.params_added == R18_PARAMS[kind]
    check = closed_form(built.sites, built.spec.block)
    assert check is not None
    assert check.predicted == R18_PARAMS[kind]
    assert check.exact
    assert len(built.sites) == 8
    gate = built.model.get_submodule(built.sites[0].gate_path)  # the gate the analysis hooks exists
    assert not isinstance(gate, nn.Identity)
