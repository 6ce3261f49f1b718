"""secli's Python API: one function per command, taking the command's options.

Each function returns a result dataclass whose ``to_dict()`` (``to_json()`` for complexity,
whose JSON is a list of rows) is exactly what the command prints with ``--format json``; the
commands in ``commands/`` only parse their options, call one of these and render the result.

    from secli import api

    result = api.inject("resnet50", block="se", ratio=16)
    result.added                      # parameters the 16 SE blocks add
    api.complexity("resnet18", block="se", input_size=64).to_json()

Long runs take ``progress=callable(done, total, what)`` instead of drawing a bar. Importing this
module imports torch (through ``load_model``); the CLI imports each command's function lazily
instead, so ``secli --help`` stays fast.
"""

from __future__ import annotations

from secli.build.export import ExportResult, export
from secli.build.models import load_model
from secli.build.spec import BlockSpec, ModelSpec
from secli.build.workflow import InjectResult, inject, list_architectures
from secli.complexity.workflow import complexity
from secli.excitation.workflow import ExcitationRun, visualize_excitation
from secli.profiling.workflow import profile
from secli.training.workflow import TrainRun, train

__all__ = [
    "BlockSpec",
    "ExcitationRun",
    "ExportResult",
    "InjectResult",
    "ModelSpec",
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
