"""The mini corpus: its pieces (visemes, rig, warp, motion) and the generated folder."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from aniportrait_lib.data.corpus_text import VOICES
from aniportrait_lib.data.face_rig import MOUTH_INNER_UPPER, FaceRig, eye_aperture
from aniportrait_lib.data.head_motion import HeadMotionConfig, blinks, nods
from aniportrait_lib.data.mini_corpus import CorpusConfig, generate_mini_corpus, open_mini_corpus, plan_clips
from aniportrait_lib.data.speech import PhonemeEvent, SpeechRequest, synthesize_many
from aniportrait_lib.data.visemes import mouth_curves, phoneme_shape
from aniportrait_lib.data.warp import warp_image
from aniportrait_lib.landmarks.mouth import mouth_opening

TINY = CorpusConfig(n_clips=3, image_size=192, heldout_every=3)


def test_phoneme_classes():
    assert phoneme_shape("m")[0] < -0.9 and phoneme_shape("b")[0] < -0.9  # lips together
    assert phoneme_shape("'a")[0] > 0.9  # stress mark stripped, open vowel
    assert phoneme_shape("u:")[1] < -0.9 and phoneme_shape("i:")[1] > 0.8  # rounded vs spread
    assert phoneme_shape("_:") == phoneme_shape("_")  # pauses rest
    assert phoneme_shape("A@") == phoneme_shape("A")  # fallback to the first letter


def test_mouth_curves_follow_phonemes():
    events = [PhonemeEvent("_", 0.0), PhonemeEvent("a", 0.2), PhonemeEvent("m", 0.6), PhonemeEvent("_", 0.9)]
    jaw, spread = mouth_curves(events, duration=1.2, fps=30)
    assert jaw.shape == spread.shape == (36,)  # ceil(1.2 * 30)
    assert jaw[12] > 0.8  # 0.4 s: inside the open vowel
    assert jaw[23] < -0.8  # 0.77 s: lips closed for m
    assert np.abs(np.diff(jaw)).max() < 0.8  # blended over several frames: the raw step is 1.75


@pytest.fixture(scope="module")
def rig():
    from aniportrait_lib.data.mini_corpus import build_reference

    reference, _ = build_reference(192)
    return FaceRig(reference.lmks3d)


def test_rig_controls_move_only_their_region(rig):
    ones, zeros = np.ones(1), np.zeros(1)
    neutral = rig.ref_mesh[None]
    opened = neutral + rig.offsets(ones, zeros, np.zeros((1, 2)))
    closed = neutral + rig.offsets(-ones, zeros, np.zeros((1, 2)))
    blinked = neutral + rig.offsets(zeros, zeros, np.ones((1, 2)))
    gap = mouth_opening(neutral)[0]
    assert mouth_opening(opened)[0] == pytest.approx(gap + rig.config.jaw_drop, rel=0.1)
    assert mouth_opening(closed)[0] < 0.15 * gap  # parted lips meet
    assert (
        np.abs(opened[0, list(MOUTH_INNER_UPPER[4:7])] - neutral[0, list(MOUTH_INNER_UPPER[4:7])]).max()
        < 0.05
    )
    assert eye_aperture(opened)[0] == pytest.approx(eye_aperture(neutral)[0], abs=1e-3)  # eyes untouched
    assert eye_aperture(blinked)[0] < 0.15 * eye_aperture(neutral)[0]
    assert mouth_opening(blinked)[0] == pytest.approx(gap, abs=1e-3)  # mouth untouched by a blink


def test_head_motion_signals():
    cfg = HeadMotionConfig()
    nod = nods(90, 30.0, [1.0], cfg)
    assert nod[:30].max() == 0 and nod.max() == pytest.approx(cfg.nod_deg, rel=0.05)
    closure = blinks(300, 30.0, np.random.default_rng(1), cfg)
    assert closure.shape == (300, 2) and closure.max() > 0.9 and closure.min() == 0
    assert np.array_equal(closure[:, 0], closure[:, 1])


def test_warp_identity_and_translation():
    img = np.zeros((64, 64, 3), np.uint8)
    img[20:30, 20:30] = 255
    pts = np.array([[15.0, 15], [35, 15], [35, 35], [15, 35], [25, 25]])
    assert np.array_equal(warp_image(img, pts, pts), img)
    moved = warp_image(img, pts, pts + [6, 0])  # content moves 6 px to the right
    assert moved[25, 32, 0] > 200 and moved[25, 22, 0] < 60


def test_plan_splits_by_sentence():
    plan = plan_clips(CorpusConfig(n_clips=40, heldout_every=5))
    held = {c.text for c in plan if c.split == "heldout"}
    train = {c.text for c in plan if c.split == "train"}
    assert len(held) == 8 and not held & train
    assert plan == plan_clips(CorpusConfig(n_clips=40, heldout_every=5))
    assert plan != plan_clips(CorpusConfig(n_clips=40, heldout_every=5, seed=1))


def test_every_corpus_voice_is_reproducible():
    requests = [SpeechRequest("Bob bought a map.", v) for v in VOICES for _ in range(2)]
    speeches = synthesize_many(requests)
    for a, b in zip(speeches[::2], speeches[1::2], strict=True):
        assert np.array_equal(a.samples, b.samples), a.voice


def _digests(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_mini_corpus(tmp_path_factory.mktemp("corpus"), TINY)


def test_generated_folder_and_truth(corpus):
    assert [c.split for c in corpus.clips] == ["train", "train", "heldout"]
    for clip in corpus.clips:
        truth = corpus.truth(clip.clip_id)
        assert truth.offsets.shape == (clip.n_frames, 468, 3) and truth.pose.shape == (clip.n_frames, 6)
        assert (
            clip.n_frames == int(np.ceil(clip.duration * 30)) or abs(clip.n_frames - clip.duration * 30) < 1.5
        )
        assert corpus.video_path(clip.clip_id).stat().st_size > 0
    assert json.loads((corpus.root / "corpus.json").read_text())["complete"]
    assert open_mini_corpus(corpus.root).clips == corpus.clips


def test_rendered_frames_show_the_truth(corpus):
    """Landmarks re-extracted from the rendered video agree with the stored projection."""
    from aniportrait_lib.landmarks.extract import LandmarkExtractor
    from aniportrait_lib.video_io import read_frames

    clip = corpus.clips[0]
    truth = corpus.truth(clip.clip_id)
    frames = list(read_frames(corpus.video_path(clip.clip_id)))
    assert len(frames) == clip.n_frames
    errors = []
    with LandmarkExtractor() as extractor:
        for t in range(0, len(frames), 8):
            face = extractor.detect(frames[t], "rgb")
            errors.append(np.abs(face.lmks[:468, :2] * 192 - truth.lmks2d[t]).mean())
    assert np.mean(errors) < 1.5


def test_regeneration_is_byte_identical_and_resumes(corpus, tmp_path):
    again = generate_mini_corpus(tmp_path / "again", TINY)
    assert _digests(again.root) == _digests(corpus.root)
    # a clip lost in a kill (its truth file is written last) is the only one redone
    (again.root / "truth" / "clip001.npz").unlink()
    before = (again.root / "clips" / "clip000.mp4").stat().st_mtime_ns
    generate_mini_corpus(again.root, TINY)
    assert (again.root / "clips" / "clip000.mp4").stat().st_mtime_ns == before
    assert _digests(again.root) == _digests(corpus.root)


def test_folder_of_another_config_is_refused(corpus):
    with pytest.raises(ValueError, match="another config"):
        generate_mini_corpus(corpus.root, dataclasses.replace(TINY, seed=5))
    with pytest.raises(ValueError, match="needs a CorpusConfig"):
        generate_mini_corpus(corpus.root, "cpu")  # a profile's name is not its config
