"""``complexity()``: the whole ``secli complexity`` run as one Python call.

Why a workflow layer: the CLI and a notebook must get the same numbers from the same options,
so everything between parsing and rendering lives here: telling a saved model from an
architecture or a sweep file, laying the options over a sweep file, counting, reporting
progress through a plain callback.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from secli.complexity.count import Progress, analyse, analyse_built
from secli.complexity.modules import DEFAULT_DEPTH
from secli.complexity.results import ComplexityResult
from secli.networks.models import load_model, looks_like_file
from secli.networks.variants import block_variants, sweep_lists
from secli.util.checks import check_bounded, check_image_size
from secli.util.envelope import dumps
from secli.util.errors import SecliUsageError
from secli.util.outputs import atomic_write_text, check_writable


def complexity(
    model: str | None = None,
    *,
    block: str | Sequence[str] | None = None,
    num_classes: int | None = None,
    spec: str | Path | None = None,
    image_size: int | None = None,
    input_size: int | None = None,
    flops: bool = True,
    progress: Progress | None = None,
    by_module: bool = False,
    depth: int | None = None,
    training_step: bool = False,
    by_stage: bool = False,
    out: str | Path | None = None,
    force: bool = False,
    **block_options: Any,
) -> ComplexityResult:
    """Count parameters and FLOPs of ``model`` against its baseline, one row per block variant.

    ``model``: an architecture name (``resnet50``, ``timm:<name>``), a file saved by
    ``secli inject --out`` (counted as it is, against its base architecture), or a sweep YAML.
    ``block``: a kind or a comma list of kinds (``"se,eca"``), one row per variant of each (default
    SE, or the spec file's). ``block_options`` (``secli.networks.variants``): ``ratio``,
    ``min_hidden``, ``position``, ``bias``, ``groups``, ``kernel_size`` take one value and override
    ``spec``; sweep lists give one row per value: ``ratios`` ("2,4,8" or [2, 4, 8]), ``positions``,
    ``squeeze``, ``gate``, ``paths``, and ``stages``, where each entry is one row ("2,3" or [2, 3] is
    one row with both stages; a plain string is one row).
    ``spec``: a complexity experiment or a model spec (YAML). ``image_size``: square side
    (default: the architecture's); ``input_size`` is its old name, kept for one release. ``flops=False`` skips fvcore (parameters only; not a CLI
    option). ``progress(done, total, what)`` is called as each model is counted.

    The per-stage figures (``--by-stage`` in the CLI) are always computed: ``row.stages``.
    ``by_module=True``: each row's ``modules`` (and ``result.baseline_modules``) hold parameters and
    FLOPs (FC only, all ops) per module down to ``depth`` (default 3; 0 = the model alone), blocks
    at sites marked. ``training_step=True``: ``row.training`` and ``result.baseline_training`` hold
    a training step's forward + backward FLOPs and saved-activation bytes per image.
    A failed FLOP count does not raise here: ``result.flops_error`` holds it and
    ``result.check_flops()`` raises it, so the parameter part can be shown first.
    ``by_stage`` only records in ``inputs`` that the per-stage table was asked for (renderers read it).
    ``out``: also write ``result.to_dict()`` there as JSON (atomically; an existing file only with
    ``force``), checked before counting so a long sweep is not wasted.
    ``result.to_dict()`` is what ``--format json`` prints (the results envelope).
    """
    if image_size is not None and input_size is not None:
        raise SecliUsageError("input_size is the old name of image_size; give image_size only")
    image_size = image_size if image_size is not None else input_size
    inputs: dict[str, Any] = {key: value for key, value in (
        ("model", model), ("block", block), *block_options.items(), ("num_classes", num_classes), ("spec", spec),
        ("image_size", image_size),
    ) if value is not None}
    inputs.update(by_stage=by_stage, by_module=by_module, depth=depth, training_step=training_step)
    if out is not None:  # fail before the slow part, not after it
        check_writable(out, force, reads=[("the model", model), ("the spec", spec)])
    single, lists = sweep_lists(block_options)
    if depth is not None and not by_module:
        raise SecliUsageError("--depth applies to --by-module; add --by-module")
    if depth is not None:
        check_bounded("--depth", depth)
    tree_depth = (DEFAULT_DEPTH if depth is None else depth) if by_module else None

    image_size = check_image_size("--image-size", image_size)  # 0 is refused, not read as "the default"
    if model is not None and model.endswith((".yaml", ".yml")) and spec is None:
        spec, model = Path(model), None  # a sweep file given where a model was expected
    if model is not None and looks_like_file(model):
        if spec is not None or block is not None or single or lists or num_classes:
            raise SecliUsageError(f"{model} is a saved model: block, sweep and --spec options apply to architecture names only")
        counted = _count_file(model, image_size, flops, progress, tree_depth, training_step)
        counted.inputs = inputs
        return _saved(counted, out, force)

    if model is None and spec is None:
        raise SecliUsageError("name an architecture (e.g. resnet50), a saved model file, or pass --spec FILE.yaml")
    variants = block_variants(model, block if block is not None or spec is not None else "se", spec, block_options,
                              allow_none=True)
    assert variants is not None  # a kind or a spec file was given
    sweep = variants.sweep
    result = analyse(variants.arch, variants.blocks, image_size or sweep.input_size, num_classes or sweep.num_classes,
                     flops=flops, progress=progress, depth=tree_depth, training_step=training_step)
    result.title = sweep.title
    result.inputs = inputs
    weights = sweep.weights_warning("parameter counts and FLOPs")
    if weights is not None:
        result.warnings.append(weights)
    return _saved(result, out, force)


def _saved(result: ComplexityResult, out: str | Path | None, force: bool) -> ComplexityResult:
    """Write the results file, if asked; the result is returned either way."""
    if out is not None:
        atomic_write_text(out, dumps(result.to_dict()) + "\n", force=force)
    return result


def _count_file(
    path: str, input_size: int | None, flops: bool, progress: Progress | None, depth: int | None, training_step: bool
) -> ComplexityResult:
    return analyse_built(load_model(path), input_size, flops=flops, progress=progress, depth=depth, training_step=training_step)
