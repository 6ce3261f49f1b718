"""One number: batch-1 inference time of secli's fused SE-ResNet-50 over torchvision's ResNet-50.

Lean on purpose, for comparing two checkouts (before/after a change to the fused path) in
alternating processes: two models, paired rounds in alternating order, 1 torch thread, the
median of the per-round ratios. ``benchmarks/bench_blocks.py`` is the full comparison.

    PYTHONPATH=$PWD python benchmarks/se_infer_ratio.py [rounds, default 60]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> None:
    from secli.blocks.spec import BlockSpec, ModelSpec
    from secli.networks.models import build

    torch.set_num_threads(1)
    torch.manual_seed(0)
    se = build(ModelSpec("resnet50", BlockSpec(kind="se"))).model.eval()
    base = torchvision.models.resnet50().eval()
    x = torch.randn(1, 3, 224, 224)
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    ratios = []
    with torch.inference_mode():
        for model in (se, base, se, base):  # warm-up
            model(x)
        for r in range(rounds):
            times = {}
            for name, model in (("se", se), ("base", base)) if r % 2 else (("base", base), ("se", se)):
                start = time.perf_counter()
                model(x)
                times[name] = time.perf_counter() - start
            ratios.append(times["se"] / times["base"])
    print(f"{statistics.median(ratios):.4f}")


if __name__ == "__main__":
    main()
