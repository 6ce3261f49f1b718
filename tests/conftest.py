"""Shared test set-up: the repository root on sys.path, few threads, seeded randomness."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _seeded() -> None:
    import torch

    torch.manual_seed(0)


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(2)


@pytest.fixture
def record_progress(monkeypatch: pytest.MonkeyPatch):
    """Replace ``module.progress_bar`` by a recorder; returns the list of bars the command opened."""
    import contextlib

    def install(module: object) -> list[dict]:
        calls: list[dict] = []

        class Handle:
            def advance(self, n: int = 1) -> None:
                calls[-1]["done"] += n

        @contextlib.contextmanager
        def fake_bar(description, total, enabled=True, unit=""):
            calls.append({"description": description, "total": total, "enabled": enabled, "unit": unit, "done": 0})
            yield Handle()

        monkeypatch.setattr(module, "progress_bar", fake_bar)
        return calls

    return install
