"""``secli visualize-excitation``: class-wise excitation statistics and figures (SE Fig. 6/7, SK).

Parses the options, calls ``secli.excitation.workflow.visualize_excitation`` and renders what
it returns; the run itself is the library's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from commands import options as opt
from commands.bar_callback import BarCallback
from commands.common import handle_errors, warn
from commands.render import Table, emit, skipped_note
from secli.excitation.workflow import MAX_PLOTTED_CLASSES, ExcitationRun

DATA_PANEL = "Data"
OUT_PANEL = "Output"


@handle_errors
def visualize_excitation_command(
    model: Annotated[Optional[str], typer.Argument(help="secli checkpoint, or an architecture (with --block or built-in SE modules).", show_default=False)] = None,
    data: Annotated[Optional[str], typer.Option("--data", help="ImageFolder root (root/<class>/<image>), 'synthetic' or 'synthetic-parts' (built in).", rich_help_panel=DATA_PANEL)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for figures, stats.npz and summary.json.", rich_help_panel=OUT_PANEL)] = None,
    classes: Annotated[Optional[str], typer.Option("--classes", help="Comma list of class names (or indices); default all.", rich_help_panel=DATA_PANEL)] = None,
    per_class: Annotated[Optional[int], typer.Option("--per-class", help="Images per class, sampled with --seed (synthetic: generated). Default all (synthetic: 50).", rich_help_panel=DATA_PANEL)] = None,
    sites: Annotated[Optional[str], typer.Option("--sites", help="Comma list of sites (e.g. SE_2_3,SE_5_2); default all.")] = None,
    scales: Annotated[Optional[str], typer.Option("--scales", help="Object scales for the SK test, e.g. 1.0,1.5,2.0 (centre crop 1/s, resize back).")] = None,
    block: opt.Block = None,
    kernel_size: opt.KernelSize = None,
    weights: opt.Weights = None,
    num_classes: opt.NumClasses = None,
    image_size: Annotated[Optional[int], typer.Option("--image-size", help="Input size; default the checkpoint's, the weights' transforms, or 48 for synthetic.", rich_help_panel=DATA_PANEL)] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Images per forward pass.", rich_help_panel=DATA_PANEL)] = 32,
    workers: Annotated[int, typer.Option("--workers", help="Data loader worker processes.", rich_help_panel=DATA_PANEL)] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of --per-class sampling and of synthetic images.", rich_help_panel=DATA_PANEL)] = 0,
    bins: Annotated[int, typer.Option("--bins", help="Histogram bins over the gate's range.")] = 50,
    channels: Annotated[int, typer.Option("--channels", help="Channels shown per curve (evenly spaced).", rich_help_panel=OUT_PANEL)] = 50,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N.")] = "auto",
    ddp: Annotated[bool, typer.Option("--ddp", help="Under torchrun: each rank takes a shard; sums are all-reduced.")] = False,
    from_stats: Annotated[Optional[Path], typer.Option("--from-stats", help="Re-plot the stats.npz + summary.json in this folder (no network).", rich_help_panel=OUT_PANEL)] = None,
    save_raw: Annotated[bool, typer.Option("--save-raw", help="Also keep every image's gate vectors (raw.npz: '<scale>/<site>' (N, paths, C) and 'labels'; with --ddp, gathered from all ranks).", rich_help_panel=OUT_PANEL)] = False,
    svg: Annotated[bool, typer.Option("--svg", help="Also write SVG figures.", rich_help_panel=OUT_PANEL)] = False,
    force: opt.Force = False,
    fmt: Annotated[opt.OutputFormat, typer.Option("--format", "-f", help="Output format.")] = opt.OutputFormat.table,
) -> None:
    """Per-class excitation statistics of SE/SK sites: scores, Fig. 6/7-style plots, SK vs scale.

    Example: secli visualize-excitation se_r18_synth.pt --data synthetic --out figs/
    """
    from commands import progress
    from secli.build.spec import BlockSpec
    from secli.excitation.workflow import visualize_excitation
    from secli.util.number_lists import parse_float_list

    if kernel_size is not None and block in (None, "none"):
        from secli.util.errors import SecliUsageError

        raise SecliUsageError("--kernel-size is an ECA option; add --block eca")
    block_spec = BlockSpec(kind=block, kernel_size=kernel_size) if block is not None else None
    quiet = fmt.value == "json"
    with BarCallback(lambda what, total: progress.progress_bar(what, total, enabled=not quiet, unit="images")) as bar:
        run = visualize_excitation(
            model, data=data, out=out, classes=classes, per_class=per_class, sites=sites,
            scales=parse_float_list(scales, "--scales"), block=block_spec,
            weights=weights, num_classes=num_classes, image_size=image_size, batch_size=batch_size,
            workers=workers, seed=seed, bins=bins, channels=channels, device=device, ddp=ddp,
            save_raw=save_raw, svg=svg, force=force, from_stats=from_stats, progress=bar,
        )
    if run.rank != 0:
        return  # rank 0 reports for all
    if run.skipped and not quiet:
        warn(skipped_note(run.skipped, int(run.stats.meta.get("too_large") or 0)))
    emit(fmt.value, [score_table(run)], run.to_dict())


def score_table(run: ExcitationRun) -> Table:
    """The scores of every site, with notes on what they mean and what was written."""
    result, meta = run.stats, run.stats.meta
    scale_keys = [result.scale_key(s) for s in result.scales]
    has_sk = any(s.paths >= 2 for s in result.sites)
    rows = []
    for row in result.scores():
        cells = [row["site"], row["channels"], row["specificity"], row["chance"], row["saturation"], row["mean_gate"]]
        if has_sk:
            cells += [row.get("sk_difference", {}).get(k) for k in scale_keys]
        rows.append(cells)
    columns = ["site", "C", "specificity", "chance", "saturation", "mean gate"]
    if has_sk:
        columns += [f"SK diff {k}" for k in scale_keys]
    table = Table(title=f"Excitation of {meta.get('model', run.source)}: {int(result.counts().sum())} images, "
                        f"{len(result.class_names)} classes", columns=columns, rows=rows)
    table.notes.append("specificity = between-class / total sum of squares of the gate vectors (eta^2); "
                       "chance = its value for random labels, (K-1)/(N-1)")
    table.notes.append("saturation = fraction of gate values > 0.95" +
                       ("; SK diff = mean attention, largest-kernel path minus 3x3 path, per object scale" if has_sk else ""))
    if meta.get("class_names_from"):
        table.notes.append(f"class names from {meta['class_names_from']}; preprocessing {meta.get('preprocess')}")
    if meta.get("images_per_second") and run.computed:
        ranks = f" over {meta['ranks']} ranks" if meta.get("ranks", 1) > 1 else ""
        table.notes.append(f"{meta['images']} images in {meta['seconds']:.1f} s: {meta['images_per_second']:.1f} images/s{ranks}")
    if meta.get("skipped"):
        table.notes.append(skipped_note(int(meta["skipped"]), int(meta.get("too_large") or 0)))
    if run.capped:
        table.notes.append(f"figures show the first {MAX_PLOTTED_CLASSES} of {len(result.class_names)} classes; choose with --classes")
    table.notes.append(f"wrote {len(run.files)} files to {run.out}")
    return table
