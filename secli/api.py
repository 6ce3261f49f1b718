"""secli's Python API: one function per command, taking the command's options.

Each function returns a result dataclass whose ``to_dict()`` is exactly what the command prints
with ``--format json``: the results envelope of ``secli.util.envelope`` (``format``, ``version``,
``command``, ``inputs``, ``results``); the commands in ``commands/`` only parse their options,
call one of these and render the result. This module only gathers them: each lives with its
analysis.

    from secli import api

    result = api.inject("resnet50", block="se", ratio=16)
    result.added                      # parameters the 16 SE blocks add
    api.complexity("resnet18", block="se", image_size=64).to_dict()["results"]["rows"]

Block options are keywords named like ``BlockSpec``'s fields (``block="se", ratio=8``), the same
in every function. Long runs take ``progress=callable(done, total, what)`` instead of drawing a
bar. Importing this module imports torch; the CLI imports each command's function lazily
instead, so ``secli --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

from secli.blocks.options import BlockOptions
from secli.blocks.spec import BlockSpec, ModelSpec
from secli.complexity.count import model_counts
from secli.complexity.workflow import complexity
from secli.excitation.workflow import ExcitationRun, visualize_excitation
from secli.networks.export import ExportResult, export
from secli.networks.models import load_model
from secli.networks.workflow import InjectResult, inject, list_architectures
from secli.profiling.results import ProfileReport, Progress
from secli.profiling.workflow import profile as _profile
from secli.training.workflow import TrainRun, train

__all__ = [
    "BlockOptions",
    "BlockSpec",
    "ExcitationRun",
    "ExportResult",
    "InjectResult",
    "ModelSpec",
    "ProfileReport",
    "Progress",
    "TrainRun",
    "complexity",
    "export",
    "inject",
    "list_architectures",
    "load_model",
    "profile",
    "train",
    "visualize_excitation",
]


def profile(models: Any = None, *, with_complexity: bool = False, **options: Any) -> ProfileReport:
    """``secli.profiling.workflow.profile`` (every option is its), plus ``with_complexity``: count
    each model's parameters and FLOPs (complexity's fvcore count, batch 1, at the run's image
    size) into the same rows as its timings. The one function here that joins two analyses,
    which never import each other: this module is where they meet."""
    return _profile(models, count=model_counts if with_complexity else None, **options)


profile.__doc__ = f"{profile.__doc__}\n\n{_profile.__doc__}"
