"""``secli inject``: put SE, SK or ECA blocks into a named architecture and save the result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from commands import options as opt
from commands.block_options import BLOCKS, BlockArgs, block_options
from commands.common import handle_errors
from commands.render import Table, emit
from secli.util.errors import SecliUsageError

Arch = opt.model_argument("", checkpoint=False)
SaveSpec = Annotated[Optional[Path], typer.Option(
    "--save-spec", metavar=opt.FILE, rich_help_panel=opt.OUTPUT_PANEL, help="Also write the spec as YAML to this file.",
)]
ListArchs = Annotated[bool, typer.Option(
    "--list", rich_help_panel=opt.OUTPUT_PANEL,
    help="List the architectures, the positions each supports and its image size; builds nothing.",
)]
Out = opt.out("Save the injected model (a secli checkpoint: spec + state dict) to this file.")
ListSites = Annotated[bool, typer.Option(
    "--list-sites", rich_help_panel=opt.OUTPUT_PANEL,
    help="Show the sites a network has for these block options, and where each was found (adapter, pattern, "
         "structure, native); saves nothing.",
)]


@handle_errors
@block_options()
def inject_command(
    arch: Arch = None,
    weights: opt.Weights = None,
    num_classes: opt.NumClasses = None,
    model_kwargs: opt.ModelKwargs = None,
    spec: opt.SpecFile = None,
    blocks: BlockArgs = BLOCKS,
    list_archs: ListArchs = False,
    list_sites: ListSites = False,
    out: Out = None,
    save_spec: SaveSpec = None,
    force: opt.Force = False,
    fmt: opt.Format = opt.OutputFormat.table,
) -> None:
    """Put attention blocks (SE, SK, ECA and the zoo) into a network; report the sites and parameters.

    Example: secli inject resnet50 --block se --ratio 16 --out se_resnet50.pt

    Example: secli inject convnext_tiny --block eca --list-sites
    """
    if list_archs:
        if arch is not None:
            raise SecliUsageError("--list takes no architecture; give one or the other")
        opt.refuse("with --list", block=blocks.kind, weights=weights, num_classes=num_classes, spec=spec,
                   model_kwargs=model_kwargs, list_sites=list_sites)
        blocks.refuse("with --list")
        opt.refuse("with --list", out=out, save_spec=save_spec, force=force)
        from secli.networks.workflow import architectures_document

        document = architectures_document()
        emit(fmt.value, csv_tables(document) if fmt.value == "csv" else tables(document), document)
        return
    if blocks.kind == "none":
        blocks.refuse("with --block none (it reports the attention modules a network already has)")
    if list_sites:
        opt.refuse("with --list-sites (it saves nothing)", out=out, save_spec=save_spec, force=force)
    from secli.networks.workflow import inject

    result = inject(
        arch, spec=spec, block=blocks.kind, **blocks.options(), weights=weights, num_classes=num_classes,
        model_kwargs=model_kwargs, out=out, save_spec=save_spec, force=force, list_sites=list_sites,
    )
    document = result.to_dict()
    emit(fmt.value, csv_tables(document) if fmt.value == "csv" else tables(document), document)


def tables(document: dict[str, Any]) -> list[Table]:
    """The tables of an inject envelope: the sites of a run, or the architecture list (``--list``)."""
    if document.get("inputs", {}).get("list"):
        return [architectures_table(document["results"])]
    return [sites_table(document["results"], document.get("inputs"))]


def csv_tables(document: dict[str, Any]) -> list[Table]:
    """``-f csv`` (and ``secli report -f csv``): one row per site (or architecture), raw values,
    ASCII column names."""
    results = document["results"]
    if document.get("inputs", {}).get("list"):
        columns = ["name", "family", "positions", "sk", "image_size", "image_size_source", "note"]
        return [Table(title="", columns=columns, rows=[
            [r["name"], r["family"], " ".join(r["positions"]), r["sk"], r["image_size"], r.get("image_size_source"),
             r.get("note")] for r in results])]
    columns = ["site", "module", "channels", "hidden", "params", "impl"]
    return [Table(title="", columns=columns, rows=[
        [s["name"], s["module_path"], s["channels"], s["hidden"], s["params"], s["impl"]] for s in results["sites"]])]


def sites_table(results: dict[str, Any], inputs: dict[str, Any] | None = None) -> Table:
    inputs = inputs or {}
    kind = results["block"]["kind"]
    sites = results["sites"]
    what = "existing attention modules" if kind == "none" else "sites"
    sources = {s.get("source", "adapter") for s in sites}
    with_source = bool(inputs.get("list_sites")) or bool(sources - {"adapter", "native"})
    table = Table(
        title=f"{results['label']}: {len(sites)} {what}",
        columns=["site", *(["source"] if with_source else []), "module", "C", "hidden", "params", "impl"],
        rows=[[s["name"], *([s.get("source", "adapter")] if with_source else []), s["module_path"], s["channels"],
               s["hidden"], s["params"], s["impl"] or "-"] for s in sites],
        right_align={3, 4, 5} if with_source else {2, 3, 4},
    )
    params = results["params"]
    pct = params.get("added_pct") or 0.0
    table.notes.append(
        f"params: baseline {params['baseline']:,} -> injected {params['injected']:,} "
        f"({params['added']:+,}, {pct:+.2f}%)"
    )
    replaced = params["baseline"] + sum(s["params"] for s in sites) - params["injected"]
    if replaced > 0 and kind != "none":  # the blocks took the place of layers (SK: 3x3 convolutions + BN)
        table.notes.append(
            f"{kind.upper()} replaces {len(sites)} 3x3 convolutions of the network and their BatchNorms ({replaced:,} "
            f"params) by its blocks ({sum(s['params'] for s in sites):,} params): the change is their difference, not "
            "an addition (grouped convolutions in place of dense ones are smaller)")
    check = results.get("formula")
    if check is not None and check.get("expression"):  # a kind's registered per-site form
        verdict = "matches" if check["exact"] else "differs"
        table.notes.append(
            f"closed form ({check['expression']}) = {check['predicted']:,.0f}; counted {check['measured']:,} "
            f"({verdict})"
        )
    elif check is not None:
        verdict = "matches" if check["exact"] else "differs: hidden widths rounded or floored"
        bias_part = f" + biases {check['bias_terms']:,}" if check.get("bias") else ""
        table.notes.append(
            f"paper formula (2/r)·ΣN_s·C_s² = {check['weights_formula']:,.0f}{bias_part} = "
            f"{check['predicted']:,.0f}; counted {check['measured']:,} ({verdict})"
        )
    if kind == "none" and not sites:
        table.notes.append("this network has no attention modules secli recognises; add some with --block se")
    if "structure" in sources:
        table.notes.append("structure: residual units found in a probe forward (a module adding a branch to its input)")
    for path in results.get("saved", []):
        table.notes.append(f"saved {path}")
    return table


def architectures_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(
        title="Architectures",
        columns=["name", "family", "SE positions", "SK", "image size (px)"],
        rows=[[r["name"], r["family"], ", ".join(r["positions"]) or "(has SE: --block none)", r["sk"], r["image_size"]]
              for r in rows],
        right_align={4},
    )
    table.notes.append("stages use the paper's numbering (ResNet: 2..5 = layer1..layer4)")
    table.notes.append("image size: the crop the architecture's DEFAULT torchvision weights were trained at (timm: its "
                       "pretrained_cfg), else 224; complexity, profile and export use it unless --image-size says "
                       "otherwise")
    table.notes += [f"{r['name']}: {r['note']}" for r in rows if r.get("note") and r["family"] != "native-se"]
    return table
