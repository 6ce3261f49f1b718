"""Reading saved excitation statistics back (``--from-stats``), as untrusted files.

``summary.json`` and ``stats.npz`` may have been edited, truncated or made by someone else, so
both go through ``secli.util.user_files`` (regular files, bounded sizes, strict JSON, the
archive's uncompressed sizes bounded before decompression), the summary through the schema
(``secli.util.schema``: every field typed), and every array must have the shape the summary
implies: ``count`` (K,), ``sum`` and ``sumsq`` (K, P, C), ``hist`` (K, P, bins), ``above``
(K, P), for K classes and each site's P paths and C channels. A file that does not fit is one
line naming the file and the reason, exit 2; nothing downstream meets a wrong shape (tampered
files once gave IndexError and ValueError from the figures).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secli.excitation.ablate import Ablation
from secli.excitation.scales import scale_key
from secli.util.envelope import ENVELOPE_VERSION, format_name
from secli.util.errors import SecliError, SecliUsageError, shorten
from secli.util.memory import available_bytes
from secli.util.schema import problem, result_schema
from secli.util.user_files import read_json, read_npz

COMMAND = "visualize-excitation"
FIELDS = ("count", "sum", "sumsq", "hist", "above")
STATS_FILE = "stats.npz"
SUMMARY_FILE = "summary.json"
OLD_FORMAT = "secli-excitation"  # summary.json before the envelope: the results at the top level
SITE_KEYS = ("name", "kind", "channels", "paths", "low", "high", "bins")
MAX_SUMMARY_BYTES = 50_000_000
MAX_STATS_FILE_BYTES = 4_000_000_000
#: Uncompressed statistics read at most (also never more than the memory free).
MAX_STATS_BYTES = 16_000_000_000


@dataclass
class Saved:
    """What a statistics folder holds, checked (``ExcitationResult.load`` builds the result from it)."""

    sites: list[dict[str, Any]]  # SiteInfo fields
    classes: list[str]
    scales: list[float]
    arrays: dict[str, dict[str, dict[str, Any]]]
    meta: dict[str, Any]
    inputs: dict[str, Any]
    ablation: Ablation | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load_statistics(folder: str | Path) -> Saved:
    """The statistics saved in ``folder``; ``SecliUsageError`` for a damaged or hostile file."""
    folder = Path(folder)
    summary_path, npz_path = folder / SUMMARY_FILE, folder / STATS_FILE
    if not os.path.lexists(summary_path) or not os.path.lexists(npz_path):
        raise SecliError(f"{folder} holds no excitation statistics (needs {SUMMARY_FILE} and {STATS_FILE})",
                         hint="write them with secli visualize-excitation ... --out DIR")
    try:
        return _load(folder, summary_path, npz_path)
    except SecliUsageError as exc:
        raise SecliUsageError(f"damaged excitation statistics in {folder}: {exc.message}") from None


def _load(folder: Path, summary_path: Path, npz_path: Path) -> Saved:
    document = read_json(summary_path, SUMMARY_FILE, MAX_SUMMARY_BYTES)
    summary, inputs = _results_of(document)
    schema = result_schema()
    found = problem(summary, schema["$defs"]["visualize_excitation_results"], schema, "results")
    if found:
        raise SecliUsageError(f"{SUMMARY_FILE}: {found}")
    sites = [{key: s[key] for key in SITE_KEYS} for s in summary["sites"]]
    if len({s["name"] for s in sites}) != len(sites):
        raise SecliUsageError(f"{SUMMARY_FILE} names a site twice")
    classes = list(summary["classes"])
    scales = [float(s) for s in summary["scales"]]
    if len({scale_key(s) for s in scales}) != len(scales):
        raise SecliUsageError(f"{SUMMARY_FILE} lists an object scale twice")
    free = available_bytes("cpu")
    flat = read_npz(npz_path, STATS_FILE, MAX_STATS_FILE_BYTES, min(MAX_STATS_BYTES, free or MAX_STATS_BYTES))
    arrays = _arrays(flat, sites, len(classes), scales)
    ablation = _ablation(summary["ablation"], {s["name"] for s in sites}) if summary.get("ablation") else None
    return Saved(sites, classes, scales, arrays, dict(summary.get("meta") or {}), inputs, ablation)


def _results_of(document: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(results, inputs) of a summary.json: an envelope, or the older bare results object."""
    if not isinstance(document, dict):
        raise SecliUsageError(f"{SUMMARY_FILE} is not a JSON object")
    if document.get("format") == OLD_FORMAT:
        return document, {}
    if document.get("format") == format_name(COMMAND) and isinstance(document.get("results"), dict):
        version = document.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version > ENVELOPE_VERSION:
            raise SecliUsageError(f"{SUMMARY_FILE} has version {shorten(repr(version), 40)}; this secli reads up to "
                                  f"{ENVELOPE_VERSION}")
        inputs = document.get("inputs")
        return document["results"], dict(inputs) if isinstance(inputs, dict) else {}
    raise SecliUsageError(f"{SUMMARY_FILE} has format {shorten(repr(document.get('format')), 60)}, "
                          f"not {format_name(COMMAND)!r}")


def _arrays(flat: dict[str, Any], sites: list[dict[str, Any]], classes: int,
            scales: list[float]) -> dict[str, dict[str, dict[str, Any]]]:
    """The arrays by scale, site and field, every one of the shape the summary implies."""
    arrays: dict[str, dict[str, dict[str, Any]]] = {}
    for key, array in flat.items():
        parts = key.split("/")
        if len(parts) != 3:
            raise SecliUsageError(f"{STATS_FILE} holds {shorten(repr(key), 60)}, not a scale/site/field array")
        arrays.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = array
    for scale in scales:
        for info in sites:
            site, paths, channels = info["name"], info["paths"], info["channels"]
            fields = arrays.get(scale_key(scale), {}).get(site)
            if fields is None:
                raise SecliUsageError(f"{STATS_FILE} has no statistics of site {shorten(repr(site), 60)} "
                                      f"at scale {scale:g}")
            expected = {"count": (classes,), "sum": (classes, paths, channels), "sumsq": (classes, paths, channels),
                        "hist": (classes, paths, info["bins"]), "above": (classes, paths)}
            for name in FIELDS:
                if name not in fields:
                    raise SecliUsageError(f"{STATS_FILE} lacks {name!r} of site {shorten(repr(site), 60)}")
                if tuple(fields[name].shape) != expected[name]:
                    raise SecliUsageError(f"{STATS_FILE}: {name!r} of site {shorten(repr(site), 60)} has shape "
                                          f"{tuple(fields[name].shape)}, not {expected[name]} as {SUMMARY_FILE} says")
    return arrays


def _ablation(data: Any, sites: set[str]) -> Ablation:
    """The ablation of a summary, its fields typed (the fractions are recomputed, not trusted)."""
    def whole(value: Any, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SecliUsageError(f"{SUMMARY_FILE}: ablation {what} must be a whole number >= 0, got {shorten(value)}")
        return value

    def number(value: Any, what: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SecliUsageError(f"{SUMMARY_FILE}: ablation {what} must be a number, got {shorten(value)}")
        return float(value)

    if not isinstance(data, dict) or not isinstance(data.get("sites"), list):
        raise SecliUsageError(f"{SUMMARY_FILE}: ablation must be an object with a list of 'sites'")
    rows = []
    for row in data["sites"]:
        if not isinstance(row, dict) or row.get("site") not in sites:
            raise SecliUsageError(f"{SUMMARY_FILE}: ablation names no site of the statistics: {shorten(row)}")
        rows.append({"site": row["site"], "correct_mean_gate": whole(row.get("correct_mean_gate"), "correct_mean_gate"),
                     "correct_no_gate": whole(row.get("correct_no_gate"), "correct_no_gate"),
                     "no_gate_value": number(row.get("no_gate_value"), "no_gate_value")})
    images = whole(data.get("images"), "images")
    return Ablation.from_dict({"images": images, "correct": whole(data.get("correct"), "correct"),
                               "scale": number(data.get("scale"), "scale"), "sites": rows})
