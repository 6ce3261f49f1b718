"""The main score against depth: class specificity (eta squared) and saturation per site.

The SE paper's depth story (section 7.2) is a claim about how these two numbers change from
early to late sites, so one figure puts every site on one axis in network order. Scores are
read from ``ExcitationResult.scores`` (the numbers the table and summary.json print); an
undefined eta squared (None or NaN: the gates did not vary at all) is left as a gap marked
"n/a", never drawn as 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from secli.excitation.figures.style import FONT, REFERENCE, Margins, panel_grid, panel_title, site_order, title
from secli.excitation.result import ExcitationResult
from secli.excitation.scores import SATURATION_THRESHOLD

SCALE_COLORS = ("#332288", "#CC6677", "#117733", "#DDCC77", "#88CCEE")


def number(value: Any) -> float:
    """A score as a float, NaN where it is missing or undefined (None, NaN, not a number)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def scores_by_site(result: ExcitationResult, scale: float | None = None) -> dict[str, dict[str, Any]]:
    """``result.scores(scale)`` keyed by site name (read once per figure)."""
    return {row["site"]: row for row in result.scores(scale)}


def specificity_text(row: dict[str, Any] | None) -> str:
    """``eta^2 = 0.75`` for titles, ``eta^2 n/a`` where undefined."""
    value = number((row or {}).get("specificity"))
    return "η² n/a" if math.isnan(value) else f"η² = {value:.2f}"


def depth_figure(result: ExcitationResult) -> Figure:
    """Two panels sharing the site axis: eta squared with its chance level, and saturation.

    One line per analysed object scale (SK runs with ``--scales``); vertical rules separate
    stages, so "rises with depth" can be read per stage."""
    names = [s.name for s in result.sites]
    x = np.arange(len(names))
    margins = Margins(left=0.75, right=1.9, top=0.55, bottom=0.85, hspace=0.35)
    width = max(4.0, 0.45 * len(names))
    fig, (top, bottom) = panel_grid(2, 1, width, 1.9, margins, sharex=True)
    multi = len(result.scales) > 1
    for i, scale in enumerate(result.scales):
        rows = scores_by_site(result, scale)
        eta = np.array([number(rows[n].get("specificity")) for n in names])
        sat = np.array([number(rows[n].get("saturation")) for n in names])
        color = SCALE_COLORS[i % len(SCALE_COLORS)]
        label = f"η², objects x{scale:g}" if multi else "η² (class specificity)"
        top.plot(x, eta, marker="o", ms=4, lw=1.5, color=color, label=label, zorder=3)
        bottom.plot(x, sat, marker="s", ms=4, lw=1.5, color=color, zorder=3)
        if i == 0:
            chance = np.array([number(rows[n].get("chance")) for n in names])
            top.plot(x, chance, color=REFERENCE, lw=0.9, ls=(0, (3, 2)), marker="_", ms=12,  # "_": seen with one site
                     label="chance (random labels)", zorder=2)
            for j in np.flatnonzero(np.isnan(eta)):
                top.text(x[j], 0.03, "n/a", ha="center", va="bottom", fontsize=FONT - 1, color="#555555")
    for ax in (top, bottom):
        ax.set_ylim(-0.02, 1.02)
        ax.set_yticks((0.0, 0.25, 0.5, 0.75, 1.0))
    top.set_ylabel("η² (0 to 1)", fontsize=FONT)
    panel_title(top, "class specificity: between-class / total sum of squares of the gates", fontsize=FONT,
                  loc="left")
    bottom.set_ylabel("fraction of gates", fontsize=FONT)
    panel_title(bottom, f"saturation: fraction of gate values > {SATURATION_THRESHOLD:g}", fontsize=FONT, loc="left")
    bottom.set_xticks(x, names, rotation=45, ha="right", fontsize=FONT - 1)
    bottom.set_xlabel("site in network order (KIND_stage_block; stages separated by rules)", fontsize=FONT)
    _stage_rules(names, (top, bottom))
    for ax in (top, bottom):
        ax.grid(axis="y", color="#dddddd", lw=0.6, zorder=0)
        ax.set_xlim(-0.5, len(names) - 0.5)
    n = int(result.counts().sum())
    model = result.meta.get("model")
    margins = title(fig, f"Scores against depth{f' of {model}' if model else ''} ({n} images, "
                         f"{len(result.class_names)} classes)", margins)
    fig_w, fig_h = fig.get_size_inches()
    handles, labels = top.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper left", fontsize=FONT - 0.5, frameon=False,
               bbox_to_anchor=((fig_w - margins.right + 0.1) / fig_w, 1 - margins.top / fig_h))
    return fig


def _stage_rules(names: list[str], axes: tuple) -> None:
    """Light vertical rules between sites of different stages."""
    stages = [site_order(n) for n in names]
    for j in range(1, len(names)):
        a, b = stages[j - 1], stages[j]
        if a and b and a[0] != b[0]:
            for ax in axes:
                ax.axvline(j - 0.5, color="#bbbbbb", lw=0.7, zorder=1)
