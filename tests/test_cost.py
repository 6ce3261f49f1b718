"""Bytes and FLOPs per ATen op (secli.cost), checked against hand counts on small modules.

Every expected number below is worked out by hand from the tensors' shapes (elements x 4 bytes in
float32, x 2 in bf16), never read off the code under test.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from secli.blocks.se import SqueezeExcitation
from secli.blocks.spec import BlockSpec
from secli.cost.record import OpCost, Recording, record
from secli.cost.summary import by_module, role_of, site_ops, split_blocks, total
from secli.kernels.dispatch import reference_wanted
from secli.networks.inject import inject
from secli.networks.models import build_base

C, H, W = 256, 56, 56
U = C * H * W * 4  # one fp32 pass over the SE site's tensor: 3,211,264 bytes


def _only(recording: Recording, name: str) -> OpCost:
    (op,) = [o for o in recording.ops if o.name == name]
    return op


def test_se_site_256x56x56_fp32_pool_scale_and_fcs() -> None:
    rec = record(SqueezeExcitation(C, impl="eager"), H, sample=(C, H, W))
    assert U == 3_211_264
    mean, mul = _only(rec, "mean"), _only(rec, "mul")
    assert mean.at(1) == (C * H * W, U, C * 4)  # reads the map once, writes one value per channel
    assert mul.at(1)[1:] == (U + C * 4, U)  # reads the map and C gates (broadcast, not C·H·W), writes the map
    fc1, fc2 = [o for o in rec.ops if o.name == "convolution"]
    assert fc1.fixed[1] == (16 * C + 16) * 4  # the weight and bias are read once per call, whatever the batch
    assert fc1.per_image[1:] == (C * 4, 16 * 4)
    assert fc2.fixed[1] == (C * 16 + C) * 4
    assert fc2.per_image[1:] == (16 * 4, C * 4)
    assert [role_of(o, "", U) for o in rec.ops] == ["pool", "FCs", "FCs", "FCs", "gate", "scale"]


def test_se_site_in_bf16_reads_half_the_bytes_and_counts_the_casts() -> None:
    rec = record(SqueezeExcitation(C, impl="eager"), H, dtype="bf16", sample=(C, H, W))
    # the input arrives in float32: autocast leaves the pool alone, so it reads fp32 and accumulates in fp32
    assert _only(rec, "mean").at(1)[1] == U
    convs = [o for o in rec.ops if o.name == "convolution"]
    assert all(o.dtype == "bfloat16" for o in convs)
    casts = [o for o in rec.ops if o.name == "_to_copy"]
    weight_cast = next(o for o in casts if o.fixed[1] == 16 * C * 4)  # fc1's weight: read in fp32 ...
    assert weight_cast.fixed[2] == 16 * C * 2  # ... and written as a bf16 copy, every forward
    assert _only(rec, "mul").at(1)[2] == U  # fp32 map x bf16 gate: the product is promoted to fp32


def test_conv_linear_batchnorm_relu_add_and_view_by_hand() -> None:
    conv = record(nn.Conv2d(16, 32, 3, padding=1), 8, sample=(16, 8, 8)).ops
    assert [(o.name, o.fixed, o.per_image) for o in conv] == [
        ("convolution", (0.0, 32 * 16 * 9 * 4 + 32 * 4, 0.0), (2 * 32 * 64 * 16 * 9, 16 * 64 * 4, 32 * 64 * 4))]
    linear = record(nn.Linear(64, 10), 1, sample=(64,)).ops
    assert [(o.name, o.fixed, o.per_image) for o in linear] == [("addmm", (0.0, (640 + 10) * 4, 0.0),
                                                                 (2 * 640, 64 * 4, 10 * 4))]
    bn = _only(record(nn.BatchNorm2d(8).eval(), 4, sample=(8, 4, 4)), "native_batch_norm")
    assert bn.fixed[1] == 4 * 8 * 4
    assert bn.per_image[1:] == (8 * 16 * 4, 8 * 16 * 4)  # weight, bias, mean, var + the map
    relu = record(nn.ReLU(inplace=True), 4, sample=(8, 4, 4)).ops
    assert [(o.name, o.at(1)[1:]) for o in relu] == [("relu_", (512, 512))]  # in place: reads and writes its operand

    class AddAndView(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x + x * 2).view(x.shape[0], -1)  # the view moves nothing

    ops = record(AddAndView(), 4, sample=(8, 4, 4)).ops
    assert [(o.name, o.at(1)[1:]) for o in ops] == [("mul", (512, 512)), ("add", (1024, 512))]


def test_training_step_ops_backward_and_optimizer_by_hand() -> None:
    model = nn.Sequential(nn.Conv2d(4, 8, 1, bias=False), nn.ReLU())
    rec = record(model, 4, training=True, sample=(4, 4, 4), optimizer="foreach")
    backward = {o.name: o for o in rec.ops if o.phase == "backward"}
    relu_back = backward["threshold_backward"]
    assert relu_back.module == "1"
    assert relu_back.per_image[1:] == (2 * 8 * 16 * 4, 8 * 16 * 4)  # grad + output in, grad out
    conv_back = backward["convolution_backward"]
    assert conv_back.module == "0"
    assert conv_back.fixed[1:] == (8 * 4 * 4, 8 * 4 * 4)  # reads the weight, writes its gradient (the input needs none)
    assert conv_back.per_image[1:] == ((8 + 4) * 16 * 4, 0.0)  # reads the output's gradient and the input
    step = total([o for o in rec.ops if o.phase == "optimizer"], 1)
    assert step.moved == 32 * (8 * 4)  # SGD momentum, 32 params: buf*=m (8 B), buf+=g (12 B), p-=lr*buf (12 B) each
    assert all(o.phase != "forward" or o.name not in ("zeros", "zeros_like") for o in rec.ops)  # set-up not counted


def _resnet18_site(impl: str) -> tuple[Recording, str, nn.Module]:
    model, info = build_base("resnet18", None, None)
    report = inject(model, info.adapter, BlockSpec(kind="se", impl=impl), "resnet18")
    sites = [s.module_path for s in report.sites]
    return record(model, 32, sites=sites), sites[0], model


def test_fused_se_is_recorded_as_it_runs_on_a_gpu_folded_into_the_residual() -> None:
    fused, site, _ = _resnet18_site("fused")
    t = 64 * 8 * 8 * 4  # layer1 at 32 px: 64 x 8 x 8
    assert fused.site_bytes[site] == t
    ops = [(o["op"], o["read"], o["written"]) for o in site_ops(fused, site, 1) if o["module"] == "(block)"]
    assert ops == [("mean", t, 64 * 4), ("addcmul", 2 * t + 64 * 4, t), ("relu_", t, t)]  # pool; relu(u·s + identity)
    eager, site, _ = _resnet18_site("eager")
    ops = [(o["op"], o["read"], o["written"]) for o in site_ops(eager, site, 1) if o["module"] == "(block)"]
    assert ops == [("mean", t, 64 * 4), ("mul", t + 64 * 4, t)]  # the block's add and ReLU stay outside it
    with torch.utils.flop_counter.FlopCounterMode(display=False):
        assert reference_wanted()  # the recording's permission ended with it


def test_block_roles_and_the_rest_sum_to_the_whole() -> None:
    rec, site, _ = _resnet18_site("fused")
    sites = sorted(rec.site_bytes)
    split = split_blocks(rec, sites, 1)
    whole = total(rec.ops, 1).moved
    assert sum(t.moved for t in split.roles.values()) + split.outside.moved == pytest.approx(whole)
    assert split.roles["pool"].read == sum(rec.site_bytes.values())  # the squeeze reads every site's tensor once
    tree = by_module(rec.ops, 1, ["", "layer1", site])
    assert tree[""].moved == pytest.approx(whole)
    assert tree["layer1"].moved > tree[site].moved > 0


def test_recorded_convolutions_equal_fvcores_multiply_adds() -> None:
    from secli.complexity.flops import fvcore_count

    model, _ = build_base("resnet18", None, None)
    rec = record(model, 32)
    gemm = sum(o.at(1)[0] for o in rec.ops if o.kind != "vector")
    assert gemm / 2 == fvcore_count(model.eval(), torch.zeros(1, 3, 32, 32)).gemm  # 2 FLOPs per multiply-add


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_one_inference_recording_splits_weights_as_two_batch_sizes_do(dtype: str) -> None:
    from secli.cost.record import _known, _record_once, _split

    model, _ = build_base("resnet18", None, None)
    one, _ = _record_once(model, (3, 32, 32), 1, dtype, False, set(), None)
    two, _ = _record_once(model, (3, 32, 32), 2, dtype, False, set(), None)
    fitted = _split(one, two, 1)  # the difference between two batch sizes, no knowledge of weights
    marked = [_known(op, 1) for op in one]  # weights marked while recording
    assert [(o.name, o.fixed, o.per_image) for o in marked] == [(o.name, o.fixed, o.per_image) for o in fitted]
    # every weight read (bf16: + its cast)
    assert sum(o.fixed[1] for o in marked) >= 11_689_512 * (4 if dtype == "fp32" else 6)


def test_roles_of_torchvisions_own_se_module() -> None:
    from torchvision.ops import SqueezeExcitation as TorchvisionSE

    rec = record(TorchvisionSE(64, 16), 8, sample=(64, 8, 8))
    one_pass = 64 * 8 * 8 * 4
    assert [(o.name, o.module, role_of(o, "", one_pass)) for o in rec.ops] == [
        ("mean", "avgpool", "pool"), ("convolution", "fc1", "FCs"), ("relu", "activation", "FCs"),
        ("convolution", "fc2", "FCs"), ("sigmoid", "scale_activation", "gate"), ("mul", "", "scale"),
    ]
