"""``secli report --join``: complexity and profile results as one table, one row per model.

A paper's table has parameters, FLOPs and time in one row; ``secli complexity`` counts and
``secli profile`` times, each in its own results file. Their rows are matched by what the model
is, not by how its row is labelled: the architecture, the classifier width, the block's options
(all but ``impl`` and ``init``, which change neither a count nor what the network computes) and,
for ``--block none``, whether the network's own SE modules were stripped. Labels follow one
scheme in both commands (``resnet18 + SE``), so the joined row shows the timing run's label.
"""

from __future__ import annotations

import json
from typing import Any

from commands.render import Table

#: Block options that change neither a count nor the function computed: left out of the key.
UNKEYED = ("impl", "init")


def model_key(spec: dict[str, Any] | None, stripped: bool = False) -> str | None:
    """What a row's model is, as a string two results files agree on (None: no spec saved)."""
    if not spec or "arch" not in spec:
        return None
    block = dict(spec.get("block") or {"kind": "none"})
    block = {"kind": "none"} if block.get("kind") == "none" else {k: v for k, v in block.items() if k not in UNKEYED}
    return json.dumps({"arch": spec["arch"], "num_classes": spec.get("num_classes"), "block": block,
                       "stripped": bool(stripped or spec.get("stripped_native"))}, sort_keys=True)


def complexity_rows(document: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """(key, counts) of every model a complexity result counted: the baseline, then each row."""
    results = document["results"]
    rows = results["rows"]
    base = results["baseline"]
    num_classes = (rows[0]["spec"] or {}).get("num_classes") if rows else None
    base_spec = {"arch": results["arch"], "num_classes": num_classes, "block": {"kind": "none"}}
    base_flops = base.get("flops") or {}
    out = [(model_key(base_spec, bool(base.get("stripped_native"))),
            {"label": base.get("label") or results["arch"], "params": base["params"],
             "flops_fc_only": base_flops.get("fc_only"), "flops_all_ops": base_flops.get("all_ops"),
             "flops_image_size": results["image_size"]})]
    for row in rows:
        if row["kind"] == "none" and not row.get("native"):
            continue  # the network as built is the baseline itself
        flops = row.get("flops") or {}
        out.append((model_key(row.get("spec")), {
            "label": row["label"], "params": row["params"]["injected"], "flops_fc_only": flops.get("fc_only"),
            "flops_all_ops": flops.get("all_ops"), "flops_image_size": results["image_size"]}))
    return out


def joined(documents: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """One record per model (the timing runs' order, then models only counted), the modes timed,
    and notes (image sizes that differ, models without a match)."""
    from secli.util.errors import SecliUsageError

    kinds = {d["command"] for d in documents}
    if not kinds <= {"complexity", "profile"}:
        other = sorted(kinds - {"complexity", "profile"})[0]
        raise SecliUsageError(f"--join joins complexity and profile results; a secli-{other} file has no models to "
                              "join")
    counts: dict[str | None, dict[str, Any]] = {}
    for document in documents:
        if document["command"] == "complexity":
            for key, value in complexity_rows(document):
                counts.setdefault(key, value)
    records: list[dict[str, Any]] = []
    modes: list[str] = []
    sizes: set[tuple[str, int]] = set()
    for document in documents:
        if document["command"] != "profile":
            continue
        results = document["results"]
        sizes.add(("timed", results["image_size"]))
        modes += [m for m in document["inputs"]["modes"] if m not in modes]
        for model in results["models"]:
            key = model_key(model.get("spec"))
            own = model.get("flops") or {}
            counted = counts.pop(key, None) if key is not None else None
            record = {"label": model["label"], "params": model["params"] or (counted or {}).get("params"),
                      "timing_image_size": results["image_size"], "batch_size": results["batch_size"],
                      "device": results["device"], "modes": model["modes"], "vs_baseline": model["vs_baseline"],
                      "baseline": results.get("baseline")}
            if own:
                record.update(flops_fc_only=own.get("flops_fc_only"), flops_all_ops=own.get("flops_all_ops"),
                              flops_image_size=results["image_size"])
            elif counted:
                record.update({k: counted[k] for k in ("flops_fc_only", "flops_all_ops", "flops_image_size")})
            records.append(record)
    records += [{**value, "modes": {}, "vs_baseline": {}} for value in counts.values()]
    notes = []
    sizes |= {("counted", r["flops_image_size"]) for r in records if r.get("flops_image_size")}
    if len({size for _, size in sizes}) > 1:
        by = {what: sorted({s for w, s in sizes if w == what}) for what in ("counted", "timed")}
        notes.append(f"image sizes differ: FLOPs counted at {by['counted']} px, timings at {by['timed']} px")
    missing = [r["label"] for r in records if r.get("flops_image_size") is None]
    untimed = [r["label"] for r in records if not r["modes"]]
    if missing:
        notes.append(f"no FLOP count for {', '.join(missing)} (count them with secli complexity, or profile "
                     "--with-complexity)")
    if untimed:
        notes.append(f"not timed: {', '.join(untimed)}")
    return records, modes, notes


def _giga(value: Any) -> float | None:
    return None if value is None else value / 1e9


def join_tables(documents: list[dict[str, Any]]) -> list[Table]:
    """The joined table for people (table, Markdown): per mode, the step's median and throughput."""
    records, modes, notes = joined(documents)
    columns = ["model", "params (M)", "GFLOPs (FC only)", "GFLOPs (all ops)"]
    for mode in modes:
        columns += [f"{mode} ms", f"{mode} img/s", f"{mode} added %"]
    rows = []
    for record in records:
        row = [record["label"], None if record.get("params") is None else record["params"] / 1e6,
               _giga(record.get("flops_fc_only")), _giga(record.get("flops_all_ops"))]
        for mode in modes:
            timing = record["modes"].get(mode) or {}
            versus = record["vs_baseline"].get(mode) or {}
            row += [(timing.get("step") or {}).get("median_ms"), timing.get("images_per_s"), versus.get("overhead_pct")]
        rows.append(row)
    formats = {1: ",.3f", 2: ".4f", 3: ".4f"}
    for i in range(len(modes)):
        formats.update({4 + 3 * i: ",.2f", 5 + 3 * i: ",.1f", 6 + 3 * i: "+.1f"})
    table = Table(title="parameters, FLOPs and time, joined by model", columns=columns, rows=rows, formats=formats)
    table.notes.append("rows matched by architecture, classes and block options (not by label); ms: the step's median; "
                       "added %: against each timing run's baseline; FLOPs: fvcore, batch 1")
    table.notes += notes
    return [table]


CSV_COLUMNS = ["model", "params", "flops_fc_only", "flops_all_ops", "flops_image_size", "mode", "step_median_ms",
               "images_per_s", "throughput_ratio", "overhead_pct", "timing_image_size", "batch_size", "device"]


def join_csv(documents: list[dict[str, Any]]) -> list[Table]:
    """The joined table for programs: one row per model and mode (a model not timed: one row)."""
    records, _modes, _notes = joined(documents)
    rows = []
    for r in records:
        head = [r["label"], r.get("params"), r.get("flops_fc_only"), r.get("flops_all_ops"), r.get("flops_image_size")]
        tail = [r.get("timing_image_size"), r.get("batch_size"), r.get("device")]
        if not r["modes"]:
            rows.append([*head, None, None, None, None, None, *tail])
        for mode, timing in r["modes"].items():
            versus = r["vs_baseline"].get(mode) or {}
            rows.append([*head, mode, timing["step"]["median_ms"], timing["images_per_s"],
                         versus.get("throughput_ratio"), versus.get("overhead_pct"), *tail])
    return [Table(title="", columns=CSV_COLUMNS, rows=rows)]
