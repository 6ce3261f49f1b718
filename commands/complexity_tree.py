"""``secli complexity --by-module``: the per-module tree as tables (table/markdown) and flat CSV."""

from __future__ import annotations

from typing import Any

from commands.render import Table


def _mflops(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:,.3f}"


def _marker(m: Any) -> str:
    if m.block:
        return f"{m.block} block"
    return f"{m.blocks_inside} {m.block_kind or 'blocks'} inside" if m.blocks_inside else ""


def tree_table(title: str, modules: list[Any]) -> Table:
    rows = [
        ["  " * m.depth + (m.path.rsplit(".", 1)[-1] if m.path else "(model)"), m.type, m.params,
         _mflops(m.flops_fc_only), _mflops(m.flops_all_ops), _marker(m)]
        for m in modules
    ]
    table = Table(title=title, columns=["module", "type", "params", "MFLOPs FC only", "MFLOPs all ops", "blocks"], rows=rows,
                  right_align={2, 3, 4})
    table.notes.append("a module's figures include its children's; 'N inside': blocks at sites deeper than the shown depth")
    return table


def tree_tables(result: Any) -> list[Table]:
    tables = []
    if result.baseline_modules is not None:
        tables.append(tree_table(f"{result.arch} baseline: per module", result.baseline_modules))
    for row in result.rows:
        if row.modules is not None and row.spec.block.kind != "none":
            tables.append(tree_table(f"{result.arch} + {row.label}: per module", row.modules))
    return tables


def flat_tree_table(result: Any) -> Table:
    """One CSV row per (variant, module), raw numbers; the baseline's variant is 'baseline'."""
    trees = [("baseline", result.baseline_modules)] + [(r.label, r.modules) for r in result.rows if r.spec.block.kind != "none"]
    rows = [
        [label, m.path, m.depth, m.type, m.params, m.flops_fc_only, m.flops_all_ops, m.block or "", m.blocks_inside]
        for label, modules in trees for m in modules or []
    ]
    columns = ["variant", "module", "depth", "type", "params", "flops_fc_only", "flops_all_ops", "block", "blocks_inside"]
    return Table(title="", columns=columns, rows=rows)
