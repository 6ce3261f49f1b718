"""impl="fused" (secli.kernels) computes what impl="eager" computes, with the same parameters."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from timm_keys import timm_to_secli_key

from secli.blocks.se import IDENTITY_GATE_VALUE, SqueezeExcitation
from secli.blocks.sk import SelectiveKernel
from secli.blocks.spec import BlockSpec, ModelSpec
from secli.kernels.aten_ops import channel_dot
from secli.kernels.gates import GATE_MODULES
from secli.networks.checkpoint import read_checkpoint, save_checkpoint
from secli.networks.models import build, load_model
from secli.util.errors import SecliUsageError

GATES = tuple(GATE_MODULES)


def _pair(module: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    eager = module.double()
    fused = copy.deepcopy(eager)
    eager.impl, fused.impl = "eager", "fused"
    return eager, fused


def _run(module: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor | None = None):
    x = x.clone().requires_grad_(True)
    out = module(x)
    g = torch.randn_like(out) if grad is None else grad
    out.backward(g)
    return out, x.grad, [p.grad.clone() for p in module.parameters()], g


def _assert_same(eager: torch.nn.Module, fused: torch.nn.Module, x: torch.Tensor) -> None:
    out_e, dx_e, dp_e, g = _run(eager, x)
    out_f, dx_f, dp_f, _ = _run(fused, x, g)
    torch.testing.assert_close(out_f, out_e, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dx_f, dx_e, rtol=1e-10, atol=1e-12)
    assert len(dp_e) == len(dp_f) > 0
    for a, b in zip(dp_f, dp_e, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(fused.buffers(), eager.buffers(), strict=True):  # BN running statistics
        torch.testing.assert_close(a, b)


SHAPES = [(1, 16, 7, 5), (3, 32, 9, 9), (2, 8, 1, 1), (4, 24, 13, 6), (1, 64, 3, 17)]


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_se_equals_eager_in_float64(gate: str, shape: tuple[int, ...], channels_last: bool) -> None:
    n, c, h, w = shape
    eager, fused = _pair(SqueezeExcitation(c, ratio=4, gate=gate))
    x = torch.randn(n, c, h, w, dtype=torch.float64)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    _assert_same(eager, fused, x)
    if channels_last and h * w > 1:
        assert fused(x).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("bias", [True, False])
def test_fused_se_without_biases(bias: bool) -> None:
    eager, fused = _pair(SqueezeExcitation(16, ratio=4, bias=bias))
    _assert_same(eager, fused, torch.randn(2, 16, 5, 3, dtype=torch.float64))


@pytest.mark.parametrize("squeeze", ["max", "none"])
def test_squeezes_that_are_not_fused_fall_back_to_eager(squeeze: str) -> None:
    eager, fused = _pair(SqueezeExcitation(16, ratio=4, squeeze=squeeze))
    assert fused.impl_used == "eager"
    _assert_same(eager, fused, torch.randn(2, 16, 5, 3, dtype=torch.float64))
    built = build(ModelSpec("resnet18", BlockSpec(kind="se", squeeze=squeeze, impl="fused")))
    assert {s.impl for s in built.sites} == {"eager"}


@pytest.mark.parametrize(("shape", "paths", "stride"),
                         [((2, 16, 9, 7), 2, 1), ((1, 16, 8, 8), 3, 2), ((3, 16, 5, 5), 1, 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_sk_equals_eager_in_float64(shape: tuple[int, ...], paths: int, stride: int, channels_last: bool) -> None:
    n, c, h, w = shape
    eager, fused = _pair(SelectiveKernel(c, 32, stride=stride, paths=paths, groups=4, ratio=4, min_hidden=4))
    x = torch.randn(n, c, h, w, dtype=torch.float64)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
        eager, fused = eager.to(memory_format=torch.channels_last), fused.to(memory_format=torch.channels_last)
    if n == 1:  # BN over a (1, d, 1, 1) attention input needs eval mode, in both implementations
        eager.eval(), fused.eval()
    _assert_same(eager, fused, x)


def test_fused_blocks_agree_in_eval_and_without_gradients() -> None:
    for module in (SqueezeExcitation(16, ratio=4), SelectiveKernel(16, 16, groups=4, ratio=4, min_hidden=4)):
        eager, fused = _pair(module)
        eager.eval(), fused.eval()
        x = torch.randn(2, 16, 6, 5, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(fused(x), eager(x))


def test_gradcheck_on_tiny_shapes() -> None:
    for gate in GATES:
        block = SqueezeExcitation(4, ratio=2, gate=gate).double()
        block.impl = "fused"
        if gate in ("relu", "hardsigmoid"):  # keep away from the kinks, where finite differences lie
            with torch.no_grad():
                block.fc2.bias.fill_(0.3 if gate == "relu" else 0.1)
                block.fc2.weight.mul_(0.1)
        x = torch.randn(2, 4, 3, 2, dtype=torch.float64, requires_grad=True)
        params = list(block.parameters())

        def fn(inp: torch.Tensor, *ps: torch.Tensor, block: torch.nn.Module = block) -> torch.Tensor:
            return torch.func.functional_call(block,
                                              dict(zip([n for n, _ in block.named_parameters()], ps, strict=True)),
                                              (inp,))

        assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-5)
    sk = SelectiveKernel(4, 4, paths=2, groups=2, ratio=2, min_hidden=2).double().eval()
    sk.impl = "fused"
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(sk, (x,), eps=1e-6, atol=1e-5)


def test_the_gate_hook_sees_the_gate_in_both_implementations() -> None:
    eager, fused = _pair(SqueezeExcitation(16, ratio=4))
    seen: dict[str, torch.Tensor] = {}
    eager.gate_act.register_forward_hook(lambda m, i, o: seen.__setitem__("eager", o.detach()))
    fused.gate_act.register_forward_hook(lambda m, i, o: seen.__setitem__("fused", o.detach()))
    x = torch.randn(2, 16, 5, 5, dtype=torch.float64, requires_grad=True)
    eager(x), fused(x)
    torch.testing.assert_close(seen["fused"], seen["eager"])
    assert seen["fused"].shape == (2, 16, 1, 1)


@pytest.mark.parametrize("gate", GATES)
def test_identity_init_is_still_the_identity(gate: str) -> None:
    block = SqueezeExcitation(32, ratio=4, gate=gate, init="identity", impl="fused").double()
    x = torch.randn(2, 32, 5, 5, dtype=torch.float64, requires_grad=True)
    out = block(x)
    torch.testing.assert_close(out, x * IDENTITY_GATE_VALUE)
    out.sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fused_se_in_half_precision_stays_close_to_float32(dtype: torch.dtype) -> None:
    block = SqueezeExcitation(32, ratio=4, impl="fused")
    x = torch.randn(2, 32, 14, 14)
    ref_out, ref_dx, _, g = _run(block, x)
    half = copy.deepcopy(block).to(dtype)
    out, dx, dps, _ = _run(half, x.to(dtype), g.to(dtype))
    assert out.dtype == dx.dtype == dtype
    torch.testing.assert_close(out.float(), ref_out, rtol=3e-2, atol=3e-2)
    torch.testing.assert_close(dx.float(), ref_dx, rtol=5e-2, atol=5e-2)
    assert all(torch.isfinite(p.float()).all() for p in dps)


def test_channel_dot_is_the_reduced_product() -> None:
    g, x = torch.randn(3, 5, 7, 4, dtype=torch.float64), torch.randn(3, 5, 7, 4, dtype=torch.float64)
    torch.testing.assert_close(channel_dot(g, x), (g * x).sum(dim=(2, 3), keepdim=True))
    gl, xl = g.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    torch.testing.assert_close(channel_dot(gl, xl), (g * x).sum(dim=(2, 3), keepdim=True))


def test_impl_is_a_block_option_of_se_and_sk_only() -> None:
    assert BlockSpec(kind="se", impl="eager").impl == "eager"
    assert BlockSpec(kind="sk", impl="fused").impl == "fused"
    with pytest.raises(SecliUsageError, match="unknown impl"):
        BlockSpec(kind="se", impl="triton")
    other = "eager" if BlockSpec().impl == "fused" else "fused"
    with pytest.raises(SecliUsageError, match="does not apply to ECA"):
        BlockSpec(kind="eca", impl=other)



def test_se_resnet50_with_timms_weights_equals_timms_seresnet50_forward_and_backward() -> None:
    timm = pytest.importorskip("timm")
    reference = timm.create_model("seresnet50").double().eval()
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    built = build(ModelSpec("resnet50", BlockSpec(kind="se")))  # the default impl
    assert {s.impl for s in built.sites} == {BlockSpec().impl}
    ours = built.model.double().eval()
    ours.load_state_dict({timm_to_secli_key(k): v for k, v in reference.state_dict().items()})
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_ours, out_ref = ours(xa), reference(xb)
    torch.testing.assert_close(out_ours, out_ref, rtol=1e-9, atol=1e-9)
    g = torch.randn_like(out_ref)
    out_ours.backward(g), out_ref.backward(g)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-8, atol=1e-10)
    ref_grads = {timm_to_secli_key(k): p.grad for k, p in reference.named_parameters()}
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[name], rtol=1e-7, atol=1e-9, msg=name)


@pytest.mark.parametrize(("kind", "arch"), [("se", "resnet18"), ("sk", "resnet18")])
def test_checkpoints_load_with_the_other_impl(tmp_path: Path, kind: str, arch: str) -> None:
    x = torch.randn(1, 3, 64, 64)
    for saved, loaded in (("eager", "fused"), ("fused", "eager")):
        built = build(ModelSpec(arch, BlockSpec(kind=kind, impl=saved, groups=1 if kind == "sk" else 32)))
        path = tmp_path / f"{kind}_{saved}.pt"
        save_checkpoint(path, built.spec.to_dict(), built.model.state_dict(), force=True)
        ckpt = read_checkpoint(path)
        assert ckpt["spec"]["block"]["impl"] == saved
        again = load_model(str(path))
        assert {s.impl for s in again.sites} == {saved}
        ckpt["spec"]["block"]["impl"] = loaded
        other = build(ModelSpec.from_dict(ckpt["spec"]), load_weights=False)
        assert {s.impl for s in other.sites} == {loaded}
        other.model.load_state_dict(ckpt["state_dict"])  # strict: the same layout
        with torch.no_grad():
            torch.testing.assert_close(other.model.eval()(x), built.model.eval()(x))


def test_a_spec_without_impl_takes_the_default() -> None:
    spec = ModelSpec.from_dict({"arch": "resnet18", "block": {"kind": "se"}})
    assert spec.block.impl == BlockSpec().impl


def test_profile_compares_implementations_in_one_run() -> None:
    from secli.api import profile
    from secli.networks.variants import block_variants
    from secli.profiling.entries import load_entries

    found = block_variants("resnet18", "se,sk", None, {"impl": "eager,fused"})
    assert found is not None
    entries, _ = load_entries(["resnet18"], found.blocks)
    assert [e.label for e in entries] == [
        "resnet18", "resnet18 + SE (eager)", "resnet18 + SE (fused)", "resnet18 + SK (eager)", "resnet18 + SK (fused)",
    ]
    report = profile("resnet18", block="se", impl=["eager", "fused"], mode="train", device="cpu", batch_size=2,
                     image_size=32, iters=1, warmup=0, threads=1)
    data = report.to_dict()["results"]
    models = data["models"]
    assert [m["label"] for m in models] == ["resnet18", "resnet18 + SE (eager)", "resnet18 + SE (fused)"]
    assert all("implied_passes" in m["vs_baseline"]["train"] for m in models[1:])
    with pytest.raises(SecliUsageError, match="--impl needs --block"):
        profile("resnet18", impl="fused")
    with pytest.raises(SecliUsageError, match="does not apply"):
        profile("resnet18", block="eca", impl="eager,fused")


def test_a_jit_trace_sees_ordinary_ops_not_the_python_function() -> None:
    block = SqueezeExcitation(16, ratio=4, impl="fused")
    traced = torch.jit.trace(block, torch.randn(1, 16, 4, 4))
    assert "PythonOp" not in str(traced.graph)


def test_fused_se_under_cpu_autocast_matches_eager() -> None:
    eager = SqueezeExcitation(32, ratio=4, impl="eager")
    fused = copy.deepcopy(eager)
    fused.impl = "fused"
    x = torch.randn(2, 32, 8, 8)
    outs = []
    for block in (eager, fused):
        xx = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = block(xx)
        out.float().square().sum().backward()
        outs.append((out, xx.grad))
    torch.testing.assert_close(outs[1][0], outs[0][0])
    torch.testing.assert_close(outs[1][1], outs[0][1], rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_blocks_on_cuda_match_eager(dtype: torch.dtype, channels_last: bool) -> None:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for module, cin in ((SqueezeExcitation(64, ratio=4), 64),
                        (SelectiveKernel(32, 32, groups=4, ratio=4, min_hidden=8), 32)):
        eager = module.cuda().to(memory_format=fmt)
        eager.impl = "eager"
        fused = copy.deepcopy(eager)
        fused.impl = "fused"
        x = torch.randn(4, cin, 15, 13, device="cuda").to(memory_format=fmt)
        results = []
        for block in (eager, fused):
            xx = x.clone().requires_grad_(True)
            with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
                out = block(xx)
            out.float().square().mean().backward()
            results.append((out.float(), xx.grad))
        tol = 1e-5 if dtype == torch.float32 else 3e-2
        torch.testing.assert_close(results[1][0], results[0][0], rtol=tol, atol=tol)
        torch.testing.assert_close(results[1][1], results[0][1], rtol=tol, atol=tol)


def test_eager_composition_switches_fused_blocks_off_inside_only() -> None:
    from secli.kernels.dispatch import eager_composition, fused_enabled

    x = torch.randn(1, 4, 3, 3, requires_grad=True)
    assert fused_enabled(x)
    with eager_composition():
        assert not fused_enabled(x)
        with eager_composition():
            assert not fused_enabled(x)
        assert not fused_enabled(x)
    assert fused_enabled(x)
