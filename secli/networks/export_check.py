"""An export checked before it is written: the bytes loaded back as a user would load them (ONNX
in onnxruntime), run at the export's shape and at another batch, height and width, and compared
with the secli model's logits. Which dimensions stay free is found here, by running, not assumed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from secli.networks.export_formats import DIM_NAMES, READERS, Runner
from secli.util.errors import SecliError, describe_exception

if TYPE_CHECKING:
    import torch

#: Exported logits must match the secli model's within these (float32, same ops).
ATOL, RTOL = 1e-4, 1e-4


def other_shapes(example: torch.Tensor, dims: tuple[int, ...], min_input: int) -> dict[str, tuple[int, ...]]:
    """An input per free dimension asked for, differing from ``example`` there alone: batch + 1,
    and a height and a width 32 px larger (larger: every network that ran the example runs it)."""
    n, c, h, w = example.shape
    shapes = {"batch": (n + 1, c, h, w), "height": (n, c, h + 32, w), "width": (n, c, h, w + 32)}
    return {DIM_NAMES[d]: shapes[DIM_NAMES[d]] for d in dims if max(h, w) + 32 >= min_input}


def verify(data: bytes, to: str, model: Any, example: torch.Tensor, reference: torch.Tensor, asked: tuple[int, ...],
            min_input: int) -> tuple[float, list[str], list[str]]:
    """Load ``data`` as a user would and run it: the largest logit difference from the secli
    model's, the dimensions that run other sizes with secli's logits, and the shapes checked."""
    import torch

    try:
        runner: Runner = READERS[to](data)
        with torch.no_grad():
            got = runner(example)
    except Exception as exc:
        raise SecliError(f"the exported {to} file does not load and run "
                         f"({describe_exception(exc, 160)}); nothing written") from None
    diff = _compare(got, reference, to)
    free, shapes = [], ["x".join(map(str, example.shape))]
    for name, shape in other_shapes(example, asked, min_input).items():
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        try:
            with torch.no_grad():
                expected, other = model(x), runner(x)
            diff = max(diff, _compare(other, expected, to))
        except SecliError:
            raise
        except Exception:  # that size does not run: the dimension is fixed
            continue
        free.append(name)
        shapes.append("x".join(map(str, shape)))
    return diff, free, shapes


def _compare(got: Any, expected: torch.Tensor, to: str) -> float:
    import torch

    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        raise SecliError(f"the exported {to} model returns {getattr(got, 'shape', type(got).__name__)}, "
                         f"expected logits of shape {tuple(expected.shape)}; nothing written")
    diff = float((got - expected).abs().max())
    if not torch.allclose(got, expected, atol=ATOL, rtol=RTOL):
        raise SecliError(f"the exported {to} model's logits differ from secli's by up to {diff:.3g}; nothing written")
    return diff
