"""Scoring a generated talking video: a rendered "perfect" video against a still one and a blank one."""

import math

import numpy as np
import pytest

from aniportrait_lib.data.face_rig import FaceRig
from aniportrait_lib.data.mini_corpus import build_reference
from aniportrait_lib.data.render import ClipTruth, render_frames
from aniportrait_lib.evaluation.audio2lmk_eval import rms_envelope
from aniportrait_lib.evaluation.generation_eval import (
    HeldoutEvaluation,
    TalkingVideoScores,
    heldout_truth,
    mean_psnr,
    score_talking_video,
)
from aniportrait_lib.landmarks.camera import project_points
from aniportrait_lib.landmarks.extract import LandmarkExtractor
from aniportrait_lib.studies.generate_video import (  # notebook 05's reading of the scores
    describe_talking_video,
    log_talking_video_metrics,
    plot_talking_video,
)

pytestmark = pytest.mark.slow
N = 12


@pytest.fixture(scope="module")
def clip():
    """12 frames of the sample portrait at 256 px (the corpus size) opening and closing its mouth while
    nodding, with speech whose loudness follows the mouth only loosely."""
    reference, _ = build_reference(256)
    jaw = 0.5 + 0.5 * np.sin(np.linspace(0, 3 * np.pi, N))
    offsets = FaceRig(reference.lmks3d).offsets(jaw, np.zeros(N), np.zeros((N, 2)))
    pose = np.zeros((N, 6), np.float32)
    pose[:, 0] = np.linspace(-4, 4, N)
    lmks2d = project_points(reference.lmks3d[None] + offsets, reference.trans_mat, pose, (256, 256))
    truth = ClipTruth(offsets, pose, jaw, np.zeros(N), np.zeros((N, 2)), lmks2d.astype(np.float32))
    t = np.arange(int(N / 30 * 16000)) / 16000
    speech = np.sin(2 * np.pi * 180 * t) * (0.2 + np.abs(np.sin(2 * np.pi * 2.7 * t)))
    return reference, truth, render_frames(reference, truth), speech


@pytest.fixture(scope="module")
def extractor():
    with LandmarkExtractor() as extractor:
        yield extractor


def test_a_faithful_video_beats_both_baselines(clip, extractor):
    reference, truth, frames, speech = clip
    mesh = reference.lmks3d[None] + truth.offsets
    scores = score_talking_video(frames, reference.image, truth.lmks2d, mesh, speech, extractor)
    s = scores.summary
    assert s["no_face_fraction"] == 0
    assert s["mouth_corr"] > 0.8 and s["mouth_corr"] > s["mouth_corr_envelope"]
    expected_envelope = np.corrcoef(rms_envelope(speech, N), scores.mouth_truth)[0, 1]
    assert s["mouth_corr_envelope"] == pytest.approx(expected_envelope)
    assert s["landmark_px"] < 0.75 * s["landmark_px_reference"]
    assert scores.landmark_px.shape == scores.mouth_generated.shape == (N,)


def test_the_unchanged_reference_scores_as_its_baseline(clip, extractor):
    reference, truth, _, speech = clip
    still = np.repeat(reference.image[None], N, axis=0)
    mesh = reference.lmks3d[None] + truth.offsets
    s = score_talking_video(still, reference.image, truth.lmks2d, mesh, speech, extractor).summary
    assert math.isnan(s["mouth_corr"])  # a mouth that never moves has no correlation
    assert s["landmark_px"] == pytest.approx(s["landmark_px_reference"])


class _Run:
    def __init__(self):
        self.logged = {}

    def log_metric(self, name, value, **kwargs):
        assert math.isfinite(value)
        self.logged[name] = value
        return value


def test_no_face_anywhere_is_counted_and_logged_as_worst(clip, extractor):
    reference, truth, _, speech = clip
    blank = np.full((N, 256, 256, 3), 128, np.uint8)
    mesh = reference.lmks3d[None] + truth.offsets
    scores = score_talking_video(blank, reference.image, truth.lmks2d, mesh, speech, extractor)
    assert scores.summary["no_face_fraction"] == 1 and math.isnan(scores.summary["landmark_px"])
    assert scores.summary["landmark_px_reference"] > 0 and scores.summary["mouth_corr_envelope"] != 0
    assert "cannot be scored" in describe_talking_video(scores.summary)  # and the baselines are still given
    run = _Run()
    logged = log_talking_video_metrics(run, scores.summary, image_size=256, prefix="x_")
    assert logged["x_landmark_px"] == 256 and logged["x_mouth_corr"] == 0 and run.logged == logged
    with pytest.raises(ValueError, match="differ"):
        score_talking_video(blank[:, :128, :128], reference.image, truth.lmks2d, mesh, speech, extractor)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from aniportrait_lib.data.mini_corpus import CorpusConfig, generate_mini_corpus

    config = CorpusConfig(n_clips=2, image_size=192, heldout_every=2)
    return generate_mini_corpus(tmp_path_factory.mktemp("corpus") / "mini", config, workers=1)


def test_heldout_truth_scores_the_true_frames_as_a_near_perfect_video(corpus, extractor):
    from aniportrait_lib.pipelines.generate import GenerateConfig
    from aniportrait_lib.pipelines.portrait import load_portrait

    clip_id = corpus.split("heldout")[0].clip_id
    truth = heldout_truth(corpus, clip_id, 96, crop_scale=1.9)
    assert truth.frames.shape[1:] == (96, 96, 3) and truth.lmks2d.shape == (len(truth.frames), 468, 2)
    assert len(truth.pose) == len(truth.mesh) == len(truth.frames) and truth.audio_path.is_file()
    config = GenerateConfig(width=96, height=96, face_crop_scale=1.9)
    portrait = load_portrait(corpus.reference().image, config)
    face = truth.lmks2d[0]  # the crop put the face in the middle, about half the frame high
    assert 0.35 < np.ptp(face[:, 1]) / 96 < 0.65 and abs(face[:, 0].mean() - 48) < 10
    s = score_talking_video(
        truth.frames, portrait.image, truth.lmks2d, truth.mesh, truth.samples, extractor
    ).summary
    assert s["no_face_fraction"] == 0 and s["mouth_corr"] > s["mouth_corr_envelope"]
    assert s["landmark_px"] < s["landmark_px_reference"]
    text = describe_talking_video(s)
    assert text.count("**better**") == 2 and "100%" in text


@pytest.mark.slow
def test_the_portrait_moved_by_the_true_motion_lands_on_the_true_landmarks(corpus):
    """What a generation's pose images are drawn from: with a face crop the portrait's face is found in
    the crop at its own resolution (132 px here), not after shrinking it to the 96 px output."""
    from aniportrait_lib.landmarks.performance import Performance
    from aniportrait_lib.pipelines.generate import GenerateConfig
    from aniportrait_lib.pipelines.portrait import load_portrait

    clip_id = corpus.split("heldout")[0].clip_id
    truth = heldout_truth(corpus, clip_id, 96, crop_scale=1.9)
    config = GenerateConfig(width=96, height=96, face_crop_scale=1.9)
    portrait = load_portrait(corpus.reference().image, config)
    performance = Performance.from_reference(portrait, corpus.truth(clip_id).offsets, truth.pose, 30.0)
    error = np.linalg.norm(performance.landmarks_px((96, 96)) - truth.lmks2d, axis=-1).mean()
    assert error < 0.27, error  # found at 96 px: 0.35 px here, 0.47 px on the cpu corpus


def test_mean_psnr_compares_videos_of_any_size(corpus, tmp_path):
    from aniportrait_lib.video_io import VideoWriter

    frames = heldout_truth(corpus, corpus.split("heldout")[0].clip_id, 64).frames[:8]
    for name, images in (("a", frames), ("b", frames[:, ::2, ::2]), ("c", 255 - frames)):
        with VideoWriter(tmp_path / f"{name}.mp4", 30.0) as writer:
            for image in images:
                writer.write(np.ascontiguousarray(image))
    same, half, inverted = (mean_psnr(tmp_path / f"{n}.mp4", tmp_path / "a.mp4") for n in "abc")
    assert same == 100.0 and 18 < half < 100 and inverted < half


def test_the_figure_shows_frames_and_both_curves(clip, extractor):
    import matplotlib.pyplot as plt

    reference, truth, frames, speech = clip
    mesh = reference.lmks3d[None] + truth.offsets
    scores = score_talking_video(frames, reference.image, truth.lmks2d, mesh, speech, extractor)
    fig = plot_talking_video(scores, frames, frames, columns=4)
    assert len(fig.axes) == 2 * 4 + 2 and len(fig.axes[-1].lines) == 2 and len(fig.axes[-2].lines) == 3
    plt.close(fig)


def test_a_heldout_evaluation_averages_its_clips_leaving_out_what_was_not_measurable():
    def scores(corr, px):
        summary = {"mouth_corr": corr, "landmark_px": px, "no_face_fraction": 0.0 if px == px else 1.0}
        empty = np.zeros(0)
        return TalkingVideoScores(summary, empty, empty, empty, empty, empty)

    evaluation = HeldoutEvaluation(
        ["a", "b", "c"], [], [scores(0.2, 1.0), scores(0.6, math.nan), scores(math.nan, math.nan)]
    )
    mean = evaluation.summary()
    assert mean["mouth_corr"] == pytest.approx(0.4) and mean["landmark_px"] == pytest.approx(1.0)
    assert mean["no_face_fraction"] == pytest.approx(2 / 3)
    table = evaluation.table()
    assert list(table.index) == ["a", "b", "c", "mean"] and table.loc["b", "mouth_corr"] == 0.6
    single = HeldoutEvaluation(["a"], [], [scores(math.nan, math.nan)]).summary()
    assert math.isnan(single["mouth_corr"]) and math.isnan(single["landmark_px"])


def test_finite_correlation_uses_the_entries_finite_in_both():
    import math

    import numpy as np

    from aniportrait_lib.evaluation.generation_eval import finite_correlation

    a = np.array([0.0, 1.0, np.nan, 2.0, 3.0, 10.0])
    b = np.array([0.0, 2.0, 5.0, 4.0, 6.0, np.nan])
    assert abs(finite_correlation(a, b) - 1.0) < 1e-12  # the 4 points finite in both lie on a line
    assert finite_correlation(a, -b) < -0.999
    assert math.isnan(finite_correlation(np.ones(5), np.arange(5.0)))  # constant: undefined
    assert math.isnan(finite_correlation(np.array([1.0, 2.0, np.nan]), np.array([1.0, 2.0, 3.0])))  # < 3
