"""``bench_excitation.py --command``: the whole visualize-excitation command against a plain forward.

Fresh processes each time (the user's cost includes imports), alternating, so load that drifts
over the run hits both sides alike. See bench_excitation.py's docstring for what is printed.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN = """
import sys, time, json, torch
from secli.excitation.passes import load_analysed_model, open_images
from secli.data.folders import make_loader
model, size, per_class, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
built = load_analysed_model(model, None, None, None, 0)
labelled, _pre, _short = open_images(built, "synthetic", None, per_class, 0, size)
loader = make_loader(labelled.dataset, labelled.indices, batch, 0)
net = built.model.eval()
start, n = time.perf_counter(), 0
with torch.inference_mode():
    for images, _labels, _bad in loader:
        net(images)
        n += images.shape[0]
print(json.dumps({"forward": time.perf_counter() - start, "images": n}))
"""


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, its stdout)."""
    cpu0, t0 = _child_cpu(), time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd[:4])}... failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0, _child_cpu() - cpu0, done.stdout


def command_benchmark(args) -> None:
    model = args.model
    root = Path(tempfile.mkdtemp(prefix="bench_excitation_"))
    repo = str(Path(__file__).resolve().parents[1])  # this checkout's secli, not an installed one
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": repo}
    per_class = max(1, args.images // 10)
    if not Path(model).is_file():
        sys.exit("--command needs a checkpoint: --model FILE.pt (e.g. from secli train ... --out FILE.pt)")
    plain_cmd = [sys.executable, "-c", PLAIN, model, str(args.size), str(per_class), str(args.batch_size)]
    out = root / "figs"
    cli_cmd = [sys.executable, "-m", "commands.app", "visualize-excitation", model, "--data", "synthetic",
               "--per-class", str(per_class), "--image-size", str(args.size), "--batch-size", str(args.batch_size),
               "--out", str(out), "--force", "--figures", args.figures, "--format", "json"]
    rows = []
    try:
        _timed(plain_cmd, env)  # warm the page cache for torch's libraries
        for _ in range(args.rounds):
            wall_a, cpu_a, text = _timed(plain_cmd, env)
            forward = json.loads(text.strip().splitlines()[-1])["forward"]
            wall_b, cpu_b, text = _timed(cli_cmd, env)
            stats = json.loads(text)["results"]["meta"]["seconds"]
            rows.append({"wall_plain": wall_a, "forward": forward, "cpu_plain": cpu_a, "wall_cmd": wall_b,
                         "stats": stats, "cpu_cmd": cpu_b,
                         "beyond": wall_b - stats - (wall_a - forward), "beyond_cpu": cpu_b - cpu_a})
        figures = _figures_alone(out, args.rounds)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"{model}: {per_class * 10} synthetic images of {args.size} px, batch {args.batch_size}, "
          f"--figures {args.figures}, {args.rounds} rounds alternating, load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    print("                            median   (rounds)")
    for key, what in (("wall_plain", "plain script, wall s"), ("forward", "  its forward loop, s"),
                      ("wall_cmd", "command, wall s"), ("stats", "  its statistics pass, s"),
                      ("beyond", "command beyond stats, wall s"), ("beyond_cpu", "command - plain, CPU s")):
        print(f"  {what:28s} {med[key]:6.2f}   ({', '.join(f'{r[key]:.2f}' for r in rows)})")
    print(f"  ratio command / plain (wall): {med['wall_cmd'] / med['wall_plain']:.2f}")
    for name, (wall, cpu) in figures.items():
        print(f"  figures alone, {name:8s}: {wall:5.2f} s wall, {cpu:5.2f} s CPU (median, in process)")
    print("target: command beyond stats <= ~2 s with the default figures")


def _figures_alone(stats_dir: Path, rounds: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU seconds of write_figures for each set, matplotlib already imported."""
    from secli.excitation.plots import write_figures
    from secli.excitation.result import ExcitationResult

    result = ExcitationResult.load(stats_dir)
    times: dict[str, tuple[float, float]] = {}
    for name in ("default", "all"):
        walls, cpus = [], []
        for i in range(rounds):
            target = stats_dir.parent / f"{name}{i}"
            t0, c0 = time.perf_counter(), time.process_time()
            write_figures(result, target, None, figures=name, force=True)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        times[name] = (statistics.median(walls), statistics.median(cpus))
    return times
