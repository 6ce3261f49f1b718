"""Scores read off the per-class sums of one site (defined here, shown in docs/visualize-excitation.md).

- class specificity: eta squared = between-class sum of squares / total sum of squares of the
  gate vectors (summed over channels and paths). 0: every class gets the same mean excitation;
  1: the class alone determines the excitation. With K classes and N images, random labels give
  about (K - 1) / (N - 1), reported as ``chance``. Where the gates do not vary at all (total
  sum of squares 0, e.g. a gate saturated at exactly 1, or one image) eta squared is 0/0:
  undefined, so it is None (null in JSON, "n/a" in tables), never 0, which would claim
  "class-agnostic" about a gate that says nothing either way.
- saturation: the fraction of all gate values above ``SATURATION_THRESHOLD`` (a gate that is ~1
  everywhere is an identity, as the SE paper finds for SE_5_2).
- SK: the mean attention of the largest-kernel path minus that of the 3x3 path
  (``ExcitationResult.sk_difference``).
"""

from __future__ import annotations

import numpy as np

SATURATION_THRESHOLD = 0.95
#: A total sum of squares at most this fraction of the sum of squared gates counts as zero.
UNDEFINED_RELATIVE_SS = 1e-10


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
    # sumsq - n * grand^2 of constant gates is rounding noise (~1e-16 of sumsq), not variance
    varies = total_ss > UNDEFINED_RELATIVE_SS * float(sq.sum())
    return {
        "specificity": min(1.0, max(0.0, between_ss / total_ss)) if varies else None,
        "chance": (k - 1) / (n - 1) if n > 1 else None,
        "saturation": float(a["above"].sum() / (n * p * c)),
        "mean_gate": float(grand.mean()),
    }
