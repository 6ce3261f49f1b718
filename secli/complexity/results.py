"""The figures of a complexity count, and their JSON: what ``secli complexity --format json`` prints.

FLOPs are kept as raw integer counts in JSON (GFLOPs are a table's unit, not the data's), the
baseline appears once, and formulas are ints where they are whole: numbers typed as they are.

Kept apart from the counting so that the CLI's renderers, the Python API and the tests read the
same dataclasses without pulling in fvcore or building a network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from secli.blocks.spec import ModelSpec
from secli.complexity.cost_results import (
    BYTES_UNIT,
    ModelCost,
    RooflineRun,
    bytes_dict,
    roofline_dict,
    row_roofline_dict,
)
from secli.complexity.flops import FlopReport
from secli.complexity.modules import ModuleCost
from secli.complexity.training import StepCost
from secli.networks.formula import Check
from secli.networks.sites import Site
from secli.networks.variants import stripped_label
from secli.util.envelope import envelope
from secli.util.errors import SecliError


@dataclass
class StageCost:
    """One stage of one variant: its blocks, their parameters and the paper's formula."""

    stage: int
    blocks: int  # N_s
    channels: tuple[int, ...]  # C_s (several for positions where widths differ)
    block_params: int  # parameters of the stage's blocks, counted
    formula: float | None  # (2/r) N_s C_s^2 (+ biases) for SE, the kind's closed form (ECA: sum k), else None
    flops_fc_only: int | None = None  # the stage's blocks, fvcore default handles
    flops_all_ops: int | None = None  # the stage's blocks, every op counted
    block_bytes: int | None = None  # bytes the stage's blocks read and write (forward, batch 1)


@dataclass
class Row:
    """One variant next to the baseline."""

    spec: ModelSpec
    label: str
    sites: int
    params_baseline: int
    params_injected: int
    formula: Check | None
    flops: FlopReport | None = None
    stages: list[StageCost] = field(default_factory=list)
    site_list: list[Site] = field(default_factory=list)
    modules: list[ModuleCost] | None = None  # --by-module: the tree down to the asked depth
    training: StepCost | None = None  # --training-step: forward + backward FLOPs, saved activations
    cost: ModelCost | None = None  # bytes per op: the forward, and the training step when asked
    replaced_groups: list[int] | None = None  # a kind that replaces convolutions (SK): their groups, as they were

    @property
    def params_added(self) -> int:
        return self.params_injected - self.params_baseline

    @property
    def params_pct(self) -> float:
        return 100.0 * self.params_added / self.params_baseline if self.params_baseline else 0.0


@dataclass
class ComplexityResult:
    arch: str
    input_size: int
    params_baseline: int
    baseline_flops: FlopReport | None
    rows: list[Row]
    flops_error: str | None = None  # set when fvcore failed; the parameter part still stands
    title: str | None = None  # a sweep file's title, for tables
    baseline_modules: list[ModuleCost] | None = None  # --by-module: the baseline's tree
    baseline_training: StepCost | None = None  # --training-step: the baseline's step
    warnings: list[str] = field(default_factory=list)  # one line each, shown on stderr as profile's are
    dtype: str = "fp32"  # what the bytes pass ran in (--dtype: autocast's bf16/fp16)
    baseline_cost: ModelCost | None = None
    bytes_error: str | None = None  # set when the ops could not be recorded; the rest stands
    roofline: RooflineRun | None = None  # --roofline DEVICE: predicted times
    stripped_native: int = 0  # SE modules of the network's own replaced by identities in the baseline (--block none)

    inputs: dict[str, Any] = field(default_factory=dict)  # what was asked: the envelope's inputs

    def to_dict(self) -> dict[str, Any]:
        """Exactly what ``secli complexity --format json`` prints and ``--out`` writes: the
        envelope, with the baseline once and one object per variant in ``results.rows``."""
        return envelope("complexity", self.inputs, results_dict(self))

    def check_flops(self) -> None:
        """Raise the FLOP failure, if any; callers show the parameter part first."""
        if self.flops_error:
            raise SecliError(self.flops_error + " (the parameter counts above are unaffected)")


def count(value: float | None) -> int | float | None:
    """A formula's value as an int where it is whole (it counts parameters), else as it is."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else float(value)


def _pct(added: int, base: int) -> float | None:
    return 100.0 * added / base if base else None


def _flops(base: FlopReport | None, inj: FlopReport | None) -> dict[str, Any] | None:
    if base is None or inj is None:
        return None
    return {
        "fc_only": inj.fc_only, "all_ops": inj.all_ops,
        "fc_only_added": inj.fc_only - base.fc_only, "all_ops_added": inj.all_ops - base.all_ops,
        "fc_only_added_pct": _pct(inj.fc_only - base.fc_only, base.fc_only),
        "all_ops_added_pct": _pct(inj.all_ops - base.all_ops, base.all_ops),
    }


def _report_parts(report: FlopReport | None) -> dict[str, Any]:
    """What one FLOP count found besides its totals (the same keys for baseline and rows)."""
    return {
        "crosscheck": None if report is None else {
            "fvcore_conv_linear": report.gemm,
            "flopcountermode_conv_linear_halved": report.torch_gemm,
            "agree": report.crosscheck_ok,
        },
        "not_counted": None if report is None else report.not_counted,
        "unsupported": None if report is None else report.unsupported,
        "by_operator": None if report is None else report.by_operator,
    }


def baseline_dict(result: ComplexityResult) -> dict[str, Any]:
    """The baseline network, once: parameters, FLOPs and, when asked, its tree and training step."""
    base = result.baseline_flops
    return {
        "label": stripped_label(result.arch) if result.stripped_native else result.arch,
        "stripped_native": result.stripped_native,
        "params": result.params_baseline,
        "flops": None if base is None else {"fc_only": base.fc_only, "all_ops": base.all_ops},
        **_report_parts(base),
        "training_step": None if result.baseline_training is None else {
            **result.baseline_training.to_dict(), "bytes": bytes_dict(result.baseline_cost, None, training=True),
        },
        "by_module": None if result.baseline_modules is None else [m.to_dict() for m in result.baseline_modules],
        "bytes": bytes_dict(result.baseline_cost, None),
    }


def _native(result: ComplexityResult, row: Row) -> dict[str, Any] | None:
    """For ``--block none``: what the SE modules the network already has cost, counted inside
    them (the row's Δ against the baseline without them says the same from outside)."""
    if row.spec.block.kind != "none" or not row.sites:
        return None
    counted = row.flops
    split = [counted.module_split(s.module_path) for s in row.site_list] if counted is not None else []
    return {
        "modules": len(row.site_list),
        "params": sum(s.params for s in row.site_list),
        "params_share_pct": _pct(sum(s.params for s in row.site_list), row.params_injected),
        "flops_fc_only": sum(fc for fc, _ in split) if counted is not None else None,
        "flops_all_ops": sum(al for _, al in split) if counted is not None else None,
    }


def _replaces(row: Row) -> dict[str, Any] | None:
    """For a kind that replaces layers of the network (SK: its 3x3 convolutions and their BNs):
    the parameters it replaced (the base's, minus what is left of them, plus the blocks': exact
    arithmetic) and the groups those convolutions had, so a negative Δ can say why."""
    if row.replaced_groups is None:
        return None
    blocks = sum(s.params for s in row.site_list)
    return {"modules": len(row.site_list), "params": row.params_baseline + blocks - row.params_injected,
            "block_params": blocks, "groups": list(row.replaced_groups)}


def row_dict(result: ComplexityResult, row: Row, index: int = 0) -> dict[str, Any]:
    """The JSON object of one variant; FLOPs are raw counts (fvcore: one multiply-add = one FLOP)."""
    check = row.formula
    base_step = result.baseline_training
    return {
        "label": row.label,
        "variant": row.spec.block.label() if row.spec.block.kind != "none" else "as built",
        "kind": row.spec.block.kind,
        "spec": row.spec.to_dict(),
        "sites": row.sites,
        "params": {
            "injected": row.params_injected,
            "added": row.params_added,
            "added_pct": row.params_pct,
            "formula": count(check.predicted) if check else None,
            "formula_weights": count(check.weights_formula) if check else None,
            "formula_bias_terms": check.bias_terms if check else None,
            "formula_matches": check.exact if check else None,
            "formula_expression": getattr(check, "expression", None),
        },
        "flops": _flops(result.baseline_flops, row.flops),
        "native": _native(result, row),
        "replaces": _replaces(row),
        **_report_parts(row.flops),
        "training_step": None if row.training is None or base_step is None else {
            **row.training.to_dict(),
            "flops_added": row.training.total - base_step.total,
            "saved_bytes_added": row.training.saved_bytes - base_step.saved_bytes,
            "bytes": bytes_dict(row.cost, result.baseline_cost, training=True),
        },
        "by_module": None if row.modules is None else [m.to_dict() for m in row.modules],
        "by_stage": [
            {
                "stage": s.stage, "blocks": s.blocks, "channels": list(s.channels),
                "block_params": s.block_params, "formula": count(s.formula),
                "block_flops_fc_only": s.flops_fc_only, "block_flops_all_ops": s.flops_all_ops,
                "block_bytes": s.block_bytes,
            }
            for s in row.stages
        ],
        "bytes": bytes_dict(row.cost, result.baseline_cost),
        "roofline": row_roofline_dict(result.roofline, index),
    }


def results_dict(result: ComplexityResult) -> dict[str, Any]:
    """The envelope's ``results``: the baseline once, then the variants."""
    return {
        "arch": result.arch,
        "title": result.title,
        "image_size": result.input_size,
        "flops_unit": "fvcore: one multiply-add = one FLOP; batch 1",
        "flops_error": result.flops_error,
        "dtype": result.dtype,
        "bytes_unit": BYTES_UNIT,
        "bytes_error": result.bytes_error,
        "baseline": baseline_dict(result),
        "rows": [row_dict(result, row, index) for index, row in enumerate(result.rows)],
        "roofline": roofline_dict(result.roofline),
        "warnings": list(result.warnings),
    }
