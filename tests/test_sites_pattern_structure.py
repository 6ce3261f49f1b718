"""Sites placed by pattern (``--at``) and found by structure, on networks whose layout is known.

Expected paths and widths are written out from the architectures (ResNet-50: bottlenecks of
256/512/1024/2048 channels, 3/4/6/3 per stage) or from the small models defined here, never read
from the code under test.
"""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import assert_one_line_error, run
from torch import nn

from secli import api
from secli.blocks.spec import BlockSpec
from secli.networks.patterns import matches
from secli.networks.structure import residual_units
from secli.util.errors import SecliUsageError

R50 = [(stage, i, c) for stage, (c, n) in zip((2, 3, 4, 5), ((256, 3), (512, 4), (1024, 6), (2048, 3)))
       for i in range(1, n + 1)]


@pytest.mark.parametrize(("pattern", "path", "hit"), [
    ("layer*.*.bn3", "layer1.0.bn3", True),
    ("layer*.*.bn3", "layer1.0.downsample.bn3", False),  # * stays within one part
    ("**.bn3", "layer1.0.bn3", True),
    ("layer1.**", "layer1.0.downsample.1", True),
    ("stages.?.blocks.[01].norm", "stages.2.blocks.1.norm", True),
    ("stages.?.blocks.[01].norm", "stages.2.blocks.2.norm", False),
    ("features.*", "features", False),
])
def test_patterns_match_part_by_part(pattern: str, path: str, hit: bool) -> None:
    assert matches(pattern, path) is hit


def test_a_pattern_gives_the_standard_sites_of_resnet50() -> None:
    result = api.inject("resnet50", block="se", at="layer*.*.bn3")
    sites = result.report.sites
    assert [(s.stage, s.index, s.channels) for s in sites] == R50
    assert [s.module_path for s in sites] == [f"layer{st - 1}.{i - 1}.bn3.1" for st, i, _ in R50]
    assert {s.source for s in sites} == {"pattern"}
    assert [s.name for s in sites][:2] == ["SE_2_1", "SE_2_2"]
    assert result.report.params_added == sum(2 * c * (c // 16) + c // 16 + c for _, _, c in R50)
    assert result.formula is not None
    assert result.formula.exact
    # --stages selects among them; a sweep takes --at too
    assert len(api.inject("resnet50", block="se", at="layer*.*.bn3", stages="5").report.sites) == 3
    counted = api.complexity("resnet18", block="se,eca", at="layer*.*.bn2", image_size=32)
    assert [row.sites for row in counted.rows] == [8, 8]
    assert counted.flops_error is None


def test_sk_by_pattern_replaces_the_matching_3x3_convolutions_and_their_bn() -> None:
    built = api.load_model("resnet50", BlockSpec(kind="sk", at=("layer*.*.conv2",)))
    assert len(built.sites) == 16
    assert built.sites[0].module_path == "layer1.0.conv2"
    assert isinstance(built.model.layer1[0].bn2, nn.Identity)
    assert built.model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 1000)
    with pytest.raises(SecliUsageError, match=r"layer1\.0\.conv1, which is not a 3x3 convolution"):
        api.load_model("resnet50", BlockSpec(kind="sk", at=("layer*.*.conv1",)))


class _Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv2(self.act(self.conv(x))))
        return self.fc(x.mean((2, 3)))


@pytest.mark.parametrize(("at", "message"), [
    ("conv3", "--at 'conv3' matches no module (near matches: conv, conv2"),
    ("fc", "--at matches fc, whose output is a 2-D tensor (2, 2), not a feature map (N, C, H, W)"),
    ("act", "--at matches act, which is called 2 times in one forward pass"),
])
def test_pattern_refusals_name_what_is_wrong(at: str, message: str) -> None:
    with pytest.raises(SecliUsageError) as info:
        api.inject(_Shared(), block="se", ratio=2, at=at)
    assert message in str(info.value)


def test_nested_and_channels_last_matches_are_refused() -> None:
    with pytest.raises(SecliUsageError, match=r"matches layer1 and layer1\.0 inside it"):
        api.inject("resnet18", block="se", at="layer1,layer1.*")
    pytest.importorskip("timm")
    with pytest.raises(SecliUsageError, match="a channels-last map"):
        api.inject("timm:convnext_tiny", block="se", at="stages.*.blocks.*.norm")
    with pytest.raises(SecliUsageError, match="--position does not apply with --at"):
        api.inject("resnet18", block="se", at="layer*.*.bn2", position="post")


def test_a_pattern_is_saved_with_the_checkpoint(tmp_path) -> None:
    out = tmp_path / "r18.pt"
    api.inject("resnet18", block="eca", at="layer*.*.bn2", out=out)
    reloaded = api.load_model(str(out))
    assert [s.module_path for s in reloaded.sites] == [f"layer{i}.{j}.bn2.1" for i in range(1, 5) for j in (0, 1)]
    assert reloaded.spec.block.at == ("layer*.*.bn2",)


# ------------------------------------------------------------------------------------ structure
class _Basic(nn.Module):
    """A residual block with a shortcut module, a layer scale and a ReLU module after the sum."""

    def __init__(self, cin: int, cout: int, stride: int = 1, scale: float | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        nn.init.zeros_(self.bn2.weight)  # zero-init last BN: the branch adds nothing at init
        self.gamma = nn.Parameter(torch.full((cout, 1, 1), scale)) if scale else None
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride > 1 or cin != cout else None)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        if self.gamma is not None:
            branch = branch * self.gamma
        return self.act(branch + (x if self.shortcut is None else self.shortcut(x)))


class _Stage(nn.Module):
    """Not a Sequential: a module whose output is its last block's (no sum of its own)."""

    def __init__(self, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.stage1 = _Stage([_Basic(8, 8), _Basic(8, 8, scale=1e-6)])
        self.stage2 = _Stage([_Basic(8, 16, stride=2), _Basic(16, 16)])
        self.plain = nn.Conv2d(16, 16, 3, padding=1)  # not residual
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.plain(self.stage2(self.stage1(self.stem(x)))).mean((2, 3)))


def test_residual_units_are_found_by_what_they_compute() -> None:
    net = _Net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    units = residual_units(net, 32)
    assert [(u.path, u.branch, u.channels, u.shortcut) for u in units] == [
        ("stage1.blocks.0", "stage1.blocks.0.bn2", 8, None),
        ("stage1.blocks.1", "stage1.blocks.1.bn2", 8, None),  # a 1e-6 layer scale after it
        ("stage2.blocks.0", "stage2.blocks.0.bn2", 16, "stage2.blocks.0.shortcut"),
        ("stage2.blocks.1", "stage2.blocks.1.bn2", 16, None),
    ]
    # the probe left the network as it was: weights (the zero BN too), training mode
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.training
    assert [u.conv3x3 for u in units] == [None] * 4  # two 3x3 convolutions each: no SK site


def test_structure_positions_and_refusals() -> None:
    post = api.inject(_Net(), block="se", ratio=4, position="post")
    assert [s.module_path for s in post.report.sites][:2] == ["stage1.blocks.0.1", "stage1.blocks.1.1"]
    with pytest.raises(SecliUsageError, match="position 'pre' needs an adapter"):
        api.inject(_Net(), block="se", position="pre")
    plain = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(SecliUsageError, match="found no residual units"):
        api.inject(plain, block="se", ratio=2)


def test_structure_finds_resnet50_where_its_adapter_puts_standard_sites() -> None:
    units = residual_units(__import__("torchvision").models.resnet50(), 224)
    assert [(u.path, u.branch, u.channels) for u in units] == [
        (f"layer{st - 1}.{i - 1}", f"layer{st - 1}.{i - 1}.bn3", c) for st, i, c in R50]
    assert [u.conv3x3 for u in units] == [f"layer{st - 1}.{i - 1}.conv2" for st, i, _ in R50]


def test_sk_by_structure_in_a_regnet() -> None:
    pytest.importorskip("timm")
    built = api.load_model("timm:regnetx_002", BlockSpec(kind="sk", groups=8))
    # RegNetX-200MF: one grouped 3x3 convolution per block, 1/1/4/7 blocks of 24/56/152/368
    assert [s.channels for s in built.sites] == [24] + [56] + [152] * 4 + [368] * 7
    assert {s.source for s in built.sites} == {"structure"}
    assert built.sites[0].module_path == "s1.b1.conv2.conv"
    assert isinstance(built.model.s1.b1.conv2.bn, nn.Identity)
    assert built.model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_list_sites_names_each_source() -> None:
    result = run("inject", "mnasnet0_5", "--list-sites", "--format", "json")
    document = json.loads(result.stdout)
    assert document["inputs"]["list_sites"] is True
    assert {s["source"] for s in document["results"]["sites"]} == {"structure"}
    table = run("inject", "mnasnet0_5", "--list-sites")
    assert "source" in table.stdout
    assert "structure" in table.stdout
    assert_one_line_error(run("inject", "resnet18", "--list-sites", "-o", "x.pt"), 2,
                          "--out does not apply with --list-sites")


def test_a_network_with_attention_of_its_own_refuses_more() -> None:
    pytest.importorskip("timm")
    with pytest.raises(SecliUsageError, match=r"already has 8 attention modules \(ECA\)"):
        api.inject("timm:ecaresnet26t", block="se")
