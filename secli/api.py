"""secli's Python API: one function per command, taking the command's options.

Each function returns a result dataclass whose ``to_dict()`` is exactly what the command prints
with ``--format json``: the results envelope of ``secli.util.envelope`` (``format``, ``version``,
``command``, ``inputs``, ``results``); the commands in ``commands/`` only parse their options,
call one of these and render the result.

    from secli import api

    result = api.inject("resnet50", block="se", ratio=16)
    result.added                      # parameters the 16 SE blocks add
    api.complexity("resnet18", block="se", image_size=64).to_dict()["results"]["rows"]

Long runs take ``progress=callable(done, total, what)`` instead of drawing a bar. Importing this
module imports torch (through ``load_model``); the CLI imports each command's function lazily
instead, so ``secli --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from secli.build.export import ExportResult, export
from secli.build.models import load_model
from secli.build.spec import BlockSpec, ModelSpec
from secli.build.workflow import InjectResult, inject, list_architectures
from secli.complexity.workflow import complexity
from secli.excitation.workflow import ExcitationRun, visualize_excitation
from secli.profiling.results import ProfileReport, Progress
from secli.training.workflow import TrainRun, train

__all__ = [
    "BlockSpec",
    "ExcitationRun",
    "ExportResult",
    "InjectResult",
    "ModelSpec",
    "TrainRun",
    "complexity",
    "export",
    "inject",
    "list_architectures",
    "load_model",
    "ProfileReport",
    "profile",
    "train",
    "visualize_excitation",
]


def profile(
    models: Sequence[str] | str | None = None,
    *,
    block: str | Sequence[str] | None = None,
    ratio: int | None = None,
    ratios: str | int | Sequence[int] | None = None,
    position: str | None = None,
    positions: str | Sequence[str] | None = None,
    stages: str | Sequence[str | int | Sequence[int]] | None = None,
    paths: str | int | Sequence[int] | None = None,
    groups: int | None = None,
    kernel_size: int | None = None,
    impl: str | Sequence[str] | None = None,
    spec: str | Path | None = None,
    image_size: int | None = None,
    input_size: int | None = None,
    progress: Progress | None = None,
    out: str | Path | None = None,
    force: bool = False,
    **timing: Any,
) -> ProfileReport:
    """Time ``models`` side by side, the first the baseline; with one architecture and ``block``
    (``"se"``, ``"se,sk"``) or ``spec``, compare it with each block variant.

    Variants sweep like ``complexity()`` (and through its sweep code, so a complexity experiment
    file is a profile sweep too): ``ratios`` ("8,16" or [8, 16]), ``positions``, ``paths``,
    ``impl`` ("eager,fused") and ``stages`` (each entry one variant; "2,3" is one with both) give
    one model per value, every combination for each kind in ``block``; ``ratio``, ``position``,
    ``groups``, ``kernel_size`` set one value. An option goes to the kinds that take it and is
    refused when none does. ``spec``: a sweep YAML (its ``arch`` when no model is named, its
    rows and grid, ``input_size``, ``num_classes``); options given here override it.
    ``image_size`` is the square side (``input_size`` is its old name, still accepted).
    ``timing``: the timing options of ``secli.profiling.workflow.profile`` (mode, device,
    batch_size, amp, channels_last, compile, compile_mode, iters, warmup, threads, auto_batch,
    ddp). ``to_dict()`` of the result is the ``secli-profile`` envelope the CLI prints.
    ``out``: also write that envelope there as JSON, the file ``secli profile --out`` writes and
    ``secli report`` reads (atomically; an existing file only with ``force``), checked before
    anything is timed so minutes of timing are not wasted. Under DDP only rank 0 writes it.
    """
    from secli.profiling.workflow import profile as time_models
    from secli.util.errors import SecliUsageError

    if input_size is not None:
        if image_size is not None:
            raise SecliUsageError("give --image-size only (--input-size is its old name)")
        from secli.util.checks import check_image_size

        image_size = check_image_size("--input-size", input_size)  # named as the caller spelled it
    refs = [models] if isinstance(models, str) else list(models or [])
    variants, arch, sweep = _profile_variants(refs, block, ratio, ratios, position, positions, stages, paths, groups, kernel_size, impl, spec)
    request = {
        "block": block if block is None or isinstance(block, str) else ",".join(block),
        "spec": None if spec is None else str(spec),
        "title": sweep.title if sweep is not None else None,
    }
    if out is not None:
        from secli.util.outputs import check_writable

        check_writable(out, force)  # before minutes of timing, not after
    report = time_models(
        [arch] if arch else refs, variants=variants, num_classes=sweep.num_classes if sweep else None,
        image_size=image_size if image_size is not None else (sweep.input_size if sweep else None),
        inputs=request, progress=progress, **timing,
    )
    weights = sweep.weights_warning("timings") if sweep is not None else None
    if weights is not None:
        report.warnings.append(weights)
    if out is not None and report.is_main:
        from secli.util.envelope import dumps
        from secli.util.outputs import atomic_write_text

        atomic_write_text(out, dumps(report.to_dict()) + "\n", force=force)
    return report


def _profile_variants(refs: list[str], block: Any, ratio: Any, ratios: Any, position: Any, positions: Any, stages: Any,
                      paths: Any, groups: Any, kernel_size: Any, impl: Any, spec: Any) -> tuple[list[Any] | None, str | None, Any]:
    """The BlockSpecs to compare (None: the models as named), the architecture, and the sweep."""
    from secli.build.models import looks_like_file
    from secli.build.registry import NO_BLOCK, get_kind, kind_names
    from secli.complexity.sweep import Sweep, load_sweep, override
    from secli.complexity.workflow import _positive_ints, _stage_rows
    from secli.util.errors import SecliUsageError
    from secli.util.number_lists import parse_str_list

    if ratio is not None and ratios is not None:
        raise SecliUsageError("give either --ratio or --ratios, not both")
    if position is not None and positions is not None:
        raise SecliUsageError("give either --position or --positions, not both")
    kinds = parse_str_list(block) or []
    lists = {
        "ratio": _positive_ints(ratios, "--ratios"), "position": parse_str_list(positions), "stages": _stage_rows(stages),
        "paths": _positive_ints(paths, "--paths"), "impl": parse_str_list(impl),
    }
    single = {"ratio": ratio, "position": position, "groups": groups, "kernel_size": kernel_size}
    given = [k for k, v in single.items() if v is not None] + [k for k, v in lists.items() if v]
    if spec is None and not kinds:
        if given:
            option = "--" + given[0].replace("_", "-")
            raise SecliUsageError(f"{option} needs --block {' or '.join(kind_names())} (one model per variant)")
        return None, None, None
    if NO_BLOCK in kinds:
        raise SecliUsageError(f"--block must be {', '.join(kind_names())} or a comma list such as se,sk for profile, got {NO_BLOCK!r}")
    if spec is not None and (len(refs) > 1 or any(looks_like_file(r) for r in refs)):
        raise SecliUsageError("--spec sweeps one architecture: name at most one architecture (it replaces the file's arch)")
    entries = [get_kind(kind) for kind in kinds]  # refuses unknown kinds

    def takes(kind: Any, option: str) -> bool:
        # with several kinds an option goes to those that take it (--ratio: SE and SK,
        # --kernel-size: ECA); one that no listed kind takes is passed on and refused
        return kind is None or option == "stages" or option in kind.options or not any(option in e.options for e in entries)

    base = load_sweep(spec) if spec is not None else Sweep(arch=refs[0] if refs else "")
    arch = refs[0] if refs else base.arch
    variants = []
    each: list[Any] = list(entries) or [None]  # None: the spec file's own kinds
    for kind in each:
        own_single = {k: v for k, v in single.items() if v is not None and takes(kind, k)}
        own_lists = {k: v for k, v in lists.items() if v and takes(kind, k)}
        swept = override(base, arch=arch, single={"kind": kind.name if kind else None, **own_single}, lists=own_lists)
        variants += [b for b in swept.blocks() if b.kind != NO_BLOCK]  # the baseline is always the first model
    return variants, (arch if spec is not None else None), base
