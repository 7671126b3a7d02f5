"""Fixtures for the Lmk2Video model tests: the oracle's configs and tiny networks loaded through the kit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """Every model test runs on one torch thread (tests/conftest.py: ``one_thread``)."""


@pytest.fixture(scope="session")
def oracle_configs(oracle_dir: Path) -> dict:
    return json.loads((oracle_dir / "configs.json").read_text())


@pytest.fixture(scope="session")
def unet_io(oracle_dir: Path) -> dict:
    return torch.load(oracle_dir / "unet_io.pt", weights_only=True)
