"""``visualize_excitation``: the whole of ``secli visualize-excitation`` as one Python call.

The command parses options, calls :func:`visualize_excitation` and renders what it returns;
everything in between (the output folder check, the model, the preprocessing, the images, the
DDP session, the passes, the files and figures) happens here, so a notebook gets exactly what
the command line gets. The model, the images and the passes themselves are in ``passes``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secli.blocks.options import optional_block
from secli.blocks.spec import BlockSpec
from secli.data.classes import resolve_classes
from secli.data.sources import GENERATED
from secli.excitation import passes
from secli.excitation.collect import choose_sites
from secli.excitation.figures import FIGURE_SETS
from secli.excitation.limits import MAX_PLOTTED_CLASSES
from secli.excitation.memory import check_pass_memory
from secli.excitation.passes import ProgressCallback, names
from secli.excitation.plots import write_figures
from secli.excitation.result import ExcitationResult
from secli.excitation.sampling import short_classes_note
from secli.excitation.scales import unique_scales
from secli.networks.models import ModelRef, describe_reference
from secli.util.bounds import BOUNDS
from secli.util.checks import check_bounded, check_image_size, check_number
from secli.util.device import resolve_device
from secli.util.distributed import distributed_session
from secli.util.envelope import envelope
from secli.util.errors import SecliError, SecliUsageError
from secli.util.output_folders import atomic_folder, check_out_folder

COMMAND = "visualize-excitation"

#: Options that only shape a pass over images, with their defaults: refused with ``from_stats``.
PASS_OPTIONS: dict[str, Any] = {
    "per_class": None, "scales": None, "block": None, "weights": None, "num_classes": None, "image_size": None,
    "batch_size": 32, "workers": 0, "seed": 0, "bins": 50, "device": "auto", "ddp": False, "save_raw": False,
    "model_kwargs": None, "trust_code": False,
}
#: Options that only shape the figures: refused when nothing is drawn (``from_stats`` without ``out``).
FIGURE_OPTIONS: dict[str, Any] = {"classes": None, "channels": 50, "svg": False, "force": False, "figures": "default"}

__all__ = ["ExcitationRun", "ProgressCallback", "visualize_excitation"]


@dataclass
class ExcitationRun:
    """What one :func:`visualize_excitation` call computed and wrote.

    ``to_dict()`` is what ``secli visualize-excitation --format json`` prints: the envelope of
    ``secli.util.envelope`` with this call's ``inputs``. Under DDP only rank 0 writes files; the
    other ranks get the same totals in ``stats`` and no ``files``.
    """

    stats: ExcitationResult
    out: Path | None  # None: scores printed from saved statistics, nothing drawn
    files: list[Path]
    computed: bool  # False when read from saved statistics (from_stats)
    source: str  # the model's label, or "statistics in DIR"
    plotted_classes: list[int] | None = None  # class indices in the figures; None: all
    capped: bool = False  # more classes than MAX_PLOTTED_CLASSES and none chosen: the first shown
    rank: int = 0
    inputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # said on stderr too (e.g. short classes)

    @property
    def skipped(self) -> int:
        """Images that could not be read (0 when re-plotted: the warning came with the pass)."""
        return int(self.stats.meta.get("skipped") or 0) if self.computed else 0

    def to_dict(self) -> dict[str, Any]:
        results = {**self.stats.summary(), "computed": self.computed, "source": self.source,
                   "warnings": self.warnings, "capped": self.capped, "out": self.out,
                   "files": [str(p) for p in self.files]}
        return envelope(COMMAND, self.inputs, results)


def visualize_excitation(
    model: ModelRef | None = None,
    *,
    data: str | None = None,
    out: str | Path | None = None,
    classes: str | Sequence[str] | None = None,
    per_class: int | None = None,
    sites: str | Sequence[str] | None = None,
    scales: Sequence[float] | None = None,
    block: BlockSpec | str | None = None,
    weights: str | None = None,
    num_classes: int | None = None,
    image_size: int | None = None,
    batch_size: int = 32,
    workers: int = 0,
    seed: int = 0,
    bins: int = 50,
    channels: int = 50,
    device: str = "auto",
    ddp: bool = False,
    save_raw: bool = False,
    svg: bool = False,
    figures: str = "default",
    force: bool = False,
    ablate: bool = False,
    from_stats: str | Path | None = None,
    progress: ProgressCallback | None = None,
    model_kwargs: str | dict[str, Any] | None = None,
    trust_code: bool = False,
    **block_options: Any,
) -> ExcitationRun:
    """Per-class excitation statistics of SE/SK sites: scores, Fig. 6/7-style plots, SK vs scale.

    model: a secli checkpoint, or a network with ``block`` (or with attention modules of its own,
        such as ``mobilenet_v3_small``): a name, a factory (``file.py:build``, called with
        ``model_kwargs``) or a ``torch.nn.Module`` (a copy is analysed). A checkpoint made from a
        factory imports it only with ``trust_code``. Leave it and ``data`` out with ``from_stats``.
    data: an ImageFolder root (``root/<class>/<image>``) or ``"synthetic"``.
    out: the folder for figures, ``stats.npz`` and ``summary.json``; required unless
        ``from_stats`` (then without it the saved scores are only returned). A folder that
        exists and is not empty is refused unless ``force``.
    classes: class names or indices (a list, or a comma-separated string); default all.
        With ``from_stats`` they choose the classes plotted.
    per_class: images per class, sampled with ``seed``; default all (synthetic: 50 generated).
        A class with fewer images is taken whole and named in ``warnings``.
    sites: site names such as ``SE_2_3`` (a list or a comma-separated string); default all.
    scales: object scales for SKNet's test (centre crop 1/s, resized back), each >= 1; default (1.0,).
    block, block_options: the block to inject into an architecture: a kind such as "se" with
        ``BlockSpec`` fields over the paper's defaults (``ratio=8``), or a whole ``BlockSpec``;
        None or kind ``none`` analyses the SE modules a network already has. Not for checkpoints.
    weights, num_classes: base weights and classifier width of an architecture.
    image_size: input size; default the checkpoint's, the weights' transforms, or 48 for synthetic.
    batch_size, workers: images per forward pass, data loader worker processes.
    seed: ``per_class`` sampling, synthetic images and the initialisation of injected blocks.
    bins: histogram bins over the gate's range. channels: channels shown per curve.
    device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``.
    ddp: under torchrun each rank takes a shard and the sums are all-reduced; rank 0 writes.
    save_raw: also keep every image's gate vectors in ``raw.npz``. svg: also write SVG figures.
    ablate: per site, top-1 accuracy on the analysed images with its gate replaced by the
        class-agnostic mean gate and by no gate (see ``secli.excitation.ablate``); needs a
        model whose outputs are named (a ``secli train`` checkpoint, torchvision weights).
    from_stats: the statistics saved in this folder (no network): re-plotted into ``out``, or
        with no ``out`` only read back for their scores and ablation.
    progress: called as ``progress(done, total, what)`` on rank 0 while images are analysed.

    Raises ``SecliUsageError`` (a mistake in the request) or ``SecliError`` (a run that failed).
    """
    block = optional_block(block, block_options)
    request = {k: v for k, v in locals().items() if k != "block_options"}
    inputs = _inputs(request)

    if figures not in FIGURE_SETS:
        raise SecliUsageError(f"--figures must be one of {', '.join(FIGURE_SETS)}, not {figures!r}")
    if from_stats is not None:
        return _from_stats(Path(from_stats), request, inputs)
    if out is None:
        raise SecliUsageError("say where to write figures and statistics with --out DIR")
    _check_values(image_size, batch_size, workers, bins, channels, per_class, scales, num_classes, seed)
    out = Path(out)

    reads = [("the model", model), ("the weights", weights), ("the image folder", None if data in GENERATED else data)]
    check_out_folder(out, force, reads=reads)  # before the slow part
    if model is None:
        raise SecliUsageError("name a model (a secli checkpoint or an architecture), or pass --from-stats DIR")
    if data is None:
        raise SecliUsageError("say which images to use with --data DIR (ImageFolder layout) or --data synthetic")

    scale_list = unique_scales(scales or [1.0])  # repeats dropped, values < 1 and clashing keys refused
    device_obj = resolve_device(device)
    with distributed_session(ddp, device_obj.type, COMMAND) as context:
        rank, world = (context.rank, context.world_size) if context else (0, 1)
        dev = f"cuda:{context.local_rank}" if context and device_obj.type == "cuda" else str(device_obj)
        built = passes.load_analysed_model(model, block, weights, num_classes, seed, model_kwargs, trust_code)
        chosen_sites = choose_sites(built.sites, names(sites), built.label)
        labelled, pre, short = passes.open_images(built, data, classes, per_class, seed, image_size)
        targets = passes.output_targets(built, labelled) if ablate else {}  # refused before the slow part
        check_pass_memory(built, chosen_sites, len(labelled.selected), len(scale_list), bins, len(labelled.indices),
                          save_raw, batch_size, pre.crop, dev)
        report = progress if rank == 0 else None
        stats = passes.run_pass(built, chosen_sites, labelled, scale_list, batch_size, workers, bins, dev, rank,
                                world, save_raw, report)
        stats.meta.update({"model": built.label, "data": data, "class_names_from": labelled.names_from,
                           "preprocess": f"{pre.crop} px, {pre.source}", "seed": seed, "per_class": per_class,
                           "short_classes": short})
        stats.inputs = inputs
        if stats.meta["images"] == 0:  # a total over the ranks: every rank stops
            raise SecliError(f"no image in {data} could be read ({stats.meta['skipped']} skipped)")
        if ablate:
            start = time.perf_counter()
            stats.ablation = passes.run_ablation(built, chosen_sites, labelled, stats, targets, batch_size, workers,
                                                 dev, rank, world, report)
            stats.meta["ablation_seconds"] = time.perf_counter() - start
            stats.meta["ablation_sites"] = len(chosen_sites)  # what the time was for, whatever a re-plot shows
        warnings = [_short_note(per_class, short)] if short else []
        if rank != 0:
            return ExcitationRun(stats, out, [], computed=True, source=built.label, rank=rank, inputs=inputs,
                                 warnings=warnings)
        run = write_outputs(stats, out, None, None, svg, channels, computed=True, source=built.label, force=force,
                            figures=figures)
        run.inputs, run.warnings = inputs, warnings
        return run


def _inputs(request: dict[str, Any]) -> dict[str, Any]:
    """The call's options as plain, typed data (the envelope's ``inputs``)."""
    values = {k: v for k, v in request.items() if k != "progress"}
    values["model"] = describe_reference(values["model"])
    for key, default in (("model_kwargs", None), ("trust_code", False)):  # recorded where given
        if values.get(key) == default:
            values.pop(key, None)
    for key in ("classes", "sites"):
        values[key] = names(values[key])
    if values["scales"] is not None:
        values["scales"] = [float(s) for s in values["scales"]]
    block = values["block"]
    if block is not None and not isinstance(block, str):  # a BlockSpec: the fields it sets
        from dataclasses import asdict

        values["block"] = {k: v for k, v in asdict(block).items() if v is not None}
    for key in ("out", "from_stats"):
        values[key] = None if values[key] is None else str(values[key])
    return values


def _from_stats(folder: Path, request: dict[str, Any], inputs: dict[str, Any]) -> ExcitationRun:
    """Saved statistics: re-plotted into ``out``, or, without ``out``, only read back."""
    if request["model"] is not None or request["data"] is not None:
        raise SecliUsageError("--from-stats reads saved statistics; give no model and no --data")
    given = [k for k, default in PASS_OPTIONS.items() if request[k] != default]
    if request["out"] is None:
        given += [k for k, default in FIGURE_OPTIONS.items() if request[k] != default]
    if given:
        why = "computing statistics" if given[0] in PASS_OPTIONS else "drawing figures (add --out DIR)"
        raise SecliUsageError(f"--{given[0].replace('_', '-')} does not apply to --from-stats: it is for {why}")
    _check_values(None, 32, 0, 50, request["channels"], None, None, None, 0)
    out = None if request["out"] is None else Path(request["out"])
    if out is not None:  # never the statistics re-plotted, a folder holding them or one inside them
        check_out_folder(out, request["force"], reads=[("the statistics folder", folder)])
    stats = ExcitationResult.load(folder)
    if request["ablate"] and stats.ablation is None:
        raise SecliUsageError(f"the statistics in {folder} hold no ablation; run the model again with --ablate")
    source = f"statistics in {folder}"
    if out is None:
        if request["sites"]:
            stats.keep_sites(names(request["sites"]) or [])
        return ExcitationRun(stats, None, [], computed=False, source=source, inputs=inputs)
    run = write_outputs(stats, out, request["classes"], request["sites"], request["svg"], request["channels"],
                        computed=False, source=source, force=request["force"], figures=request["figures"])
    run.inputs = inputs
    return run


def _short_note(per_class: int | None, short: dict[str, int]) -> str:
    return short_classes_note(int(per_class or 0), short)


def _check_values(image_size: Any, batch_size: Any, workers: Any, bins: Any, channels: Any, per_class: Any,
                  scales: Any, num_classes: Any, seed: Any) -> None:
    """Every number the request gives, before anything runs (ranges: ``secli.util.bounds``)."""
    check_image_size("--image-size", image_size)
    for name, value in (("--batch-size", batch_size), ("--workers", workers), ("--bins", bins),
                        ("--channels", channels), ("--seed", seed)):
        check_bounded(name, value)
    if per_class is not None:
        check_bounded("--per-class", per_class)
    if num_classes is not None:
        check_bounded("--num-classes", num_classes)
    if scales is not None and len(scales) > BOUNDS["scales"].high:
        raise SecliUsageError(f"--scales lists {len(scales):,} scales; at most {BOUNDS['scales'].high:,}")
    for scale in scales or []:
        check_number("--scales", scale, None, BOUNDS["scale"].high)  # >= 1 is checked by unique_scales, in its words


def write_outputs(stats: ExcitationResult, out: Path, classes: str | Sequence[str] | None,
                  sites: str | Sequence[str] | None, svg: bool, channels: int, computed: bool,
                  source: str, force: bool = False, figures: str = "default") -> ExcitationRun:
    """Write the statistics (when computed here) and the figures into ``out``.

    ``sites`` keeps only those sites (statistics re-plotted); ``classes`` chooses the classes
    plotted, else the first ``MAX_PLOTTED_CLASSES``. Everything is written into a sibling
    temporary folder that replaces ``out`` whole at the end (an old ``out`` only with ``force``).
    """
    if sites:
        stats.keep_sites(names(sites) or [])
    plot_classes = resolve_classes(names(classes), stats.class_names) if classes else None
    capped = False
    if plot_classes is None and len(stats.class_names) > MAX_PLOTTED_CLASSES:
        plot_classes, capped = list(range(MAX_PLOTTED_CLASSES)), True

    with atomic_folder(out, force) as tmp:  # built beside ``out``, renamed into place whole
        written = stats.save(tmp, force=True) if computed else []
        written += write_figures(stats, tmp, plot_classes, svg=svg, force=True, max_channels=channels, figures=figures)
    written = [out / path.relative_to(tmp) for path in written]
    return ExcitationRun(stats, out, written, computed, source, plot_classes, capped)

