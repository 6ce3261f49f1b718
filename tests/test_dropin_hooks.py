"""Drop-in contract, hooks (issue 19): every module the eager network calls is called as often, in
the same order, with the same tensors visible to forward, pre-forward and backward hooks, on
the default-impl network; hook-based counters (thop, ptflops, hand-written) count the same.

Before the fix, the residual fold skipped a bottleneck's final ``relu`` call (a forward hook on
``layer1.0.relu`` fired 4 times over one inference and one training forward where eager fires 6)
and ptflops counted SE-ResNet-50 11,038,720 FLOPs below its eager twin.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import pytest
import torch
from dropin_nets import Nets, assert_same, build_pair, net_params
from torch import nn

from secli.blocks.spec import BlockSpec, ModelSpec
from secli.networks.models import build


@pytest.fixture(scope="module", params=net_params())
def nets(request: pytest.FixtureRequest) -> Nets:
    return build_pair(*request.param)


@pytest.fixture(autouse=True)
def _triton_on_cuda(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "cuda" in request.node.name:
        monkeypatch.setenv("SECLI_TRITON", "1")


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value.detach().clone()]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def _drive(model: nn.Module, x: torch.Tensor) -> None:
    """One inference forward and one training step (what the issue counted)."""
    with torch.no_grad():
        model.eval()(x)
    xx = x.clone().requires_grad_(True)
    model.train()(xx).square().sum().backward()


def _record_forward(model: nn.Module) -> list[tuple[str, str, list[torch.Tensor]]]:
    calls: list[tuple[str, str, list[torch.Tensor]]] = []
    for name, module in model.named_modules():
        module.register_forward_pre_hook(lambda m, args, n=name: calls.append((n, "pre", _tensors(args))))
        module.register_forward_hook(lambda m, args, out, n=name: calls.append((n, "forward", _tensors([args, out]))))
    return calls


def test_forward_and_pre_hooks_on_every_module_see_the_eager_calls(nets: Nets) -> None:
    eager, fused = nets.copies()
    expected, got = _record_forward(eager), _record_forward(fused)
    _drive(eager, nets.x)
    _drive(fused, nets.x)
    assert [c[:2] for c in got] == [c[:2] for c in expected]  # same modules, as often, in the same order
    assert_same([c[2] for c in got], [c[2] for c in expected])
    blocks = sum(1 for name, _ in eager.named_modules() if name.count(".") == 1 and name.startswith("layer"))
    assert sum(1 for n, kind, _ in expected
               if kind == "forward" and n.count(".") == 1 and n.startswith("layer")) == 2 * blocks


def _in_place_targets(model: nn.Module) -> set[str]:
    """Modules whose output torchvision's blocks modify in place (``out += identity``): a full
    backward hook there makes autograd refuse the in-place add in any implementation."""
    names = set()
    for name, block in model.named_modules():
        last = "bn3" if hasattr(block, "conv3") and hasattr(block, "bn3") else "bn2" if hasattr(block, "bn2") else None
        if last is None or not name.startswith("layer"):
            continue
        names.add(f"{name}.{last}")
        wrapped = getattr(block, last)
        if isinstance(wrapped, nn.Sequential):
            names.add(f"{name}.{last}.{len(wrapped) - 1}")
    return names


def _record_backward(model: nn.Module) -> list[tuple[str, str, list[torch.Tensor]]]:
    calls: list[tuple[str, str, list[torch.Tensor]]] = []
    skip = _in_place_targets(model)
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False  # autograd refuses full backward hooks on in-place modules
    for name, module in model.named_modules():
        if name in skip:
            continue
        module.register_full_backward_pre_hook(lambda m, g, n=name: calls.append((n, "backward_pre", _tensors(g))))
        module.register_full_backward_hook(lambda m, gi, go, n=name: calls.append((n, "backward", _tensors([gi, go]))))
    return calls


def test_backward_hooks_on_every_module_see_the_eager_gradients(nets: Nets) -> None:
    eager, fused = nets.copies()
    expected, got = _record_backward(eager), _record_backward(fused)
    _drive(eager, nets.x)
    _drive(fused, nets.x)
    assert expected
    assert [c[:2] for c in got] == [c[:2] for c in expected]
    assert_same([c[2] for c in got], [c[2] for c in expected])


def _with_global_hooks(model: nn.Module, x: torch.Tensor, backward: bool = False) -> list[Any]:
    calls: list[Any] = []
    names = {id(m): n for n, m in model.named_modules()}
    register = torch.nn.modules.module
    handles = [
        register.register_module_forward_pre_hook(lambda m, a: calls.append((names.get(id(m)), "pre", _tensors(a)))),
        register.register_module_forward_hook(lambda m, a, o: calls.append((names.get(id(m)), "forward", _tensors(o)))),
    ]
    if backward:
        handles.append(register.register_module_full_backward_hook(
            lambda m, gi, go: calls.append((names.get(id(m)), "bwd"))))
    try:
        _drive(model, x)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def test_global_module_hooks_see_the_eager_calls(nets: Nets) -> None:
    eager, fused = nets.copies()
    expected, got = _with_global_hooks(eager, nets.x), _with_global_hooks(fused, nets.x)
    assert [c[:2] for c in got] == [c[:2] for c in expected]
    assert_same([c[2] for c in got], [c[2] for c in expected])


def test_a_global_full_backward_hook_fails_as_it_does_on_the_eager_network(nets: Nets) -> None:
    """torchvision's ``out += identity`` on a hooked module's output is refused by autograd: the
    default network raises the same error, not another or none."""
    eager, fused = nets.copies()
    errors = []
    for model in (eager, fused):
        with pytest.raises(RuntimeError) as caught:
            _with_global_hooks(model, nets.x, backward=True)
        errors.append(str(caught.value).split(".")[0])
    assert errors[0] == errors[1]
    assert "inplace" in errors[0]


@pytest.mark.parametrize(("arch", "per_forward"), [("resnet50", 3), ("resnet18", 2)])
def test_the_first_blocks_relu_is_called_as_torchvision_calls_it(arch: str, per_forward: int) -> None:
    """torchvision's Bottleneck.forward calls ``self.relu`` three times, BasicBlock.forward twice."""
    torch.manual_seed(0)
    model = build(ModelSpec(arch, BlockSpec(kind="se"), num_classes=10), load_weights=False).model
    assert model.layer1[0].bn2[1].residual_folded if arch == "resnet18" else model.layer1[0].bn3[1].residual_folded
    calls = []
    model.layer1[0].relu.register_forward_hook(lambda m, i, o: calls.append(o.shape))
    _drive(model, torch.randn(2, 3, 32, 32))
    assert len(calls) == 2 * per_forward


# ------------------------------------------------------------------------- hook-based counters
def _module_counts(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """A hand-written counter: output elements per module type, from forward hooks on leaves."""
    counts: dict[str, int] = {}

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        key = type(module).__name__
        counts[key] = counts.get(key, 0) + sum(t.numel() for t in _tensors(out))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        model.eval()(x)
    for handle in handles:
        handle.remove()
    return counts


def _ptflops(model: nn.Module, size: int) -> int:
    ptflops = pytest.importorskip("ptflops")
    with contextlib.redirect_stdout(io.StringIO()):
        macs, _ = ptflops.get_model_complexity_info(model.eval(), (3, size, size), as_strings=False,
                                                    print_per_layer_stat=False, backend="pytorch")
    return int(macs)


def _thop(model: nn.Module, x: torch.Tensor) -> int:
    thop = pytest.importorskip("thop")
    with contextlib.redirect_stdout(io.StringIO()):
        macs, _ = thop.profile(model.eval(), inputs=(x,), verbose=False)
    return int(macs)


COUNTERS: dict[str, Callable[[nn.Module, torch.Tensor], Any]] = {
    "hooks": _module_counts,
    "ptflops": lambda model, x: _ptflops(model, x.shape[-1]),
    "thop": _thop,
}


def _built(arch: str, block: BlockSpec) -> nn.Module:
    torch.manual_seed(0)
    return build(ModelSpec(arch, block), load_weights=False).model


@pytest.mark.parametrize("counter", list(COUNTERS))
@pytest.mark.parametrize(("arch", "kind"), [("resnet50", "se"), ("resnet18", "se"), ("resnet18", "sk")])
def test_hook_based_counters_count_the_eager_network(counter: str, arch: str, kind: str) -> None:
    x = torch.randn(1, 3, 64, 64)
    eager = COUNTERS[counter](_built(arch, BlockSpec(kind=kind, impl="eager")), x)
    fused = COUNTERS[counter](_built(arch, BlockSpec(kind=kind)), x)
    assert fused == eager
    if kind != "se":
        return
    se_net = _built(arch, BlockSpec(kind=kind))
    base = COUNTERS[counter](_built(arch, BlockSpec(kind="none")), x)
    if counter == "hooks":  # every ReLU of the base network is seen, plus each SE block's hidden ReLU
        hidden = sum(m.hidden for m in se_net.modules() if type(m).__name__ == "SqueezeExcitation")
        assert fused["ReLU"] == base["ReLU"] + hidden
    elif counter == "ptflops":  # the blocks add cost (the fold made ptflops see SE-ResNet-50 as cheaper)
        assert fused > base
