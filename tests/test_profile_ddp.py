"""``secli profile --ddp`` with two CPU processes under torchrun (gloo backend)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_two_ranks_report_the_slowest_rank() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "commands.app", "profile", "resnet18", "--block", "se", "--ddp", "--mode", "train",
        "--device", "cpu", "--image-size", "32", "-b", "2", "--iters", "2", "--warmup", "1",
        "--threads", "1", "--format", "json",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout)  # only rank 0 prints
    payload = document["results"]
    assert payload["world_size"] == 2
    assert document["inputs"]["ddp"] is True
    for model in payload["models"]:
        train = model["modes"]["train"]
        ranks = train["rank_step_median_ms"]
        assert len(ranks) == 2
        assert train["slowest_rank"] in (0, 1)
        assert train["step"]["median_ms"] == max(ranks)
        # images/s counts both ranks' batches
        assert abs(train["images_per_s"] - 2 * 2 / (max(ranks) / 1e3)) < 1e-6 * train["images_per_s"]
