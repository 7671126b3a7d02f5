"""Bad or unusual input files given to the generation pipelines: one clear message, or the right result."""

from __future__ import annotations

import warnings

import numpy as np
import PIL.Image
import pytest

from aniportrait_lib.data.samples import load_portrait as sample_portrait
from aniportrait_lib.landmarks.extract import LandmarkExtractor
from aniportrait_lib.pipelines.generate import GenerateConfig
from aniportrait_lib.pipelines.motion_sources import reenact_video
from aniportrait_lib.pipelines.portrait import load_portrait
from aniportrait_lib.video_io import write_video

CONFIG = GenerateConfig(width=128, height=128)


@pytest.fixture(scope="module")
def extractor():
    with LandmarkExtractor() as shared:
        yield shared


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    """(512, 512, 3) uint8 RGB sample portrait."""
    return sample_portrait()


@pytest.fixture(scope="module")
def upright(rgb, extractor, tmp_path_factory):
    """The sample portrait saved as an ordinary 8-bit RGB PNG, and its :class:`Portrait`."""
    path = tmp_path_factory.mktemp("upright") / "portrait.png"
    PIL.Image.fromarray(rgb).save(path)
    return load_portrait(path, CONFIG, extractor)


def _pose_centre(pose_image: np.ndarray) -> np.ndarray:
    """(x, y) centre of the drawn landmarks, in fractions of the image."""
    ys, xs = np.nonzero(pose_image.any(axis=2))
    return np.array([xs.mean() / pose_image.shape[1], ys.mean() / pose_image.shape[0]])


def test_16_bit_greyscale_portrait_is_read_like_the_8_bit_one(rgb, extractor, tmp_path):
    grey = np.asarray(PIL.Image.fromarray(rgb).convert("L"))
    PIL.Image.fromarray(grey).save(tmp_path / "grey8.png")
    PIL.Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    assert PIL.Image.open(tmp_path / "grey16.png").mode == "I;16"
    grey8 = load_portrait(tmp_path / "grey8.png", CONFIG, extractor)
    grey16 = load_portrait(tmp_path / "grey16.png", CONFIG, extractor)  # Pillow's convert("RGB") gave white
    assert grey16.image.std() > 20  # a picture, not a white page
    np.testing.assert_allclose(grey16.lmks3d, grey8.lmks3d, atol=1e-4)
    np.testing.assert_allclose(grey16.trans_mat, grey8.trans_mat, atol=1e-4)


@pytest.mark.parametrize("kind", ["palette", "rgba", "exif_rotated"])
def test_other_pixel_formats_read_like_the_plain_file(rgb, extractor, upright, tmp_path, kind):
    picture = PIL.Image.fromarray(rgb)
    path = tmp_path / f"{kind}.png"
    if kind == "palette":
        picture.convert("P", palette=PIL.Image.Palette.ADAPTIVE, colors=256).save(path)
    elif kind == "rgba":
        picture.putalpha(200)
        picture.save(path)
    else:  # stored turned a quarter, with the EXIF tag (6) telling viewers to turn it back
        exif = PIL.Image.Exif()
        exif[0x0112] = 6
        picture.transpose(PIL.Image.Transpose.ROTATE_90).save(path, exif=exif)
    portrait = load_portrait(path, CONFIG, extractor)
    if kind == "palette":  # 256 colours: close, not equal
        assert np.abs(portrait.lmks3d - upright.lmks3d).mean() < 0.05
    else:
        np.testing.assert_array_equal(portrait.image, upright.image)
        np.testing.assert_allclose(portrait.lmks3d, upright.lmks3d, atol=1e-5)


def test_several_faces_keep_the_largest_and_say_how_many(rgb, extractor, tmp_path):
    canvas = np.full((1024, 1024, 3), 40, np.uint8)  # faces ~1/5 of the side: MediaPipe finds all three
    for x, y, side in [(552, 540, 460), (40, 40, 400), (560, 40, 380)]:  # the largest bottom right
        canvas[y : y + side, x : x + side] = np.asarray(PIL.Image.fromarray(rgb).resize((side, side)))
    path = tmp_path / "group.png"
    PIL.Image.fromarray(canvas).save(path)
    with pytest.warns(UserWarning, match=r"^3 faces found in .*group\.png; keeping the largest"):
        portrait = load_portrait(path, GenerateConfig(width=256, height=256), extractor)
    assert (_pose_centre(portrait.pose_image) > 0.55).all()


@pytest.fixture(scope="module")
def lost_face_video(rgb, tmp_path_factory) -> str:
    """A 10-frame 10 fps video: the portrait for 6 frames, then an empty grey picture for 4."""
    face = np.asarray(PIL.Image.fromarray(rgb).resize((128, 128)))
    frames = [face] * 6 + [np.full_like(face, 90)] * 4
    return str(write_video(tmp_path_factory.mktemp("video") / "leaves.mp4", frames, fps=10))


def test_reenactment_warns_when_the_face_is_lost(lost_face_video, upright):
    with pytest.warns(UserWarning, match=r"leaves\.mp4: the face is lost at frame 6; .*6 frames .*of 10"):
        performance, audio = reenact_video(upright, lost_face_video)
    assert performance.n_frames == 6 and audio is None


def test_reenactment_can_refuse_a_lost_face(lost_face_video, upright):
    with pytest.raises(ValueError, match=r"leaves\.mp4: the face is lost at frame 6 of 10"):
        reenact_video(upright, lost_face_video, on_face_lost="error")
    with pytest.raises(ValueError, match="on_face_lost must be 'warn' or 'error'"):
        reenact_video(upright, lost_face_video, on_face_lost="ignore")


def test_reenactment_of_a_video_without_a_face(tmp_path, upright):
    path = write_video(tmp_path / "nobody.mp4", [np.full((128, 128, 3), 90, np.uint8)] * 3, fps=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one message: the error, no warning before it
        with pytest.raises(ValueError, match=r"nobody\.mp4: no face found in any of its 3 frames"):
            reenact_video(upright, path)
