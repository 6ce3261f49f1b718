"""``secli complexity --by-module`` and ``--training-step`` as tables (table/markdown) and flat CSV,
built from the results envelope's ``results`` alone."""

from __future__ import annotations

from typing import Any

from commands.render import Table


def _mflops(value: int | None) -> float | None:
    return None if value is None else value / 1e6


def _marker(m: dict[str, Any]) -> str:
    if m.get("block"):
        return f"{m['block']} block"
    return f"{m['blocks_inside']} {m.get('block_kind') or 'blocks'} inside" if m.get("blocks_inside") else ""


def _moved(m: dict[str, Any]) -> float | None:
    read, written = m.get("bytes_read"), m.get("bytes_written")
    return None if read is None or written is None else (read + written) / 1e6


def tree_table(title: str, modules: list[dict[str, Any]]) -> Table:
    rows = [
        ["  " * m["depth"] + (m["module"].rsplit(".", 1)[-1] if m["module"] else "(model)"), m["type"], m["params"],
         _mflops(m["flops_fc_only"]), _mflops(m["flops_all_ops"]), _moved(m), m.get("intensity"), _marker(m)]
        for m in modules
    ]
    columns = ["module", "type", "params", "MFLOPs (FC only)", "MFLOPs (all ops)", "MB moved", "FLOP/B", "blocks"]
    table = Table(title=title, columns=columns, rows=rows, right_align={2, 3, 4, 5, 6},
                  formats={3: ",.3f", 4: ",.3f", 5: ",.3f", 6: ".2f"})
    table.notes.append("a module's figures include its children's; 'N inside': blocks at sites deeper than the shown "
                       "depth; MB moved: bytes its ops read and write (forward, batch 1); FLOP/B: FLOPs (multiply-add "
                       "= 2) per byte")
    return table


def tree_tables(results: dict[str, Any]) -> list[Table]:
    tables = []
    if results["baseline"].get("by_module") is not None:
        tables.append(tree_table(f"{results['arch']} baseline: per module", results["baseline"]["by_module"]))
    for row in results["rows"]:
        if row.get("by_module") is not None and row["kind"] != "none":
            tables.append(tree_table(f"{results['arch']} + {row['label']}: per module", row["by_module"]))
    return tables


def baseline_label(results: dict[str, Any]) -> str:
    """The first row's label: the architecture (without its own SE modules, for --block none)."""
    return str(results["baseline"].get("label") or "baseline")


def _compared(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows other than the baseline: injected variants, and a network's own SE modules."""
    return [r for r in results["rows"] if r["kind"] != "none" or r.get("native")]


def flat_tree_table(results: dict[str, Any]) -> Table:
    """One CSV row per (model, module), raw numbers; models labelled as in every table."""
    trees = [(baseline_label(results), results["baseline"].get("by_module"))] + [
        (r["label"], r.get("by_module")) for r in _compared(results)
    ]
    rows = [
        [label, m["module"], m["depth"], m["type"], m["params"], m["flops_fc_only"], m["flops_all_ops"],
         m["block"] or "", m["blocks_inside"], m.get("bytes_read"), m.get("bytes_written"), m.get("intensity")]
        for label, modules in trees for m in modules or []
    ]
    columns = ["model", "module", "depth", "type", "params", "flops_fc_only", "flops_all_ops", "block", "blocks_inside",
               "bytes_read", "bytes_written", "intensity"]
    return Table(title="", columns=columns, rows=rows)


def _step_rows(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(baseline_label(results), results["baseline"]["training_step"])] + [
        (r["label"], r["training_step"]) for r in _compared(results) if r.get("training_step")
    ]


def _change(value: int, base: int) -> float | None:
    return 100.0 * (value - base) / base if base else None


def step_table(results: dict[str, Any]) -> Table:
    """--training-step: forward + backward GFLOPs and saved activations per image."""
    base = results["baseline"]["training_step"]
    rows = []
    for i, (label, step) in enumerate(_step_rows(results)):
        first = i == 0
        moved = (step.get("bytes") or {}).get("moved")
        rows.append([
            label, step["forward"] / 1e9, step["backward_gemm"] / 1e9, step["backward_other"] / 1e9,
            step["total"] / 1e9, None if first else _change(step["total"], base["total"]), step["saved_bytes"] / 2**20,
            None if first else _change(step["saved_bytes"], base["saved_bytes"]),
            None if moved is None else moved / 1e6, None if first else (step.get("bytes") or {}).get("moved_added_pct"),
        ])
    table = Table(
        title=f"{results['arch']}: one training step per image (batch of 2, {results['image_size']} px)",
        columns=["model", "forward GFLOPs", "backward conv/linear GFLOPs", "backward other GFLOPs", "step GFLOPs",
                 "Δ step (%)", "saved MiB", "Δ saved (%)", "MB moved", "Δ moved (%)"],
        rows=rows,
        formats={1: ".4f", 2: ".4f", 3: ".4f", 4: ".4f", 5: "+.2f", 6: ",.1f", 7: "+.2f", 8: ",.2f", 9: "+.2f"},
    )
    table.notes += [
        "forward = all ops in training mode; backward conv/linear = FlopCounterMode's multiply-adds (FLOPs / 2); "
        "backward other = 1 per output element of each other backward kernel; optimizer step not included",
        "saved = bytes of the tensors autograd keeps for backward (saved-tensor hooks, one count per storage, "
        "parameters left out)",
        "MB moved = bytes every op of forward, backward and an SGD (momentum) update reads and writes, the blocks' own "
        "implementation (fused: the passes its fast path makes)",
    ]
    return table


def flat_step_table(results: dict[str, Any]) -> Table:
    rows = [[label, s["forward"], s["backward_gemm"], s["backward_other"], s["total"], s["saved_bytes"],
             (s.get("bytes") or {}).get("moved")] for label, s in _step_rows(results)]
    columns = ["model", "forward", "backward_gemm", "backward_other", "total", "saved_bytes", "bytes_moved"]
    return Table(title="", columns=columns, rows=rows)
