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

from torch import nn

from secli.complexity.count import CostRequest, Progress, analyse, analyse_built
from secli.complexity.modules import DEFAULT_DEPTH
from secli.complexity.results import ComplexityResult
from secli.cost.device_files import resolve
from secli.cost.record import DTYPES
from secli.networks.models import ModelRef, describe_reference, load_model, looks_like_file
from secli.networks.references import check_plain_python_file, parse_model_kwargs
from secli.networks.variants import block_variants, sweep_lists
from secli.util.checks import check_bounded, check_image_size, check_int
from secli.util.envelope import dumps
from secli.util.errors import SecliUsageError
from secli.util.outputs import atomic_write_text, check_writable


def complexity(
    model: ModelRef | None = None,
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
    dtype: str = "fp32",
    roofline: str | None = None,
    roofline_batch: int | None = None,
    out: str | Path | None = None,
    force: bool = False,
    model_kwargs: str | dict[str, Any] | None = None,
    trust_code: bool = False,
    **block_options: Any,
) -> ComplexityResult:
    """Count parameters and FLOPs of ``model`` against its baseline, one row per block variant.

    ``model``: an architecture name (``resnet50``, ``timm:<name>``), a factory (``file.py:build``
    or ``package.module:build``, called with ``model_kwargs``: a mapping, "key=value,..." or a
    YAML file), a ``torch.nn.Module`` (copies are counted; yours is not changed), a file saved by
    ``secli inject --out`` (counted as it is, against its base architecture; one made from a
    factory imports it only with ``trust_code``), or a sweep YAML.
    ``block``: a kind or a comma list of kinds (``"se,eca"``), one row per variant of each (default
    SE, or the spec file's). ``block_options`` (``secli.networks.variants``): ``ratio``,
    ``min_hidden``, ``position``, ``bias``, ``groups``, ``kernel_size`` take one value and override
    ``spec``; sweep lists give one row per value: ``ratios`` ("2,4,8" or [2, 4, 8]), ``positions``,
    ``squeeze``, ``gate``, ``paths``, and ``stages``, where each entry is one row ("2,3" or [2, 3] is
    one row with both stages; a plain string is one row).
    ``spec``: a complexity experiment or a model spec (YAML). ``image_size``: square side
    (default: the architecture's); ``input_size`` is its old name, kept for one release.
    ``flops=False`` skips fvcore (parameters only; not a CLI option). ``progress(done, total,
    what)`` is called as each model is counted.

    The per-stage figures (``--by-stage`` in the CLI) are always computed: ``row.stages``.
    ``by_module=True``: each row's ``modules`` (and ``result.baseline_modules``) hold parameters and
    FLOPs (FC only, all ops) per module down to ``depth`` (default 3; 0 = the model alone), blocks
    at sites marked. ``training_step=True``: ``row.training`` and ``result.baseline_training`` hold
    a training step's forward + backward FLOPs and saved-activation bytes per image.
    A failed FLOP count does not raise here: ``result.flops_error`` holds it and
    ``result.check_flops()`` raises it, so the parameter part can be shown first.
    ``by_stage`` only records in ``inputs`` that the per-stage table was asked for (renderers read it).
    Bytes: every row (and ``result.baseline_cost``) holds each ATen op's bytes read and written
    (``row.cost``; ``to_dict()``'s ``bytes``), recorded in ``dtype`` (``fp32``, or ``bf16``/``fp16``:
    what autocast runs). ``roofline``: a device (``h100``, ``a100``, ... ``secli.cost.devices``;
    ``cpu``, measured now; or a device YAML file) to predict each model's time on, at
    ``roofline_batch`` images (default 1): ``result.roofline`` and each row's ``roofline`` in JSON.
    ``out``: also write ``result.to_dict()`` there as JSON (atomically; an existing file only with
    ``force``), checked before counting so a long sweep is not wasted.
    ``result.to_dict()`` is what ``--format json`` prints (the results envelope).
    """
    if image_size is not None and input_size is not None:
        raise SecliUsageError("input_size is the old name of image_size; give image_size only")
    image_size = image_size if image_size is not None else input_size
    inputs: dict[str, Any] = {key: value for key, value in (
        ("model", describe_reference(model)), ("model_kwargs", model_kwargs), ("block", block), *block_options.items(),
        ("num_classes", num_classes), ("spec", spec), ("image_size", image_size),
    ) if value is not None}
    inputs.update(by_stage=by_stage, by_module=by_module, depth=depth, training_step=training_step, dtype=dtype,
                  roofline=roofline, roofline_batch=roofline_batch)
    if out is not None:  # fail before the slow part, not after it
        check_writable(out, force, reads=[("the model", model), ("the spec", spec)])
    single, lists = sweep_lists(block_options)
    if depth is not None and not by_module:
        raise SecliUsageError("--depth applies to --by-module; add --by-module")
    if depth is not None:
        check_bounded("--depth", depth)
    tree_depth = (DEFAULT_DEPTH if depth is None else depth) if by_module else None
    costs = _cost_request(dtype, roofline, roofline_batch)

    image_size = check_image_size("--image-size", image_size)  # 0 is refused, not read as "the default"
    module = model if isinstance(model, nn.Module) else None
    if isinstance(model, str) and model.endswith((".yaml", ".yml")) and spec is None:
        spec, model = Path(model), None  # a sweep file given where a model was expected
    if isinstance(model, str):
        check_plain_python_file(model)
    if isinstance(model, str) and looks_like_file(model):
        if spec is not None or block is not None or single or lists or num_classes or model_kwargs is not None:
            raise SecliUsageError(f"{model} is a saved model: block, sweep and --spec options apply to "
                                  "architecture names only")
        counted = analyse_built(load_model(model, trust_code=trust_code), image_size, flops=flops, progress=progress,
                                depth=tree_depth, training_step=training_step, costs=costs,
                                base_dir=Path(model).resolve().parent)
        counted.inputs = inputs
        return _saved(counted, out, force)
    if module is not None and (num_classes is not None or model_kwargs is not None):
        raise SecliUsageError("num_classes and model_kwargs apply to model references; a network "
                              "object is counted as it is")

    if model is None and spec is None:
        raise SecliUsageError("name an architecture (e.g. resnet50), a saved model file, or pass --spec FILE.yaml")
    name = "-" if module is not None and spec is None else (model if isinstance(model, str) else None)
    variants = block_variants(name, block if block is not None or spec is not None else "se", spec, block_options,
                              allow_none=True)
    assert variants is not None  # a kind or a spec file was given
    sweep = variants.sweep
    result = analyse(variants.arch, variants.blocks, image_size or sweep.input_size, num_classes or sweep.num_classes,
                     flops=flops, progress=progress, depth=tree_depth, training_step=training_step, costs=costs,
                     model_kwargs={**(sweep.model_kwargs or {}), **(parse_model_kwargs(model_kwargs) or {})},
                     base=module)
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


def _cost_request(dtype: str, roofline: str | None, batch: int | None) -> CostRequest:
    """The bytes pass's settings, checked before anything is built; ``cpu`` is measured here."""
    if dtype not in DTYPES:
        raise SecliUsageError(f"unknown --dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
    if batch is not None and roofline is None:
        raise SecliUsageError("--roofline-batch applies to --roofline; add --roofline DEVICE")
    batch = 1 if batch is None else check_int("--roofline-batch", batch, 1, 65536)
    return CostRequest(dtype=dtype, device=None if roofline is None else resolve(roofline, dtype), batch=batch)
