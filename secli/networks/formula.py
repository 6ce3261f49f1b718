"""Closed forms for the parameters blocks add, next to what was counted.

SE has the paper's own form:

    added weights = (2 / r) * sum_s N_s * C_s**2        (SE paper, section 4)

The released models also have FC biases: C/r + C more per block. The formula assumes the hidden
width is exactly C / r; where secli had to round it down or raise it to ``--min-hidden``, the
measured count differs and ``exact`` says so instead of hiding it.

Every other registered kind with a per-site closed form (``BlockKind.params``; ECA: k) gets a
``ClosedFormCheck`` of the same layout, so reports treat them alike; kinds without one (SK,
whose count depends on the replaced conv's input width) get None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from secli.blocks.registry import NO_BLOCK, find_kind
from secli.blocks.spec import BlockSpec
from secli.networks.sites import Site


@dataclass(frozen=True)
class StageFormula:
    stage: int
    blocks: int  # N_s
    channels: tuple[int, ...]  # the distinct C_s in the stage (several for pre/identity)
    weights_formula: float  # (2/r) * sum C^2 over the stage's blocks
    bias_terms: int  # sum (hidden + C) when biases are on, else 0
    measured: int  # parameters of the stage's blocks, counted


class _ClosedFormVerdict:
    """What every check derives from its fields: the prediction and whether it is exact."""

    weights_formula: float
    bias_terms: int
    measured: int

    @property
    def predicted(self) -> float:
        return self.weights_formula + self.bias_terms

    @property
    def exact(self) -> bool:
        return abs(self.predicted - self.measured) < 0.5

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)  # type: ignore[call-overload]  # subclasses are dataclasses
        data.update(predicted=self.predicted, exact=self.exact)
        return data


@dataclass(frozen=True)
class FormulaCheck(_ClosedFormVerdict):
    ratio: int
    bias: bool
    weights_formula: float
    bias_terms: int
    measured: int
    stages: list[StageFormula] = field(default_factory=list)


def stage_formulas(
    sites: list[Site], weights: Callable[[Site], float], biases: Callable[[Site], int]
) -> list[StageFormula]:
    """Group ``sites`` by stage: N_s, the distinct C_s, the closed form's two parts, the counted params."""
    stages = []
    for stage in sorted({s.stage for s in sites}):
        members = [s for s in sites if s.stage == stage]
        stages.append(
            StageFormula(
                stage=stage,
                blocks=len(members),
                channels=tuple(sorted({s.channels for s in members})),
                weights_formula=sum(weights(s) for s in members),
                bias_terms=sum(biases(s) for s in members),
                measured=sum(s.params for s in members),
            )
        )
    return stages


def se_formula(sites: list[Site], ratio: int, bias: bool) -> FormulaCheck | None:
    """The closed form for secli's own SE sites; None when there are none (SK, native SE)."""
    se_sites = [s for s in sites if s.kind == "se"]
    if not se_sites:
        return None
    stages = stage_formulas(
        se_sites,
        weights=lambda s: 2 * s.channels**2 / ratio,
        biases=(lambda s: (s.hidden or 0) + s.channels) if bias else (lambda s: 0),
    )
    return FormulaCheck(
        ratio=ratio,
        bias=bias,
        weights_formula=sum(st.weights_formula for st in stages),
        bias_terms=sum(st.bias_terms for st in stages),
        measured=sum(st.measured for st in stages),
        stages=stages,
    )


@dataclass(frozen=True)
class ClosedFormCheck(_ClosedFormVerdict):
    """A kind's per-site closed form (``BlockKind.params``) summed, next to what was counted.

    Same fields as ``FormulaCheck`` where they mean the same (``weights_formula`` holds the whole
    closed form, ``bias_terms`` is 0), plus the kind and the form in words.
    """

    kind: str
    expression: str
    weights_formula: float
    bias_terms: int
    measured: int
    stages: list[StageFormula] = field(default_factory=list)


Check = FormulaCheck | ClosedFormCheck

#: Kinds whose paper gives its own closed form, used instead of the per-site one.
PAPER_FORMULAS: dict[str, Callable[[list[Site], BlockSpec], Check | None]] = {
    "se": lambda sites, spec: se_formula(sites, spec.ratio, spec.bias),
}


def per_site_formula(sites: list[Site], spec: BlockSpec) -> ClosedFormCheck | None:
    """Sum the kind's registered per-site closed form over its sites; None without one."""
    kind = find_kind(spec.kind)
    params = kind.params if kind is not None else None
    if kind is None or params is None:
        return None
    own = [s for s in sites if s.kind == kind.name]
    if not own:
        return None
    stages = stage_formulas(own, weights=lambda s: params(s.channels, s.hidden, spec), biases=lambda s: 0)
    return ClosedFormCheck(
        kind=kind.name,
        expression=kind.params_formula or "per-site closed form",
        weights_formula=sum(st.weights_formula for st in stages),
        bias_terms=0,
        measured=sum(st.measured for st in stages),
        stages=stages,
    )


def closed_form(sites: list[Site], spec: BlockSpec) -> Check | None:
    """The closed form for ``spec``'s kind: the paper's where it has one (SE), else the
    registered per-site form (ECA), else None (SK, and ``none``: a network's own modules)."""
    if spec.kind == NO_BLOCK:
        return None
    paper = PAPER_FORMULAS.get(spec.kind)
    return paper(sites, spec) if paper else per_site_formula(sites, spec)
