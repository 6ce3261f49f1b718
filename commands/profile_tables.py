"""``secli profile``'s tables: a ``secli-profile`` envelope as tables (one per mode, then memory
and block traffic, then the roofline prediction) and as one CSV table.

Rendering reads the saved envelope, not the live report, so that ``secli report run.json``
shows a saved run exactly as the run itself did.
"""

from __future__ import annotations

from typing import Any

from commands.render import Table


def rendered(document: dict[str, Any], fmt: str) -> list[Table]:
    """The tables ``fmt`` shows: one CSV table for csv, every table otherwise (none for json)."""
    return [] if fmt == "json" else csv_tables(document) if fmt == "csv" else tables(document)


def _num(value: Any, digits: int, sign: bool = False, suffix: str = "") -> str:
    """One column, one precision: ``12.35``, ``+1.2%``; missing values (or nulls) as ``-``."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return f"{value:{'+' if sign else ''},.{digits}f}{suffix}"


def _giga(value: Any) -> Any:
    return None if value is None else value / 1e9


def _mb(value: Any) -> Any:
    return None if value is None else value / 2**20


def setting_line(document: dict[str, Any]) -> str:
    """``batch 8, 224x224, cpu (2 threads), amp off``: what every figure of a run shares."""
    inputs, results = document["inputs"], document["results"]
    device = str(results["device"])
    size = results["image_size"]
    world = results.get("world_size") or 1
    where = device if device.startswith("cuda") else f"{device} ({results['threads']} threads)"
    parts = [f"batch {results['batch_size']}", f"{size}x{size}", where]
    parts.append(f"amp {inputs['amp']}")
    if inputs["channels_last"]:
        parts.append("channels_last")
    if inputs.get("compile_mode"):
        parts.append(f"compiled ({inputs['compile_mode']})")
    if world > 1:
        parts.append(f"DDP x{world} (slowest rank)")
    return ", ".join(parts)


def tables(document: dict[str, Any]) -> list[Table]:
    """A ``secli-profile`` envelope as tables: one per mode, then memory and block traffic.

    Used by the command itself and by ``secli report``, so a saved run reads as it printed.
    """
    inputs, results = document["inputs"], document["results"]
    heading = f"{inputs['title']}: " if inputs.get("title") else ""
    setting = setting_line(document)
    out = []
    counted = any(model.get("flops") for model in results["models"])
    for mode in inputs["modes"]:
        timing_cols = ["step ms (median)"] if mode == "inference" else ["fwd ms", "bwd ms", "step ms (median)"]
        counts = ["params (M)", "GFLOPs (FC only)", "GFLOPs (all ops)"] if counted else []
        columns = ["model", *counts, *timing_cols, "step IQR ms", "img/s", "throughput ratio", "added %",
                   "added µs/img"]
        rows = []
        for model in results["models"]:
            timing = model["modes"].get(mode)
            flops = model.get("flops") or {}
            cells = [_num(model["params"] / 1e6 if model["params"] else None, 3),
                     _num(_giga(flops.get("flops_fc_only")), 4),
                     _num(_giga(flops.get("flops_all_ops")), 4)] if counted else []
            if timing is None:
                failure = model.get("failure")
                label = f"{model['label']} ({failure['kind']} failed)" if failure else model["label"]
                rows.append([label, *cells, *["-"] * (len(columns) - 1 - len(cells))])
                continue
            cmp = model["vs_baseline"].get(mode) or {}
            label = model["label"] + (" [compiled]" if model.get("compiled") else "")
            times = [timing["step"]] if mode == "inference" else [timing["forward"], timing["backward"],
                                                                   timing["step"]]
            rows.append([
                label, *cells, *(_num(t["median_ms"] if t else None, 2) for t in times),
                _num(timing["step"]["iqr_ms"], 2), _num(timing["images_per_s"], 1),
                _num(cmp.get("throughput_ratio"), 3), _num(cmp.get("overhead_pct"), 1, sign=True, suffix="%"),
                _num(cmp.get("overhead_us_per_image"), 1, sign=True),
            ])
        table = Table(title=f"{heading}{mode}: {setting}", columns=columns, rows=rows)
        if counted:
            size = results["image_size"]
            table.notes.append(f"GFLOPs: fvcore at 1x3x{size}x{size}, counted as secli complexity counts (FC only: "
                               "fvcore's default handles; all ops: every arithmetic op)")
        table.notes.append(
            f"ms: median of {inputs['iters']} interleaved iterations after {inputs['warmup']} warm-up on "
            f"{results.get('device_name') or results['device']}, torch {results.get('torch') or '?'}; "
            f"throughput ratio and added time: against {results.get('baseline') or '-'}"
        )
        out.append(table)
    out.append(_memory_table(document))
    if results.get("prediction"):
        out.append(prediction_table(document))
    out[-1].notes += [f"warning: {w}" for w in results.get("warnings") or []]
    return out


def prediction_table(document: dict[str, Any]) -> Table:
    """The roofline prediction beside the measurement, per model and mode."""
    prediction = document["results"]["prediction"]
    device = prediction["device"]
    rows = []
    for model in prediction["models"]:
        for mode, found in model["modes"].items():
            rows.append([
                model["label"], mode, _num(found["measured_step_ms"], 2), _num(found["predicted_step_ms"], 2),
                _num(found["predicted_over_measured"], 2),
                _num(found["measured_overhead_pct"], 1, sign=True, suffix="%"),
                _num(found["predicted_overhead_pct"], 1, sign=True, suffix="%"),
            ])
    title = (f"roofline prediction on {device['name']} ({prediction['dtype']}, batch {prediction['batch_size']}) "
             "beside the measurement")
    columns = ["model", "mode", "measured step ms", "predicted step ms", "predicted / measured", "measured added %",
               "predicted added %"]
    table = Table(title=title, columns=columns, rows=rows)
    peaks = ", ".join(f"{k} {device[f'{k}_tflops']:,.2f}" for k in ("fp32", "tf32", "bf16", "fp16")
                      if device.get(f"{k}_tflops"))
    source = "measured in this run" if device.get("measured") else device["source"]
    table.notes += [
        "predicted = Σ over the model's ops of max(FLOPs / peak, bytes / bandwidth) + launch, eager kernels "
        "(docs/complexity.md#roofline)",
        f"{device['name']}: {device['bandwidth_gb_per_s']:,.1f} GB/s, TFLOP/s {peaks}, launch "
        f"{device['launch_us']:.1f} µs ({source})",
    ]
    return table


def _memory_table(document: dict[str, Any]) -> Table:
    inputs, results = document["inputs"], document["results"]
    modes = inputs["modes"]
    short = {"inference": "inference", "train": "train"}
    columns = ["model", *(f"{short[m]} peak Δ MB" for m in modes), "block MB/pass",
               *(f"{short[m]} passes" for m in modes)]
    rows = []
    methods = set()
    for model in results["models"]:
        row: list[Any] = [model["label"]]
        for mode in modes:
            memory = (model["modes"].get(mode) or {}).get("memory")
            if memory:
                methods.add(memory["method"])
            row.append(_num(_mb(memory["delta_bytes"]) if memory else None, 1))
        traffic = model.get("block_traffic")
        moved = traffic["bytes_per_image"] * results["batch_size"] if traffic and traffic["sites"] else None
        row.append(_num(_mb(moved), 1))
        row += [_num((model["vs_baseline"].get(mode) or {}).get("implied_passes"), 1) for mode in modes]
        rows.append(row)
    table = Table(title="memory and block traffic", columns=columns, rows=rows)
    how = {
        "cuda-allocator": "peak Δ: max_memory_allocated above what was allocated before the step",
        "linux-vmhwm": "peak Δ: peak RSS (VmHWM after clear_refs) above RSS before the step",
        "ru_maxrss-lower-bound": "peak Δ: ru_maxrss growth (a lower bound)",
    }
    table.notes += [how.get(method, method) for method in sorted(methods)]
    bandwidth = results.get("bandwidth")
    if bandwidth:
        table.notes.append(
            f"block MB/pass: one read of every site's output (C·H·W·bytes) for the batch; passes = added time x "
            f"{bandwidth['gb_per_s']:.1f} GB/s ({bandwidth['method']}) / block bytes; SK adds convolutions too"
        )
    return table


CSV_COLUMNS = [
    "label", "mode", "params", "flops_fc_only", "flops_all_ops", "sites", "compiled", "failure", "batch_size",
    "image_size", "device", "forward_median_ms", "backward_median_ms", "step_median_ms", "step_iqr_ms",
    "images_per_s", "throughput_ratio", "overhead_pct", "overhead_us_per_image", "peak_delta_bytes",
    "block_bytes_per_image", "implied_passes", "predicted_step_ms", "predicted_overhead_pct", "roofline_device",
]


def csv_tables(document: dict[str, Any]) -> list[Table]:
    """One row per model and mode, raw numbers (a model that failed: one row, its failure)."""
    results = document["results"]
    common = [results["batch_size"], results["image_size"], results["device"]]
    prediction = results.get("prediction") or {}
    predicted = {m["label"]: m["modes"] for m in prediction.get("models", [])}
    roof = (prediction.get("device") or {}).get("key")

    def predicted_cells(label: str, mode: str) -> list[Any]:
        found = predicted.get(label, {}).get(mode)
        return [None, None, None] if not found else [found["predicted_step_ms"], found["predicted_overhead_pct"], roof]

    rows = []
    for model in results["models"]:
        head = [model["label"]]
        traffic = model.get("block_traffic")
        per_image = traffic["bytes_per_image"] if traffic else None
        failure = (model.get("failure") or {}).get("message")
        flops = model.get("flops") or {}
        counts = [model["params"], flops.get("flops_fc_only"), flops.get("flops_all_ops")]
        if not model["modes"]:
            # nothing timed: the timing columns empty, up to block_bytes_per_image (what was not timed is known)
            rows.append([*head, "", *counts, model["sites"], model["compiled"], failure, *common, *[None] * 9,
                         per_image, None, None, None, None])
        for mode, timing in model["modes"].items():
            cmp = model["vs_baseline"].get(mode) or {}
            memory = timing.get("memory") or {}
            rows.append([
                *head, mode, *counts, model["sites"], model["compiled"], failure, *common,
                timing["forward"]["median_ms"], (timing.get("backward") or {}).get("median_ms"),
                timing["step"]["median_ms"],
                timing["step"]["iqr_ms"], timing["images_per_s"], cmp.get("throughput_ratio"), cmp.get("overhead_pct"),
                cmp.get("overhead_us_per_image"), memory.get("delta_bytes"), per_image, cmp.get("implied_passes"),
                *predicted_cells(model["label"], mode),
            ])
    return [Table(title="", columns=CSV_COLUMNS, rows=rows)]
