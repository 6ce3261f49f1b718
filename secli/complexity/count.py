"""What blocks cost: parameters and FLOPs of a network with and without them.

The baseline is built and counted once; each variant is a deep copy of it with blocks injected
(copying is ~20x cheaper than building and initialising a ResNet-50 again), so a sweep of k
variants costs one baseline plus k injected counts. Parameters are checked against the SE
paper's closed form; FLOPs come from fvcore in two flavours (see ``secli.complexity.flops``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from secli.blocks.registry import NO_BLOCK, find_kind
from secli.blocks.spec import BlockSpec, ModelSpec
from secli.complexity.costs import predict_all, record_costs
from secli.complexity.flops import FlopCountError, FlopReport, fvcore_count, torch_gemm_count
from secli.complexity.input_size import example_input, run_or_explain
from secli.complexity.modules import ModuleCost, module_tree
from secli.complexity.results import ComplexityResult, Row, StageCost
from secli.complexity.training import training_step_cost
from secli.cost.devices import Device
from secli.networks.architectures import ArchInfo
from secli.networks.builders import build_base, object_info
from secli.networks.formula import Check, closed_form
from secli.networks.inject import InjectionReport, inject
from secli.networks.models import short_name
from secli.networks.native_attention import discover_attention_sites
from secli.networks.native_se import strip_native_se
from secli.networks.sites import Site, count_params
from secli.networks.variants import variant_labels

Progress = Callable[[int, int, str], None]  # (done, total, what is being counted now)


def count_model(
    model: nn.Module,
    size: int,
    label: str,
    upper: int,
    modules: list[str] | None = None,
    torch_gemm: int | None = None,
    depth: int | None = None,
) -> FlopReport:
    """fvcore's count, cross-checked against FlopCounterMode on the conv/linear part.

    The cross-check forward runs first: it is also where a too-small input is caught and
    explained (which layer fails, which size works).
    """
    if torch_gemm is None:
        torch_gemm = check_size(model, size, label, upper)

    report = fvcore_count(model, example_input(size), modules=modules, module_depth=depth)
    report.torch_gemm = int(torch_gemm)
    if not report.crosscheck_ok:
        raise FlopCountError(
            "(cross-check)",
            f"{label}: fvcore counts {report.gemm:,} conv/linear multiply-adds, "
            f"torch FlopCounterMode {report.torch_gemm:,} (its FLOPs / 2)",
        )
    return report


def model_counts(model: nn.Module, size: int) -> dict[str, int]:
    """Parameters and FLOPs (fvcore, batch 1, both flavours) of ``model`` at ``size`` x ``size``:
    what ``secli profile --with-complexity`` puts next to its timings. The model is left in eval
    mode (the caller sets the mode it times)."""
    report = count_model(model, size, type(model).__name__, size)
    return {"params": count_params(model), "flops_fc_only": report.fc_only, "flops_all_ops": report.all_ops}


def check_size(model: nn.Module, size: int, label: str, upper: int) -> int:
    """The FlopCounterMode forward; a too-small input fails here with a one-line explanation."""
    model.eval()
    return int(run_or_explain(model, size, label, upper, action=lambda x: torch_gemm_count(model, x)))  # type: ignore[call-overload]


def stage_costs(sites: list[Site], formula: Check | None, flops: FlopReport | None) -> list[StageCost]:
    by_formula = {s.stage: s for s in formula.stages} if formula else {}
    costs = []
    for stage in sorted({s.stage for s in sites}):
        members = [s for s in sites if s.stage == stage]
        f = by_formula.get(stage)
        cost = StageCost(
            stage=stage,
            blocks=len(members),
            channels=tuple(sorted({s.channels for s in members})),
            block_params=sum(s.params for s in members),
            formula=(f.weights_formula + f.bias_terms) if f else None,
        )
        if flops is not None:
            splits = [flops.module_split(s.module_path) for s in members]
            cost.flops_fc_only = sum(a for a, _ in splits)
            cost.flops_all_ops = sum(b for _, b in splits)
        costs.append(cost)
    return costs


def _row(spec: ModelSpec, report: InjectionReport, label: str, base_params: int) -> Row:
    check = closed_form(report.sites, spec.block)
    return Row(
        spec=spec, label=label, sites=len(report.sites), params_baseline=base_params,
        params_injected=report.params_injected, formula=check, site_list=list(report.sites),
    )


def analyse(
    arch: str,
    blocks: list[BlockSpec],
    input_size: int | None = None,
    num_classes: int | None = None,
    flops: bool = True,
    progress: Progress | None = None,
    depth: int | None = None,
    training_step: bool = False,
    costs: CostRequest | None = None,
    model_kwargs: dict[str, Any] | None = None,
    base: nn.Module | None = None,
) -> ComplexityResult:
    """Count the baseline once, then every block variant as one row.

    ``arch``: a model reference (``secli.networks.references``), built with ``model_kwargs``;
    or, with ``base`` (a network object, copied first), its name in the results.
    ``depth``: also give each row (and the baseline) a per-module tree down to that depth.
    ``training_step``: also measure a training step's cost (``secli.complexity.training``).
    ``costs``: the bytes pass (dtype, and a device to predict times on), after the FLOPs.
    """
    if base is not None:
        full, info = copy.deepcopy(base), object_info(base)
        arch = short_name(info.name)
    else:
        full, info = build_base(arch, None, num_classes, model_kwargs)
    base_model, stripped = _baseline(full, blocks, info.default_input)
    size = input_size or info.default_input
    # The size check runs before any copy is made, so a bad --input-size fails fast.
    base_gemm = check_size(base_model, size, arch, info.default_input) if flops else None
    models: list[tuple[Row, nn.Module, list[Site]]] = []
    base_params = count_params(base_model)
    for block, label in zip(blocks, variant_labels(arch, blocks)):
        spec = ModelSpec(arch=info.name if base is not None else arch, block=block, num_classes=num_classes,
                         model_kwargs=model_kwargs or None)
        # kind "none" is the network as built (its own SE modules, if any, become sites): no copy
        model = full if block.kind == NO_BLOCK else copy.deepcopy(base_model)
        report = inject(model, info.adapter, block, arch, info.default_input)
        row = _row(spec, report, label, base_params)
        kind = find_kind(block.kind)
        if kind is not None and kind.targets == "conv3x3":  # the convolutions it replaced, as they were
            row.replaced_groups = sorted({getattr(base_model.get_submodule(s.module_path), "groups", 1)
                                          for s in report.sites})
        models.append((row, model, report.sites))
    result = ComplexityResult(arch=arch, input_size=size, params_baseline=base_params, baseline_flops=None,
                              rows=[r for r, _, _ in models], stripped_native=stripped)
    if flops:
        _count_all(result, base_model, models, info, progress, base_gemm, depth)
    if depth is not None:
        _trees(result, base_model, models, depth)
    if training_step:
        _steps(result, base_model, models)
    _costs(result, base_model, models, costs, training_step)
    return result


@dataclass(frozen=True)
class CostRequest:
    """The bytes pass: its dtype (``fp32`` or autocast's ``bf16``/``fp16``) and, for ``--roofline``,
    the device and the batch size to predict times for."""

    dtype: str = "fp32"
    device: Device | None = None
    batch: int = 1


def _costs(result: ComplexityResult, base_model: nn.Module, models: list[tuple[Row, nn.Module, list[Site]]],
           costs: CostRequest | None, training_step: bool) -> None:
    if costs is None:
        return
    result.dtype = costs.dtype
    record_costs(result, base_model, models, costs.dtype, training_step, costs.device)
    if costs.device is not None:
        predict_all(result, models, costs.device, costs.batch)


def _baseline(full: nn.Module, blocks: list[BlockSpec], default_input: int) -> tuple[nn.Module, int]:
    """The network every row is compared with, and how many of its own SE modules it lost: with
    ``none`` among the blocks (the network as built is a row), a copy with its own SE modules
    replaced by identities, so that the row's Δ is what they cost; else the network as built."""
    if not any(b.kind == NO_BLOCK for b in blocks):
        return full, 0
    native = [s for s in discover_attention_sites(full, default_input) if s.kind == "native-se"]
    if not native:
        return full, 0
    base = copy.deepcopy(full)
    return base, strip_native_se(base, native)


def _steps(result: ComplexityResult, base_model: nn.Module, models: list[tuple[Row, nn.Module, list[Site]]]) -> None:
    result.baseline_training = training_step_cost(base_model, result.input_size)
    for row, model, _ in models:
        row.training = result.baseline_training if model is base_model else training_step_cost(model, result.input_size)


def analyse_built(
    built: Any, input_size: int | None = None, flops: bool = True, progress: Progress | None = None,
    depth: int | None = None, training_step: bool = False, costs: CostRequest | None = None,
    base_dir: Path | None = None,
) -> ComplexityResult:
    """A model loaded from a file (``secli inject --out``) against its own base architecture
    (a factory's relative file is also looked for in ``base_dir``, the checkpoint's folder)."""
    spec = built.spec
    base_model, info = build_base(spec.arch, None, spec.num_classes, spec.model_kwargs, base_dir)
    size = input_size or info.default_input
    base_params = count_params(base_model)
    row = _row(built.spec, built.report, built.label, base_params)
    row.params_injected = count_params(built.model)
    result = ComplexityResult(arch=built.spec.arch, input_size=size, params_baseline=base_params, baseline_flops=None,
                              rows=[row])
    models = [(row, built.model, built.sites)]
    if flops:
        _count_all(result, base_model, models, info, progress, depth=depth)
    if depth is not None:
        _trees(result, base_model, models, depth)
    if training_step:
        _steps(result, base_model, models)
    _costs(result, base_model, models, costs, training_step)
    return result


def _tree(model: nn.Module, depth: int, sites: list[Site], report: FlopReport | None,
          label: str | None) -> list[ModuleCost]:
    split = None if report is None else {m: report.module_split(m) for m in report.by_module}
    return module_tree(model, depth, sites, split, label)


def _trees(result: ComplexityResult, base_model: nn.Module, models: list[tuple[Row, nn.Module, list[Site]]],
           depth: int) -> None:
    native = [s for row, model, sites in models if model is base_model for s in sites]
    result.baseline_modules = _tree(base_model, depth, native, result.baseline_flops, "SE" if native else None)
    for row, model, sites in models:
        kind = row.spec.block.kind
        row.modules = _tree(model, depth, sites, row.flops, "SE" if kind == "none" else kind.upper())


def _count_all(
    result: ComplexityResult,
    base_model: nn.Module,
    models: list[tuple[Row, nn.Module, list[Site]]],
    info: ArchInfo,
    progress: Progress | None,
    base_gemm: int | None = None,
    depth: int | None = None,
) -> None:
    total = 1 + len(models)
    size, upper = result.input_size, info.default_input
    if progress:
        progress(0, total, "baseline")
    # rows that are the baseline itself share its count (with their native SE modules kept)
    native = sorted({s.module_path for row, model, sites in models if model is base_model for s in sites})
    try:
        result.baseline_flops = count_model(base_model, size, result.arch, upper, native, torch_gemm=base_gemm,
                                            depth=depth)
        for i, (row, model, sites) in enumerate(models, start=1):
            if progress:
                progress(i, total, row.label)
            if model is base_model:
                row.flops = result.baseline_flops
                continue
            row.flops = count_model(model, size, f"{result.arch} + {row.label}", upper,
                                    [s.module_path for s in sites], depth=depth)
    except FlopCountError as exc:
        result.flops_error = str(exc)
        result.baseline_flops = None
        for row, _, _ in models:
            row.flops = None
    for row, _, sites in models:
        row.stages = stage_costs(sites, row.formula, row.flops)
    if progress:
        progress(total, total, "done")
