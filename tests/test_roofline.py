"""The roofline: devices (table, names, files, the measured CPU), the time model worked by hand, and
``--roofline``/``--dtype`` through ``secli complexity`` and ``secli profile`` in every format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run

from secli.cost.device_files import measure_cpu, read_device_file, resolve
from secli.cost.devices import DEVICES, GB, Device, T, recognise
from secli.cost.record import OpCost, Recording
from secli.cost.roofline import overhead, predict
from secli.util.errors import SecliUsageError

DEVICE = Device("toy", "toy", bandwidth=1e12, fp32=10 * T, tf32=100 * T, bf16=200 * T, fp16=None, launch_us=5.0,
                source="test")


def _op(name: str, kind: str, dtype: str, flops: float, read: float, written: float, module: str = "") -> OpCost:
    return OpCost(name, kind, dtype, "forward", module, (0.0, 0.0, 0.0), (flops, read, written))


def test_time_per_op_is_the_larger_term_plus_a_launch() -> None:
    rec = Recording([
        _op("convolution", "conv", "float32", 1e12, 6e8, 4e8),  # tf32: 1e12 / 1e14 = 10 ms > 1 GB / 1 TB/s = 1 ms
        _op("mm", "matmul", "float32", 1e12, 0.0, 1e3),  # fp32 matrix product: 1e12 / 1e13 = 100 ms
        _op("mul", "vector", "float32", 1e6, 2e9, 1e9),  # 3 GB / 1 TB/s = 3 ms > 1e6 / 1e13
        _op("convolution", "conv", "bfloat16", 4e12, 1e6, 1e6),  # 4e12 / 2e14 = 20 ms
    ], "fp32", False, 224)
    found = predict(rec, DEVICE, 1)
    phase = found.phases["forward"]
    assert phase.seconds == pytest.approx(0.010 + 0.100 + 0.003 + 0.020 + 4 * 5e-6)
    assert phase.compute_s == pytest.approx(0.130)
    assert phase.memory_s == pytest.approx(0.003)
    assert phase.kernels == 4
    assert found.ms_per_image == pytest.approx(1e3 * phase.seconds)


def test_a_batch_scales_activations_not_weights() -> None:
    op = OpCost("convolution", "conv", "float32", "forward", "", (0.0, 1e9, 0.0), (0.0, 1e8, 1e8))
    found = predict(Recording([op], "fp32", False, 224), DEVICE, 10)
    assert found.seconds == pytest.approx((1e9 + 10 * 2e8) / 1e12 + 5e-6)


def test_peaks_fall_back_where_a_gpu_has_no_such_units() -> None:
    v100 = DEVICES["v100"]
    assert v100.matrix_peak("conv", "bfloat16") == v100.fp32 == 15.7 * T  # no bf16 or tf32 tensor cores
    assert v100.matrix_peak("conv", "float16") == 125 * T
    a100 = DEVICES["a100"]
    assert a100.matrix_peak("conv", "float32") == 156 * T  # cudnn's TF32, on by default
    assert a100.matrix_peak("matmul", "float32") == 19.5 * T  # matmul TF32 is off by default


def test_overhead_by_role_sums_to_the_added_time() -> None:
    base = Recording([_op("add_", "vector", "float32", 0, 3e9, 1e9)], "fp32", False, 224)
    injected = Recording([
        _op("mean", "vector", "float32", 0, 1e9, 1e3, "se"), _op("mul", "vector", "float32", 0, 1e9, 1e9, "se"),
        _op("convolution", "conv", "float32", 1e6, 1e5, 1e3, "se.fc1"), _op("add_", "vector", "float32", 0, 3e9, 1e9),
    ], "fp32", False, 224, site_bytes={"se": 1e9})
    found = overhead(predict(base, DEVICE, 1), predict(injected, DEVICE, 1, ["se"]))
    roles = found.to_dict()["by_role_ms_per_image"]
    assert roles["pool"] == pytest.approx(1.0 + 5e-3)
    assert roles["scale"] == pytest.approx(2.0 + 5e-3)
    assert sum(roles.values()) == pytest.approx(found.added_ms)
    assert found.throughput_ratio == pytest.approx(found.baseline_ms / found.injected_ms)


def test_every_table_entry_has_a_source_and_sane_figures() -> None:
    for device in DEVICES.values():
        assert device.source.startswith("https://")
        assert device.gpu
        assert 100 * GB <= device.bandwidth <= 10_000 * GB
        assert 5 * T <= device.fp32 <= 200 * T
        for peak in (device.tf32, device.bf16, device.fp16):
            assert peak is None or device.fp32 <= peak <= 2_000 * T


@pytest.mark.parametrize(("name", "key"), [
    ("NVIDIA H100 80GB HBM3", "h100"), ("NVIDIA H100 PCIe", "h100-pcie"), ("NVIDIA H200", "h200"),
    ("NVIDIA A100-SXM4-80GB", "a100"), ("NVIDIA A100-SXM4-40GB", "a100-40gb"),
    ("NVIDIA L4", "l4"), ("NVIDIA L40S", "l40s"),
    ("Tesla V100-SXM2-16GB", "v100"), ("Tesla T4", "t4"), ("NVIDIA GeForce RTX 4090", "rtx4090"),
    ("NVIDIA GeForce RTX 3090", "rtx3090"), ("NVIDIA GeForce RTX 5090", "rtx5090"),
])
def test_gpus_are_recognised_by_their_cuda_names(name: str, key: str) -> None:
    found = recognise(name)
    assert found is not None
    assert found.key == key


def test_unknown_gpu_is_not_guessed() -> None:
    assert recognise("AMD Instinct MI300X") is None
    assert recognise("NVIDIA GeForce RTX 2060") is None


def test_a_device_file_is_read_checked_and_bounded(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: My GPU\nbandwidth_gb_per_s: 500\nfp32_tflops: 20\nbf16_tflops: 80\nlaunch_us: 3\n")
    found = read_device_file(path)
    assert (found.name, found.bandwidth, found.fp32, found.bf16, found.tf32, found.launch_us) == (
        "My GPU", 500 * GB, 20 * T, 80 * T, None, 3.0)
    assert resolve(str(path)) == found
    for text, message in [
        ("name: x\nbandwidth_gb_per_s: 1\nfp32_tflops: 1\nbandwith: 2\n", "unknown key"),
        ("name: x\nfp32_tflops: 1\n", "missing key 'bandwidth_gb_per_s'"),
        ("name: x\nbandwidth_gb_per_s: -1\nfp32_tflops: 1\n", "must be > 0"),
        ("name: x\nbandwidth_gb_per_s: 1\nfp32_tflops: 2000000\n", "must be <="),
        ("name: x\nbandwidth_gb_per_s: fast\nfp32_tflops: 1\n", "finite number"),
        ("- a list\n", "expected a mapping"),
        ("name: ''\nbandwidth_gb_per_s: 1\nfp32_tflops: 1\n", "name must be"),
    ]:
        path.write_text(text)
        with pytest.raises(SecliUsageError, match=message):
            read_device_file(path)


def test_unknown_device_names_the_choices() -> None:
    with pytest.raises(SecliUsageError) as caught:
        resolve("h1000")
    assert "h100" in (caught.value.hint or "")
    assert "cpu" in (caught.value.hint or "")


def test_the_cpu_is_measured_on_the_spot() -> None:
    found = measure_cpu("fp32", bandwidth=5 * GB)
    assert found.measured
    assert not found.gpu
    assert found.bandwidth == 5 * GB
    assert found.fp32 > 0
    assert found.launch_us > 0
    assert found.bf16 is None


def test_complexity_roofline_in_json_markdown_and_csv(tmp_path: Path) -> None:
    args = ["complexity", "resnet18", "--block", "se", "--image-size", "32", "--roofline", "a100", "--dtype", "bf16",
            "--roofline-batch", "64"]
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)["results"]
    assert results["dtype"] == "bf16"
    assert results["roofline"]["device"]["key"] == "a100"
    assert results["roofline"]["batch_size"] == 64
    assert results["roofline"]["device"]["source"].startswith("https://")
    (row,) = results["rows"]
    vs = row["roofline"]["inference"]["vs_baseline"]
    assert sum(vs["by_role_ms_per_image"].values()) == pytest.approx(vs["added_ms_per_image"])
    assert row["bytes"]["blocks"]["implementation"].startswith("SqueezeExcitation fused")
    assert row["bytes"]["moved"] == row["bytes"]["read"] + row["bytes"]["written"]
    markdown = run(*args, "--format", "markdown")
    assert markdown.exit_code == 0
    assert "roofline on NVIDIA A100" in markdown.stdout
    assert "where the added time goes" in markdown.stdout
    csv = run(*args, "--format", "csv")
    assert csv.exit_code == 0
    assert csv.stdout.splitlines()[0].startswith("model,mode,device,batch_size,dtype,ms_per_image")
    assert ",inference,a100,64,bf16," in csv.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--roofline", "h1000"], "unknown device"),
    (["--dtype", "fp8"], "unknown --dtype"),
    (["--roofline-batch", "8"], "--roofline-batch applies to --roofline"),
    (["--roofline", "h100", "--roofline-batch", "0"], "--roofline-batch must be"),
])
def test_complexity_refuses_bad_roofline_options_in_one_line(args: list[str], message: str) -> None:
    result = run("complexity", "resnet18", "--image-size", "32", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_profile_sets_the_prediction_beside_the_measurement(tmp_path: Path) -> None:
    device = tmp_path / "gpu.yaml"
    device.write_text("name: Test GPU\nbandwidth_gb_per_s: 100\nfp32_tflops: 1\n")
    args = ["profile", "resnet18", "--block", "se", "--image-size", "32", "--iters", "1", "--warmup", "0", "-b", "2",
            "--device", "cpu", "--mode", "both"]
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    prediction = json.loads(result.stdout)["results"]["prediction"]
    assert prediction["device"]["measured"]
    assert prediction["batch_size"] == 2
    assert prediction["dtype"] == "fp32"
    modes = {m["label"]: m["modes"] for m in prediction["models"]}
    assert set(modes["resnet18 + SE"]) == {"inference", "train"}
    found = modes["resnet18 + SE"]["train"]
    assert found["predicted_over_measured"] == pytest.approx(found["predicted_step_ms"] / found["measured_step_ms"])
    table = run(*args, "--roofline", str(device), "--format", "markdown")
    assert table.exit_code == 0
    assert "roofline prediction on Test GPU" in table.stdout
    csv = run(*args, "--roofline", str(device), "--format", "csv")
    assert csv.stdout.splitlines()[0].endswith("predicted_step_ms,predicted_overhead_pct,roofline_device")
    bad = run(*args, "--roofline", "nosuch")
    assert bad.exit_code == 2
    assert "unknown device" in bad.output
