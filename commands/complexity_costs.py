"""``secli complexity``'s bytes and ``--roofline`` tables (table/markdown) and their flat CSV,
built from the results envelope's ``results`` alone."""

from __future__ import annotations

from typing import Any

from commands.complexity_tree import baseline_label
from commands.render import Table

ROLES = ("pool", "FCs", "gate", "scale", "paths", "other", "outside the blocks")


def _mb(value: float | None) -> float | None:
    return None if value is None else value / 1e6


def _rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in results["rows"] if r["kind"] != "none"]


def _label(row: dict[str, Any], results: dict[str, Any]) -> str:
    """The row's label, with its implementation where another row has the same label
    (``--impl eager,fused``)."""
    same = [r for r in results["rows"] if r["label"] == row["label"]]
    impl = (row.get("spec") or {}).get("block", {}).get("impl")
    return f"{row['label']} ({impl})" if len(same) > 1 and impl else row["label"]


def _title(results: dict[str, Any]) -> str:
    return str(results.get("title") or results["arch"])


def bytes_table(results: dict[str, Any]) -> Table:
    """Bytes read and written by the forward (batch 1), baseline against each variant."""
    base = results["baseline"].get("bytes") or {}
    rows: list[list[Any]] = [[baseline_label(results), _mb(base.get("read")), _mb(base.get("written")),
                              _mb(base.get("moved")), None, None, base.get("intensity"), base.get("kernels"), None]]
    for row in results["rows"]:
        b = row.get("bytes") or {}
        blocks = b.get("blocks") or {}
        if row["kind"] == "none":  # a network with SE modules of its own: their share, not an increase
            if blocks and base.get("moved"):
                rows.append([f"its {row['sites']} SE modules", None, None, _mb(blocks["moved"]), None,
                             100.0 * blocks["moved"] / base["moved"], None, None, None])
            continue
        rows.append([_label(row, results), _mb(b.get("read")), _mb(b.get("written")), _mb(b.get("moved")),
                     _mb(b.get("moved_added")), b.get("moved_added_pct"), b.get("intensity"), b.get("kernels"),
                     blocks.get("passes_added")])
    size = results["image_size"]
    table = Table(
        title=f"{_title(results)}: bytes moved at 1x3x{size}x{size}, {results.get('dtype', 'fp32')}",
        columns=["model", "MB read", "MB written", "MB moved", "Δ MB", "Δ (%)", "FLOP/B", "kernels", "Δ passes"],
        rows=rows,
        formats={1: ",.2f", 2: ",.2f", 3: ",.2f", 4: "+,.3f", 5: "+.2f", 6: ".2f", 7: ",d", 8: ".2f"},
    )
    table.notes += bytes_notes(results)
    return table


def bytes_notes(results: dict[str, Any]) -> list[str]:
    if results.get("bytes_error"):
        return [f"bytes not counted: {results['bytes_error']}"]
    notes = [
        "bytes: each ATen op's input and output tensors at their dtype (views move nothing; in-place ops read and "
        "write their operand; weights read once per call); FLOP/B = FLOPs (multiply-add = 2) / bytes moved; "
        "Δ passes = Δ MB / one read of every site's tensor",
    ]
    if results.get("dtype", "fp32") != "fp32":
        notes.append(f"{results['dtype']}: as torch.autocast runs it (convolutions and matrix products on 16-bit "
                     "copies, their casts counted; other ops in their inputs' dtype)")
    for row in _rows(results):
        blocks = (row.get("bytes") or {}).get("blocks")
        if blocks:
            ops = ", ".join(f"{o['op']} {o['passes']:.2f}" for o in blocks["first_site_ops"]
                            if o["passes"] is not None and o["passes"] >= 0.1)
            notes.append(f"{_label(row, results)}: {blocks['implementation']}; {blocks['first_site']}'s ops, in "
                         f"passes over its tensor: {ops or '-'}")
    return notes


def roofline_tables(results: dict[str, Any]) -> list[Table]:
    """Predicted times per mode, and where each variant's added time goes."""
    roof = results.get("roofline")
    if not roof:
        return []
    device, batch = roof["device"], roof["batch_size"]
    rows: list[list[Any]] = []
    split: list[list[Any]] = []
    for mode, base in roof["baseline"].items():
        rows.append([baseline_label(results), mode, base["ms_per_image"], base["images_per_s"], None, None, None,
                     _bound(base)])
        for row in _rows(results):
            found = (row.get("roofline") or {}).get(mode)
            if not found:
                continue
            vs = found["vs_baseline"]
            rows.append([_label(row, results), mode, found["ms_per_image"], found["images_per_s"],
                         vs["throughput_ratio"], vs["overhead_pct"], 1e3 * vs["added_ms_per_image"], _bound(found)])
            roles = vs["by_role_ms_per_image"]
            split.append([_label(row, results), mode] + [1e3 * roles.get(role, 0.0) for role in ROLES])
        for row in results["rows"]:  # a network's own SE modules: the time they take, not an increase
            found = (row.get("roofline") or {}).get(mode)
            if row["kind"] == "none" and row["sites"] and found:
                roles = found["vs_baseline"]["by_role_ms_per_image"]
                split.append([f"its {row['sites']} SE modules", mode,
                              *(1e3 * roles.get(r, 0.0) for r in ROLES[:-1]), None])
    title = f"{_title(results)}: roofline on {device['name']}, batch {batch}, {results.get('dtype', 'fp32')}"
    predicted = Table(title=title, rows=rows, right_align={2, 3, 4, 5, 6},
                      columns=["model", "mode", "ms/img", "img/s", "throughput ratio", "Δ (%)", "Δ µs/img", "bound by"],
                      formats={2: ",.4f", 3: ",.0f", 4: ".3f", 5: "+.1f", 6: "+,.2f"})
    predicted.notes += roofline_notes(device)
    where = Table(title="where the added time goes (µs per image, predicted)", columns=["model", "mode", *ROLES],
                  rows=split, right_align=set(range(2, 2 + len(ROLES))),
                  formats=dict.fromkeys(range(2, 2 + len(ROLES)), "+,.2f"))
    where.notes.append(
        "pool: the squeeze (and Σ_hw(g·u) in backward); FCs: the excitation's layers; gate: its sigmoid/softmax; "
        "scale: full-size elementwise ops of the block (scale, SK's sums, a folded residual sum and ReLU); paths: "
        "SK's convolutions; outside the blocks: the change in every other op (SK replaces convs; a folded SE takes "
        "over the residual's sum and ReLU). The columns sum to Δ µs/img; for a network's own SE modules (--block "
        "none) they are the time those modules take.")
    return [predicted, where] if split else [predicted]


def _bound(prediction: dict[str, Any]) -> str:
    """Which term dominates the predicted time: memory, compute or launches."""
    totals = {"memory": 0.0, "compute": 0.0, "launch": 0.0}
    for phase in prediction["phases"].values():
        totals["memory"] += phase["memory_bound_ms"]
        totals["compute"] += phase["compute_bound_ms"]
        totals["launch"] += phase["launch_ms"]
    whole = sum(totals.values()) or 1.0
    return ", ".join(f"{k} {100 * v / whole:.0f}%" for k, v in sorted(totals.items(), key=lambda kv: -kv[1]))


def roofline_notes(device: dict[str, Any]) -> list[str]:
    peaks = ", ".join(f"{k} {device[f'{k}_tflops']:,.1f}" for k in ("fp32", "tf32", "bf16", "fp16")
                      if device.get(f"{k}_tflops"))
    source = "measured now" if device.get("measured") else "source: " + device["source"]
    return [
        "time per op = max(FLOPs / peak for its kind and dtype, bytes / bandwidth) + launch; summed; nothing overlaps, "
        "caches ignored",
        f"{device['name']}: {device['bandwidth_gb_per_s']:,.0f} GB/s, TFLOP/s {peaks}, launch "
        f"{device['launch_us']:.1f} µs ({source})",
    ]


def flat_roofline_table(results: dict[str, Any]) -> Table:
    """One CSV row per (variant, mode): raw predicted figures."""
    roof = results["roofline"]
    columns = ["model", "mode", "device", "batch_size", "dtype", "ms_per_image", "images_per_s", "throughput_ratio",
               "overhead_pct", "added_us_per_image", *(f"{r.replace(' ', '_').lower()}_us_per_image" for r in ROLES)]
    rows = []
    for mode, base in roof["baseline"].items():
        common = [roof["device"]["key"], roof["batch_size"], results.get("dtype", "fp32")]
        rows.append([baseline_label(results), mode, *common, base["ms_per_image"], base["images_per_s"],
                     *[None] * (3 + len(ROLES))])
        for row in _rows(results):
            found = (row.get("roofline") or {}).get(mode)
            if found:
                vs = found["vs_baseline"]
                roles = vs["by_role_ms_per_image"]
                rows.append([_label(row, results), mode, *common, found["ms_per_image"], found["images_per_s"],
                             vs["throughput_ratio"], vs["overhead_pct"], 1e3 * vs["added_ms_per_image"],
                             *(1e3 * roles.get(r, 0.0) for r in ROLES)])
    return Table(title="", columns=columns, rows=rows)
