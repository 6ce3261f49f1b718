"""``profile()``: the timing part of ``secli profile`` as one Python call.

Why a workflow layer: the CLI and a notebook must time the same models under the same
settings, so everything between choosing the models and rendering lives here: the settings
checked before anything is built, the models loaded (references, or one architecture and its
block variants), the DDP lifecycle, and progress through a plain callback. Turning block
options and sweep files into variants is ``secli.api.profile`` (it reuses complexity's sweep,
which this layer may not import).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from secli.build.spec import BlockSpec
from secli.profiling.results import ProfileConfig, ProfileReport, Progress
from secli.util.errors import SecliUsageError

MODE_CHOICES = ("inference", "train", "both")


def profile(
    models: Sequence[str] | str | None,
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
    inputs: dict[str, Any] | None = None,
    progress: Progress | None = None,
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
    ``inputs``: what the caller was asked, kept in the envelope's ``inputs``.
    ``progress(done, total, what)`` follows the run.

    A model that fails is marked in the report (``model.failure``), the others go on;
    ``report.measured`` is empty when none ran. ``report.to_dict()`` is the ``secli-profile``
    envelope ``--format json`` prints.
    """
    if mode not in MODE_CHOICES:
        raise SecliUsageError(f"unknown mode {mode!r}; choose inference, train or both")
    from secli.util.checks import check_image_size

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
    refs = [models] if isinstance(models, str) else list(models or [])
    if not refs:
        raise SecliUsageError("name at least one model, e.g. 'secli profile resnet50 --block se'")
    from secli.util.device import resolve_device
    from secli.util.distributed import distributed_session, require_torchrun

    resolved = resolve_device(config.device)  # CUDA asked for and absent: fail before building anything
    _refuse_what_does_not_apply(config, resolved.type, resolved.index)
    if ddp:
        require_torchrun()
    from secli.profiling.entries import load_entries
    from secli.profiling.profiling import profile_models

    entries, default_input = load_entries(refs, variants, num_classes)
    config = replace(config, image_size=image_size if image_size is not None else default_input)
    request = {"models": refs, "variants": [asdict(b) for b in variants or []], **(inputs or {})}
    with distributed_session(config.ddp, resolved.type, "profile"):
        report = profile_models(entries, config, progress)
    report.inputs = request
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
        raise SecliUsageError("--auto-batch cannot be used with --ddp: one rank halving its batch alone would hang the others")
    if index is not None:
        raise SecliUsageError(f"--device {config.device} cannot be used with --ddp: each rank takes cuda:LOCAL_RANK; use --device cuda")
