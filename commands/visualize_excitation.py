"""``secli visualize-excitation``: class-wise excitation statistics and figures (SE Fig. 6/7, SK)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from commands import options as opt
from commands.common import handle_errors, parse_number_list, parse_str_list, stderr
from commands.render import Table, emit

DATA_PANEL = "Data"
OUT_PANEL = "Output"
MAX_PLOTTED_CLASSES = 10  # one tab10 colour each; more is unreadable in one legend


def _check_out_dir(out: Path, force: bool) -> None:
    from secli.util.errors import SecliError

    if out.exists() and not out.is_dir():
        raise SecliError(f"--out {out} is a file, not a folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise SecliError(f"output folder {out} exists and is not empty", hint="pass --force to write into it")


def _parse_scales(text: str | None) -> list[float]:
    from secli.excitation.scales import unique_scales

    values = parse_number_list(text, "--scales", float) or [1.0]
    return unique_scales(values)  # repeats dropped, values < 1 and clashing keys refused


@handle_errors
def visualize_excitation_command(
    model: Annotated[Optional[str], typer.Argument(help="secli checkpoint, or an architecture (with --block or built-in SE modules).", show_default=False)] = None,
    data: Annotated[Optional[str], typer.Option("--data", help="ImageFolder root (root/<class>/<image>) or 'synthetic'.", rich_help_panel=DATA_PANEL)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for figures, stats.npz and summary.json.", rich_help_panel=OUT_PANEL)] = None,
    classes: Annotated[Optional[str], typer.Option("--classes", help="Comma list of class names (or indices); default all.", rich_help_panel=DATA_PANEL)] = None,
    per_class: Annotated[Optional[int], typer.Option("--per-class", help="Images per class, sampled with --seed (synthetic: generated). Default all (synthetic: 50).", rich_help_panel=DATA_PANEL)] = None,
    sites: Annotated[Optional[str], typer.Option("--sites", help="Comma list of sites (e.g. SE_2_3,SE_5_2); default all.")] = None,
    scales: Annotated[Optional[str], typer.Option("--scales", help="Object scales for the SK test, e.g. 1.0,1.5,2.0 (centre crop 1/s, resize back).")] = None,
    block: opt.Block = None,
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
    from secli.util.errors import SecliUsageError

    if out is None:
        raise SecliUsageError("say where to write figures and statistics with --out DIR")
    _check_out_dir(out, force)
    if from_stats is not None:
        from secli.excitation.result import ExcitationResult

        if model is not None or data is not None:
            raise SecliUsageError("--from-stats re-plots saved statistics; give no model and no --data")
        result = ExcitationResult.load(from_stats)
        _finish(result, out, classes, sites, svg, force, channels, fmt.value, save_stats=False,
                source=f"statistics in {from_stats}")
        return
    if model is None:
        raise SecliUsageError("name a model (a secli checkpoint or an architecture), or pass --from-stats DIR")
    if data is None:
        raise SecliUsageError("say which images to use with --data DIR (ImageFolder layout) or --data synthetic")
    scale_list = _parse_scales(scales)

    from secli.util.device import resolve_device
    from secli.util.distributed import distributed_session

    device_obj = resolve_device(device)
    dev = str(device_obj)
    with distributed_session(ddp, device_obj.type, "visualize-excitation") as context:
        rank, world = (context.rank, context.world_size) if context else (0, 1)
        if context and device_obj.type == "cuda":
            dev = f"cuda:{context.local_rank}"
        _run_and_report(model, data, out, classes, per_class, sites, scale_list, block, weights, num_classes,
                        image_size, batch_size, workers, seed, bins, channels, dev, rank, world, save_raw, svg,
                        force, fmt.value)


def _run_and_report(model: str, data: str, out: Path, classes: str | None, per_class: int | None, sites: str | None,
                    scale_list: list[float], block: str | None, weights: str | None, num_classes: int | None,
                    image_size: int | None, batch_size: int, workers: int, seed: int, bins: int, channels: int,
                    dev: str, rank: int, world: int, save_raw: bool, svg: bool, force: bool, fmt: str) -> None:
    """Load the model and data, run the pass, and (on rank 0) write and print the results."""
    from secli.data.folders import make_loader
    from secli.data.preprocess import weight_categories
    from secli.data.sources import choose_preprocess, open_data
    from secli.util.errors import SecliUsageError
    from secli.excitation.collect import choose_sites, collect_excitation
    from secli.build.models import build, load_model, looks_like_file

    quiet = fmt == "json"
    if looks_like_file(model):
        if block not in (None, "none"):
            raise SecliUsageError(f"{model} is a saved model; --block applies to architecture names only")
        built = load_model(model)
    else:
        spec = opt.model_spec_from_options(model, None, weights, num_classes, default_kind="none", block=block)
        import torch

        torch.manual_seed(seed)  # blocks injected here start from a reproducible initialisation
        built = build(spec)
    chosen_sites = choose_sites(built.sites, parse_str_list(sites), built.label)
    meta = built.meta
    arch, arch_weights = built.spec.arch, built.spec.weights
    pre = choose_preprocess(data, arch, arch_weights, image_size, meta, built.info.default_input)
    categories = list(meta.get("classes") or []) or weight_categories(arch, arch_weights)
    labelled = open_data(data, pre, parse_str_list(classes), per_class, seed, categories)
    names = [labelled.class_names[c] for c in labelled.selected]
    positions = {c: i for i, c in enumerate(labelled.selected)}
    loader = make_loader(labelled.dataset, labelled.indices, batch_size, workers, rank=rank, world_size=world,
                         pin_memory=dev.startswith("cuda"))
    n_images = len(labelled.indices[rank::world])
    built.model.to(dev)
    from commands.progress import progress_bar

    with progress_bar(f"excitation of {built.label}", n_images, enabled=not quiet and rank == 0, unit="images") as bar:
        result = collect_excitation(built.model, chosen_sites, loader, names, positions, scale_list, dev, bins, bar.advance,
                                     keep_raw=save_raw)
    result.meta.update({"model": built.label, "data": data, "class_names_from": labelled.names_from,
                        "preprocess": f"{pre.crop} px, {pre.source}", "seed": seed, "per_class": per_class})
    if rank != 0:
        return
    skipped = result.meta["skipped"]
    if skipped and not quiet:
        stderr.print(f"[yellow]warning:[/] skipped {skipped} unreadable images", highlight=False)
    if result.meta["images"] == 0:
        from secli.util.errors import SecliError

        raise SecliError(f"no image in {data} could be read ({skipped} skipped)")
    _finish(result, out, None, None, svg, force, channels, fmt, save_stats=True, source=built.label)


def _finish(result: Any, out: Path, classes: str | None, sites: str | None, svg: bool, force: bool,
            channels: int, fmt: str, save_stats: bool, source: str) -> None:
    """Write stats (when computed here) and figures; print the score table."""
    from secli.data.classes import resolve_classes
    from secli.excitation.plots import write_figures

    if sites:
        wanted = parse_str_list(sites) or []
        for name in wanted:
            result.site(name)  # unknown names list the valid ones
        result.sites = [s for s in result.sites if s.name in wanted]
    plot_classes = resolve_classes(parse_str_list(classes), result.class_names) if classes else None
    capped = False
    if plot_classes is None and len(result.class_names) > MAX_PLOTTED_CLASSES:
        plot_classes, capped = list(range(MAX_PLOTTED_CLASSES)), True
    out.mkdir(parents=True, exist_ok=True)
    written = result.save(out, force=True) if save_stats else []
    written += write_figures(result, out, plot_classes, svg=svg, force=True, max_channels=channels)
    rows = []
    scale_keys = [result.scale_key(s) for s in result.scales]
    has_sk = any(s.paths >= 2 for s in result.sites)
    for row in result.scores():
        cells = [row["site"], row["channels"], row["specificity"], row["chance"], row["saturation"], row["mean_gate"]]
        if has_sk:
            cells += [row.get("sk_difference", {}).get(k) for k in scale_keys]
        rows.append(cells)
    columns = ["site", "C", "specificity", "chance", "saturation", "mean gate"]
    if has_sk:
        columns += [f"SK diff {k}" for k in scale_keys]
    meta = result.meta
    table = Table(title=f"Excitation of {meta.get('model', source)}: {int(result.counts().sum())} images, "
                        f"{len(result.class_names)} classes", columns=columns, rows=rows)
    table.notes.append("specificity = between-class / total sum of squares of the gate vectors (eta^2); "
                       "chance = its value for random labels, (K-1)/(N-1)")
    table.notes.append("saturation = fraction of gate values > 0.95" +
                       ("; SK diff = mean attention, largest-kernel path minus 3x3 path, per object scale" if has_sk else ""))
    if meta.get("class_names_from"):
        table.notes.append(f"class names from {meta['class_names_from']}; preprocessing {meta.get('preprocess')}")
    if meta.get("images_per_second") and save_stats:
        ranks = f" over {meta['ranks']} ranks" if meta.get("ranks", 1) > 1 else ""
        table.notes.append(f"{meta['images']} images in {meta['seconds']:.1f} s: {meta['images_per_second']:.1f} images/s{ranks}")
    if meta.get("skipped"):
        table.notes.append(f"skipped {meta['skipped']} unreadable images")
    if capped:
        table.notes.append(f"figures show the first {MAX_PLOTTED_CLASSES} of {len(result.class_names)} classes; choose with --classes")
    table.notes.append(f"wrote {len(written)} files to {out}")
    payload = {**result.summary(), "files": [str(p) for p in written]}
    emit(fmt, [table], payload)
