"""Attention modules beyond SE, found by what they are made of and compute, not by class name.

Each module here is placed in a plain network at a known path with a known width; the expected
sites (path, C, gate module) are written out by hand. A hand-written ECA of our own shows that
no class name is read; lookalikes (a 1-D convolution that does not gate, a 2->1 convolution
outside any attention) are not reported.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from secli.networks.native_attention import discover_attention_sites

timm_layers = pytest.importorskip("timm.layers")
from timm.layers.cbam import CbamModule  # noqa: E402 (after the skip)


def _stem(c: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU())


class _MyECA(nn.Module):
    """ECA written from the paper, its gate a function call: found, with no gate to hook."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = nn.Conv1d(1, 1, 5, padding=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.kernel(x.mean((2, 3)).unsqueeze(1)).squeeze(1)
        return x * torch.sigmoid(y)[:, :, None, None]


class _Smoother(nn.Module):
    """A 1-D convolution across channels that does not gate its input: not ECA."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = nn.Conv1d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return self.kernel(x.permute(0, 2, 3, 1).reshape(-1, 1, c)).reshape(n, h, w, c).permute(0, 3, 1, 2)


def test_each_kind_is_found_at_its_path_with_its_gate() -> None:
    model = nn.Sequential(
        _stem(32),
        timm_layers.EcaModule(32),                       # 1: ECA, sigmoid gate module
        _MyECA(),                                        # 2: ECA, gate is a function
        _Smoother(),                                     # 3: not attention
        CbamModule(32, rd_ratio=1 / 8),      # 4: CBAM, channel gate in .channel.gate
        timm_layers.GlobalContext(32, fuse_add=True, fuse_scale=False),  # 5: GC, the added term
        timm_layers.GlobalContext(32),                   # 6: GC that scales: its sigmoid
        timm_layers.SelectiveKernel(32, 64),             # 7: SK, 2 paths, softmax in .attn
        timm_layers.SEModule(64, rd_channels=8),         # 8: plain SE, still found by native_se
    )
    sites = discover_attention_sites(model, 32)
    got = [(s.kind, s.module_path, s.gate_path, s.channels, s.paths) for s in sites]
    assert got == [
        ("native-sk", "7", "7.attn", 64, 2),
        ("native-cbam", "4", "4.channel.gate", 32, 1),
        ("native-gc", "5", "5.mlp_add.fc2", 32, 1),
        ("native-gc", "6", "6.gate", 32, 1),
        ("native-eca", "1", "1.gate", 32, 1),
        ("native-eca", "2", None, 32, 1),
        ("native-se", "8", "8.gate", 64, 1),
    ]
    assert [s.name for s in sites] == ["SK_7_1", "CBAM_4_1", "GC_5_1", "GC_6_1", "ECA_1_1", "ECA_2_1", "SE_8_1"]
    assert sites[1].hidden == 4
    assert sites[0].hidden is not None


def test_a_network_without_attention_is_not_probed_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    import secli.networks.native_attention as module

    def fail(*_args: object, **_kw: object) -> None:
        raise AssertionError("probed")

    monkeypatch.setattr(module, "record_calls", fail)
    assert discover_attention_sites(__import__("torchvision").models.resnet18(), 224) == []
