"""The lip vertices and the mouth opening."""

from __future__ import annotations

import numpy as np
import pytest

from aniportrait_lib.landmarks.connections import LIP_CHAINS
from aniportrait_lib.landmarks.mouth import LIP_VERTICES, mouth_opening


def test_lip_vertices_are_the_official_lip_chains():
    assert set(LIP_VERTICES) == {v for chain, _colour in LIP_CHAINS for v in chain}
    assert len(LIP_VERTICES) == 40


def test_mouth_opening_of_meshes_and_image_landmarks():
    mesh = np.zeros((2, 468, 3))
    mesh[:, 14] = [[0.0, -0.1, 0.0], [0.0, -0.4, 0.3]]  # lower inner lip below the upper one (vertex 13)
    np.testing.assert_allclose(mouth_opening(mesh), [0.1, 0.5])
    np.testing.assert_allclose(mouth_opening(mesh[0, :, :2]), 0.1)  # one frame of (468, 2) pixels
    with pytest.raises(ValueError, match=r"\(\.\.\., 468, 3\)"):
        mouth_opening(np.zeros((2, 478, 3)))
