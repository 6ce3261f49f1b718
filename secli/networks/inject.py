"""Putting blocks into a network at its sites, and reporting what was added."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from secli.blocks.registry import NO_BLOCK, get_kind
from secli.blocks.spec import BlockSpec
from secli.networks.architectures.base import Adapter, Target
from secli.networks.native_attention import discover_attention_sites
from secli.networks.patterns import pattern_targets
from secli.networks.sites import Site, count_params, site_name
from secli.networks.structure import structure_targets
from secli.util.errors import SecliUsageError


@dataclass
class InjectionReport:
    """What ``inject`` did: the sites it filled (or found) and the parameter counts."""

    arch: str
    block: BlockSpec
    sites: list[Site] = field(default_factory=list)
    params_base: int = 0
    params_injected: int = 0

    @property
    def params_added(self) -> int:
        return self.params_injected - self.params_base

    def stages(self) -> list[int]:
        return sorted({site.stage for site in self.sites})

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        block = asdict(self.block)
        if block["stages"] is not None:
            block["stages"] = list(block["stages"])
        return {
            "arch": self.arch,
            "block": block,
            "params": {
                "baseline": self.params_base,
                "injected": self.params_injected,
                "added": self.params_added,
            },
            "sites": [site.to_dict() for site in self.sites],
        }


def make_block(spec: BlockSpec, target: Target) -> nn.Module:
    """The block of ``spec``'s registered kind for one target (an unknown kind is refused)."""
    return get_kind(spec.kind).build(spec, target.shape)


def _select_stages(targets: list[Target], stages: tuple[int, ...] | None) -> list[Target]:
    if stages is None:
        return targets
    available = sorted({t.stage for t in targets})
    unknown = [s for s in stages if s not in available]
    if unknown:
        raise SecliUsageError(
            f"unknown stage {unknown[0]}; this network's stages are {', '.join(map(str, available))}"
        )
    return [t for t in targets if t.stage in stages]


def _native_refusal(arch: str, native: list[Site]) -> SecliUsageError:
    kinds = sorted({s.kind.removeprefix("native-").upper() for s in native})
    what = "SE modules" if kinds == ["SE"] else f"attention modules ({', '.join(kinds)})"
    return SecliUsageError(f"{arch} already has {len(native)} {what}",
                           hint="analyse them as they are with --block none")


def find_targets(model: nn.Module, adapter: Adapter | None, spec: BlockSpec, arch: str,
                 input_size: int) -> tuple[list[Target], str]:
    """The targets for ``spec`` and their source, in order: the patterns of ``spec.at``, the
    adapter's positions, or the residual units found by structure."""
    conv3x3 = get_kind(spec.kind).targets == "conv3x3"
    if spec.at:
        return pattern_targets(model, spec.at, conv3x3, input_size, arch), "pattern"
    if adapter is not None:
        if conv3x3:
            return adapter.sk_targets(model), "adapter"  # adapters without 3x3 residual convs refuse here
        return adapter.se_targets(model, spec.position), "adapter"
    return structure_targets(model, spec.position, conv3x3, input_size, arch), "structure"


def inject(model: nn.Module, adapter: Adapter | None, spec: BlockSpec, arch: str,
           input_size: int = 224) -> InjectionReport:
    """Fill the sites of ``model`` in place with blocks built from ``spec``.

    With ``spec.kind == "none"`` nothing is added and the report lists the attention modules
    the network already has (SE, ECA, CBAM, GC, SK), so pretrained networks are analysed through
    the same sites. Otherwise sites come from ``spec.at`` patterns, else the adapter, else the
    network's residual structure (``find_targets``); ``input_size`` is the side of the probe's
    input where one is needed.
    """
    report = InjectionReport(arch=arch, block=spec, params_base=count_params(model))
    native = discover_attention_sites(model, input_size)
    if spec.kind == NO_BLOCK:
        report.sites = native
        report.params_injected = report.params_base
        return report
    if native:
        raise _native_refusal(arch, native)
    kind = get_kind(spec.kind)
    targets, source = find_targets(model, adapter, spec, arch, input_size)
    targets = _select_stages(targets, spec.stages)
    blocks = [make_block(spec, target) for target in targets]  # validate every site before changing the model
    for target, block in zip(targets, blocks, strict=True):
        path = target.attach(block)
        report.sites.append(
            Site(
                name=site_name(spec.kind, target.stage, target.index),
                kind=spec.kind,
                module_path=path,
                gate_path=f"{path}.{kind.gate}",
                channels=target.channels,
                hidden=getattr(block, "hidden", None),
                stage=target.stage,
                index=target.index,
                position="after" if source == "pattern" else spec.position,
                params=count_params(block),
                impl=getattr(block, "impl_used", None),
                source=source,
            )
        )
    report.params_injected = count_params(model)
    return report
