"""The figures of a complexity count, and their JSON: what ``secli complexity --format json`` prints.

Kept apart from the counting so that the CLI's renderers, the Python API and the tests read the
same dataclasses without pulling in fvcore or building a network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from secli.build.formula import Check
from secli.build.sites import Site
from secli.build.spec import ModelSpec
from secli.complexity.flops import FlopReport
from secli.complexity.modules import ModuleCost
from secli.complexity.training import StepCost
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

    def to_dicts(self) -> list[dict[str, Any]]:
        """One JSON object per row, always a list."""
        return [row_dict(self, row) for row in self.rows]

    def to_json(self) -> dict[str, Any] | list[dict[str, Any]]:
        """Exactly what ``--format json`` prints: the row's object for one row, else the list."""
        rows = self.to_dicts()
        return rows[0] if len(rows) == 1 else rows

    def check_flops(self) -> None:
        """Raise the FLOP failure, if any; callers show the parameter part first."""
        if self.flops_error:
            raise SecliError(self.flops_error + " (the parameter counts above are unaffected)")


def _flop_part(base: FlopReport | None, inj: FlopReport | None, attr: str) -> dict[str, Any]:
    if base is None or inj is None:
        return {"baseline": None, "injected": None, "added": None, "relative_pct": None, "flops_added": None}
    b, i = getattr(base, attr), getattr(inj, attr)
    return {
        "baseline": b / 1e9,
        "injected": i / 1e9,
        "added": (i - b) / 1e9,
        "relative_pct": 100.0 * (i - b) / b if b else None,
        "flops_added": i - b,
    }


def row_dict(result: ComplexityResult, row: Row) -> dict[str, Any]:
    """The JSON object of one row (keys named in the issue: params.*, gflops.*)."""
    check = row.formula
    base, inj = result.baseline_flops, row.flops
    return {
        "label": row.label,
        "spec": row.spec.to_dict(),
        "input_size": result.input_size,
        "sites": row.sites,
        "params": {
            "baseline": row.params_baseline,
            "injected": row.params_injected,
            "added": row.params_added,
            "added_pct": row.params_pct,
            "formula": check.predicted if check else None,
            "formula_weights": check.weights_formula if check else None,
            "formula_bias_terms": check.bias_terms if check else None,
            "formula_matches": check.exact if check else None,
        },
        "gflops": _flop_part(base, inj, "fc_only"),
        "gflops_all_ops": _flop_part(base, inj, "all_ops"),
        "flops_unit": "fvcore: one multiply-add = one FLOP; batch 1",
        "crosscheck": None if inj is None else {
            "fvcore_conv_linear": inj.gemm,
            "flopcountermode_conv_linear_halved": inj.torch_gemm,
            "agree": inj.crosscheck_ok,
        },
        "not_counted": None if inj is None else inj.not_counted,
        "unsupported": None if inj is None else inj.unsupported,
        "by_operator": None if inj is None else inj.by_operator,
        "training_step": None if row.training is None or result.baseline_training is None else {
            "baseline": result.baseline_training.to_dict(), "injected": row.training.to_dict(),
            "flops_added": row.training.total - result.baseline_training.total,
            "saved_bytes_added": row.training.saved_bytes - result.baseline_training.saved_bytes,
        },
        "by_module": None if row.modules is None else [m.to_dict() for m in row.modules],
        "by_module_baseline": None if result.baseline_modules is None else [m.to_dict() for m in result.baseline_modules],
        "by_stage": [
            {
                "stage": s.stage, "blocks": s.blocks, "channels": list(s.channels),
                "block_params": s.block_params, "formula": s.formula,
                "block_flops_fc_only": s.flops_fc_only, "block_flops_all_ops": s.flops_all_ops,
            }
            for s in row.stages
        ],
    }
