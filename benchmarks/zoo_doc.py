"""docs/ZOO.md and its figure, from the JSON files ``benchmarks/zoo.py`` writes (the whole page).

Kept apart from the measuring script so the page can be rewritten from saved results alone
(``python benchmarks/zoo.py --part doc``).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

KINDS = ("se", "eca", "cbam", "cbam-channel", "gc", "coord", "simam", "ge", "ge-plus", "fca", "srm", "gct")
BASELINE = "none"
DEPTHS = ("2_1", "2_2", "3_1", "3_2", "4_1", "4_2", "5_1", "5_2")  # resnet18's sites, shallow to deep
PEERS = (("fvcore", "fvcore default"), ("thop", "thop"), ("flopcountermode", "FlopCounterMode / 2"))
FULL_COMMAND = "PYTHONPATH=$PWD python benchmarks/zoo.py"


def load(out: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, list[dict[str, Any]]]]:
    def read(path: Path) -> dict[str, Any] | None:
        return json.loads(path.read_text()) if path.is_file() else None

    runs: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(out.glob("train_*_seed*.json")):
        run = json.loads(path.read_text())
        runs.setdefault(run["kind"], []).append(run)
    return read(out / "cost.json"), read(out / "timing.json"), runs


def _signed(value: float | None, fmt: str = ",.0f", unit: str = "") -> str:
    return "n/a" if value is None else f"{value:+{fmt}}{unit}"


def _mean_range(values: list[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def _fixed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _depth(site: str) -> str:
    return site.split("_", 1)[1]


def specificity(runs: list[dict[str, Any]], which: str = "trained") -> dict[str, list[float]]:
    """Depth -> eta squared of each seed (undefined values left out)."""
    found: dict[str, list[float]] = {d: [] for d in DEPTHS}
    for run in runs:
        for row in run.get(which) or []:
            if row.get("specificity") is not None and _depth(row["site"]) in found:
                found[_depth(row["site"])].append(float(row["specificity"]))
    return found


def cost_cells(cost: dict[str, Any], kind: str) -> list[str]:
    """Params added, FC-only and all-ops FLOPs added, and the share of the all-ops added each peer sees."""
    base, row = cost["rows"]["baseline"], cost["rows"][kind]
    added = row["all_ops"] - base["all_ops"]
    cells = [f"{row['params_added']:+,}", _signed(row["fc_only"] - base["fc_only"]), _signed(added)]
    for key, _ in PEERS:
        peer, peer_base = row["peers"].get(key), base["peers"].get(key)
        cells.append("n/a" if peer is None or peer_base is None or added <= 0
                     else f"{100 * (peer - peer_base) / added:.1f}%")
    return cells


def main_table(cost: dict[str, Any] | None, timing: dict[str, Any] | None,
               runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    head = ["kind", "params added", "FLOPs added, FC only", "FLOPs added, all ops",
            *[f"{label} sees" for _, label in PEERS],
            "CPU overhead, inference", "CPU overhead, train step", "val accuracy",
            *[f"eta² {d}" for d in DEPTHS]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind in (BASELINE, *KINDS):
        label = "ResNet-18 (no block)" if kind == BASELINE else f"`{kind}`"
        cells = [label]
        if cost is None:
            cells += ["n/a"] * (3 + len(PEERS))
        elif kind == BASELINE:
            base = cost["rows"]["baseline"]
            cells += [f"{base['params']:,}", f"{base['fc_only']:,}", f"{base['all_ops']:,}"] + ["-"] * len(PEERS)
        else:
            cells += cost_cells(cost, kind)
        vs = ((timing or {}).get("rows", {}).get(kind) or {}).get("vs_baseline") or {}
        for mode in ("inference", "train"):
            cells.append("-" if kind == BASELINE and timing
                         else _signed((vs.get(mode) or {}).get("overhead_pct"), ".1f", "%"))
        cells.append(_mean_range([r["val_accuracy"] for r in runs.get(kind, []) if r.get("val_accuracy") is not None]))
        depth = specificity(runs.get(kind, []))
        cells += ["-" if kind == BASELINE else _mean_range(depth[d]).split(" (")[0] for d in DEPTHS]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def accuracy_notes(runs: dict[str, list[dict[str, Any]]], epochs: Any) -> list[str]:
    """What the accuracy column says at this budget, read from the runs (not written in advance):
    which kinds learned the task in every seed, which never left chance, and which depended on
    the seed. Chance is one in ten classes."""
    chance, learned_at = 0.1, 0.9
    accuracy = {kind: [r["val_accuracy"] for r in rs if r.get("val_accuracy") is not None]
                for kind, rs in runs.items()}
    accuracy = {kind: values for kind, values in accuracy.items() if values}
    if not accuracy:
        return []
    order = [k for k in (BASELINE, *KINDS) if k in accuracy]

    def name(kind: str) -> str:
        return "the plain ResNet-18" if kind == BASELINE else f"`{kind}`"

    always = [k for k in order if min(accuracy[k]) >= learned_at]
    never = [k for k in order if max(accuracy[k]) <= chance + 0.05]
    mixed = [k for k in order if k not in always and k not in never]
    lines = ["### What the accuracy column says at this budget", "",
             f"Chance is {chance:.1f} (ten classes); {epochs} epochs, seeds as above."]
    if always:
        lines.append(f"- Learned the task (>= {learned_at}) in every seed: {', '.join(map(name, always))}.")
    if never:
        lines.append(f"- Never left chance (<= {chance + 0.05:.2f}) in any seed: {', '.join(map(name, never))}.")
    if mixed:
        lines.append("- Depended on the seed: " + ", ".join(
            f"{name(k)} ({', '.join(f'{v:.2f}' for v in accuracy[k])})" for k in mixed) + ".")
    lines.append("")
    return lines


def r50_table(cost: dict[str, Any]) -> list[str]:
    lines = ["| kind | params added | FLOPs added, FC only | FLOPs added, all ops | "
             + " | ".join(f"{label} sees" for _, label in PEERS) + " |", "|" + "---|" * (4 + len(PEERS))]
    base = cost["rows"]["baseline"]
    lines.append(f"| ResNet-50 (no block) | {base['params']:,} | {base['fc_only']:,} | {base['all_ops']:,} |"
                 + " - |" * len(PEERS))
    for kind in KINDS:
        lines.append(f"| `{kind}` | " + " | ".join(cost_cells(cost, kind)) + " |")
    return lines


def draw(runs: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """One panel per kind: eta squared against depth, each seed trained (solid) and untrained (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in KINDS if runs.get(k)]
    if not kinds:
        return
    cols = 4
    rows = (len(kinds) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), sharex=True, sharey=True,
                             constrained_layout=True, squeeze=False)
    x = range(len(DEPTHS))
    for ax, kind in zip(axes.flat, kinds):
        for i, run in enumerate(sorted(runs[kind], key=lambda r: r["seed"])):
            for which, style, colour in (("trained", "-", "#0072B2"), ("untrained", "--", "#E69F00")):
                values = {_depth(r["site"]): r.get("specificity") for r in run.get(which) or []}
                ax.plot(x, [values.get(d) if values.get(d) is not None else float("nan") for d in DEPTHS],
                        style, marker="o", ms=3, color=colour, alpha=0.8, label=which if i == 0 else None)
        chance = next((r.get("chance") for run in runs[kind] for r in run.get("trained") or []), None)
        if chance is not None:
            ax.axhline(chance, color="grey", linestyle=":", label="chance")
        ax.set_title(kind, fontsize=10)
        ax.set_ylim(0, 1)
    for ax in axes.flat[len(kinds):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xticks(list(x), DEPTHS, rotation=45, fontsize=8)
        ax.set_xlabel("site (stage_block), shallow to deep", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("eta squared (0-1)", fontsize=8)
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Class specificity of each kind's gates in ResNet-18 on synthetic-parts (held-out images)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_doc(out: Path, doc: Path, figure: Path, quick: bool = False) -> None:
    saved, timing, runs = load(out)
    cost = saved["resnet18"] if saved else None
    draw(runs, figure)
    s = (saved or {}).get("settings") or next((r["settings"] for rs in runs.values() for r in rs), {})
    seeds = sorted({r["seed"] for rs in runs.values() for r in rs})
    lines = [TITLE, ""]
    if quick or s.get("quick"):
        lines += [QUICK_WARNING, ""]
    lines += METHOD.format(
        seeds=", ".join(map(str, seeds)) or "none yet", epochs=s.get("epochs"), train_size=s.get("train_size"),
        val_size=s.get("val_size"), image_size=s.get("image_size"), batch_size=s.get("batch_size"),
        per_class=s.get("per_class"), threads=(timing or {}).get("settings", s).get("threads"),
        profile_batch=s.get("profile_batch"), iters=s.get("iters"), warmup=s.get("warmup"),
        machine=f"{(timing or {}).get('device_name') or s.get('machine')}, {s.get('cpus')} CPUs, "
                f"torch {s.get('torch')}",
        load=_fixed((timing or {}).get("load_average_at_start")),
    ).splitlines()
    lines += ["", "## The table", "", f"ResNet-18 at {s.get('image_size')} px, batch 1 for the counts; every number"
              " is one run of the commands below.", ""]
    lines += main_table(cost, timing, runs)
    lines += ["", "The baseline row gives totals, the others what each kind adds. FLOPs: multiply-adds for "
              "convolutions and matrix products, one per other arithmetic op ([the rules](complexity.md)). Peer "
              "columns: the share of secli's all-ops added cost that the counter reports as added. CPU: overhead "
              "against the baseline in one interleaved run (`secli profile --mode both`; positive is slower). "
              "Accuracy: mean over seeds (min-max); eta²: mean over seeds, trained networks (n/a: the gates did "
              "not vary, e.g. SimAM on a 1x1 map).", ""]
    lines += accuracy_notes(runs, s.get("epochs"))
    lines += [*ACCURACY_READING.splitlines(), ""]
    timing_warnings = (timing or {}).get("warnings") or []
    if timing_warnings:
        lines += ["What the profiler warned about this run:", ""] + [f"- {w}" for w in timing_warnings]
    notes = sorted({n for rs in runs.values() for r in rs for n in r.get("gate_notes") or []})
    if notes:
        lines += ["", "What the per-channel analysis leaves out (visualize-excitation's notes):", ""]
        lines += [f"- {n}" for n in notes]
    lines += ["", "## Specificity against depth", "", f"![eta squared per site, one panel per kind]({figure.name})", "",
              "Solid: trained, one line per seed; dashed: the same network untrained (same seed); dotted: "
              "the value random labels give (chance). No dashed line where the untrained gates are constant, "
              "so eta squared is undefined: GC (its last conv starts at zero), SRM (its weights start at zero) "
              "and GCT (every gate starts at 1) start as their papers initialise them.", ""]
    if saved is not None:
        r50 = saved["resnet50"]
        setting = " (the papers' setting)" if r50["image_size"] == 224 else ""
        lines += [f"## Cost in ResNet-50 at {r50['image_size']} px{setting}", ""]
        lines += r50_table(r50)
        lines.append("")
    lines += [*LIMITS.splitlines(), "", *COMMANDS.format(full=FULL_COMMAND).splitlines()]
    doc.write_text("\n".join(lines).rstrip() + "\n")


TITLE = """# The channel-attention zoo side by side

Twelve channel-attention blocks (SE, ECA and the ten kinds added for this comparison), each at
the same eight sites of ResNet-18 with its paper's defaults: what each costs (parameters and
FLOPs, exactly, and how much of that other counters see), what it costs in CPU time, and what its
gates learn on a task whose classes differ only in where their parts sit. The kinds, their formulas and sources are in
[inject.md](inject.md#the-kinds); this page is written whole by `benchmarks/zoo.py`."""

QUICK_WARNING = """> **Smoke run.** This page was written by `benchmarks/zoo.py --quick` (one seed, a few dozen
> images, 2 timed iterations): it shows the page's layout and that every step runs. Its
> numbers mean nothing, except the parameter and FLOP columns, which are exact at any setting
> (at the small image size given below). The measured page is written by the full command
> at the end."""

METHOD = """## How it is measured

- **Models.** torchvision's ResNet-18, and each kind at SE's standard position: on the residual
  branch of each of the eight basic blocks, before the sum with the identity (SE-ResNet-18's
  sites, `--position standard`). GCT's paper puts it before every convolution and CBAM, GC and
  the others each name their own place; here every kind sits at the same eight sites, so they
  compare on equal footing.
- **Cost.** Parameters added: counted, and equal to each kind's closed form (checked by
  `secli complexity`). FLOPs at batch 1, {image_size} px: *FC only* is fvcore's default count
  (convolutions, matrix products, batch norm, adaptive average pooling: the number papers
  quote); *all ops* adds every other arithmetic op by secli's rules (pooling, gates, scaling,
  activations, biases, softmax, variance; [the table](complexity.md)). Both agree op by op with
  an independent counter for every kind (`tests/test_complexity_sweep.py`). The peer columns
  give what fvcore's default handles, thop (`ultralytics-thop`) and torch's `FlopCounterMode`
  (halved: it counts a multiply-add as two) report as added, as a share of secli's all-ops
  added cost.
- **CPU overhead.** One `secli profile` run (`secli.api.profile`) times the baseline and every
  kind interleaved, inference (forward under `inference_mode`) and training step (forward,
  loss, backward, SGD step): batch {profile_batch}, {iters} timed iterations after {warmup}
  warm-up, {threads} threads, on {machine}; load average {load} at the start. Overhead: the
  median step time against the baseline's.
- **Training.** `secli train` on `synthetic-parts`: {train_size} training and {val_size}
  validation images of 10 classes, {image_size} px, epochs: {epochs}, batch {batch_size},
  `secli train`'s default optimiser and schedule; seeds {seeds}, the same for every kind, so
  every kind sees the same images in the same order from the same backbone initialisation.
- **Specificity.** `secli visualize-excitation` on held-out images ({per_class} per class, the
  set's test split, never trained on): eta squared of each site's gate vectors, between-class
  over total sum of squares ([its definition](visualize-excitation.md)); the control is the
  same network untrained (same seed). Gates that are not one value per channel are reduced
  to one value per channel first (see the notes under the table)."""

#: How to read the accuracy column; written after the measured run (docs/ZOO.md of 2026-12-03), whose
#: lists above come from the data: the plain network stayed at chance in every seed.
ACCURACY_READING = """At two epochs the column measures how soon a network starts to learn under `secli train`'s
default optimiser, not what it would reach: the plain ResNet-18 still sits at chance in every
seed, so a kind's "gain" here is mostly that it trains earlier. One reading, not tested here:
the kinds that learned in every seed (SE, CBAM, Coordinate attention, GE theta-plus) multiply
each residual branch by a learned gate that starts near 0.5, scaling the branches down at the
start as SkipInit and Fixup do on purpose; GC (which adds to the branch) and GCT (whose gate
starts at exactly 1) stay at chance like the plain network. GE theta-minus does not fit that
reading: its parameter-free sigmoid gate also starts near 0.5, and it stays at chance. A longer
schedule (`--epochs`) is what would compare final accuracies; the cost and overhead columns do
not depend on this, and eta squared only means something for the networks that learned."""

LIMITS = """## What the synthetic set can and cannot show

It can show:

- the costs, which do not depend on the data: the parameter and FLOP columns hold for
  ResNet-18 at this image size whatever it is trained on, and the ResNet-50 table for the
  papers' setting;
- the CPU overheads on this machine: their order is informative, their size depends on the
  CPU, the threads and the batch (on a GPU the memory-bound pooling and scaling weigh more);
- whether each kind trains at this budget, and where its gates become class-specific on a task whose classes
  share every local statistic and differ only in the arrangement of their parts
  ([the depth story](DEPTH_STORY.md)): early sites should stay near the untrained control,
  deep ones rise above it.

It cannot show:

- which kind is more accurate on natural images: a few thousand 64 px images, two epochs and
  three seeds separate kinds only by more than the seeds' spread, and say nothing about ImageNet;
- a fair contest between channel-only and spatial kinds: CBAM's spatial gate, Coordinate
  attention and GE at a finite extent see positions, which is exactly what separates
  synthetic-parts' classes, an advantage natural images need not repeat;
- comparable specificities for every gate: eta squared compares like with like only where the
  gate is one value per channel. For SimAM, Coordinate attention and GE at a finite extent it
  is that of the gate's mean over positions; for CBAM of its channel gate alone; for GC of an
  added term, not a factor; GCT's gate lies in (0, 2). The parameter-free kinds (SimAM, GE
  theta-minus) change their gates under training only through the features they gate."""

COMMANDS = """## Commands

```bash
{full}                 # everything: cost, timing, 13 models x 3 seeds (about 1 h on 2 quiet cores)
PYTHONPATH=$PWD python benchmarks/zoo.py --part train --kinds se,eca --seeds 1   # a slice; slices run in parallel
# how the page's run was made (2 cores, about 35 min): timing on quiet cores, then two training slices at once
PYTHONPATH=$PWD python benchmarks/zoo.py --part cost,timing
PYTHONPATH=$PWD python benchmarks/zoo.py --part train --seeds 0 2 --threads 1 &
PYTHONPATH=$PWD python benchmarks/zoo.py --part train --seeds 1 --threads 1; wait
PYTHONPATH=$PWD python benchmarks/zoo.py --part doc                              # this page again from the JSON in benchmarks/results/zoo
PYTHONPATH=$PWD python benchmarks/zoo.py --quick                                 # the smoke run (minutes)
```

The side-by-side views the script reads, from the command line:

```bash
secli complexity resnet50 --block se,eca,cbam,gc,coord,simam,ge,fca,srm,gct  # needs: slow
secli profile resnet18 --block se,eca,cbam,gc,coord,simam,ge,fca,srm,gct --mode both --device cpu --image-size 64 -b 16  # needs: slow
```"""  # noqa: E501 - shell lines of docs/ZOO.md, one command each (tests/test_readme_examples.py reads them)
