"""End-to-end extraction with MediaPipe, and the bad inputs it must reject or survive."""

from __future__ import annotations

import cv2
import imageio.v3 as iio
import numpy as np
import pytest

from aniportrait_lib.landmarks.extract import ExtractorConfig, LandmarkExtractor
from aniportrait_lib.landmarks.face_geometry import estimate_face_geometry
from aniportrait_lib.landmarks.pose import matrix_to_pose


def test_portrait_matches_official(extractor, portrait_path, lmk_oracle):
    face = extractor.detect_file(portrait_path)
    assert face.lmks.shape == (478, 3) and face.lmks3d.shape == (468, 3)
    assert face.trans_mat.shape == (4, 4) and face.bs.shape == (51,) and face.faces.shape == (898, 3)
    assert face.image_size == (512, 512) and face.n_faces_found == 1
    px_error = np.abs(face.lmks[:, :2] - lmk_oracle["lmks"][:, :2]).max() * 512
    euler_error = np.abs(matrix_to_pose(face.trans_mat)[:3] - lmk_oracle["euler_xyz_deg"]).max()
    assert px_error < 1.0, px_error  # measured 0.0074 px (mediapipe 1.2.2 vs 0.10.11)
    assert euler_error < 0.5, euler_error  # measured 0.0014°
    assert np.abs(face.lmks3d - lmk_oracle["lmks3d"]).max() < 0.05  # measured 4e-4
    assert np.abs(face.bs - lmk_oracle["bs"]).max() < 0.01
    np.testing.assert_array_equal(face.faces, lmk_oracle["faces"])


def test_channel_order_greyscale_and_rgba(extractor, portrait_bgr):
    bgr = extractor.detect(portrait_bgr)
    rgb = extractor.detect(portrait_bgr[:, :, ::-1], channel_order="rgb")
    np.testing.assert_allclose(rgb.lmks, bgr.lmks, atol=1e-6)
    bgra = np.dstack([portrait_bgr, np.full(portrait_bgr.shape[:2], 255, np.uint8)])
    np.testing.assert_allclose(extractor.detect(bgra).lmks, bgr.lmks, atol=1e-6)
    grey = extractor.detect(cv2.cvtColor(portrait_bgr, cv2.COLOR_BGR2GRAY))
    assert np.abs(grey.lmks[:, :2] - bgr.lmks[:, :2]).max() * 512 < 5


def test_greyscale_and_rgba_files(extractor, portrait_bgr, tmp_path):
    grey_path, rgba_path = tmp_path / "grey.png", tmp_path / "alpha.png"
    cv2.imwrite(str(grey_path), cv2.cvtColor(portrait_bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(rgba_path), np.dstack([portrait_bgr, np.full((512, 512), 128, np.uint8)]))
    assert extractor.detect_file(grey_path).lmks.shape == (478, 3)
    assert extractor.detect_file(rgba_path).lmks.shape == (478, 3)


@pytest.mark.parametrize("kind", ["blank", "noise"])
def test_no_face_names_file_and_frame(extractor, tmp_path, kind):
    rng = np.random.default_rng(0)
    image = (
        np.zeros((256, 256, 3), np.uint8)
        if kind == "blank"
        else rng.integers(0, 256, (256, 256, 3), np.uint8)
    )
    path = tmp_path / f"{kind}.png"
    cv2.imwrite(str(path), image)
    with pytest.raises(ValueError, match=rf"no face found in .*{kind}\.png frame 0"):
        extractor.detect_file(path)


def test_several_faces_keeps_largest_and_warns(extractor, portrait_bgr):
    small = cv2.resize(portrait_bgr, (384, 384), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((512, 1024, 3), np.uint8)
    canvas[:, :512] = portrait_bgr
    canvas[64:448, 576:960] = small  # (a 256 px face is too small for the detector at this width)
    with pytest.warns(UserWarning, match="2 faces"):
        face = extractor.detect(canvas, where="two.png")
    assert face.n_faces_found == 2
    assert face.lmks[:, 0].max() < 0.5  # the big face is the left half


def test_tiled_portrait_twice(extractor, portrait_bgr):
    with pytest.warns(UserWarning, match="faces found"):
        face = extractor.detect(np.concatenate([portrait_bgr, portrait_bgr], axis=1))
    assert face.n_faces_found == 2


def test_three_faces_are_counted_and_the_largest_kept(extractor, portrait_bgr):
    canvas = np.zeros((1024, 1024, 3), np.uint8)  # a 2x2 grid: faces ~1/5 of the side, above the ~1/8 limit
    for x, y, side in [(16, 16, 480), (528, 40, 420), (40, 528, 440)]:
        small = cv2.resize(portrait_bgr, (side, side), interpolation=cv2.INTER_AREA)
        canvas[y : y + side, x : x + side] = small
    with pytest.warns(UserWarning, match=r"^3 faces found in group\.png frame 0; keeping the largest"):
        face = extractor.detect(canvas, where="group.png frame 0")
    assert face.n_faces_found == 3
    assert face.lmks[:, :2].max() < 0.5  # the top-left face, the largest


def test_small_faces_error_says_why(extractor, portrait_bgr):
    canvas = np.zeros((1024, 1024, 3), np.uint8)
    canvas[100:340, 100:340] = cv2.resize(portrait_bgr, (240, 240), interpolation=cv2.INTER_AREA)
    with pytest.raises(ValueError, match=r"no face found in small\.png .*1/8 of the image's longer side"):
        extractor.detect(canvas, where="small.png")


def test_16_bit_greyscale_file(extractor, portrait_bgr, tmp_path):
    grey = cv2.cvtColor(portrait_bgr, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "grey8.png"), grey)
    cv2.imwrite(str(tmp_path / "grey16.png"), grey.astype(np.uint16) * 257)
    face16 = extractor.detect_file(tmp_path / "grey16.png")
    np.testing.assert_array_equal(face16.lmks, extractor.detect_file(tmp_path / "grey8.png").lmks)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file"), (b"\x89PNG\r\n\x1a\n garbage", "not a decodable image")],
)
def test_empty_and_corrupt_files(extractor, tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        extractor.detect_file(path)
    with pytest.raises(ValueError, match="no such image"):
        extractor.detect_file(tmp_path / "missing.png")


def test_tiny_and_wrong_type_images(extractor):
    with pytest.raises(ValueError, match="smaller than 64 px"):
        extractor.detect(np.zeros((40, 300, 3), np.uint8), where="tiny.png frame 0")
    with pytest.raises(ValueError, match="uint8"):
        extractor.detect(np.zeros((128, 128, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        extractor.detect(np.zeros((128, 128, 2), np.uint8))


def _leaving_frames(portrait_bgr: np.ndarray, n: int = 24, size: int = 256) -> np.ndarray:
    """(n, size, size, 3) RGB: the portrait sliding right until it has left the frame."""
    small = cv2.resize(portrait_bgr, (size, size), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    frames = []
    for shift in np.linspace(0, 1.3 * size, n).astype(int):
        matrix = np.float32([[1, 0, shift], [0, 1, 0]])
        frames.append(cv2.warpAffine(small, matrix, (size, size)))
    return np.stack(frames)


def test_video_where_face_leaves_frame(extractor, portrait_bgr, tmp_path):
    path = tmp_path / "leaving.mp4"
    iio.imwrite(path, _leaving_frames(portrait_bgr), fps=10, codec="libx264", macro_block_size=16)
    video = extractor.detect_video(path)
    n = len(video.found)
    assert n == 24 and video.fps == pytest.approx(10)
    assert video.found[:4].all() and not video.found[-4:].any()
    missing = video.missing_frames
    assert missing == list(range(missing[0], n))  # once gone, it stays gone
    assert np.isnan(video.lmks[missing]).all() and np.isfinite(video.lmks[~video.found]).sum() == 0
    assert video.frame(0).lmks.shape == (478, 3)
    with pytest.raises(ValueError, match=rf"no face found in .*leaving\.mp4 frame {n - 1}"):
        video.frame(n - 1)
    x_centre = np.nanmean(video.lmks[: missing[0], :, 0], axis=1)
    assert np.all(np.diff(x_centre) > 0)  # the face moves right


def test_video_without_any_face_warns_naming_the_file(extractor, tmp_path):
    path = tmp_path / "empty_room.mp4"
    iio.imwrite(path, np.full((6, 128, 128, 3), 90, np.uint8), fps=10, codec="libx264", macro_block_size=16)
    with pytest.warns(UserWarning, match=r"no face found in any of the 6 frames of .*empty_room\.mp4"):
        video = extractor.detect_video(path)
    assert not video.found.any()


def test_video_results_do_not_depend_on_workers(portrait_bgr):
    frames = _leaving_frames(portrait_bgr, n=40)[:8]  # slow slide: the face stays in view
    results = []
    for workers in (1, 2):
        with LandmarkExtractor(ExtractorConfig(workers=workers, block_frames=3)) as extractor:
            results.append(extractor.detect_video(list(frames), fps=10, channel_order="rgb"))
    np.testing.assert_array_equal(results[0].lmks, results[1].lmks)
    assert results[0].lmks3d.shape == (8, 468, 3) and np.isfinite(results[0].lmks3d).all()


def test_video_image_mode_equals_per_frame_detection(portrait_bgr):
    frames = _leaving_frames(portrait_bgr, n=12)[:4]
    with LandmarkExtractor(ExtractorConfig(video_running_mode="image", block_frames=2)) as extractor:
        video = extractor.detect_video(list(frames), fps=10, channel_order="rgb")
        for t, frame in enumerate(frames):
            np.testing.assert_array_equal(video.lmks[t], extractor.detect(frame, "rgb").lmks)


def test_corrupt_and_empty_videos(extractor, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        extractor.detect_video(empty)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="corrupt.mp4"):
        extractor.detect_video(corrupt)


def test_video_frames_of_different_sizes(extractor, portrait_bgr):
    frames = [portrait_bgr, cv2.resize(portrait_bgr, (256, 256))]
    with pytest.raises(ValueError, match="different sizes"):
        extractor.detect_video(frames, fps=25)
    with pytest.raises(ValueError, match="frame 1"):
        extractor.detect_video([portrait_bgr, portrait_bgr[:30]], fps=25)


@pytest.mark.parametrize("case", ["wide", "tall", "rotated"])
def test_geometry_pipeline_matches_mediapipe_matrix(extractor, portrait_bgr, case):
    # MediaPipe returns its own trans_mat; ours, recomputed from its landmarks, must agree (measured ≤ 3e-5)
    if case == "wide":
        image = cv2.copyMakeBorder(portrait_bgr, 0, 0, 100, 60, cv2.BORDER_REFLECT)
    elif case == "tall":
        image = cv2.copyMakeBorder(portrait_bgr, 80, 0, 0, 0, cv2.BORDER_CONSTANT)
    else:
        image = cv2.warpAffine(portrait_bgr, cv2.getRotationMatrix2D((256, 256), 25, 0.8), (512, 512))
    face = extractor.detect(image)
    _, trans_mat = estimate_face_geometry(face.lmks, face.image_size, extractor.canonical)
    assert np.abs(trans_mat - face.trans_mat).max() < 1e-3
