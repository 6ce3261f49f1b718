"""Class-wise excitation statistics (SE paper section 7.2, SKNet's attention-vs-scale test).

A forward hook on every site's ``gate_path`` (the module whose output is the gate, or the SK
path softmax) sees the gate of a whole batch, shape (N, C, 1, 1) for SE or (N, M, C, 1, 1) for
SK. It is reduced to (N, P, C) (P = 1 for SE, P = M paths for SK; a gate without a squeeze is
averaged over H x W) and folded into running sums per (site, class) with ``index_add_``:

    count[k], sum[k, p, c], sumsq[k, p, c], hist[k, p, bin], above[k, p] (values > 0.95)

all on the model's device, batched, with no Python loop over images or channels. Memory is
O(sites x classes x paths x (channels + bins)), whatever the number of images. Under
``torch.distributed`` each rank sums its own shard and the sums are all-reduced at the end.

Scores read off the sums (defined here, shown in the README):

- class specificity: eta squared = between-class sum of squares / total sum of squares of the
  gate vectors (summed over channels and paths). 0: every class gets the same mean excitation;
  1: the class alone determines the excitation. With K classes and N images, random labels give
  about (K - 1) / (N - 1), reported as ``chance``.
- saturation: the fraction of all gate values above 0.95 (a gate that is ~1 everywhere is an
  identity, as the paper finds for SE_5_2).
- SK: the mean attention of the largest-kernel path minus that of the 3x3 path.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from secli.util.errors import SecliError, SecliUsageError
from secli.build.sites import Site, get_module
from secli.build.registry import find_kind

SATURATION_THRESHOLD = 0.95
FIELDS = ("count", "sum", "sumsq", "hist", "above")
STATS_FILE = "stats.npz"
SUMMARY_FILE = "summary.json"
RAW_FILE = "raw.npz"


@dataclass(frozen=True)
class SiteInfo:
    """What the plots need to know about a hooked site."""

    name: str
    kind: str
    channels: int
    paths: int
    low: float
    high: float
    bins: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- choosing sites
def choose_sites(sites: Sequence[Site], requested: list[str] | None, model_label: str) -> list[Site]:
    """The hookable sites, or the ones named; clear errors for none and for unknown names."""
    usable = [s for s in sites if s.gate_path]
    if not usable:
        raise SecliUsageError(f"no excitation sites found in {model_label}; inject some with secli inject")
    if not requested:
        return usable
    by_name = {s.name: s for s in usable}
    unknown = [name for name in requested if name not in by_name]
    if unknown:
        raise SecliUsageError(
            f"unknown site {unknown[0]!r}; valid sites: {', '.join(by_name)}"
        )
    return [by_name[name] for name in dict.fromkeys(requested)]


def gate_range(module: nn.Module) -> tuple[float, float]:
    """The histogram range of a gate: [0, 1] for sigmoid-like gates and softmax, [-1, 1] for
    tanh, [0, 2] for ReLU and anything unknown (values beyond go into the end bins)."""
    if isinstance(module, (nn.Sigmoid, nn.Hardsigmoid, nn.Softmax)):
        return 0.0, 1.0
    if isinstance(module, nn.Tanh):
        return -1.0, 1.0
    name = type(module).__name__.lower()
    if "sigmoid" in name or "softmax" in name:
        return 0.0, 1.0
    return 0.0, 2.0


def unique_scales(scales: Iterable[float]) -> list[float]:
    """The scales in order with repeats dropped (a repeat would count every image twice);
    refuses values below 1.0 and two values that print as the same key (``x1`` for 1 and 1.0000001)."""
    values = list(dict.fromkeys(float(s) for s in scales)) or [1.0]
    seen: dict[str, float] = {}
    for s in values:
        if s < 1.0:
            raise SecliUsageError(f"scales are enlargement factors >= 1.0, got {s:g}")
        key = ExcitationResult.scale_key(s)
        if key in seen:
            raise SecliUsageError(f"scales {seen[key]!r} and {s!r} are too close: both are saved as the same key {key!r}")
        seen[key] = s
    return values


# --------------------------------------------------------------------------- accumulation
class _Accumulator:
    """Running per-class sums for one site at one scale, as tensors on the model's device."""

    def __init__(self, info: SiteInfo, n_classes: int, device: torch.device) -> None:
        self.info = info
        k, p, c, b = n_classes, info.paths, info.channels, info.bins
        f64 = dict(dtype=torch.float64, device=device)
        self.t = {
            "count": torch.zeros(k, **f64),
            "sum": torch.zeros(k, p, c, **f64),
            "sumsq": torch.zeros(k, p, c, **f64),
            "hist": torch.zeros(k, p, b, **f64),
            "above": torch.zeros(k, p, **f64),
        }
        self._path_offsets = (torch.arange(p, device=device) * b).view(1, p, 1)

    def add(self, gates: torch.Tensor, labels: torch.Tensor) -> None:
        """``gates`` (N, P, C), ``labels`` (N,) class positions; one batch, no per-image loop."""
        info, t = self.info, self.t
        g = gates.to(torch.float64)
        n = g.shape[0]
        t["count"].index_add_(0, labels, torch.ones(n, dtype=torch.float64, device=g.device))
        t["sum"].index_add_(0, labels, g)
        t["sumsq"].index_add_(0, labels, g * g)
        t["above"].index_add_(0, labels, (g > SATURATION_THRESHOLD).sum(dim=2).to(torch.float64))
        scale = info.bins / (info.high - info.low)
        bins = ((g - info.low) * scale).floor_().clamp_(0, info.bins - 1).long()  # (N, P, C)
        flat = labels.view(n, 1, 1) * (info.paths * info.bins) + self._path_offsets + bins
        t["hist"].view(-1).index_add_(
            0, flat.view(-1), torch.ones(flat.numel(), dtype=torch.float64, device=g.device)
        )


def _as_npc(output: torch.Tensor, paths: int) -> torch.Tensor:
    """Gate output -> (N, P, C): SK (N, M, C, 1, 1); SE (N, C, 1, 1) or (N, C, H, W)."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    n = output.shape[0]
    if paths > 1 or output.dim() == 5:
        return output.reshape(n, output.shape[1], output.shape[2], -1).mean(dim=3)
    return output.reshape(n, 1, output.shape[1], -1).mean(dim=3)


# --------------------------------------------------------------------------- results
@dataclass
class ExcitationResult:
    """Per (scale, site) sums as numpy arrays, the class names, and how the run went."""

    sites: list[SiteInfo]
    class_names: list[str]
    scales: list[float]
    arrays: dict[str, dict[str, dict[str, np.ndarray]]]  # scale key -> site -> field -> array
    meta: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, np.ndarray] | None = None  # per-image gates, only with keep_raw (--save-raw)

    @staticmethod
    def scale_key(scale: float) -> str:
        return f"x{scale:g}"

    def site(self, name: str) -> SiteInfo:
        for info in self.sites:
            if info.name == name:
                return info
        raise SecliUsageError(f"unknown site {name!r}; valid sites: {', '.join(s.name for s in self.sites)}")

    def get(self, site: str, scale: float | None = None) -> dict[str, np.ndarray]:
        key = self.scale_key(self.scales[0] if scale is None else scale)
        return self.arrays[key][site]

    def counts(self, scale: float | None = None) -> np.ndarray:
        return self.get(self.sites[0].name, scale)["count"] if self.sites else np.zeros(0)

    def mean(self, site: str, scale: float | None = None) -> np.ndarray:
        """(K, P, C) per-class mean gate value; NaN for a class with no images."""
        a = self.get(site, scale)
        with np.errstate(invalid="ignore", divide="ignore"):
            return a["sum"] / a["count"][:, None, None]

    def std(self, site: str, scale: float | None = None) -> np.ndarray:
        """(K, P, C) per-class standard deviation across images (population, ddof 0)."""
        a = self.get(site, scale)
        n = a["count"][:, None, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            var = a["sumsq"] / n - (a["sum"] / n) ** 2
        return np.sqrt(np.clip(var, 0.0, None))

    def mean_all(self, site: str, scale: float | None = None) -> np.ndarray:
        """(P, C) mean over every image of every class analysed (the figures' reference)."""
        a = self.get(site, scale)
        total = a["count"].sum()
        return a["sum"].sum(axis=0) / total if total else np.full(a["sum"].shape[1:], np.nan)

    def sk_difference(self, site: str, scale: float | None = None) -> np.ndarray:
        """(K, C) mean attention of the largest-kernel path minus the 3x3 path, per class."""
        m = self.mean(site, scale)
        if m.shape[1] < 2:
            raise SecliUsageError(f"{site} is not an SK site with two or more paths")
        return m[:, -1, :] - m[:, 0, :]

    def scores(self, scale: float | None = None) -> list[dict[str, Any]]:
        rows = []
        for info in self.sites:
            a = self.get(info.name, scale)
            rows.append({"site": info.name, "kind": info.kind, "channels": info.channels, **site_scores(a)})
            if info.paths >= 2:
                diffs = {}
                for s in self.scales:
                    d = self.sk_difference(info.name, s)
                    diffs[self.scale_key(s)] = float(np.nanmean(d))
                rows[-1]["sk_difference"] = diffs
        return rows

    # ------------------------------------------------------------------ files
    def save(self, folder: str | Path, force: bool = False) -> list[Path]:
        """``stats.npz`` (every sum) and ``summary.json`` (sites, classes, counts, scores)."""
        import io

        from secli.util.outputs import atomic_write, atomic_write_text

        folder = Path(folder)
        flat = {
            f"{scale}/{site}/{name}": value
            for scale, by_site in self.arrays.items()
            for site, fields in by_site.items()
            for name, value in fields.items()
        }
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **flat)
        npz = atomic_write(folder / STATS_FILE, lambda h: h.write(buffer.getvalue()), force)
        summary = atomic_write_text(folder / SUMMARY_FILE, json.dumps(self.summary(), indent=2) + "\n", force)
        written = [npz, summary]
        if self.raw:
            raw_buffer = io.BytesIO()
            np.savez_compressed(raw_buffer, **self.raw)
            written.append(atomic_write(folder / RAW_FILE, lambda h: h.write(raw_buffer.getvalue()), force))
        return written

    def summary(self) -> dict[str, Any]:
        return {
            "format": "secli-excitation",
            "version": 1,
            "sites": [s.to_dict() for s in self.sites],
            "classes": self.class_names,
            "scales": self.scales,
            "counts": {name: int(c) for name, c in zip(self.class_names, self.counts())},
            "scores": self.scores(),
            "meta": self.meta,
        }

    @classmethod
    def load(cls, folder: str | Path) -> "ExcitationResult":
        folder = Path(folder)
        summary_path, npz_path = folder / SUMMARY_FILE, folder / STATS_FILE
        if not summary_path.is_file() or not npz_path.is_file():
            raise SecliError(
                f"{folder} holds no excitation statistics (needs {SUMMARY_FILE} and {STATS_FILE})",
                hint="write them with secli visualize-excitation ... --out DIR",
            )
        try:
            summary = json.loads(summary_path.read_text())
            sites = [SiteInfo(**s) for s in summary["sites"]]
            scales = [float(s) for s in summary["scales"]]
            arrays: dict[str, dict[str, dict[str, np.ndarray]]] = {}
            with np.load(npz_path, allow_pickle=False) as data:
                for key in data.files:
                    scale, site, name = key.split("/")
                    arrays.setdefault(scale, {}).setdefault(site, {})[name] = data[key]
            result = cls(sites, list(summary["classes"]), scales, arrays, dict(summary.get("meta") or {}))
            for s in scales:
                for info in sites:
                    missing = [f for f in FIELDS if f not in result.get(info.name, s)]
                    if missing:
                        raise KeyError(missing[0])
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise SecliError(f"damaged excitation statistics in {folder} ({type(exc).__name__}: {exc})") from None
        return result


def site_scores(a: dict[str, np.ndarray]) -> dict[str, float | None]:
    """Class specificity (eta squared), its chance level, saturation and mean gate of one site."""
    count, s, sq = a["count"], a["sum"], a["sumsq"]
    n = float(count.sum())
    k = int((count > 0).sum())
    if n == 0:
        return {"specificity": None, "chance": None, "saturation": None, "mean_gate": None}
    grand = s.sum(axis=0) / n  # (P, C)
    total_ss = float(sq.sum() - n * (grand**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        class_means = s / count[:, None, None]
    present = count > 0
    between_ss = float((count[present, None, None] * (class_means[present] - grand) ** 2).sum())
    p, c = s.shape[1], s.shape[2]
    return {
        "specificity": between_ss / total_ss if total_ss > 0 else 0.0,
        "chance": (k - 1) / (n - 1) if n > 1 else None,
        "saturation": float(a["above"].sum() / (n * p * c)),
        "mean_gate": float(grand.mean()),
    }


# --------------------------------------------------------------------------- the pass
def collect_excitation(
    model: nn.Module,
    sites: Sequence[Site],
    loader: Iterable[tuple[torch.Tensor | None, torch.Tensor | None, int]],
    class_names: list[str],
    label_positions: dict[int, int],
    scales: Sequence[float] = (1.0,),
    device: str | torch.device = "cpu",
    bins: int = 50,
    progress: Callable[[int], None] | None = None,
    keep_raw: bool = False,
) -> ExcitationResult:
    """One pass over ``loader`` (batches of images, dataset labels, skipped count).

    ``label_positions`` maps a dataset label to its row in the statistics (the classes chosen);
    ``progress`` is called with the number of images each batch added. ``keep_raw`` also keeps
    every image's gate vector (on the CPU, in ``result.raw``; under DDP gathered from every rank
onto rank 0);
    nothing per image is kept otherwise. Under an initialised ``torch.distributed`` group, the sums of all ranks are added together before returning.
    """
    from secli.data.data import zoom_center

    device = torch.device(device)
    scales = unique_scales(scales)
    if bins < 1:
        raise SecliUsageError(f"bins must be >= 1, got {bins}")
    infos: list[SiteInfo] = []
    gate_modules: list[nn.Module] = []
    for site in sites:
        module = get_module(model, site.gate_path or "")
        low, high = gate_range(module)
        kind = find_kind(site.kind)  # None for a network's own SE modules ("native-se")
        attr = kind.paths_attr if kind is not None else None
        paths = int(getattr(get_module(model, site.module_path), attr)) if attr else 1
        infos.append(SiteInfo(site.name, site.kind, site.channels, paths, low, high, bins))
        gate_modules.append(module)
    n_classes = len(class_names)
    accs = {s: {i.name: _Accumulator(i, n_classes, device) for i in infos} for s in scales}
    lookup = torch.full((max(label_positions, default=0) + 1,), -1, dtype=torch.long)
    for label, position in label_positions.items():
        lookup[label] = position
    lookup = lookup.to(device)
    state: dict[str, Any] = {}
    raw: dict[str, list[torch.Tensor]] = {}

    def make_hook(info: SiteInfo) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            if not state.get("active"):
                return  # a forward pass that is not ours (e.g. the loader's own use of the model)
            gates = _as_npc(output.detach(), info.paths)
            accs[state["scale"]][info.name].add(gates, state["labels"])
            if keep_raw:
                key = f"{ExcitationResult.scale_key(state['scale'])}/{info.name}"
                raw.setdefault(key, []).append(gates.float().cpu())

        return hook

    handles = [m.register_forward_hook(make_hook(i)) for m, i in zip(gate_modules, infos)]
    images_seen = skipped = 0
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            for images, labels, bad in loader:
                skipped += int(bad)
                if images is None:
                    if progress:
                        progress(int(bad))
                    continue
                images = images.to(device, non_blocking=True)
                positions = lookup[labels.to(device, non_blocking=True)]
                if bool((positions < 0).any()):
                    raise SecliError("a batch holds a class that was not chosen (internal error)")
                state["labels"] = positions
                if keep_raw:
                    raw.setdefault("labels", []).append(positions.cpu())
                for s in scales:
                    state["scale"] = s
                    state["active"] = True
                    try:
                        model(zoom_center(images, s))
                    finally:
                        state["active"] = False
                images_seen += images.shape[0]
                if progress:
                    progress(images.shape[0] + int(bad))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    totals = torch.tensor([images_seen, skipped], dtype=torch.float64, device=device)
    ranks = 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        ranks = torch.distributed.get_world_size()
        for by_site in accs.values():
            for acc in by_site.values():
                for tensor in acc.t.values():
                    torch.distributed.all_reduce(tensor)
        torch.distributed.all_reduce(totals)
    arrays = {
        ExcitationResult.scale_key(s): {
            name: {k: v.cpu().numpy() for k, v in acc.t.items()} for name, acc in by_site.items()
        }
        for s, by_site in accs.items()
    }
    meta = {
        "images": int(totals[0].item()),
        "skipped": int(totals[1].item()),
        "seconds": seconds,
        "images_per_second": float(totals[0].item()) / seconds if seconds > 0 else None,  # all ranks
        "ranks": ranks,
        "device": str(device),
    }
    result = ExcitationResult(infos, list(class_names), scales, arrays, meta)
    if keep_raw:
        result.raw = {key: torch.cat(parts).numpy() for key, parts in raw.items()}
        if ranks > 1:
            result.raw = _gather_raw(result.raw)
    return result


def _gather_raw(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """Every rank's per-image gates on rank 0, concatenated in rank order (rows stay paired with
    ``labels``); None on the other ranks, which write nothing."""
    from secli.util.distributed import gather_to_main

    gathered = gather_to_main(raw)
    if gathered is None:
        return None
    keys = list(dict.fromkeys(key for part in gathered for key in part))
    return {key: np.concatenate([part[key] for part in gathered if key in part]) for key in keys}
