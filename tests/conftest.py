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
