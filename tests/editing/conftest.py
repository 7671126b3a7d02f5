"""Fixtures for the editing tests: the sample portrait with its landmarks, and small performances."""

from __future__ import annotations

import numpy as np
import pytest

from aniportrait_lib.data.face_rig import FaceRig
from aniportrait_lib.data.mini_corpus import build_reference
from aniportrait_lib.landmarks.performance import Performance


@pytest.fixture(scope="session")
def portrait():
    """The sample portrait at 256 px with MediaPipe's mesh and matrix (a corpus ``Reference``)."""
    reference, _ = build_reference(256)
    return reference


@pytest.fixture(scope="session")
def talking(portrait) -> Performance:
    """6 frames of the portrait talking (rig jaw / spread motion, small head sway)."""
    rig = FaceRig(portrait.lmks3d)
    jaw = np.array([0.0, 0.4, 0.9, 0.6, 0.2, -0.3])
    spread = np.array([0.0, 0.3, -0.2, 0.5, 0.1, 0.0])
    offsets = rig.offsets(jaw, spread, np.zeros((6, 2)))
    pose = np.zeros((6, 6))
    pose[:, 0] = np.linspace(-2.0, 2.0, 6)
    pose[:, 2] = np.linspace(1.0, -1.0, 6)
    return Performance.from_reference(portrait, offsets, pose, fps=30.0)
