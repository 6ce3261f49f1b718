"""Turn ``secli profile --format json`` output into the Markdown tables of README/BENCHMARKS.

Usage:
    secli profile resnet50 --block se,sk --mode both --format json > run.json
    python benchmarks/profile_to_markdown.py run.json             # one table per mode
    python benchmarks/profile_to_markdown.py --compact run.json   # one short table (README)

It only reformats what secli measured (no numbers are computed here except unit changes), so
the tables in the docs can be regenerated from the saved JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def setting_line(run: dict[str, Any]) -> str:
    parts = [
        f"batch {run['batch_size']}",
        f"{run['input_size']}x{run['input_size']}",
        run["device"],
        run["device_name"],
        f"{run['threads']} threads" if run["device"] == "cpu" else "",
        f"torch {run['torch']}",
        f"amp {run['amp']}",
        "channels_last" if run["channels_last"] else "",
        f"compiled ({run['compile']})" if run["compile"] else "eager",
        f"{run['iters']} iterations after {run['warmup']} warm-up, interleaved",
        f"copy bandwidth {run['bandwidth']['gb_per_s']:.1f} GB/s" if run.get("bandwidth") else "",
    ]
    return ", ".join(p for p in parts if p)


def mode_table(run: dict[str, Any], mode: str) -> str:
    train = mode == "train"
    head = ["model"] + (["fwd ms", "bwd ms", "step ms"] if train else ["ms"])
    head += ["IQR ms", "images/s", "ratio", "overhead", "µs/image", "peak Δ MB", "block MB/pass", "passes"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for model in run["models"]:
        timing = model["modes"].get(mode)
        if timing is None:
            failure = model["failure"]["message"] if model["failure"] else "not run"
            lines.append(f"| {model['label']} | " + " | ".join(["-"] * (len(head) - 2)) + f" | {failure} |")
            continue
        cmp = model["vs_baseline"].get(mode, {})
        row = [model["label"]]
        if train:
            row += [_fmt(timing["forward"]["median_ms"]), _fmt(timing["backward"]["median_ms"])]
        row += [_fmt(timing["step"]["median_ms"]), _fmt(timing["step"]["iqr_ms"]), _fmt(timing["images_per_s"], 2)]
        row += [_fmt(cmp.get("throughput_ratio"), 3), f"{cmp['overhead_pct']:+.1f}%" if cmp else "-"]
        row += [_fmt(cmp.get("overhead_us_per_image"), 0)]
        memory = timing.get("memory")
        row += [_fmt(memory["delta_bytes"] / 2**20, 0) if memory else "-"]
        traffic = model.get("block_traffic")
        row += [_fmt(traffic["bytes_per_image"] * run["batch_size"] / 2**20, 1) if traffic else "-"]
        row += [_fmt(cmp.get("implied_passes"), 0)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def compact_table(run: dict[str, Any]) -> str:
    """Inference and training of every model in one table: medians, IQR, ratio, memory."""
    head = ["model"]
    for mode in run["modes"]:
        short = "inference" if mode == "inference" else "train step"
        head += [f"{short} ms (IQR)", "ratio"]
    head += [f"{'train' if 'train' in run['modes'] else 'inference'} peak Δ MB", "block MB/pass", f"passes ({' / '.join(run['modes'])})"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for model in run["models"]:
        row = [model["label"]]
        for mode in run["modes"]:
            timing = model["modes"].get(mode)
            cmp = model["vs_baseline"].get(mode)
            if timing is None:
                row += ["-", "-"]
                continue
            row += [f"{_fmt(timing['step']['median_ms'], 0)} ({_fmt(timing['step']['iqr_ms'], 0)})", _fmt(cmp["throughput_ratio"], 3) if cmp else "-"]
        last = model["modes"].get(run["modes"][-1])
        row += [_fmt(last["memory"]["delta_bytes"] / 2**20, 0) if last and last.get("memory") else "-"]
        traffic = model.get("block_traffic")
        row += [_fmt(traffic["bytes_per_image"] * run["batch_size"] / 2**20, 1) if traffic else "-"]
        row += [" / ".join(_fmt(model["vs_baseline"].get(m, {}).get("implied_passes"), 0) for m in run["modes"])]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    compact = "--compact" in argv
    argv = [a for a in argv if a != "--compact"]
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    run = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    if compact:
        print(compact_table(run))
        return 0
    print(setting_line(run))
    for mode in run["modes"]:
        print(f"\n**{mode}**\n")
        print(mode_table(run, mode))
    if run["warnings"]:
        print("\nwarnings: " + "; ".join(run["warnings"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
