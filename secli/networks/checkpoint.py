"""secli checkpoint files: the spec that built a model and its state dict, in one file.

Saving the spec beside the weights means any command can rebuild the exact network (the
injected blocks included) from the file alone. Files are read with ``weights_only=True``, so
a checkpoint can never run code when it is opened.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path
from typing import Any

from secli.util.bounds import check_python_size
from secli.util.errors import SecliError, SecliUsageError, first_line, shorten
from secli.util.memory import available_bytes
from secli.util.outputs import atomic_write
from secli.util.user_files import open_regular, zip_members

FORMAT = "secli-checkpoint"
VERSION = 1


def save_checkpoint(
    path: str | Path,
    spec_dict: dict[str, Any],
    state_dict: dict[str, Any],
    meta: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    import torch

    payload = {
        "format": FORMAT,
        "version": VERSION,
        "spec": spec_dict,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "meta": meta or {},
    }
    return atomic_write(path, lambda handle: torch.save(payload, handle), force)


#: The largest model file read (VGG-19 with SK blocks is about 1 GB); also never more than is free.
MAX_MODEL_FILE_BYTES = 16_000_000_000


def load_torch_file(path: str | Path) -> Any:
    """``torch.load`` with ``weights_only=True``; any failure becomes a one-line error.

    Through ``secli.util.user_files``: a regular file only (a FIFO or a device is refused, not
    read), at most ``MAX_MODEL_FILE_BYTES``, a zip-format PyTorch file (what ``torch.save`` has
    written since PyTorch 1.6; the older format allocates what its header claims before reading
    it) whose members' uncompressed sizes fit in the free memory, checked before decompression.
    """
    import torch

    path = Path(path)
    if not os.path.lexists(path):
        raise SecliError(f"file not found: {path}")
    with open_regular(path, "model file", MAX_MODEL_FILE_BYTES) as handle:
        if not zipfile.is_zipfile(handle):
            raise SecliUsageError(f"cannot read {path}: not a zip-format PyTorch file (torch.save writes one "
                                  "since PyTorch 1.6; older or other files are not read)")
        free = available_bytes("cpu")
        zip_members(handle, f"model file {path}", min(MAX_MODEL_FILE_BYTES, free or MAX_MODEL_FILE_BYTES))
        handle.seek(0)
        return _torch_load(torch, handle, path)


def _torch_load(torch: Any, handle: Any, path: Path) -> Any:
    try:
        return torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch all raise their own types
        reason = first_line(exc)
        if len(reason) > 160:
            reason = reason[:157] + "..."
        raise SecliError(f"cannot read {path}: not a PyTorch file, corrupt or unsafe ({reason})") from None


def is_secli_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's ``spec`` (dict), ``state_dict`` and ``meta``."""
    obj = load_torch_file(path)
    if not is_secli_checkpoint(obj):
        raise SecliError(
            f"{path} is not a secli checkpoint",
            hint="make one with 'secli inject ... --out FILE'; a plain state dict goes to --weights",
        )
    if obj.get("version", 0) > VERSION:
        raise SecliError(f"{path} was written by a newer secli (format version {obj['version']})")
    missing = [key for key in ("spec", "state_dict") if key not in obj]
    if missing:
        raise SecliError(f"{path} is a damaged secli checkpoint (no {missing[0]!r})")

    check_python_size(obj["spec"], f"{path} (spec)")  # before anything walks or formats them
    meta = obj.get("meta") or {}
    check_python_size(meta, f"{path} (meta)")
    check_meta(meta, f"{path} (meta)")
    if not isinstance(obj["state_dict"], dict):
        raise SecliUsageError(f"{path}: 'state_dict' must be a mapping, got {type(obj['state_dict']).__name__}")
    return obj


def check_meta(meta: Any, where: str) -> None:
    """The meta fields other commands use, type-checked (``secli train`` writes them)."""
    if not isinstance(meta, dict):
        raise SecliUsageError(f"{where} must be a mapping, got {type(meta).__name__}")
    classes = meta.get("classes")
    if classes is not None and (not isinstance(classes, list)
                                or not all(isinstance(c, str) and len(c) <= 200 for c in classes)):
        raise SecliUsageError(f"{where}: 'classes' must be a list of names (strings of at most 200 characters), "
                              f"got {shorten(classes)}")
    for key in ("input_size", "resize"):
        value = meta.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096):
            raise SecliUsageError(f"{where}: {key!r} must be a whole number of pixels from 1 to 4096, "
                                  f"got {shorten(value)}")
    for key in ("mean", "std"):
        value = meta.get(key)
        numbers = isinstance(value, list) and len(value) in (1, 3) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        if value is not None and not numbers:
            raise SecliUsageError(f"{where}: {key!r} must be a list of 1 or 3 finite numbers, got {shorten(value)}")
        if key == "std" and numbers and any(v <= 0 for v in value or []):
            raise SecliUsageError(f"{where}: 'std' must be positive, got {shorten(value)}")
    if meta.get("data") is not None and not isinstance(meta["data"], str):
        raise SecliUsageError(f"{where}: 'data' must be a string, got {shorten(meta['data'])}")


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """A plain state dict from a file; unwraps the usual ``{"state_dict": ...}`` containers."""
    obj = load_torch_file(path)
    if is_secli_checkpoint(obj):
        raise SecliError(
            f"{path} is a secli checkpoint, not base weights",
            hint="pass it as the model argument instead of --weights",
        )
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise SecliError(f"{path} holds no state dict")
    return {k.removeprefix("module."): v for k, v in obj.items()}
