"""The library's layers import only downward, and the library never imports the CLI's toolkits.

    secli.api                                   (one function per command)
    secli.complexity | profiling | excitation | training   (analyses: never import each other)
    secli.data                                  (images, preprocessing, synthetic sets)
    secli.build                                 (specs, blocks, registry, sites, models)
    secli.util                                  (errors, outputs, device, distributed)

Read from the source with ``ast``, so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "secli"
LAYER = {"util": 0, "build": 1, "data": 2, "complexity": 3, "profiling": 3, "excitation": 3, "training": 3, "api": 4}
FORBIDDEN = ("typer", "rich", "commands", "click")


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "secli" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


#: ``python -m secli`` runs secli/__main__.py, so the CLI's entry point must live in the library's
#: folder; it is a two-line shim calling ``commands.app.main``, not a library module, and the one
#: file here allowed to import ``commands``.
ENTRY_POINT_SHIM = LIBRARY / "__main__.py"


def _library_files() -> list[Path]:
    return sorted(
        p for p in LIBRARY.rglob("*.py") if (p.name != "__init__.py" or p.parent != LIBRARY) and p != ENTRY_POINT_SHIM
    )


def test_every_library_module_sits_in_a_known_layer() -> None:
    for path in _library_files():
        package = path.relative_to(LIBRARY).parts[0].removesuffix(".py")
        assert package in LAYER, f"{path.relative_to(ROOT)} is in no layer; add it to the map above"


@pytest.mark.parametrize("path", _library_files(), ids=lambda p: str(p.relative_to(LIBRARY)))
def test_imports_point_down(path: Path) -> None:
    own = path.relative_to(LIBRARY).parts[0].removesuffix(".py")
    for module in _imports(path):
        assert module.split(".")[0] not in FORBIDDEN, f"secli/ must not import {module} ({path.name})"
        target = _package_of(module)
        if target is None or target == own or target not in LAYER:
            continue
        assert LAYER[target] < LAYER[own], f"{path.relative_to(ROOT)} imports {module}: not below it"


def test_no_library_module_is_too_long() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _library_files() if (n := len(p.read_text().splitlines())) > 300}
    assert not long, f"modules over 300 lines: {long}"
