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
from secli.util.errors import SecliUsageError

MAX_CHANNELS = 50
#: zlib level of the PNGs: 6 (the default) took ~10 % of the drawing time for files ~10 % smaller.
PNG_COMPRESSION = 1

__all__ = ["FIGURE_SETS", "MAX_CHANNELS", "class_color", "sampled_channels", "planned_figures", "save_figure",
           "write_figures"]


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
    from secli.util.outputs import atomic_write

    written = []
    for suffix in (".png", ".svg") if svg else (".png",):
        buffer = io.BytesIO()
        if suffix == ".png":
            fig.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"compress_level": PNG_COMPRESSION})
        else:
            fig.savefig(buffer, format="svg", dpi=DPI)
        written.append(atomic_write(path.with_suffix(suffix), functools.partial(_write_bytes, buffer.getvalue()), force))
    return written


def _write_bytes(data: bytes, handle: IO[bytes]) -> None:
    handle.write(data)


def write_figures(result: ExcitationResult, out: str | Path, classes: Sequence[int] | None = None,
                  svg: bool = False, force: bool = False, max_channels: int = MAX_CHANNELS,
                  figures: str = "default") -> list[Path]:
    """The figures of the set ``figures`` (``default`` or ``all``) into ``out``; returns the files."""
    out = Path(out)
    written: list[Path] = []
    for stem, make in planned_figures(result, classes, figures, max_channels):
        fig = make()
        if fig is not None:
            written += save_figure(fig, out / stem, svg, force)
    return written
