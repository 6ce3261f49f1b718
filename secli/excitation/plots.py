"""Writing the figures of excitation statistics (SE paper Fig. 6/7, SKNet Fig. 3, scores by depth).

Built with matplotlib's object API (``Figure`` + the Agg canvas), never ``pyplot``, so nothing
global changes and figures can be made from worker threads and tests. Every figure reads an
``ExcitationResult`` only, so ``--from-stats`` re-plots without the network. The figures
themselves live in ``secli.excitation.figures``; this module chooses which to write.

The default set is one figure per kind covering every site (``class_means``, ``depth``,
``distributions``, ``sk_difference`` for SK), so drawing costs about the same for 2 sites or
16; ``figures="all"`` adds two figures per site (``<site>_mean_std``, ``<site>_hist``).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from matplotlib.figure import Figure

from secli.excitation.figures import FIGURE_SETS
from secli.excitation.figures.curves import class_means_figure, mean_std_figure
from secli.excitation.figures.depth import depth_figure
from secli.excitation.figures.distributions import distributions_figure, histogram_figure
from secli.excitation.figures.sk import sk_difference_figure
from secli.excitation.figures.style import DPI, class_color, sampled_channels
from secli.excitation.result import ExcitationResult
from secli.util.env_flags import whole_value
from secli.util.errors import SecliUsageError
from secli.util.forks import fork_map
from secli.util.outputs import atomic_write

MAX_CHANNELS = 50
#: zlib level of the PNGs: 6 (the default) took ~10 % of the drawing time for files ~10 % smaller.
PNG_COMPRESSION = 1

__all__ = [
    "FIGURE_SETS",
    "MAX_CHANNELS",
    "class_color",
    "planned_figures",
    "sampled_channels",
    "save_figure",
    "write_figures",
]


def planned_figures(result: ExcitationResult, classes: Sequence[int] | None = None, figures: str = "default",
                    max_channels: int = MAX_CHANNELS) -> list[tuple[str, Callable[[], Figure | None]]]:
    """(file stem, figure maker) for every figure of the set, in the order they are written."""
    if figures not in FIGURE_SETS:
        raise SecliUsageError(f"unknown figure set {figures!r}; choose one of {', '.join(FIGURE_SETS)}")
    plan: list[tuple[str, Callable[[], Figure | None]]] = [
        ("class_means", functools.partial(class_means_figure, result, None, classes, max_channels)),
        ("depth", functools.partial(depth_figure, result)),
        ("distributions", functools.partial(distributions_figure, result, None, classes)),
        ("sk_difference", functools.partial(sk_difference_figure, result, classes)),
    ]
    if figures == "all":
        for info in result.sites:
            plan.append((f"{info.name}_mean_std", functools.partial(mean_std_figure, result, info.name, classes,
                                                                    max_channels)))
            plan.append((f"{info.name}_hist", functools.partial(histogram_figure, result, info.name, classes)))
    return plan


def save_figure(fig: Figure, path: Path, svg: bool, force: bool) -> list[Path]:
    """PNG (and SVG), written atomically; never overwrite without ``force``."""
    return _write_rendered(_render(fig, svg), path, force)


def _render(fig: Figure, svg: bool) -> list[tuple[str, bytes]]:
    """The figure's files as (suffix, bytes): PNG, and SVG when asked."""
    files = []
    for suffix in (".png", ".svg") if svg else (".png",):
        buffer = io.BytesIO()
        if suffix == ".png":
            fig.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"compress_level": PNG_COMPRESSION})
        else:
            fig.savefig(buffer, format="svg", dpi=DPI)
        files.append((suffix, buffer.getvalue()))
    return files


def _write_rendered(files: list[tuple[str, bytes]], path: Path, force: bool) -> list[Path]:
    return [atomic_write(path.with_suffix(suffix), functools.partial(_write_bytes, data), force)
            for suffix, data in files]


def _write_bytes(data: bytes, handle: IO[bytes]) -> None:
    handle.write(data)


def write_figures(result: ExcitationResult, out: str | Path, classes: Sequence[int] | None = None,
                  svg: bool = False, force: bool = False, max_channels: int = MAX_CHANNELS,
                  figures: str = "default") -> list[Path]:
    """The figures of the set ``figures`` (``default`` or ``all``) into ``out``; returns the files.

    Figures are drawn in forked worker processes, one figure a task, when there are several and
    more than one CPU (``SECLI_FIGURE_WORKERS`` caps the count; 1 draws in this process): drawing
    is pure-Python matplotlib work that one process cannot spread over cores. Workers only draw
    and hand back bytes; this process writes every file, so the atomic-write promises hold.
    """
    out = Path(out)
    plan = planned_figures(result, classes, figures, max_channels)
    written: list[Path] = []
    for (stem, _make), files in zip(plan, _rendered_files([make for _stem, make in plan], svg)):
        if files is not None:
            written += _write_rendered(files, out / stem, force)
    return written


_JOBS: list[Callable[[], Figure | None]] = []  # what forked workers draw (inherited, not pickled)


def _render_job(index: int, svg: bool) -> list[tuple[str, bytes]] | None:
    fig = _JOBS[index]()
    return None if fig is None else _render(fig, svg)


def _figure_workers(jobs: int) -> int:
    """Worker processes for ``jobs`` figures: at most ``SECLI_FIGURE_WORKERS`` (default 4; 1 draws
    in this process) and the CPUs this process may use."""
    import os

    if jobs < 2 or not hasattr(os, "fork"):
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return max(1, min(jobs, whole_value("SECLI_FIGURE_WORKERS"), cpus))


def _rendered_files(makers: list[Callable[[], Figure | None]], svg: bool) -> list[list[tuple[str, bytes]] | None]:
    """Each maker's files, in order: in forked workers when that helps (``secli.util.forks``:
    none outlives this call, whatever signal ends it), else here."""
    global _JOBS
    workers = _figure_workers(len(makers))
    _JOBS = makers
    try:
        return fork_map(functools.partial(_render_job, svg=svg), len(makers), workers)
    finally:
        _JOBS = []
