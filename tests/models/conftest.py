"""Fixtures for the Lmk2Video model tests: the oracle's configs and tiny networks loaded through the kit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models: thread start-up costs more than it saves, and on shared 2-core runners several
    busy-waiting OpenMP threads slow these tests ~8× (measured 91 s vs 11 s). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def oracle_configs(oracle_dir: Path) -> dict:
    return json.loads((oracle_dir / "configs.json").read_text())


@pytest.fixture(scope="session")
def unet_io(oracle_dir: Path) -> dict:
    return torch.load(oracle_dir / "unet_io.pt", weights_only=True)
