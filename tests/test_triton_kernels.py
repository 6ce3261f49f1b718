"""The Triton kernels (secli.kernels.triton_kernels) compute what PyTorch computes.

Without a GPU they run under Triton's interpreter on small CPU tensors. Triton reads
TRITON_INTERPRET when it is imported, and other tests (torch.compile) import it first, so the
interpreted tests run in a child pytest started with TRITON_INTERPRET=1
(``test_the_interpreted_tests_pass_in_a_child_process``); run with TRITON_INTERPRET=1 set, this
file runs them directly. The ``cuda`` group runs the same checks compiled, on CUDA.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

from secli.blocks.se import SqueezeExcitation
from secli.kernels import triton_kernels as K

DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
TOL = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 2e-3}


INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


@pytest.fixture
def interpreter() -> str:
    """CPU tensors through Triton's interpreter: only in a process started with TRITON_INTERPRET=1."""
    if not INTERPRETED:
        pytest.skip("runs in the child process that test_the_interpreted_tests_pass_in_a_child_process starts")
    return "cpu"


def test_the_interpreted_tests_pass_in_a_child_process() -> None:
    if INTERPRETED:
        pytest.skip("TRITON_INTERPRET=1 here: the interpreted tests run in this process")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TRITON_INTERPRET": "1",
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    env.pop("SECLI_TRITON", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__))],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed, done.stdout[-2000:]
    assert int(passed.group(1)) >= 11, done.stdout[-2000:]  # every interpreted test ran


def _close(got: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    tol = TOL[dtype]
    torch.testing.assert_close(got.double(), expected.double(), rtol=tol, atol=tol)


def _check_kernels(device: str, dtype: torch.dtype, channels_last: bool,
                   shape: tuple[int, ...] = (2, 20, 7, 9)) -> None:
    gen = torch.Generator().manual_seed(0)
    x, g, identity = (torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(3))
    s = torch.rand(shape[0], shape[1], 1, 1, generator=gen, dtype=torch.float64)
    dz = torch.randn(shape[0], shape[1], 1, 1, generator=gen, dtype=torch.float64)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x, g, identity, s = (t.to(device=device, dtype=dtype).contiguous(memory_format=fmt) for t in (x, g, identity, s))
    dz = dz.to(device)
    ref = [t.double() for t in (x, g, identity, s)]
    xr, gr, ir, sr = ref
    hw = shape[2] * shape[3]

    _close(K.channel_mean(x), xr.mean(dim=(2, 3), keepdim=True), dtype)
    out = K.scale_add_relu(x, s, identity)
    assert out.dtype == dtype
    assert out.is_contiguous(memory_format=fmt)
    _close(out, torch.relu(xr * sr + ir), dtype)
    _close(K.scale(x, s), xr * sr, dtype)
    _close(K.channel_dot(g, x), (gr * xr).sum(dim=(2, 3), keepdim=True),
           torch.float32 if dtype != torch.float64 else dtype)
    gt, ds = K.relu_mask_and_dot(g, out, x)
    masked = torch.where(out.double() > 0, gr, 0.0)
    torch.testing.assert_close(gt.double(), masked, rtol=0, atol=0)
    _close(ds, (masked * xr).sum(dim=(2, 3), keepdim=True), torch.float32 if dtype != torch.float64 else dtype)
    _close(K.scale_add_mean_grad(g, s, dz), gr * sr + dz.double() / hw, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_kernels_match_pytorch_under_the_interpreter(interpreter: str, dtype: torch.dtype, channels_last: bool) -> None:
    _check_kernels(interpreter, dtype, channels_last)


def test_kernels_on_a_one_by_one_map_and_a_single_image(interpreter: str) -> None:
    _check_kernels(interpreter, torch.float32, False, (1, 33, 1, 1))
    _check_kernels(interpreter, torch.float64, True, (1, 5, 3, 70))


def _block_grads(block: SqueezeExcitation, x: torch.Tensor, identity: torch.Tensor | None,
                 g: torch.Tensor) -> list[torch.Tensor]:
    xx = x.clone().requires_grad_(True)
    ii = identity.clone().requires_grad_(True) if identity is not None else None
    out = block(xx) if ii is None else block(xx, ii)
    out.backward(g)
    grads = [out, xx.grad] + ([ii.grad] if ii is not None else [])
    return grads + [p.grad for p in block.parameters()]


def _check_blocks_through_triton(monkeypatch: pytest.MonkeyPatch, device: str, dtype: torch.dtype, flag: str) -> None:
    eager = SqueezeExcitation(24, ratio=4, impl="eager").to(device=device, dtype=dtype)
    fused = copy.deepcopy(eager)
    fused.impl = "fused"
    for channels_last in (False, True):
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        x, identity, g = (torch.randn(2, 24, 5, 7, device=device, dtype=dtype).contiguous(memory_format=fmt)
                          for _ in range(3))
        for ident in (None, identity):
            eager.zero_grad(), fused.zero_grad()
            expected = _block_grads(eager, x, ident, g)
            monkeypatch.setenv("SECLI_TRITON", flag)
            got = _block_grads(fused, x, ident, g)
            monkeypatch.delenv("SECLI_TRITON")
            tol = 1e-10 if dtype == torch.float64 else 1e-4
            for a, b in zip(got, expected, strict=True):
                torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_fused_se_and_the_residual_fold_through_the_kernels_equal_eager(interpreter: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """SECLI_TRITON=force sends CPU tensors through the kernels (interpreted) inside the blocks."""
    calls: list[str] = []
    for name in ("channel_mean", "scale", "channel_dot", "relu_mask_and_dot", "scale_add_mean_grad"):
        original = getattr(K, name)
        monkeypatch.setattr(K, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
    _check_blocks_through_triton(monkeypatch, interpreter, torch.float64, "force")
    assert {"channel_mean", "scale", "channel_dot", "relu_mask_and_dot", "scale_add_mean_grad"} <= set(calls)


def test_the_kernels_stay_off_without_the_switch_or_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from secli.kernels.dispatch import triton_wanted

    x = torch.randn(1, 2, 3, 3)
    monkeypatch.delenv("SECLI_TRITON", raising=False)
    assert not triton_wanted(x)
    monkeypatch.setenv("SECLI_TRITON", "1")
    assert not triton_wanted(x)  # CPU tensors keep the PyTorch composition
    monkeypatch.setenv("SECLI_TRITON", "force")
    assert triton_wanted(x)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_kernels_match_pytorch_on_cuda(dtype: torch.dtype, channels_last: bool) -> None:
    _check_kernels("cuda", dtype, channels_last)
    _check_kernels("cuda", dtype, channels_last, (3, 130, 28, 28))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_blocks_through_the_kernels_on_cuda_equal_eager(monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype) -> None:
    _check_blocks_through_triton(monkeypatch, "cuda", dtype, "1")
