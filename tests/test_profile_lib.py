"""The profiling library: statistics, stopwatches, memory, block traffic, failures.

Timings are checked with modules that sleep for known times (a lower bound the machine cannot
beat), never against the code's own output; traffic against the closed-form feature-map sizes.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from secli.blocks.spec import BlockSpec
from secli.networks.models import load_model
from secli.profiling.memory import MemoryReading, cpu_step_memory
from secli.profiling.profiling import profile_models
from secli.profiling.results import ModelEntry, ProfileConfig
from secli.profiling.timing import CudaStopwatch, HostStopwatch, Stats, percentile, stopwatch_for
from secli.profiling.traffic import Bandwidth, implied_passes, measure_site_traffic
from secli.util.device import resolve_device
from secli.util.errors import SecliError, SecliUsageError

TINY = {"device": "cpu", "batch_size": 2, "image_size": 8, "iters": 3, "warmup": 1, "threads": 1}


@pytest.fixture(autouse=True)
def _restore_threads():
    """--threads sets torch's thread count process-wide; give the next test what it had."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


class VirtualClock:
    """Time that passes only when a test model says so: timing tests that do not depend on load."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def mark(self) -> float:
        return self.now

    def elapsed_ms(self, start: float, end: float) -> float:
        return (end - start) * 1e3

    def finish(self) -> None:
        return None


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """Make the profiler read a virtual clock that only Sleeper models advance."""
    import secli.profiling.profiling

    virtual = VirtualClock()
    monkeypatch.setattr(secli.profiling.profiling, "stopwatch_for", lambda device: virtual)
    fixed = Bandwidth(bytes_per_s=1e9, buffer_bytes=1, method="test")
    monkeypatch.setattr(secli.profiling.profiling, "measure_copy_bandwidth", lambda *args, **kwargs: fixed)
    return virtual


class Sleeper(nn.Module):
    """Forward takes ``forward_s`` and backward ``backward_s`` of virtual time; logs its calls."""

    def __init__(self, name: str, clock: VirtualClock, forward_s: float, backward_s: float = 0.0,
                 log: list | None = None) -> None:
        super().__init__()
        self.name, self.clock, self.forward_s, self.backward_s, self.log = name, clock, forward_s, backward_s, log
        self.fc = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.log is not None:
            self.log.append(self.name)
        self.clock.sleep(self.forward_s)
        out = self.fc(x.mean(dim=(2, 3)))
        return _SleepBackward.apply(out, self.clock, self.backward_s)


class _SleepBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, clock, seconds):  # type: ignore[override]
        ctx.clock, ctx.seconds = clock, seconds
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        ctx.clock.sleep(ctx.seconds)
        return grad, None, None


class OomAbove(nn.Module):
    """Raises torch.OutOfMemoryError for batches larger than ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.fc = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.limit:
            raise torch.OutOfMemoryError(f"pretend allocation of batch {x.shape[0]} failed")
        return self.fc(x.mean(dim=(2, 3)))


def frozen() -> nn.Module:
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4))
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def small() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))


# -- statistics and stopwatches ---------------------------------------------------------------


def test_percentiles_match_numpy() -> None:
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    for q in (0, 25, 50, 75, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    stats = Stats.of(values)
    assert stats.iqr_ms == pytest.approx(np.percentile(values, 75) - np.percentile(values, 25))
    assert stats.noisy  # an IQR of ~4.5 around a median of 4 is far above 10%
    assert not Stats.of([10.0, 10.1, 10.2, 10.0]).noisy


def test_host_stopwatch_measures_at_least_the_sleep() -> None:
    watch = HostStopwatch()
    start = watch.mark()
    time.sleep(0.02)
    assert watch.elapsed_ms(start, watch.mark()) >= 20.0


def test_cuda_devices_get_event_stopwatches_without_touching_cuda() -> None:
    assert isinstance(stopwatch_for(torch.device("cuda")), CudaStopwatch)
    assert isinstance(stopwatch_for(torch.device("cpu")), HostStopwatch)


# -- devices and configuration ----------------------------------------------------------------


def test_cuda_asked_for_and_absent_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SecliError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_auto_picks_cuda_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"batch_size": 0}, "--batch-size must be from 1"),
        ({"iters": 0}, "--iters"),
        ({"warmup": -1}, "--warmup"),
        ({"threads": 0}, "--threads"),
        ({"amp": "fp8"}, "--amp"),
        ({"compile_mode": "fastest"}, "compile mode"),
        ({"modes": ("eval",)}, "mode"),
        ({"device": "tpu"}, "device"),
        ({"device": "cuda:x"}, "auto, cpu, cuda or cuda:N"),
    ],
)
def test_bad_settings_are_usage_errors(bad: dict, message: str) -> None:
    with pytest.raises(SecliUsageError, match=message):
        ProfileConfig(**bad)


# -- memory -----------------------------------------------------------------------------------


def test_cpu_peak_rss_delta_sees_a_tensor_of_known_size() -> None:
    size = 48 * 2**20

    def step() -> None:
        torch.empty(size // 4).fill_(1.0)

    step()  # the same pages would be reused from the heap without the trim in cpu_step_memory
    reading = cpu_step_memory(step)
    assert reading.method in ("linux-vmhwm", "ru_maxrss-lower-bound")
    if reading.method == "linux-vmhwm":
        assert size * 0.95 <= reading.delta_bytes <= size + 16 * 2**20


def test_cpu_memory_falls_back_to_a_labelled_lower_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    import secli.profiling.memory as memory

    monkeypatch.setattr(memory, "_reset_hwm", lambda: False)
    reading = cpu_step_memory(lambda: None)
    assert reading.method == "ru_maxrss-lower-bound"
    assert reading.delta_bytes >= 0


# -- block traffic ----------------------------------------------------------------------------


def test_se_resnet50_traffic_matches_the_published_element_count() -> None:
    """PAPERS.md: SE's tensors hold 5.52M elements per image at 224 (16 sites of ResNet-50)."""
    loaded = load_model("resnet50", BlockSpec(kind="se"))
    built, sites = loaded.model.eval(), loaded.sites
    x = torch.randn(1, 3, 224, 224)
    closed_form = 3 * 256 * 56 * 56 + 4 * 512 * 28 * 28 + 6 * 1024 * 14 * 14 + 3 * 2048 * 7 * 7
    assert closed_form == 5_519_360

    def forward() -> None:
        with torch.inference_mode():
            built(x)

    traffic = measure_site_traffic(built, sites, forward)
    assert len(traffic.sites) == 16
    assert traffic.bytes_per_image == closed_form * 4


def test_traffic_uses_the_autocast_element_size() -> None:
    built = load_model("resnet18", BlockSpec(kind="se"))
    model = built.model.eval()
    x = torch.randn(1, 3, 64, 64)

    def forward() -> None:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            model(x)

    traffic = measure_site_traffic(model, built.sites, forward)
    # resnet18 at 64: two blocks per stage of 64@16x16, 128@8x8, 256@4x4, 512@2x2, in bf16
    assert traffic.bytes_per_image == 2 * (64 * 256 + 128 * 64 + 256 * 16 + 512 * 4) * 2
    assert {s.element_size for s in traffic.sites} == {2}


def test_implied_passes_closed_form() -> None:
    bandwidth = Bandwidth(bytes_per_s=2e9, buffer_bytes=1, method="test")
    # 3 ms added at 2 GB/s moves 6 MB: 3 passes over 2 MB
    assert implied_passes(3.0, bandwidth, 2e6) == pytest.approx(3.0)
    assert implied_passes(-1.0, bandwidth, 2e6) is None
    assert implied_passes(1.0, bandwidth, 0) is None


# -- timing end to end ------------------------------------------------------------------------


def test_inference_times_ratios_and_interleaving(clock: VirtualClock) -> None:
    log: list[str] = []
    entries = [ModelEntry("A", Sleeper("A", clock, 0.01, log=log)), ModelEntry("B", Sleeper("B", clock, 0.03, log=log))]
    report = profile_models(entries, ProfileConfig(**TINY))
    a, b = report.models
    assert report.baseline == "A"
    assert a.timings["inference"].step.median_ms == pytest.approx(10.0)
    assert b.timings["inference"].step.median_ms == pytest.approx(30.0)
    # 30 ms vs 10 ms per batch: B runs at a third of A's throughput
    assert b.comparisons["inference"].throughput_ratio == pytest.approx(1 / 3)
    assert a.comparisons["inference"].throughput_ratio == 1.0
    # 20 ms more per batch of 2 images: 10,000 µs per image
    assert b.comparisons["inference"].overhead_us_per_image == pytest.approx(20e3 / TINY["batch_size"])
    # probe A, probe B, then A, B, A, B, ... for warm-up, timing and memory
    assert log[2:] == ["A", "B"] * ((len(log) - 2) // 2)


def test_train_separates_forward_and_backward(clock: VirtualClock) -> None:
    entries = [ModelEntry("slow-backward", Sleeper("S", clock, 0.005, backward_s=0.03))]
    report = profile_models(entries, ProfileConfig(modes=("train",), **TINY))
    timing = report.models[0].timings["train"]
    assert timing.forward.median_ms == pytest.approx(5.0)
    assert timing.backward.median_ms == pytest.approx(30.0)
    assert timing.step.median_ms == pytest.approx(35.0)
    assert timing.memory is not None


def test_out_of_memory_keeps_the_other_rows() -> None:
    entries = [ModelEntry("fits", small()), ModelEntry("greedy", OomAbove(limit=2))]
    report = profile_models(entries, ProfileConfig(**{**TINY, "batch_size": 4}))
    fits, greedy = report.models
    assert fits.ok
    assert "inference" in fits.timings
    assert greedy.failure is not None
    assert greedy.failure.kind == "oom"
    assert "batch size 4" in greedy.failure.message
    assert "-b 2" in greedy.failure.message


def test_auto_batch_halves_until_it_fits() -> None:
    entries = [ModelEntry("fits", small()), ModelEntry("greedy", OomAbove(limit=2))]
    report = profile_models(entries, ProfileConfig(**{**TINY, "batch_size": 8, "auto_batch": True}))
    assert report.batch_size == 2
    assert all(m.ok for m in report.models)
    assert any("halved" in w for w in report.warnings)


def test_a_model_without_backward_is_marked() -> None:
    entries = [ModelEntry("trainable", small()), ModelEntry("frozen", frozen())]
    report = profile_models(entries, ProfileConfig(modes=("train",), **TINY))
    trainable, stuck = report.models
    assert trainable.ok
    assert stuck.failure is not None
    assert stuck.failure.kind == "backward"


def test_compile_failure_on_one_model_is_reported_and_others_continue(monkeypatch: pytest.MonkeyPatch) -> None:
    import secli.profiling.session as profiling

    def failing_backend(gm, example_inputs):  # torch.compile's backend signature
        raise RuntimeError("this backend cannot compile anything")

    good, bad = small(), small()

    def fake_compile(model: nn.Module, mode: str):
        if model is bad:
            return torch.compile(model, backend=failing_backend)
        return model  # stands in for a successful compile, without the minutes inductor takes

    monkeypatch.setattr(profiling, "compile_model", fake_compile)
    torch._dynamo.reset()
    report = profile_models([ModelEntry("good", good), ModelEntry("bad", bad)],
                            ProfileConfig(compile_mode="default", **TINY))
    assert report.models[0].ok
    assert report.models[0].compiled
    assert report.models[1].failure is not None
    assert report.models[1].failure.kind == "compile"
    assert "torch.compile failed" in report.models[1].failure.message


def test_ratios_are_against_the_first_model_that_ran() -> None:
    entries = [ModelEntry("broken", OomAbove(limit=0)), ModelEntry("C", small())]
    report = profile_models(entries, ProfileConfig(**TINY))
    assert report.baseline == "C"
    assert any("ratios are against C" in w for w in report.warnings)


def test_memory_reading_is_attached_per_mode() -> None:
    report = profile_models([ModelEntry("m", small())], ProfileConfig(modes=("inference", "train"), **TINY))
    for mode in ("inference", "train"):
        assert isinstance(report.models[0].timings[mode].memory, MemoryReading)


def test_busy_machine_warns_against_several_cpu_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    entries = [ModelEntry("m", small())]
    busy = profile_models(entries, ProfileConfig(**{**TINY, "threads": 2, "iters": 1, "warmup": 0}))
    assert any("--threads 1" in w for w in busy.warnings)
    quiet = profile_models(entries, ProfileConfig(**{**TINY, "iters": 1, "warmup": 0}))
    assert not any("--threads 1" in w for w in quiet.warnings)


def test_cuda_memory_reads_the_peak_above_the_start_after_a_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU here: a fake allocator checks the order of calls and the arithmetic."""
    from secli.profiling.memory import cuda_step_memory

    state = {"allocated": 100, "peak": 900, "calls": []}

    def step() -> None:
        state["calls"].append("step")
        state["peak"] = max(state["peak"], state["allocated"] + 250)  # 250 bytes live at most

    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: state["calls"].append("sync"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats",
                        lambda device=None: state.update(peak=state["allocated"]) or state["calls"].append("reset"))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: state["allocated"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: state["peak"])
    reading = cuda_step_memory(step, torch.device("cuda"))
    assert reading.delta_bytes == 250
    assert reading.peak_bytes == 350
    assert reading.method == "cuda-allocator"
    assert state["calls"] == ["sync", "reset", "step", "sync"]


def test_progress_goes_through_a_plain_callback_and_reaches_its_total() -> None:
    seen: list[tuple[int, int, str]] = []
    profile_models([ModelEntry("a", small()), ModelEntry("b", small())],
                   ProfileConfig(modes=("inference", "train"), **TINY), lambda d, t, w: seen.append((d, t, w)))
    done = [d for d, _, _ in seen]
    assert done == list(range(1, len(seen) + 1))
    # per model: 1 preparation + per mode (1 warm-up + 3 timed + 1 memory)
    assert seen[-1][0] == seen[-1][1] == 2 * (1 + 2 * (1 + 3 + 1))
    # each report says which model and which iteration, in the words a log reader needs
    said = [w for _, _, w in seen]
    assert said[0] == "preparing model 1/2 (a)"
    assert "inference: warm-up 1/1, model 2/2 (b)" in said
    assert "train: iteration 3/3, model 1/2 (a)" in said
    assert said[-1] == "train memory: model 2/2 (b)"


def test_cuda_n_is_a_device_spelling() -> None:
    assert ProfileConfig(device="cuda:1").device == "cuda:1"


def test_variant_labels_are_short_at_the_defaults_and_full_in_a_sweep() -> None:
    from secli.blocks.spec import BlockSpec
    from secli.profiling.entries import variant_labels

    assert variant_labels("r18", [BlockSpec(kind="se"), BlockSpec(kind="eca")]) == ["r18 + SE", "r18 + ECA"]
    labels = variant_labels("r18", [BlockSpec(kind="se", impl="eager"), BlockSpec(kind="se")])
    assert labels == ["r18 + SE (eager)", "r18 + SE (fused)"]
    assert variant_labels("r18", [BlockSpec(kind="se", impl="eager")]) == ["r18 + SE (eager)"]
    assert variant_labels("r18", [BlockSpec(kind="se", ratio=8), BlockSpec(kind="se", position="pre")]) == [
        "r18 + SE r=8 standard", "r18 + SE r=16 pre",
    ]


def test_auto_batch_gives_up_below_one_image() -> None:
    report = profile_models([ModelEntry("never", OomAbove(limit=0))], ProfileConfig(**{**TINY, "auto_batch": True}))
    assert report.measured == []
    assert report.models[0].failure is not None
    assert "even at batch size 1" in report.models[0].failure.message
