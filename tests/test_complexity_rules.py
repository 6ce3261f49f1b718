"""Each all-ops rule (docs/complexity.md's table, secli.complexity.handles) against a count made by hand.

Every expected number is written out from the tensor shapes; none is read from secli's output.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from secli.complexity.flops import fvcore_count


class Fn(nn.Module):
    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.fn(*args)


def count(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor):
    model = fn if isinstance(fn, nn.Module) else Fn(fn)
    return fvcore_count(model.eval(), inputs if len(inputs) > 1 else inputs[0])  # type: ignore[arg-type]


def test_relu6_is_one_op_per_element() -> None:
    report = count(nn.ReLU6(inplace=True), torch.randn(2, 3, 4, 5))
    assert report.by_operator == {"hardtanh": 120}
    assert report.all_ops == 120
    assert report.fc_only == 0
    assert not report.not_counted
    assert not report.unsupported


def test_max_pool_reads_its_window() -> None:
    # 3x3 window, stride 2, padding 1 on 2x4x9x9: output 2x4x5x5 = 200, each reads 9 elements
    report = count(nn.MaxPool2d(3, stride=2, padding=1), torch.randn(2, 4, 9, 9))
    assert report.by_operator == {"max_pool2d": 9 * 200}
    # a rectangular window: 2x3 on 1x1x6x6, stride (2, 3): output 3x2 = 6
    report = count(lambda x: F.max_pool2d(x, (2, 3)), torch.randn(1, 1, 6, 6))
    assert report.by_operator == {"max_pool2d": 6 * 6}


def test_avg_pool_window_x_output() -> None:
    report = count(nn.AvgPool2d(2), torch.randn(1, 3, 8, 8))  # output 3x4x4 = 48, window 4
    assert report.by_operator == {"avg_pool2d": 4 * 48}


def test_sum_is_one_add_per_element_reduced_away() -> None:
    # (N, M, C, H, W) = (1, 3, 4, 2, 2) summed over the paths: 16 outputs, 2 adds each
    report = count(lambda x: x.sum(dim=1), torch.randn(1, 3, 4, 2, 2))
    assert report.by_operator == {"sum": 2 * 16}


def test_mean_and_amax_per_input_element() -> None:
    assert count(lambda x: x.mean(dim=(2, 3)), torch.randn(1, 4, 3, 3)).by_operator == {"mean": 36}
    assert count(lambda x: x.amax(dim=(2, 3)), torch.randn(1, 4, 3, 3)).by_operator == {"amax": 36}


def test_conv_bias_is_one_add_per_output() -> None:
    conv = nn.Conv2d(2, 3, 3, bias=True)  # 2x6x6 input -> 3x4x4 = 48 outputs
    report = count(conv, torch.randn(1, 2, 6, 6))
    assert report.by_operator == {"conv": 48 * 2 * 9, "bias_add": 48}
    assert report.fc_only == 48 * 2 * 9
    assert report.all_ops == 48 * 2 * 9 + 48
    no_bias = count(nn.Conv2d(2, 3, 3, bias=False), torch.randn(1, 2, 6, 6))
    assert no_bias.by_operator == {"conv": 48 * 2 * 9}


def test_linear_bias_is_one_add_per_output() -> None:
    report = count(nn.Linear(5, 7), torch.randn(3, 5))
    assert report.by_operator == {"linear": 3 * 5 * 7, "bias_add": 3 * 7}


def test_elementwise_and_softmax() -> None:
    report = count(lambda x: torch.sigmoid(x) * x + x, torch.randn(2, 5))
    assert report.by_operator == {"sigmoid": 10, "mul": 10, "add": 10}
    assert count(lambda x: torch.softmax(x, dim=1), torch.randn(2, 5)).by_operator == {"softmax": 30}
    assert count(nn.Hardswish(), torch.randn(4, 4)).by_operator == {"hardswish": 16}


def test_scaled_dot_product_attention() -> None:
    # B=2, H=3, L=7, S=5, E=4, E_v=6: Q·K^T 2·3·7·5·4 = 840 and A·V 2·3·7·5·6 = 1260 multiply-adds;
    # 210 scores, each scaled once and soft-maxed (3): 840
    q, k, v = torch.randn(2, 3, 7, 4), torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 6)
    report = count(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), q, k, v)
    assert report.by_operator == {"scaled_dot_product_attention": 840 + 1260, "sdpa_softmax": 840}
    assert report.fc_only == 2100
    assert report.all_ops == 2940
    mask = torch.zeros(7, 5)
    masked = count(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m), q, k, v, mask)
    assert masked.by_operator["sdpa_softmax"] == 840 + 210  # plus one add per score for the mask
    assert not masked.unsupported


def test_unknown_ops_are_unsupported_not_free() -> None:
    report = count(lambda x: torch.cumsum(x, dim=1).floor().view(-1), torch.randn(2, 5))
    assert report.unsupported == {"aten::cumsum": 1, "aten::floor": 1}
    assert report.not_counted == {"aten::view": 1}  # only ops that do no arithmetic
    assert report.all_ops == 0
    assert count(lambda x: x.max().view(1), torch.randn(2, 5)).unsupported == {"aten::max": 1}


def test_data_movement_is_not_counted() -> None:
    report = count(lambda x: torch.cat([x, x], dim=1).flatten(1).transpose(0, 1), torch.randn(2, 3))
    assert report.all_ops == 0
    assert not report.unsupported
    assert set(report.not_counted) == {"aten::cat", "aten::flatten", "aten::transpose"}


def test_pow_is_one_op_per_element() -> None:
    # x.pow(2) on 2x3x4 = 24 squares; x.pow(0.5) of the 2x3x1 sums = 6 roots
    report = count(lambda x: x.pow(2).sum(dim=2, keepdim=True).pow(0.5), torch.randn(2, 3, 4))
    assert report.by_operator == {"pow": 24 + 6, "sum": 24 - 6}
    assert not report.unsupported


def test_var_is_four_ops_per_element_reduced() -> None:
    # (N, C, K) = (2, 3, 5) -> 6 variances of 5 values: mean 5, subtract 5, square 5, sum 4, divide 1 = 20 each
    report = count(lambda x: x.var(dim=2), torch.randn(2, 3, 5))
    assert report.by_operator == {"var": 6 * 20}
    assert count(lambda x: x.var(dim=2, correction=0), torch.randn(2, 3, 5)).by_operator == {"var": 120}


def test_arithmetic_on_traced_sizes_is_not_counted() -> None:
    # reshape to (N, H * W - 1 + 1): the trace computes H * W and - 1 + 1 on 0-dim size tensors
    def flatten_with_shape_arithmetic(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[2] * x.shape[3] - 1 + 1) * 2

    report = count(flatten_with_shape_arithmetic, torch.randn(2, 1, 3, 4))
    assert report.by_operator == {"mul": 2 * 12}  # only the tensor's doubling
    assert report.not_counted["aten::mul (on shapes)"] == 1
    assert report.not_counted["aten::sub (on shapes)"] == 1
    assert report.not_counted["aten::add (on shapes)"] == 1


def test_nearest_upsample_keeps_fvcores_one_per_output() -> None:
    # 1x2x3x3 -> 1x2x6x6: 72 outputs, each one copy (fvcore's rule, in its default count too)
    report = count(lambda x: F.interpolate(x, size=(6, 6), mode="nearest"), torch.randn(1, 2, 3, 3))
    assert report.by_operator == {"upsample_nearest2d": 72}
    assert report.fc_only == report.all_ops == 72


def test_view_as_and_constant_tensors_are_free() -> None:
    const = torch.ones(1, 3, 1, 1).numpy()
    report = count(lambda x: (x * torch.from_numpy(const)).view_as(x), torch.randn(2, 3, 2, 2))
    assert report.by_operator == {"mul": 24}
    assert not report.unsupported
