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


def _step_rows(result: Any) -> list[tuple[str, Any]]:
    return [("baseline", result.baseline_training)] + [
        (r.label, r.training) for r in result.rows if r.spec.block.kind != "none" and r.training is not None
    ]


def step_table(result: Any) -> Table:
    """--training-step: forward + backward GFLOPs and saved activations per image."""
    base = result.baseline_training
    rows = []
    for label, step in _step_rows(result):
        rows.append([
            label, f"{step.forward / 1e9:.4f}", f"{step.backward_gemm / 1e9:.4f}", f"{step.backward_other / 1e9:.4f}",
            f"{step.total / 1e9:.4f}", "-" if step is base else f"{100.0 * (step.total - base.total) / base.total:+.2f}%",
            f"{step.saved_bytes / 2**20:,.1f}", "-" if step is base else f"{100.0 * (step.saved_bytes - base.saved_bytes) / base.saved_bytes:+.2f}%",
        ])
    table = Table(
        title=f"{result.arch}: one training step per image (batch of 2, {result.input_size} px)",
        columns=["variant", "forward G", "backward conv/linear G", "backward other G", "step G", "%", "saved MiB", "%"],
        rows=rows,
    )
    table.notes += [
        "forward = all ops in training mode; backward conv/linear = FlopCounterMode's multiply-adds (FLOPs / 2); "
        "backward other = 1 per output element of each other backward kernel; optimizer step not included",
        "saved = bytes of the tensors autograd keeps for backward (saved-tensor hooks, one count per storage, parameters left out)",
    ]
    return table


def flat_step_table(result: Any) -> Table:
    rows = [[label, s.forward, s.backward_gemm, s.backward_other, s.total, s.saved_bytes] for label, s in _step_rows(result)]
    return Table(title="", columns=["variant", "forward", "backward_gemm", "backward_other", "total", "saved_bytes"], rows=rows)
