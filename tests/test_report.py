"""``secli report``: saved results shown again, and results files treated as untrusted input.

Most tests render a results document written out here by hand (what a saved profile run holds),
so the expected cells come from the document, not from a run of the code under test.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_one_line_error, run

MODEL_BASE = {
    "label": "resnet18", "params": 11_689_512, "sites": 0, "compiled": False, "block_traffic": None, "failure": None,
    "modes": {"inference": {
        "forward": {"median_ms": 10.0, "iqr_ms": 0.5}, "backward": None, "step": {"median_ms": 10.0, "iqr_ms": 0.5},
        "images_per_s": 800.0, "memory": {"delta_bytes": 3 * 2**20, "peak_bytes": None, "method": "linux-vmhwm"},
    }},
    "vs_baseline": {"inference": {"throughput_ratio": 1.0, "overhead_pct": 0.0, "overhead_us_per_image": 0.0,
                                  "implied_passes": None}},
}
MODEL_SE = {
    **MODEL_BASE, "label": "resnet18 + SE", "params": 11_778_592, "sites": 8,
    "block_traffic": {"bytes_per_image": 2**20,
                      "sites": [{"name": "SE_2_1", "shape": [64, 8, 8], "element_size": 4, "bytes": 16384}]},
    "modes": {"inference": {**MODEL_BASE["modes"]["inference"], "step": {"median_ms": 12.5, "iqr_ms": 0.25},
                            "images_per_s": 640.0}},
    "vs_baseline": {"inference": {"throughput_ratio": 0.8, "overhead_pct": 25.0, "overhead_us_per_image": 312.5,
                                  "implied_passes": 2.5}},
}
DOCUMENT = {
    "format": "secli-profile", "version": 1, "command": "profile", "secli_version": "0.1.0",
    "inputs": {
        "models": ["resnet18"], "variants": [], "block": "se", "spec": None, "title": None, "image_size": 32,
        "modes": ["inference"], "device": "cpu", "batch_size": 8, "amp": "off", "channels_last": False,
        "compile_mode": None, "iters": 5, "warmup": 1, "threads": 1, "auto_batch": False, "ddp": False,
    },
    "results": {
        "device": "cpu", "device_name": "test CPU", "torch": "2.x", "threads": 1, "batch_size": 8, "image_size": 32,
        "world_size": 1, "baseline": "resnet18", "bandwidth": {"gb_per_s": 10.0, "buffer_bytes": 1, "method": "test"},
        "models": [MODEL_BASE, MODEL_SE], "warnings": [],
    },
}


def _save(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_markdown_shows_the_saved_figures(tmp_path: Path) -> None:
    result = run("report", str(_save(tmp_path / "run.json", DOCUMENT)), "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert "**inference: batch 8, 32x32, cpu (1 threads), amp off**" in result.stdout
    assert "| resnet18 + SE | 12.50 | 0.25 | 640.0 | 0.800 | +25.0% | +312.5 |" in result.stdout
    # 1 MiB per image x batch 8 = 8.0 MB per pass; 3 MiB peak
    assert "| resnet18 + SE | 3.0 | 8.0 | 2.5 |" in result.stdout


def test_table_csv_and_json(tmp_path: Path) -> None:
    path = _save(tmp_path / "run.json", DOCUMENT)
    table = run("report", str(path))
    assert table.exit_code == 0
    assert "resnet18 + SE" in table.stdout
    assert "memory and block traffic" in table.stdout
    rows = list(csv.DictReader(io.StringIO(run("report", str(path), "-f", "csv").stdout)))
    assert [(r["label"], r["mode"], float(r["step_median_ms"])) for r in rows] == [
        ("resnet18", "inference", 10.0), ("resnet18 + SE", "inference", 12.5)]
    assert json.loads(run("report", str(path), "-f", "json").stdout) == DOCUMENT


def test_several_files_one_table_each_named_and_one_csv(tmp_path: Path) -> None:
    a, b = _save(tmp_path / "a.json", DOCUMENT), _save(tmp_path / "b.json", DOCUMENT)
    markdown = run("report", str(a), str(b), "-f", "markdown")
    assert markdown.exit_code == 0, markdown.output
    assert f"**{a}: inference:" in markdown.stdout
    assert f"**{b}: memory and block traffic**" in markdown.stdout
    lines = run("report", str(a), str(b), "-f", "csv").stdout.splitlines()
    assert lines[0].startswith("file,label,mode")
    assert len(lines) == 5
    assert [line.split(",")[0] for line in lines[1:]] == [str(a), str(a), str(b), str(b)]
    assert len(json.loads(run("report", str(a), str(b), "-f", "json").stdout)) == 2


def _broken(tmp_path: Path, **changes: object) -> Path:
    document = copy.deepcopy(DOCUMENT)
    for key, value in changes.items():
        if value is None:
            document.pop(key)
        else:
            document[key] = value
    return _save(tmp_path / "bad.json", document)


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (lambda p: p / "missing.json", "does not exist"),
        (lambda p: p, "is a folder"),
        (lambda p: _save(p / "x.json", [1, 2]), "not a secli results file"),
        (lambda p: (p / "x.json").write_text("{not json") and p / "x.json", "is not valid JSON"),
        (lambda p: (p / "x.json").write_bytes(b"\xff\xfe\x00") and p / "x.json", "is not UTF-8 text"),
        (lambda p: _broken(p, version=99), "has results version 99"),
        (lambda p: _broken(p, version="1"), "has results version '1'"),
        (lambda p: _broken(p, results=None), "lacks the 'results' key"),
        (lambda p: _broken(p, format="secli-foo", command="foo"), "results of 'foo', which this secli cannot render"),
        (lambda p: _broken(p, format="secli-app", command="app"), "results of 'app', which this secli cannot render"),
        (lambda p: _broken(p, format="secli-profile", command="complexity"), "does not match"),
        (lambda p: _broken(p, results={"models": []}), "not a valid secli-profile results file"),
        (lambda p: _broken(p, inputs={}), "not a valid secli-profile results file"),
    ],
)
def test_bad_files_are_one_line_exit_2(tmp_path: Path, make, text: str) -> None:
    assert_one_line_error(run("report", str(make(tmp_path))), 2, text)


def test_a_command_without_tables_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import commands.complexity

    monkeypatch.delattr(commands.complexity, "tables", raising=False)
    path = _broken(tmp_path, format="secli-complexity", command="complexity")
    assert_one_line_error(run("report", str(path)), 2, "cannot render secli-complexity results")


def test_oversized_files_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import secli.util.envelope

    monkeypatch.setattr(secli.util.envelope, "MAX_RESULTS_FILE_BYTES", 100)
    assert_one_line_error(run("report", str(_save(tmp_path / "big.json", DOCUMENT))), 2, "at most 100 are read")


def test_no_file_is_a_usage_error() -> None:
    result = run("report")
    assert result.exit_code == 2


def test_a_saved_run_reads_as_it_printed(tmp_path: Path) -> None:
    """profile --out, then report: the same Markdown, and the file is the printed JSON."""
    before = torch.get_num_threads()
    out = tmp_path / "run.json"
    fast = ["--device", "cpu", "--image-size", "32", "-b", "2", "--iters", "1", "--warmup", "0", "--threads", "1"]
    try:
        printed = run("profile", "resnet18", "--block", "se", "--format", "markdown", "--out", str(out), *fast)
    finally:
        torch.set_num_threads(before)
    assert printed.exit_code == 0, printed.output
    again = run("report", str(out), "--format", "markdown")
    assert again.exit_code == 0
    assert again.stdout == printed.stdout


def test_the_python_api_writes_the_file_secli_report_reads(tmp_path: Path) -> None:
    """api.profile(out=...) writes the file 'secli profile --out' does: the returned envelope, which
    'secli report' shows; an existing file is refused before anything is timed, unless force."""
    from secli import api
    from secli.util.envelope import dumps
    from secli.util.errors import SecliUsageError

    before = torch.get_num_threads()
    out = tmp_path / "run.json"
    fast = {"device": "cpu", "image_size": 32, "batch_size": 2, "iters": 1, "warmup": 0, "threads": 1}
    try:
        report = api.profile("resnet18", block="se", out=out, **fast)
        assert out.read_text() == dumps(report.to_dict()) + "\n"
        with pytest.raises(SecliUsageError, match="exists"):
            api.profile("resnet18", out=out, progress=lambda *a: pytest.fail("timed before refusing"), **fast)
        again_report = api.profile("resnet18", block="se", out=out, force=True, **fast)
    finally:
        torch.set_num_threads(before)
    assert json.loads(out.read_text())["results"]["models"][1]["label"] == again_report.models[1].label
    shown = run("report", str(out), "--format", "json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout) == json.loads(out.read_text())


def test_report_renders_a_saved_complexity_run_as_the_run_printed_it(tmp_path: Path) -> None:
    """complexity --out, then report: the Markdown equals what the run printed with -f markdown."""
    out = tmp_path / "c.json"
    args = ["complexity", "resnet18", "--block", "se", "--ratios", "8,16", "--image-size", "32"]
    printed = run(*args, "--format", "markdown", "--out", str(out))
    assert printed.exit_code == 0, printed.output
    shown = run("report", str(out), "--format", "markdown")
    assert shown.exit_code == 0, shown.output
    assert "r=8" in shown.stdout
    assert "r=16" in shown.stdout
    assert [line for line in shown.stdout.splitlines() if line.startswith("|")] == [
        line for line in printed.stdout.splitlines() if line.startswith("|")]


def test_report_renders_a_visualize_excitation_summary(tmp_path: Path) -> None:
    """summary.json of visualize-excitation is a results file: report shows its score table."""
    folder = tmp_path / "figs"
    made = run("visualize-excitation", "resnet18", "--block", "se", "--data", "synthetic", "--per-class", "1",
        "--image-size", "32", "--out", str(folder))
    assert made.exit_code == 0, made.output
    shown = run("report", str(folder / "summary.json"), "--format", "csv")
    assert shown.exit_code == 0, shown.output
    sites = json.loads((folder / "summary.json").read_text())["results"]["sites"]
    assert all(site["name"] in shown.stdout for site in sites), shown.stdout
