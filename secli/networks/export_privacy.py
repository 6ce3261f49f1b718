"""What an exported file must not say about the machine that wrote it.

A model file travels: to a colleague, a server, a repository. Exporters record where the code
they traced lives (``secli.networks.export_formats`` removes those records); a checkpoint's
meta may name the data folder or a weights file it came from. ``portable`` keeps the names of
such files and drops their folders; ``machine_strings_in`` is the last check before a file is
written, looking for this machine's paths in its bytes.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any


def portable(value: Any) -> Any:
    """``value`` with every absolute path reduced to its file name: the spec's weights file and a
    checkpoint's data folder say what was used without saying where it sat on this machine."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith("~")):
        return Path(value).name
    return value


def machine_strings() -> list[str]:
    """Paths of this machine an exported file must not hold: home, working folder, Python's
    prefixes, the temporary folder (each at least 5 characters long, so ``/`` matches nothing)."""
    folders = [os.path.expanduser("~"), os.getcwd(), sys.prefix, sys.base_prefix]
    found = {f.rstrip("/\\") for f in folders} | {os.path.join(tempfile.gettempdir(), "")}  # "/tmp/", not "/tmp"
    return sorted((f for f in found if len(f) >= 5), key=len, reverse=True)


def machine_strings_in(data: bytes) -> list[str]:
    """Those of ``machine_strings`` found in ``data``: its raw bytes, and every member of it as a
    zip archive (TorchScript and PT2 files are zips whose members may be compressed)."""
    texts = [data]
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                texts += [archive.read(name) for name in archive.namelist()]
        except zipfile.BadZipFile:
            pass
    return [s for s in machine_strings() if any(s.encode() in text for text in texts)]
