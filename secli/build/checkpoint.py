"""secli checkpoint files: the spec that built a model and its state dict, in one file.

Saving the spec beside the weights means any command can rebuild the exact network (the
injected blocks included) from the file alone. Files are read with ``weights_only=True``, so
a checkpoint can never run code when it is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from secli.util.errors import SecliError, first_line
from secli.util.outputs import atomic_write

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


def load_torch_file(path: str | Path) -> Any:
    """``torch.load`` with ``weights_only=True``; any failure becomes a one-line error."""
    import torch

    path = Path(path)
    if not path.exists():
        raise SecliError(f"file not found: {path}")
    if not path.is_file():
        raise SecliError(f"not a file: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
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
    return obj


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
