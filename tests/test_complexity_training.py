"""``--training-step``: forward + backward FLOPs and saved activations, against hand counts."""

from __future__ import annotations

import json

import torch
from torch import nn
from typer.testing import CliRunner

from commands.app import app
from secli.complexity.training import training_step_cost
from secli.complexity.workflow import complexity


def test_tiny_network_by_hand() -> None:
    # conv 3->4, 3x3, no bias, on 8x8: 4x6x6 = 144 outputs x 27 = 3,888 multiply-adds; ReLU 144;
    # linear 144 -> 5 without bias: 720. Backward: the conv's weight gradient only (its input needs
    # none) 3,888; the linear's input and weight gradients 720 + 720; ReLU backward 144.
    # Saved for backward (per image, float32): the input 3*8*8*4 = 768 bytes and the ReLU output
    # 144*4 = 576 bytes (the linear's input is a view of it: one storage).
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(144, 5, bias=False))
    step = training_step_cost(model, 8)
    assert (step.forward, step.backward_gemm, step.backward_other) == (3888 + 144 + 720, 3888 + 1440, 144)
    assert step.total == 4752 + 5472
    assert step.saved_bytes == 768 + 576
    assert all(p.grad is None for p in model.parameters())  # measured on a copy


def test_se_step_costs_more_and_keeps_more() -> None:
    torch.manual_seed(0)
    result = complexity("resnet18", block="se", input_size=32, training_step=True)
    base, row = result.baseline_training, result.rows[0].training
    assert base is not None
    assert row is not None
    assert row.backward_gemm > base.backward_gemm
    assert row.saved_bytes > base.saved_bytes
    # SE's FCs (two blocks per stage, two FCs each, c*c/16 multiply-adds per FC): 87,040 forward;
    # backward, a gradient to the input and one to the weights: twice that
    fc = sum(2 * 2 * c * c // 16 for c in (64, 128, 256, 512))
    assert fc == 87_040
    assert row.backward_gemm - base.backward_gemm == 2 * fc


def test_cli_json_and_table() -> None:
    args = ["complexity", "resnet18", "--block", "se", "--image-size", "32", "--training-step"]
    out = CliRunner().invoke(app, [*args, "-f", "json"])
    assert out.exit_code == 0, out.output
    results = json.loads(out.stdout)["results"]
    step, base = results["rows"][0]["training_step"], results["baseline"]["training_step"]
    assert step["flops_added"] == step["total"] - base["total"] > 0
    table = CliRunner().invoke(app, [*args, "-f", "markdown"])
    assert "one training step per image" in table.stdout
    assert "saved MiB" in table.stdout
