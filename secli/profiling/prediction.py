"""The roofline prediction set beside what ``secli profile`` measured, for the device it ran on.

After the timing, each model's ops are recorded (``secli.cost.record``: fake tensors, the run's
image size, its ``--amp`` dtype, inference and/or a training step with the run's SGD update) and
turned into a time on the device (``secli.cost.roofline``) at the batch the run measured:

- on CPU, ``cpu`` measured in the same run (the copy bandwidth the run already measured, a
  matrix-product FLOP/s and the cost of one tiny module call);
- on CUDA, the GPU recognised from its name in ``secli.cost.devices``'s table;
- ``--roofline DEVICE`` replaces either (a table key, ``cpu`` or a device YAML file).

The prediction is of the eager kernels (under ``--compile`` the compiler fuses some of them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from secli.cost.device_files import measure_cpu, resolve
from secli.cost.devices import Device, recognise
from secli.cost.record import record
from secli.cost.roofline import Prediction, predict
from secli.profiling.results import ModelEntry, ModelProfile
from secli.util.errors import SecliError

AMP_TO_DTYPE = {"off": "fp32", "bf16": "bf16", "fp16": "fp16"}
RECORD_MODE = {"inference": False, "train": True}


@dataclass
class ModelPrediction:
    label: str
    modes: dict[str, Prediction] = field(default_factory=dict)


@dataclass
class RunPrediction:
    """The device, dtype and batch the run was predicted for, and each model's prediction."""

    device: Device
    dtype: str
    batch: int
    models: list[ModelPrediction] = field(default_factory=list)

    def to_dict(self, measured: Sequence[ModelProfile], baseline: str | None) -> dict[str, Any]:
        """Each model and mode: predicted and measured step time and overhead, side by side."""
        timings = {m.label: m for m in measured}
        base = next((p for p in self.models if p.label == baseline), None)
        models = []
        for found in self.models:
            profile = timings.get(found.label)
            modes = {}
            for mode, prediction in found.modes.items():
                timing = profile.timings.get(mode) if profile is not None else None
                comparison = profile.comparisons.get(mode) if profile is not None else None
                reference = base.modes.get(mode) if base is not None else None
                predicted_ms = 1e3 * prediction.seconds
                modes[mode] = {
                    "predicted_step_ms": predicted_ms,
                    "predicted_overhead_pct": (None if reference is None
                                               else 100.0 * (prediction.seconds / reference.seconds - 1.0)),
                    "measured_step_ms": None if timing is None else timing.step.median_ms,
                    "measured_overhead_pct": None if comparison is None else comparison.overhead_pct,
                    "predicted_over_measured": None if timing is None else predicted_ms / timing.step.median_ms,
                    "prediction": prediction.to_dict(),
                }
            models.append({"label": found.label, "modes": modes})
        return {"device": self.device.to_dict(), "dtype": self.dtype, "batch_size": self.batch, "models": models}


def choose_device(roofline: Device | str | None, device: torch.device, name: str, dtype: str,
                  bandwidth: float | None) -> tuple[Device | None, str | None]:
    """(the device to predict for, or None and a warning saying why there is none). ``roofline``:
    a device resolved before the run, ``"cpu"`` (measured now), or None (the run's own device)."""
    if isinstance(roofline, Device):
        return roofline, None
    if roofline is not None or device.type == "cpu":  # "cpu" asked for, or a CPU run: measured now
        return measure_cpu(dtype, bandwidth if device.type == "cpu" else None), None
    found = recognise(name)
    if found is None:
        return None, (f"no roofline prediction: {name!r} is not in secli's device table; "
                      "pass --roofline DEVICE or a device YAML file")
    return found, None


def resolve_early(roofline: str | None, amp: str) -> Device | str | None:
    """``--roofline`` checked before anything is timed: a table key or a device file becomes a
    ``Device`` now (a typo fails at once); ``cpu`` stays a name, measured after the timing."""
    if roofline is None or roofline.strip().lower() == "cpu":
        return roofline
    return resolve(roofline, AMP_TO_DTYPE.get(amp, "fp32"))


def predict_run(entries: Sequence[ModelEntry], modes: Sequence[str], image_size: int, amp: str, batch: int,
                device: Device) -> RunPrediction:
    """Every entry in every mode, recorded and predicted at ``batch`` images."""
    dtype = AMP_TO_DTYPE[amp]
    run = RunPrediction(device=device, dtype=dtype, batch=batch)
    optimizer = "foreach" if device.gpu else "loop"
    for entry in entries:
        found = ModelPrediction(entry.label)
        sites = [s.module_path for s in entry.sites]
        for mode in modes:
            training = RECORD_MODE[mode]
            recording = record(entry.model, image_size, dtype, training=training, sites=sites,
                               optimizer=optimizer if training else None)
            found.modes[mode] = predict(recording, device, batch, sites)
        run.models.append(found)
    return run


def predict_or_warn(entries: Sequence[ModelEntry], modes: Sequence[str], image_size: int, amp: str, batch: int,
                    roofline: Device | str | None, device: torch.device, name: str, bandwidth: float | None,
                    warnings: list[str]) -> RunPrediction | None:
    """``predict_run`` for the chosen device; a failure is a warning line, not a failed run."""
    chosen, why = choose_device(roofline, device, name, AMP_TO_DTYPE[amp], bandwidth)
    if chosen is None:
        warnings.append(why or "no roofline prediction")
        return None
    try:
        return predict_run(entries, modes, image_size, amp, batch, chosen)
    except SecliError as exc:
        warnings.append(f"no roofline prediction: {exc}")
        return None
