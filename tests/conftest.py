"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from aniportrait_lib.paths import shared_reference


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference`` (official-code oracle and manifests); skips the test where it is absent."""
    path = shared_reference()
    if path is None:
        pytest.skip(
            "the shared reference folder (../shared/reference) is absent: "
            "official-parity tests run only where it exists (CI, the team's machines)"
        )
    return path


@pytest.fixture(scope="session")
def oracle_dir(reference_dir: Path) -> Path:
    """``../shared/reference/oracle``: tiny official weights with their recorded inputs and outputs."""
    return reference_dir / "oracle"
