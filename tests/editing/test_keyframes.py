import numpy as np
import pytest

from aniportrait_lib.editing.keyframes import Keyframe, Track, interpolate


def test_linear_interpolates_and_holds_outside_the_keys():
    values = interpolate(np.array([2, 6]), np.array([1.0, 3.0]), np.arange(9), "linear")
    np.testing.assert_allclose(values, [1, 1, 1, 1.5, 2, 2.5, 3, 3, 3])


def test_smooth_two_keys_is_smoothstep():
    values = interpolate(np.array([0, 4]), np.array([0.0, 10.0]), np.array([0, 1, 2, 3, 4, 7]), "smooth")
    s = np.array([0, 0.25, 0.5, 0.75, 1.0, 1.0])
    np.testing.assert_allclose(values, 10 * (3 * s**2 - 2 * s**3))


def test_smooth_passes_through_keys_without_overshoot():
    frames, values = np.array([0, 5, 8, 20]), np.array([0.0, 1.0, 1.0, 0.0])
    t = np.linspace(-3, 25, 400)
    curve = interpolate(frames, values, t, "smooth")
    np.testing.assert_allclose(interpolate(frames, values, frames, "smooth"), values)
    assert curve.min() >= 0.0 and curve.max() <= 1.0  # a blink stays within [0, 1]
    rising = interpolate(np.array([0, 3, 10]), np.array([0.0, 2.0, 9.0]), np.linspace(0, 10, 200), "smooth")
    assert np.all(np.diff(rising) >= -1e-12)  # monotone data → monotone curve


def test_smooth_has_continuous_slope_at_the_holds():
    frames, values = np.array([10, 20]), np.array([0.0, 5.0])
    eps = 1e-4
    slope_in = (interpolate(frames, values, np.array([10 + eps]), "smooth")[0] - 0.0) / eps
    slope_out = (5.0 - interpolate(frames, values, np.array([20 - eps]), "smooth")[0]) / eps
    assert abs(slope_in) < 1e-3 and abs(slope_out) < 1e-3


def test_single_key_is_constant():
    track = Track((Keyframe(4, 2.5),))
    np.testing.assert_array_equal(track.evaluate(7), np.full(7, 2.5))


def test_track_editing_and_validation():
    track = Track.from_pairs([(8, 1.0), (2, 0.0)], "linear")
    assert [k.frame for k in track.keys] == [2, 8]
    track = track.with_key(5, 4.0).with_key(8, 2.0)
    assert [(k.frame, k.value) for k in track.keys] == [(2, 0.0), (5, 4.0), (8, 2.0)]
    assert track.key_at(5) == Keyframe(5, 4.0) and track.key_at(6) is None
    assert track.without_key(5).key_at(5) is None
    assert Track((Keyframe(1, 1.0),)).without_key(1) is None
    with pytest.raises(ValueError, match="at least one keyframe"):
        Track(())
    with pytest.raises(ValueError, match="sorted with distinct frames"):
        Track((Keyframe(3, 0.0), Keyframe(1, 0.0)))
    with pytest.raises(ValueError, match="unknown interpolation"):
        Track((Keyframe(1, 0.0),), "cubic")
    with pytest.raises(ValueError, match="frames >= 0"):
        track.with_key(-1, 0.0)
