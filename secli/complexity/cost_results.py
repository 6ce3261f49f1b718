"""Bytes moved and roofline predictions of a complexity run, and their JSON.

Kept apart from ``results`` (parameters and FLOPs) so that each stays one concept; ``results``
calls ``bytes_dict``/``roofline_dict`` to fill the same envelope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from secli.cost.devices import Device
from secli.cost.record import Recording
from secli.cost.roofline import Overhead, Prediction
from secli.cost.summary import Totals, by_operator, by_phase, site_ops, split_blocks, total

#: What the bytes figures are, for the envelope (and the tables' notes).
BYTES_UNIT = ("bytes each ATen op reads and writes (its input and output tensors at their dtype; views move "
              "nothing; in-place ops read and write their operand; a weight is read once per call); forward per "
              "image at batch 1, training step per image at batch 2; flops here: multiply-add = 2 (hardware peaks' "
              "convention), intensity = flops / bytes moved")


@dataclass
class ModelCost:
    """One model's recordings: its forward, and with ``--training-step`` its step."""

    forward: Recording
    sites: list[str] = field(default_factory=list)  # module paths of its blocks
    training: Recording | None = None
    implementation: str | None = None  # how its blocks run (``SE fused, folded into ...``)


@dataclass
class RooflineRun:
    """The device and batch a complexity run predicted for, and its predictions."""

    device: Device
    batch: int
    baseline: dict[str, Prediction] = field(default_factory=dict)  # inference / training_step
    rows: list[dict[str, tuple[Prediction, Overhead]]] = field(default_factory=list)  # one per row, same keys


FORWARD_BATCH, STEP_BATCH = 1, 2


def _moved(totals: Totals, batch: int) -> int:
    return round(totals.moved / batch)


def recording_dict(recording: Recording, batch: int) -> dict[str, Any]:
    """Totals per image at ``batch``, per phase (training) and per ATen op."""
    totals = total(recording.ops, batch)
    found = {**totals.per_image(batch), "batch_size": batch, "dtype": recording.dtype}
    if recording.training:
        found["by_phase"] = {phase: t.per_image(batch) for phase, t in by_phase(recording.ops, batch).items()}
    found["by_operator"] = {
        name: {"calls": t.kernels, "read": round(t.read / batch), "written": round(t.written / batch),
               "flops": round(t.flops / batch)}
        for name, t in by_operator(recording.ops, batch).items()
    }
    return found


def blocks_dict(cost: ModelCost, recording: Recording, batch: int) -> dict[str, Any] | None:
    """The blocks' share: bytes by role, passes over the sites' tensors, one block's ops in order."""
    if not cost.sites:
        return None
    split = split_blocks(recording, cost.sites, batch)
    moved = sum(t.moved for t in split.roles.values()) / batch
    first = cost.sites[0]
    return {
        "implementation": cost.implementation,
        "moved": round(moved),
        "pass_bytes": round(split.pass_bytes),
        "passes": moved / split.pass_bytes if split.pass_bytes else None,
        "by_role": {role: _moved(t, batch) for role, t in split.roles.items() if t.kernels},
        "first_site": first,
        "first_site_ops": site_ops(recording, first, batch),
    }


def bytes_dict(cost: ModelCost | None, base: ModelCost | None, training: bool = False) -> dict[str, Any] | None:
    """``bytes`` of a row (``base`` given: with the change) or of the baseline (forward or step)."""
    if cost is None:
        return None
    recording = cost.training if training else cost.forward
    if recording is None:
        return None
    batch = STEP_BATCH if training else FORWARD_BATCH
    found = recording_dict(recording, batch)
    if base is not None:
        reference = base.training if training else base.forward
        if reference is not None:
            before = total(reference.ops, batch).moved / batch
            found["moved_added"] = found["moved"] - round(before)
            found["moved_added_pct"] = 100.0 * (found["moved"] - before) / before if before else None
        found["blocks"] = blocks_dict(cost, recording, batch)
        if found["blocks"] is not None and "moved_added" in found:
            one_pass = found["blocks"]["pass_bytes"]
            found["blocks"]["passes_added"] = found["moved_added"] / one_pass if one_pass else None
    return found


def module_bytes(cost: ModelCost | None, paths: list[str]) -> dict[str, Totals]:
    """Totals per module of the forward at batch 1 (a parent includes its children)."""
    if cost is None:
        return {}
    from secli.cost.summary import by_module

    return by_module(cost.forward.ops, FORWARD_BATCH, paths)


def roofline_dict(run: RooflineRun | None) -> dict[str, Any] | None:
    """``results.roofline``: the device with its sources, the batch, the baseline's predictions."""
    if run is None:
        return None
    return {
        "device": run.device.to_dict(),
        "batch_size": run.batch,
        "baseline": {mode: p.to_dict() for mode, p in run.baseline.items()},
    }


def row_roofline_dict(run: RooflineRun | None, index: int) -> dict[str, Any] | None:
    """A row's predictions and what its blocks add (``by_role_ms_per_image`` sums to the added time)."""
    if run is None or index >= len(run.rows):
        return None
    return {mode: {**prediction.to_dict(), "vs_baseline": found.to_dict()}
            for mode, (prediction, found) in run.rows[index].items()}
