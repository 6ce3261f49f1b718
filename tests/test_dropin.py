"""The default fused blocks are a drop-in (issue 19; docs/guarantees.md, "Drop-in contract").

Every way of driving a network below runs on the default-impl network and on the eager one
(``impl="eager"``, the same weights, float64) and must give the same numbers: outputs,
gradients (input, parameters, higher order), BatchNorm statistics. Networks: ResNet-18 (basic
blocks) and ResNet-50 (bottlenecks, the residual fold), each with SE, SK and ECA; on CUDA too
(``pytest -m cuda``, with the Triton kernels on). Hooks, counters, compile, export and DDP have
their own files (tests/test_dropin_hooks.py, tests/test_dropin_tools.py, tests/test_dropin_ddp.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from dropin_nets import GATE_MODULE, Nets, assert_same, build_pair, net_params, state
from torch import nn
from torch.utils.checkpoint import checkpoint


@pytest.fixture(scope="module")
def nets(request: pytest.FixtureRequest) -> Nets:
    """Built once per (device, arch, kind); each test runs on deep copies."""
    return build_pair(*request.param)


@pytest.fixture(autouse=True)
def _triton_on_cuda(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "cuda" in request.node.name:
        monkeypatch.setenv("SECLI_TRITON", "1")


def _loss(out: torch.Tensor) -> torch.Tensor:
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype, device=out.device).view_as(out)
    return (out * weights).sum() + out.square().sum()


# ----------------------------------------------------------------------------------------- modes
def train_step(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    x = x.clone().requires_grad_(True)
    out = model.train()(x)
    _loss(out).backward()
    return {"out": out, "dx": x.grad, **state(model)}


def saliency(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Eval mode, the gradient of one class score to the image (no parameter update wanted)."""
    x = x.clone().requires_grad_(True)
    out = model.eval()(x)
    (dx,) = torch.autograd.grad(out[:, 3].sum(), x)
    return {"out": out, "dx": dx, **state(model)}


def double_backward(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Input-gradient penalty (WGAN-GP, double backprop): a gradient of a gradient."""
    x = x.clone().requires_grad_(True)
    out = model.train()(x)
    loss = _loss(out)
    (dx,) = torch.autograd.grad(loss, x, create_graph=True)
    (loss + dx.square().sum()).backward()
    return {"out": out, "dx": dx, "ddx": x.grad, **state(model)}


def _checkpointed(reentrant: bool) -> Callable[[nn.Module, torch.Tensor], dict[str, Any]]:
    def run(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
        stage = model.layer3

        class Checkpointed(nn.Module):
            def forward(self, h: torch.Tensor) -> torch.Tensor:
                return checkpoint(stage, h, use_reentrant=reentrant)

        model.layer3 = Checkpointed()
        try:
            result = train_step(model, x)
        finally:
            model.layer3 = stage
        # independent of either implementation: the stage ran twice (forward and recompute), the others once
        for name, buffer in model.named_buffers():
            if name.endswith("num_batches_tracked"):
                assert int(buffer) == (2 if name.startswith("layer3.") else 1), name
        return result

    return run


def save_on_cpu(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    x = x.clone().requires_grad_(True)
    with torch.autograd.graph.save_on_cpu():
        out = model.train()(x)
    _loss(out).backward()
    return {"out": out, "dx": x.grad, **state(model)}


def functional_call(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Parameters swapped in by ``torch.func.functional_call`` (other values than the module's own)."""
    params = {name: (p.detach() * 1.01).requires_grad_(True) for name, p in model.named_parameters()}
    out = torch.func.functional_call(model.train(), params, (x,))
    grads = torch.autograd.grad(_loss(out), list(params.values()))
    return {"out": out, "grads": dict(zip(params, grads, strict=True)), "buffers": dict(model.named_buffers())}


def vmap_inputs(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    model.eval()
    out = torch.func.vmap(lambda image: model(image.unsqueeze(0)).squeeze(0))(x)
    return {"out": out}


def func_grad(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    model.eval()
    params = {name: p.detach() for name, p in model.named_parameters()}

    def loss(p: dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        return _loss(torch.func.functional_call(model, p, (image,)))

    grads, dx = torch.func.grad(loss, argnums=(0, 1))(params, x)
    return {"grads": grads, "dx": dx}


def inference_mode(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    with torch.inference_mode():
        out = model.eval()(x)
    assert out.is_inference()
    return {"out": out.clone(), **state(model)}


def no_grad_train(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Training-mode forward without gradients (BN statistics update: e.g. a BN recalibration pass)."""
    with torch.no_grad():
        out = model.train()(x)
        again = model.eval()(x)
    return {"out": out, "eval": again, **state(model)}


def channels_last(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    model.to(memory_format=torch.channels_last)
    return train_step(model, x.contiguous(memory_format=torch.channels_last))


def anomaly_detection(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    with torch.autograd.detect_anomaly(check_nan=True):
        return train_step(model, x)


def frozen_backbone(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Fine-tuning the classifier only: nothing before ``fc`` needs a gradient."""
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("fc."))
    return train_step(model, x)


def frozen_blocks(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """The attention blocks' own parameters frozen, everything else trained."""
    for module in model.modules():
        if (hasattr(module, GATE_MODULE["se"]) or hasattr(module, "attn_softmax")
                or type(module).__name__ == "EfficientChannelAttention"):
            module.requires_grad_(False)
    return train_step(model, x)


def retain_graph(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    x = x.clone().requires_grad_(True)
    out = model.train()(x)
    loss = _loss(out)
    loss.backward(retain_graph=True)
    first = {name: p.grad.clone() for name, p in model.named_parameters()}
    (2 * loss).backward()
    return {"out": out, "first": first, "dx": x.grad, **state(model)}


def accumulation(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Gradient accumulation over two micro-batches, then an SGD step (momentum) and another forward."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    model.train()
    for micro in (x, x.flip(-1) * 0.5):
        _loss(model(micro)).backward()
    optimizer.step()
    return {"after": model.eval()(x), **state(model), "params": dict(model.named_parameters())}


def partial_grads(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Gradients to a few tensors only (``inputs=``), then to everything from the same graph."""
    x = x.clone().requires_grad_(True)
    out = model.train()(x)
    loss = _loss(out)
    block_params = [p for n, p in model.named_parameters() if n.startswith("layer2.1.")]
    some = torch.autograd.grad(loss, block_params, retain_graph=True)
    only_x = torch.autograd.grad(loss, x, retain_graph=True)
    loss.backward(inputs=[x], retain_graph=True)
    loss.backward()
    return {"out": out, "some": some, "only_x": only_x, "dx": x.grad, **state(model)}


def grad_cam(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Grad-CAM: activations captured by forward hooks on whole residual blocks, gradients to them."""
    model.eval()
    kept: list[torch.Tensor] = []
    handles = [model.layer3[0].register_forward_hook(lambda m, i, o: kept.append(o)),
               model.layer4[-1].register_forward_hook(lambda m, i, o: kept.append(o))]
    out = model(x.clone().requires_grad_(True))
    for handle in handles:
        handle.remove()
    grads = torch.autograd.grad(out[:, 1].sum(), kept)
    return {"out": out, "acts": kept, "grads": grads}


def gate_hooks_replace_gates(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Forward hooks on the gate modules change what they return (an ablation): half of every
    gate in one stage, a constant (no gradient) in another."""
    for name, module in model.named_modules():
        if name.endswith("." + GATE_MODULE[_kind(model)]):
            if name.startswith("layer2"):
                module.register_forward_hook(lambda m, i, o: o * 0.5)
            elif name.startswith("layer3"):
                module.register_forward_hook(lambda m, i, o: torch.full_like(o, 0.25).detach())
    return train_step(model, x)


def _kind(model: nn.Module) -> str:
    names = {type(m).__name__ for m in model.modules()}
    return "sk" if "SelectiveKernel" in names else "eca" if "EfficientChannelAttention" in names else "se"


def weight_norm(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """``nn.utils.parametrizations.weight_norm`` on the classifier and on the first conv inside
    every attention block (a parametrized module is no longer the type the fast path computes)."""
    parametrize = torch.nn.utils.parametrizations.weight_norm
    parametrize(model.fc)
    for module in list(model.modules()):
        for child in ("fc1", "conv"):
            if (type(module).__name__ in ("SqueezeExcitation", "EfficientChannelAttention")
                    and isinstance(getattr(module, child, None), nn.Module)):
                parametrize(getattr(module, child))
        if type(module).__name__ == "SelectiveKernel":
            parametrize(module.select)
    return train_step(model, x)


def jit_trace(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    model.eval()
    traced = torch.jit.trace(model, (x,), check_trace=False)
    other = x.flip(-1) * 0.7
    return {"out": traced(x), "other": traced(other)}


def deepcopy_and_state_dict(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """A deep copy trains like the original, and a state dict loads back into a fresh copy."""
    import copy

    twin = copy.deepcopy(model)
    twin.load_state_dict(model.state_dict())
    return train_step(twin, x)


MODES: dict[str, Callable[[nn.Module, torch.Tensor], dict[str, Any]]] = {
    "train_step": train_step,
    "saliency": saliency,
    "double_backward": double_backward,
    "checkpoint_nonreentrant": _checkpointed(False),
    "checkpoint_reentrant": _checkpointed(True),
    "save_on_cpu": save_on_cpu,
    "functional_call": functional_call,
    "vmap_inputs": vmap_inputs,
    "func_grad": func_grad,
    "inference_mode": inference_mode,
    "no_grad_train": no_grad_train,
    "channels_last": channels_last,
    "anomaly_detection": anomaly_detection,
    "frozen_backbone": frozen_backbone,
    "frozen_blocks": frozen_blocks,
    "retain_graph": retain_graph,
    "accumulation": accumulation,
    "partial_grads": partial_grads,
    "grad_cam": grad_cam,
    "gate_hooks_replace_gates": gate_hooks_replace_gates,
    "weight_norm": weight_norm,
    "jit_trace": jit_trace,
    "deepcopy_and_state_dict": deepcopy_and_state_dict,
}


#: Every mode runs on ResNet-18 with each kind and on SE-ResNet-50 (the bottleneck fold). SK- and
#: ECA-ResNet-50 run the modes where a bottleneck network could behave otherwise; the others
#: exercise nothing ResNet-18 does not (SK's fast path is the same function in both networks,
#: ECA has one implementation), and float64 ResNet-50s are most of the matrix's cost.
BOTTLENECK_MODES = {
    "sk": ("train_step", "saliency", "double_backward", "checkpoint_nonreentrant", "checkpoint_reentrant",
           "save_on_cpu", "inference_mode", "channels_last", "gate_hooks_replace_gates"),
    "eca": ("train_step", "double_backward", "checkpoint_nonreentrant"),
}


def _cases() -> list[Any]:
    cases = []
    for net in net_params():
        _, arch, kind = net.values[0]
        modes = MODES if arch == "resnet18" or kind == "se" else BOTTLENECK_MODES[kind]
        cases += [pytest.param(net.values[0], mode, marks=net.marks, id=f"{net.id}-{mode}") for mode in modes]
    return cases


@pytest.mark.parametrize(("nets", "mode"), _cases(), indirect=["nets"])
def test_default_network_equals_eager_network(nets: Nets, mode: str) -> None:
    eager, fused = nets.copies()
    expected = MODES[mode](eager, nets.x)
    got = MODES[mode](fused, nets.x)
    assert_same(got, expected)


@pytest.mark.parametrize("nets",
                         [p for p in net_params() if p.values[0][1:] in (("resnet18", "se"), ("resnet50", "sk"))],
                         indirect=True)
def test_the_tolerance_would_see_a_missing_term(nets: Nets, monkeypatch: pytest.MonkeyPatch) -> None:
    """The matrix's tolerance is far below what a wrong gradient changes: dropping the gated sum's
    term ``g * a`` from every block's input gradient (what a lost hand-over would do) fails it."""
    from secli.kernels import squeeze

    eager, fused = nets.copies()
    expected = train_step(eager, nets.x)
    monkeypatch.setattr(squeeze.Link, "take", lambda self: None)
    got = train_step(fused, nets.x)
    with pytest.raises(AssertionError, match="not close"):
        assert_same(got, expected)
