"""torch.compile on networks with fused SE (folded into the residual sum) and fused SK blocks.

Under compile the fused blocks trace their eager composition (``fused_enabled`` is False while
dynamo traces), so the whole network is one graph (``fullgraph=True``, no graph breaks) that the
compiler fuses itself. The float64 checks use the ``aot_eager`` backend (dynamo + AOT autograd,
no C++ build, a few seconds); the inductor check builds C++ kernels on CPU, which takes one to
two minutes on a loaded 2-core machine, so it runs with SECLI_TEST_INDUCTOR=1 (and in the
``cuda`` group, on the GPU).
"""

from __future__ import annotations

import copy
import os

import pytest
import torch
from torch import nn

from secli.blocks.se import SqueezeExcitation
from secli.blocks.sk import SelectiveKernel
from secli.networks.architectures.resnet import ResNetAdapter

torchvision_resnet = pytest.importorskip("torchvision.models.resnet")


class _Tiny(nn.Module):
    """A basic block and a bottleneck with a downsample: both folded forwards in one small net."""

    def __init__(self) -> None:
        super().__init__()
        down = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
        self.layer1 = nn.Sequential(
            torchvision_resnet.BasicBlock(8, 8),
            torchvision_resnet.Bottleneck(8, 4, stride=2, downsample=down),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer1(x)


def _tiny(kind: str, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(0)
    model = _Tiny()
    adapter = ResNetAdapter()
    if kind == "se":
        for target in adapter.se_targets(model, "standard"):
            target.attach(SqueezeExcitation(target.channels, ratio=4, impl="fused"))
        assert all(m.residual_folded for m in model.modules() if isinstance(m, SqueezeExcitation))
    else:
        for target in adapter.sk_targets(model):
            sk = SelectiveKernel(target.in_channels or target.channels, target.channels, stride=target.stride,
                                 groups=2, ratio=2, min_hidden=4, impl="fused")
            target.attach(sk)
    return model.to(dtype)


def _step(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    out = model(x)
    out.square().sum().backward()
    return out.detach(), {n.removeprefix("_orig_mod."): p.grad.clone()
                          for n, p in model.named_parameters() if p.grad is not None}


def _compare(kind: str, backend: str, dtype: torch.dtype, device: str = "cpu") -> None:
    model = _tiny(kind, dtype).to(device)
    reference = copy.deepcopy(model)
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    x = torch.randn(2, 8, 9, 7, dtype=dtype, device=device)
    for channels_last in (False, True):
        xx = x.to(memory_format=torch.channels_last) if channels_last else x
        out, grads = _step(compiled, xx)
        out_ref, grads_ref = _step(reference, xx)
        tol = 1e-10 if dtype == torch.float64 else 1e-4
        torch.testing.assert_close(out, out_ref, rtol=tol, atol=tol)
        scale = max(g.abs().max().item() for g in grads_ref.values())
        assert grads.keys() == grads_ref.keys()
        for name, grad in grads_ref.items():  # absolute to the largest gradient: some are ~0 (bias before BN)
            torch.testing.assert_close(grads[name], grad, rtol=tol, atol=tol * scale, msg=name)


@pytest.mark.parametrize("kind", ["se", "sk"])
def test_fused_blocks_trace_as_one_graph(kind: str) -> None:
    torch._dynamo.reset()
    explained = torch._dynamo.explain(_tiny(kind))(torch.randn(2, 8, 9, 7, dtype=torch.float64))
    assert explained.graph_break_count == 0
    assert explained.graph_count == 1


@pytest.mark.parametrize("kind", ["se", "sk"])
def test_compiled_fused_networks_equal_eager_in_float64(kind: str) -> None:
    torch._dynamo.reset()
    _compare(kind, "aot_eager", torch.float64)


@pytest.mark.skipif(os.environ.get("SECLI_TEST_INDUCTOR") != "1",
                    reason="inductor's CPU build is slow; set SECLI_TEST_INDUCTOR=1")
def test_inductor_compiles_the_folded_se_network_on_cpu() -> None:
    torch._dynamo.reset()
    _compare("se", "inductor", torch.float32)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", ["se", "sk"])
def test_inductor_compiles_fused_networks_on_cuda(kind: str) -> None:
    torch._dynamo.reset()
    _compare(kind, "inductor", torch.float32, "cuda")
