"""The figures of ``secli visualize-excitation``, one module per kind (no pyplot, no global state).

This package's ``__init__`` stays free of matplotlib so that the workflow can check a requested
figure set (``FIGURE_SETS``) before the slow statistics pass without paying for the import.

- ``style``: the class palette and markers (a class keeps its colour in every figure), the
  fixed-margin figure grids (cheaper than constrained layout, legends outside the axes).
- ``curves``: SE paper Fig. 6 (class means per site) and Fig. 7 (mean +-1 std per class).
- ``distributions``: per-class quantile bars of every site, and per-site histogram panels.
- ``depth``: class specificity (eta squared) and saturation against site order.
- ``sk``: SKNet Fig. 3 style attention difference against object scale.
"""

from __future__ import annotations

#: ``default``: one figure per kind, each covering every site (fast); ``all`` adds the per-site
#: figures (``<site>_mean_std.png``, ``<site>_hist.png``).
FIGURE_SETS = ("default", "all")
