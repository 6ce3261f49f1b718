"""``profile()``: the whole ``secli profile`` run as one Python call.

Why a workflow layer: the CLI and a notebook must time the same models under the same
settings, so everything between parsing and rendering lives here: the settings checked before
anything is built, the models loaded (one architecture and its injected versions, or several
references), the DDP lifecycle, and progress through a plain callback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from secli.profiling.results import ProfileConfig, ProfileReport, Progress
from secli.util.errors import SecliUsageError

MODE_CHOICES = ("inference", "train", "both")


def profile(
    models: Sequence[str] | str | None,
    *,
    block: str | Sequence[str] | None = None,
    ratio: int | None = None,
    position: str | None = None,
    stages: str | int | Sequence[int] | None = None,
    paths: int | None = None,
    groups: int | None = None,
    kernel_size: int | None = None,
    impl: str | Sequence[str] | None = None,
    mode: str = "inference",
    device: str = "auto",
    batch_size: int = 8,
    input_size: int | None = None,
    amp: str = "off",
    channels_last: bool = False,
    compile: bool = False,  # the CLI's --compile (shadows the builtin inside this function only)
    compile_mode: str | None = None,
    iters: int = 20,
    warmup: int = 5,
    threads: int | None = None,
    auto_batch: bool = False,
    ddp: bool = False,
    progress: Progress | None = None,
) -> ProfileReport:
    """Time forward, backward and whole steps of ``models`` side by side; the first is the baseline.

    ``models``: architecture names, ``timm:<name>`` or saved .pt files, baseline first. With one
    architecture, ``block`` ("se", "sk" or "se,sk") compares it with its injected versions,
    shaped by ``ratio``, ``position``, ``stages`` ("2,3" or [2, 3]), ``paths`` and ``groups`` (SK), ``kernel_size`` (ECA);
    ``impl`` ("eager", "fused" or "eager,fused": one model per implementation and kind).
    ``mode``: inference (forward under inference_mode), train (zero_grad, forward, loss,
    backward, SGD step) or both. ``device``: auto | cpu | cuda. ``batch_size``: images per step;
    ``input_size``: square side (default: the first model's). ``amp``: off | bf16 | fp16.
    ``channels_last``: models and input in that memory format. ``compile``/``compile_mode``:
    torch.compile every model (a mode implies compile). ``iters`` timed and ``warmup`` untimed
    iterations. ``threads``: CPU threads for torch. ``auto_batch``: halve the batch on out of
    memory. ``ddp``: under torchrun, every rank times its DDP step; rank 0 reports the slowest
    (``report.is_main`` is False elsewhere). ``progress(done, total, what)`` follows the run.

    A model that fails is marked in the report (``model.failure``), the others go on;
    ``report.measured`` is empty when none ran. ``report.to_dict()`` is what ``--format json``
    prints.
    """
    if mode not in MODE_CHOICES:
        raise SecliUsageError(f"unknown mode {mode!r}; choose inference, train or both")
    from secli.util.checks import check_image_size

    check_image_size("--input-size", input_size)
    config = ProfileConfig(
        device=device,
        batch_size=batch_size,
        input_size=input_size if input_size is not None else 1,  # the first model's default, below
        modes=("inference", "train") if mode == "both" else (mode,),
        amp=amp,
        channels_last=channels_last,
        compile_mode=compile_mode or ("default" if compile else None),
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

    device_type = resolve_device(config.device).type  # CUDA asked for and absent: fail before building anything
    if ddp:
        require_torchrun()
    from secli.profiling.entries import load_entries
    from secli.profiling.profiling import profile_models

    entries, default_input = load_entries(refs, block, ratio=ratio, position=position, stages=stages, paths=paths, groups=groups, kernel_size=kernel_size, impl=impl)
    config = replace(config, input_size=input_size if input_size is not None else default_input)
    with distributed_session(config.ddp, device_type, "profile"):
        return profile_models(entries, config, progress)
