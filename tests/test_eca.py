"""ECA (Wang et al., CVPR 2020) as the third block kind, and the block registry it goes through.

ECA is checked against timm's ``EcaModule`` with copied weights and against a hand-written
loop; kernel sizes, parameter counts and site names are numbers derived by hand here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_one_line_error, run
from torch import nn

from secli.blocks.eca import EfficientChannelAttention
from secli.blocks.registry import BlockKind, get_kind, kind_names, register, unregister
from secli.blocks.spec import BlockSpec, ModelSpec
from secli.networks.models import build, load_model
from secli.networks.sites import count_params
from secli.util.errors import SecliUsageError

# t = int((log2 C + 1) / 2); k = t if t is odd else t + 1, worked by hand:
#   C=64:   (6+1)/2 = 3.5 -> t=3 -> k=3       C=128: (7+1)/2 = 4 -> k=5
#   C=256:  (8+1)/2 = 4.5 -> t=4 -> k=5       C=512: (9+1)/2 = 5 -> k=5
#   C=1024: (10+1)/2 = 5.5 -> t=5 -> k=5      C=2048: (11+1)/2 = 6 -> k=7
HAND_K = {64: 3, 128: 5, 256: 5, 512: 5, 1024: 5, 2048: 7}

# ResNet-50 sites (standard position, at each bottleneck's output): 3 x 256, 4 x 512, 6 x 1024, 3 x 2048
R50_ECA_PARAMS = 3 * 5 + 4 * 5 + 6 * 5 + 3 * 7  # = 86
R50_SITES = [f"ECA_{stage}_{i}" for stage, n in ((2, 3), (3, 4), (4, 6), (5, 3)) for i in range(1, n + 1)]




# --------------------------------------------------------------------------- the block


@pytest.mark.parametrize("channels", [64, 128, 256, 512, 2048])
def test_kernel_size_is_the_papers_adaptive_k(channels: int) -> None:
    assert EfficientChannelAttention(channels).kernel_size == HAND_K[channels]


@pytest.mark.parametrize("channels", [64, 128, 256, 512, 2048])
def test_equals_timms_eca_module_with_copied_weights(channels: int) -> None:
    timm_eca = pytest.importorskip("timm.layers.eca")
    reference = timm_eca.EcaModule(channels=channels).eval()
    nn.init.normal_(reference.conv.weight)  # not the default init: the copy must carry it
    ours = EfficientChannelAttention(channels).eval()
    ours.load_state_dict(reference.state_dict())  # strict: same names and shapes
    assert ours.conv.kernel_size == reference.conv.kernel_size == (HAND_K[channels],)
    x = torch.randn(2, channels, 5, 3)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))


@pytest.mark.parametrize(("channels", "kernel_size"), [(16, None), (10, 5), (7, 1)])
def test_equals_a_hand_written_pool_conv_sigmoid_scale(channels: int, kernel_size: int | None) -> None:
    block = EfficientChannelAttention(channels, kernel_size=kernel_size).eval()
    nn.init.normal_(block.conv.weight)
    k = block.kernel_size
    w = block.conv.weight.detach().view(k)
    x = torch.randn(3, channels, 4, 6)
    y = x.mean(dim=(2, 3))  # (N, C)
    pad = (k - 1) // 2
    gate = torch.zeros_like(y)
    for c in range(channels):  # one k-tap filter across channels, zero padding at both ends
        for j in range(k):
            src = c + j - pad
            if 0 <= src < channels:
                gate[:, c] += w[j] * y[:, src]
    expected = x * torch.sigmoid(gate)[:, :, None, None]
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected)
    assert count_params(block) == k


def test_even_or_zero_kernel_sizes_are_refused() -> None:
    for bad in (0, 4):
        with pytest.raises(SecliUsageError, match=r"odd whole number|must be from 1 to"):
            BlockSpec(kind="eca", kernel_size=bad)


# --------------------------------------------------------------------------- in a network


def test_resnet50_eca_params_and_site_names() -> None:
    import torchvision

    base = count_params(torchvision.models.resnet50())
    built = build(ModelSpec("resnet50", BlockSpec(kind="eca")))
    assert [s.name for s in built.sites] == R50_SITES
    assert built.report.params_injected == base + R50_ECA_PARAMS
    assert [s.params for s in built.sites] == [HAND_K[s.channels] for s in built.sites]
    # the gate path is the sigmoid, and its output is (N, C, 1, 1) like SE's
    site = built.sites[0]
    gate = built.model.get_submodule(site.gate_path)
    assert isinstance(gate, nn.Sigmoid)


def test_gate_hook_sees_n_c_1_1_and_fixed_kernel_size_counts() -> None:
    built = build(ModelSpec("resnet18", BlockSpec(kind="eca", kernel_size=3, stages=(5,))))
    assert [s.name for s in built.sites] == ["ECA_5_1", "ECA_5_2"]
    assert built.report.params_added == 2 * 3
    seen = []
    built.model.get_submodule(built.sites[0].gate_path).register_forward_hook(lambda m, i, o: seen.append(o.shape))
    built.model.eval()(torch.randn(2, 3, 32, 32))
    assert seen == [torch.Size([2, 512, 1, 1])]


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "eca.pt"
    result = run("inject", "resnet18", "--block", "eca", "--kernel-size", "5", "--stages", "4", "--out", str(out))
    assert result.exit_code == 0, result.output
    loaded = load_model(str(out))
    assert loaded.spec.block == BlockSpec(kind="eca", kernel_size=5, stages=(4,))
    assert [s.name for s in loaded.sites] == ["ECA_4_1", "ECA_4_2"]
    assert loaded.report.params_added == 2 * 5


# --------------------------------------------------------------------------- CLI


def test_cli_inject_resnet50_eca_json() -> None:
    result = run("inject", "resnet50", "--block", "eca", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["results"]
    assert data["params"]["added"] == R50_ECA_PARAMS
    assert [s["name"] for s in data["sites"]] == R50_SITES
    assert data["formula"]["predicted"] == R50_ECA_PARAMS
    assert data["formula"]["exact"] is True
    assert data["block"]["kind"] == "eca"
    assert data["block"]["kernel_size"] is None


def test_cli_complexity_resnet18_eca() -> None:
    result = run("complexity", "resnet18", "--block", "eca", "--image-size", "64", "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["results"]["rows"]
    # resnet18: two sites each at C = 64, 128, 256, 512 -> k = 3, 5, 5, 5
    assert row["sites"] == 8
    assert row["params"]["added"] == 2 * (3 + 5 + 5 + 5)
    assert row["params"]["formula"] == 36
    assert row["params"]["formula_matches"] is True
    assert row["label"] == "resnet18 + ECA"
    assert row["variant"] == "ECA k=adaptive standard"
    assert row["flops"]["all_ops_added"] > 0


def test_cli_profile_resnet18_eca() -> None:
    fast = ["--device", "cpu", "--input-size", "32", "-b", "2", "--iters", "1", "--warmup", "0", "--threads", "1"]
    before = torch.get_num_threads()
    try:
        result = run("profile", "resnet18", "--block", "eca", "--format", "json", *fast)
    finally:
        torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)["results"]  # the secli-profile envelope's results
    eca = payload["models"][1]
    assert eca["label"] == "resnet18 + ECA"
    assert eca["sites"] == 8
    # resnet18 at 32x32: two sites each at 64@8x8, 128@4x4, 256@2x2, 512@1x1, float32
    assert eca["block_traffic"]["bytes_per_image"] == 2 * (64 * 64 + 128 * 16 + 256 * 4 + 512) * 4


def test_cli_visualize_excitation_eca(tmp_path: Path) -> None:
    out = tmp_path / "figs"
    result = run("visualize-excitation", "resnet18", "--block", "eca", "--data", "synthetic", "--per-class", "1",
                 "--image-size", "32", "--sites", "ECA_5_2", "--out", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)["results"]
    assert [(s["name"], s["kind"], s["channels"], s["paths"]) for s in payload["sites"]] == [("ECA_5_2", "eca", 512, 1)]
    assert (out / "distributions.png").is_file()
    assert (out / "depth.png").is_file()


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["inject", "resnet50", "--block", "ecb"], "unknown block 'ecb'"),
        (["inject", "resnet50", "--block", "eca", "--ratio", "8"], "--ratio does not apply to ECA blocks"),
        (["inject", "resnet50", "--block", "se", "--kernel-size", "3"], "--kernel-size does not apply to SE blocks"),
        (["inject", "resnet50", "--block", "sk", "--gate", "tanh"], "--gate does not apply to SK blocks"),
        (["inject", "resnet50", "--block", "eca", "--kernel-size", "4"], "odd whole number"),
        (["complexity", "resnet18", "--block", "eca", "--ratios", "4,8"], "--ratio does not apply to ECA blocks"),
        (["profile", "resnet18", "--block", "eca", "--paths", "3"], "--paths does not apply to ECA blocks"),
        (["visualize-excitation", "resnet18", "--kernel-size", "3", "--data", "synthetic", "--out", "unused"],
         "add --block eca"),
    ],
)
def test_unknown_kinds_and_options_a_kind_does_not_take_are_one_line_exit_2(args: list[str], text: str) -> None:
    assert_one_line_error(run(*args), 2, text)


def test_unknown_kind_suggests_and_lists_known_kinds() -> None:
    with pytest.raises(SecliUsageError) as info:
        BlockSpec(kind="ecb")
    message = str(info.value)
    assert "did you mean eca" in message
    assert "se, sk, eca, cbam" in message
    assert "gct, none" in message
    with pytest.raises(SecliUsageError, match="does not apply to SE blocks"):
        BlockSpec(kind="se", paths=3)
    BlockSpec(kind="se", paths=2)  # the default value is not "set"


def test_block_help_names_every_registered_kind() -> None:
    from commands.options import BLOCK_HELP

    for name in kind_names():
        assert name in BLOCK_HELP


# --------------------------------------------------------------------------- a fourth kind


class ToyScale(nn.Module):
    """A learnable per-channel gate, independent of the input: C parameters per site."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.hidden = None
        self.logits = nn.Parameter(torch.zeros(channels))
        self.squash = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.squash(self.logits.view(1, -1, 1, 1).expand(x.shape[0], -1, 1, 1))


@pytest.fixture
def toy_kind():
    kind = register(
        BlockKind(
            name="toy",
            prefix="TOY",
            label="Toy per-channel scale",
            build=lambda spec, target: ToyScale(target.channels),
            gate="squash",
            options=("position",),
            params=lambda channels, hidden, spec: channels,
            params_formula="C per site",
            describe=lambda spec: [spec.position],
        )
    )
    yield kind
    unregister("toy")


def test_a_fourth_kind_is_one_registration(toy_kind: BlockKind, tmp_path: Path) -> None:
    assert get_kind("toy") is toy_kind
    assert "toy" in kind_names()
    built = build(ModelSpec("resnet18", BlockSpec(kind="toy")))
    assert [s.name for s in built.sites][:3] == ["TOY_2_1", "TOY_2_2", "TOY_3_1"]
    assert built.report.params_added == 2 * (64 + 128 + 256 + 512)
    assert built.label == "resnet18 + TOY standard"
    with pytest.raises(SecliUsageError, match="--ratio does not apply to TOY blocks"):
        BlockSpec(kind="toy", ratio=4)
    # the CLI takes it too, with its registered closed form
    result = run("inject", "resnet18", "--block", "toy", "--position", "post", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["results"]
    assert data["formula"]["predicted"] == data["params"]["added"] == 2 * (64 + 128 + 256 + 512)
    gate = built.model.get_submodule(built.sites[0].gate_path)
    assert isinstance(gate, nn.Sigmoid)


def test_registering_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(BlockKind(name="se", prefix="X", label="x", build=lambda s, t: nn.Identity(), gate="g", options=()))
    with pytest.raises(ValueError, match="reserved"):
        register(BlockKind(name="none", prefix="X", label="x", build=lambda s, t: nn.Identity(), gate="g", options=()))
