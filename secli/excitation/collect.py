"""The pass over the images: hooks on every site's gate, folded into per-class running sums.

A forward hook on every site's ``gate_path`` (the module whose output is the gate, or the SK
path softmax) sees the gate of a whole batch, shape (N, C, 1, 1) for SE or (N, M, C, 1, 1) for
SK. It is reduced to (N, P, C) (P = 1 for SE, P = M paths for SK) and folded into running sums
per (site, class) with ``index_add_``. A gate with a spatial extent, (N, C, H, W) (SE without a
squeeze, SimAM, Coordinate attention's a_h ⊗ a_w, GE's per-region gate), is averaged over its
positions: one summary value per channel; what that leaves out is each kind's ``gate_note``,
kept in the results' ``meta["gate_notes"]``. The counts are:

    count[k], sum[k, p, c], sumsq[k, p, c], hist[k, p, bin], above[k, p] (values > 0.95)

all on the model's device, batched, with no Python loop over images or channels. Memory is
O(sites x classes x paths x (channels + bins)), whatever the number of images. Under
``torch.distributed`` each rank sums its own shard and the sums are all-reduced at the end.
The scores read off these sums are defined in ``secli.excitation.scores``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from secli.blocks.registry import find_kind
from secli.data.folders import too_large_in
from secli.excitation.result import ExcitationResult, SiteInfo
from secli.excitation.scales import scale_key, unique_scales, zoom_center
from secli.excitation.scores import SATURATION_THRESHOLD
from secli.networks.sites import Site, get_module
from secli.util.distributed import gather_to_main
from secli.util.errors import SecliError, SecliUsageError


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
    """The histogram range of a gate: the module's own ``gate_range`` where it declares one (GC's
    added term, GCT's 1 + tanh), [0, 1] for sigmoid-like gates and softmax, [-1, 1] for tanh,
    [0, 2] for ReLU and anything unknown (values beyond go into the end bins)."""
    declared = getattr(module, "gate_range", None)
    if declared is not None:
        return float(declared[0]), float(declared[1])
    if isinstance(module, (nn.Sigmoid, nn.Hardsigmoid, nn.Softmax)):
        return 0.0, 1.0
    if isinstance(module, nn.Tanh):
        return -1.0, 1.0
    name = type(module).__name__.lower()
    if "sigmoid" in name or "softmax" in name:
        return 0.0, 1.0
    return 0.0, 2.0


def gate_notes(sites: Sequence[Site]) -> list[str]:
    """What the per-channel summary leaves out, once per kind among ``sites`` (``BlockKind.gate_note``)."""
    notes = []
    for name in dict.fromkeys(s.kind for s in sites):
        kind = find_kind(name)
        if kind is not None and kind.gate_note:
            notes.append(kind.gate_note)
    return notes


# --------------------------------------------------------------------------- accumulation
class _Accumulator:
    """Running per-class sums for one site at one scale, as tensors on the model's device."""

    def __init__(self, info: SiteInfo, n_classes: int, device: torch.device) -> None:
        self.info = info
        k, p, c, b = n_classes, info.paths, info.channels, info.bins
        def zeros(*shape: int) -> torch.Tensor:
            return torch.zeros(*shape, dtype=torch.float64, device=device)

        self.t = {
            "count": zeros(k),
            "sum": zeros(k, p, c),
            "sumsq": zeros(k, p, c),
            "hist": zeros(k, p, b),
            "above": zeros(k, p),
        }
        self._path_offsets = (torch.arange(p, device=device) * b).view(1, p, 1)

    def add(self, gates: torch.Tensor, labels: torch.Tensor) -> None:
        """``gates`` (N, P, C), ``labels`` (N,) class positions; one batch, no per-image loop."""
        info, t = self.info, self.t
        g = gates.to(torch.float64)
        if not bool(torch.isfinite(g).all()):
            # NaN has no histogram bin (its integer index is garbage) and would turn every mean of
            # the class into NaN: say where it came from instead of drawing statistics of nothing.
            bad = int((~torch.isfinite(g)).sum())
            raise SecliError(
                f"site {info.name}: {bad} of {g.numel()} gate values are not finite (NaN or inf); "
                "the model's outputs are not numbers (check its weights, or the input normalisation)"
            )
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


def _as_npc(output: torch.Tensor, paths: int, channels: int) -> torch.Tensor:
    """Gate output -> (N, P, C): SK (N, M, C, 1, 1); SE (N, C, 1, 1) or (N, C, H, W); ECA's
    (N, 1, C); linear FCs' (N, C)."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    return output.reshape(output.shape[0], paths, channels, -1).mean(dim=3)


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
    ``progress`` is called with the number of images each batch added (skipped ones included).
    ``keep_raw`` also keeps every image's gate vectors (on the CPU, in ``result.raw``; under DDP
    gathered from every rank onto rank 0); nothing per image is kept otherwise. Under an
    initialised ``torch.distributed`` group the sums of all ranks are added together before
    returning, so every rank returns the totals.
    """
    device = torch.device(device)
    scales = unique_scales(scales)
    if bins < 1:
        raise SecliUsageError(f"bins must be >= 1, got {bins}")
    infos: list[SiteInfo] = []
    gate_modules: list[nn.Module] = []
    for site in sites:
        module = get_module(model, site.gate_path or "")
        low, high = gate_range(module)
        kind = find_kind(site.kind)  # None for a network's own modules ("native-se", "native-sk"...)
        attr = kind.paths_attr if kind is not None else None
        paths = int(getattr(get_module(model, site.module_path), attr)) if attr else site.paths
        infos.append(SiteInfo(site.name, site.kind, site.channels, paths, low, high, bins))
        gate_modules.append(module)
    n_classes = len(class_names)
    notes = gate_notes(sites)
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
            gates = _as_npc(output.detach(), info.paths, info.channels)
            accs[state["scale"]][info.name].add(gates, state["labels"])
            if keep_raw:
                key = f"{scale_key(state['scale'])}/{info.name}"
                raw.setdefault(key, []).append(gates.float().cpu())

        return hook

    handles = [m.register_forward_hook(make_hook(i)) for m, i in zip(gate_modules, infos)]

    images_seen = skipped = too_large = 0
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            for images, labels, bad in loader:
                skipped += int(bad)
                too_large += too_large_in(bad)
                if images is None:
                    if progress:
                        progress(int(bad))
                    continue
                images = images.to(device, non_blocking=True)
                assert labels is not None  # a batch with images has their labels
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
    totals = torch.tensor([images_seen, skipped, too_large], dtype=torch.float64, device=device)
    ranks = 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        ranks = torch.distributed.get_world_size()
        for by_site in accs.values():
            for acc in by_site.values():
                for tensor in acc.t.values():
                    torch.distributed.all_reduce(tensor)
        torch.distributed.all_reduce(totals)
    arrays = {
        scale_key(s): {
            name: {k: v.cpu().numpy() for k, v in acc.t.items()} for name, acc in by_site.items()
        }
        for s, by_site in accs.items()
    }
    meta: dict[str, Any] = {
        "images": int(totals[0].item()),
        "skipped": int(totals[1].item()),
        "too_large": int(totals[2].item()),
        "seconds": seconds,
        "images_per_second": float(totals[0].item()) / seconds if seconds > 0 else None,  # all ranks
        "ranks": ranks,
        "device": str(device),
    }
    if notes:
        meta["gate_notes"] = notes
    result = ExcitationResult(infos, list(class_names), scales, arrays, meta)
    if keep_raw:
        result.raw = {key: torch.cat(parts).numpy() for key, parts in raw.items()}
        if ranks > 1:
            result.raw = _gather_raw(result.raw)
    return result


def _gather_raw(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """Every rank's per-image gates on rank 0, concatenated in rank order (rows stay paired with
    ``labels``); None on the other ranks, which write nothing."""
    gathered = gather_to_main(raw)
    if gathered is None:
        return None
    keys = list(dict.fromkeys(key for part in gathered for key in part))
    return {key: np.concatenate([part[key] for part in gathered if key in part]) for key in keys}
