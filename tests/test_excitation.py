"""secli.excitation against independent computations: plain hooks, numpy loops, ANOVA by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from secli.blocks.spec import BlockSpec
from secli.data.folders import make_loader
from secli.excitation.collect import choose_sites, collect_excitation
from secli.excitation.result import ExcitationResult
from secli.excitation.scores import site_scores
from secli.networks.models import load_model
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
    assert result.meta["images"] == 12
    assert result.meta["skipped"] == 0


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
    with pytest.raises(SecliUsageError, match=r"enlargement factors >= 1\.0"):
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
    assert again.class_names == result.class_names
    assert again.sites == result.sites
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


# --------------------------------------------------------------------------- undefined eta^2
def test_specificity_of_constant_gates_is_undefined_not_zero():
    # every image of every class gets the same gate: 0 / 0, which says nothing about classes
    g = np.full((3, 1, 4), 0.7)
    a = {"count": np.array([2.0, 3.0, 1.0]), "sum": g * np.array([2.0, 3.0, 1.0])[:, None, None],
         "sumsq": g * g * np.array([2.0, 3.0, 1.0])[:, None, None], "above": np.zeros((3, 1))}
    scores = site_scores(a)
    assert scores["specificity"] is None
    assert scores["mean_gate"] == pytest.approx(0.7)
    assert scores["saturation"] == 0.0
    # a gate varying within classes only is defined, and exactly 0
    a["sumsq"] = a["sumsq"] + 0.01
    assert site_scores(a)["specificity"] == pytest.approx(0.0)


# --------------------------------------------------------------------------- --per-class N
def test_per_class_takes_a_short_class_whole_and_draws_as_select_indices_does():
    from secli.data.classes import select_indices
    from secli.excitation.sampling import sample_per_class, short_classes_note

    targets = [0] * 6 + [1] * 2 + [2] * 5
    every = list(range(len(targets)))
    picked, short = sample_per_class(targets, every, [0, 1, 2], ["a", "b", "c"], 4, seed=3)
    assert short == {"b": 2}
    assert [targets[i] for i in picked].count(1) == 2
    assert {6, 7} <= set(picked)
    assert [targets[i] for i in picked].count(0) == 4
    assert [targets[i] for i in picked].count(2) == 4
    assert short_classes_note(4, short) == "--per-class 4: took all images of 1 class with fewer: b (2)"
    # where every class is large enough, the very images select_indices draws
    assert sample_per_class(targets, every, [0, 2], ["a", "b", "c"], 2, seed=5) == (
        select_indices(targets, [0, 2], ["a", "b", "c"], 2, seed=5), {})


# --------------------------------------------------------------------------- --ablate
class _Lookup(nn.Module):
    """A gate read off a context channel: c > 0 -> (1, 0), else (0, 0.5), shape (N, 2, 1, 1)."""

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        pos = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
        neg = torch.tensor([0.0, 0.5]).view(1, 2, 1, 1)
        return torch.where(c > 0, pos, neg)


class _Gated(nn.Module):
    """logits = evidence (channels 0, 1) * gate(context, channel 2): answers predictable by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = _Lookup()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :2] * self.gate(x[:, 2:3])).flatten(1)


def _hand_data():
    # class 0 (context +1) and class 1 (context -1); evidence chosen so each replacement fails
    # on known images. Gate class means: class 0 (1, 0), class 1 (0, 0.5); their mean (0.5, 0.25)
    rows = [((1, 1.5, 1), 0), ((2, 1, 1), 0), ((1, 1.2, 1), 0), ((1, 3, -1), 1), ((1, 1.8, -1), 1)]
    x = torch.tensor([r for r, _ in rows], dtype=torch.float32).view(-1, 3, 1, 1)
    return _Tensors(x, [y for _, y in rows])


def test_ablation_of_a_hand_built_gate_gives_the_answers_worked_out_by_hand():
    from secli.excitation.ablate import ablate_sites, class_agnostic_gate
    from secli.networks.sites import Site

    model, dataset = _Gated(), _hand_data()
    site = Site("G_1_1", "native-se", "", "gate", 2, None, 1, 1, "", 0)
    stats = _run(_Built(model), [site], dataset, 2)
    mean = class_agnostic_gate(stats.mean("G_1_1"))
    # the mean of the class means, not of all images (that would be (0.6, 0.2))
    np.testing.assert_allclose(mean, [[0.5, 0.25]])
    loader = make_loader(dataset, list(range(5)), batch_size=2)
    ablation = ablate_sites(model, [("G_1_1", model.gate, mean)], loader, {0: 0, 1: 1})
    # as trained: all 5 right. Mean gate (0.5, 0.25): (1, 1.8) -> (0.5, 0.45) says class 0: 4 right.
    # No gate (1, 1): (1, 1.5) and (1, 1.2) say class 1: 3 right.
    assert (ablation.images, ablation.correct) == (5, 5)
    row = ablation.rows()[0]
    assert (row["correct_mean_gate"], row["correct_no_gate"], row["no_gate_value"]) == (4, 3, 1.0)
    assert row["acc_mean_gate"] == pytest.approx(0.8)
    assert row["delta_mean_gate"] == pytest.approx(-0.2)
    assert row["acc_no_gate"] == pytest.approx(0.6)
    assert row["delta_no_gate"] == pytest.approx(-0.4)
    # the hooks are gone: the model answers as before
    assert model(dataset.x).argmax(1).tolist() == dataset.targets


class _Built:
    def __init__(self, model: nn.Module) -> None:
        self.model = model


class _Constant(nn.Module):
    """An SK attention softmax replaced by a fixed value (the independent reference)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.full_like(logits, self.value)


def test_sk_no_gate_averages_the_paths_and_matches_a_replaced_softmax():
    from secli.excitation.ablate import ablate_sites
    from secli.networks.sites import set_module

    torch.manual_seed(0)
    built = load_model("resnet18", BlockSpec(kind="sk", groups=1, stages=(5,)), num_classes=3)
    dataset = _data(n=9, classes=3)
    site = built.sites[0]
    gate = built.model.get_submodule(site.gate_path)
    mean = np.full((2, site.channels), 0.5)
    mean[0, :10], mean[1, :10] = 0.9, 0.1  # an uneven constant attention for the mean-gate case
    loader = make_loader(dataset, list(range(9)), batch_size=4)
    ablation = ablate_sites(built.model, [(site.name, gate, mean)], loader, {k: k for k in range(3)})
    labels = torch.tensor(dataset.targets)
    built.model.eval()
    with torch.no_grad():
        plain = int((built.model(dataset.x).argmax(1) == labels).sum())
        set_module(built.model, site.gate_path, _Constant(0.5))
        half = int((built.model(dataset.x).argmax(1) == labels).sum())

        class _Fixed(nn.Module):
            def forward(self, logits: torch.Tensor) -> torch.Tensor:
                return torch.tensor(mean, dtype=logits.dtype).view(1, 2, -1, 1, 1).expand_as(logits)

        set_module(built.model, site.gate_path, _Fixed())
        fixed = int((built.model(dataset.x).argmax(1) == labels).sum())
        set_module(built.model, site.gate_path, gate)
    row = ablation.rows()[0]
    assert ablation.correct == plain
    assert row["no_gate_value"] == 0.5
    assert (row["correct_no_gate"], row["correct_mean_gate"]) == (half, fixed)


def test_ablation_and_envelope_survive_summary_json_and_old_files_load(tmp_path):
    import json

    from secli.excitation.ablate import Ablation, SiteAblation
    from secli.excitation.result import SiteInfo

    g = np.full((2, 1, 4), 0.5)  # every gate the same: eta^2 undefined
    arrays = {"x1": {"SE_1": {"count": np.ones(2), "sum": g, "sumsq": g * g, "hist": np.ones((2, 1, 5)),
                              "above": np.zeros((2, 1))}}}

    result = ExcitationResult([SiteInfo("SE_1", "se", 4, 1, 0.0, 1.0, 5)], ["a", "b"], [1.0], arrays,
                              {"images": 2}, inputs={"model": "m.pt", "per_class": 1})
    result.ablation = Ablation(2, 2, 1.0, [SiteAblation("SE_1", 1, 0, 1.0)])
    result.save(tmp_path / "new")
    document = json.loads((tmp_path / "new" / "summary.json").read_text())
    assert (document["format"], document["command"], document["version"]) == (
        "secli-visualize-excitation", "visualize-excitation", 1)
    assert document["inputs"] == {"model": "m.pt", "per_class": 1}
    assert document["results"]["ablation"]["sites"][0]["acc_mean_gate"] == 0.5
    assert document["results"]["scores"][0]["specificity"] is None  # null, not 0
    again = ExcitationResult.load(tmp_path / "new")
    assert again.ablation == result.ablation
    assert again.inputs == result.inputs
    # a summary.json of the older bare shape (what secli wrote before the envelope) still loads
    old = tmp_path / "old"
    old.mkdir()
    (old / "stats.npz").write_bytes((tmp_path / "new" / "stats.npz").read_bytes())
    bare = {k: v for k, v in document["results"].items() if k != "ablation"}
    (old / "summary.json").write_text(json.dumps({"format": "secli-excitation", "version": 1, **bare}))
    loaded = ExcitationResult.load(old)
    assert loaded.class_names == ["a", "b"]
    assert loaded.ablation is None
    document["format"] = "secli-complexity"
    (old / "summary.json").write_text(json.dumps(document))
    with pytest.raises(SecliError, match="damaged excitation statistics"):
        ExcitationResult.load(old)


def test_gates_that_are_not_numbers_are_a_clear_error_not_an_index_error():
    """A model whose gates are NaN (here a NaN bias, as a diverged training run leaves) used to
    crash in the histogram with an IndexError; it is one error naming the site."""
    torch.manual_seed(0)
    built = load_model("resnet18", BlockSpec(kind="se", stages=(5,)), num_classes=3)
    sites = choose_sites(built.sites, ["SE_5_1"], built.label)
    block = built.model.get_submodule(sites[0].module_path)
    with torch.no_grad():
        block.fc2.bias[0] = float("nan")
    with pytest.raises(SecliError, match=r"site SE_5_1: \d+ of \d+ gate values are not finite"):
        _run(built, sites, _data(n=4), 3)
