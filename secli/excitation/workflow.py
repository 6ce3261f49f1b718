"""``visualize_excitation``: the whole of ``secli visualize-excitation`` as one Python call.

The command parses options, calls :func:`visualize_excitation` and renders what it returns;
everything in between (the output folder check, the model, the preprocessing, the images, the
DDP session, the pass, the files and figures) happens here, so a notebook gets exactly what the
command line gets.

Heavy modules (torch, matplotlib) are imported inside the functions: importing this module
must stay cheap, because ``secli --help`` and ``secli.api`` import it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secli.util.errors import SecliError, SecliUsageError

if TYPE_CHECKING:
    from secli.build.models import BuiltModel
    from secli.build.sites import Site
    from secli.build.spec import BlockSpec
    from secli.data.preprocess import Preprocess
    from secli.data.sources import LabelledData
    from secli.excitation.result import ExcitationResult

MAX_PLOTTED_CLASSES = 10  # one tab10 colour each; more is unreadable in one legend

#: ``progress(done, total, what)``: images analysed so far on this rank, its share, what is running.
ProgressCallback = Callable[[int, int, str], None]


@dataclass
class ExcitationRun:
    """What one :func:`visualize_excitation` call computed and wrote.

    ``to_dict()`` is what ``secli visualize-excitation --format json`` prints. Under DDP only
    rank 0 writes files; the other ranks get the same totals in ``stats`` and no ``files``.
    """

    stats: ExcitationResult
    out: Path
    files: list[Path]
    computed: bool  # False when re-plotted from saved statistics (from_stats)
    source: str  # the model's label, or "statistics in DIR"
    plotted_classes: list[int] | None = None  # class indices in the figures; None: all
    capped: bool = False  # more classes than MAX_PLOTTED_CLASSES and none chosen: the first shown
    rank: int = 0

    @property
    def skipped(self) -> int:
        """Images that could not be read (0 when re-plotted: the warning came with the pass)."""
        return int(self.stats.meta.get("skipped") or 0) if self.computed else 0

    def to_dict(self) -> dict[str, Any]:
        return {**self.stats.summary(), "files": [str(p) for p in self.files]}


def visualize_excitation(
    model: str | None = None,
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
    from_stats: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> ExcitationRun:
    """Per-class excitation statistics of SE/SK sites: scores, Fig. 6/7-style plots, SK vs scale.

    model: a secli checkpoint, or an architecture with ``block`` (or with built-in SE modules,
        such as ``mobilenet_v3_small``). Leave it and ``data`` out with ``from_stats``.
    data: an ImageFolder root (``root/<class>/<image>``) or ``"synthetic"``.
    out: the folder for figures, ``stats.npz`` and ``summary.json``; required. A folder that
        exists and is not empty is refused unless ``force``.
    classes: class names or indices (a list, or a comma-separated string); default all.
        With ``from_stats`` they choose the classes plotted.
    per_class: images per class, sampled with ``seed``; default all (synthetic: 50 generated).
    sites: site names such as ``SE_2_3`` (a list or a comma-separated string); default all.
    scales: object scales for SKNet's test (centre crop 1/s, resized back), each >= 1; default (1.0,).
    block: the block to inject into an architecture (a ``BlockSpec``, or a kind such as "se"
        with the paper's defaults); None or kind ``none``
        analyses the SE modules a network already has. Not for checkpoints.
    weights, num_classes: base weights and classifier width of an architecture.
    image_size: input size; default the checkpoint's, the weights' transforms, or 48 for synthetic.
    batch_size, workers: images per forward pass, data loader worker processes.
    seed: ``per_class`` sampling, synthetic images and the initialisation of injected blocks.
    bins: histogram bins over the gate's range. channels: channels shown per curve.
    device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``.
    ddp: under torchrun each rank takes a shard and the sums are all-reduced; rank 0 writes.
    save_raw: also keep every image's gate vectors in ``raw.npz``. svg: also write SVG figures.
    figures: ``default`` (whole-run figures: class means, scores by depth, distributions, SK) or
        ``all`` (also two figures per site, slower).
    from_stats: re-plot the statistics saved in this folder (no network).
    progress: called as ``progress(done, total, what)`` on rank 0 while images are analysed.

    Raises ``SecliUsageError`` (a mistake in the request) or ``SecliError`` (a run that failed).
    """
    if out is None:
        raise SecliUsageError("say where to write figures and statistics with --out DIR")
    _check_values(image_size, batch_size, workers, bins, channels, per_class, scales, num_classes)
    from secli.excitation.figures import FIGURE_SETS

    if figures not in FIGURE_SETS:
        raise SecliUsageError(f"--figures must be one of {', '.join(FIGURE_SETS)}, not {figures!r}")
    out = Path(out)
    from secli.util.outputs import check_out_folder

    check_out_folder(out, force)  # before the slow part
    if from_stats is not None:
        from secli.excitation.result import ExcitationResult

        if model is not None or data is not None:
            raise SecliUsageError("--from-stats re-plots saved statistics; give no model and no --data")
        if out.resolve() == Path(from_stats).resolve():
            raise SecliUsageError("--out must differ from --from-stats (--out is replaced whole)")
        stats = ExcitationResult.load(from_stats)
        return write_outputs(stats, out, classes, sites, svg, channels, computed=False,
                             source=f"statistics in {from_stats}", force=force, figures=figures)
    if model is None:
        raise SecliUsageError("name a model (a secli checkpoint or an architecture), or pass --from-stats DIR")
    if data is None:
        raise SecliUsageError("say which images to use with --data DIR (ImageFolder layout) or --data synthetic")
    from secli.build.spec import BlockSpec
    from secli.excitation.collect import choose_sites
    from secli.excitation.scales import unique_scales
    from secli.util.device import resolve_device
    from secli.util.distributed import distributed_session

    scale_list = unique_scales(scales or [1.0])  # repeats dropped, values < 1 and clashing keys refused
    device_obj = resolve_device(device)
    with distributed_session(ddp, device_obj.type, "visualize-excitation") as context:
        rank, world = (context.rank, context.world_size) if context else (0, 1)
        dev = f"cuda:{context.local_rank}" if context and device_obj.type == "cuda" else str(device_obj)
        block_spec = BlockSpec(kind=block) if isinstance(block, str) else block
        built = load_analysed_model(model, block_spec, weights, num_classes, seed)
        chosen_sites = choose_sites(built.sites, _names(sites), built.label)
        labelled, pre = open_images(built, data, classes, per_class, seed, image_size)
        stats = _run_pass(built, chosen_sites, labelled, scale_list, batch_size, workers, bins, dev, rank, world,
                          save_raw, progress if rank == 0 else None)
        stats.meta.update({"model": built.label, "data": data, "class_names_from": labelled.names_from,
                           "preprocess": f"{pre.crop} px, {pre.source}", "seed": seed, "per_class": per_class})
        if rank != 0:
            return ExcitationRun(stats, out, [], computed=True, source=built.label, rank=rank)
        if stats.meta["images"] == 0:
            raise SecliError(f"no image in {data} could be read ({stats.meta['skipped']} skipped)")
        return write_outputs(stats, out, None, None, svg, channels, computed=True, source=built.label,
                             force=force, figures=figures)


def _check_values(image_size: Any, batch_size: Any, workers: Any, bins: Any, channels: Any, per_class: Any,
                  scales: Any, num_classes: Any) -> None:
    """Every number the request gives, before anything runs."""
    from secli.util.checks import check_image_size, check_int, check_number

    check_image_size("--image-size", image_size)
    check_int("--batch-size", batch_size, 1, 1_000_000)
    check_int("--workers", workers, 0, 1024)
    check_int("--bins", bins, 2, 10_000)
    check_int("--channels", channels, 1, 1_000_000)
    if per_class is not None:
        check_int("--per-class", per_class, 1)
    if num_classes is not None:
        check_int("--num-classes", num_classes, 1, 1_000_000)
    for scale in scales or []:
        check_number("--scales", scale, None, 16.0)  # >= 1 is checked by unique_scales, in its words


def load_analysed_model(model: str, block: BlockSpec | None, weights: str | None, num_classes: int | None,
                        seed: int) -> BuiltModel:
    """A checkpoint as saved, or an architecture with ``block`` injected (seeded initialisation)."""
    import torch

    from secli.build.models import build, load_model, looks_like_file
    from secli.build.spec import BlockSpec, ModelSpec

    if looks_like_file(model):
        if block is not None and block.kind != "none":
            raise SecliUsageError(f"{model} is a saved model; --block applies to architecture names only")
        return load_model(model)
    spec = ModelSpec(arch=model, block=block or BlockSpec(kind="none"), weights=weights, num_classes=num_classes)
    torch.manual_seed(seed)  # blocks injected here start from a reproducible initialisation
    return build(spec)


def _names(value: str | Sequence[str] | None) -> list[str] | None:
    """A list of names from a list or a comma-separated string (as the command line gives it)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v) for v in value]


def open_images(built: BuiltModel, data: str, classes: str | Sequence[str] | None, per_class: int | None,
                seed: int, image_size: int | None) -> tuple[LabelledData, Preprocess]:
    """The labelled images for ``built``, preprocessed as the model expects (its checkpoint's
    own preprocessing, else synthetic's, else its weights', else ImageNet defaults)."""
    from secli.data.preprocess import weight_categories
    from secli.data.sources import choose_preprocess, open_data

    meta = built.meta
    arch, arch_weights = built.spec.arch, built.spec.weights
    pre = choose_preprocess(data, arch, arch_weights, image_size, meta, built.info.default_input)
    categories = list(meta.get("classes") or []) or weight_categories(arch, arch_weights)
    return open_data(data, pre, _names(classes), per_class, seed, categories), pre


def _run_pass(built: BuiltModel, sites: list[Site], labelled: LabelledData, scales: list[float], batch_size: int,
              workers: int, bins: int, dev: str, rank: int, world: int, save_raw: bool,
              progress: ProgressCallback | None) -> ExcitationResult:
    """This rank's shard of the images through the model, with progress as (done, total, what)."""
    from secli.data.folders import make_loader
    from secli.excitation.collect import collect_excitation

    names = [labelled.class_names[c] for c in labelled.selected]
    positions = {c: i for i, c in enumerate(labelled.selected)}
    loader = make_loader(labelled.dataset, labelled.indices, batch_size, workers, rank=rank, world_size=world,
                         pin_memory=dev.startswith("cuda"))
    built.model.to(dev)
    advance = None
    if progress is not None:
        total, what, done = len(labelled.indices[rank::world]), f"excitation of {built.label}", 0
        progress(0, total, what)

        def advance(n: int) -> None:
            nonlocal done
            done += n
            progress(done, total, what)

    return collect_excitation(built.model, sites, loader, names, positions, scales, dev, bins, advance,
                              keep_raw=save_raw)


def write_outputs(stats: ExcitationResult, out: Path, classes: str | Sequence[str] | None,
                  sites: str | Sequence[str] | None, svg: bool, channels: int, computed: bool,
                  source: str, force: bool = False, figures: str = "default") -> ExcitationRun:
    """Write the statistics (when computed here) and the figures into ``out``.

    ``sites`` keeps only those sites (statistics re-plotted); ``classes`` chooses the classes
    plotted, else the first ``MAX_PLOTTED_CLASSES``. Everything is written into a sibling
    temporary folder that replaces ``out`` whole at the end (an old ``out`` only with ``force``).
    """
    from secli.data.classes import resolve_classes
    from secli.excitation.plots import write_figures

    if sites:
        wanted = _names(sites) or []
        for name in wanted:
            stats.site(name)  # unknown names list the valid ones
        stats.sites = [s for s in stats.sites if s.name in wanted]
    plot_classes = resolve_classes(_names(classes), stats.class_names) if classes else None
    capped = False
    if plot_classes is None and len(stats.class_names) > MAX_PLOTTED_CLASSES:
        plot_classes, capped = list(range(MAX_PLOTTED_CLASSES)), True
    from secli.util.outputs import atomic_folder

    with atomic_folder(out, force) as tmp:  # built beside ``out``, renamed into place whole
        written = stats.save(tmp, force=True) if computed else []
        written += write_figures(stats, tmp, plot_classes, svg=svg, force=True, max_channels=channels, figures=figures)
    written = [out / path.relative_to(tmp) for path in written]
    return ExcitationRun(stats, out, written, computed, source, plot_classes, capped)
