"""``--ablate``: what each site's gate is worth, as top-1 accuracy on the analysed images.

The SE paper (section 7.2) finds the last stage's gates nearly saturated or class-agnostic and
argues they could be dropped cheaply. That is a claim about accuracy, so it is measured, per
site, with the site's gate replaced (every other site left as trained):

- **mean gate**: the class-agnostic gate, per channel the mean of the per-class mean gates
  (from the statistics pass, at the same scale). What is lost is exactly the gate's
  dependence on the image; a site whose gate is class-agnostic loses little.
- **no gate**: the gate removed. For SE/ECA-style gates (``x * s``) that is s = 1, the block
  as an identity. For SK the "gate" is the softmax over paths, and 1 would add the paths'
  full outputs where training always saw a convex combination, so it is 1/M (the paths
  averaged): SK's attention taken away, not its normalisation. A gate module that declares
  its own ``identity_value`` gets that (GC's added context term: 0).

The replacement is a forward hook on the site's gate module that returns the constant,
broadcast to the gate's shape, so the block's own code (eager or fused) runs unchanged.
Accuracy needs the model's outputs to be the data's classes: the caller maps each data label
to an output index (``targets``) or refuses. One pass over the images: each batch runs the
unmodified network and then 2 x sites modified ones, so every image is read once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from secli.excitation.scales import zoom_center
from secli.util.errors import SecliError

if TYPE_CHECKING:  # torch is imported where it runs: result.py reads Ablation without it
    import torch
    from torch import nn


@dataclass
class SiteAblation:
    """Correct top-1 answers with one site's gate replaced."""

    site: str
    correct_mean_gate: int
    correct_no_gate: int
    no_gate_value: float  # what "no gate" put in its place: 1, or 1/M for SK


@dataclass
class Ablation:
    """The unmodified network's correct answers and every site's ablations, on ``images``."""

    images: int
    correct: int
    scale: float
    sites: list[SiteAblation]

    def accuracy(self, correct: int) -> float | None:
        return correct / self.images if self.images else None

    def rows(self) -> list[dict[str, Any]]:
        """Per site: accuracies as fractions in [0, 1], deltas against the unmodified network."""
        rows = []
        for s in self.sites:
            rows.append({
                "site": s.site,
                "acc_mean_gate": self.accuracy(s.correct_mean_gate),
                "delta_mean_gate": self.accuracy(s.correct_mean_gate - self.correct),  # exact, not a - b
                "acc_no_gate": self.accuracy(s.correct_no_gate),
                "delta_no_gate": self.accuracy(s.correct_no_gate - self.correct),
                "correct_mean_gate": s.correct_mean_gate,
                "correct_no_gate": s.correct_no_gate,
                "no_gate_value": s.no_gate_value,
            })
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "correct": self.correct, "accuracy": self.accuracy(self.correct),
                "scale": self.scale, "sites": self.rows()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ablation:
        """Read back from a summary.json (the derived fractions are recomputed, not trusted)."""
        sites = [SiteAblation(str(r["site"]), int(r["correct_mean_gate"]), int(r["correct_no_gate"]),
                              float(r["no_gate_value"])) for r in data["sites"]]
        return cls(int(data["images"]), int(data["correct"]), float(data["scale"]), sites)


def class_agnostic_gate(class_means: np.ndarray) -> np.ndarray:
    """(P, C): per channel, the mean over classes of the per-class mean gates (K, P, C); a
    class without images (NaN) is left out, so each class weighs the same whatever its count."""
    with np.errstate(invalid="ignore"):
        present = ~np.isnan(class_means).all(axis=(1, 2))
        if not present.any():
            raise SecliError("no class has images; nothing to average the gate over")
        return class_means[present].mean(axis=0)


def _broadcast(value: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """(P, C) -> the gate's shape: SE (N, C, 1, 1) or (N, C, H, W), SK (N, M, C, 1, 1)."""
    p, c = value.shape
    if output.dim() == 5 or p > 1:
        shaped = value.view(1, p, c, *([1] * (output.dim() - 3)))
    else:
        shaped = value.view(1, c, *([1] * (output.dim() - 2)))
    return shaped.to(device=output.device, dtype=output.dtype).expand_as(output)


def ablate_sites(
    model: nn.Module,
    gates: Sequence[tuple[str, nn.Module, np.ndarray]],
    loader: Iterable[tuple[torch.Tensor | None, torch.Tensor | None, int]],
    targets: dict[int, int],
    scale: float = 1.0,
    device: str | torch.device = "cpu",
    progress: Callable[[int], None] | None = None,
) -> Ablation:
    """Top-1 correct counts of ``model`` as it is and with each gate replaced.

    ``gates``: per site, its name, its gate module and its class-agnostic gate (P, C).
    ``targets`` maps a dataset label to the model's output index for that class. Under an
    initialised ``torch.distributed`` group the counts of all ranks are summed.
    """
    import torch


    device = torch.device(device)
    lookup = torch.full((max(targets, default=0) + 1,), -1, dtype=torch.long)
    for label, index in targets.items():
        lookup[label] = index
    lookup = lookup.to(device)
    replace: dict[str, Any] = {"value": None, "module": None}  # the gate replaced now, and by what

    def hook(module: nn.Module, _inputs: Any, output: Any) -> Any:
        if replace["module"] is not module:
            return None
        assert replace["value"] is not None
        if isinstance(output, (tuple, list)):
            return (_broadcast(replace["value"], output[0]), *output[1:])
        return _broadcast(replace["value"], output)

    variants: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []
    no_gate_values: list[float] = []
    for _name, module, mean in gates:
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32), device=device)
        paths = mean_t.shape[0]
        no_gate = 1.0 / paths if paths > 1 else float(getattr(module, "identity_value", 1.0))  # GC's added term: 0
        variants.append((module, mean_t, torch.full_like(mean_t, no_gate)))
        no_gate_values.append(no_gate)
    counts = torch.zeros(2 + 2 * len(variants), dtype=torch.float64, device=device)  # last: images
    handles = [module.register_forward_hook(hook) for module in dict.fromkeys(m for _, m, _ in gates)]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for images, labels, bad in loader:
                if images is None:
                    if progress:
                        progress(int(bad))
                    continue
                assert labels is not None
                x = zoom_center(images.to(device, non_blocking=True), scale)
                y = lookup[labels.to(device, non_blocking=True)]
                if bool((y < 0).any()):
                    raise SecliError("a batch holds a class the model has no output for (internal error)")
                counts[0] += _correct(model(x), y)
                counts[-1] += x.shape[0]
                for i, (module, mean_t, none_t) in enumerate(variants):
                    for j, value in enumerate((mean_t, none_t)):
                        replace["module"], replace["value"] = module, value
                        try:
                            counts[1 + 2 * i + j] += _correct(model(x), y)
                        finally:
                            replace["module"] = replace["value"] = None
                if progress:
                    progress(images.shape[0] + int(bad))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(counts)
    c = [round(v) for v in counts.cpu().tolist()]
    sites = [SiteAblation(name, c[1 + 2 * i], c[2 + 2 * i], no_gate_values[i]) for i, (name, _, _) in enumerate(gates)]
    return Ablation(c[-1], c[0], scale, sites)


def _correct(logits: Any, targets: torch.Tensor) -> float:
    if isinstance(logits, (tuple, list)):  # e.g. Inception's (logits, aux) in some modes
        logits = logits[0]
    if logits.dim() != 2:
        raise SecliError(f"the model's output has shape {tuple(logits.shape)}; --ablate needs (images, classes) logits")
    if int(targets.max()) >= logits.shape[1]:
        raise SecliError(f"the model has {logits.shape[1]} outputs but the data's classes need "
                         f"output {int(targets.max())}; --ablate needs the model's own classes")
    return float((logits.argmax(dim=1) == targets).sum().item())

