"""Excitation statistics as numpy arrays: per-class reads (mean, std, SK difference, scores)
and the files they are kept in (``stats.npz`` + ``summary.json``, optionally ``raw.npz``).

Every figure and every re-plot (``--from-stats``) reads an ``ExcitationResult`` only, so the
network is needed once. ``summary.json`` is the command's JSON envelope (``secli.util.envelope``:
the run's inputs, and as results the sites, counts, scores and ablation), so ``secli report``
renders it like any saved result; files of the older bare ``"format": "secli-excitation"``
shape still load.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from secli.excitation.ablate import Ablation
from secli.excitation.reading import STATS_FILE, SUMMARY_FILE, load_statistics
from secli.excitation.scales import scale_key
from secli.excitation.scores import site_scores
from secli.util.envelope import dumps, envelope
from secli.util.errors import SecliUsageError
from secli.util.outputs import atomic_write, atomic_write_text

COMMAND = "visualize-excitation"
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


@dataclass
class ExcitationResult:
    """Per (scale, site) sums as numpy arrays, the class names, and how the run went."""

    sites: list[SiteInfo]
    class_names: list[str]
    scales: list[float]
    arrays: dict[str, dict[str, dict[str, np.ndarray]]]  # scale key -> site -> field -> array
    meta: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, np.ndarray] | None = None  # per-image gates, only with keep_raw (--save-raw)
    ablation: Ablation | None = None  # with --ablate: accuracy with each site's gate replaced
    inputs: dict[str, Any] = field(default_factory=dict)  # what the computing call was asked

    @staticmethod
    def scale_key(scale: float) -> str:
        """The key of ``scale`` in ``arrays`` (``x1``, ``x1.5``)."""
        return scale_key(scale)

    def site(self, name: str) -> SiteInfo:
        for info in self.sites:
            if info.name == name:
                return info
        raise SecliUsageError(f"unknown site {name!r}; valid sites: {', '.join(s.name for s in self.sites)}")

    def keep_sites(self, wanted: list[str]) -> None:
        """Only the named sites (unknown names list the valid ones), their ablation rows too."""
        for name in wanted:
            self.site(name)
        self.sites = [s for s in self.sites if s.name in wanted]
        if self.ablation is not None:
            self.ablation.sites = [s for s in self.ablation.sites if s.site in wanted]

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
        rows: list[dict[str, Any]] = []
        for info in self.sites:
            a = self.get(info.name, scale)
            rows.append({"site": info.name, "kind": info.kind, "channels": info.channels, **site_scores(a)})
            if info.paths >= 2:
                diffs: dict[str, float] = {}
                for s in self.scales:
                    d = self.sk_difference(info.name, s)
                    diffs[self.scale_key(s)] = float(np.nanmean(d))
                rows[-1]["sk_difference"] = diffs
        return rows

    # ------------------------------------------------------------------ files
    def save(self, folder: str | Path, force: bool = False) -> list[Path]:
        """``stats.npz`` (every sum) and ``summary.json`` (sites, classes, counts, scores)."""
        import io


        folder = Path(folder)
        flat = {
            f"{scale}/{site}/{name}": value
            for scale, by_site in self.arrays.items()
            for site, fields in by_site.items()
            for name, value in fields.items()
        }
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **flat)  # type: ignore[arg-type]  # numpy types kwds as bool
        npz = atomic_write(folder / STATS_FILE, lambda h: h.write(buffer.getvalue()), force)
        summary = atomic_write_text(folder / SUMMARY_FILE, dumps(self.document()) + "\n", force)
        written = [npz, summary]
        if self.raw:
            raw_buffer = io.BytesIO()
            np.savez_compressed(raw_buffer, **self.raw)  # type: ignore[arg-type]
            written.append(atomic_write(folder / RAW_FILE, lambda h: h.write(raw_buffer.getvalue()), force))
        return written

    def summary(self) -> dict[str, Any]:
        """The results part of the envelope: everything but the arrays."""
        return {
            "sites": [s.to_dict() for s in self.sites],
            "classes": self.class_names,
            "scales": self.scales,
            "counts": {name: int(c) for name, c in zip(self.class_names, self.counts())},
            "scores": self.scores(),
            "ablation": self.ablation.to_dict() if self.ablation else None,
            "meta": self.meta,
        }

    def document(self) -> dict[str, Any]:
        """``summary.json``: the envelope of the computing run, without the files it wrote."""
        return envelope(COMMAND, self.inputs, self.summary())

    @classmethod
    def load(cls, folder: str | Path) -> ExcitationResult:
        """The statistics saved in ``folder``, read as untrusted files (``secli.excitation.reading``)."""
        saved = load_statistics(folder)
        result = cls([SiteInfo(**site) for site in saved.sites], saved.classes, saved.scales, saved.arrays, saved.meta,
                     inputs=saved.inputs)
        result.ablation = saved.ablation
        return result
