"""What SE and SK cost with secli's fused blocks, against torchvision and timm, in one run.

Groups (each timed paired and interleaved: every round runs every model of the group once, in
a rotating order, and a ratio is the median over rounds of (model time / baseline time) within
the round, so load from other processes hits both sides alike):

  train  (training step: zero_grad, forward, cross-entropy, backward, SGD step; batch 8)
         torchvision resnet50 | secli SE eager | secli SE fused | timm resnet50 | timm seresnet50
  infer  (forward under inference_mode, batch 1): the same five models
  sk     (training step, batch 8) in NCHW and in channels_last:
         torchvision resnext50_32x4d | secli SK fused into it | secli SK eager | timm skresnext50_32x4d
  blocks (one block alone, forward + backward, batch 8, 56x56, NCHW and channels_last):
         SE (C = 256) eager | fused; SK (128 -> 128) eager | fused  (not in the default groups)

ResNet-50 at 224 px, 1 torch thread by default. A script, not a timed test:

    PYTHONPATH=$PWD python benchmarks/bench_blocks.py [--rounds 6] [--train-batch 8] [--size 224]
        [--groups train,infer,sk,blocks] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _secli(arch: str, **block: object) -> nn.Module:
    from secli.build.models import build
    from secli.build.spec import BlockSpec, ModelSpec

    return build(ModelSpec(arch, BlockSpec(**block))).model  # type: ignore[arg-type]


def _torchvision(arch: str) -> nn.Module:
    import torchvision

    return getattr(torchvision.models, arch)()


def _timm(name: str) -> nn.Module:
    import timm

    return timm.create_model(name, pretrained=False)


def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step


def _infer_step(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    model.eval()

    def step() -> None:
        with torch.inference_mode():
            model(x)

    return step


def run_group(name: str, steps: dict[str, Callable[[], None]], rounds: int, warmup: int = 1) -> dict[str, object]:
    labels = list(steps)
    for _ in range(warmup):
        for label in labels:
            steps[label]()
    times: dict[str, list[float]] = {label: [] for label in labels}
    for r in range(rounds):
        order = labels[r % len(labels):] + labels[: r % len(labels)]
        for label in order:
            start = time.perf_counter()
            steps[label]()
            times[label].append(time.perf_counter() - start)
        print(f"  {name} round {r + 1}/{rounds}", file=sys.stderr, flush=True)
    base = labels[0]
    result = {}
    for label in labels:
        ratios = [t / b for t, b in zip(times[label], times[base], strict=True)]
        result[label] = {"median_ms": 1e3 * statistics.median(times[label]), "ratio_to_first": statistics.median(ratios)}
    return result


def _block_step(block: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    grad = torch.randn_like(block(x))

    def step() -> None:
        block(x.detach().requires_grad_(True)).backward(grad)

    return step


def run_blocks(rounds: int, batch: int) -> dict[str, object]:
    import copy

    from secli.build.blocks.se import SqueezeExcitation
    from secli.build.blocks.sk import SelectiveKernel

    report: dict[str, object] = {}
    for name, make, channels in (("SE", lambda: SqueezeExcitation(256, 16), 256), ("SK", lambda: SelectiveKernel(128, 128), 128)):
        for fmt in ("nchw", "channels_last"):
            eager = make()
            eager.impl = "eager"
            fused = copy.deepcopy(eager)
            fused.impl = "fused"
            x = torch.randn(batch, channels, 56, 56)
            if fmt == "channels_last":
                x = x.to(memory_format=torch.channels_last)
                eager, fused = eager.to(memory_format=torch.channels_last), fused.to(memory_format=torch.channels_last)
            result = run_group(f"{name} block {fmt}", {"eager": _block_step(eager, x), "fused": _block_step(fused, x)}, rounds)
            report[f"{name}_block_{fmt}"] = result
            print(f"{name} block alone, {fmt}: fused / eager = {result['fused']['ratio_to_first']:.3f}"  # type: ignore[index]
                  f" ({result['eager']['median_ms']:.1f} -> {result['fused']['median_ms']:.1f} ms)")  # type: ignore[index]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--groups", default="train,infer,sk")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    groups = args.groups.split(",")
    report: dict[str, object] = {"torch": torch.__version__, "threads": args.threads, "size": args.size,
                                 "train_batch": args.train_batch, "rounds": args.rounds}
    xt = torch.randn(args.train_batch, 3, args.size, args.size)
    yt = torch.randint(0, 1000, (args.train_batch,))
    x1 = torch.randn(1, 3, args.size, args.size)

    def se_models() -> dict[str, nn.Module]:
        return {
            "torchvision resnet50": _torchvision("resnet50"),
            "secli SE eager": _secli("resnet50", kind="se", impl="eager"),
            "secli SE fused": _secli("resnet50", kind="se", impl="fused"),
            "timm resnet50": _timm("resnet50"),
            "timm seresnet50": _timm("seresnet50"),
        }

    if "train" in groups or "infer" in groups:
        models = se_models()
        for mode in ("train", "infer"):
            if mode not in groups:
                continue
            if mode == "train":
                steps = {k: _train_step(m, xt, yt) for k, m in models.items()}
            else:
                steps = {k: _infer_step(m, x1) for k, m in models.items()}
            rounds = args.rounds if mode == "train" else args.rounds * 5
            result = run_group(mode, steps, rounds)
            report[mode] = result
            _print_se(mode, result)
    if "sk" in groups:
        for fmt in ("nchw", "channels_last"):
            models = {
                "torchvision resnext50_32x4d": _torchvision("resnext50_32x4d"),
                "secli SK fused": _secli("resnext50_32x4d", kind="sk", impl="fused"),
                "secli SK eager": _secli("resnext50_32x4d", kind="sk", impl="eager"),
                "timm skresnext50_32x4d": _timm("skresnext50_32x4d"),
            }
            x = xt
            if fmt == "channels_last":
                models = {k: m.to(memory_format=torch.channels_last) for k, m in models.items()}
                x = xt.to(memory_format=torch.channels_last)
            steps = {k: _train_step(m, x, yt) for k, m in models.items()}
            result = run_group(f"sk {fmt}", steps, max(2, args.rounds // 2))
            report[f"sk_{fmt}"] = result
            print(f"\nSK training step, batch {args.train_batch}, {fmt} (time / resnext50_32x4d's, paired median)")
            for label, row in result.items():
                print(f"  {label:28s} {row['median_ms']:9.1f} ms  x{row['ratio_to_first']:.3f}")  # type: ignore[index]
            timm_sk = result["timm skresnext50_32x4d"]["median_ms"]  # type: ignore[index]
            ours = result["secli SK fused"]["median_ms"]  # type: ignore[index]
            print(f"  secli SK fused / timm skresnext50_32x4d: {ours / timm_sk:.3f}")
    if "blocks" in groups:
        report.update(run_blocks(args.rounds * 2, args.train_batch))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def _print_se(mode: str, result: dict[str, object]) -> None:
    r = {k: v["ratio_to_first"] for k, v in result.items()}  # type: ignore[index]
    ms = {k: v["median_ms"] for k, v in result.items()}  # type: ignore[index]
    what = "training step" if mode == "train" else "inference, batch 1"
    print(f"\n{what} (time / torchvision resnet50's, paired median over rounds)")
    for label in result:
        print(f"  {label:24s} {ms[label]:9.1f} ms  x{r[label]:.3f}")
    timm_over = r["timm seresnet50"] / r["timm resnet50"] - 1
    for impl in ("eager", "fused"):
        over = r[f"secli SE {impl}"] - 1
        print(f"  SE {impl} overhead over resnet50: {100 * over:+.1f}%  "
              f"(timm seresnet50 over timm resnet50: {100 * timm_over:+.1f}%; secli SE {impl} / timm seresnet50: "
              f"{r[f'secli SE {impl}'] / r['timm seresnet50']:.3f})")


if __name__ == "__main__":
    main()
