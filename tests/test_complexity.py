"""secli.complexity.count / secli.complexity.flops against independent numbers.

Expected values come from closed forms written out here, from fvcore's own default count, from
PyTorch's FlopCounterMode, and from published figures (SE and SK papers; timm 1.0.31 + fvcore
measurements quoted in shared/PAPERS.md). Only the checks against published figures run at 224.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from secli.blocks import SelectiveKernel, SqueezeExcitation
from secli.blocks.spec import BlockSpec
from secli.complexity.count import analyse
from secli.complexity.flops import FlopCountError, extra_handles, fvcore_count, torch_gemm_count
from secli.complexity.input_size import run_or_explain, smallest_working_size
from secli.util.errors import SecliUsageError

# ResNet-50: (stage, blocks N_s, output channels C_s, bottleneck width, feature side at 224)
R50_STAGES = [(2, 3, 256, 64, 56), (3, 4, 512, 128, 28), (4, 6, 1024, 256, 14), (5, 3, 2048, 512, 7)]


def plain_fvcore_total(model: nn.Module, x: torch.Tensor) -> int:
    """fvcore's default count, with none of secli's handles."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model.eval(), x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        return int(analysis.total())


class TinySE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.se = SqueezeExcitation(16, ratio=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(torch.relu(self.conv(x)))


def test_tiny_se_every_op_by_hand() -> None:
    model, x = TinySE().eval(), torch.randn(1, 3, 8, 8)
    report = fvcore_count(model, x, modules=["se"])
    conv = 16 * 3 * 9 * 8 * 8  # C_out * C_in * k*k * H*W multiply-adds
    fcs = 16 * 4 + 4 * 16
    assert report.fc_only == conv + fcs == plain_fvcore_total(model, x)
    # relu after conv (1024), SE: mean over 16x8x8 (1024), relu on 4, sigmoid on 16, scale 1024
    assert report.by_operator["mean"] == 1024
    assert report.by_operator["relu"] == 1024 + 4
    assert report.by_operator["sigmoid"] == 16
    assert report.by_operator["mul"] == 1024
    assert report.by_operator["bias_add"] == 4 + 16  # the two FCs' biases, one add per output
    assert report.all_ops == conv + fcs + 1024 + 1028 + 16 + 1024 + 20
    assert report.gemm == conv + fcs == torch_gemm_count(model, x)
    assert report.module_split("se") == (fcs, fcs + 1024 + 4 + 16 + 1024 + 20)


def test_tiny_sk_extra_ops_by_hand() -> None:
    model = SelectiveKernel(16, 16, paths=2, groups=4, ratio=4, min_hidden=4).eval()
    x = torch.randn(1, 16, 8, 8)
    report = fvcore_count(model, x)
    assert report.fc_only == plain_fvcore_total(model, x)
    hw, c, m = 64, 16, 2
    assert report.by_operator["conv"] == m * c * (16 // 4) * 9 * hw + c * 4 + 4 * c * m
    expected_extra = {
        "relu": m * c * hw + 4,  # the paths' ReLUs and the fc's
        "sum": (m - 1) * c * hw,  # select (weighted sum): M-1 adds per output
        "mean": m * c * hw,  # fuse: GAP(U) as the sum of the paths' means (what the fused block runs, issue 19)
        "add": (m - 1) * c,  # ... and their M-1 adds per channel
        "softmax": 3 * m * c,
        "mul": m * c * hw,
    }
    for key, value in expected_extra.items():
        assert report.by_operator[key] == value, key
    assert report.all_ops - report.fc_only == sum(expected_extra.values())
    assert report.not_counted["aten::stack"] == 1
    assert report.not_counted["aten::view"] == 1


@pytest.mark.parametrize(("gate", "squeeze"), [("tanh", "max"), ("hardsigmoid", "avg")])
def test_gate_and_squeeze_variants_are_counted(gate: str, squeeze: str) -> None:
    block = SqueezeExcitation(32, ratio=8, gate=gate, squeeze=squeeze).eval()
    report = fvcore_count(block, torch.randn(1, 32, 6, 6))
    assert report.by_operator["amax" if squeeze == "max" else "mean"] == 32 * 36
    assert report.by_operator[gate] == 32
    assert report.by_operator["mul"] == 32 * 36


def test_failing_handle_names_the_op() -> None:
    def broken(inputs, outputs):
        raise ValueError("boom")

    with pytest.raises(FlopCountError, match="aten::mean"):
        fvcore_count(TinySE().eval(), torch.randn(1, 3, 8, 8), handles={**extra_handles(), "aten::mean": broken})


class Shrinking(nn.Module):
    """Three 2x2 max pools with stride 2: needs at least 8x8."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.pools = nn.Sequential(nn.MaxPool2d(2), nn.MaxPool2d(2), nn.MaxPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pools(self.stem(x))


def test_too_small_input_names_layer_and_minimum() -> None:
    model = Shrinking().eval()
    assert smallest_working_size(model, 3, 224) == 8
    with pytest.raises(SecliUsageError, match=r"layer pools\.2 \(MaxPool2d\).*smallest input that works is 8x8"):
        run_or_explain(model, 5, "shrinking", 224)


# ---------------------------------------------------------------- small networks (64x64)


@pytest.fixture(scope="module")
def r18_sweep():
    blocks = [BlockSpec(kind="se", ratio=r) for r in (4, 16)] + [BlockSpec(kind="se", stages=(3,))]
    return analyse("resnet18", blocks, input_size=64)


def test_fc_only_is_fvcores_default(r18_sweep) -> None:
    from secli.networks.models import build_base

    model, _ = build_base("resnet18")
    assert r18_sweep.baseline_flops.fc_only == plain_fvcore_total(model, torch.zeros(1, 3, 64, 64))


def test_r18_params_and_formula_by_hand(r18_sweep) -> None:
    widths = {2: 64, 3: 128, 4: 256, 5: 512}  # two basic blocks per stage
    for row, ratio, stages in zip(r18_sweep.rows, (4, 16, 16), ((2, 3, 4, 5), (2, 3, 4, 5), (3,))):
        weights = sum(2 * 2 * widths[s] ** 2 / ratio for s in stages)
        biases = sum(2 * (widths[s] // ratio + widths[s]) for s in stages)
        assert row.params_added == weights + biases
        assert row.formula.weights_formula == weights
        assert row.formula.bias_terms == biases
        assert [st.stage for st in row.stages] == list(stages)
        for st in row.stages:
            assert (st.blocks, st.channels) == (2, (widths[st.stage],))
        assert row.flops.fc_only - r18_sweep.baseline_flops.fc_only == weights  # 1x1 FCs at batch 1
        assert row.flops.torch_gemm == row.flops.gemm


def test_sweep_builds_and_counts_baseline_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import secli.complexity.count as complexity

    calls = {"build": 0, "count": 0}
    real_build, real_count = complexity.build_base, complexity.fvcore_count

    def build(*args, **kwargs):
        calls["build"] += 1
        return real_build(*args, **kwargs)

    def count(*args, **kwargs):
        calls["count"] += 1
        return real_count(*args, **kwargs)

    monkeypatch.setattr(complexity, "build_base", build)
    monkeypatch.setattr(complexity, "fvcore_count", count)
    result = analyse("resnet18", [BlockSpec(kind="se", ratio=r) for r in (2, 4)], input_size=32)
    assert calls == {"build": 1, "count": 3}
    assert len(result.rows) == 2


# ---------------------------------------------------------------- published figures (224)


@pytest.fixture(scope="module")
def se_r50():
    return analyse("resnet50", [BlockSpec(kind="se")], input_size=224)


def test_se_resnet50_matches_timm_and_the_paper(se_r50) -> None:
    base, row = se_r50.baseline_flops, se_r50.rows[0]
    assert (se_r50.params_baseline, row.params_injected) == (25_557_032, 28_088_024)  # timm resnet50 / seresnet50
    assert round(base.fc_only / 1e9, 3) == 4.112  # torchvision v1.5; the paper's v1 is 3.86
    weights = sum(2 * n * c * c / 16 for _, n, c, _, _ in R50_STAGES)
    assert row.flops.fc_only - base.fc_only == weights == 2_514_944
    assert round(row.flops.fc_only / 1e9, 3) == 4.114


def test_se_resnet50_all_ops_added_by_hand(se_r50) -> None:
    base, row = se_r50.baseline_flops, se_r50.rows[0]
    pool = sum(n * c * h * h for _, n, c, _, h in R50_STAGES)
    assert pool == 5_519_360
    gates = sum(n * c for _, n, c, _, _ in R50_STAGES)  # one sigmoid per channel
    hidden_relu = sum(n * c // 16 for _, n, c, _, _ in R50_STAGES)
    fc = 2_514_944
    bias_adds = sum(n * (c // 16 + c) for _, n, c, _, _ in R50_STAGES)  # one add per FC output
    assert bias_adds == 16_048
    assert row.flops.all_ops - base.all_ops == fc + pool + pool + gates + hidden_relu + bias_adds
    assert base.crosscheck_ok
    assert row.flops.crosscheck_ok


def test_resnet50_param_tables_10_13_15() -> None:
    ratios = (2, 4, 8, 32)
    stage_sets = ((2,), (3,), (4,), (2, 3, 4))
    blocks = [BlockSpec(kind="se", ratio=r) for r in ratios]
    blocks += [BlockSpec(kind="se", stages=s) for s in stage_sets]
    blocks += [BlockSpec(kind="se", position="3x3")]
    result = analyse("resnet50", blocks, flops=False)
    base = 25_557_032
    for row, ratio in zip(result.rows[:4], ratios):  # closed form with biases, by hand
        weights = sum(2 * n * c * c / ratio for _, n, c, _, _ in R50_STAGES)
        biases = sum(n * (c // ratio + c) for _, n, c, _, _ in R50_STAGES)
        assert row.params_injected == base + weights + biases
    published = [45.7, 35.7, 30.7, 26.9, 25.6, 25.7, 26.4]  # Table 10, then Table 13
    for row, paper in zip(result.rows[:7], published):
        assert abs(row.params_injected / 1e6 - paper) <= 0.1  # the paper's figures run up to 0.1M higher
    drop_last = result.rows[7].params_pct
    assert 3.5 < drop_last < 4.5  # "~4%" without conv5_x (vs ~10% with it)
    se_3x3 = sum(n * (2 * w * w // 16 + w // 16 + w) for _, n, _, w, _ in R50_STAGES)
    assert result.rows[8].params_added == se_3x3  # 25.72M; the paper prints 25.8M (see docs/complexity.md)


def test_sknet50_matches_timm_and_the_paper() -> None:
    result = analyse("resnext50_32x4d", [BlockSpec(kind="sk")], input_size=224)
    row = result.rows[0]
    assert result.params_baseline == 25_028_904  # paper: ResNeXt-50 25.0M
    assert row.params_injected == 27_479_784  # timm skresnext50_32x4d; paper 27.5M
    assert round(row.flops.fc_only / 1e9, 3) == 4.497  # timm + fvcore; paper 4.47
    assert row.flops.crosscheck_ok
