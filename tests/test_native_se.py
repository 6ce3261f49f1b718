"""SE modules found by structure and function, whatever library wrote them.

Expected sites come from the papers' layouts (SENet-154: 3, 8, 36, 3 blocks at 256...2048
channels, r = 16; SE-ResNet-50: 3, 4, 6, 3) and from small models written here, never from the
discovery code's own output.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from secli.blocks import SelectiveKernel, SqueezeExcitation
from secli.blocks.spec import BlockSpec, ModelSpec
from secli.networks.models import build
from secli.networks.native_se import discover_native_sites

timm = pytest.importorskip("timm")

STAGE_WIDTHS = {2: 256, 3: 512, 4: 1024, 5: 2048}  # SE-ResNet(-like) bottleneck outputs, stages 2-5


def _paper_names(blocks: dict[int, int]) -> list[str]:
    return [f"SE_{stage}_{i}" for stage, n in blocks.items() for i in range(1, n + 1)]


@pytest.fixture(scope="module")
def senet154():
    """SENet-154 (115M parameters) is built once for this module; it is only counted, never run."""
    return build(ModelSpec("timm:legacy_senet154", BlockSpec(kind="none")))


def test_senet154_has_its_50_se_modules_named_as_in_the_paper(senet154) -> None:
    blocks = {2: 3, 3: 8, 4: 36, 5: 3}
    assert [s.name for s in senet154.sites] == _paper_names(blocks)
    assert all(s.kind == "native-se" for s in senet154.sites)
    assert [(s.channels, s.hidden) for s in senet154.sites] == [
        (STAGE_WIDTHS[stage], STAGE_WIDTHS[stage] // 16) for stage, n in blocks.items() for _ in range(n)
    ]
    # two 1x1 FCs with biases per block: 2*C*C/r + C/r + C
    expected = sum(n * (2 * c * (c // 16) + c // 16 + c) for c, n in ((STAGE_WIDTHS[s], n) for s, n in blocks.items()))
    assert sum(s.params for s in senet154.sites) == expected
    assert all(isinstance(senet154.model.get_submodule(s.gate_path), nn.Sigmoid) for s in senet154.sites)


def test_legacy_se_resnet50_is_found_too() -> None:
    built = build(ModelSpec("timm:legacy_seresnet50", BlockSpec(kind="none")))
    assert [s.name for s in built.sites] == _paper_names({2: 3, 3: 4, 4: 6, 5: 3})
    assert built.sites[0].module_path == "layer1.0.se_module"
    assert built.sites[0].gate_path == "layer1.0.se_module.sigmoid"


def _stem(channels: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())


@pytest.mark.parametrize("squeeze", ["avg", "max", "none"])
def test_secli_own_se_block_is_found_in_a_plain_model(squeeze: str) -> None:
    model = nn.Sequential(_stem(32), SqueezeExcitation(32, ratio=4, squeeze=squeeze), nn.Conv2d(32, 8, 1))
    (site,) = discover_native_sites(model)
    assert (site.module_path, site.gate_path, site.channels, site.hidden) == ("1", "1.gate_act", 32, 8)
    assert site.params == 2 * 32 * 8 + 8 + 32


class _LinearSE(nn.Module):
    """The common hand-written SE: linear FCs in a Sequential that ends in the gate."""

    def __init__(self, c: int, r: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(c, c // r), nn.ReLU(inplace=True), nn.Linear(c // r, c), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        return x * self.fc(self.pool(x).view(n, c)).view(n, c, 1, 1)


class _FunctionalGateSE(nn.Module):
    """An SE whose gate is a function call, not a module: there is no gate to hook."""

    def __init__(self, c: int, r: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(c, c // r, 1)
        self.act = nn.SiLU()
        self.expand = nn.Conv2d(c // r, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True)))))


def test_other_libraries_and_hand_written_se_modules_are_found() -> None:
    from timm.layers import EffectiveSEModule, SEModule

    model = nn.Sequential(
        _stem(16),
        _LinearSE(16, 4),
        _FunctionalGateSE(16, 4),
        EffectiveSEModule(16),  # a single C -> C map, hard-sigmoid gate
        SEModule(16, rd_channels=4, norm_layer=nn.BatchNorm2d),  # BN between the FCs
    )
    sites = discover_native_sites(model)
    assert [(s.module_path, s.gate_path, s.channels, s.hidden) for s in sites] == [
        ("1", "1.fc.3", 16, 4),
        ("2", None, 16, 4),
        ("3", "3.gate", 16, None),
        ("4", "4.gate", 16, 4),
    ]
    assert [s.name for s in sites] == ["SE_1_1", "SE_2_1", "SE_3_1", "SE_4_1"]


class _Wrapper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = SqueezeExcitation(16, ratio=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def test_only_the_outermost_of_nested_se_modules_is_reported() -> None:
    model = nn.Sequential(_stem(16), _Wrapper())
    (site,) = discover_native_sites(model)
    assert (site.module_path, site.gate_path) == ("1", "1.inner.gate_act")


class _NotScaling(nn.Module):
    """SE's layers, but the gate is returned instead of multiplying the input."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1, self.act = nn.Conv2d(c, c // 4, 1), nn.ReLU()
        self.fc2, self.gate = nn.Conv2d(c // 4, c, 1), nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.fc2(self.act(self.fc1(x))))


def test_lookalikes_that_do_not_scale_their_input_are_not_reported() -> None:
    from timm.layers import EcaModule, Mlp

    model = nn.Sequential(
        _stem(16),
        EcaModule(16),  # per-channel scaling, but from a 1-D convolution across channels
        SelectiveKernel(16, 16, groups=4, min_hidden=4),
        nn.Sequential(nn.Conv2d(16, 4, 1), nn.ReLU(), nn.Conv2d(4, 16, 1)),  # a 1x1 bottleneck
        _NotScaling(16),
        nn.Sequential(nn.Conv2d(16, 16, 1), nn.Hardsigmoid()),
        nn.Conv2d(16, 16, 1),
    )
    assert discover_native_sites(model) == []
    assert discover_native_sites(nn.Sequential(Mlp(16, 64))) == []  # linear C -> h -> C on the last axis


def test_the_probe_leaves_training_mode_and_batchnorm_statistics_alone() -> None:
    from timm.layers import SEModule

    model = nn.Sequential(_stem(16), SEModule(16, rd_channels=4, norm_layer=nn.BatchNorm2d)).train()
    model[1].bn.eval()  # a mixed state must come back as it was
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert len(discover_native_sites(model)) == 1
    assert model.training
    assert model[1].training
    assert not model[1].bn.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_torchvision_se_networks_keep_their_sites() -> None:
    built = build(ModelSpec("mobilenet_v3_small", BlockSpec(kind="none")))
    # torchvision's MobileNetV3-Small: SE in features 1, 4, 5, 6, 7, 8, 9, 10, 11 (Hardsigmoid gates)
    assert [s.module_path for s in built.sites] == [
        f"features.{i}.block.{1 if i == 1 else 2}" for i in (1, 4, 5, 6, 7, 8, 9, 10, 11)
    ]
    assert all(isinstance(built.model.get_submodule(s.gate_path), nn.Hardsigmoid) for s in built.sites)
