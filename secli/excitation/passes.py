"""The model, the images and the passes over them, for ``visualize_excitation``.

Kept apart from ``workflow`` (which checks the request and writes the outputs) so each stays
short; importing this module imports nothing heavy either: torch comes with the calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from secli.blocks.spec import BlockSpec
from secli.data.folders import ImageFolderData, make_loader
from secli.data.preprocess import weight_categories
from secli.data.sources import choose_preprocess, open_data
from secli.excitation.ablate import ablate_sites, class_agnostic_gate
from secli.excitation.collect import collect_excitation
from secli.excitation.sampling import sample_per_class
from secli.networks.models import ModelRef, load_model, looks_like_file
from secli.networks.sites import get_module
from secli.util.errors import SecliUsageError

if TYPE_CHECKING:
    from secli.blocks.spec import BlockSpec
    from secli.data.preprocess import Preprocess
    from secli.data.sources import LabelledData
    from secli.excitation.ablate import Ablation
    from secli.excitation.result import ExcitationResult
    from secli.networks.models import BuiltModel
    from secli.networks.sites import Site

#: ``progress(done, total, what)``: images done so far on this rank, its share, what is running.
ProgressCallback = Callable[[int, int, str], None]


def load_analysed_model(model: ModelRef, block: BlockSpec | None, weights: str | None, num_classes: int | None,
                        seed: int, model_kwargs: str | dict[str, Any] | None = None,
                        trust_code: bool = False) -> BuiltModel:
    """A checkpoint as saved, or a network (a name, a factory, an ``nn.Module``) with ``block``
    injected (seeded initialisation)."""
    import torch


    if not isinstance(model, nn.Module) and looks_like_file(model):
        if block is not None and block.kind != "none":
            raise SecliUsageError(f"{model} is a saved model; --block applies to architecture names only")
        for given, option in ((weights, "--weights"), (num_classes, "--num-classes"), (model_kwargs, "--model-kwargs")):
            if given is not None:
                raise SecliUsageError(f"{model} is a saved model; {option} applies to architecture names only")
        return load_model(model, trust_code=trust_code)
    torch.manual_seed(seed)  # blocks injected here start from a reproducible initialisation
    return load_model(model, block or BlockSpec(kind="none"), weights, num_classes, model_kwargs)


def names(value: str | Sequence[str] | None) -> list[str] | None:
    """A list of names from a list or a comma-separated string (as the command line gives it)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v) for v in value]


def model_classes(built: BuiltModel) -> list[str] | None:
    """The names of the model's outputs, in order: a secli checkpoint's, else its weights'."""
    return list(built.meta.get("classes") or []) or weight_categories(built.spec.arch, built.spec.weights)


def open_images(built: BuiltModel, data: str, classes: str | Sequence[str] | None, per_class: int | None,
                seed: int, image_size: int | None) -> tuple[LabelledData, Preprocess, dict[str, int]]:
    """The labelled images for ``built``, preprocessed as the model expects (its checkpoint's
    own preprocessing, else synthetic's, else its weights', else ImageNet defaults), and the
    classes that had fewer images than ``per_class`` (all of theirs taken)."""
    arch, arch_weights = built.spec.arch, built.spec.weights
    pre = choose_preprocess(data, arch, arch_weights, image_size, built.meta, built.info.default_input)
    categories = model_classes(built)
    if not Path(data).is_dir():  # a generated set: it makes per_class images of every class
        return open_data(data, pre, names(classes), per_class, seed, categories), pre, {}
    labelled = open_data(data, pre, names(classes), None, seed, categories)

    assert isinstance(labelled.dataset, ImageFolderData)  # a folder: open_data read it as one
    targets = labelled.dataset.targets
    labelled.indices, short = sample_per_class(targets, labelled.indices, labelled.selected,
                                               labelled.class_names, per_class, seed)
    return labelled, pre, short


def _loader(labelled: LabelledData, batch_size: int, workers: int, dev: str, rank: int, world: int) -> Any:
    return make_loader(labelled.dataset, labelled.indices, batch_size, workers, rank=rank, world_size=world,
                       pin_memory=dev.startswith("cuda"))


def _advance(progress: ProgressCallback | None, total: int, what: str) -> Callable[[int], None] | None:
    """A per-batch ``advance(n)`` that reports ``progress(done, total, what)``."""
    if progress is None:
        return None
    done = 0
    progress(0, total, what)

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(done, total, what)

    return advance


def run_pass(built: BuiltModel, sites: list[Site], labelled: LabelledData, scales: list[float], batch_size: int,
             workers: int, bins: int, dev: str, rank: int, world: int, save_raw: bool,
             progress: ProgressCallback | None) -> ExcitationResult:
    """This rank's shard of the images through the model, with progress as (done, total, what)."""
    class_names = [labelled.class_names[c] for c in labelled.selected]
    positions = {c: i for i, c in enumerate(labelled.selected)}
    built.model.to(dev)
    advance = _advance(progress, len(labelled.indices[rank::world]), f"excitation of {built.label}")
    return collect_excitation(built.model, sites, _loader(labelled, batch_size, workers, dev, rank, world),
                              class_names, positions, scales, dev, bins, advance, keep_raw=save_raw)


def output_targets(built: BuiltModel, labelled: LabelledData) -> dict[int, int]:
    """Each analysed data label -> the model's output index for the same class, or a one-line
    refusal: accuracy means nothing when the outputs are not the data's classes."""
    outputs = model_classes(built)
    if not outputs:
        raise SecliUsageError(f"--ablate needs the names of {built.label}'s outputs to score its answers; "
                              "use a checkpoint from secli train (it keeps them) or torchvision weights")
    index = {name: i for i, name in enumerate(outputs)}
    targets: dict[int, int] = {}
    for c in labelled.selected:
        name = labelled.class_names[c]
        if name not in index:
            raise SecliUsageError(f"--ablate: the model has no output for class {name!r} of the data "
                                  f"(its {len(outputs)} classes: "
                                  f"{', '.join(outputs[:10])}{', ...' if len(outputs) > 10 else ''})")
        targets[c] = index[name]
    return targets


def run_ablation(built: BuiltModel, sites: list[Site], labelled: LabelledData, stats: ExcitationResult,
                 targets: dict[int, int], batch_size: int, workers: int, dev: str, rank: int, world: int,
                 progress: ProgressCallback | None) -> Ablation:
    """Accuracy with each site's gate replaced, at the first scale analysed (see ``ablate``)."""
    scale = stats.scales[0]
    gates = [(s.name, get_module(built.model, s.gate_path or ""), class_agnostic_gate(stats.mean(s.name, scale)))
             for s in sites]
    advance = _advance(progress, len(labelled.indices[rank::world]), f"ablation of {len(sites)} sites")
    return ablate_sites(built.model, gates, _loader(labelled, batch_size, workers, dev, rank, world), targets,
                        scale, dev, advance)
