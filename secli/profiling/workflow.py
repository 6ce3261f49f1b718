"""``profile()``: the timing part of ``secli profile`` as one Python call.

Why a workflow layer: the CLI and a notebook must time the same models under the same
settings, so everything between choosing the models and rendering lives here: the settings
checked before anything is built, the block variants chosen from the options or a sweep file
(``secli.networks.variants``, the same rule as ``complexity``), the models loaded (references, or
one architecture and its block variants), the DDP lifecycle, the results file, and progress
through a plain callback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from secli.blocks.registry import NO_BLOCK
from secli.blocks.spec import BlockSpec
from secli.networks.models import ModelRef, describe_reference, looks_like_file
from secli.networks.references import parse_model_kwargs
from secli.networks.variants import SWEEP_OPTION_NAMES, block_variants
from secli.profiling.entries import load_entries
from secli.profiling.prediction import resolve_early
from secli.profiling.profiling import profile_models
from secli.profiling.results import ProfileConfig, ProfileReport, Progress
from secli.util.checks import check_image_size
from secli.util.device import resolve_device
from secli.util.distributed import distributed_session, require_torchrun
from secli.util.envelope import dumps
from secli.util.errors import SecliError, SecliUsageError
from secli.util.memory import activation_bytes, check_fits
from secli.util.outputs import atomic_write_text, check_writable

if TYPE_CHECKING:
    from torch import nn

MODE_CHOICES = ("inference", "train", "both")


def profile(
    models: Sequence[ModelRef] | ModelRef | None = None,
    *,
    block: str | Sequence[str] | None = None,
    spec: str | Path | None = None,
    image_size: int | None = None,
    input_size: int | None = None,
    progress: Progress | None = None,
    out: str | Path | None = None,
    force: bool = False,
    count: Callable[[nn.Module, int], dict[str, int]] | None = None,
    model_kwargs: str | dict[str, Any] | None = None,
    trust_code: bool = False,
    **options: Any,
) -> ProfileReport:
    """Time ``models`` side by side, the first the baseline; with one architecture and ``block``
    (``"se"``, ``"se,sk"``) or ``spec``, compare it with each block variant.

    Variants sweep as in ``complexity()`` (``secli.networks.variants``): ``ratios`` ("8,16" or
    [8, 16]), ``positions``, ``paths``, ``impl`` ("eager,fused"), ``squeeze``, ``gate`` and
    ``stages`` (each entry one variant; "2,3" is one with both) give one model per value, every
    combination for each kind in ``block``; ``ratio``, ``position``, ``groups``, ``kernel_size``...
    set one value. ``spec``: a sweep YAML (its ``arch`` when no model is named, its rows and grid,
    ``image_size``, ``num_classes``); options given here override it. ``image_size`` is the square
    side (``input_size`` is its old name, still accepted). The other ``options`` are the timing
    options of ``time_models`` (mode, device, batch_size, amp, channels_last, compile,
    compile_mode, iters, warmup, threads, auto_batch, ddp). A model may be a factory
    (``file.py:build``, built with ``model_kwargs``) or a ``torch.nn.Module`` (a copy is timed);
    ``trust_code`` lets a checkpoint made from a factory import it. ``to_dict()`` of the result is the
    ``secli-profile`` envelope the CLI prints. ``out``: also write that envelope there as JSON,
    the file ``secli profile --out`` writes and ``secli report`` reads (atomically; an existing
    file only with ``force``), checked before anything is timed so minutes of timing are not
    wasted. Under DDP only rank 0 writes it. ``block="none"``: one architecture with SE modules of
    its own, timed as built against itself without them (the baseline). ``count``: see
    ``time_models`` (``secli.api.profile(with_complexity=True)`` sets it).
    """
    if input_size is not None:
        if image_size is not None:
            raise SecliUsageError("give --image-size only (--input-size is its old name)")
        image_size = check_image_size("--input-size", input_size)  # named as the caller spelled it
    block_options = {k: v for k, v in options.items() if k in SWEEP_OPTION_NAMES}
    timing = {k: v for k, v in options.items() if k not in SWEEP_OPTION_NAMES}
    refs = [models] if isinstance(models, (str, nn.Module)) else list(models or [])
    if spec is not None and (len(refs) > 1 or any(_is_file(r) for r in refs)):
        raise SecliUsageError("--spec sweeps one architecture: name at most one architecture (it "
                              "replaces the file's arch)")
    if model_kwargs is not None and len([r for r in refs if not _is_file(r)]) != 1:
        raise SecliUsageError("--model-kwargs applies to one model: name one architecture or "
                              "factory (and saved models)")
    first = refs[0] if refs else None
    variants = block_variants("-" if isinstance(first, nn.Module) else first, block, spec, block_options,
                              allow_none=True)
    native = variants is not None and [b.kind for b in variants.blocks] == [NO_BLOCK]
    request = {
        "block": block if block is None or isinstance(block, str) else ",".join(block),
        "spec": None if spec is None else str(spec),
        "title": variants.sweep.title if variants is not None else None,
    }
    if out is not None:  # before minutes of timing, not after
        check_writable(out, force, reads=[("the spec", spec), *(("the model", ref) for ref in refs)])
    sweep = variants.sweep if variants is not None else None
    report = time_models(
        [variants.arch] if variants is not None and spec is not None and not isinstance(first, nn.Module) else refs,
        # the baseline is always first
        variants=[b for b in variants.blocks if b.kind != NO_BLOCK] if variants is not None else None,
        num_classes=sweep.num_classes if sweep else None,
        image_size=image_size if image_size is not None else (sweep.input_size if sweep else None),
        inputs=request, progress=progress, native=native, count=count,
        model_kwargs=_with_sweep_kwargs(sweep, model_kwargs), trust_code=trust_code, **timing,
    )
    weights = sweep.weights_warning("timings") if sweep is not None else None
    if weights is not None:
        report.warnings.append(weights)
    if out is not None and report.is_main:
        atomic_write_text(out, dumps(report.to_dict()) + "\n", force=force)
    return report


def _with_sweep_kwargs(sweep: Any, given: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    """A sweep file's ``model_kwargs`` with the ones given here laid over them."""
    if sweep is None or not sweep.model_kwargs:
        return given
    return {**sweep.model_kwargs, **(parse_model_kwargs(given) or {})}


def _is_file(ref: ModelRef) -> bool:
    return isinstance(ref, str) and looks_like_file(ref)


def time_models(
    models: Sequence[ModelRef] | ModelRef | None,
    *,
    variants: Sequence[BlockSpec] | None = None,
    num_classes: int | None = None,
    mode: str = "inference",
    device: str = "auto",
    batch_size: int = 8,
    image_size: int | None = None,
    amp: str = "off",
    channels_last: bool = False,
    compile: bool = False,  # the CLI's --compile (shadows the builtin inside this function only)
    compile_mode: str | None = None,
    iters: int = 20,
    warmup: int = 5,
    threads: int | None = None,
    auto_batch: bool = False,
    ddp: bool = False,
    roofline: str | None = None,
    inputs: dict[str, Any] | None = None,
    progress: Progress | None = None,
    native: bool = False,
    count: Callable[[nn.Module, int], dict[str, int]] | None = None,
    model_kwargs: str | dict[str, Any] | None = None,
    trust_code: bool = False,
) -> ProfileReport:
    """Time forward, backward and whole steps of ``models`` side by side; the first is the baseline.

    ``models``: architecture names, ``timm:<name>`` or saved .pt files, baseline first; with
    ``variants`` (BlockSpecs) one architecture, compared with itself injected with each.
    ``mode``: inference (forward under inference_mode), train (zero_grad, forward, loss,
    backward, SGD step) or both. ``device``: auto | cpu | cuda | cuda:N. ``batch_size``: images
    per step; ``image_size``: square side (default: the first model's). ``amp``: off | bf16 |
    fp16. ``channels_last``: models and input in that memory format. ``compile`` and
    ``compile_mode`` (which needs ``compile``): torch.compile every model. ``iters`` timed and
    ``warmup`` untimed iterations. ``threads``: CPU threads for torch (CPU runs only).
    ``auto_batch``: halve the batch on out of memory. ``ddp``: under torchrun, every rank times
    its DDP training step; rank 0 reports the slowest (``report.is_main`` is False elsewhere).
    ``roofline``: the device to predict each model's time on, beside the measurement (a table
    key such as ``h100``, ``cpu``, or a device YAML file; default: the device it runs on, ``cpu``
    measured in the run or a GPU recognised by name): ``report.prediction``.
    ``inputs``: what the caller was asked, kept in the envelope's ``inputs``.
    ``progress(done, total, what)`` follows the run. ``native``: ``models`` is one network with
    SE modules of its own (``--block none``), timed as built against itself with them replaced
    by identities (the baseline). ``count(model, image_size)``: parameters and FLOPs of each
    model (``secli.api.profile(with_complexity=True)`` passes complexity's counter), kept with
    its timings so one table holds both; counted before timing, at batch 1, on the CPU.

    A model that fails is marked in the report (``model.failure``), the others go on;
    ``report.measured`` is empty when none ran. ``report.to_dict()`` is the ``secli-profile``
    envelope ``--format json`` prints.
    """
    if mode not in MODE_CHOICES:
        raise SecliUsageError(f"unknown mode {mode!r}; choose inference, train or both")

    check_image_size("--image-size", image_size)
    if compile_mode is not None and not compile:
        raise SecliUsageError("--compile-mode applies to compiled models; add --compile")
    modes = ("inference", "train") if mode == "both" else (mode,)
    config = ProfileConfig(
        device=device,
        batch_size=batch_size,
        image_size=image_size if image_size is not None else 1,  # the first model's default, below
        modes=modes,
        amp=amp,
        channels_last=channels_last,
        compile_mode=(compile_mode or "default") if compile else None,
        iters=iters,
        warmup=warmup,
        threads=threads,
        auto_batch=auto_batch,
        ddp=ddp,
    )
    refs = [models] if isinstance(models, (str, nn.Module)) else list(models or [])
    if not refs:
        raise SecliUsageError("name at least one model, e.g. 'secli profile resnet50 --block se'")

    resolved = resolve_device(config.device)  # CUDA asked for and absent: fail before building anything
    roofline_device = resolve_early(roofline, amp)  # an unknown device or a bad file fails before any timing
    _refuse_what_does_not_apply(config, resolved.type, resolved.index)
    if ddp:
        require_torchrun()

    entries, default_input = load_entries(refs, variants, num_classes, model_kwargs, trust_code, native=native)
    config = replace(config, image_size=image_size if image_size is not None else default_input)
    if not config.auto_batch:  # --auto-batch halves the batch on out of memory instead
        for entry, mode in ((e, m) for e in entries for m in config.modes):
            needed = activation_bytes(entry.model, config.image_size, config.batch_size, mode == "train",
                                      4 if config.amp == "off" else 2)
            check_fits(needed, f"{entry.label}'s activations ({mode}, batch {config.batch_size}, "
                               f"{config.image_size} px)", resolved,
                       hint="use a smaller --batch-size or --image-size, or --auto-batch")
    uncounted = []
    if count is not None:
        for entry in entries:
            try:
                entry.counts = count(entry.model, config.image_size)
            except SecliError as exc:  # a model fvcore cannot count is still timed
                uncounted.append(f"{entry.label}: FLOPs not counted ({exc})")
    request = {"models": describe_reference(refs), "variants": [asdict(b) for b in variants or []],
               "roofline": roofline, **(inputs or {})}
    if model_kwargs is not None:
        request["model_kwargs"] = model_kwargs
    with distributed_session(config.ddp, resolved.type, "profile"):
        report = profile_models(entries, config, progress, roofline_device)
    report.inputs = {**request, "with_complexity": count is not None}
    report.warnings += uncounted
    return report


def _refuse_what_does_not_apply(config: ProfileConfig, device_type: str, index: int | None) -> None:
    """Options that would be accepted and then do nothing (or hang a DDP run) are refused."""
    if config.threads is not None and device_type != "cpu":
        raise SecliUsageError("--threads applies to CPU runs (torch's CPU thread pool); drop it or use --device cpu")
    if not config.ddp:
        return
    if "train" not in config.modes:
        raise SecliUsageError("--ddp times DistributedDataParallel training steps; add --mode train or --mode both")
    if config.auto_batch:
        raise SecliUsageError("--auto-batch cannot be used with --ddp: one rank halving its batch alone "
                              "would hang the others")
    if index is not None:
        raise SecliUsageError(f"--device {config.device} cannot be used with --ddp: each rank takes "
                              "cuda:LOCAL_RANK; use --device cuda")
