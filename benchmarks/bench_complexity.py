"""How much `secli complexity` costs over the bare work it has to do, measured in one run.

Bare work (the "minimal script" below): import torch and fvcore, build ResNet-50 and
SE-ResNet-50, run fvcore's default count on each. The command does that plus the extra
handles, the FlopCounterMode cross-check (one forward per model), the formula and rendering.

Measures, interleaving the runs so that load from other processes hits both sides alike:
  1. `secli complexity resnet50 --block se` vs the minimal script  (target ratio <= 1.3)
  2. a 5-ratio sweep vs 5 x the single command (must stay well below 1)

    PYTHONPATH=$PWD python benchmarks/bench_complexity.py [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MINIMAL = """
import warnings
import torch
torch.set_num_threads({threads})
warnings.simplefilter("ignore")
from fvcore.nn import FlopCountAnalysis
from secli.networks.models import build, build_base
from secli.blocks.spec import BlockSpec, ModelSpec

x = torch.zeros(1, 3, 224, 224)
base, _ = build_base("resnet50")
se = build(ModelSpec(arch="resnet50", block=BlockSpec(kind="se"))).model
for model in (base, se):
    analysis = FlopCountAnalysis(model.eval(), x)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    print(sum(p.numel() for p in model.parameters()), analysis.total())
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in every run (both sides)")
    args = parser.parse_args()

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
    py = sys.executable
    runs = {
        "minimal script": [py, "-c", MINIMAL.format(threads=args.threads)],
        "secli complexity resnet50 --block se": [py, "-m", "commands.app", "complexity", "resnet50", "--block", "se"],
        "secli complexity resnet50 --ratios 2,4,8,16,32": [py, "-m", "commands.app", "complexity", "resnet50",
                                                           "--ratios", "2,4,8,16,32"],
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, cmd in runs.items():  # interleaved: one of each per round
            times[name].append(timed(cmd, env))
    med = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(f"{name:50s} median {med[name]:6.2f} s  ({', '.join(f'{v:.2f}' for v in values)})")
    names = list(runs)
    print(f"command / minimal script              = {med[names[1]] / med[names[0]]:.2f}x  (target <= 1.3x)")
    print(f"5-ratio sweep / (5 x single command)  = {med[names[2]] / (5 * med[names[1]]):.2f}x")
    print(f"5-ratio sweep / single command        = {med[names[2]] / med[names[1]]:.2f}x")
    print(f"(repeats {args.repeats}, {args.threads} torch thread(s), load average {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    main()
