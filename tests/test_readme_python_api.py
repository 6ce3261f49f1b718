"""README's "Python API" section runs as written: every ```python block in it, in order, in one
namespace, in a temporary folder (so files the examples write land there)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", _section(README.read_text(encoding="utf-8"), "Python API"), re.S)


def test_the_section_has_examples() -> None:
    assert len(_python_blocks()) >= 3


def test_python_api_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    for number, block in enumerate(_python_blocks(), 1):
        code = compile(block, f"README.md Python API block {number}", "exec")
        exec(code, namespace)  # noqa: S102 - the README's own examples
