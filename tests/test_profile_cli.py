"""``secli profile`` through the CLI: JSON shape, errors as one line, partial failures."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import assert_one_line_error
from typer.testing import CliRunner

from commands.app import app

FAST = ["--device", "cpu", "--input-size", "32", "-b", "2", "--iters", "1", "--warmup", "0", "--threads", "1"]


@pytest.fixture(autouse=True)
def _restore_threads():
    """--threads sets torch's thread count process-wide; give the next test what it had."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def invoke(*args: str):
    return CliRunner().invoke(app, ["profile", *args])



def test_json_baseline_and_se_with_traffic_from_the_feature_map_sizes() -> None:
    result = invoke("resnet18", "--block", "se", "--mode", "both", "--format", "json", *FAST)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["baseline"] == "resnet18"
    assert payload["batch_size"] == 2 and payload["input_size"] == 32
    base, se = payload["models"]
    assert se["label"] == "resnet18 + SE" and se["sites"] == 8
    # resnet18 at 32x32: two SE sites each at 64@8x8, 128@4x4, 256@2x2, 512@1x1, float32
    assert se["block_traffic"]["bytes_per_image"] == 2 * (64 * 64 + 128 * 16 + 256 * 4 + 512) * 4
    assert base["block_traffic"] is None
    for mode in ("inference", "train"):
        assert base["vs_baseline"][mode]["throughput_ratio"] == 1.0
        timing = se["modes"][mode]
        assert timing["step"]["median_ms"] > 0 and timing["memory"]["delta_bytes"] >= 0
    assert se["modes"]["train"]["backward"]["median_ms"] > 0
    assert se["modes"]["inference"]["backward"] is None


def test_table_output_names_the_setting_and_the_memory_method() -> None:
    result = invoke("resnet18", "--block", "se,sk", *FAST)
    assert result.exit_code == 0, result.output
    assert "inference: batch 2, 32x32, cpu (1 threads), amp off" in result.stdout
    assert "resnet18 + SK" in result.stdout
    assert "memory and block traffic" in result.stdout


def test_cuda_asked_for_and_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = invoke("resnet18", "--block", "se", "--device", "cuda")
    assert_one_line_error(result, 1, "CUDA is not available")


def test_gpu_options_are_accepted_on_the_command_line_before_the_device_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = invoke("resnet50", "--block", "se", "--device", "cuda", "-b", "256", "--amp", "bf16", "--channels-last", "--compile")
    assert_one_line_error(result, 1, "--device cuda")


@pytest.mark.parametrize(
    "args, code, text",
    [
        (["resnet18", "-b", "0"], 2, "batch size must be >= 1"),
        (["resnet18", "--iters", "0"], 2, "--iters must be >= 1"),
        (["resnet18", "--compile-mode", "fastest"], 2, "unknown compile mode"),
        (["resnet18", "resnet34", "--block", "se"], 2, "--block compares one architecture"),
        (["resnet18", "--block", "none"], 2, "--block must be se, sk"),
        (["resnet18", "--ratio", "8"], 2, "--ratio needs --block"),
        (["resnet18", "--ddp"], 2, "torchrun"),
        (["resnet18", "--input-size", "8"], 2, "too small"),
        ([], 2, "name at least one model"),
        (["resnet5O"], 2, "unknown architecture"),
    ],
)
def test_bad_requests_are_one_line_errors(args: list[str], code: int, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert_one_line_error(invoke(*args, "--device", "cpu"), code, text)


def test_compile_failure_marks_the_model_and_keeps_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    import secli.profiling.session as profiling

    calls: list[int] = []

    def fake_compile(model, mode):  # noqa: ANN001, ANN202
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("inductor is not available here")
        return model

    monkeypatch.setattr(profiling, "compile_model", fake_compile)
    result = invoke("resnet18", "--block", "se", "--compile", "--format", "json", *FAST)
    assert result.exit_code == 0, result.output
    base, se = json.loads(result.stdout)["models"]
    assert base["compiled"] and base["failure"] is None and base["modes"]["inference"]
    assert se["failure"]["kind"] == "error" and "inductor is not available" in se["failure"]["message"]
    assert "resnet18 + SE" in result.stderr and "error:" in result.stderr


def test_nothing_measured_exits_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    import secli.profiling.session as profiling

    def always_fails(model, mode):  # noqa: ANN001, ANN202
        raise RuntimeError("no compiler")

    monkeypatch.setattr(profiling, "compile_model", always_fails)
    result = invoke("resnet18", "--block", "se", "--compile", *FAST)
    assert result.exit_code == 1
    assert result.stderr.count("error:") == 2 and "Traceback" not in result.output


def test_checkpoint_and_timm_references_side_by_side(tmp_path) -> None:
    saved = tmp_path / "se_r18.pt"
    made = CliRunner().invoke(app, ["inject", "resnet18", "--block", "se", "-o", str(saved), "-f", "json"])
    assert made.exit_code == 0, made.output
    result = invoke("resnet18", str(saved), "timm:seresnet50", "--format", "json", *FAST)
    assert result.exit_code == 0, result.output
    base, ckpt, timm_se = json.loads(result.stdout)["models"]
    assert (base["label"], ckpt["label"], timm_se["label"]) == ("resnet18", "se_r18.pt", "timm:seresnet50")
    assert ckpt["block_traffic"]["bytes_per_image"] == 2 * (64 * 64 + 128 * 16 + 256 * 4 + 512) * 4
    # timm's own SE modules, found as sites: ResNet-50 stages at 32x32 are 8, 4, 2, 1 pixels wide
    expected = 3 * 256 * 8 * 8 + 4 * 512 * 4 * 4 + 6 * 1024 * 2 * 2 + 3 * 2048 * 1 * 1
    assert timm_se["sites"] == 16 and timm_se["block_traffic"]["bytes_per_image"] == expected * 4
    assert ckpt["vs_baseline"]["inference"]["throughput_ratio"] > 0


class _TickClock:
    """Every mark is 1 ms after the last: timings, and so the JSON, repeat exactly."""

    def __init__(self) -> None:
        self.now = 0.0

    def mark(self) -> float:
        self.now += 1e-3
        return self.now

    def elapsed_ms(self, start: float, end: float) -> float:
        return (end - start) * 1e3

    def finish(self) -> None:
        return None


def test_python_profile_equals_the_cli_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """secli.profiling.workflow.profile with the CLI's options gives exactly its JSON.

    Clock, bandwidth, memory and machine load are made deterministic so that two runs agree.
    """
    import secli.profiling.profiling as profiling
    import secli.profiling.session as session
    from secli.profiling.memory import MemoryReading
    from secli.profiling.traffic import Bandwidth
    from secli.profiling.workflow import profile

    monkeypatch.setattr(profiling, "stopwatch_for", lambda device: _TickClock())
    monkeypatch.setattr(profiling, "measure_copy_bandwidth", lambda *a, **k: Bandwidth(bytes_per_s=1e9, buffer_bytes=1, method="test"))
    monkeypatch.setattr(profiling, "busy_cpu_warning", lambda device: None)
    monkeypatch.setattr(session, "step_memory", lambda step, device: MemoryReading(1024, None, "test"))
    cli = invoke("resnet18", "--block", "se,sk", "--stages", "5", "--mode", "both", "--format", "json", *FAST)
    assert cli.exit_code == 0, cli.output
    report = profile(
        ["resnet18"], block="se,sk", stages="5", mode="both", device="cpu", input_size=32, batch_size=2,
        iters=1, warmup=0, threads=1,
    )
    assert json.loads(json.dumps(report.to_dict())) == json.loads(cli.stdout)
    assert [m.label for m in report.models] == ["resnet18", "resnet18 + SE r=16 standard stages=5", "resnet18 + SK r=16 M=2 G=32 L=32 stages=5"]
