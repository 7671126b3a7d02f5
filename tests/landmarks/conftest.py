"""Fixtures for the landmarks tests: the oracle arrays, the oracle portrait and a shared extractor."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from aniportrait_lib.landmarks.extract import ExtractorConfig, LandmarkExtractor


@pytest.fixture(scope="session")
def landmarks_oracle_dir(oracle_dir: Path) -> Path:
    """``oracle/landmarks``: the official MediaPipe 0.10.11 run on the portrait (see its README item 5)."""
    return oracle_dir / "landmarks"


@pytest.fixture(scope="session")
def lmk_oracle(landmarks_oracle_dir: Path) -> dict[str, np.ndarray]:
    """All arrays of ``landmark_oracle.npz``."""
    with np.load(landmarks_oracle_dir / "landmark_oracle.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def portrait_path(landmarks_oracle_dir: Path) -> Path:
    """The 512×512 BGR portrait the oracle was extracted from."""
    return landmarks_oracle_dir / "input_bgr_512.png"


@pytest.fixture(scope="session")
def portrait_bgr(portrait_path: Path) -> np.ndarray:
    """(512, 512, 3) uint8 BGR portrait."""
    return cv2.imread(str(portrait_path))


@pytest.fixture(scope="session")
def extractor():
    """One LandmarkExtractor for the session (model from the kit cache, fetched once if needed)."""
    with LandmarkExtractor(ExtractorConfig(block_frames=16)) as shared:
        yield shared
