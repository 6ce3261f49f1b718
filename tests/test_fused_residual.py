"""SE folded into a residual block's sum and ReLU (secli.kernels.residual) equals eager."""

from __future__ import annotations

import copy

import pytest
import torch

from secli.blocks.se import SqueezeExcitation
from secli.blocks.spec import BlockSpec, ModelSpec
from secli.kernels.gates import GATE_MODULES
from secli.networks.models import build

GATES = tuple(GATE_MODULES)
SHAPES = [(1, 16, 7, 5), (3, 32, 9, 9), (2, 8, 1, 1), (4, 24, 13, 6), (1, 64, 3, 17)]
TOL = {"rtol": 1e-10, "atol": 1e-12}


def _pair(channels: int, gate: str = "sigmoid") -> tuple[SqueezeExcitation, SqueezeExcitation]:
    eager = SqueezeExcitation(channels, ratio=4, gate=gate, impl="eager").double()
    fused = copy.deepcopy(eager)
    fused.impl = "fused"
    return eager, fused


def _run(block: SqueezeExcitation, u: torch.Tensor, identity: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    u, identity = u.clone().requires_grad_(True), identity.clone().requires_grad_(True)
    block.zero_grad()
    out = block(u, identity)
    out.backward(g)
    assert u.grad is not None
    assert identity.grad is not None
    return [out, u.grad, identity.grad] + [p.grad.clone() for p in block.parameters() if p.grad is not None]


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_folded_se_equals_eager_in_float64(gate: str, shape: tuple[int, ...], channels_last: bool) -> None:
    eager, fused = _pair(shape[1], gate)
    u, identity = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    if channels_last:
        u, identity = u.to(memory_format=torch.channels_last), identity.to(memory_format=torch.channels_last)
    g = torch.randn(shape, dtype=torch.float64)
    expected = _run(eager, u, identity, g)
    got = _run(fused, u, identity, g)
    assert len(got) == len(expected) == 3 + 4
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, **TOL)
    if channels_last and shape[2] * shape[3] > 1:
        assert got[0].is_contiguous(memory_format=torch.channels_last)


def test_folded_se_without_gradients_equals_eager() -> None:
    eager, fused = _pair(16)
    u, identity = torch.randn(2, 16, 5, 7, dtype=torch.float64), torch.randn(2, 16, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(fused(u, identity), eager(u, identity), **TOL)
        torch.testing.assert_close(eager(u, identity), torch.relu(eager(u) + identity))


@pytest.mark.parametrize("gate", GATES)
def test_gradcheck_folded_se_on_tiny_shapes(gate: str) -> None:
    _, block = _pair(4, gate)
    with torch.no_grad():  # keep relu/hardsigmoid gates away from their kinks
        block.fc2.bias.fill_(0.3)
        block.fc2.weight.mul_(0.1)
    names = [n for n, _ in block.named_parameters()]
    u = torch.randn(2, 4, 3, 5, dtype=torch.float64, requires_grad=True)
    identity = torch.randn(2, 4, 3, 5, dtype=torch.float64, requires_grad=True)

    def fn(a: torch.Tensor, b: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(block, dict(zip(names, ps, strict=True)), (a, b))

    assert torch.autograd.gradcheck(fn, (u, identity, *block.parameters()), eps=1e-6, atol=1e-5)


def test_the_folded_function_saves_the_input_and_the_output_only() -> None:
    """Two full-size tensors (u and the output, which the next convolution saves anyway)."""
    _, block = _pair(16)
    u = torch.randn(2, 16, 8, 8, dtype=torch.float64, requires_grad=True)
    identity = torch.randn(2, 16, 8, 8, dtype=torch.float64, requires_grad=True)
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = block(u, identity)
    big = [t for t in saved if t.numel() == u.numel()]
    assert len(big) == 2
    assert any(t is u for t in big)
    assert any(t.data_ptr() == out.data_ptr() for t in big)


def _model_pair(arch: str, channels_last: bool = False) -> tuple[torch.nn.Module, torch.nn.Module]:
    fused = build(ModelSpec(arch, BlockSpec(kind="se", impl="fused"))).model.double()
    eager = build(ModelSpec(arch, BlockSpec(kind="se", impl="eager"))).model.double()
    assert fused.state_dict().keys() == eager.state_dict().keys()
    eager.load_state_dict(fused.state_dict())
    folded = [m for m in fused.modules() if isinstance(m, SqueezeExcitation) and m.residual_folded]
    assert folded
    assert all(m.residual_folded for m in fused.modules() if isinstance(m, SqueezeExcitation))
    assert not any(m.residual_folded for m in eager.modules() if isinstance(m, SqueezeExcitation))
    if channels_last:
        fused, eager = fused.to(memory_format=torch.channels_last), eager.to(memory_format=torch.channels_last)
    return eager, fused


@pytest.mark.parametrize(
    ("arch", "batch", "size", "channels_last"),
    [("resnet18", 2, 33, False), ("resnet18", 1, 35, True), ("resnet50", 2, 37, False), ("timm:resnet18", 2, 32, True)],
)
def test_folded_networks_equal_eager_networks_in_float64(arch: str, batch: int, size: int, channels_last: bool) -> None:
    if arch.startswith("timm:"):
        pytest.importorskip("timm")
    eager, fused = _model_pair(arch, channels_last)
    if batch == 1:  # BN over a batch of one image at 1x1 needs eval mode
        eager.eval(), fused.eval()
    x = torch.randn(batch, 3, size, size, dtype=torch.float64)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    results = []
    for model in (eager, fused):
        xx = x.clone().requires_grad_(True)
        out = model(xx)
        out.square().sum().backward()
        results.append((out, xx.grad, {n: p.grad for n, p in model.named_parameters()}))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-8, atol=1e-10)
    for name, grad in results[0][2].items():
        torch.testing.assert_close(results[1][2][name], grad, rtol=1e-7, atol=1e-9, msg=name)
    for a, b in zip(fused.buffers(), eager.buffers(), strict=True):  # BN running statistics
        torch.testing.assert_close(a, b)


def test_other_positions_and_squeezes_keep_the_librarys_forward() -> None:
    for block in (BlockSpec(kind="se", position="post"), BlockSpec(kind="se", squeeze="max"),
                  BlockSpec(kind="se", impl="eager")):
        model = build(ModelSpec("resnet18", block)).model
        assert not any("forward" in vars(m) for m in model.modules() if type(m).__name__ == "BasicBlock")


def test_flop_counters_and_jit_traces_see_the_eager_ops() -> None:
    from secli.kernels.dispatch import eager_composition

    _, fused = _pair(16)
    u, identity = torch.randn(1, 16, 4, 4, dtype=torch.float64), torch.randn(1, 16, 4, 4, dtype=torch.float64)
    traced = torch.jit.trace(fused, (u, identity))
    graph = str(traced.graph)
    assert "PythonOp" not in graph
    assert "addcmul" not in graph
    assert "aten::relu" in graph
    with eager_composition(), torch.no_grad():
        torch.testing.assert_close(fused(u, identity), torch.relu(fused(u) + identity))
