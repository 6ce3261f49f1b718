"""Each model against the baseline, and the warnings a reader needs to trust the figures.

The baseline is the first model that was measured (not necessarily the first named: a model
that failed cannot be a reference). Ratios use the medians of the whole step.
"""

from __future__ import annotations

from secli.profiling.results import Comparison, ModelProfile
from secli.profiling.traffic import Bandwidth, implied_passes


def compare_to_baseline(models: list[ModelProfile], bandwidth: Bandwidth | None) -> str | None:
    """Fill each model's comparisons against the baseline; return the baseline's label."""
    measured = [m for m in models if m.ok]
    if not measured:
        return None
    base = measured[0]
    for model in measured:
        for mode, timing in model.timings.items():
            ref = base.timings.get(mode)
            if ref is None:
                continue
            added_ms = timing.step.median_ms - ref.step.median_ms
            passes = None
            if (model is not base and bandwidth is not None and model.traffic
                    and not (base.traffic and base.traffic.sites)):
                per_pass = model.traffic.bytes_per_image * timing.batch_size
                passes = implied_passes(added_ms, bandwidth, per_pass)
            model.comparisons[mode] = Comparison(
                throughput_ratio=ref.step.median_ms / timing.step.median_ms,
                overhead_pct=100.0 * (timing.step.median_ms / ref.step.median_ms - 1.0),
                overhead_us_per_image=added_ms * 1e3 / timing.batch_size,
                implied_passes=passes,
            )
    return base.label


def noise_warnings(models: list[ModelProfile]) -> list[str]:
    """One line naming every whole-step timing whose IQR exceeds 10% of its median."""
    noisy = [
        f"{model.label} {mode} {timing.step.relative_iqr:.0%}"
        for model in models
        for mode, timing in model.timings.items()
        if timing.step.noisy
    ]
    if not noisy:
        return []
    return [f"noisy timings (IQR/median > 10%): {', '.join(noisy)}; use more --iters or a quieter machine"]
