"""The reference portrait at a kit model's small size, whole or face-cropped as kit models are trained."""

import numpy as np
import pytest

from aniportrait_lib.data.samples import load_portrait as sample_portrait
from aniportrait_lib.pipelines.generate import GenerateConfig
from aniportrait_lib.pipelines.portrait import load_portrait


def _face_height(pose_image: np.ndarray) -> float:
    rows = np.flatnonzero(pose_image.any(axis=(1, 2)))
    return (rows[-1] - rows[0]) / pose_image.shape[0]


@pytest.mark.slow
def test_the_face_crop_enlarges_the_face_as_in_training():
    image = sample_portrait()
    whole = load_portrait(image, GenerateConfig(width=64, height=64))
    assert whole.image.shape == (64, 64, 3) and whole.pose_image.shape == (64, 64, 3)
    assert np.isfinite(whole.lmks3d).all()
    cropped = load_portrait(image, GenerateConfig(width=64, height=64, face_crop_scale=1.9))
    assert cropped.image.shape == (64, 64, 3)
    assert 0.4 < _face_height(cropped.pose_image) < 0.65  # ~1/1.9 of the frame, as in training
    assert _face_height(cropped.pose_image) > 1.2 * _face_height(whole.pose_image)
    tiny = load_portrait(image, GenerateConfig(width=48, height=48, face_crop_scale=1.9))  # < MediaPipe's 64
    assert tiny.image.shape == (48, 48, 3) and np.abs(tiny.lmks3d - cropped.lmks3d).mean() < 0.3


@pytest.mark.slow
def test_no_face_is_an_error_naming_the_file(tmp_path):
    import PIL.Image

    PIL.Image.fromarray(np.full((128, 128, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    for crop in (None, 1.9):
        with pytest.raises(ValueError, match="no face found in .*wall.png"):
            load_portrait(tmp_path / "wall.png", GenerateConfig(width=64, height=64, face_crop_scale=crop))
