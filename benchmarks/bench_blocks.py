"""What SE and SK cost with secli's fused blocks, against torchvision and timm, in one run.

Groups (each timed paired and interleaved: every round runs every model of the group once, in
a rotating order, and a ratio is the median over rounds of (model time / baseline time) within
the round, so load from other processes hits both sides alike):

  train  (training step: zero_grad, forward, cross-entropy, backward, SGD step; batch 8)
         torchvision resnet50 | secli SE eager | secli SE fused | timm resnet50 | timm seresnet50
  infer  (forward under inference_mode, batch 1): the same five models
  sk     (training step, batch 8) in NCHW and in channels_last:
         torchvision resnext50_32x4d | secli SK fused into it | secli SK eager | timm skresnext50_32x4d
  (train and infer also time "secli SE fused (ATen ops)": the same fused model with its compiled
  CPU kernels switched off, SECLI_CPU_KERNELS=0, to show what the kernels add)
  kernels (each step of the folded SE alone, ATen's ops against the compiled CPU kernel, at the
         four ResNet-50 site shapes, batch 8, NCHW and channels_last; not in the default groups)
  blocks (one block alone, forward + backward, batch 8, 56x56, NCHW and channels_last):
         SE (C = 256) eager | fused; SE + residual sum + ReLU (C = 256) eager | fused (folded);
         SK (128 -> 128) eager | fused  (not in the default groups)

ResNet-50 at 224 px, 1 torch thread by default. Ends with one table: each issue-8 target, the
measured ratio and whether it is met. Implied passes = the time an SE model adds over its own
library's resnet50 (paired), times the copy bandwidth measured in the same run (1 thread),
divided by the bytes of one pass over the SE sites' tensors. A script, not a timed test:

    PYTHONPATH=$PWD python benchmarks/bench_blocks.py            # ~5-8 min on an idle 2-core CPU
    PYTHONPATH=$PWD python benchmarks/bench_blocks.py --quick    # 3 rounds (~3-4 min)
        [--rounds 6] [--train-batch 8] [--size 224] [--groups train,infer,sk,kernels,blocks]
        [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
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
    from secli.blocks.spec import BlockSpec, ModelSpec
    from secli.networks.models import build

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
        result[label] = {"median_ms": 1e3 * statistics.median(times[label]),
                         "ratio_to_first": statistics.median(ratios)}
    return result


def _block_step(block: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    grad = torch.randn_like(block(x))

    def step() -> None:
        block(x.detach().requires_grad_(True)).backward(grad)

    return step


def _fold_step(block: nn.Module, u: torch.Tensor, identity: torch.Tensor) -> Callable[[], None]:
    grad = torch.randn_like(u)

    def step() -> None:
        block(u.detach().requires_grad_(True), identity.detach().requires_grad_(True)).backward(grad)

    return step


def _se_bytes_per_image(model: nn.Module, size: int) -> int:
    """Bytes of one pass over every SE site's tensor, per image (hooks on the SE modules)."""
    found: list[int] = []

    def hook(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        found.append(output.numel() * output.element_size())

    names = ("SqueezeExcitation", "SEModule")  # secli's, timm's
    handles = [m.register_forward_hook(hook) for m in model.modules() if type(m).__name__ in names]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.randn(1, 3, size, size))
    model.train(was_training)
    for handle in handles:
        handle.remove()
    return sum(found)


def _copy_bandwidth() -> float:
    """Bytes per second of a 64 MiB copy (read + write), median of 7, this process's threads."""
    src = torch.ones(16 * 2**20)
    dst = torch.empty_like(src)
    times = []
    for _ in range(9):
        start = time.perf_counter()
        dst.copy_(src)
        times.append(time.perf_counter() - start)
    return 2 * src.numel() * 4 / statistics.median(times[2:])


def run_blocks(rounds: int, batch: int) -> dict[str, object]:
    import copy

    from secli.blocks.se import SqueezeExcitation
    from secli.blocks.sk import SelectiveKernel

    report: dict[str, object] = {}
    for fmt in ("nchw", "channels_last"):
        eager_se = SqueezeExcitation(256, 16, impl="eager")
        fused_se = copy.deepcopy(eager_se)
        fused_se.impl = "fused"
        u, identity = torch.randn(batch, 256, 56, 56), torch.randn(batch, 256, 56, 56)
        if fmt == "channels_last":
            u, identity = u.to(memory_format=torch.channels_last), identity.to(memory_format=torch.channels_last)
        result = run_group(f"SE+residual block {fmt}", {"eager": _fold_step(eager_se, u, identity),
                                                        "fused": _fold_step(fused_se, u, identity)}, rounds)
        report[f"SE_residual_block_{fmt}"] = result
        print(f"SE + residual sum + ReLU, {fmt}: fused / eager = {result['fused']['ratio_to_first']:.3f}"  # type: ignore[index]
              f" ({result['eager']['median_ms']:.1f} -> {result['fused']['median_ms']:.1f} ms)")  # type: ignore[index]
    for name, make, channels in (("SE", lambda: SqueezeExcitation(256, 16), 256),
                                 ("SK", lambda: SelectiveKernel(128, 128), 128)):
        for fmt in ("nchw", "channels_last"):
            eager = make()
            eager.impl = "eager"
            fused = copy.deepcopy(eager)
            fused.impl = "fused"
            x = torch.randn(batch, channels, 56, 56)
            if fmt == "channels_last":
                x = x.to(memory_format=torch.channels_last)
                eager, fused = eager.to(memory_format=torch.channels_last), fused.to(memory_format=torch.channels_last)
            result = run_group(f"{name} block {fmt}", {"eager": _block_step(eager, x), "fused": _block_step(fused, x)},
                               rounds)
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
    parser.add_argument("--quick", action="store_true", help="3 rounds (inference 15, SK 2): a few minutes")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 3
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
            "secli SE fused (ATen ops)": _secli("resnet50", kind="se", impl="fused"),
            "timm resnet50": _timm("resnet50"),
            "timm seresnet50": _timm("seresnet50"),
        }

    bandwidth = _copy_bandwidth()
    report["copy_bandwidth_gb_s"] = bandwidth / 1e9
    summary: list[tuple[str, str, str, bool | None]] = []
    if "train" in groups or "infer" in groups:
        models = se_models()
        per_pass = {k: _se_bytes_per_image(m, args.size) for k, m in models.items()}
        report["se_bytes_per_image"] = per_pass
        for mode in ("train", "infer"):
            if mode not in groups:
                continue
            if mode == "train":
                steps = {k: _train_step(m, xt, yt) for k, m in models.items()}
            else:
                steps = {k: _infer_step(m, x1) for k, m in models.items()}
            steps["secli SE fused (ATen ops)"] = _without_cpu_kernels(steps["secli SE fused (ATen ops)"])
            rounds = args.rounds if mode == "train" else args.rounds * 5
            result = run_group(mode, steps, rounds)
            report[mode] = result
            batch = args.train_batch if mode == "train" else 1
            passes = _implied_passes(result, per_pass, bandwidth, batch)
            report[f"{mode}_implied_passes"] = passes
            _print_se(mode, result, passes)
            summary += _se_targets(mode, result, passes)
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
            ratio = result["secli SK fused"]["ratio_to_first"] / result["timm skresnext50_32x4d"]["ratio_to_first"]  # type: ignore[index]
            print(f"  secli SK fused / timm skresnext50_32x4d (paired): {ratio:.3f}")
            summary.append((f"SK fused / timm skresnext50_32x4d, train, {fmt}", f"{ratio:.3f}", "< 1", ratio < 1))
    if "kernels" in groups:
        report.update(run_kernels(args.rounds * 2, args.train_batch))
    if "blocks" in groups:
        report.update(run_blocks(args.rounds * 2, args.train_batch))
    _print_summary(summary, args, bandwidth)
    report["summary"] = [{"measure": m, "value": v, "target": t, "met": ok} for m, v, t, ok in summary]
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


BASES = {"secli SE eager": "torchvision resnet50", "secli SE fused": "torchvision resnet50",
         "secli SE fused (ATen ops)": "torchvision resnet50", "timm seresnet50": "timm resnet50"}


def _without_cpu_kernels(step: Callable[[], None]) -> Callable[[], None]:
    """The step with secli's compiled CPU kernels switched off (fused blocks use ATen's ops)."""

    def run() -> None:
        before = os.environ.get("SECLI_CPU_KERNELS")
        os.environ["SECLI_CPU_KERNELS"] = "0"
        try:
            step()
        finally:
            if before is None:
                del os.environ["SECLI_CPU_KERNELS"]
            else:
                os.environ["SECLI_CPU_KERNELS"] = before

    return run


SITE_SHAPES = ((256, 56), (512, 28), (1024, 14), (2048, 7))  # ResNet-50's SE sites at 224 px


def _kernel_steps(u: torch.Tensor, identity: torch.Tensor, grad: torch.Tensor) -> dict[str, Callable[[], object]]:
    from secli.kernels import cpu_kernels
    from secli.kernels.aten_ops import channel_dot

    n, c, h, w = u.shape
    s, dz = torch.rand(n, c, 1, 1), torch.randn(n, c, 1, 1)
    out = torch.relu(u * s + identity)
    masked = torch.ops.aten.threshold_backward(grad, out, 0)
    return {
        "resnet50: add_ + relu_ (forward)": lambda: identity.clone().add_(u).relu_(),
        "resnet50: clone (subtracted above)": lambda: identity.clone(),
        "resnet50: relu backward": lambda: torch.ops.aten.threshold_backward(grad, out, 0),
        "forward, ATen: addcmul + relu_": lambda: torch.addcmul(identity, u, s).relu_(),
        "forward, kernel": lambda: cpu_kernels.scale_add_relu(u, s, identity),
        "mask + dot, ATen: threshold_backward + dot":
            lambda: channel_dot(torch.ops.aten.threshold_backward(grad, out, 0), u),
        "mask + dot, kernel": lambda: cpu_kernels.relu_mask_and_dot(grad, out, u),
        "input gradient, ATen: addcmul": lambda: torch.addcmul(dz / (h * w), masked, s),
        "input gradient, kernel": lambda: cpu_kernels.scale_add_mean_grad(masked, s, dz),
        "squeeze: mean (both)": lambda: u.mean(dim=(2, 3), keepdim=True),
    }


def run_kernels(rounds: int, batch: int) -> dict[str, object]:
    """Each step of the folded SE, ATen's ops against the compiled kernel, summed over the 16
    sites of ResNet-50 (3, 4, 6 and 3 of each shape). The baseline row is what ResNet-50 itself
    does there: ``out += identity`` and an in-place ReLU, forward and backward."""
    from secli.kernels import cpu_kernels

    if not cpu_kernels.available():
        print(f"kernels: {cpu_kernels.status()}")
        return {"kernels": cpu_kernels.status()}
    counts = (3, 4, 6, 3)
    report: dict[str, object] = {}
    for fmt in ("nchw", "channels_last"):
        totals: dict[str, float] = {}
        for (channels, size), count in zip(SITE_SHAPES, counts, strict=True):
            memory = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
            u, identity, grad = (torch.randn(batch, channels, size, size).contiguous(memory_format=memory)
                                 for _ in range(3))
            steps = _kernel_steps(u, identity, grad)
            result = run_group(f"kernels {fmt} {channels}x{size}", steps, rounds)  # type: ignore[arg-type]
            for label, row in result.items():
                totals[label] = totals.get(label, 0.0) + count * row["median_ms"]  # type: ignore[index]
        totals["resnet50: add_ + relu_ (forward)"] -= totals.pop("resnet50: clone (subtracted above)")
        report[f"kernels_{fmt}"] = totals
        print(f"\nfolded SE steps summed over ResNet-50's 16 sites, batch {batch}, {fmt} (ms, median of {rounds})")
        for label, ms in totals.items():
            print(f"  {label:45s} {ms:8.1f}")
    return report


def _implied_passes(result: dict[str, object], per_pass: dict[str, int], bandwidth: float,
                    batch: int) -> dict[str, float | None]:
    """Passes over the SE tensors the added time (paired ratio over its library's resnet50) pays for."""
    out: dict[str, float | None] = {}
    for label, base in BASES.items():
        row, ref = result[label], result[base]
        added_s = (row["ratio_to_first"] / ref["ratio_to_first"] - 1) * ref["median_ms"] / 1e3  # type: ignore[index]
        out[label] = added_s * bandwidth / (per_pass[label] * batch) if added_s > 0 and per_pass[label] else None
    return out


def _se_targets(mode: str, result: dict[str, object],
                passes: dict[str, float | None]) -> list[tuple[str, str, str, bool | None]]:
    r = {k: v["ratio_to_first"] for k, v in result.items()}  # type: ignore[index]
    over = r["secli SE fused"] - 1
    timm_over = r["timm seresnet50"] / r["timm resnet50"] - 1
    vs_timm = r["secli SE fused"] / r["timm seresnet50"]
    rows: list[tuple[str, str, str, bool | None]] = [
        (f"SE fused overhead over resnet50, {mode}", f"{100 * over:+.1f}%", "<= +2%", over <= 0.02),
        (f"secli SE fused / timm seresnet50, {mode}", f"{vs_timm:.3f}", "< 1", vs_timm < 1),
        (f"SE eager overhead over resnet50, {mode}", f"{100 * (r['secli SE eager'] - 1):+.1f}%", "(reference)", None),
        (f"SE fused without CPU kernels over resnet50, {mode}", f"{100 * (r['secli SE fused (ATen ops)'] - 1):+.1f}%",
         "(reference)", None),
        (f"timm seresnet50 over timm resnet50, {mode}", f"{100 * timm_over:+.1f}%", "(reference)", None),
    ]
    if mode == "train":
        share = over / timm_over if timm_over > 0 else float("nan")
        rows.insert(1, ("SE fused overhead / timm's SE overhead, train", f"{share:.2f}", "<= 0.33",
                        timm_over > 0 and share <= 1 / 3))
    # the floor: training, ~3 passes (the figure); inference with the residual fold, the
    # pool's one read (the scale rides on the residual sum's own pass) plus the FC weights at
    # batch 1 (10 MB against 22 MB for one pass over SE-ResNet-50's sites): ~1.5
    floor = "(floor ~3)" if mode == "train" else "(floor ~1.5)"
    for label, value in passes.items():
        rows.append((f"implied passes, {label}, {mode}", "-" if value is None else f"{value:.1f}",
                     floor if "fused" in label else "", None))
    return rows


def _print_summary(summary: list[tuple[str, str, str, bool | None]], args: argparse.Namespace,
                   bandwidth: float) -> None:
    print(f"\nIssue 8 targets ({args.threads} thread(s), {args.size} px, train batch {args.train_batch}, "
          f"{args.rounds} rounds, copy bandwidth {bandwidth / 1e9:.1f} GB/s)")
    print(f"| {'measure':55s} | {'value':>8s} | {'target':>11s} | met |")
    print(f"|{'-' * 57}|{'-' * 9}:|{'-' * 12}:|-----|")
    for measure, value, target, ok in summary:
        met = "" if ok is None else ("yes" if ok else "no")
        print(f"| {measure:55s} | {value:>8s} | {target:>11s} | {met:3s} |")


def _print_se(mode: str, result: dict[str, object], passes: dict[str, float | None]) -> None:
    r = {k: v["ratio_to_first"] for k, v in result.items()}  # type: ignore[index]
    ms = {k: v["median_ms"] for k, v in result.items()}  # type: ignore[index]
    what = "training step" if mode == "train" else "inference, batch 1"
    print(f"\n{what} (time / torchvision resnet50's, paired median over rounds)")
    for label in result:
        print(f"  {label:27s} {ms[label]:9.1f} ms  x{r[label]:.3f}")
    timm_over = r["timm seresnet50"] / r["timm resnet50"] - 1
    for impl in ("eager", "fused", "fused (ATen ops)"):
        over = r[f"secli SE {impl}"] - 1
        print(f"  SE {impl} overhead over resnet50: {100 * over:+.1f}%  "
              f"(timm seresnet50 over timm resnet50: {100 * timm_over:+.1f}%; secli SE {impl} / timm seresnet50: "
              f"{r[f'secli SE {impl}'] / r['timm seresnet50']:.3f})")
    print("  implied passes over the SE tensors: " + ", ".join(
        f"{label} {'-' if value is None else f'{value:.1f}'}" for label, value in passes.items()))


if __name__ == "__main__":
    main()
