"""The SE paper's depth story (sec. 7.2, Fig. 6/7), measured on ``--data synthetic-parts``.

For each seed: SE-ResNet-18 trained on synthetic-parts (whose classes share every local
statistic and differ only in where their parts sit), and the same network untrained (same
seed, same initialisation) as the control. Both are analysed by ``secli.api.visualize_excitation``
on the same held-out images (the ``test`` split, never trained on); the table gives each SE
site's class specificity (eta squared) and saturation (fraction of gates > 0.95), with the
validation accuracy and wall times of each seed.

    PYTHONPATH=$PWD python benchmarks/depth_story.py                     # 3 seeds, ~2-3 CPU-min a seed
    PYTHONPATH=$PWD python benchmarks/depth_story.py --seeds 0 --epochs 2 --train-size 500  # a smoke run
    PYTHONPATH=$PWD python benchmarks/depth_story.py --reuse              # analyse saved checkpoints again
    PYTHONPATH=$PWD python benchmarks/depth_story.py --table-only         # table and figures from seed<N>.json
    for s in 0 1 2; do PYTHONPATH=$PWD python benchmarks/depth_story.py --seeds $s --threads 1 & done; wait

Writes into ``--out`` (default benchmarks/results/depth_story): ``seed<N>.pt`` checkpoints, the
excitation folders, ``seed<N>.json`` (every number of one seed), ``depth_story.md`` (the table
over every ``seed<N>.json`` in ``--out``, so seeds run in parallel processes land in one table),
and the figure ``--figure`` (default docs/depth_story.png).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

DATA = "synthetic-parts"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=2500)
    parser.add_argument("--val-size", type=int, default=500)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=None, help="default: secli train's (SGD 0.05)")
    parser.add_argument("--per-class", type=int, default=50, help="held-out images per class analysed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/depth_story")
    parser.add_argument("--figure", default="docs/depth_story.png")
    parser.add_argument("--reuse", action="store_true", help="reuse seed<N>.pt checkpoints already in --out")
    parser.add_argument("--ablate", action="store_true",
                        help="also measure each site's worth (visualize-excitation --ablate) on the trained nets")
    parser.add_argument("--table-only", action="store_true",
                        help="run nothing: rewrite the table and figures from the seed<N>.json files in --out")
    parser.add_argument("--with-figures", action="store_true",
                        help="also draw visualize-excitation's own figures (minutes on a busy 2-core machine)")
    args = parser.parse_args()
    if not args.with_figures:
        import secli.excitation.workflow as workflow

        # the statistics and scores are all this needs; the figures took ~8 of 9 minutes per seed
        # (the workflow calls the name it imported, so that is the one replaced)
        workflow.write_figures = lambda *a, **k: []  # type: ignore[assignment]

    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for seed in [] if args.table_only else args.seeds:
        result = run_seed(seed, args, out)
        (out / f"seed{seed}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(write_results(args, out), flush=True)  # every seed's file in --out, also from parallel runs
    if args.table_only:
        print(write_results(args, out))


def run_seed(seed: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Train (or reuse) one seed's model; analyse it and its untrained twin on the same images."""
    from secli import api

    ckpt = out / f"seed{seed}.pt"
    load0 = os.getloadavg()[0]
    train_s = train_cpu = None
    history: dict[str, Any]
    if args.reuse and ckpt.exists():
        history = api.load_model(str(ckpt)).meta["history"]
        if (out / f"seed{seed}.json").exists():  # keep the training run's own times
            before = json.loads((out / f"seed{seed}.json").read_text())
            train_s, train_cpu = before.get("train_seconds"), before.get("train_cpu_seconds")
            load0 = before.get("load_average_at_start", load0)
    else:
        start, cpu0 = time.perf_counter(), time.process_time()
        run = api.train("resnet18", block="se", data=DATA, out=ckpt, epochs=args.epochs, batch_size=args.batch_size,
                        lr=args.lr, image_size=args.image_size, train_size=args.train_size, val_size=args.val_size,
                        seed=seed, device="cpu", force=True,
                        on_epoch=lambda e: print(f"seed {seed} epoch {e.epoch}: train acc {e.train_accuracy:.3f}, "
                                                 f"val acc {e.val_accuracy}, {e.seconds:.0f} s", flush=True))
        train_s, train_cpu = time.perf_counter() - start, time.process_time() - cpu0
        history = run.history.to_dict()
    common = {"data": DATA, "per_class": args.per_class, "seed": seed, "device": "cpu", "force": True}
    start = time.perf_counter()
    untrained = api.visualize_excitation("resnet18", block="se", num_classes=10, image_size=args.image_size,
                                         out=out / f"untrained{seed}", **common)
    extra = {"ablate": True} if args.ablate else {}
    trained = api.visualize_excitation(str(ckpt), out=out / f"trained{seed}", **common, **extra)
    analyse_s = time.perf_counter() - start
    last = history["epochs"][-1]
    result = {
        "seed": seed,
        "args": vars(args),
        "val_accuracy": last["val_accuracy"],
        "train_accuracy": last["train_accuracy"],
        "epochs": len(history["epochs"]),
        "train_seconds": train_s,
        "train_cpu_seconds": train_cpu,  # CPU time of this process: what a quiet machine would take
        "analyse_seconds": analyse_s,
        "load_average_at_start": load0,
        "images_analysed": trained.stats.meta["images"],
        "untrained": {r["site"]: r for r in untrained.stats.scores()},
        "trained": {r["site"]: r for r in trained.stats.scores()},
    }
    ablation = getattr(trained.stats, "ablation", None)
    if ablation is not None:
        result["ablation"] = ablation.to_dict()
    print(f"seed {seed}: val acc {result['val_accuracy']}, train {train_s} s, analysis {analyse_s:.0f} s", flush=True)
    return result


def _cell(values: list[float]) -> str:
    """Mean, with the range over seeds when there are several."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def write_results(args: argparse.Namespace, out: Path) -> str:
    """The markdown table over every ``seed<N>.json`` in ``out`` (``depth_story.md``), and the figure."""
    runs = sorted((json.loads(p.read_text()) for p in out.glob("seed*.json")), key=lambda r: r["seed"])
    sites = list(runs[0]["trained"])
    chance = runs[0]["trained"][sites[0]]["chance"]
    seeds = ", ".join(str(r["seed"]) for r in runs)
    lines = [
        f"SE-ResNet-18 on {DATA}, {args.image_size} px; {runs[0]['images_analysed']} held-out images "
        f"({args.per_class} per class); seeds {seeds}: mean (min-max). Chance eta^2 = {chance:.3f}.",
        "",
        "| site | eta^2 untrained | eta^2 trained | saturation untrained | saturation trained | mean gate trained |",
        "|---|---|---|---|---|---|",
    ]
    for site in sites:
        cols = [[r[which][site][key] for r in runs] for which, key in
                (("untrained", "specificity"), ("trained", "specificity"), ("untrained", "saturation"),
                 ("trained", "saturation"), ("trained", "mean_gate"))]
        lines.append(f"| {site} | " + " | ".join(_cell(c) for c in cols) + " |")
    lines += ["", "| seed | val accuracy | train accuracy | epochs | train s "
                  "| analysis s (both nets, + ablation if run) | load avg at start |",
              "|---|---|---|---|---|---|---|"]
    for r in runs:
        train_s = f"{r['train_seconds']:.0f}" if r["train_seconds"] is not None else "reused"
        lines.append(f"| {r['seed']} | {r['val_accuracy']:.3f} | {r['train_accuracy']:.3f} | {r['epochs']} | "
                     f"{train_s} | {r['analyse_seconds']:.0f} | {r['load_average_at_start']:.1f} |")
    ablated = [r for r in runs if r.get("ablation")]
    if ablated:
        lines += ["", f"Ablation (seeds {', '.join(str(r['seed']) for r in ablated)}): top-1 on the analysed images, "
                  "change against the unmodified network (" +
                  ", ".join(f"{r['ablation']['accuracy']:.3f}" for r in ablated) + ").", "",
                  "| site | mean gate: change in top-1 | no gate: change in top-1 |", "|---|---|---|"]
        for site in sites:
            rows = [next(x for x in r["ablation"]["sites"] if x["site"] == site) for r in ablated]
            lines.append(f"| {site} | {_cell([x['delta_mean_gate'] for x in rows])} | "
                         f"{_cell([x['delta_no_gate'] for x in rows])} |")
    table = "\n".join(lines) + "\n"
    (out / "depth_story.md").write_text(table)
    figure = Path(args.figure)
    draw(runs, sites, chance, figure)
    first = runs[0]["seed"]
    if (out / f"trained{first}").is_dir():
        draw_class_means(out / f"trained{first}", out / f"untrained{first}",
                         figure.with_name(figure.stem + "_class_means.png"))
    return table


def draw(runs: list[dict[str, Any]], sites: list[str], chance: float, path: Path) -> None:
    """Two panels over the sites in depth order: eta squared and saturation, trained vs untrained."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = range(len(sites))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    styles = {"trained": ("#0072B2", "o", "trained"), "untrained": ("#E69F00", "s", "untrained (same init)")}
    for ax, key, title in ((axes[0], "specificity", "class specificity (eta squared)"),
                           (axes[1], "saturation", "saturation (fraction of gates > 0.95)")):
        for which, (colour, marker, label) in styles.items():
            for i, r in enumerate(runs):
                ax.plot(x, [r[which][s][key] for s in sites], color=colour, marker=marker, alpha=0.8,
                        label=label if i == 0 else None)
        if key == "specificity":
            ax.axhline(chance, color="grey", linestyle="--", label=f"chance ({chance:.3f})")
        ax.set_xticks(list(x), sites, rotation=45)
        ax.set_xlabel("SE site (stage_block), shallow to deep")
        ax.set_ylabel(title.split(" (")[0] + " (0-1)")
        ax.set_ylim(0, 1)
        ax.set_title(title)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"SE-ResNet-18 on {DATA}: one line per seed ({len(runs)} seeds)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: Paul Tol's "muted" palette (colour-blind safe) plus a grey: one colour per class, everywhere.
CLASS_COLOURS = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933",
                 "#DDCC77", "#CC6677", "#882255", "#AA4499", "#777777")


def draw_class_means(trained: Path, untrained: Path, path: Path, channels: int = 50) -> None:
    """Fig. 6-style: per class, the mean gate of the first ``channels`` channels at the first site of
    each stage and the last site, trained (top) and untrained (bottom), for one seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from secli.excitation.result import ExcitationResult

    results = [ExcitationResult.load(trained), ExcitationResult.load(untrained)]
    names = [s.name for s in results[0].sites]
    shown = [n for n in names if n.endswith("_1")] + names[-1:]
    fig, axes = plt.subplots(2, len(shown), figsize=(3.2 * len(shown), 5.6), sharey=True, constrained_layout=True)
    for row, (result, label) in enumerate(zip(results, ("trained", "untrained"))):
        for col, site in enumerate(shown):
            ax = axes[row, col]
            means = result.mean(site)[:, 0, :channels]  # (K, C)
            for k, name in enumerate(result.class_names):
                ax.plot(means[k], color=CLASS_COLOURS[k % len(CLASS_COLOURS)], lw=1, label=name)
            ax.plot(result.mean_all(site)[0, :channels], color="black", lw=1.5, ls="--", label="all classes")
            ax.set_title(f"{site}, {label}", fontsize=9)
            ax.set_xlabel("channel index")
            ax.set_ylim(0, 1)
        axes[row, 0].set_ylabel("mean gate value (0-1)")
    axes[0, -1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"SE-ResNet-18 on {DATA}: mean excitation per class (first {channels} channels)")
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
