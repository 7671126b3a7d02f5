"""Every training test runs on one torch thread (tests/conftest.py: ``one_thread``)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """Module scope and autouse, so the thread count is set before the modules' own fixtures train."""
