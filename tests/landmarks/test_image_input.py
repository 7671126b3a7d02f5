"""The kit's one image-file reader: every pixel format and orientation a user's portrait may come in."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
from PIL import ImageOps

from aniportrait_lib.data.samples import load_portrait
from aniportrait_lib.landmarks.image_input import read_image, read_rgb_image

T = PIL.Image.Transpose
# EXIF orientation -> how the stored pixels are made from the upright picture (the inverse of the
# transposition a viewer applies, which for 6 and 8 is the other quarter turn)
STORE_FOR_ORIENTATION = {
    2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE,
    6: T.ROTATE_90, 7: T.TRANSVERSE, 8: T.ROTATE_270,
}  # fmt: skip


@pytest.fixture(scope="module")
def upright() -> np.ndarray:
    """(384, 512, 3) uint8 RGB: the sample portrait, not square so that a wrong turn changes the shape."""
    return load_portrait()[64:448]


def test_16_bit_greyscale_is_scaled_not_clipped(upright, tmp_path):
    grey8 = np.asarray(PIL.Image.fromarray(upright).convert("L"))
    path = tmp_path / "grey16.png"
    PIL.Image.fromarray(grey8.astype(np.uint16) * 257).save(path)
    assert PIL.Image.open(path).mode == "I;16"  # really a 16-bit file
    assert np.array_equal(read_image(path), grey8)
    assert np.array_equal(read_rgb_image(path), np.repeat(grey8[:, :, None], 3, axis=2))


def test_palette_rgba_and_greyscale_files(upright, tmp_path):
    picture = PIL.Image.fromarray(upright)
    palette = picture.convert("P", palette=PIL.Image.Palette.ADAPTIVE)
    palette.save(tmp_path / "palette.png")
    assert np.array_equal(read_rgb_image(tmp_path / "palette.png"), np.asarray(palette.convert("RGB")))
    rgba = picture.convert("RGBA")
    rgba.putalpha(PIL.Image.fromarray(np.full(upright.shape[:2], 128, np.uint8)))  # alpha is dropped
    rgba.save(tmp_path / "alpha.png")
    assert np.array_equal(read_rgb_image(tmp_path / "alpha.png"), upright)
    picture.convert("LA").save(tmp_path / "grey_alpha.png")
    grey = np.asarray(picture.convert("L"))
    assert np.array_equal(read_rgb_image(tmp_path / "grey_alpha.png"), np.repeat(grey[:, :, None], 3, axis=2))


@pytest.mark.parametrize("orientation", sorted(STORE_FOR_ORIENTATION))
@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_exif_orientation_is_applied(upright, tmp_path, orientation, suffix):
    stored = PIL.Image.fromarray(upright).transpose(STORE_FOR_ORIENTATION[orientation])
    exif = PIL.Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"turned{suffix}"
    stored.save(path, exif=exif, **({"quality": 95} if suffix == ".jpg" else {}))
    image = read_rgb_image(path)
    assert image.shape == upright.shape
    viewer = np.asarray(ImageOps.exif_transpose(PIL.Image.open(path)).convert("RGB"))  # what a viewer shows
    if suffix == ".png":
        assert np.array_equal(image, upright) and np.array_equal(viewer, upright)
    else:  # JPEG: lossy, and decoders may differ by a level or two
        assert np.abs(image.astype(int) - viewer).mean() < 1.0
        assert np.abs(image.astype(int) - upright).mean() < 3.0


def test_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="missing.png: no such image file"):
        read_rgb_image(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.png: empty file"):
        read_rgb_image(tmp_path / "empty.png")
    (tmp_path / "text.png").write_bytes(b"not an image at all\n" * 10)
    with pytest.raises(ValueError, match="text.png: not a decodable image"):
        read_rgb_image(tmp_path / "text.png")
