"""Drop-in contract, tools that trace or change dtypes (issue 19): ``torch.compile``,
``torch.export``, CPU autocast (bf16), ``model.half()``; and SK's squeeze, the same arithmetic in
both implementations (so ``complexity`` counts what runs).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from dropin_nets import CUDA, Nets, assert_same, build_pair, state
from test_dropin import saliency, train_step

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.fixture(autouse=True)
def _triton_on_cuda(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "cuda" in request.node.name:
        monkeypatch.setenv("SECLI_TRITON", "1")


DEVICES = ["cpu", CUDA]


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["se", "sk"])
def test_compiled_default_network_trains_like_the_eager_network(device: str, kind: str) -> None:
    """``torch.compile`` (aot_eager: dynamo and AOT autograd, no C++ build) of the default network,
    one graph (``fullgraph``), against the eager network run without compiling."""
    nets = build_pair(device, "resnet18", kind)
    eager, fused = nets.copies()
    expected = train_step(eager, nets.x)
    torch._dynamo.reset()
    compiled = torch.compile(fused, backend="aot_eager", fullgraph=True)
    got = {**train_step(compiled, nets.x), **state(fused)}  # the wrapper's names carry ``_orig_mod.``
    assert_same(got, expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["se", "sk"])
def test_exported_default_network_equals_the_eager_network(device: str, kind: str) -> None:
    nets = build_pair(device, "resnet18", kind)
    eager, fused = nets.copies()
    program = torch.export.export(fused.eval(), (nets.x,))
    with torch.no_grad():
        expected = eager.eval()(nets.x)
        other = nets.x.flip(-1) * 0.5
        assert_same([program.module()(nets.x), program.module()(other)], [expected, eager(other)])
    assert not any("GatedSum" in str(node.target) or "Squeeze" in str(node.target) for node in program.graph.nodes)


def _low_precision(nets: Nets, run: Any, autocast: bool) -> None:
    """The default network in bf16 autocast (or float16) is as accurate as the eager network.

    Both keep 8 (bf16) or 11 (fp16) significant bits and round at different places (the fused
    squeeze accumulates in float32, the weighted sum is one ``addcmul``), so they are compared
    with the float32 result, not with each other: the default network's distance to it is at most
    1.5 times the eager network's (measured 0.8 to 1.1 times on these networks) and the outputs'
    and gradients' dtypes are the same."""
    eager, fused = nets.copies()
    reference = run(nets.copies()[0], nets.x)
    if autocast:
        with torch.autocast(nets.x.device.type, dtype=torch.bfloat16):
            results = [run(eager, nets.x), run(fused, nets.x)]
    else:
        results = [run(eager.half(), nets.x.half()), run(fused.half(), nets.x.half())]
    for key in ("out", "dx"):
        low_eager, low_fused = results[0][key], results[1][key]
        assert low_fused.dtype == low_eager.dtype
        assert _rel(low_fused, reference[key]) <= 1.5 * _rel(low_eager, reference[key]) + 1e-3, key


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("arch", "kind"), [("resnet18", "se"), ("resnet18", "sk"), ("resnet50", "se")])
def test_bf16_autocast_is_as_accurate_as_eager(device: str, arch: str, kind: str) -> None:
    _low_precision(build_pair(device, arch, kind, dtype=torch.float32), saliency, autocast=True)


@pytest.mark.parametrize(("arch", "kind"), [("resnet18", "se"), ("resnet18", "sk")])
def test_half_is_as_accurate_as_eager(arch: str, kind: str) -> None:
    _low_precision(build_pair("cpu", arch, kind, dtype=torch.float32), saliency, autocast=False)


@pytest.mark.parametrize("paths", [2, 3])
def test_sk_squeezes_the_same_way_in_both_implementations(paths: int) -> None:
    """GAP(U) is the sum of the paths' means in both (issue 19: fused summed the means, the
    counted eager composition took the mean of the sum, C extra adds per site that
    ``complexity`` did not see): the attention MLP's input is bitwise the same, with and without
    gradients."""
    from secli.blocks.sk import SelectiveKernel

    torch.manual_seed(0)
    eager = SelectiveKernel(16, 32, paths=paths, groups=4, ratio=4, min_hidden=8, impl="eager").double()
    fused = SelectiveKernel(16, 32, paths=paths, groups=4, ratio=4, min_hidden=8).double()
    fused.load_state_dict(eager.state_dict())
    x = torch.randn(3, 16, 9, 7, dtype=torch.float64)
    inputs: list[list[torch.Tensor]] = [[], []]
    for index, block in enumerate((eager, fused)):
        block.fc.register_forward_pre_hook(lambda m, a, i=index: inputs[i].append(a[0]))
        with torch.no_grad():
            block.eval()(x)
        block.train()(x).sum().backward()
    assert len(inputs[0]) == len(inputs[1]) == 2
    assert all(torch.equal(a, b) for a, b in zip(inputs[0], inputs[1], strict=True))
