"""``secli profile`` through the CLI: JSON shape, errors as one line, partial failures."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import assert_one_line_error
from typer.testing import CliRunner

from commands.app import app

FAST = ["--device", "cpu", "--image-size", "32", "-b", "2", "--iters", "1", "--warmup", "0", "--threads", "1"]


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
    document = json.loads(result.stdout)
    assert (document["format"], document["version"], document["command"]) == ("secli-profile", 1, "profile")
    assert document["inputs"]["models"] == ["resnet18"]
    assert document["inputs"]["modes"] == ["inference", "train"]
    assert document["inputs"]["image_size"] == 32
    assert document["inputs"]["iters"] == 1
    payload = document["results"]
    assert payload["baseline"] == "resnet18"
    assert payload["batch_size"] == 2
    assert payload["image_size"] == 32
    base, se = payload["models"]
    assert se["label"] == "resnet18 + SE"
    assert se["sites"] == 8
    # resnet18 at 32x32: two SE sites each at 64@8x8, 128@4x4, 256@2x2, 512@1x1, float32
    assert se["block_traffic"]["bytes_per_image"] == 2 * (64 * 64 + 128 * 16 + 256 * 4 + 512) * 4
    assert base["block_traffic"] is None
    for mode in ("inference", "train"):
        assert base["vs_baseline"][mode]["throughput_ratio"] == 1.0
        timing = se["modes"][mode]
        assert timing["step"]["median_ms"] > 0
        assert timing["memory"]["delta_bytes"] >= 0
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
    result = invoke("resnet50", "--block", "se", "--device", "cuda", "-b", "256", "--amp", "bf16", "--channels-last",
                    "--compile")
    assert_one_line_error(result, 1, "--device cuda")


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["resnet18", "-b", "0"], 2, "--batch-size must be from 1 to 65,536"),
        (["resnet18", "--iters", "0"], 2, "--iters must be from 1 to"),
        (["resnet18", "resnet34", "--block", "se"], 2, "--block compares one architecture"),
        (["resnet18", "--block", "none"], 2, "resnet18 has no SE modules of its own; --block none "
                                             "has nothing to compare"),
        (["resnet18", "--block", "none,se"], 2, "--block must be se, sk"),
        (["resnet18", "--ratio", "8"], 2, "--ratio needs --block"),
        (["resnet18", "--ddp", "--mode", "train"], 2, "torchrun"),
        (["resnet18", "--image-size", "8"], 2, "too small"),
        (["resnet18", "--input-size", "8"], 2, "too small"),  # the old name still works, hidden
        (["resnet18", "--block", "se", "--ratio", "8,16"], 2, "--ratio takes one number, got '8,16'; for one model per "
                                                              "value use --ratios 8,16"),
        (["resnet18", "--ratio", "8,16"], 2, "use --ratios 8,16"),
        (["resnet18", "--block", "se", "--position", "standard,pre"], 2, "use --positions standard,pre"),
        (["resnet18", "--block", "se", "--ratio", "8", "--ratios", "4,8"], 2, "either --ratio or --ratios"),
        (["resnet18", "--block", "se", "--ratios", "4,x"], 2, "--ratios must be whole numbers"),
        (["resnet18", "--ratios", "4,8"], 2, "--ratio needs --block"),
        (["resnet18", "--positions", "pre"], 2, "--position needs --block"),
        (["resnet18", "--block", "eca", "--ratios", "4,8"], 2, "--ratio does not apply to ECA blocks"),
        (["resnet18", "--block", "se", "--positions", "middle"], 2, "middle"),
        (["resnet18", "--image-size", "32", "--input-size", "32"], 2, "give --image-size only"),
        (["resnet18", "--compile-mode", "default"], 2, "--compile-mode applies to compiled models; add --compile"),
        (["resnet18", "--compile", "--compile-mode", "fastest"], 2, "unknown compile mode"),
        (["resnet18", "--ddp"], 2, "--ddp times DistributedDataParallel training steps"),
        (["resnet18", "--ddp", "--mode", "train", "--auto-batch"], 2, "--auto-batch cannot be used with --ddp"),
        (["resnet18", "--force"], 2, "--force applies to --out FILE"),
        (["resnet18", "r18.pt", "--spec", "s.yaml"], 2, "--spec sweeps one architecture"),
        ([], 2, "name at least one model"),
        (["resnet5O"], 2, "unknown architecture"),
    ],
)
def test_bad_requests_are_one_line_errors(args: list[str], code: int, text: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert_one_line_error(invoke(*args, "--device", "cpu"), code, text)


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["--device", "tpu"], 2, "unknown device 'tpu'; use auto, cpu, cuda or cuda:N"),
        (["--device", "cuda:0"], 1, "CUDA is not available"),
    ],
)
def test_device_spellings_are_the_shared_ones(args: list[str], code: int, text: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert_one_line_error(invoke("resnet18", "--block", "se", *args), code, text)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--device", "cuda", "--threads", "2"], "--threads applies to CPU runs"),
        (["--device", "cuda:0", "--ddp", "--mode", "train"], "--device cuda:0 cannot be used with --ddp"),
    ],
)
def test_options_that_do_not_apply_on_a_gpu_are_refused(args: list[str], text: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked before anything is built, so a machine without a GPU can pretend to have one."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert_one_line_error(invoke("resnet18", "--block", "se", *args), 2, text)


def test_help_names_image_size_hides_the_old_name_and_shows_flags_as_flags() -> None:
    result = CliRunner().invoke(app, ["profile", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    assert "--image-size" in result.stdout
    assert "--input-size" not in result.stdout
    # a value chosen from a list: a noun for the metavar, the choices in the help text (tests/test_help.py)
    for option in ("--ratios", "--positions", "--spec", "--out", "<device>", "auto | cpu | cuda | cuda:N",
                   "<format>", "table | json | csv | markdown"):
        assert option in result.stdout, option
    assert "[default: 8]" in result.stdout
    flags = [line for line in result.stdout.splitlines()
             if any(f in line for f in ("--channels-last", "--compile ", "--ddp", "--force"))]
    assert len(flags) >= 4, flags
    assert not any("<bool>" in line or "default: False" in line for line in flags), flags


def test_a_spec_s_weights_are_not_loaded_and_a_warning_says_so(tmp_path) -> None:
    """Timings do not depend on weights: the file is not read (it need not exist); one warning
    line on stderr and in the envelope's warnings."""
    spec = tmp_path / "model.yaml"
    spec.write_text("arch: resnet18\nblock: {kind: se, ratio: 8}\nweights: missing/w.pth\n")
    result = invoke("--spec", str(spec), "--format", "json", *FAST)
    assert result.exit_code == 0, result.output
    expected = "the spec's weights (missing/w.pth) are not loaded: timings do not depend on weights"
    assert [line for line in result.stderr.splitlines() if "weights" in line] == [f"warning: {expected}"]
    assert expected in json.loads(result.stdout)["results"]["warnings"]


def test_out_refuses_an_existing_file_before_timing_anything(tmp_path) -> None:
    out = tmp_path / "run.json"
    out.write_text("keep me")
    assert_one_line_error(invoke("resnet18", "--out", str(out), "--device", "cpu"), 2, "exists")
    assert out.read_text() == "keep me"
    assert_one_line_error(invoke("resnet18", "--out", str(tmp_path), "--device", "cpu"), 2, "is a folder")


def test_ratios_sweep_is_one_model_each_and_out_keeps_the_envelope_in_csv_mode(tmp_path) -> None:
    import csv
    import io

    out = tmp_path / "sweep.json"
    result = invoke("resnet18", "--block", "se", "--ratios", "8,16", "--format", "csv", "--out", str(out), *FAST)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["label"] for r in rows] == ["resnet18", "resnet18 + SE r=8 standard", "resnet18 + SE r=16 standard"]
    assert {r["mode"] for r in rows} == {"inference"}
    assert all(float(r["step_median_ms"]) > 0 for r in rows)
    # SE at r on resnet18: 2·ΣC²/r + biases over its 8 blocks (64, 128, 256, 512 channels, two each)
    added = [int(r["params"]) - int(rows[0]["params"]) for r in rows[1:]]
    assert added == [sum(2 * (2 * c * (c // r) + c // r + c) for c in (64, 128, 256, 512)) for r in (8, 16)]
    document = json.loads(out.read_text())
    assert document["format"] == "secli-profile"
    assert [v["ratio"] for v in document["inputs"]["variants"]] == [8, 16]
    assert [m["label"] for m in document["results"]["models"]] == [r["label"] for r in rows]
    again = invoke("resnet18", "--block", "se", "--out", str(out), "--force", "--format", "markdown", *FAST)
    assert again.exit_code == 0, again.output
    assert "| model |" in again.stdout
    assert len(json.loads(out.read_text())["results"]["models"]) == 2


def test_variants_from_options_without_timing_anything() -> None:
    from secli.networks.variants import block_variants

    found = block_variants("resnet18", "se,eca", None,
                           {"positions": "standard,pre", "stages": ["2", "3,4"], "impl": "eager,fused"})
    assert found is not None
    assert found.arch == "resnet18"
    variants = found.blocks
    se = [(v.position, v.stages, v.impl) for v in variants if v.kind == "se"]
    assert se == [(p, s, i) for p in ("standard", "pre") for s in ((2,), (3, 4)) for i in ("eager", "fused")]
    eca = [(v.position, v.stages, v.impl) for v in variants if v.kind == "eca"]  # --impl is SE/SK's: ECA gets one each
    assert eca == [(p, s, "fused") for p in ("standard", "pre") for s in ((2,), (3, 4))]


def test_spec_file_sweeps_its_architecture(tmp_path) -> None:
    spec = tmp_path / "sweep.yaml"
    spec.write_text("arch: resnet18\ntitle: ratio sweep\ninput_size: 32\nblock: {kind: se}\n"
                    "rows:\n  - {kind: none}\nsweep:\n  ratio: [4, 8]\n")
    fast = [a for a in FAST if a not in ("--image-size", "32")]
    result = invoke("--spec", str(spec), "--format", "json", *fast)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["inputs"]["title"] == "ratio sweep"
    assert document["inputs"]["spec"] == str(spec)
    assert document["results"]["image_size"] == 32  # the file's input_size
    # the file's baseline row is the run's baseline; the grid gives one model per ratio
    assert [m["label"] for m in document["results"]["models"]] == ["resnet18", "resnet18 + SE r=4 standard",
                                                                   "resnet18 + SE r=8 standard"]
    # options given on the command line override the file: here the grid
    from secli.networks.variants import block_variants

    found = block_variants("resnet34", None, spec, {"ratios": "16"})
    assert found is not None
    assert found.arch == "resnet34"
    # the file's baseline row, then the grid
    assert [(v.kind, v.ratio) for v in found.blocks] == [("none", 16), ("se", 16)]


def test_compile_failure_marks_the_model_and_keeps_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    import secli.profiling.session as profiling

    calls: list[int] = []

    def fake_compile(model, mode):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("inductor is not available here")
        return model

    monkeypatch.setattr(profiling, "compile_model", fake_compile)
    result = invoke("resnet18", "--block", "se", "--compile", "--format", "json", *FAST)
    assert result.exit_code == 0, result.output
    base, se = json.loads(result.stdout)["results"]["models"]
    assert base["compiled"]
    assert base["failure"] is None
    assert base["modes"]["inference"]
    assert se["failure"]["kind"] == "error"
    assert "inductor is not available" in se["failure"]["message"]
    assert "resnet18 + SE" in result.stderr
    assert "error:" in result.stderr


def test_nothing_measured_exits_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    import secli.profiling.session as profiling

    def always_fails(model, mode):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(profiling, "compile_model", always_fails)
    result = invoke("resnet18", "--block", "se", "--compile", *FAST)
    assert result.exit_code == 1
    assert result.stderr.count("error:") == 2
    assert "Traceback" not in result.output


def test_checkpoint_and_timm_references_side_by_side(tmp_path) -> None:
    saved = tmp_path / "se_r18.pt"
    made = CliRunner().invoke(app, ["inject", "resnet18", "--block", "se", "-o", str(saved), "-f", "json"])
    assert made.exit_code == 0, made.output
    result = invoke("resnet18", str(saved), "timm:seresnet50", "--format", "json", *FAST)
    assert result.exit_code == 0, result.output
    base, ckpt, timm_se = json.loads(result.stdout)["results"]["models"]
    assert (base["label"], ckpt["label"], timm_se["label"]) == ("resnet18", "se_r18.pt", "timm:seresnet50")
    assert ckpt["block_traffic"]["bytes_per_image"] == 2 * (64 * 64 + 128 * 16 + 256 * 4 + 512) * 4
    # timm's own SE modules, found as sites: ResNet-50 stages at 32x32 are 8, 4, 2, 1 pixels wide
    expected = 3 * 256 * 8 * 8 + 4 * 512 * 4 * 4 + 6 * 1024 * 2 * 2 + 3 * 2048 * 1 * 1
    assert timm_se["sites"] == 16
    assert timm_se["block_traffic"]["bytes_per_image"] == expected * 4
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
    """secli.api.profile with the CLI's options gives exactly its JSON: one envelope.

    Clock, bandwidth, memory and machine load are made deterministic so that two runs agree.
    """
    import secli.profiling.prediction as prediction
    import secli.profiling.profiling as profiling
    import secli.profiling.session as session
    from secli.api import profile
    from secli.cost.devices import Device
    from secli.profiling.memory import MemoryReading
    from secli.profiling.traffic import Bandwidth

    monkeypatch.setattr(profiling, "stopwatch_for", lambda device: _TickClock())
    monkeypatch.setattr(profiling, "measure_copy_bandwidth",
                        lambda *a, **k: Bandwidth(bytes_per_s=1e9, buffer_bytes=1, method="test"))
    monkeypatch.setattr(profiling, "busy_cpu_warning", lambda device: None)
    monkeypatch.setattr(session, "step_memory", lambda step, device: MemoryReading(1024, None, "test"))
    cpu = Device("cpu", "test CPU", 1e9, 1e11, None, None, None, 2.0, "test", gpu=False, measured=True)
    monkeypatch.setattr(prediction, "measure_cpu", lambda dtype, bandwidth=None: cpu)  # the roofline's measured CPU
    cli = invoke("resnet18", "--block", "se,sk", "--stages", "5", "--mode", "both", "--format", "json", *FAST)
    assert cli.exit_code == 0, cli.output
    report = profile(
        ["resnet18"], block="se,sk", stages="5", mode="both", device="cpu", image_size=32, batch_size=2,
        iters=1, warmup=0, threads=1,
    )
    assert report.to_dict() == json.loads(cli.stdout)
    assert report.to_dict()["format"] == "secli-profile"
    assert [m.label for m in report.models] == ["resnet18", "resnet18 + SE r=16 standard stages=5",
                                                "resnet18 + SK r=16 M=2 G=32 L=32 stages=5"]


def test_the_command_feeds_the_shared_progress_handle_with_model_and_iteration(monkeypatch: pytest.MonkeyPatch) -> None:
    """commands.progress decides how to show it (a bar, or plain lines off a terminal); profile
    only has to say where it is, in every format (progress is on stderr, never in the JSON)."""
    import contextlib

    import commands.profile

    seen: list[tuple[int, int, str]] = []

    class Handle:
        def update(self, done: int, total: int, what: str) -> None:
            seen.append((done, total, what))

    @contextlib.contextmanager
    def fake_bar(description: str, total: int | None, enabled: bool = True, unit: str = ""):
        assert enabled
        yield Handle()

    monkeypatch.setattr(commands.profile, "progress_bar", fake_bar)
    result = invoke("resnet18", "--block", "se", "--format", "json", *FAST)
    assert result.exit_code == 0, result.output
    said = [what for _, _, what in seen]
    assert said[0] == "preparing model 1/2 (resnet18)"
    assert "inference: iteration 1/1, model 2/2 (resnet18 + SE)" in said
    assert seen[-1][0] == seen[-1][1]
    assert json.loads(result.stdout)["format"] == "secli-profile"
