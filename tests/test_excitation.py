"""secli.excitation against independent computations: plain hooks, numpy loops, ANOVA by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from secli.build.models import load_model
from secli.build.spec import BlockSpec
from secli.data.folders import make_loader
from secli.excitation.collect import choose_sites, collect_excitation
from secli.excitation.result import ExcitationResult
from secli.excitation.scores import site_scores
from secli.util.errors import SecliError, SecliUsageError


class _Tensors(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: list[int]) -> None:
        self.x, self.targets = x, y

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.x[i], self.targets[i]


def _data(n: int = 12, size: int = 32, classes: int = 3):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, size, size, generator=g)
    y = [i % classes for i in range(n)]
    return _Tensors(x, y)


def _reference_se_gates(model, site, dataset):
    """Gate values from a plain forward hook on the SE block's input, recomputed by hand."""
    block = model.get_submodule(site.module_path)
    captured = []
    handle = block.register_forward_hook(lambda m, inp, out: captured.append(inp[0].detach().clone()))
    model.eval()
    with torch.no_grad():
        for i in range(len(dataset)):
            model(dataset[i][0][None])
    handle.remove()
    gates = []
    with torch.no_grad():
        for x in captured:
            z = x.mean(dim=(2, 3), keepdim=True)
            h = F.relu(F.conv2d(z, block.fc1.weight, block.fc1.bias))
            gates.append(torch.sigmoid(F.conv2d(h, block.fc2.weight, block.fc2.bias)).flatten().double().numpy())
    return np.stack(gates)  # (images, C)


def _run(built, sites, dataset, classes, **kw):
    loader = make_loader(dataset, list(range(len(dataset))), batch_size=5)
    names = [f"c{k}" for k in range(classes)]
    return collect_excitation(built.model, sites, loader, names, {k: k for k in range(classes)}, **kw)


@pytest.fixture(scope="module")
def se_model():
    torch.manual_seed(0)
    built = load_model("resnet18", BlockSpec(kind="se", stages=(2, 5)), num_classes=3)
    return built


def test_per_class_mean_std_hist_match_plain_hooks(se_model):
    dataset = _data()
    sites = choose_sites(se_model.sites, ["SE_2_2", "SE_5_1"], se_model.label)
    result = _run(se_model, sites, dataset, 3, keep_raw=True)
    labels = np.array(dataset.targets)
    np.testing.assert_array_equal(result.raw["labels"], labels)
    for site in sites:
        ref = _reference_se_gates(se_model.model, site, dataset)
        np.testing.assert_allclose(result.raw[f"x1/{site.name}"][:, 0], ref, rtol=1e-5, atol=1e-6)
        a = result.get(site.name)
        for k in range(3):
            rows = ref[labels == k]
            assert a["count"][k] == len(rows)
            np.testing.assert_allclose(result.mean(site.name)[k, 0], rows.mean(axis=0), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(result.std(site.name)[k, 0], rows.std(axis=0), rtol=1e-4, atol=1e-5)
            hist, _ = np.histogram(rows.ravel(), bins=50, range=(0.0, 1.0))
            np.testing.assert_array_equal(a["hist"][k, 0], hist)
            assert a["above"][k, 0] == (rows > 0.95).sum()
        np.testing.assert_allclose(result.mean_all(site.name)[0], ref.mean(axis=0), rtol=1e-5, atol=1e-6)
    assert result.meta["images"] == 12 and result.meta["skipped"] == 0


def _sk_attention(built, site, images):
    """Per-image SK attention (N, paths, C) from a plain hook on the select logits, softmax by hand."""
    block = built.model.get_submodule(site.module_path)
    logits = []
    handle = block.select.register_forward_hook(lambda m, i, o: logits.append(o.detach().clone()))
    built.model.eval()
    with torch.no_grad():
        for x in images:
            built.model(x[None])
    handle.remove()
    return torch.cat([torch.softmax(z.view(1, 2, -1), dim=1) for z in logits]).double().numpy()


def test_sk_attention_matches_softmax_of_select_logits():
    torch.manual_seed(0)
    built = load_model("resnet18", BlockSpec(kind="sk", groups=1, stages=(3,)), num_classes=2)
    dataset = _data(n=6, classes=2)
    site = built.sites[0]
    attn = _sk_attention(built, site, [dataset[i][0] for i in range(len(dataset))])  # (N, 2, C)
    # scale 1.5 by hand: the central round(32 / 1.5) = 21 px (rows/cols 5..25), resized back to 32
    zoomed = [F.interpolate(dataset[i][0][None, :, 5:26, 5:26], size=(32, 32), mode="bilinear",
                            align_corners=False)[0] for i in range(len(dataset))]
    attn_zoomed = _sk_attention(built, site, zoomed)
    # a repeated scale is analysed once (it used to be counted twice)
    result = _run(built, [site], dataset, 2, scales=(1.0, 1.5, 1.5))
    assert result.scales == [1.0, 1.5]
    labels = np.array(dataset.targets)
    for k in range(2):
        np.testing.assert_allclose(result.mean(site.name)[k], attn[labels == k].mean(axis=0), rtol=1e-5, atol=1e-7)
        diff = attn[labels == k, 1] - attn[labels == k, 0]
        np.testing.assert_allclose(result.sk_difference(site.name)[k], diff.mean(axis=0), rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(result.mean(site.name, 1.5)[k], attn_zoomed[labels == k].mean(axis=0),
                                   rtol=1e-5, atol=1e-7)
    assert result.get(site.name, 1.5)["count"].sum() == 6
    assert not np.allclose(attn_zoomed, attn)  # the zoom really changes the input


def test_scales_that_share_a_key_are_refused():
    from secli.excitation.scales import unique_scales

    assert unique_scales([2.0, 1.0, 2.0, 1.5]) == [2.0, 1.0, 1.5]
    with pytest.raises(SecliUsageError, match="same"):
        unique_scales([1.0, 1.0000001])
    with pytest.raises(SecliUsageError, match="enlargement factors >= 1.0"):
        unique_scales([0.5])


def test_specificity_is_eta_squared():
    rng = np.random.default_rng(0)
    x = rng.random((30, 1, 8))
    y = np.arange(30) % 3
    a = {
        "count": np.bincount(y, minlength=3).astype(float),
        "sum": np.stack([x[y == k].sum(0) for k in range(3)]),
        "sumsq": np.stack([(x[y == k] ** 2).sum(0) for k in range(3)]),
        "above": np.stack([(x[y == k] > 0.95).sum(axis=2).sum(0) for k in range(3)]).astype(float),
    }
    flat = x.reshape(30, -1)
    grand = flat.mean(0)
    total = ((flat - grand) ** 2).sum()
    between = sum((y == k).sum() * ((flat[y == k].mean(0) - grand) ** 2).sum() for k in range(3))
    scores = site_scores(a)
    assert scores["specificity"] == pytest.approx(between / total)
    assert scores["chance"] == pytest.approx(2 / 29)
    assert scores["saturation"] == pytest.approx((x > 0.95).mean())
    # gates fixed by the class alone are fully specific; identical gates are not at all
    a2 = {"count": np.array([2.0, 2.0]), "sum": np.array([[[0.2, 0.4]], [[1.6, 1.8]]]),
          "sumsq": np.array([[[0.02, 0.08]], [[1.28, 1.62]]]), "above": np.zeros((2, 1))}
    assert site_scores(a2)["specificity"] == pytest.approx(1.0)


def test_save_and_load_round_trip(se_model, tmp_path):
    sites = choose_sites(se_model.sites, ["SE_5_2"], se_model.label)
    result = _run(se_model, sites, _data(n=6), 3)
    result.save(tmp_path)
    again = ExcitationResult.load(tmp_path)
    assert again.class_names == result.class_names and again.sites == result.sites
    np.testing.assert_array_equal(again.get("SE_5_2")["sum"], result.get("SE_5_2")["sum"])
    (tmp_path / "stats.npz").write_bytes(b"junk")
    with pytest.raises(SecliError, match="damaged excitation statistics"):
        ExcitationResult.load(tmp_path)
    with pytest.raises(SecliError, match="holds no excitation statistics"):
        ExcitationResult.load(tmp_path / "missing")


def test_site_errors():
    base = load_model("resnet18", BlockSpec(kind="none"))
    with pytest.raises(SecliUsageError, match="no excitation sites found in resnet18; inject some with secli inject"):
        choose_sites(base.sites, None, base.label)
    se = load_model("resnet18", BlockSpec(kind="se", stages=(5,)))
    with pytest.raises(SecliUsageError, match="unknown site 'SE_9_9'; valid sites: SE_5_1, SE_5_2"):
        choose_sites(se.sites, ["SE_9_9"], se.label)


def test_native_se_sites_of_mobilenet_v3():
    built = load_model("mobilenet_v3_small", BlockSpec(kind="none"), num_classes=2)
    sites = built.sites[:2]
    result = _run(built, sites, _data(n=4, classes=2), 2)
    for info in result.sites:
        assert (info.low, info.high) == (0.0, 1.0)  # hardsigmoid gates
        assert result.get(info.name)["hist"].sum() == 4 * info.channels
