"""The SE paper's closed form for the parameters SE blocks add, next to what was counted.

    added weights = (2 / r) * sum_s N_s * C_s**2        (SE paper, section 4)

The released models also have FC biases: C/r + C more per block. The formula assumes the hidden
width is exactly C / r; where secli had to round it down or raise it to ``--min-hidden``, the
measured count differs and ``exact`` says so instead of hiding it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from secli.build.sites import Site


@dataclass(frozen=True)
class StageFormula:
    stage: int
    blocks: int  # N_s
    channels: tuple[int, ...]  # the distinct C_s in the stage (several for pre/identity)
    weights_formula: float  # (2/r) * sum C^2 over the stage's blocks
    bias_terms: int  # sum (hidden + C) when biases are on, else 0
    measured: int  # parameters of the stage's blocks, counted


@dataclass(frozen=True)
class FormulaCheck:
    ratio: int
    bias: bool
    weights_formula: float
    bias_terms: int
    measured: int
    stages: list[StageFormula] = field(default_factory=list)

    @property
    def predicted(self) -> float:
        return self.weights_formula + self.bias_terms

    @property
    def exact(self) -> bool:
        return abs(self.predicted - self.measured) < 0.5

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(predicted=self.predicted, exact=self.exact)
        return data


def se_formula(sites: list[Site], ratio: int, bias: bool) -> FormulaCheck | None:
    """The closed form for secli's own SE sites; None when there are none (SK, native SE)."""
    se_sites = [s for s in sites if s.kind == "se"]
    if not se_sites:
        return None
    stages = []
    for stage in sorted({s.stage for s in se_sites}):
        members = [s for s in se_sites if s.stage == stage]
        stages.append(
            StageFormula(
                stage=stage,
                blocks=len(members),
                channels=tuple(sorted({s.channels for s in members})),
                weights_formula=sum(2 * s.channels**2 / ratio for s in members),
                bias_terms=sum((s.hidden or 0) + s.channels for s in members) if bias else 0,
                measured=sum(s.params for s in members),
            )
        )
    return FormulaCheck(
        ratio=ratio,
        bias=bias,
        weights_formula=sum(st.weights_formula for st in stages),
        bias_terms=sum(st.bias_terms for st in stages),
        measured=sum(st.measured for st in stages),
        stages=stages,
    )
