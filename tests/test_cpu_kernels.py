"""The compiled CPU kernels (secli.kernels.cpu_kernels) compute what the eager ops compute.

Expected values come from plain torch ops (``torch.relu(u * s + identity)``,
``threshold_backward``, ``(g * x).sum``), never from the kernels. The forward kernels are compiled
without fused multiply-add, so they must agree bit for bit; the reductions agree to rounding.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from secli.blocks.se import SqueezeExcitation
from secli.blocks.sk import SelectiveKernel
from secli.kernels import cpu_build, cpu_kernels
from secli.kernels.dispatch import eager_composition, kernels_if_wanted

ROOT = Path(__file__).resolve().parents[1]
HAVE_COMPILER = shutil.which(os.environ.get("CXX", "c++")) is not None or shutil.which("g++") is not None
needs_kernels = pytest.mark.skipif(not HAVE_COMPILER, reason="no C++ compiler on this machine")

SHAPES = [(1, 3, 5, 7), (2, 8, 9, 7), (3, 16, 1, 1), (2, 5, 4, 4), (1, 33, 2, 13)]
DTYPES = [torch.float32, torch.float64]


def _tensors(shape: tuple[int, ...], dtype: torch.dtype, channels_last: bool, count: int) -> list[torch.Tensor]:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return [torch.randn(shape, dtype=dtype).contiguous(memory_format=fmt) for _ in range(count)]


def _gate(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.randn(shape[0], shape[1], 1, 1, dtype=dtype)


@needs_kernels
def test_the_kernels_build_where_a_compiler_exists() -> None:
    """Otherwise every other test here would silently check ATen's fallback instead."""
    assert cpu_kernels.available(), cpu_kernels.status()
    assert cpu_kernels.status().startswith("CPU kernels compiled")


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_forward_kernels_equal_the_eager_ops_bit_for_bit(dtype: torch.dtype, shape: tuple[int, ...],
                                                         channels_last: bool) -> None:
    u, identity = _tensors(shape, dtype, channels_last, 2)
    s = _gate(shape, dtype)
    out = cpu_kernels.scale_add_relu(u, s, identity)
    assert torch.equal(out, torch.relu(u * s + identity))
    assert out.stride() == u.stride()  # the output keeps the input's layout


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_backward_kernels_equal_the_eager_ops(dtype: torch.dtype, shape: tuple[int, ...], channels_last: bool) -> None:
    grad, out, u = _tensors(shape, dtype, channels_last, 3)
    out[..., 0] = 0.0  # exactly zero: masked, as threshold_backward masks it
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-5}
    masked, ds = cpu_kernels.relu_mask_and_dot(grad, out, u)
    expected_mask = torch.ops.aten.threshold_backward(grad, out, 0)
    assert torch.equal(masked, expected_mask)
    assert masked.stride() == u.stride()
    torch.testing.assert_close(ds, (expected_mask * u).sum(dim=(2, 3), keepdim=True), **tol)
    torch.testing.assert_close(cpu_kernels.channel_dot(grad, u), (grad * u).sum(dim=(2, 3), keepdim=True), **tol)
    s, dz = _gate(shape, dtype), _gate(shape, dtype)
    h, w = shape[2], shape[3]
    assert torch.equal(cpu_kernels.scale_add_mean_grad(grad, s, dz), grad * s + dz / (h * w))


@needs_kernels
def test_nan_and_zero_follow_torch() -> None:
    """relu lets NaN through (as torch.relu does); the mask passes the gradient where out is NaN
    and blocks it where out is 0 (as threshold_backward does)."""
    u = torch.tensor([[[[float("nan"), -1.0, 0.0, 2.0]]]]).reshape(1, 1, 2, 2)
    s = torch.ones(1, 1, 1, 1)
    zero = torch.zeros_like(u)
    assert torch.equal(cpu_kernels.scale_add_relu(u, s, zero).isnan(), torch.relu(u).isnan())
    grad = torch.full_like(u, 3.0)
    masked, _ = cpu_kernels.relu_mask_and_dot(grad, u, torch.ones_like(u))
    assert torch.equal(masked, torch.ops.aten.threshold_backward(grad, u, 0))


@needs_kernels
def test_two_threads_compute_what_one_does() -> None:
    before = torch.get_num_threads()
    grad, out, u = _tensors((3, 40, 11, 9), torch.float64, True, 3)
    try:
        torch.set_num_threads(1)
        one = cpu_kernels.relu_mask_and_dot(grad, out, u)
        torch.set_num_threads(2)
        two = cpu_kernels.relu_mask_and_dot(grad, out, u)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one[0], two[0])
    torch.testing.assert_close(one[1], two[1], rtol=1e-12, atol=1e-12)


def test_layouts_and_dtypes_the_kernels_do_not_take() -> None:
    x = torch.randn(2, 4, 3, 3)
    assert cpu_kernels.layout(x, x) == "nchw"
    assert cpu_kernels.layout(x.contiguous(memory_format=torch.channels_last)) == "nhwc"
    assert cpu_kernels.layout(x, x.contiguous(memory_format=torch.channels_last)) is None  # mixed
    assert cpu_kernels.layout(x.half()) is None
    assert cpu_kernels.layout(x.bfloat16()) is None
    assert cpu_kernels.layout(x, x.double()) is None
    assert cpu_kernels.layout(x[:, :, :, :2]) is None  # strided view
    assert cpu_kernels.layout(x, torch.randn(2, 4, 3, 2)) is None
    assert cpu_kernels.layout(x.to("meta")) is None
    assert cpu_kernels.layout(torch.randn(2, 4, 9)) is None
    # called directly on what they do not take: refused, not misread
    with pytest.raises(ValueError, match="mixed or unsupported layout/dtype"):
        cpu_kernels.scale_add_relu(x.half(), torch.ones(2, 4, 1, 1), x.half())


@needs_kernels
def test_no_kernels_inside_counting_tracing_or_when_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(1, 4, 3, 3)
    assert kernels_if_wanted(x) is cpu_kernels
    with eager_composition():
        assert kernels_if_wanted(x) is None
    monkeypatch.setenv("SECLI_CPU_KERNELS", "0")
    assert kernels_if_wanted(x) is None
    assert "off" in cpu_kernels.status()


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls: dict[str, int] = {}
    for name in ("scale_add_relu", "relu_mask_and_dot", "scale_add_mean_grad", "channel_dot", "scale"):
        original = getattr(cpu_kernels, name)

        def counted(*args: torch.Tensor, _original=original, _name=name):  # type: ignore[no-untyped-def]
            calls[_name] = calls.get(_name, 0) + 1
            return _original(*args)

        monkeypatch.setattr(cpu_kernels, name, counted)
    return calls


def _step(module: torch.nn.Module, x: torch.Tensor, *extra: torch.Tensor) -> list[torch.Tensor]:
    module.zero_grad()
    inputs = [t.clone().requires_grad_(True) for t in (x, *extra)]
    out = module(*inputs)
    # the gradient in the output's layout, as a network's next layer would hand it back
    out.backward(torch.empty_like(out).copy_(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)))
    return [out.detach(), *(t.grad for t in inputs), *(p.grad for p in module.parameters())]


@needs_kernels
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("block", ["se", "se-folded", "sk"])
def test_fused_blocks_with_and_without_kernels_agree_in_float64(monkeypatch: pytest.MonkeyPatch, block: str,
                                                                channels_last: bool) -> None:
    """The kernels run by default (counted), and switching them off changes nothing but speed."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 8, 7, 5, dtype=torch.float64).contiguous(memory_format=fmt)
    extra: tuple[torch.Tensor, ...] = ()
    if block == "sk":
        module: torch.nn.Module = SelectiveKernel(8, 8, groups=2, ratio=2, min_hidden=4, impl="fused").double()
    else:
        module = SqueezeExcitation(8, ratio=2, impl="fused").double()
        if block == "se-folded":
            extra = (torch.randn_like(x),)
    module = module.to(memory_format=fmt)
    calls = _count_calls(monkeypatch)
    with_kernels = _step(module, x, *extra)
    assert calls, "the fused block did not use the CPU kernels"
    monkeypatch.setenv("SECLI_CPU_KERNELS", "0")
    calls.clear()
    without = _step(copy.deepcopy(module), x, *extra)
    assert not calls
    for a, b in zip(with_kernels, without, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, check=False)


_REPORT = "from secli.kernels import cpu_kernels as k; print(k.available()); print(k.status())"


@needs_kernels
def test_a_fresh_cache_compiles_once_and_later_processes_reuse_it(tmp_path: Path) -> None:
    env = {"SECLI_CACHE_DIR": str(tmp_path)}
    first = _python(_REPORT, env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == "True", first.stderr
    built = list(tmp_path.glob("kernels/*/libsecli_cpu.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    second = _python(_REPORT, env)
    assert second.stdout.splitlines()[0] == "True"
    assert built[0].stat().st_mtime_ns == stamp  # loaded, not rebuilt
    assert not list(tmp_path.glob("kernels/*/.build-*"))  # no temporary files left


def test_without_a_compiler_the_blocks_fall_back_and_say_why(tmp_path: Path) -> None:
    code = _REPORT + (
        "\nimport torch\nfrom secli.blocks.se import SqueezeExcitation as SE\n"
        "se = SE(8, ratio=2).double(); x = torch.randn(2, 8, 5, 5, dtype=torch.float64, requires_grad=True)\n"
        "se(x, torch.zeros_like(x)).sum().backward(); print('ran')"
    )
    done = _python(code, {"SECLI_CACHE_DIR": str(tmp_path), "CXX": str(tmp_path / "no-such-compiler")})
    assert done.returncode == 0, done.stderr
    available, status, ran = done.stdout.splitlines()
    assert available == "False"
    assert ran == "ran"
    assert "unavailable" in status
    assert "ATen" in status


def test_the_temporary_cache_must_be_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A folder others can write could hold a planted library; it is refused, not loaded from."""
    monkeypatch.setattr(cpu_build.tempfile, "gettempdir", lambda: str(tmp_path))
    shared = tmp_path / f"secli-{os.getuid()}"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(OSError, match="not a private folder"):
        cpu_build._private_temp_root()
    shared.chmod(0o700)
    assert cpu_build._private_temp_root() == shared


def test_a_dispatch_mode_sees_the_eager_ops() -> None:
    """FlopCounterMode (any TorchDispatchMode) cannot look inside a compiled kernel, so under one
    the fused block runs ordinary ops and counts the same as the eager block."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    fused = SqueezeExcitation(16, ratio=4, impl="fused")
    eager = copy.deepcopy(fused)
    eager.impl = "eager"
    x, identity = torch.randn(2, 16, 5, 5), torch.randn(2, 16, 5, 5)
    counts = []
    for module in (fused, eager):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = module(x, identity)
        counts.append((counter.get_total_flops(), out))
    assert counts[0][0] == counts[1][0] > 0
    torch.testing.assert_close(counts[0][1], counts[1][1])


def _eager_twin(block: SqueezeExcitation) -> SqueezeExcitation:
    twin = copy.deepcopy(block)
    twin.impl = "eager"
    return twin


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("gate", ["sigmoid", "tanh", "relu", "hardsigmoid"])
@pytest.mark.parametrize("bias", [True, False])
def test_the_whole_block_kernel_equals_the_eager_block(dtype: torch.dtype, channels_last: bool, gate: str,
                                                       bias: bool) -> None:
    torch.manual_seed(1)
    block = SqueezeExcitation(24, ratio=4, gate=gate, bias=bias).to(dtype)
    eager = _eager_twin(block)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    u = torch.randn(3, 24, 5, 7, dtype=dtype).contiguous(memory_format=fmt)
    identity = torch.randn_like(u)
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    fc1, fc2 = (block.fc1.weight, block.fc1.bias), (block.fc2.weight, block.fc2.bias)
    with torch.no_grad():
        gates_expected = eager.excitation(u)
        done = cpu_kernels.squeeze_excite(u, identity, fc1, fc2, gate)
        assert done is not None
        torch.testing.assert_close(done[0], torch.relu(u * gates_expected + identity), **tol)
        torch.testing.assert_close(done[1], gates_expected, **tol)
        assert done[0].stride() == u.stride()
        plain = cpu_kernels.squeeze_excite(u, None, fc1, fc2, gate)
        assert plain is not None
        torch.testing.assert_close(plain[0], u * gates_expected, **tol)
        expected = torch.relu(u * gates_expected + identity)
        in_place = u.clone()
        out = cpu_kernels.squeeze_excite(in_place, identity, fc1, fc2, gate, out=in_place)
        assert out is not None
        assert out[0] is in_place
        torch.testing.assert_close(in_place, expected, **tol)


def test_the_whole_block_kernel_declines_what_it_does_not_take() -> None:
    block = SqueezeExcitation(8, ratio=2)
    fc1, fc2 = (block.fc1.weight, block.fc1.bias), (block.fc2.weight, block.fc2.bias)
    u = torch.randn(2, 8, 4, 4)
    assert cpu_kernels.squeeze_excite(u.half(), None, fc1, fc2, "sigmoid") is None
    assert cpu_kernels.squeeze_excite(u[:, :, :, :3], None, fc1, fc2, "sigmoid") is None
    assert cpu_kernels.squeeze_excite(u, u.contiguous(memory_format=torch.channels_last).transpose(2, 3), fc1, fc2,
                                      "sigmoid") is None
    assert cpu_kernels.squeeze_excite(u.double(), None, fc1, fc2, "sigmoid") is None  # weights of another dtype


@needs_kernels
@pytest.mark.parametrize("channels_last", [False, True])
def test_folded_networks_without_gradients_run_one_call_per_site_and_equal_eager(
        monkeypatch: pytest.MonkeyPatch, channels_last: bool) -> None:
    """A folded SE network under inference_mode: one whole-block call per site, the block's own
    BN output overwritten in place (as torchvision's ``out += identity`` does), same outputs."""
    from secli.blocks.spec import BlockSpec, ModelSpec
    from secli.networks.models import build

    torch.manual_seed(0)
    fused = build(ModelSpec("resnet18", BlockSpec(kind="se", ratio=4), num_classes=5)).model.double().eval()
    eager = copy.deepcopy(fused)
    for module in eager.modules():
        if isinstance(module, SqueezeExcitation):
            module.impl = "eager"
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    fused, eager = fused.to(memory_format=fmt), eager.to(memory_format=fmt)
    x = torch.randn(2, 3, 40, 40, dtype=torch.float64).contiguous(memory_format=fmt)
    calls = []
    original = cpu_kernels.squeeze_excite

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        done = original(*args, **kwargs)
        calls.append(done is not None and kwargs.get("out", args[5] if len(args) > 5 else None) is args[0])
        return done

    monkeypatch.setattr(cpu_kernels, "squeeze_excite", counted)
    with torch.inference_mode():
        out = fused(x)
        expected = eager(x)
    assert calls == [True] * 8  # resnet18: 8 sites, each one call, each in place
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)


@needs_kernels
def test_a_direct_call_does_not_overwrite_the_callers_tensor_and_a_gate_hook_still_sees_the_gates() -> None:
    torch.manual_seed(0)
    block = SqueezeExcitation(8, ratio=2)
    u, identity = torch.randn(2, 8, 5, 5), torch.randn(2, 8, 5, 5)
    kept = u.clone()
    with torch.no_grad():
        out = block(u, identity)
    assert torch.equal(u, kept)  # only a folded block's forward hands over its own tensor
    seen: list[torch.Tensor] = []
    handle = block.gate_act.register_forward_hook(lambda _m, _i, output: seen.append(output.clone()))
    with torch.no_grad():
        hooked = block(u, identity)
    handle.remove()
    assert len(seen) == 1  # the hook turned the one-call kernel off: the modules ran
    torch.testing.assert_close(hooked, out)
    torch.testing.assert_close(seen[0], _eager_twin(block).excitation(u))


@needs_kernels
def test_hooks_on_the_bn_or_the_se_block_keep_their_tensors_unchanged() -> None:
    """The in-place write is skipped where a hook may hold the BN output (the SE's input)."""
    from secli.blocks.spec import BlockSpec, ModelSpec
    from secli.networks.models import build

    torch.manual_seed(0)
    model = build(ModelSpec("resnet18", BlockSpec(kind="se", ratio=4), num_classes=5)).model.eval()
    wrapped = model.layer1[0].bn2  # Sequential(BN, SE) of the first basic block
    held: dict[str, torch.Tensor] = {}
    copies: dict[str, torch.Tensor] = {}

    def keep(name: str):  # type: ignore[no-untyped-def]
        def hook(_module, inputs, output=None):  # type: ignore[no-untyped-def]
            tensor = output if name == "bn" else inputs[0]
            held[name], copies[name] = tensor, tensor.clone()  # the copy as the tensor is handed over
        return hook

    x = torch.randn(1, 3, 32, 32)
    # the BN's output as a forward hook gets it; the SE's input as a pre-hook gets it (a forward
    # hook on the SE would run after the block, too late to copy what it was handed)
    for name, register in (("bn", wrapped[0].register_forward_hook), ("se", wrapped[1].register_forward_pre_hook)):
        handle = register(keep(name))
        with torch.no_grad():
            model(x)
        handle.remove()
        assert torch.equal(held[name], copies[name]), name


def test_profile_warns_when_fused_blocks_run_without_their_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    from secli.profiling.environment import cpu_kernel_warning

    fused, eager = SqueezeExcitation(8, ratio=2), _eager_twin(SqueezeExcitation(8, ratio=2))
    cpu = torch.device("cpu")
    monkeypatch.setenv("SECLI_CPU_KERNELS", "0")
    warning = cpu_kernel_warning(cpu, [torch.nn.Sequential(fused)])
    assert warning is not None
    assert "SECLI_CPU_KERNELS=0" in warning
    assert "ATen" in warning
    assert cpu_kernel_warning(cpu, [torch.nn.Sequential(eager)]) is None  # nothing fused: nothing to say
    assert cpu_kernel_warning(torch.device("cuda"), [torch.nn.Sequential(fused)]) is None


@needs_kernels
def test_a_hook_on_the_se_block_keeps_its_input_when_the_gate_is_hooked_too() -> None:
    """With a ``gate_act`` hook the block runs its modules, not the one-call kernel; the folded
    scale must then still leave the SE block's input (a hooked tensor) as it was."""
    from secli.blocks.spec import BlockSpec, ModelSpec
    from secli.networks.models import build

    torch.manual_seed(0)
    model = build(ModelSpec("resnet18", BlockSpec(kind="se", ratio=4), num_classes=5)).model.eval()
    se = model.layer1[0].bn2[1]
    before: list[torch.Tensor] = []  # the input as it arrives (a copy)
    held: list[torch.Tensor] = []  # the input tensor itself, as a hook would keep it
    handles = [
        se.register_forward_pre_hook(lambda _m, inputs: before.append(inputs[0].clone())),
        se.register_forward_hook(lambda _m, inputs, _o: held.append(inputs[0])),
        se.gate_act.register_forward_hook(lambda *_: None),
    ]
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    for handle in handles:
        handle.remove()
    assert len(held) == len(before) == 1
    assert torch.equal(held[0], before[0])


@needs_kernels
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("channels", "hidden", "size"),
                         [(16, 16, (7, 7)), (40, 5, (1, 1)), (72, 24, (9, 7)), (8, 1, (13, 5))])
def test_the_whole_block_kernel_pools_and_excites_rows_of_every_length(dtype: torch.dtype, channels: int, hidden: int,
                                                                       size: tuple[int, int]) -> None:
    """Pool rows of 49 or 63 values and FC rows of 1 to 72 values: the four-vector loop, the
    one-vector loop and the scalar tail of ``row_sum``/``row_dot`` each run, against torch."""
    torch.manual_seed(2)
    u = torch.randn(2, channels, *size, dtype=dtype)
    w1, b1 = torch.randn(hidden, channels, 1, 1, dtype=dtype) / channels**0.5, torch.randn(hidden, dtype=dtype)
    w2, b2 = torch.randn(channels, hidden, 1, 1, dtype=dtype) / hidden**0.5, torch.randn(channels, dtype=dtype)
    z = u.double().mean(dim=(2, 3))
    pre = torch.relu(z @ w1.double().flatten(1).T + b1.double()) @ w2.double().flatten(1).T + b2.double()
    expected = torch.sigmoid(pre)
    done = cpu_kernels.squeeze_excite(u, None, (w1, b1), (w2, b2), "sigmoid")
    assert done is not None
    assert done[1] is not None
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 2e-6, "atol": 2e-7}
    torch.testing.assert_close(done[1].flatten(1).double(), expected, **tol)
    torch.testing.assert_close(done[0].double(), u.double() * expected.view(2, channels, 1, 1), **tol)


@needs_kernels
def test_the_float_sigmoid_gate_matches_torch_over_its_whole_range() -> None:
    """The float kernel's sigmoid uses its own vectorised exp: within torch's own float error of
    the float64 sigmoid from -120 to 120 (saturated ends included), and NaN stays NaN."""
    pre = torch.cat([torch.linspace(-120, 120, 4001), torch.tensor([0.0, -87.5, 88.9, -1e30, 1e30])])
    c = pre.numel()
    u = torch.zeros(1, c, 1, 1)
    w1, w2 = torch.zeros(1, c), torch.zeros(c, 1)  # the gates are sigmoid(b2): the FCs contribute 0
    done = cpu_kernels.squeeze_excite(u, None, (w1, None), (w2, pre), "sigmoid")
    assert done is not None
    assert done[1] is not None
    gates = done[1].flatten().double()
    exact = torch.sigmoid(pre.double())
    torch_float_error = (torch.sigmoid(pre).double() - exact).abs().max().item()
    assert (gates - exact).abs().max().item() <= max(torch_float_error, 1.2e-7)
    assert ((gates - exact).abs() / exact.clamp_min(1e-30)).max().item() < 2.5e-7
    nan = cpu_kernels.squeeze_excite(torch.zeros(1, 2, 1, 1), None, (torch.zeros(1, 2), None),
                                     (torch.zeros(2, 1), torch.tensor([float("nan"), 1.0])), "sigmoid")
    assert nan is not None
    assert nan[1] is not None
    assert torch.isnan(nan[1].flatten()[0])
    assert nan[1].flatten()[1].item() == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item())


@needs_kernels
def test_the_whole_block_kernel_without_gates_returns_only_the_output() -> None:
    torch.manual_seed(3)
    u, identity = torch.randn(2, 16, 5, 5), torch.randn(2, 16, 5, 5)
    fc1, fc2 = (torch.randn(4, 16), torch.randn(4)), (torch.randn(16, 4), torch.randn(16))
    with_gates = cpu_kernels.squeeze_excite(u, identity, fc1, fc2, "sigmoid")
    without = cpu_kernels.squeeze_excite(u, identity, fc1, fc2, "sigmoid", gates=False)
    assert with_gates is not None
    assert without is not None
    assert without[1] is None
    assert torch.equal(with_gates[0], without[0])


@needs_kernels
def test_a_folded_block_goes_through_its_se_modules_call_where_that_does_more_than_forward() -> None:
    """The folded forward skips ``Module.__call__`` only where it would just call ``forward``:
    a block compiled with ``module.compile()`` or with a hook on it is called as a module."""
    from secli.blocks.spec import BlockSpec, ModelSpec
    from secli.networks.models import build

    torch.manual_seed(0)
    model = build(ModelSpec("resnet18", BlockSpec(kind="se", ratio=4), num_classes=5)).model.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        expected = model(x)
    blocks = [m for m in model.modules() if isinstance(m, SqueezeExcitation)]
    compiled_calls: list[int] = []

    def compiled_call(*args, **kwargs):  # type: ignore[no-untyped-def]
        compiled_calls.append(1)
        return blocks[0].forward(*args, **kwargs)

    blocks[0]._compiled_call_impl = compiled_call  # what module.compile() sets
    hooked: list[int] = []
    blocks[1].register_forward_pre_hook(lambda module, args: hooked.append(1))
    with torch.inference_mode():
        out = model(x)
    assert compiled_calls == [1]
    assert hooked == [1]
    torch.testing.assert_close(out, expected)


def _folded_resnet18() -> torch.nn.Module:
    from secli.blocks.spec import BlockSpec, ModelSpec
    from secli.networks.models import build

    torch.manual_seed(0)
    return build(ModelSpec("resnet18", BlockSpec(kind="se", ratio=4), num_classes=5)).model.eval()


def test_a_wrapped_or_overridden_se_forward_still_runs_without_gradients() -> None:
    """The no-grad shortcut skips ``forward``, so it must step aside where ``forward`` is not the
    class's own: wrapped on the instance (instrumentation) or overridden in a subclass."""
    import types

    model = _folded_resnet18()
    blocks = [m for m in model.modules() if isinstance(m, SqueezeExcitation)]
    calls: list[str] = []

    def wrapped(self: SqueezeExcitation, *args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append("instance")
        return SqueezeExcitation.forward(self, *args, **kwargs)

    blocks[0].forward = types.MethodType(wrapped, blocks[0])  # type: ignore[method-assign]

    class Counted(SqueezeExcitation):
        def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
            calls.append("subclass")
            return super().forward(*args, **kwargs)

    blocks[1].__class__ = Counted
    x = torch.randn(1, 3, 32, 32)
    for context in (torch.no_grad, torch.inference_mode):
        calls.clear()
        with context():
            model(x)
        assert sorted(calls) == ["instance", "subclass"]


def test_an_se_block_switched_to_eager_after_the_fold_runs_eager_without_gradients() -> None:
    model = _folded_resnet18()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        fused = model(x)
    for module in model.modules():
        if isinstance(module, SqueezeExcitation):
            module.impl = "eager"
            assert module.residual_no_grad(torch.randn(1, module.channels, 2, 2),
                                           torch.randn(1, module.channels, 2, 2)) is None
    with torch.no_grad():
        torch.testing.assert_close(model(x), fused, rtol=1e-5, atol=1e-6)


def test_torch_export_records_the_se_blocks_as_modules() -> None:
    """The folded forward calls ``forward`` directly only outside compile/export: an exported
    graph credits SE's ops to the SE module (``nn_module_stack``, read by
    ``torch.export.unflatten`` and quantisation by module)."""
    model = _folded_resnet18()
    with torch.no_grad():
        exported = torch.export.export(model, (torch.randn(1, 3, 32, 32),), strict=False)
    paths = {list(node.meta["nn_module_stack"].values())[-1][0] for node in exported.graph.nodes
             if node.op == "call_function" and node.meta.get("nn_module_stack")}
    se_paths = {name for name, module in model.named_modules() if isinstance(module, SqueezeExcitation)}
    assert se_paths
    assert se_paths <= paths  # the pool, scale, sum and ReLU of each site, not its block's
