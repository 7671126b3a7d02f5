import json

import numpy as np
import pytest

from aniportrait_lib.data.mini_corpus import CorpusConfig, config_digest
from aniportrait_lib.editing.preview import (
    _as_truth,
    figure_png,
    pose_curves_figure,
    pose_image,
    render_performance,
)
from aniportrait_lib.editing.sources import find_or_make_corpus, mirrored_reference
from aniportrait_lib.landmarks.extract import LandmarkExtractor
from aniportrait_lib.landmarks.performance import Performance
from aniportrait_lib.landmarks.pose import matrix_to_pose


def test_renderer_input_matches_the_performance(portrait, talking):
    truth = _as_truth(talking, portrait)
    np.testing.assert_allclose(truth.pose, talking.pose, atol=1e-4)
    np.testing.assert_allclose(truth.lmks2d, talking.landmarks_px(), atol=1e-3)
    assert truth.jaw.max() > 0.5 and truth.jaw.min() == 0.0


def test_pose_image_and_frames(portrait, talking):
    image = pose_image(talking, 2)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8 and image.any()
    assert pose_image(talking, 2, (128, 96)).shape == (96, 128, 3)
    frames = render_performance(talking.select([0, 2]), portrait)
    assert frames.shape == (2, 256, 256, 3)
    with pytest.raises(ValueError, match="unknown render backend"):
        render_performance(talking, portrait, "nope")


def test_figures_render_to_png(talking):
    fig = pose_curves_figure({"a": talking.pose}, 30.0, frame=2, key_frames=[1, 4])
    assert figure_png(fig)[:4] == b"\x89PNG"


def test_performance_validates_shapes(portrait):
    still = Performance.still(portrait, 3)
    assert still.n_frames == 3 and still.image_size == (256, 256)
    with pytest.raises(ValueError, match="pose must be"):
        Performance(still.mesh, still.pose[:2], still.ref_mesh, still.ref_trans_mat, 30.0, (256, 256))
    with pytest.raises(ValueError, match="mesh must be"):
        Performance(still.mesh[:, :10], still.pose, still.ref_mesh, still.ref_trans_mat, 30.0, (256, 256))


def test_mirrored_reference_flips_the_head_pose(portrait):
    with LandmarkExtractor() as extractor:
        mirrored = mirrored_reference(portrait, extractor)
    np.testing.assert_array_equal(mirrored.image, portrait.image[:, ::-1])
    original, flipped = matrix_to_pose(portrait.trans_mat), matrix_to_pose(mirrored.trans_mat)
    assert abs(flipped[2] + original[2]) < 1.5  # roll changes sign
    assert abs(flipped[3] + original[3]) < 1.0  # so does the horizontal offset


QUICK = CorpusConfig(n_clips=8, heldout_every=4)


def test_find_or_make_corpus_reuses_notebook_01s_corpus(tmp_path):
    earlier = tmp_path / "01_extract_landmarks" / "mini_corpus"
    earlier.mkdir(parents=True)
    payload = {"digest": config_digest(QUICK), "complete": True, "config": {}, "clips": []}
    (earlier / "corpus.json").write_text(json.dumps(payload))
    corpus = find_or_make_corpus(tmp_path, tmp_path / "06", QUICK)
    assert corpus.root == earlier
    with pytest.raises(ValueError, match="needs a CorpusConfig"):
        find_or_make_corpus(tmp_path, tmp_path / "06", "quick")  # a profile's name is not its config
