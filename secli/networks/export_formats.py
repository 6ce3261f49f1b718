"""How each export format is written and read back: TorchScript, PT2 and ONNX bytes.

Every writer returns the file's bytes (nothing touches the disk here) with what the exporting
machine would otherwise leave in them removed: exporters record where the Python code they
traced lives, and a file meant for a colleague must not carry the sender's directory layout.

- TorchScript keeps a ``.debug_pkl`` record per module (source ranges with absolute file
  names); the archive is copied record by record without them (they serve error messages only).
- PT2 (``torch.export``) keeps each node's ``stack_trace``: dropped from the node metadata
  before saving.
- ONNX (torch's dynamo exporter) copies those stack traces into each node's
  ``pkg.torch.onnx.stack_trace`` property: dropped; the other properties (module names, class
  names) say what a node came from without saying where the code lives.

Every reader returns a callable that runs the file as a user would (``torch.jit.load``,
``torch.export.load(f).module()``, an onnxruntime session), for ``secli.networks.export`` to
compare with secli's logits before anything is written.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from secli.util.errors import SecliError

if TYPE_CHECKING:
    import torch
    from torch import nn

#: The ONNX opset written: 18 runs in onnxruntime >= 1.14 and in most other runtimes of 2023 on.
OPSET = 18
#: What ``--to onnx`` needs besides torch: the writer (torch's dynamo exporter uses onnxscript),
#: the format and the runtime that checks the file.
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
#: The dimensions of an (N, C, H, W) input that an export may leave free, by index.
DIM_NAMES = {0: "batch", 2: "height", 3: "width"}

Runner = Callable[["torch.Tensor"], Any]


def require_onnx() -> None:
    """Refuse ``--to onnx`` clearly, before any work, where its packages are missing."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise SecliError(f"--to onnx needs {', '.join(missing)} (not installed)", hint="pip install 'secli[onnx]'")


@contextmanager
def _quiet() -> Iterator[None]:
    """Exporters' deprecation notes and tracer warnings are about torch, not about this model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\..*")
        yield


def _dynamic_shapes(dims: tuple[int, ...]) -> tuple[dict[int, Any]] | None:
    from torch.export import Dim

    return (dict.fromkeys(dims, Dim.AUTO),) if dims else None


@contextmanager
def _size_oblivious(dims: tuple[int, ...]) -> Iterator[None]:
    """torch.export fixes a dimension whose size is 1 somewhere in the graph (ResNet's last
    feature map at 32 px is 1x1, so the height would be capped at 32); size-oblivious reasoning
    keeps it free. A private torch setting: where this torch lacks it, nothing changes, and the
    check after export finds which sizes run either way."""
    try:
        from torch.fx.experimental import _config

        patch = _config.patch(backed_size_oblivious=True) if dims else None  # type: ignore[attr-defined]
    except (ImportError, AttributeError):
        patch = None
    if patch is None:
        yield
    else:
        with patch:
            yield


# ----------------------------------------------------------------------------- TorchScript


def torchscript_bytes(model: nn.Module, example: torch.Tensor, extra: dict[str, str], dims: tuple[int, ...]) -> bytes:
    """``torch.jit.trace`` + ``torch.jit.save``, without the debug records. A trace records the
    ops run, not the sizes, so ``dims`` is not asked for: the caller checks which dimensions run."""
    import torch

    buffer = io.BytesIO()
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, buffer, _extra_files=extra)
    return _without_records(buffer.getvalue(), ".debug_pkl")


def _without_records(data: bytes, suffix: str) -> bytes:
    """A torch archive copied record by record, leaving out those whose name ends in ``suffix``
    (torch's own reader and writer, so the records stay aligned as torch expects)."""
    import torch

    reader = torch._C.PyTorchFileReader(io.BytesIO(data))
    out = io.BytesIO()
    writer = torch._C.PyTorchFileWriter(out)
    for name in reader.get_all_records():
        if not name.endswith(suffix):
            record = reader.get_record(name)
            writer.write_record(name, record, len(record))
    writer.write_end_of_file()
    del writer
    return out.getvalue()


def torchscript_runner(data: bytes) -> Runner:
    import torch

    with _quiet():  # torch.jit.load's FutureWarning: the user chose TorchScript
        return torch.jit.load(io.BytesIO(data))


# ----------------------------------------------------------------------------- PT2


def pt2_bytes(model: nn.Module, example: torch.Tensor, extra: dict[str, str], dims: tuple[int, ...]) -> bytes:
    """``torch.export.export`` with ``dims`` free (``Dim.AUTO``: torch keeps a dimension fixed
    where the code needs it so) + ``torch.export.save``, without the nodes' stack traces."""
    import torch

    buffer = io.BytesIO()
    with _quiet(), torch.no_grad(), _size_oblivious(dims):
        program = torch.export.export(model, (example,), dynamic_shapes=_dynamic_shapes(dims))
        for module in program.graph_module.modules():
            if isinstance(module, torch.fx.GraphModule):
                for node in module.graph.nodes:
                    node.meta.pop("stack_trace", None)
        torch.export.save(program, buffer, extra_files=extra)
    return buffer.getvalue()


def pt2_runner(data: bytes) -> Runner:
    import torch

    with _quiet():
        return torch.export.load(io.BytesIO(data)).module()


# ----------------------------------------------------------------------------- ONNX


def onnx_bytes(model: nn.Module, example: torch.Tensor, extra: dict[str, str], dims: tuple[int, ...]) -> bytes:
    """torch's ONNX exporter (``dynamo=True``, opset ``OPSET``) with ``dims`` free, the nodes'
    stack traces dropped and ``extra`` stored as the model's metadata properties."""
    import torch

    with _quiet(), torch.no_grad(), _size_oblivious(dims):
        program = torch.onnx.export(model, (example,), dynamo=True, opset_version=OPSET, input_names=["images"],
                                    output_names=["logits"], verbose=False, dynamic_shapes=_dynamic_shapes(dims))
    if program is None:
        raise SecliError("torch.onnx.export returned no program")
    proto = program.model_proto
    _drop_stack_traces(proto.graph)
    for function in proto.functions:
        _drop_node_traces(function.node)
    proto.doc_string = ""
    del proto.metadata_props[:]
    for key, value in extra.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return bytes(proto.SerializeToString())


def _drop_stack_traces(graph: Any) -> None:
    _drop_node_traces(graph.node)


def _drop_node_traces(nodes: Any) -> None:
    """Stack-trace properties of ``nodes`` and of the graphs nested in their attributes."""
    for node in nodes:
        kept = [(p.key, p.value) for p in node.metadata_props if "stack_trace" not in p.key]
        del node.metadata_props[:]
        for key, value in kept:
            entry = node.metadata_props.add()
            entry.key, entry.value = key, value
        node.doc_string = ""
        for attribute in node.attribute:
            if attribute.HasField("g"):
                _drop_stack_traces(attribute.g)
            for graph in attribute.graphs:
                _drop_stack_traces(graph)


def onnx_runner(data: bytes) -> Runner:
    """An onnxruntime session on the CPU, called like a module: tensor in, tensor of logits out."""
    import onnxruntime
    import torch

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: a model's own warnings are not this run's
    session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {name: x.detach().cpu().numpy()})[0])

    return run


# ----------------------------------------------------------------------------- by format

WRITERS: dict[str, Callable[[nn.Module, torch.Tensor, dict[str, str], tuple[int, ...]], bytes]] = {
    "torchscript": torchscript_bytes, "pt2": pt2_bytes, "onnx": onnx_bytes,
}
READERS: dict[str, Callable[[bytes], Runner]] = {"torchscript": torchscript_runner, "pt2": pt2_runner,
                                                 "onnx": onnx_runner}
