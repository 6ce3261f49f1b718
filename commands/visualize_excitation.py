"""``secli visualize-excitation``: class-wise excitation statistics and figures (SE Fig. 6/7, SK).

Parses the options, calls ``secli.excitation.workflow.visualize_excitation`` and renders what
it returns; the run itself is the library's. Everything shown is rendered from the JSON
envelope by :func:`tables`, so ``secli report summary.json`` shows a saved run the same way.
"""

from __future__ import annotations

import contextlib
from typing import Any

from commands import options as opt
from commands.bar_callback import BarCallback
from commands.block_options import BLOCKS, BlockArgs, block_options
from commands.common import handle_errors, warn
from commands.excitation_options import (
    Ablate,
    BatchSize,
    Bins,
    Channels,
    Classes,
    Ddp,
    Figures,
    FromStats,
    ImageSize,
    Model,
    Out,
    PerClass,
    SaveRaw,
    Scales,
    Seed,
    Sites,
    Svg,
)
from commands.render import Table, emit, skipped_note
from secli.excitation.limits import MAX_PLOTTED_CLASSES

OLD_FORMAT = "secli-excitation"  # summary.json before the envelope: results at the top level


@handle_errors
@block_options()
def visualize_excitation_command(
    model: Model = None,
    weights: opt.Weights = None,
    num_classes: opt.NumClasses = None,
    model_kwargs: opt.ModelKwargs = None,
    trust_code: opt.TrustCode = False,
    blocks: BlockArgs = BLOCKS,
    data: opt.Data = None,
    classes: Classes = None,
    per_class: PerClass = None,
    image_size: ImageSize = None,
    batch_size: BatchSize = 32,
    from_stats: FromStats = None,
    sites: Sites = None,
    scales: Scales = None,
    bins: Bins = 50,
    ablate: Ablate = False,
    device: opt.Device = "auto",
    workers: opt.Workers = 0,
    seed: Seed = 0,
    ddp: Ddp = False,
    out: Out = None,
    channels: Channels = 50,
    figures: Figures = "default",
    svg: Svg = False,
    save_raw: SaveRaw = False,
    force: opt.Force = False,
    fmt: opt.Format = opt.OutputFormat.table,
) -> None:
    """Per-class excitation statistics of attention sites: scores, Fig. 6/7-style plots, SK vs scale.

    Example: secli visualize-excitation se_r18_synth.pt --data synthetic --ablate --out figs/

    Example: secli visualize-excitation resnet18 --block se --data synthetic --per-class 4 --out figs_untrained/
    """
    from commands import progress
    from secli.excitation.workflow import visualize_excitation
    from secli.util.number_lists import parse_float_list

    quiet = fmt.value == "json"
    with PhasedBar(lambda what, total: progress.progress_bar(what, total, enabled=not quiet, unit="images")) as bar:
        run = visualize_excitation(
            model, data=data, out=out, classes=classes, per_class=per_class, sites=sites,
            scales=parse_float_list(scales, "--scales"), block=blocks.kind, **blocks.options(),
            weights=weights, num_classes=num_classes, image_size=image_size, batch_size=batch_size,
            workers=workers, seed=seed, bins=bins, channels=channels, device=device, ddp=ddp,
            save_raw=save_raw, svg=svg, figures=figures, force=force, ablate=ablate, from_stats=from_stats,
            progress=bar, model_kwargs=model_kwargs, trust_code=trust_code,
        )
    if run.rank != 0:
        return  # rank 0 reports for all
    if run.skipped and not quiet:
        warn(skipped_note(run.skipped, int(run.stats.meta.get("too_large") or 0)))
    for line in run.warnings:
        warn(line)
    document = run.to_dict()
    emit(fmt.value, csv_tables(document) if fmt.value == "csv" else tables(document), document)


class PhasedBar:
    """A ``progress(done, total, what)`` callback with one bar per phase: the statistics pass,
    then the ablation pass, each with its own total (``BarCallback`` keeps one bar)."""

    def __init__(self, open_bar: Any) -> None:
        self._open = open_bar
        self._stack = contextlib.ExitStack()
        self._what: str | None = None
        self._bar: BarCallback | None = None

    def __call__(self, done: int, total: int | None, what: str) -> None:
        if self._bar is None or what != self._what:
            self._stack.close()
            self._what, self._bar = what, self._stack.enter_context(BarCallback(self._open))
        self._bar(done, total, what)

    def __enter__(self) -> PhasedBar:
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self._stack.__exit__(*exc)


# --------------------------------------------------------------------------- rendering
def tables(document: dict[str, Any]) -> list[Table]:
    """The tables of a visualize-excitation result: its ``--format json`` envelope, a
    ``summary.json`` (envelope, or the older bare ``secli-excitation`` object). Plain data in,
    so ``secli report`` renders saved runs exactly as the command does."""
    results = document if document.get("format") == OLD_FORMAT else document["results"]
    out = [score_table(results)]
    if results.get("ablation"):
        out.append(ablation_table(results))
    return out


def csv_tables(document: dict[str, Any]) -> list[Table]:
    """``-f csv`` (and ``secli report -f csv``): one tidy table, one row per site, raw numbers
    and ASCII column names; the ablation's columns join the scores on the site (both are per
    site), empty where there was no ablation of that site."""
    results = document if document.get("format") == OLD_FORMAT else document["results"]
    scale_keys = [f"x{float(s):g}" for s in results.get("scales") or [1.0]]
    has_sk = any(int(s.get("paths", 1)) >= 2 for s in results["sites"])
    ablated = {r["site"]: r for r in (results.get("ablation") or {}).get("sites", [])}
    columns = ["site", "channels", "specificity", "chance", "saturation", "mean_gate"]
    columns += [f"sk_difference_{k.replace('.', '_')}" for k in scale_keys] if has_sk else []
    abl = ["acc_mean_gate", "delta_mean_gate", "acc_no_gate", "delta_no_gate"] if ablated else []
    rows = []
    for row in results["scores"]:
        cells = [row["site"], row["channels"], row.get("specificity"), row.get("chance"), row.get("saturation"),
                 row.get("mean_gate")]
        if has_sk:
            cells += [(row.get("sk_difference") or {}).get(k) for k in scale_keys]
        rows.append(cells + [(ablated.get(row["site"]) or {}).get(k) for k in abl])
    return [Table(title="", columns=columns + abl, rows=rows)]


def _fixed(value: Any, digits: int = 3) -> str:
    """A score with fixed precision; "n/a" where it is undefined (null)."""
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}"


def _points(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):+.1f}"


def score_table(results: dict[str, Any]) -> Table:
    """The scores of every site, with notes on what they mean and what was written."""
    meta = results.get("meta") or {}
    scale_keys = [f"x{float(s):g}" for s in results.get("scales") or [1.0]]
    has_sk = any(int(s.get("paths", 1)) >= 2 for s in results["sites"])
    rows = []
    for row in results["scores"]:
        cells = [row["site"], row["channels"], _fixed(row.get("specificity")), _fixed(row.get("chance")),
                 _percent(row.get("saturation")), _fixed(row.get("mean_gate"))]
        if has_sk:
            cells += [_fixed((row.get("sk_difference") or {}).get(k)) for k in scale_keys]
        rows.append(cells)
    columns = ["site", "C", "specificity (eta^2)", "chance", "saturation (%)", "mean gate"]
    if has_sk:
        columns += [f"SK diff {k}" for k in scale_keys]
    counts = results.get("counts") or {}
    table = Table(title=f"Excitation of {meta.get('model', results.get('source', '?'))}: "
                        f"{sum(int(c) for c in counts.values()):,} images, {len(results['classes'])} classes",
                  columns=columns, rows=rows)
    table.notes.append("specificity = between-class / total sum of squares of the gate vectors (eta^2; n/a where "
                       "the gates do not vary); chance = its value for random labels, (K-1)/(N-1)")
    sk_diff = "; SK diff = mean attention, largest-kernel path minus 3x3 path, per object scale" if has_sk else ""
    table.notes.append(f"saturation = % of gate values > 0.95{sk_diff}")
    table.notes += list(meta.get("gate_notes") or [])  # gates that are not one value per channel
    if meta.get("class_names_from"):
        table.notes.append(f"class names from {meta['class_names_from']}; preprocessing {meta.get('preprocess')}")
    if meta.get("images_per_second") and results.get("computed", True):
        ranks = f" over {meta['ranks']} ranks" if (meta.get("ranks") or 1) > 1 else ""
        table.notes.append(f"{meta['images']} images in {meta['seconds']:.1f} s: "
                           f"{meta['images_per_second']:.1f} images/s{ranks}")
    if meta.get("skipped"):
        table.notes.append(skipped_note(int(meta["skipped"]), int(meta.get("too_large") or 0)))
    table.notes += list(results.get("warnings") or [])
    if results.get("capped"):
        table.notes.append(f"figures show the first {MAX_PLOTTED_CLASSES} of {len(results['classes'])} classes; "
                           "choose with --classes")
    if results.get("out"):
        table.notes.append(f"wrote {len(results['files'])} files to {results['out']}")
    return table


def ablation_table(results: dict[str, Any]) -> Table:
    """Accuracy with each site's gate replaced, against the unmodified network."""
    ablation = results["ablation"]
    rows = [[r["site"], _percent(r["acc_mean_gate"]), _points(r["delta_mean_gate"]),
             _percent(r["acc_no_gate"]), _points(r["delta_no_gate"])] for r in ablation["sites"]]
    scale = f", object scale x{float(ablation['scale']):g}" if float(ablation["scale"]) != 1.0 else ""
    table = Table(title=f"Ablation: top-1 on {int(ablation['images']):,} images{scale}: unmodified "
                        f"{_percent(ablation['accuracy'])}%",
                  columns=["site", "acc mean gate (%)", "change (pp)", "acc no gate (%)", "change (pp)"], rows=rows)
    table.notes.append("mean gate: this site's gate replaced by its class-agnostic mean (per channel, the mean of "
                       "the per-class means); no gate: replaced by 1 (SK: 1/M, the paths averaged); "
                       "every other site as trained; top-1 over all the model's outputs; pp = percentage points")
    table.notes += _ablation_time(results)
    return table


def _ablation_time(results: dict[str, Any]) -> list[str]:
    """How long the ablation took, for the passes it made: those of the run that computed the
    statistics, which a re-plot of some of its sites (``--from-stats --sites``) did not make."""
    meta = results.get("meta") or {}
    seconds, ran = meta.get("ablation_seconds"), meta.get("ablation_sites")
    shown = len(results["ablation"]["sites"])
    if seconds is None:
        return []
    if ran is None:  # a summary written before the count was kept
        if not results.get("computed", True):
            return [f"the ablation took {seconds:.1f} s in the run that computed these statistics"]
        ran = shown
    note = (f"{1 + 2 * int(ran)} forward passes per image ({ran} sites, 2 passes each, + 1 unmodified) in "
            f"{seconds:.1f} s")
    if not results.get("computed", True):
        note = f"the run that computed these statistics: {note}"
    if shown != ran:
        note += f"; {shown} of its {ran} sites shown here"
    return [note]
