"""docs/python-api.md runs as written: every ```python block of the page, in order, in one
namespace, in a temporary folder (so files the examples write land there)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def _python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.S | re.M)


def test_the_page_has_examples() -> None:
    assert len(_python_blocks()) >= 3


def test_python_api_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "python_api_docs"}
    for number, block in enumerate(_python_blocks(), 1):
        code = compile(block, f"docs/python-api.md block {number}", "exec")
        exec(code, namespace)  # the page's own examples
