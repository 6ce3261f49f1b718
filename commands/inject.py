"""``secli inject``: put SE, SK or ECA blocks into a named architecture and save the result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from commands import options as opt
from commands.common import handle_errors, stdout
from commands.render import Table, emit


@handle_errors
def inject_command(
    arch: Annotated[Optional[str], typer.Argument(help="Architecture (e.g. resnet50, vgg16_bn, timm:resnet50).", show_default=False)] = None,
    block: opt.Block = None,
    ratio: opt.Ratio = None,
    min_hidden: opt.MinHidden = None,
    position: opt.Position = None,
    stages: opt.Stages = None,
    squeeze: opt.Squeeze = None,
    gate: opt.Gate = None,
    bias: opt.Bias = None,
    init: opt.Init = None,
    paths: opt.Paths = None,
    groups: opt.Groups = None,
    kernel_size: opt.KernelSize = None,
    impl: opt.Impl = None,
    weights: opt.Weights = None,
    num_classes: opt.NumClasses = None,
    spec: opt.SpecFile = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Save the injected model (spec + state dict) to this file.")] = None,
    save_spec: Annotated[Optional[Path], typer.Option("--save-spec", help="Also write the spec as YAML to this file.")] = None,
    force: opt.Force = False,
    list_archs: Annotated[bool, typer.Option("--list", help="List the architectures and the positions each supports.")] = False,
    fmt: Annotated[opt.OutputFormat, typer.Option("--format", "-f", help="Output format.")] = opt.OutputFormat.table,
) -> None:
    """Put SE or SK blocks into a network at the paper's positions; report the sites."""
    if list_archs:
        _list_architectures(fmt.value)
        return
    from secli.build.workflow import inject

    result = inject(
        arch, spec=spec, block=block, ratio=ratio, min_hidden=min_hidden, position=position, stages=stages,
        squeeze=squeeze, gate=gate, bias=bias, init=init, paths=paths, groups=groups, kernel_size=kernel_size,
        impl=impl, weights=weights, num_classes=num_classes, out=out, save_spec=save_spec, force=force,
    )
    emit(fmt.value, [_sites_table(result)], result.to_dict())


def _sites_table(result: Any) -> Table:
    built, check, saved = result.built, result.formula, result.saved
    report = built.report
    kind = report.block.kind
    what = "existing SE modules" if kind == "none" else "sites"
    table = Table(
        title=f"{built.label}: {len(report.sites)} {what}",
        columns=["site", "module", "C", "hidden", "params", "impl"],
        rows=[[s.name, s.module_path, s.channels, s.hidden, s.params, s.impl or "-"] for s in report.sites],
        right_align={2, 3, 4},
    )
    pct = 100.0 * report.params_added / report.params_base if report.params_base else 0.0
    table.notes.append(
        f"params: baseline {report.params_base:,} -> injected {report.params_injected:,} "
        f"({report.params_added:+,}, {pct:+.2f}%)"
    )
    if check is not None and hasattr(check, "expression"):  # a kind's registered per-site form
        verdict = "matches" if check.exact else "differs"
        table.notes.append(
            f"closed form ({check.expression}) = {check.predicted:,.0f}; counted {check.measured:,} ({verdict})"
        )
    elif check is not None:
        verdict = "matches" if check.exact else "differs: hidden widths rounded or floored"
        bias_part = f" + biases {check.bias_terms:,}" if check.bias else ""
        table.notes.append(
            f"paper formula (2/r)·ΣN_s·C_s² = {check.weights_formula:,.0f}{bias_part} = "
            f"{check.predicted:,.0f}; counted {check.measured:,} ({verdict})"
        )
    if kind == "none" and not report.sites:
        table.notes.append("this network has no SE modules; add some with --block se")
    for path in saved:
        table.notes.append(f"saved {path}")
    return table


def _list_architectures(fmt: str) -> None:
    from secli.build.workflow import list_architectures

    payload = list_architectures()
    table = Table(
        title="Architectures",
        columns=["name", "family", "SE positions", "SK", "input"],
        rows=[[r["name"], r["family"], r["positions"], r["sk"], r["default_input"]] for r in payload],
        right_align={4},
    )
    emit(fmt, [table], payload)
    if fmt == "table":
        stdout.print("  stages use the paper's numbering (ResNet: 2..5 = layer1..layer4)", style="dim")
