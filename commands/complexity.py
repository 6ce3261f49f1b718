"""``secli complexity``: parameters and GFLOPs, baseline against injected, checked against the paper.

Every table is built from the results envelope alone (``tables(document)``), so a results file
written with ``--out`` renders exactly as the run did (``secli report FILE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from commands import options as opt
from commands.common import handle_errors, warn
from commands.progress import progress_bar
from commands.render import Table, emit
from secli.util.bounds import bound_help as _range

ComplexitySpec = Annotated[Optional[Path], typer.Option("--spec", help="A complexity experiment (YAML; see examples/) or a model spec; options given here override it.", rich_help_panel=opt.MODEL_PANEL)]
ResultsOut = Annotated[Optional[Path], typer.Option("--out", "-o", help="Also write the results (the JSON envelope) to this file; secli report re-renders it.")]


@handle_errors
@opt.block_options(sweep=True)
def complexity_command(
    model: Annotated[Optional[str], typer.Argument(help="Architecture (resnet50, resnext50_32x4d, timm:<name>) or a model file saved by 'secli inject --out'.", show_default=False)] = None,
    blocks: opt.BlockArgs = opt.BLOCKS,
    num_classes: opt.NumClasses = None,
    spec: ComplexitySpec = None,
    image_size: opt.ImageSize = None,
    input_size: opt.InputSizeAlias = None,
    by_stage: Annotated[bool, typer.Option("--by-stage", help="Also show each stage: N_s, C_s, block params, the paper's formula, block FLOPs.")] = False,
    by_module: Annotated[bool, typer.Option("--by-module", help="Also show parameters and FLOPs (FC only, all ops) per module as a tree, blocks marked.")] = False,
    depth: Annotated[Optional[int], typer.Option("--depth", help=f"With --by-module: how deep the tree goes (0 = the model) {_range('depth')}.", show_default="3")] = None,
    training_step: Annotated[bool, typer.Option("--training-step", help="Also count one training step: forward + backward FLOPs and the activation memory kept for backward.")] = False,
    out: ResultsOut = None,
    force: opt.Force = False,
    fmt: opt.Format = opt.OutputFormat.table,
) -> None:
    """Count parameters and GFLOPs of a network with and without SE/SK/ECA blocks; sweep variants."""
    from secli.complexity.workflow import complexity

    size = opt.pick("--image-size", image_size, "--input-size", input_size)
    if blocks.kind == "none":
        blocks.refuse("with --block none (it counts the SE modules a network already has)")
    with progress_bar("complexity", None, unit="models") as bar:
        result = complexity(
            model, block=blocks.kind, **blocks.options(), num_classes=num_classes, spec=spec, image_size=size,
            progress=bar.update, by_module=by_module, depth=depth, training_step=training_step, by_stage=by_stage,
            out=out, force=force,
        )
    for warning in result.warnings:
        warn(warning)
    document = result.to_dict()
    if fmt.value == "csv":  # one table: the most detailed asked for
        emit("csv", [csv_table(document)], None)
    else:
        emit(fmt.value, tables(document) if fmt.value != "json" else [], document)
    result.check_flops()


# ----------------------------------------------------------------------------- rendering


def tables(document: dict[str, Any]) -> list[Table]:
    """The tables of a complexity envelope (a run's, or a results file's)."""
    from commands.complexity_tree import step_table, tree_tables

    results, inputs = document["results"], document.get("inputs", {})
    out = [params_table(results), flops_table(results)]
    if inputs.get("by_stage"):
        out.append(stage_table(results))
    out += tree_tables(results)
    if results["baseline"].get("training_step") is not None:
        out.append(step_table(results))
    out[-1].notes += [f"warning: {w}" for w in results.get("warnings") or []]  # as profile's tables: 'secli report' shows them
    return out


def csv_table(document: dict[str, Any]) -> Table:
    """The one CSV table of a complexity envelope: the most detailed part it holds."""
    from commands.complexity_tree import flat_step_table, flat_tree_table

    results = document["results"]
    if results["baseline"].get("by_module") is not None:
        return flat_tree_table(results)
    if results["baseline"].get("training_step") is not None:
        return flat_step_table(results)
    return flat_stage_table(results) if document.get("inputs", {}).get("by_stage") else flat_table(results)


def _name(results: dict[str, Any]) -> str:
    return str(results.get("title") or results["arch"])


def _share(part: int | None, whole: int | None) -> float | None:
    return None if part is None or not whole else 100.0 * part / whole


def params_table(results: dict[str, Any]) -> Table:
    base = results["baseline"]["params"]
    rows: list[list[Any]] = [["baseline", None, base, None, None, None, None, None]]
    for row in results["rows"]:
        native = row.get("native")
        if row["kind"] == "none":
            if native:  # a network that has SE modules of its own: their share, not an increase
                rows.append([f"its {row['sites']} SE modules", row["sites"], native["params"], None,
                             _share(native["params"], base), None, None, None])
            continue
        p = row["params"]
        match = p["formula_matches"] if p["formula"] is not None else "n/a"
        rows.append([row["label"], row["sites"], p["injected"], p["added"], p["added_pct"],
                     p["formula_weights"], p["formula_bias_terms"], match])
    table = Table(
        title=f"{_name(results)}: parameters",
        columns=["variant", "sites", "params", "Δ params", "Δ params (%)", "(2/r)ΣN·C² (params)", "biases (params)", "match"],
        rows=rows,
        right_align={1, 2, 3, 4, 5, 6},
        formats={3: "+,d", 4: "+.2f", 5: ",.0f"},
    )
    table.notes.append(
        "(2/r)ΣN·C² = the SE paper's closed form for the FC weights; biases (C/r + C per block) apart; "
        "match: formula + biases = Δ params exactly (no: a hidden width was rounded or floored; n/a: no closed form, e.g. SK); "
        "for --block none, Δ params (%) is the SE modules' share"
    )
    for row in results["rows"]:
        if row["params"].get("formula_expression"):  # not SE's: say which form it is
            table.notes.append(f"{row['label']}: the formula column holds its own closed form, {row['params']['formula_expression']}")
    return table


def _g(flops: int | None) -> float | None:
    return None if flops is None else flops / 1e9


def _m(flops: int | None) -> float | None:
    return None if flops is None else flops / 1e6


def flops_table(results: dict[str, Any]) -> Table:
    base = results["baseline"]["flops"] or {}
    rows: list[list[Any]] = [["baseline", _g(base.get("fc_only")), None, None, _g(base.get("all_ops")), None, None]]
    for row in results["rows"]:
        native = row.get("native")
        if row["kind"] == "none":
            if native and native.get("flops_fc_only") is not None:  # the share of a network's own SE modules
                fc, al = native["flops_fc_only"], native["flops_all_ops"]
                rows.append([f"its {row['sites']} SE modules", _g(fc), None, _share(fc, base.get("fc_only")),
                             _g(al), None, _share(al, base.get("all_ops"))])
            continue
        f = row["flops"] or {}
        rows.append([row["label"], _g(f.get("fc_only")), _m(f.get("fc_only_added")), f.get("fc_only_added_pct"),
                     _g(f.get("all_ops")), _m(f.get("all_ops_added")), f.get("all_ops_added_pct")])
    size = results["image_size"]
    table = Table(
        title=f"{_name(results)}: FLOPs at 1x3x{size}x{size} (fvcore: 1 multiply-add = 1 FLOP)",
        columns=["variant", "GFLOPs (FC only)", "Δ MFLOPs", "Δ (%)", "GFLOPs (all ops)", "Δ MFLOPs", "Δ (%)"],
        rows=rows,
        formats={1: ".4f", 2: "+,.2f", 3: "+.2f", 4: ".4f", 5: "+,.2f", 6: "+.2f"},
    )
    table.notes += flops_notes(results)
    return table


def flops_notes(results: dict[str, Any]) -> list[str]:
    if results.get("flops_error"):
        return [f"FLOPs not counted: {results['flops_error']}"]
    notes = [
        "FC only = fvcore's default handles (conv, linear, BN, adaptive avg pool): SE's pooling, gate and scaling are skipped",
        "all ops = plus conv/linear bias adds, activations, gates, mul/add (1 per output element), mean/amax (1 per input element), "
        "sum (1 add per element reduced away), softmax (3 per element), pools (window x output); docs/complexity.md has the table",
    ]
    reports = [results["baseline"]] + [r for r in results["rows"] if r["kind"] != "none"]
    for key, text in (("not_counted", "not counted (no arithmetic): "),
                      ("unsupported", "UNSUPPORTED (cost unknown to secli, missing from both totals): ")):
        most: dict[str, int] = {}
        for report in reports:
            for op, n in (report.get(key) or {}).items():
                most[op] = max(most.get(op, 0), n)
        if most:
            notes.append(text + ", ".join(f"{op} x{n}" for op, n in most.items()))
    checked = sum(1 for r in reports if (r.get("crosscheck") or {}).get("agree"))
    notes.append(
        "cross-check: conv/linear multiply-adds equal torch FlopCounterMode's FLOPs / 2 "
        f"({checked} model{'s' if checked != 1 else ''} counted)"
    )
    return notes


def stage_table(results: dict[str, Any]) -> Table:
    rows = [
        [row["label"], s["stage"], s["blocks"], ",".join(map(str, s["channels"])), s["block_params"], s["formula"],
         _m(s["block_flops_fc_only"]), _m(s["block_flops_all_ops"])]
        for row in results["rows"] for s in row["by_stage"]
    ]
    return Table(
        title="per stage (blocks only)",
        columns=["variant", "stage", "N_s", "C_s", "block params", "formula (+biases, params)", "block MFLOPs (FC only)", "block MFLOPs (all ops)"],
        rows=rows,
        right_align={1, 2, 3, 4, 5, 6, 7},
        formats={5: ",.0f", 6: ",.3f", 7: ",.3f"},
    )


def flat_table(results: dict[str, Any]) -> Table:
    """One CSV-friendly row per variant, raw numbers."""
    columns = [
        "variant", "arch", "image_size", "sites", "params_baseline", "params_injected", "params_added",
        "formula_weights", "formula_bias_terms", "formula_matches", "flops_fc_only_baseline",
        "flops_fc_only_injected", "flops_all_ops_baseline", "flops_all_ops_injected",
    ]
    base = results["baseline"]
    bf = base["flops"] or {}
    rows = []
    for row in results["rows"]:
        p, f = row["params"], row["flops"] or {}
        rows.append([
            row["label"], results["arch"], results["image_size"], row["sites"], base["params"], p["injected"],
            p["added"], p["formula_weights"], p["formula_bias_terms"], p["formula_matches"],
            bf.get("fc_only"), f.get("fc_only"), bf.get("all_ops"), f.get("all_ops"),
        ])
    return Table(title="", columns=columns, rows=rows)


def flat_stage_table(results: dict[str, Any]) -> Table:
    rows = [
        [row["label"], s["stage"], s["blocks"], " ".join(map(str, s["channels"])), s["block_params"], s["formula"],
         s["block_flops_fc_only"], s["block_flops_all_ops"]]
        for row in results["rows"] for s in row["by_stage"]
    ]
    return Table(title="", columns=["variant", "stage", "blocks", "channels", "block_params", "formula", "block_flops_fc_only", "block_flops_all_ops"], rows=rows)
