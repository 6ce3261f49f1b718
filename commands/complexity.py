"""``secli complexity``: parameters and GFLOPs, baseline against injected, checked against the paper.

Every table is built from the results envelope alone (``tables(document)``), so a results file
written with ``--out`` renders exactly as the run did (``secli report FILE``).
"""

from __future__ import annotations

from typing import Any

from commands import options as opt
from commands.block_options import BLOCKS, BlockArgs, block_options
from commands.common import handle_errors, warn
from commands.complexity_options import (
    ByModule,
    ByStage,
    ComplexitySpec,
    Depth,
    Dtype,
    ImageSize,
    Model,
    RooflineBatch,
    TrainingStep,
)
from commands.complexity_tree import baseline_label
from commands.progress import progress_bar
from commands.render import Table, emit, out_format, write_results


@handle_errors
@block_options(sweep=True)
def complexity_command(
    model: Model = None,
    num_classes: opt.NumClasses = None,
    model_kwargs: opt.ModelKwargs = None,
    trust_code: opt.TrustCode = False,
    spec: ComplexitySpec = None,
    blocks: BlockArgs = BLOCKS,
    image_size: ImageSize = None,
    input_size: opt.InputSizeAlias = None,
    by_stage: ByStage = False,
    by_module: ByModule = False,
    depth: Depth = None,
    training_step: TrainingStep = False,
    dtype: Dtype = "fp32",
    roofline: opt.Roofline = None,
    roofline_batch: RooflineBatch = None,
    out: opt.ResultsOut = None,
    force: opt.Force = False,
    fmt: opt.Format = opt.OutputFormat.table,
) -> None:
    """Count parameters and GFLOPs of a network with and without attention blocks; sweep variants.

    Example: secli complexity resnet50 --block se,eca,sk

    Example: secli complexity resnet18 --block se --ratios 4,8,16 --by-stage --out ratios.csv
    """
    from secli.complexity.workflow import complexity

    size = opt.pick("--image-size", image_size, "--input-size", input_size)
    if blocks.kind == "none":
        blocks.refuse("with --block none (it counts the SE modules a network already has)")
    file_fmt = out_format(out, fmt.value)  # a .csv or .md file is written here, the envelope by the library
    if file_fmt not in (None, "json"):
        from secli.util.outputs import check_writable

        check_writable(out, force)  # before counting, not after
    with progress_bar("complexity", None, unit="models") as bar:
        result = complexity(
            model, block=blocks.kind, **blocks.options(), num_classes=num_classes, spec=spec, image_size=size,
            progress=bar.update, by_module=by_module, depth=depth, training_step=training_step, by_stage=by_stage,
            dtype=dtype, roofline=roofline, roofline_batch=roofline_batch, out=out if file_fmt == "json" else None,
            force=force, model_kwargs=model_kwargs, trust_code=trust_code,
        )
    for warning in result.warnings:
        warn(warning)
    document = result.to_dict()
    emit(fmt.value, rendered(document, fmt.value), document)
    if file_fmt in ("csv", "markdown"):
        write_results(out, file_fmt, rendered(document, file_fmt), document, force)
    result.check_flops()


# ----------------------------------------------------------------------------- rendering


def tables(document: dict[str, Any]) -> list[Table]:
    """The tables of a complexity envelope (a run's, or a results file's)."""
    from commands.complexity_costs import bytes_table, roofline_tables
    from commands.complexity_tree import step_table, tree_tables

    results, inputs = document["results"], document.get("inputs", {})
    out = [params_table(results), flops_table(results)]
    if "bytes" in results["baseline"]:  # results files written before the bytes count have none
        out.append(bytes_table(results))
    if inputs.get("by_stage"):
        out.append(stage_table(results))
    out += tree_tables(results)
    if results["baseline"].get("training_step") is not None:
        out.append(step_table(results))
    out += roofline_tables(results)
    # as profile's tables: 'secli report' shows them
    out[-1].notes += [f"warning: {w}" for w in results.get("warnings") or []]
    return out


def rendered(document: dict[str, Any], fmt: str) -> list[Table]:
    """The tables ``fmt`` shows: the one CSV table for csv, every table otherwise (none for json)."""
    return [] if fmt == "json" else csv_tables(document) if fmt == "csv" else tables(document)


def csv_tables(document: dict[str, Any]) -> list[Table]:
    """The one CSV table of a complexity envelope (``-f csv``, ``--out x.csv``, ``secli report -f
    csv``): the most detailed part it holds, raw numbers, ASCII column names."""
    from commands.complexity_costs import flat_roofline_table
    from commands.complexity_tree import flat_step_table, flat_tree_table

    results = document["results"]
    if results["baseline"].get("by_module") is not None:
        return [flat_tree_table(results)]
    if results.get("roofline"):
        return [flat_roofline_table(results)]
    if results["baseline"].get("training_step") is not None:
        return [flat_step_table(results)]
    return [flat_stage_table(results) if document.get("inputs", {}).get("by_stage") else flat_table(results)]


def _name(results: dict[str, Any]) -> str:
    return str(results.get("title") or results["arch"])


def _share(part: int | None, whole: int | None) -> float | None:
    return None if part is None or not whole else 100.0 * part / whole


def params_table(results: dict[str, Any]) -> Table:
    base = results["baseline"]["params"]
    rows: list[list[Any]] = [[baseline_label(results), None, base, None, None, None, None, None]]
    for row in results["rows"]:
        if row["kind"] == "none" and not row.get("native"):
            continue  # a network without SE modules of its own: the row would repeat the baseline
        p = row["params"]
        match = p["formula_matches"] if p["formula"] is not None else "n/a"
        rows.append([row["label"], row["sites"], p["injected"], p["added"], p["added_pct"],
                     p["formula_weights"], p["formula_bias_terms"], match])
    table = Table(
        title=f"{_name(results)}: parameters",
        columns=["model", "sites", "params", "Δ params", "Δ params (%)", "(2/r)ΣN·C² (params)", "biases (params)",
                 "match"],
        rows=rows,
        right_align={1, 2, 3, 4, 5, 6},
        formats={3: "+,d", 4: "+.2f", 5: ",.0f"},
    )
    table.notes.append(
        "(2/r)ΣN·C² = the SE paper's closed form for the FC weights; biases (C/r + C per block) apart; "
        "match: formula + biases = Δ params exactly (no: a hidden width was rounded or floored; n/a: no closed form, "
        "e.g. SK)"
    )
    for row in results["rows"]:
        if row["params"].get("formula_expression"):  # not SE's: say which form it is
            form = row["params"]["formula_expression"]
            table.notes.append(f"{row['label']}: the formula column holds its own closed form, {form}")
    table.notes += base_changes(results)
    return table


def base_changes(results: dict[str, Any]) -> list[str]:
    """One line per row whose Δ is not only what blocks add: a kind that replaces layers of the
    network (SK), and the network's own SE modules measured against the network without them."""
    notes = []
    for row in results["rows"]:
        replaced, native = row.get("replaces"), row.get("native")
        if replaced:
            block = row["spec"]["block"]
            groups = ", ".join(map(str, replaced["groups"]))
            paths = (f"{block.get('paths')} paths of {block.get('groups')}-group 3x3 convolutions"
                     if block.get("groups") else "its blocks")
            notes.append(
                f"{row['label']}: replaces {replaced['modules']} 3x3 convolutions of the network (groups {groups}) "
                f"and their BatchNorms ({replaced['params']:,} params) by {paths} and its attention "
                f"({replaced['block_params']:,} params): Δ is the blocks against what they replaced, negative where "
                "the replaced convolutions were denser")
        if native:
            notes.append(
                f"{row['label']}: the network as built, against the baseline with its {native['modules']} own SE "
                f"modules replaced by identities; Δ is what those modules cost ({native['params']:,} params, "
                f"{native['params_share_pct']:.2f}% of the model's)")
    return notes


def _g(flops: int | None) -> float | None:
    return None if flops is None else flops / 1e9


def _m(flops: int | None) -> float | None:
    return None if flops is None else flops / 1e6


def flops_table(results: dict[str, Any]) -> Table:
    base = results["baseline"]["flops"] or {}
    rows: list[list[Any]] = [
        [baseline_label(results), _g(base.get("fc_only")), None, None, _g(base.get("all_ops")), None, None],
    ]
    for row in results["rows"]:
        if row["kind"] == "none" and not row.get("native"):
            continue
        f = row["flops"] or {}
        rows.append([row["label"], _g(f.get("fc_only")), _m(f.get("fc_only_added")), f.get("fc_only_added_pct"),
                     _g(f.get("all_ops")), _m(f.get("all_ops_added")), f.get("all_ops_added_pct")])
    size = results["image_size"]
    table = Table(
        title=f"{_name(results)}: FLOPs at 1x3x{size}x{size} (fvcore: 1 multiply-add = 1 FLOP)",
        columns=["model", "GFLOPs (FC only)", "Δ MFLOPs", "Δ (%)", "GFLOPs (all ops)", "Δ MFLOPs", "Δ (%)"],
        rows=rows,
        formats={1: ".4f", 2: "+,.2f", 3: "+.2f", 4: ".4f", 5: "+,.2f", 6: "+.2f"},
    )
    table.notes += flops_notes(results)
    return table


def flops_notes(results: dict[str, Any]) -> list[str]:
    if results.get("flops_error"):
        return [f"FLOPs not counted: {results['flops_error']}"]
    notes = [
        "FC only = fvcore's default handles (conv, linear, BN, adaptive avg pool): SE's pooling, gate and scaling are "
        "skipped",
        "all ops = plus conv/linear bias adds, activations, gates, mul/add (1 per output element), mean/amax (1 per "
        "input element), sum (1 add per element reduced away), softmax (3 per element), pools (window x output); "
        "docs/complexity.md has the table",
    ]
    reports = [results["baseline"]] + [r for r in results["rows"] if r["kind"] != "none" or r.get("native")]
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
         _m(s["block_flops_fc_only"]), _m(s["block_flops_all_ops"]), _m(s.get("block_bytes"))]
        for row in results["rows"] for s in row["by_stage"]
    ]
    return Table(
        title="per stage (blocks only)",
        columns=["model", "stage", "N_s", "C_s", "block params", "formula (+biases, params)", "block MFLOPs (FC only)",
                 "block MFLOPs (all ops)", "block MB moved"],
        rows=rows,
        right_align={1, 2, 3, 4, 5, 6, 7, 8},
        formats={5: ",.0f", 6: ",.3f", 7: ",.3f", 8: ",.3f"},
    )


def flat_table(results: dict[str, Any]) -> Table:
    """One CSV-friendly row per variant, raw numbers; ``model`` is the row label every command
    uses (``resnet18 + SE``), ``variant`` the block's own label (``SE r=16 standard``)."""
    columns = [
        "model", "variant", "arch", "image_size", "sites", "params_baseline", "params_injected", "params_added",
        "formula_weights", "formula_bias_terms", "formula_matches", "flops_fc_only_baseline",
        "flops_fc_only_injected", "flops_all_ops_baseline", "flops_all_ops_injected", "bytes_moved_baseline",
        "bytes_moved_injected",
    ]
    base = results["baseline"]
    bf, bb = base["flops"] or {}, base.get("bytes") or {}
    rows = []
    for row in results["rows"]:
        p, f, b = row["params"], row["flops"] or {}, row.get("bytes") or {}
        rows.append([
            row["label"], row.get("variant"), results["arch"], results["image_size"], row["sites"], base["params"],
            p["injected"], p["added"], p["formula_weights"], p["formula_bias_terms"], p["formula_matches"],
            bf.get("fc_only"), f.get("fc_only"), bf.get("all_ops"), f.get("all_ops"), bb.get("moved"), b.get("moved"),
        ])
    return Table(title="", columns=columns, rows=rows)


def flat_stage_table(results: dict[str, Any]) -> Table:
    rows = [
        [row["label"], s["stage"], s["blocks"], " ".join(map(str, s["channels"])), s["block_params"], s["formula"],
         s["block_flops_fc_only"], s["block_flops_all_ops"], s.get("block_bytes")]
        for row in results["rows"] for s in row["by_stage"]
    ]
    columns = ["model", "stage", "blocks", "channels", "block_params", "formula", "block_flops_fc_only",
               "block_flops_all_ops", "block_bytes"]
    return Table(title="", columns=columns, rows=rows)
