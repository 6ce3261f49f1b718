"""The channel-attention zoo side by side (issue 21): cost, CPU overhead, accuracy, what the gates learn.

Every registered kind at SE's standard position in ResNet-18 (SE-ResNet-18's eight sites, each
kind with its paper's defaults), and plain ResNet-18 as the baseline:

- cost, exact: parameters added (counted, and equal to each kind's closed form), FLOPs added at
  batch 1 (fvcore's default "FC only" and secli's "all ops"), and the share of secli's all-ops
  added cost that each peer counter sees (fvcore's default handles, thop, torch's
  FlopCounterMode halved to multiply-adds); the same cost for ResNet-50 at 224 px, the papers' setting;
- CPU overhead against the baseline, inference and training step, all models timed in ONE
  interleaved ``secli profile`` run;
- trained on ``synthetic-parts`` (same seeds, same budget for every kind): validation accuracy,
  and class specificity (eta squared, ``secli.excitation.scores``) of every site, shallow to deep,
  on held-out images, trained and untrained (same seed and initialisation) as the control.

    PYTHONPATH=$PWD python benchmarks/zoo.py                    # the full run (quiet cores, see docs/ZOO.md)
    PYTHONPATH=$PWD python benchmarks/zoo.py --quick            # a smoke run: minutes, numbers meaningless
    PYTHONPATH=$PWD python benchmarks/zoo.py --part train --kinds se,eca --seeds 1   # a slice (parallel runs)
    PYTHONPATH=$PWD python benchmarks/zoo.py --part doc         # docs/ZOO.md again from the saved JSON

Writes into ``--out`` (default benchmarks/results/zoo; --quick: benchmarks/results/zoo_quick):
``cost.json``, ``timing.json``, ``train_<kind>_seed<N>.json`` (+ the excitation statistics, and the
checkpoints with ``--keep-checkpoints``), and
``--doc`` (default docs/ZOO.md) with the figure ``--figure`` (default docs/zoo_specificity.png),
the whole page, from every JSON file in ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any

from zoo_doc import write_doc

DATA = "synthetic-parts"
ARCH = "resnet18"
KINDS = ("se", "eca", "cbam", "cbam-channel", "gc", "coord", "simam", "ge", "ge-plus", "fca", "srm", "gct")
BASELINE = "none"
PARTS = ("cost", "timing", "train", "doc")
QUICK = {"seeds": [0], "epochs": 1, "train_size": 40, "val_size": 20, "image_size": 32, "per_class": 2,
         "iters": 2, "warmup": 0, "profile_batch": 2, "r50_size": 64}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny settings, to prove the script runs "
                                                             "(numbers meaningless)")
    parser.add_argument("--part", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help="comma list of the kinds to train (cost and timing: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=2500)
    parser.add_argument("--val-size", type=int, default=500)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--per-class", type=int, default=50, help="held-out images per class analysed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=30, help="timed iterations per model and mode (profile)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--profile-batch", type=int, default=16)
    parser.add_argument("--r50-size", type=int, default=224, help="image size of the ResNet-50 cost table")
    parser.add_argument("--keep-checkpoints", action="store_true", help="keep each trained model (45 MB each)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--doc", default="docs/ZOO.md")
    parser.add_argument("--figure", default="docs/zoo_specificity.png")
    args = parser.parse_args()
    if args.quick:
        defaults = {a.dest: a.default for a in parser._actions}
        for key, value in QUICK.items():
            if getattr(args, key) == defaults[key]:  # a value given on the command line wins
                setattr(args, key, value)
    args.out = Path(args.out or ("benchmarks/results/zoo_quick" if args.quick else "benchmarks/results/zoo"))
    args.parts = [p for p in args.part.split(",") if p]
    args.kind_list = [k for k in args.kinds.split(",") if k]
    unknown = [p for p in args.parts if p not in PARTS] + [k for k in args.kind_list if k not in (*KINDS, BASELINE)]
    if unknown:
        parser.error(f"unknown part or kind {unknown[0]!r}")
    return args


def main() -> None:
    args = parse()
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if "cost" in args.parts:
        save(args.out / "cost.json", {"resnet18": measure_cost(ARCH, args.image_size),
                                      "resnet50": measure_cost("resnet50", args.r50_size), "settings": settings(args)})
    if "timing" in args.parts:
        save(args.out / "timing.json", measure_timing(args))
    if "train" in args.parts:
        import secli.excitation.workflow as excitation

        excitation.write_figures = lambda *a, **k: []  # type: ignore[assignment]  # the scores are all this needs
        for seed in args.seeds:
            for kind in [BASELINE, *[k for k in args.kind_list if k != BASELINE]]:
                save(args.out / f"train_{kind}_seed{seed}.json", train_and_analyse(kind, seed, args))
    if "doc" in args.parts:
        write_doc(args.out, Path(args.doc), Path(args.figure), quick=args.quick)
        print(f"wrote {args.doc} and {args.figure}")


def save(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {path}", flush=True)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    return {"quick": args.quick, "epochs": args.epochs, "train_size": args.train_size, "val_size": args.val_size,
            "image_size": args.image_size, "batch_size": args.batch_size, "per_class": args.per_class,
            "threads": args.threads, "iters": args.iters, "warmup": args.warmup, "profile_batch": args.profile_batch,
            "r50_size": args.r50_size, "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "load_average": os.getloadavg()[0]}


# --------------------------------------------------------------------------- cost
def peer_counts(model: Any, size: int) -> dict[str, float | None]:
    """What other counters report for ``model`` at batch 1 (multiply-adds; None where not installed)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, 3, size, size)
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        counts: dict[str, float | None] = {"fvcore": float(analysis.total())}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    counts["flopcountermode"] = counter.get_total_flops() / 2  # it counts a multiply-add as 2
    try:
        from thop import profile as thop_profile
    except ImportError:
        counts["thop"] = None
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            macs, _ = thop_profile(copy.deepcopy(model), inputs=(x,), verbose=False)  # thop adds buffers
        counts["thop"] = float(macs)
    return counts


def measure_cost(arch: str, size: int) -> dict[str, Any]:
    """secli's exact counts (``api.complexity``) and the peers' counts of the same models."""
    from secli.blocks.spec import BlockSpec, ModelSpec
    from secli.complexity.workflow import complexity
    from secli.networks.models import build_base

    start = time.perf_counter()
    result = complexity(arch, block=",".join(KINDS), image_size=size)
    base = result.baseline_flops
    assert base is not None, result.flops_error
    base_model, _ = build_base(arch, None, None)
    rows: dict[str, Any] = {"baseline": {"params": result.params_baseline, "fc_only": base.fc_only,
                                         "all_ops": base.all_ops, "peers": peer_counts(base_model, size)}}
    from secli.networks.models import build

    for row in result.rows:
        kind = row.spec.block.kind
        assert row.flops is not None, kind
        assert row.formula is not None, kind
        assert row.formula.exact, kind
        model = build(ModelSpec(arch, BlockSpec(kind=kind))).model
        rows[kind] = {"label": row.label, "params_added": row.params_injected - row.params_baseline,
                      "formula": row.formula.predicted, "fc_only": row.flops.fc_only, "all_ops": row.flops.all_ops,
                      "unsupported": row.flops.unsupported, "peers": peer_counts(model, size)}
        print(f"{arch} {kind}: +{rows[kind]['params_added']:,} params, all ops "
              f"+{row.flops.all_ops - base.all_ops:,}", flush=True)
    return {"arch": arch, "image_size": size, "seconds": time.perf_counter() - start, "rows": rows}


# --------------------------------------------------------------------------- timing
def measure_timing(args: argparse.Namespace) -> dict[str, Any]:
    """One interleaved ``secli profile`` run over the baseline and every kind (inference and training)."""
    from secli import api

    load0 = os.getloadavg()[0]
    report = api.profile(ARCH, block=",".join(KINDS), mode="both", device="cpu", image_size=args.image_size,
                         batch_size=args.profile_batch, iters=args.iters, warmup=args.warmup, threads=args.threads,
                         progress=lambda done, total, what: print(f"profile {done}/{total} {what}", flush=True))
    results = report.to_dict()["results"]
    models = results["models"]
    rows = {BASELINE: models[0]}
    rows.update(dict(zip(KINDS, models[1:], strict=True)))
    return {"settings": settings(args), "load_average_at_start": load0, "warnings": results.get("warnings"),
            "device_name": results.get("device_name"), "rows": rows}


# --------------------------------------------------------------------------- training
def train_and_analyse(kind: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train one kind at one seed; analyse it and its untrained twin on the same held-out images."""
    from secli import api

    ckpt = args.out / f"{kind}_seed{seed}.pt"
    start, cpu0 = time.perf_counter(), time.process_time()
    run = api.train(ARCH, block=kind, data=DATA, out=ckpt, epochs=args.epochs, batch_size=args.batch_size,
                    image_size=args.image_size, train_size=args.train_size, val_size=args.val_size, seed=seed,
                    device="cpu", force=True,
                    on_epoch=lambda e: print(f"{kind} seed {seed} epoch {e.epoch}: val acc {e.val_accuracy}",
                                             flush=True))
    history = run.history.to_dict()
    result: dict[str, Any] = {"kind": kind, "seed": seed, "settings": settings(args),
                              "val_accuracy": history["epochs"][-1]["val_accuracy"],
                              "train_accuracy": history["epochs"][-1]["train_accuracy"],
                              "train_seconds": time.perf_counter() - start,
                              "train_cpu_seconds": time.process_time() - cpu0}
    if kind == BASELINE:  # no sites to analyse
        if not args.keep_checkpoints:
            ckpt.unlink()
        return result
    common = {"data": DATA, "per_class": args.per_class, "seed": seed, "device": "cpu", "force": True}
    trained = api.visualize_excitation(str(ckpt), out=args.out / f"{kind}_seed{seed}_trained", **common)
    untrained = api.visualize_excitation(ARCH, block=kind, num_classes=10, image_size=args.image_size,
                                         out=args.out / f"{kind}_seed{seed}_untrained", **common)
    result.update({"trained": trained.stats.scores(), "untrained": untrained.stats.scores(),
                   "gate_notes": trained.stats.meta.get("gate_notes", []), "images": trained.stats.meta["images"]})
    if not args.keep_checkpoints:
        ckpt.unlink()
    return result


if __name__ == "__main__":
    main()
