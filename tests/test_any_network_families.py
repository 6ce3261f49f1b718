"""Every family goes through every analysis: sites by pattern or structure, native modules, refusals.

One case per family (torchvision and timm, the smallest member of each): its sites are where
the architecture's published layout says (channel widths and depths written out below from the
papers and the libraries' configs, never read from secli), the parameters ``inject`` and
``complexity`` report equal a hand count from those widths (SE: ``2*C*(C//r) + C//r + C`` per
site), FLOPs are counted, one training step updates the blocks, and visualize-excitation runs
on synthetic images. ``FAMILIES`` is also the coverage table of docs/networks.md
(``test_the_docs_table_is_this_table``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_helpers import assert_one_line_error, run

from secli import api
from secli.blocks.spec import BlockSpec

ROOT = Path(__file__).resolve().parents[1]
R = 16  # the default reduction ratio


@dataclass(frozen=True)
class Family:
    """One family: how its sites are found, the options that put SE there, and by hand the
    width C of every site (or, for a network's own modules, their kind and widths)."""

    ref: str
    how: str  # pattern | structure | native
    options: dict[str, Any]
    channels: tuple[int, ...]
    kind: str = "se"  # for native: the kind of module the network has
    kwargs: str | None = None
    slow: bool = False
    size: int = 32


def _widths(*stages: tuple[int, int]) -> tuple[int, ...]:
    """(width, blocks) per stage -> one C per site."""
    return tuple(c for c, n in stages for _ in range(n))


FAMILIES = [
    # torchvision: AlexNet, no residual units: its five convolutions by pattern (64, 192, 384, 256, 256)
    Family("alexnet", "pattern", {"block": "se", "at": "features.0,features.3,features.6,features.8,features.10"},
           (64, 192, 384, 256, 256), size=64),
    # DenseNet-121 concatenates (no residual sum): transitions by pattern, 128/256/512 wide
    Family("densenet121", "pattern", {"block": "se", "at": "features.transition*.conv"}, (128, 256, 512), slow=True),
    # ConvNeXt-T: dims 96/192/384/768, depths 3/3/9/3; the branch ends in the block's Sequential
    Family("convnext_tiny", "structure", {"block": "se"}, _widths((96, 3), (192, 3), (384, 9), (768, 3))),
    # RegNetX-400MF: widths 32/64/160/400, depths 1/2/7/12
    Family("regnet_x_400mf", "structure", {"block": "se"}, _widths((32, 1), (64, 2), (160, 7), (400, 12)), slow=True),
    # MNASNet-0.5: stacks 16/24/40/48/96/160 of 3/3/3/2/4/1 blocks; all but each stack's first add their input
    Family("mnasnet0_5", "structure", {"block": "se"}, _widths((16, 2), (24, 2), (40, 2), (48, 1), (96, 3)), slow=True),
    # SqueezeNet 1.0: eight Fire modules, expand3x3 of 64, 64, 128, 128, 192, 192, 256, 256
    Family("squeezenet1_0", "pattern", {"block": "se", "at": "features.*.expand3x3"},
           (64, 64, 128, 128, 192, 192, 256, 256)),
    # their own SE: EfficientNet-B0 (16 MBConv), MobileNetV3-Small (9 of 11 blocks), RegNetY-400MF (1/3/6/6)
    Family("efficientnet_b0", "native", {"block": "none"},
           _widths((32, 1), (96, 1), (144, 2), (240, 2), (480, 3), (672, 3), (1152, 4))),
    Family("mobilenet_v3_small", "native", {"block": "none"}, (16, 96, 240, 240, 120, 144, 288, 576, 576)),
    Family("regnet_y_400mf", "native", {"block": "none"}, _widths((48, 1), (104, 3), (208, 6), (440, 6))),
    # timm: ConvNeXt-atto 40/80/160/320 x 2/2/6/2; RegNetX-200MF 24/56/152/368 x 1/1/4/7; ResNetV2-18 (pre-activation)
    Family("timm:convnext_atto", "structure", {"block": "se"}, _widths((40, 2), (80, 2), (160, 6), (320, 2)),
           slow=True),
    Family("timm:regnetx_002", "structure", {"block": "se"}, _widths((24, 1), (56, 1), (152, 4), (368, 7)), slow=True),
    Family("timm:resnetv2_18", "structure", {"block": "se"}, _widths((64, 2), (128, 2), (256, 2), (512, 2))),
    Family("timm:convnext_atto", "pattern", {"block": "se", "at": "stages.*.blocks.*.norm"},
           _widths((40, 2), (80, 2), (160, 6), (320, 2))),
    Family("timm:efficientnet_b0", "native", {"block": "none"},
           _widths((32, 1), (96, 1), (144, 2), (240, 2), (480, 3), (672, 3), (1152, 4)), slow=True),
    # ECA-ResNet-26t: bottleneck outputs 256..2048, 2 blocks a stage; GC-ResNet-33ts: GC at the
    # bottleneck's middle width (64/128/384/384 x 2/3/3/2); SK-ResNet-18; a CBAM ResNet-18 (timm
    # has no cbam_* names: resnet18 with block_args attn_layer=cbam)
    Family("timm:ecaresnet26t", "native", {"block": "none"}, _widths((256, 2), (512, 2), (1024, 2), (2048, 2)), "eca",
           slow=True),
    Family("timm:gcresnet33ts", "native", {"block": "none"}, _widths((64, 2), (128, 3), (384, 5)), "gc", slow=True),
    Family("timm:skresnet18", "native", {"block": "none"}, _widths((64, 2), (128, 2), (256, 2), (512, 2)), "sk",
           slow=True),
    Family("timm:resnet18", "native", {"block": "none"}, _widths((64, 2), (128, 2), (256, 2), (512, 2)), "cbam",
           kwargs="block_args={attn_layer: cbam}"),
]


def _id(family: Family) -> str:
    return f"{family.ref}-{family.how}" + (f"-{family.kind}" if family.how == "native" else "")


def _se_params(channels: tuple[int, ...]) -> int:
    """SE's parameters by hand: two FCs C -> h -> C with biases, h = max(C // r, 1)."""
    return sum(2 * c * max(c // R, 1) + max(c // R, 1) + c for c in channels)


def _eca_k(c: int) -> int:
    """ECA's adaptive kernel (Wang et al., eq. 12, gamma 2, b 1; timm keeps it >= 3)."""
    t = int(abs((math.log2(c) + 1) / 2))
    return max(t if t % 2 else t + 1, 3)


def _native_params(kind: str, channels: int, hidden: int | None) -> int | None:
    """A network's own module, counted by hand from its widths (None: no simple form, SK)."""
    assert hidden is not None or kind == "eca"
    if kind == "se":  # two 1x1 FCs with biases
        return 2 * channels * hidden + hidden + channels  # type: ignore[operator]
    if kind == "eca":  # one 1-D kernel
        return _eca_k(channels)
    if kind == "cbam":  # channel MLP without biases + a 7x7 conv of 2 maps to 1 and its BN
        return 2 * channels * hidden + 2 * 7 * 7 + 2  # type: ignore[operator]
    if kind == "gc":  # attention pooling C -> 1 (bias), MLP C -> h -> C with biases and a LayerNorm at h
        return (channels + 1) + 2 * channels * hidden + 3 * hidden + channels  # type: ignore[operator]
    return None


def _params(family: Family) -> list[Any]:
    return [pytest.param(f, id=_id(f), marks=[pytest.mark.slow] if f.slow else []) for f in FAMILIES]


def _training_step(model: torch.nn.Module, sites: list[Any], size: int) -> None:
    """One SGD step on random images: the loss is finite, every site's block gets gradients and
    the step changes the network."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    logits = model(torch.randn(4, 3, size, size))
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3]))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    for site in sites:
        grads = [p.grad for p in model.get_submodule(site.module_path).parameters()]
        assert grads, site.name
        assert all(g is not None and torch.isfinite(g).all() for g in grads), site.name
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


@pytest.mark.parametrize("family", _params(FAMILIES))
def test_family_goes_through_every_analysis(family: Family, tmp_path: Path) -> None:
    pytest.importorskip("timm") if family.ref.startswith("timm:") else None
    options = dict(family.options)
    kw = {"model_kwargs": family.kwargs} if family.kwargs else {}
    result = api.inject(family.ref, **options, **kw)
    sites = result.report.sites
    assert [s.channels for s in sites] == list(family.channels)
    if family.how == "native":
        assert {s.kind for s in sites} == {f"native-{family.kind}"}
        assert {s.source for s in sites} == {"native"}
        for site in sites:
            expected = _native_params(family.kind, site.channels, site.hidden)
            assert expected is None or site.params == expected, site
        if family.kind == "sk":
            assert {s.paths for s in sites} == {2}
    else:
        assert {s.source for s in sites} == {family.how}
        assert result.report.params_added == _se_params(family.channels)
    # complexity: the same count, and FLOPs
    counted = api.complexity(family.ref, image_size=family.size, **options, **kw)
    assert counted.flops_error is None
    (row,) = counted.rows
    # --block none: the baseline is the network with its own SE modules replaced by identities (other
    # native kinds stay), so Δ is those SE modules' parameters, counted above against the hand formula
    native_se = sum(s.params for s in sites if s.kind == "native-se")
    added = native_se if family.how == "native" else _se_params(family.channels)
    assert row.params_injected - row.params_baseline == added
    # a training step reaches the blocks
    built = api.load_model(family.ref, BlockSpec(**{("kind" if k == "block" else k): v for k, v in options.items()}),
                           model_kwargs=family.kwargs)
    _training_step(built.model, built.sites, family.size)
    gated = [s for s in built.sites if s.gate_path]
    assert gated
    # excitation statistics on synthetic images
    run_ = api.visualize_excitation(family.ref, data="synthetic", per_class=1, image_size=family.size, batch_size=10,
                                    out=tmp_path / "figs", device="cpu", figures="default", **options, **kw)
    assert run_.stats.meta["images"] == 10
    assert {s.name for s in run_.stats.sites} == {s.name for s in gated}
    assert all(math.isfinite(v) for v in run_.stats.counts())


def test_vit_is_refused_with_the_reason() -> None:
    """ViT has no feature maps: no residual unit on (N, C, H, W), and a pattern on its blocks
    names their 3-D output."""
    assert_one_line_error(run("inject", "vit_b_16", "--block", "se"), 2, "found no residual units in vit_b_16")
    assert_one_line_error(run("inject", "vit_b_16", "--at", "encoder.layers.*"), 2,
                          "whose output is a 3-D tensor (2, 197, 768), not a feature map (N, C, H, W)")


def _docs_rows() -> list[tuple[str, str, str, int]]:
    """(reference, how, options, sites) of each row of the coverage table in docs/networks.md."""
    text = (ROOT / "docs" / "networks.md").read_text(encoding="utf-8")
    table = text.split("<!-- coverage table: tests/test_any_network_families.py -->")[1].split("\n\n")[0]
    rows = []
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append((cells[1].strip("`"), cells[2], cells[3].strip("`"), int(cells[4])))
    return rows


def _options_text(family: Family) -> str:
    words = [f"--{k} {v}" for k, v in family.options.items()]
    if family.kwargs:
        words.append(f"--model-kwargs '{family.kwargs}'")
    return " ".join(words)


def test_the_docs_table_is_this_table() -> None:
    expected = [(f.ref, f.how + (f" ({f.kind.upper()})" if f.how == "native" else ""), _options_text(f),
                 len(f.channels)) for f in FAMILIES]
    assert _docs_rows() == expected


#: Every torchvision classification model, by family: how secli finds its sites. The adapter
#: families are the named architectures of docs/inject.md; the others are rows of FAMILIES.
TORCHVISION = {
    "resnet*": "adapter", "resnext*": "adapter", "wide_resnet*": "adapter", "vgg*": "adapter",
    "mobilenet_v2": "adapter", "shufflenet_v2_*": "adapter", "inception_v3": "adapter", "googlenet": "adapter",
    "alexnet": "pattern", "densenet*": "pattern", "squeezenet*": "pattern",
    "convnext_*": "structure", "regnet_x_*": "structure", "mnasnet*": "structure",
    "efficientnet_*": "native (SE)", "mobilenet_v3_*": "native (SE)", "regnet_y_*": "native (SE)",
    "maxvit_t": "native (SE)", "vit_*": "refused", "swin_*": "refused",
}


def test_every_torchvision_classification_model_has_a_way_in() -> None:
    """Each model torchvision lists falls in exactly one family above, so a new one fails here."""
    from secli.networks.architectures import torchvision_names

    for name in torchvision_names():
        keys = [key for key in TORCHVISION if fnmatchcase(name, key)]
        assert len(keys) == 1, (name, keys)


def test_the_docs_torchvision_table_is_this_table() -> None:
    text = (ROOT / "docs" / "networks.md").read_text(encoding="utf-8")
    table = text.split("<!-- torchvision table: tests/test_any_network_families.py -->")[1].split("\n\n")[0]
    rows = [[c.strip().strip("`") for c in line.strip().strip("|").split("|")]
            for line in table.strip().splitlines()[2:]]
    assert {(r[0], r[1]) for r in rows} == set(TORCHVISION.items())
