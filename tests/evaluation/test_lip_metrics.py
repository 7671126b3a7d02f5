"""Lip vertex error and mouth-opening correlation."""

from __future__ import annotations

import numpy as np
import pytest

from aniportrait_lib.evaluation.lip_metrics import lip_vertex_error, mouth_opening_correlation
from aniportrait_lib.landmarks.mouth import mouth_opening


def test_lip_vertex_error_is_mean_of_per_frame_max():
    target = np.zeros((3, 468, 3))
    prediction = target.copy()
    prediction[0, 13, 1] = 2.0  # lip vertex: counts
    prediction[0, 61, 0] = 1.0  # smaller lip error in the same frame: max wins
    prediction[1, 1, 2] = 5.0  # nose tip: not a lip vertex
    prediction[2, 14] = [3.0, 4.0, 0.0]  # 5.0
    assert lip_vertex_error(prediction, target) == pytest.approx((2.0 + 0.0 + 5.0) / 3)


def test_mouth_opening_correlation():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((1, 468, 3)).repeat(20, axis=0)
    base[:, 14] = base[:, 13] + [0.0, -0.1, 0.0]  # closed mouth: lower lip 1 mm below the upper
    opening = np.linspace(0, 1, 20) ** 2  # opens faster and faster
    truth = base.copy()
    truth[:, 14, 1] -= opening
    scaled = base.copy()
    scaled[:, 14, 1] -= 0.3 * opening  # smaller but in sync
    assert mouth_opening_correlation(scaled, truth) > 0.99
    np.testing.assert_allclose(mouth_opening(truth), 0.1 + opening)
    assert mouth_opening_correlation(truth[::-1], truth) < 0
    assert np.isnan(mouth_opening_correlation(base, truth))  # no motion: undefined


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"\(T, 468, 3\)"):
        lip_vertex_error(np.zeros((2, 478, 3)), np.zeros((2, 478, 3)))
    with pytest.raises(ValueError, match="at least 2 frames"):
        mouth_opening_correlation(np.zeros((1, 468, 3)), np.zeros((1, 468, 3)))
