"""The memory an excitation pass needs, estimated before it runs (``secli.util.memory``).

The statistics are float64 sums per (scale, site, class): ``count`` (1), ``sum`` and ``sumsq``
(paths x channels each), ``hist`` (paths x bins) and ``above`` (paths); ``--save-raw`` keeps one
float32 gate vector per image, site and scale; and the model's activations for one batch come
on top. ``--bins 10000`` with 1,000 classes and a wide network once meant gigabytes of sums.
"""

from __future__ import annotations

from collections.abc import Sequence

from secli.blocks.registry import find_kind
from secli.networks.models import BuiltModel
from secli.networks.sites import Site, get_module
from secli.util.memory import activation_bytes, check_fits, gigabytes


def site_paths(built: BuiltModel, site: Site) -> int:
    """M for an SK site (its paths), 1 for every other."""
    kind = find_kind(site.kind)
    attr = kind.paths_attr if kind is not None else None
    return int(getattr(get_module(built.model, site.module_path), attr)) if attr else 1


def statistics_bytes(built: BuiltModel, sites: Sequence[Site], classes: int, scales: int, bins: int,
                     images: int, save_raw: bool) -> int:
    """Bytes of the sums (and of the raw gate vectors with ``save_raw``) of a pass."""
    total = 0
    for site in sites:
        paths = site_paths(built, site)
        total += scales * classes * 8 * (1 + 2 * paths * site.channels + paths * bins + paths)
        if save_raw:
            total += scales * images * 4 * paths * site.channels
    return total


def check_pass_memory(built: BuiltModel, sites: Sequence[Site], classes: int, scales: int, bins: int, images: int,
                      save_raw: bool, batch_size: int, image_size: int, device: str) -> None:
    """Refuse (exit 2, with the estimate) a pass whose statistics and activations cannot fit."""
    stats = statistics_bytes(built, sites, classes, scales, bins, images, save_raw)
    check_fits(stats, f"the statistics ({len(sites)} sites x {classes:,} classes x {bins:,} bins"
                      f"{', raw gates of every image' if save_raw else ''})", "cpu",
               hint="use fewer --bins, --classes or --sites" + (", or drop --save-raw" if save_raw else ""))
    activations = activation_bytes(built.model, image_size, batch_size, train=False) or 0
    check_fits(stats + activations, f"the statistics ({gigabytes(stats)}) and a batch's activations "
                                    f"(batch {batch_size}, {image_size} px)", device,
               hint="use a smaller --batch-size or --image-size")
