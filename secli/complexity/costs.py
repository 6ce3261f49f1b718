"""The bytes pass of ``secli complexity``: each model's ops recorded, and the roofline drawn from them.

Runs after the FLOP counts, on the same models (the baseline and each variant's copy), with
``secli.cost.record`` (fake tensors: no arithmetic, so it costs a fraction of one fvcore trace).
A model whose ops cannot be recorded leaves ``result.bytes_error`` set and the rest of the run
standing, as a failed FLOP count does.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from secli.complexity.cost_results import ModelCost, RooflineRun, module_bytes
from secli.complexity.results import ComplexityResult, Row
from secli.cost.devices import Device
from secli.cost.record import record
from secli.cost.roofline import overhead, predict
from secli.networks.sites import Site, get_module
from secli.util.errors import SecliError

Models = list[tuple[Row, nn.Module, list[Site]]]


def implementation(model: nn.Module, sites: list[Site]) -> str | None:
    """How the blocks at ``sites`` run, from the first one (``SE fused, folded into the residual sum and ReLU``)."""
    if not sites:
        return None
    block = get_module(model, sites[0].module_path)
    impl = getattr(block, "impl_used", "eager")
    text = f"{type(block).__name__} {impl}"
    if getattr(block, "residual_folded", False):
        text += ", folded into the residual sum and ReLU"
    return text


def record_costs(result: ComplexityResult, base_model: nn.Module, models: Models, dtype: str, training: bool,
                 device: Device | None) -> None:
    """``result.baseline_cost`` and each ``row.cost``: the forward, and the training step if asked."""
    optimizer = "loop" if device is not None and not device.gpu else "foreach"
    size = result.input_size

    def cost_of(model: nn.Module, sites: list[Site]) -> ModelCost:
        paths = [s.module_path for s in sites]
        found = ModelCost(record(model, size, dtype, sites=paths), paths, implementation=implementation(model, sites))
        if training:
            found.training = record(model, size, dtype, training=True, sites=paths, optimizer=optimizer)
        return found

    try:
        native = [s for row, model, sites in models if model is base_model for s in sites]
        result.baseline_cost = cost_of(base_model, native)
        for row, model, sites in models:
            row.cost = result.baseline_cost if model is base_model else cost_of(model, sites)
    except SecliError as exc:
        result.bytes_error = str(exc)
        result.baseline_cost = None
        for row, _, _ in models:
            row.cost = None
    _fill_trees(result, models, base_model)


def _fill_trees(result: ComplexityResult, models: Models, base_model: nn.Module) -> None:
    """Bytes per module in the ``--by-module`` trees and per stage in ``by_stage``."""
    trees = [(result.baseline_cost, result.baseline_modules)] + [(row.cost, row.modules) for row, _, _ in models]
    for cost, modules in trees:
        if cost is None or modules is None:
            continue
        found = module_bytes(cost, [m.path for m in modules])
        for m in modules:
            totals = found.get(m.path)
            if totals is not None:
                m.bytes_read, m.bytes_written, m.intensity = round(totals.read), round(totals.written), totals.intensity
    for row, _, sites in models:
        if row.cost is None:
            continue
        per_site = module_bytes(row.cost, [s.module_path for s in sites])
        for stage in row.stages:
            stage.block_bytes = round(sum(per_site[s.module_path].moved for s in sites if s.stage == stage.stage))


def predict_all(result: ComplexityResult, models: Models, device: Device, batch: int) -> None:
    """``result.roofline``: the baseline's and each row's predicted time at ``batch`` images."""
    base = result.baseline_cost
    if base is None:
        return
    run = RooflineRun(device=device, batch=batch)
    modes: list[tuple[str, Any]] = [("inference", lambda c: c.forward), ("training_step", lambda c: c.training)]
    for mode, pick in modes:
        if pick(base) is not None:
            run.baseline[mode] = predict(pick(base), device, batch)
    for row, _, _ in models:
        found = {}
        for mode, pick in modes:
            if row.cost is not None and pick(row.cost) is not None and mode in run.baseline:
                injected = predict(pick(row.cost), device, batch, row.cost.sites)
                found[mode] = (injected, overhead(run.baseline[mode], injected))
        run.rows.append(found)
    result.roofline = run
