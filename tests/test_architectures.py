"""Every supported architecture x block x position builds and runs forward on a small input."""

from __future__ import annotations

import pytest
import torch

from secli.blocks.spec import BlockSpec, ModelSpec
from secli.networks.architectures import ARCHITECTURES
from secli.networks.models import build

INJECTABLE = [name for name, info in ARCHITECTURES.items() if info.adapter is not None]
# The residual families get every position and SK on one network each of basic and bottleneck
# blocks, grouped and wide; the deep variants share their code and get the standard position.
ALL_POSITIONS = ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2"]


def _forward(arch: str, block: BlockSpec) -> None:
    built = build(ModelSpec(arch, block))
    assert built.sites, f"{arch}: no sites"
    size = max(64, ARCHITECTURES[arch].min_input + 5)
    model = built.model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, size, size))
    assert out.shape == (1, 1000)
    for site in built.sites:
        assert built.model.get_submodule(site.module_path) is not None
        assert built.model.get_submodule(site.gate_path) is not None


@pytest.mark.parametrize("arch", INJECTABLE)
def test_standard_se_builds_and_runs(arch: str) -> None:
    _forward(arch, BlockSpec(kind="se"))


# resnet18 has basic blocks: no 3x3 position there (its refusal is tested in test_inject)
RESIDUAL_CASES = [
    (arch, position)
    for arch in ALL_POSITIONS
    for position in ("pre", "post", "identity", "3x3")
    if not (arch == "resnet18" and position == "3x3")
]


@pytest.mark.parametrize(("arch", "position"), RESIDUAL_CASES)
def test_every_residual_position_builds_and_runs(arch: str, position: str) -> None:
    _forward(arch, BlockSpec(kind="se", position=position))


@pytest.mark.parametrize("arch", ALL_POSITIONS)
def test_sk_builds_and_runs(arch: str) -> None:
    _forward(arch, BlockSpec(kind="sk"))


@pytest.mark.parametrize("variant", [{"squeeze": "max"}, {"squeeze": "none"}, {"gate": "tanh", "bias": False}])
def test_se_variants_run_in_a_network(variant: dict) -> None:
    _forward("resnet18", BlockSpec(kind="se", **variant))


def test_site_names_follow_the_papers_stage_numbering() -> None:
    names = {arch: [s.name for s in build(ModelSpec(arch, BlockSpec())).sites] for arch in
             ("vgg16", "shufflenet_v2_x1_0", "googlenet")}
    assert names["vgg16"][:3] == ["SE_1_1", "SE_1_2", "SE_2_1"]
    assert names["vgg16"][-1] == "SE_5_3"
    assert names["shufflenet_v2_x1_0"][0] == "SE_2_1"
    assert names["shufflenet_v2_x1_0"][-1] == "SE_4_4"
    assert names["googlenet"] == ["SE_3_1", "SE_3_2", "SE_4_1", "SE_4_2", "SE_4_3", "SE_4_4", "SE_4_5", "SE_5_1",
                                  "SE_5_2"]


def test_mobilenet_v2_blocks_sit_before_the_projection_at_the_expanded_width() -> None:
    built = build(ModelSpec("mobilenet_v2", BlockSpec()))
    site = built.sites[1]  # features.2: expansion 6 of 16 channels
    assert site.module_path == "features.2.conv.1.1"
    assert site.channels == 96
    assert len(built.sites) == 17
    assert sorted({s.stage for s in built.sites}) == list(range(1, 8))


def test_inception_v3_module_outputs_get_their_width() -> None:
    built = build(ModelSpec("inception_v3", BlockSpec()))
    widths = {s.name: s.channels for s in built.sites}
    assert widths["SE_5_1"] == 256
    assert widths["SE_6_1"] == 768
    assert widths["SE_7_3"] == 2048
