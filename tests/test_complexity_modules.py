"""``--by-module``: the per-module tree in the Python API and in every --format."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from commands.app import app
from secli.complexity.workflow import complexity
from secli.util.errors import SecliUsageError


@pytest.fixture(scope="module")
def r18():
    return complexity("resnet18", block="se", input_size=32, by_module=True, depth=4)


def test_tree_adds_up_and_marks_blocks(r18) -> None:
    row = r18.rows[0]
    root, *rest = row.modules
    assert (root.path, root.depth) == ("", 0)
    assert (root.params, root.flops_fc_only, root.flops_all_ops) == (row.params_injected, row.flops.fc_only,
                                                                     row.flops.all_ops)
    top = [m for m in rest if m.depth == 1]
    assert sum(m.params for m in top) == root.params
    assert sum(m.flops_all_ops for m in top) == root.flops_all_ops  # resnet18's own ops all sit in children
    blocks = [m for m in row.modules if m.block]
    assert [m.path for m in blocks] == [s.module_path for s in row.site_list]
    assert len(blocks) == 8
    assert all(m.block == "SE" and m.type == "SqueezeExcitation" for m in blocks)
    se = blocks[0]  # layer1.0's SE on 64 channels at 8x8, r = 16: FCs 64*4 + 4*64 multiply-adds
    assert se.params == 64 * 4 + 4 + 4 * 64 + 64
    assert se.flops_fc_only == 2 * 64 * 4
    # + mean 64*64, relu 4, sigmoid 64, scale 64*64, bias adds 4 + 64
    assert se.flops_all_ops == 2 * 64 * 4 + 4096 + 4 + 64 + 4096 + 68
    assert r18.baseline_modules[0].params == r18.params_baseline
    assert not any(m.block for m in r18.baseline_modules)
    assert max(m.depth for m in row.modules) == 4


def test_depth_limits_the_tree() -> None:
    result = complexity("resnet18", block="se", input_size=32, by_module=True, depth=1, flops=False)
    modules = result.rows[0].modules
    assert {m.depth for m in modules} == {0, 1}
    layer1 = next(m for m in modules if m.path == "layer1")
    assert (layer1.blocks_inside, layer1.block_kind, layer1.flops_all_ops) == (2, "SE", None)
    with pytest.raises(SecliUsageError, match="--by-module"):
        complexity("resnet18", block="se", depth=2)


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json"])
def test_every_format(fmt: str) -> None:
    result = CliRunner().invoke(app, ["complexity", "resnet18", "--block", "se", "--image-size", "32", "--by-module",
                                      "--depth", "2", "-f", fmt])
    assert result.exit_code == 0, result.output
    out = result.stdout
    if fmt == "json":
        results = json.loads(out)["results"]
        (row,) = results["rows"]
        assert row["by_module"][0]["module"] == ""
        assert row["by_module"][0]["blocks_inside"] == 8
        assert results["baseline"]["by_module"][0]["params"] == 11_689_512
    elif fmt == "csv":
        assert out.splitlines()[0] == ("model,module,depth,type,params,flops_fc_only,flops_all_ops,block,"
                                       "blocks_inside,bytes_read,bytes_written,intensity")
        assert "resnet18 + SE,layer1.0,2,BasicBlock," in out
        assert "\nresnet18,,0,ResNet,11689512," in out
    else:
        assert "per module" in out
        assert "1 SE inside" in out
