"""``train``: the whole of ``secli train`` as one Python call.

The command parses options, calls :func:`train` and renders what it returns; everything in
between (which model, which images, a new classifier for pretrained weights, the loop, the
checkpoint) happens here, so a notebook gets exactly what the command line gets.

Heavy modules (torch, torchvision) are imported inside the functions: importing this module
must stay cheap, because ``secli --help`` and ``secli.api`` import it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from secli.blocks.options import BlockOptions, resolve_model_spec
from secli.blocks.spec import BlockSpec
from secli.data.classes import split_indices
from secli.data.folders import ImageFolderData, make_loader
from secli.data.sources import GENERATED, choose_preprocess, generated_set
from secli.networks.architectures import arch_info
from secli.networks.builders import DEFAULT_INPUT, object_info
from secli.networks.checkpoint import save_checkpoint
from secli.networks.models import ModelRef, build, describe_reference, load_model, looks_like_file, with_kwargs
from secli.networks.references import is_factory, load_factory, parse_factory, takes_keyword
from secli.training.batches import check_batch_size, smallest_batch, train_loader
from secli.training.heads import check_head, replace_head
from secli.training.loop import TrainConfig, train_model
from secli.training.run import TrainRun, run_inputs
from secli.training.values import check_train_values, check_trained
from secli.util.device import resolve_device
from secli.util.errors import SecliUsageError
from secli.util.memory import activation_bytes, check_fits
from secli.util.outputs import check_writable

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from secli.blocks.spec import BlockSpec, ModelSpec
    from secli.data.preprocess import Preprocess
    from secli.networks.models import BuiltModel
    from secli.training.loop import EpochResult, TrainConfig, TrainResult

__all__ = ["TrainRun", "train"]

#: ``progress(done, total, what)``: images trained so far, images in all epochs, what is running.
ProgressCallback = Callable[[int, int, str], None]


@dataclass
class TrainingData:
    """The training and validation images of one run, with the class names."""

    train_set: Dataset
    val_set: Dataset | None
    train_idx: list[int]
    val_idx: list[int]
    class_names: list[str]


def train(
    model: ModelRef | None = None,
    *,
    data: str = "synthetic",
    out: str | Path | None = None,
    block: BlockSpec | str | None = None,
    weights: str | None = None,
    num_classes: int | None = None,
    spec: str | Path | ModelSpec | None = None,
    epochs: int = 5,
    batch_size: int = 32,
    optimizer: str = "sgd",
    lr: float | None = None,
    weight_decay: float | None = None,
    image_size: int | None = None,
    train_size: int = 1500,
    val_size: int = 500,
    val_fraction: float = 0.2,
    workers: int = 0,
    seed: int = 0,
    device: str = "auto",
    no_amp: bool = False,
    force: bool = False,
    progress: ProgressCallback | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    model_kwargs: str | dict[str, Any] | None = None,
    trust_code: bool = False,
    **block_options: Any,
) -> TrainRun:
    """Train a network with SE/SK blocks (SGD or AdamW, cosine schedule) and save a checkpoint.

    model: an architecture name (``resnet18``), a factory (``file.py:build``, ``pkg.mod:build``,
        called with ``model_kwargs`` and, where it takes one, ``num_classes``), a ``torch.nn.Module``
        (a copy is trained; its head is used as it is), or a secli checkpoint to train further
        (then ``block``, ``weights``, ``num_classes`` and ``spec`` must not be given: the checkpoint
        says what the model is; one made from a factory imports it only with ``trust_code``).
        None takes the architecture from ``spec``.
    data: ``"synthetic"`` or ``"synthetic-parts"`` (built in: ``train_size`` + ``val_size`` images
        of 10 classes) or an ImageFolder root (``root/<class>/<image>``; ``val_fraction`` held out).
    out: where to save the trained model (a secli checkpoint, as ``inject --out`` writes);
        required, and an existing file is refused unless ``force``. Checked before the slow part.
    block, block_options: a kind (``"se"``) and ``BlockSpec`` fields (``ratio=8``) that override
        the block of ``spec`` field by field (the command line's ``--ratio`` over a YAML file's
        ratio), or a whole ``BlockSpec``. None: the spec's block, or SE with the paper's defaults.
    weights, num_classes: base weights (a local state-dict file or a torchvision name) and the
        classifier width. Without ``num_classes`` the head matches the data: pretrained weights
        keep their body and get a fresh classifier for the data's classes.
    spec: a ``ModelSpec`` or a YAML file of one; ``model``, ``weights`` and ``num_classes`` given
        here override it.
    epochs, batch_size, optimizer (``sgd`` | ``adamw``), lr, weight_decay: the loop; ``lr`` and
        ``weight_decay`` default to 0.05 / 5e-4 for SGD, 2e-3 / 0.05 for AdamW.
    image_size: input size in px; default the checkpoint's, else 48 for synthetic, else the
        weights' transforms or the architecture's own.
    workers: data loader worker processes. seed: data, split, initialisation and order.
    device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``; mixed precision on CUDA unless ``no_amp``.
    progress: called as ``progress(done, total, what)`` with images trained so far.
    on_epoch: called with each epoch's ``EpochResult`` as soon as it ends.

    Raises ``SecliUsageError`` (a mistake in the request) or ``SecliError`` (a run that failed).
    """
    inputs = run_inputs({**locals(), "model": describe_reference(model)})  # first: what was asked
    if not trust_code:
        inputs.pop("trust_code", None)
    asked = BlockOptions.of(block if isinstance(block, str) else None, **block_options)
    inputs.pop("block_options", None)
    if asked.values:  # the block as one mapping of the options given (kind first), as the command passes them
        inputs["block"] = dict(asked.values)
    import torch


    if out is None:
        raise SecliUsageError("say where to save the trained model with --out FILE.pt")
    check_train_values(epochs, batch_size, lr, weight_decay, image_size, train_size, val_size, val_fraction, workers,
                       num_classes, seed)
    out = Path(out)
    # before the slow part
    check_writable(out, force, reads=[("the model", model), ("the spec", spec), ("the weights", weights),
                                      ("the image folder", None if data in GENERATED else data)])
    config = TrainConfig(epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
                         weight_decay=weight_decay, seed=seed, device=str(resolve_device(device)), amp=not no_amp)
    torch.manual_seed(seed)
    built: BuiltModel | None = None
    model_spec: ModelSpec | None = None
    module = model if isinstance(model, nn.Module) else None
    if isinstance(model, str) and looks_like_file(model):
        _refuse_model_options(model,
                              BlockOptions.of(block if not isinstance(block, BlockSpec) else "-", **block_options),
                              weights, num_classes, spec, model_kwargs)
        built = load_model(model, trust_code=trust_code)
        arch, arch_weights = built.spec.arch, built.spec.weights
        meta, default_input = built.meta, built.info.default_input
    else:
        if module is not None and (weights is not None or num_classes is not None or model_kwargs is not None):
            raise SecliUsageError("weights, num_classes and model_kwargs apply to model references; a network object "
                                  "is trained as it is")
        name = object_info(module).name if module is not None else model if isinstance(model, str) else None
        model_spec = with_kwargs(resolve_model_spec(name, spec, weights, num_classes, block, **block_options),
                                 model_kwargs)
        arch, arch_weights, meta = model_spec.arch, model_spec.weights, {}
        default_input = object_info(module).default_input if module is not None else _default_input(arch)
    pre = choose_preprocess(data, arch, arch_weights, image_size, meta, default_input)
    sets = open_training_data(data, pre, train_size, val_size, val_fraction, seed)
    new_head = None
    if model_spec is not None:
        built, new_head = _build_for_classes(model_spec, len(sets.class_names), num_classes is None, module)
    assert built is not None
    history = _fit(built.model, built.label, sets, config, workers, progress, on_epoch)
    check_trained(history, data)  # nothing saved from a run that learned nothing
    built.model.cpu()
    path = save_trained(out, built.spec.to_dict(), built.model, sets.class_names, pre, data, history, config, force)
    return TrainRun(history, path, built.label, sets.class_names, pre.crop, config.device, data, new_head, inputs)


def _default_input(arch: str) -> int:
    """The input side of a named architecture; a factory's model says its own once built (224 here)."""
    return DEFAULT_INPUT if is_factory(arch) else arch_info(arch).default_input


def _refuse_model_options(model: str, block: BlockOptions, weights: str | None, num_classes: int | None, spec: Any,
                          model_kwargs: Any = None) -> None:
    """A checkpoint says what the model is: options that would say otherwise are mistakes."""
    given = (["block"] if block.kind is not None else []) + block.named()
    given += [name for name, value in (("weights", weights), ("num_classes", num_classes), ("spec", spec),
                                       ("model_kwargs", model_kwargs)) if value is not None]
    if given:
        raise SecliUsageError(f"{model} is a saved model; --{given[0].replace('_', '-')} applies to "
                              "architecture names only")


def takes_num_classes(arch: str) -> bool:
    """Whether a factory takes ``num_classes`` (the user named it: importing it is theirs to ask)."""
    factory = parse_factory(arch)
    return factory is not None and takes_keyword(load_factory(factory), "num_classes")


def open_training_data(data: str, pre: Preprocess, train_size: int, val_size: int, val_fraction: float,
                       seed: int) -> TrainingData:
    """Synthetic: two disjoint generated splits. A folder: one set, split by ``val_fraction``."""
    if data in GENERATED:
        train_set = generated_set(data, train_size, pre, seed, "train")
        val_set = generated_set(data, val_size, pre, seed, "val") if val_size > 0 else None
        return TrainingData(train_set, val_set, list(range(train_size)), list(range(val_size)),
                            list(GENERATED[data][1]))
    folder = ImageFolderData(data, pre)
    train_idx, val_idx = split_indices(len(folder), val_fraction, seed)
    return TrainingData(folder, folder if val_idx else None, train_idx, val_idx, folder.classes)


def _build_for_classes(model_spec: ModelSpec, classes: int, width_from_data: bool,
                       module: nn.Module | None = None) -> tuple[BuiltModel, str | None]:
    """Build ``model_spec`` with a classifier for ``classes`` classes (unless its width is given).

    Pretrained weights bring their own head: the model is built with it (so the weights load),
    then the head is swapped for a fresh one for this data. A network object, and a factory
    without a ``num_classes`` parameter, keep their own head (``check_head`` refuses one too
    narrow for the data). Returns the model and the path of the replaced head (None when
    nothing was replaced).
    """
    if module is not None:
        return build(model_spec, base=module), None
    keep_weights_head = model_spec.weights is not None and width_from_data
    own_head = is_factory(model_spec.arch) and not takes_num_classes(model_spec.arch)
    if width_from_data and not keep_weights_head and not own_head:
        model_spec = dataclasses.replace(model_spec, num_classes=classes)
    built = build(model_spec)
    new_head = None
    if keep_weights_head:
        new_head = replace_head(built.model, classes)
        built.spec = dataclasses.replace(model_spec, num_classes=classes)
    return built, new_head


def _fit(model: nn.Module, label: str, sets: TrainingData, config: TrainConfig, workers: int,
         progress: ProgressCallback | None, on_epoch: Callable[[EpochResult], None] | None) -> TrainResult:
    """Loaders, a check that the head is wide enough, and the loop, with progress as (done, total, what)."""
    classes = len(sets.class_names)
    first = next(iter(make_loader(sets.train_set, sets.train_idx[:1], 1)))[0]
    smallest = 1
    if first is not None:
        check_head(model, first, classes)
        smallest, layer = smallest_batch(model, first)
        check_batch_size(config.batch_size, len(sets.train_idx), smallest, layer, first.shape[-1])
        check_fits(activation_bytes(model, first.shape[-1], config.batch_size, train=True),
                   f"the activations of a training step (batch {config.batch_size}, {first.shape[-1]} px)",
                   config.device, hint="use a smaller --batch-size or --image-size")
    loader = train_loader(sets.train_set, sets.train_idx, config.batch_size, smallest, workers, config.seed,
                          pin_memory=config.device.startswith("cuda"))
    val_loader = (make_loader(sets.val_set, sets.val_idx, 2 * config.batch_size, workers)
                  if sets.val_set is not None else None)
    advance = None
    if progress is not None:
        total, what, done = config.epochs * len(sets.train_idx), f"training {label}", 0
        progress(0, total, what)

        def advance(n: int) -> None:
            nonlocal done
            done += n
            progress(done, total, what)

    return train_model(model, loader, val_loader, classes, config, advance, on_epoch, smallest)


def save_trained(
    path: str | Path,
    spec_dict: dict[str, Any],
    model: nn.Module,
    class_names: Sequence[str],
    preprocess: Preprocess,
    data: str,
    result: TrainResult,
    config: TrainConfig,
    force: bool = False,
) -> Path:
    """A secli checkpoint with the class names, preprocessing, config and history in ``meta``,
    so every other command reads the trained model back and sees its images as in training."""
    meta = {
        "classes": list(class_names),
        "input_size": preprocess.crop,
        "resize": preprocess.resize,
        "mean": list(preprocess.mean),
        "std": list(preprocess.std),
        "data": data,
        "trained_by": "secli train",
        "config": dataclasses.asdict(config),
        "history": result.to_dict(),
    }
    return save_checkpoint(path, spec_dict, model.state_dict(), meta=meta, force=force)
