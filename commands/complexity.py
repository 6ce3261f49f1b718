"""``secli complexity``: parameters and GFLOPs, baseline against injected, checked against the paper."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from commands import options as opt
from commands.common import handle_errors
from commands.progress import progress_bar
from commands.render import Table, emit

SWEEP_PANEL = "Sweep (one row per combination)"

Ratios = Annotated[Optional[str], typer.Option("--ratios", help="Comma list of ratios, one row each (Table 10: 2,4,8,16,32).", rich_help_panel=SWEEP_PANEL)]
StagesRows = Annotated[Optional[list[str]], typer.Option("--stages", help="Stages in the paper's numbering (ResNet: 2..5). Repeat for one row each: --stages 2 --stages 3; '2,3' is one row with both.", rich_help_panel=SWEEP_PANEL)]
Positions = Annotated[Optional[str], typer.Option("--positions", help="Comma list of SE positions, one row each (standard,pre,post,identity,3x3).", rich_help_panel=SWEEP_PANEL)]
SqueezeList = Annotated[Optional[str], typer.Option("--squeeze", help="SE squeeze: avg | max | none; a comma list gives one row each.", rich_help_panel=SWEEP_PANEL)]
GateList = Annotated[Optional[str], typer.Option("--gate", help="SE gate: sigmoid | tanh | relu | hardsigmoid; a comma list gives one row each.", rich_help_panel=SWEEP_PANEL)]
PathsList = Annotated[Optional[str], typer.Option("--paths", help="SK paths M; a comma list gives one row each (K3+K5+K7: 3).", rich_help_panel=SWEEP_PANEL)]


@handle_errors
def complexity_command(
    model: Annotated[Optional[str], typer.Argument(help="Architecture (resnet50, resnext50_32x4d, timm:<name>) or a model file saved by 'secli inject --out'.", show_default=False)] = None,
    block: opt.Block = None,
    ratio: opt.Ratio = None,
    ratios: Ratios = None,
    min_hidden: opt.MinHidden = None,
    position: opt.Position = None,
    positions: Positions = None,
    stages: StagesRows = None,
    squeeze: SqueezeList = None,
    gate: GateList = None,
    bias: opt.Bias = None,
    paths: PathsList = None,
    groups: opt.Groups = None,
    kernel_size: opt.KernelSize = None,
    num_classes: opt.NumClasses = None,
    spec: Annotated[Optional[Path], typer.Option("--spec", help="A complexity experiment (YAML; see examples/) or a model spec; options given here override it.", rich_help_panel=opt.MODEL_PANEL)] = None,
    input_size: Annotated[Optional[int], typer.Option("--input-size", help="Square input side (default: the architecture's, 224; Inception v3 299).")] = None,
    by_stage: Annotated[bool, typer.Option("--by-stage", help="Also show each stage: N_s, C_s, block params, the paper's formula, block FLOPs.")] = False,
    by_module: Annotated[bool, typer.Option("--by-module", help="Also show parameters and FLOPs (FC only, all ops) per module as a tree, blocks marked.")] = False,
    depth: Annotated[Optional[int], typer.Option("--depth", help="With --by-module: how deep the tree goes (0 = the model; default 3).")] = None,
    training_step: Annotated[bool, typer.Option("--training-step", help="Also count one training step: forward + backward FLOPs and the activation memory kept for backward.")] = False,
    fmt: Annotated[opt.OutputFormat, typer.Option("--format", "-f", help="Output format.")] = opt.OutputFormat.table,
) -> None:
    """Count parameters and GFLOPs of a network with and without SE/SK/ECA blocks; sweep variants."""
    from secli.complexity.workflow import complexity

    with progress_bar("counting", None, enabled=fmt.value != "json") as bar:
        result = complexity(
            model, block=block, ratio=ratio, ratios=ratios, min_hidden=min_hidden, position=position,
            positions=positions, stages=stages, squeeze=squeeze, gate=gate, bias=bias, paths=paths,
            groups=groups, kernel_size=kernel_size, num_classes=num_classes, spec=spec, input_size=input_size, progress=bar.update,
            by_module=by_module, depth=depth, training_step=training_step,
        )
    _emit(result, fmt.value, by_stage, by_module)
    result.check_flops()


# ----------------------------------------------------------------------------- rendering


def _g(flops: int | None) -> str:
    return "-" if flops is None else f"{flops / 1e9:.4f}"


def _m(added: int | None) -> str:
    return "-" if added is None else f"{added / 1e6:+,.2f}"


def _pct(added: int | None, base: int | None) -> str:
    return "-" if added is None or not base else f"{100.0 * added / base:+.2f}%"


def _formula_cells(row: Any) -> list[str]:
    check = row.formula
    if check is None:
        return ["-", "-", "n/a" if row.spec.block.kind != "none" else "-"]
    return [f"{check.weights_formula:,.0f}", f"{check.bias_terms:,}", "yes" if check.exact else "no"]


def params_table(result: Any) -> Table:
    title = result.title
    rows: list[list[Any]] = [["baseline", "-", result.params_baseline, "-", "-", "-", "-", "-"]]
    for row in result.rows:
        if row.spec.block.kind == "none":
            if row.sites:  # a network that has SE modules of its own: show their share
                native = sum(s.params for s in row.site_list)
                pct = f"{100.0 * native / result.params_baseline:.2f}%"
                rows.append([f"its {row.sites} SE modules", row.sites, native, "-", pct, "-", "-", "-"])
            continue
        rows.append([row.label, row.sites, row.params_injected, row.params_added, f"{row.params_pct:+.2f}%", *_formula_cells(row)])
    table = Table(
        title=(title or result.arch) + ": parameters",
        columns=["variant", "sites", "params", "added", "%", "(2/r)ΣN·C²", "biases", "match"],
        rows=rows,
        right_align={1, 2, 3, 4, 5, 6},
    )
    table.notes.append(
        "(2/r)ΣN·C² = the SE paper's closed form for the FC weights; biases (C/r + C per block) apart; "
        "match: formula + biases = added exactly (no: a hidden width was rounded or floored; n/a: no closed form, e.g. SK)"
    )
    for row in result.rows:
        if row.formula is not None and hasattr(row.formula, "expression"):  # not SE's: say which form it is
            table.notes.append(f"{row.label}: the formula column holds its own closed form, {row.formula.expression}")
    return table


def flops_table(result: Any) -> Table:
    title = result.title
    base = result.baseline_flops
    rows: list[list[Any]] = [["baseline", _g(base.fc_only if base else None), "-", "-", _g(base.all_ops if base else None), "-", "-"]]
    for row in result.rows:
        if row.spec.block.kind == "none":
            if row.sites and base is not None:  # the share of a network's own SE modules
                fc_only, all_ops = (sum(x) for x in zip(*(base.module_split(s.module_path) for s in row.site_list)))
                rows.append([
                    f"its {row.sites} SE modules", _g(fc_only), "-", _pct(fc_only, base.fc_only).lstrip("+"),
                    _g(all_ops), "-", _pct(all_ops, base.all_ops).lstrip("+"),
                ])
            continue
        f = row.flops
        fc = f.fc_only - base.fc_only if f and base else None
        al = f.all_ops - base.all_ops if f and base else None
        rows.append([
            row.label, _g(f.fc_only if f else None), _m(fc), _pct(fc, base.fc_only if base else None),
            _g(f.all_ops if f else None), _m(al), _pct(al, base.all_ops if base else None),
        ])
    size = result.input_size
    table = Table(
        title=f"{title or result.arch}: GFLOPs at 1x3x{size}x{size} (fvcore: 1 multiply-add = 1 FLOP)",
        columns=["variant", "FC only", "+M", "%", "all ops", "+M", "%"],
        rows=rows,
    )
    table.notes += flops_notes(result)
    return table


def flops_notes(result: Any) -> list[str]:
    if result.flops_error:
        return [f"FLOPs not counted: {result.flops_error}"]
    notes = [
        "FC only = fvcore's default handles (conv, linear, BN, adaptive avg pool): SE's pooling, gate and scaling are skipped; "
        "+M = added MFLOPs",
        "all ops = plus conv/linear bias adds, activations, gates, mul/add (1 per output element), mean/amax (1 per input element), "
        "sum (1 add per element reduced away), softmax (3 per element), pools (window x output); README has the table",
    ]
    reports = [result.baseline_flops] + [r.flops for r in result.rows if r.flops is not result.baseline_flops]
    not_counted: dict[str, int] = {}
    for report in reports:
        for op, n in (report.not_counted if report else {}).items():
            not_counted[op] = max(not_counted.get(op, 0), n)
    if not_counted:
        notes.append("not counted (no arithmetic): " + ", ".join(f"{op} x{n}" for op, n in not_counted.items()))
    unsupported: dict[str, int] = {}
    for report in reports:
        for op, n in (report.unsupported if report else {}).items():
            unsupported[op] = max(unsupported.get(op, 0), n)
    if unsupported:
        notes.append(
            "UNSUPPORTED (cost unknown to secli, missing from both totals): "
            + ", ".join(f"{op} x{n}" for op, n in unsupported.items())
        )
    n_checked = sum(1 for r in reports if r is not None and r.crosscheck_ok)
    notes.append(
        f"cross-check: conv/linear multiply-adds equal torch FlopCounterMode's FLOPs / 2 "
        f"({n_checked} model{'s' if n_checked != 1 else ''} counted)"
    )
    return notes


def stage_table(result: Any) -> Table:
    rows = []
    for row in result.rows:
        for s in row.stages:
            rows.append([
                row.label, s.stage, s.blocks, ",".join(map(str, s.channels)), s.block_params,
                "-" if s.formula is None else f"{s.formula:,.0f}",
                "-" if s.flops_fc_only is None else f"{s.flops_fc_only / 1e6:,.3f}",
                "-" if s.flops_all_ops is None else f"{s.flops_all_ops / 1e6:,.3f}",
            ])
    return Table(
        title="per stage (blocks only)",
        columns=["variant", "stage", "N_s", "C_s", "block params", "formula (+biases)", "MFLOPs (FC only)", "MFLOPs (all ops)"],
        rows=rows,
        right_align={1, 2, 3, 4, 5, 6, 7},
    )


def flat_table(result: Any) -> Table:
    """One CSV-friendly row per variant, raw numbers."""
    columns = [
        "variant", "arch", "input_size", "sites", "params_baseline", "params_injected", "params_added",
        "formula_weights", "formula_bias_terms", "formula_matches", "flops_fc_only_baseline",
        "flops_fc_only_injected", "flops_all_ops_baseline", "flops_all_ops_injected",
    ]
    base = result.baseline_flops
    rows = []
    for row in result.rows:
        f, c = row.flops, row.formula
        rows.append([
            row.label, result.arch, result.input_size, row.sites, row.params_baseline, row.params_injected,
            row.params_added, c.weights_formula if c else None, c.bias_terms if c else None, c.exact if c else None,
            base.fc_only if base else None, f.fc_only if f else None,
            base.all_ops if base else None, f.all_ops if f else None,
        ])
    return Table(title="", columns=columns, rows=rows)


def flat_stage_table(result: Any) -> Table:
    rows = [
        [row.label, s.stage, s.blocks, " ".join(map(str, s.channels)), s.block_params, s.formula, s.flops_fc_only, s.flops_all_ops]
        for row in result.rows for s in row.stages
    ]
    return Table(title="", columns=["variant", "stage", "blocks", "channels", "block_params", "formula", "block_flops_fc_only", "block_flops_all_ops"], rows=rows)


def _emit(result: Any, fmt: str, by_stage: bool, by_module: bool = False) -> None:
    from commands.complexity_tree import flat_step_table, flat_tree_table, step_table, tree_tables

    if fmt == "json":
        emit(fmt, [], result.to_json())
        return
    if fmt == "csv":  # one table: the most detailed asked for
        if by_module:
            table = flat_tree_table(result)
        elif result.baseline_training is not None:
            table = flat_step_table(result)
        else:
            table = flat_stage_table(result) if by_stage else flat_table(result)
        emit(fmt, [table], None)
        return
    tables = [params_table(result), flops_table(result)]
    if by_stage:
        tables.append(stage_table(result))
    if by_module:
        tables += tree_tables(result)
    if result.baseline_training is not None:
        tables.append(step_table(result))
    emit(fmt, tables, None)
