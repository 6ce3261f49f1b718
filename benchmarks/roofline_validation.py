"""Does the roofline predict what blocks cost? One Markdown report (issue 22), in one run.

Part 1, this CPU: for each architecture, one ``secli profile`` run per mode (a training step at
``--train-batch`` images, and inference at batch 1) times the baseline and its SE (eager and
fused), ECA and SK (eager and fused; ResNets only) variants interleaved, and sets beside each the
roofline prediction on the ``cpu`` device measured in the same run (``secli.profiling.prediction``).
The table gives the measured and predicted overhead (% of the baseline's step), their ratio, and
per architecture and mode whether the prediction ranks the variants as the measurement does.

Part 2, GPUs (no measurement, pure arithmetic): predicted throughput ratios on the data-sheet
devices of ``secli.cost.devices`` beside published ones:
- timm ``seresnet50`` / ``resnet50``, inference, AMP (fp16), NCHW, batch 256: 0.87 (timm's
  benchmark on RTX 5090 and RTX Pro 6000, as quoted in issue 22);
- SE-ResNeXt-101-32x4d / ResNeXt-101-32x4d, training, AMP, batch 128, SGD momentum: 0.71 (NVIDIA
  DeepLearningExamples, 1x A100 80GB: 855 img/s against the ResNeXt's README figure);
with secli's own SE (eager and fused) on the same baselines.

    PYTHONPATH=$PWD python benchmarks/roofline_validation.py --out roofline_validation.md  # the full run
    PYTHONPATH=$PWD python benchmarks/roofline_validation.py --tiny  # proves it runs; numbers meaningless
        [--archs resnet50,resnet18,mobilenet_v2] [--image-size 224] [--train-batch 8] [--iters 20]
        [--warmup 3] [--threads 1] [--skip-cpu] [--skip-gpu]

Timings need quiet cores: run Part 1 with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SK_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d")
GPU_INFERENCE = ("rtx5090", "rtx4090", "h100", "a100")
GPU_TRAINING = ("a100", "h100", "v100")
PUBLISHED_SOURCES = {
    "inference": "timm benchmark (infer, AMP, NCHW, batch 256; RTX 5090 and RTX Pro 6000), quoted in issue 22",
    "training": "NVIDIA DeepLearningExamples PyTorch/Classification/ConvNets/se-resnext101-32x4d and resnext101-32x4d "
                "READMEs, 1x A100 80GB mixed precision (SE-ResNeXt: 855 img/s)",
}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def _ratio(predicted: float | None, measured: float | None) -> float | None:
    if predicted is None or measured is None or abs(measured) < 0.5:  # under half a percent: noise, no ratio
        return None
    return predicted / measured


def cpu_rows(arch: str, mode: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One profile run: baseline + variants interleaved, each with its predicted overhead."""
    from secli import api

    kinds = "se,eca,sk" if arch in SK_ARCHS else "se,eca"
    batch = args.train_batch if mode == "train" else 1
    report = api.profile(arch, block=kinds, impl="eager,fused", mode=mode, device="cpu", batch_size=batch,
                         image_size=args.image_size, iters=args.iters, warmup=args.warmup, threads=args.threads)
    document = report.to_dict()["results"]
    prediction = document.get("prediction") or {"models": [], "device": {}}
    rows = []
    for model in prediction["models"]:
        found = model["modes"].get(mode, {})
        rows.append({
            "arch": arch, "mode": mode, "batch": batch, "model": model["label"],
            "measured_pct": found.get("measured_overhead_pct"), "predicted_pct": found.get("predicted_overhead_pct"),
            "measured_ms": found.get("measured_step_ms"), "predicted_ms": found.get("predicted_step_ms"),
            "device": prediction["device"], "warnings": document.get("warnings") or [],
        })
    return rows


def _rank(values: list[float]) -> list[int]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0] * len(values)
    for position, index in enumerate(order):
        ranks[index] = position + 1
    return ranks


def cpu_section(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["### Part 1: this CPU, predicted vs measured block overhead", "",
             "| arch | mode (batch) | variant | measured Δ | predicted Δ | predicted / measured "
             "| rank measured | rank predicted |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    summary = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["arch"], row["mode"]), []).append(row)
    for (arch, mode), members in groups.items():
        variants = [r for r in members if r["measured_pct"] is not None and r["model"] != arch]
        measured = _rank([r["measured_pct"] for r in variants])
        predicted = _rank([r["predicted_pct"] if r["predicted_pct"] is not None else 0.0 for r in variants])
        for row, m, p in zip(variants, measured, predicted, strict=True):
            ratio = _ratio(row["predicted_pct"], row["measured_pct"])
            lines.append(f"| {arch} | {mode} ({row['batch']}) | {row['model'].removeprefix(arch + ' + ')} | "
                         f"{_pct(row['measured_pct'])} | {_pct(row['predicted_pct'])} | "
                         f"{'-' if ratio is None else f'{ratio:.2f}'} | {m} | {p} |")
        ratios = [r for r in (_ratio(v["predicted_pct"], v["measured_pct"]) for v in variants) if r is not None]
        base = next((r for r in members if r["model"] == arch), None)
        step = ("" if base is None or not base["measured_ms"]
                else f"; baseline step predicted / measured {base['predicted_ms'] / base['measured_ms']:.2f}")
        spread = (f"predicted / measured from {min(ratios):.2f} to {max(ratios):.2f}" if ratios
                  else "no ratio (overheads under 0.5%)")
        summary.append(f"- {arch}, {mode}: same ranking: {'yes' if measured == predicted else 'no'} ({spread}{step})")
    device = rows[0]["device"] if rows else {}
    lines += ["", *summary, "",
              f"CPU device measured in each run (last run shown): {device.get('name', '?')}, "
              f"{device.get('bandwidth_gb_per_s', 0):.1f} GB/s, "
              f"fp32 {device.get('fp32_tflops', 0) * 1e3:.1f} GFLOP/s, launch {device.get('launch_us', 0):.1f} µs. "
              "Fused blocks are predicted with the ATen passes a GPU runs; on CPU their compiled kernels make fewer, "
              "so their predicted overhead is expected above the measured one."]
    warnings = sorted({w for r in rows for w in r["warnings"] if "noisy" in w or "busy" in w})
    lines += [f"- warning: {w}" for w in warnings]
    return lines


def _timm(name: str) -> torch.nn.Module:
    import timm

    return timm.create_model(name, pretrained=False)


def _secli(base: torch.nn.Module, arch: str, impl: str) -> tuple[torch.nn.Module, list[str]]:
    import copy

    from secli.blocks.spec import BlockSpec
    from secli.networks.inject import inject
    from secli.networks.models import build_base

    _, info = build_base(arch, None, None)
    model = copy.deepcopy(base)
    report = inject(model, info.adapter, BlockSpec(kind="se", impl=impl), arch)
    return model, [s.module_path for s in report.sites]


def _native_sites(model: torch.nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if type(module).__name__ == "SEModule"]


def gpu_section(args: argparse.Namespace) -> list[str]:
    from secli.cost.devices import DEVICES
    from secli.cost.record import record
    from secli.cost.roofline import overhead, predict
    from secli.networks.models import build_base

    size = args.image_size
    cases = []
    resnet50, _ = build_base("resnet50", None, None)
    base_tv = record(resnet50, size, "fp16")
    se_timm = _timm("seresnet50")
    pairs_inf = [("timm seresnet50 / timm resnet50", record(_timm("resnet50"), size, "fp16"),
                  record(se_timm, size, "fp16", sites=_native_sites(se_timm)), _native_sites(se_timm))]
    for impl in ("eager", "fused"):
        model, sites = _secli(resnet50, "resnet50", impl)
        pairs_inf.append((f"secli SE {impl} / torchvision resnet50", base_tv, record(model, size, "fp16", sites=sites),
                          sites))
    for label, base, injected, sites in pairs_inf:
        for key in GPU_INFERENCE:
            found = overhead(predict(base, DEVICES[key], args.gpu_infer_batch),
                             predict(injected, DEVICES[key], args.gpu_infer_batch, sites))
            cases.append(("inference", label, key, args.gpu_infer_batch, found, 0.87))
    resnext = build_base("timm:resnext101_32x4d", None, None)[0]
    base_rx = record(resnext, size, "fp16", training=True, optimizer="foreach")
    se_rx = _timm("seresnext101_32x4d")
    pairs_train = [("timm seresnext101_32x4d / resnext101_32x4d", base_rx,
                    record(se_rx, size, "fp16", training=True, sites=_native_sites(se_rx), optimizer="foreach"),
                    _native_sites(se_rx))]
    for impl in ("eager", "fused"):
        model, sites = _secli(resnext, "timm:resnext101_32x4d", impl)
        pairs_train.append((f"secli SE {impl} / timm resnext101_32x4d", base_rx,
                            record(model, size, "fp16", training=True, sites=sites, optimizer="foreach"), sites))
    for label, base, injected, sites in pairs_train:
        for key in GPU_TRAINING:
            found = overhead(predict(base, DEVICES[key], args.gpu_train_batch),
                             predict(injected, DEVICES[key], args.gpu_train_batch, sites))
            cases.append(("training step", label, key, args.gpu_train_batch, found, 0.71))
    lines = ["### Part 2: GPUs, predicted throughput ratio beside the published one (no measurement)", "",
             "| mode | models | device | batch | predicted ratio | published | predicted Δ "
             "| pool | FCs | gate | scale | outside |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, label, key, batch, found, published in cases:
        roles = found.to_dict()["by_role_ms_per_image"]
        share = {k: 100.0 * v * batch / found.baseline_ms for k, v in roles.items()}
        lines.append(f"| {mode} | {label} | {DEVICES[key].name} | {batch} | {found.throughput_ratio:.3f} "
                     f"| {published:.2f} | {found.overhead_pct:+.1f}% | {share['pool']:+.1f}% "
                     f"| {share['FCs']:+.1f}% | {share['gate']:+.1f}% | {share['scale']:+.1f}% "
                     f"| {share['outside the blocks']:+.1f}% |")
    lines += ["", "fp16 autocast, SGD momentum update in the training step; role columns: share of the "
                  "baseline's predicted time. "
                  f"Published: {PUBLISHED_SOURCES['inference']}; {PUBLISHED_SOURCES['training']}."]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", default="resnet50,resnet18,mobilenet_v2")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gpu-infer-batch", type=int, default=256)
    parser.add_argument("--gpu-train-batch", type=int, default=128)
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-gpu", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="resnet18 only, 32 px, 1 iteration: proves the script runs")
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    if args.tiny:
        args.archs, args.image_size, args.train_batch, args.iters, args.warmup = "resnet18", 32, 2, 1, 0
    started = time.time()
    lines = [f"## Roofline validation ({time.strftime('%Y-%m-%d')}, torch {torch.__version__}, {args.image_size} px"
             f"{', TINY SETTINGS: numbers meaningless' if args.tiny else ''})", ""]
    if not args.skip_cpu:
        rows = [row for arch in args.archs.split(",") for mode in ("train", "inference")
                for row in cpu_rows(arch, mode, args)]
        lines += [*cpu_section(rows), ""]
    if not args.skip_gpu:
        lines += [*gpu_section(args), ""]
    command = ("PYTHONPATH=$PWD python benchmarks/roofline_validation.py "
               + " ".join(argv if argv is not None else sys.argv[1:]))
    lines.append(f"Produced by `{command.strip()}` in {time.time() - started:.0f} s.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
