"""CSIM: ArcFace preprocessing and alignment with known answers, the file checks, and the whole path through
MediaPipe with a random-weight stand-in in the real ONNX format."""

import cv2
import numpy as np
import pytest
from standins_faces import write_arcface_standin

from aniportrait_lib.data.samples import load_portrait
from aniportrait_lib.evaluation.face_crops import (
    ARCFACE_TEMPLATE,
    align_to_arcface,
    arcface_five_points,
    similarity_matrix,
)
from aniportrait_lib.evaluation.identity import arcface_blob, arcface_embeddings, csim, load_arcface
from aniportrait_lib.landmarks.extract import LandmarkExtractor


@pytest.fixture(scope="module")
def arcface_file(tmp_path_factory):
    return write_arcface_standin(tmp_path_factory.mktemp("metrics") / "w600k_r50.onnx")


@pytest.fixture(scope="module")
def extractor():
    with LandmarkExtractor() as extractor:
        yield extractor


def test_blob_is_rgb_scaled_to_minus_one_one():
    crop = np.zeros((1, 112, 112, 3), np.uint8)
    crop[..., 0] = 255  # red stays in channel 0: no BGR swap of RGB input
    blob = arcface_blob(crop)
    assert blob.shape == (1, 3, 112, 112) and blob.dtype == np.float32
    assert np.all(blob[0, 0] == 1.0) and np.all(blob[0, 1:] == -1.0)


def test_alignment_puts_the_five_points_on_the_template():
    # points = template rotated by 20 degrees, scaled 2.5x and moved: the fit must undo exactly that
    angle = np.deg2rad(20)
    rotation = 2.5 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = ARCFACE_TEMPLATE @ rotation.T + np.array([140.0, 90.0])
    matrix = similarity_matrix(points, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(points @ matrix[:, :2].T + matrix[:, 2], ARCFACE_TEMPLATE, atol=1e-9)
    image = np.zeros((400, 400, 3), np.uint8)
    x, y = np.round(points[2]).astype(int)
    image[y - 2 : y + 3, x - 2 : x + 3] = 255  # a bright spot on the "nose"
    crop = align_to_arcface(image, points)
    peak = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    assert np.hypot(peak[1] - ARCFACE_TEMPLATE[2, 0], peak[0] - ARCFACE_TEMPLATE[2, 1]) < 2


def test_mediapipe_five_points_are_in_template_order(extractor):
    face = extractor.detect(load_portrait(), "rgb")
    points = arcface_five_points(face.lmks[:, :2] * 512)
    assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]  # left before right in the image
    assert points[0, 1] < points[2, 1] < points[3, 1]  # eyes above the nose above the mouth


def test_embeddings_are_unit_length_and_batches_agree(arcface_file):
    session = load_arcface(arcface_file)
    crops = np.random.default_rng(0).integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    together = arcface_embeddings(session, crops, batch_size=32)
    one_by_one = arcface_embeddings(session, crops, batch_size=2)
    assert together.shape == (5, 512)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    fixed = load_arcface(write_arcface_standin(arcface_file.with_name("fixed.onnx"), batch=2))
    assert fixed.get_inputs()[0].shape[0] == 2  # fed two at a time, the fifth crop padded
    np.testing.assert_allclose(arcface_embeddings(fixed, crops), together, atol=1e-5)


def test_csim_of_the_portrait_with_itself_is_one_and_another_face_scores_lower(arcface_file, extractor):
    portrait = load_portrait()
    video = np.stack([portrait, portrait])
    assert csim([video], [portrait], arcface_file, extractor) == pytest.approx(1.0, abs=1e-5)
    inverted = np.stack([255 - portrait] * 2)  # same landmarks' geometry, other pixels
    other = csim([inverted], [portrait], arcface_file, extractor)
    assert other < 0.999


def test_wrong_files_are_refused_with_their_name(tmp_path):
    missing = tmp_path / "w600k_r50.onnx"
    with pytest.raises(ValueError, match="w600k_r50.onnx: ArcFace weights file missing"):
        load_arcface(missing)
    missing.write_bytes(b"not a network")
    with pytest.raises(ValueError, match="w600k_r50.onnx: not a readable ONNX network"):
        load_arcface(missing)


def test_a_network_with_another_interface_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "not_arcface",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 224, 224])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "w600k_r50.onnx"
    onnx.save(model, path)
    with pytest.raises(ValueError, match="w600k_r50.onnx: not the ArcFace network"):
        load_arcface(path)


def test_a_reference_without_a_face_is_named(arcface_file, extractor):
    blank = np.full((256, 256, 3), 128, np.uint8)
    with pytest.raises(ValueError, match="csim video 0 reference image"):
        csim([np.stack([blank])], [cv2.GaussianBlur(blank, (3, 3), 0)], arcface_file, extractor)
