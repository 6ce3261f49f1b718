"""The library's layers import only downward, and the library never imports the CLI's toolkits.

    secli.api                                   (one function per command)
    secli.complexity | profiling | excitation | training   (analyses: never import each other)
    secli.cost                                  (bytes and FLOPs per op, devices, roofline:
                                                 complexity and profile share it)
    secli.data                                  (images, preprocessing, synthetic sets)
    secli.networks                              (where blocks go: adapters, sites, injection,
                                                 native attention, models, checkpoints, export)
    secli.blocks                                (what a block is: registry, spec, one file a kind)
    secli.kernels                               (how blocks run fast: fused Functions, fold,
                                                 CPU and Triton kernels, the one dispatch)
    secli.util                                  (errors, outputs, bounds, readers, device, distributed)

Read from the source with ``ast``, so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "secli"
LAYER = {
    "util": 0, "kernels": 1, "blocks": 2, "networks": 3, "data": 4, "cost": 5,
    "complexity": 6, "profiling": 6, "excitation": 6, "training": 6, "api": 7,
}
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


def _runtime_imports(path: Path) -> set[str]:
    """The secli modules ``path`` imports when it runs (imports under ``if TYPE_CHECKING:`` left out);
    ``from package import name`` counts as importing ``package.name`` where that is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for child in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("secli")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("secli"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if _module_path(sub) is not None else node.module)
    return found


def _module_path(module: str) -> Path | None:
    base = ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_no_import_loops() -> None:
    """No chain of top-level imports leads from a library module back to itself (the old
    registry -> blocks -> registry and fused <-> cpu_kernels loops were broken only by imports
    inside functions)."""
    graph = {}
    for path in LIBRARY.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[module] = {m for m in _runtime_imports(path) if m != module}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                loop = [*stack[stack.index(target):], target]
                raise AssertionError("import loop: " + " -> ".join(loop))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
