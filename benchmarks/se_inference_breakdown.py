"""Where SE-ResNet-50's inference time goes inside its 16 SE modules (batch 1, 1 thread, CPU).

Swaps ``SqueezeExcitation.residual_no_grad`` (what a folded block's forward calls without
gradients) for variants and times the time spent inside it during whole forwards (median over
rounds, the first 5 dropped), and each variant's whole forward:

  baseline   ``u.add_(identity).relu_()``: what resnet50 itself does at those places
  kernel     the one-call CPU kernel alone (ctypes, no checks): pool, FCs, gate, sum, ReLU
  wrapper    ``cpu_kernels.squeeze_excite`` (its checks and the call)
  module     the real method (every check the library makes there)

    PYTHONPATH=$PWD python benchmarks/se_inference_breakdown.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from secli.blocks.se import SqueezeExcitation  # noqa: E402 - after sys.path names this checkout
from secli.blocks.spec import BlockSpec, ModelSpec  # noqa: E402 - after sys.path names this checkout
from secli.kernels import cpu_kernels  # noqa: E402 - after sys.path names this checkout
from secli.networks.models import build  # noqa: E402 - after sys.path names this checkout

Forward = Callable[..., torch.Tensor]


def _variants() -> dict[str, Forward]:
    entry = cpu_kernels._FUNCTIONS[("se", "nchw", torch.float32)]

    def baseline(self: SqueezeExcitation, u: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        return u.add_(identity).relu_()

    def kernel(self: SqueezeExcitation, u: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        c = u.shape[1]
        fc1, fc2 = self.fc1._parameters, self.fc2._parameters
        entry(u.data_ptr(), None, u.data_ptr(), identity.data_ptr(), fc1["weight"].data_ptr(), fc1["bias"].data_ptr(),
              fc2["weight"].data_ptr(), fc2["bias"].data_ptr(), 0, 1, c, self.hidden, u.shape[2] * u.shape[3], 1)
        return u

    def wrapper(self: SqueezeExcitation, u: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        fc1, fc2 = self.fc1._parameters, self.fc2._parameters
        done = cpu_kernels.squeeze_excite(u, identity, (fc1["weight"], fc1["bias"]), (fc2["weight"], fc2["bias"]),
                                          "sigmoid", u, gates=False)
        assert done is not None
        return done[0]

    return {"baseline": baseline, "kernel": kernel, "wrapper": wrapper, "module": SqueezeExcitation.residual_no_grad}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not cpu_kernels.available():
        sys.exit(cpu_kernels.status())
    model = build(ModelSpec("resnet50", BlockSpec(kind="se"))).model.eval()
    x = torch.randn(1, 3, 224, 224)
    spent = [0.0]
    inside: dict[str, list[float]] = {}
    total: dict[str, list[float]] = {}
    original = SqueezeExcitation.residual_no_grad
    variants = _variants()
    try:
        for _ in range(args.rounds):
            for name, forward in variants.items():
                def timed(self: SqueezeExcitation, *a: torch.Tensor, _f: Forward = forward) -> torch.Tensor:
                    start = time.perf_counter()
                    result = _f(self, *a)
                    spent[0] += time.perf_counter() - start
                    return result

                SqueezeExcitation.residual_no_grad = timed  # type: ignore[method-assign]
                spent[0] = 0.0
                start = time.perf_counter()
                with torch.inference_mode():
                    model(x)
                total.setdefault(name, []).append(time.perf_counter() - start)
                inside.setdefault(name, []).append(spent[0])
    finally:
        SqueezeExcitation.residual_no_grad = original  # type: ignore[method-assign]
    forward_ms = 1e3 * statistics.median(total["baseline"][5:])
    print(f"SE-ResNet-50, batch 1, 1 thread; whole forward with the baseline: {forward_ms:.1f} ms")
    for name in variants:
        ms = 1e3 * statistics.median(inside[name][5:])
        whole = 1e3 * statistics.median(total[name][5:])
        print(f"  {name:9s} {ms:6.2f} ms inside the 16 SE sites ({100 * ms / forward_ms:.1f}% of the forward);"
              f" whole forward {whole:6.1f} ms")


if __name__ == "__main__":
    main()
