"""The edited performance through the Lmk2Video pipeline (kit weights of the quick sizes, random), beside its
warp preview: what reaches the pipeline, what is written, and the editor's "render with Lmk2Video"."""

import copy
import json
from dataclasses import replace

import numpy as np
import pytest

from aniportrait_lib.audio.inference import MotionConfig
from aniportrait_lib.config import GenerateConfig
from aniportrait_lib.editing.edit_document import EditDocument
from aniportrait_lib.editing.editor_state import NO_LMK2VIDEO_WEIGHTS, EditorState
from aniportrait_lib.editing.lmk2video_render import Lmk2VideoRenderer
from aniportrait_lib.editing.widget import EditorWidget
from aniportrait_lib.landmarks.drawing import draw_landmarks
from aniportrait_lib.paths import weights_dir
from aniportrait_lib.pipelines.selection import GenerationModels, run_weights
from aniportrait_lib.plots import LABEL_HEIGHT
from aniportrait_lib.video_io import probe_video, read_frames

pytestmark = pytest.mark.usefixtures("one_thread")

RATE = 16_000


class RecordingPipeline:
    """A pipeline that records the pose images it was asked to render, then renders them."""

    def __init__(self, pipeline) -> None:
        self.pipeline, self.pose_images = pipeline, None

    def __getattr__(self, name):
        return getattr(self.pipeline, name)

    def __call__(self, ref_image, pose_images, *args, **kwargs):
        self.pose_images = np.stack([pose_images[i] for i in range(len(pose_images))])
        return self.pipeline(ref_image, pose_images, *args, **kwargs)


@pytest.fixture(scope="module")
def kit_renderer(tiny_kit_run, portrait):
    """The tiny kit run's weights (quick sizes, 64², face crop 1.9) for the sample portrait, 2 steps."""
    renderer = Lmk2VideoRenderer.from_weights(f"kit:{tiny_kit_run}", portrait, progress_bar=False)
    assert (renderer.config.width, renderer.config.face_crop_scale) == (64, 1.9)  # the run's own settings
    renderer.config = replace(renderer.config, steps=2)  # plumbing, not quality: fewer steps
    return renderer


@pytest.fixture
def edit():
    """A head turn over the 6 frames and a blink at frame 3."""
    return EditDocument().with_key("yaw", 0, 0.0).with_key("yaw", 5, 20.0).with_key("blink", 3, 1.0, "linear")


def test_the_edited_frames_reach_the_pipeline(kit_renderer, portrait, talking, edit, tmp_path):
    state = EditorState(talking, portrait, edit, lmk2video=kit_renderer)
    recorder = RecordingPipeline(kit_renderer.models.pipeline)
    kit_renderer.models.pipeline = recorder
    try:
        result = state.render_lmk2video(tmp_path / "edited.mp4")
    finally:
        kit_renderer.models.pipeline = recorder.pipeline
    edited = kit_renderer.on_portrait(state.edited())
    expected = [draw_landmarks((64, 64), points, normed=False) for points in edited.landmarks_px((64, 64))]
    np.testing.assert_array_equal(recorder.pose_images, np.stack(expected))
    unedited = kit_renderer.on_portrait(talking).landmarks_px((64, 64))
    assert np.abs(edited.landmarks_px((64, 64))[5] - unedited[5]).max() > 3.0  # the turn is in the images
    video, side = probe_video(result.video), probe_video(result.side_by_side)
    assert video.num_frames == side.num_frames == talking.n_frames == len(result.frames)
    assert (video.width, video.height) == result.size == (64, 64)
    assert side.width == 2 * 256  # two panels, each enlarged to 256 px
    assert {"warp preview", "Lmk2Video denoising", "side-by-side video"} <= set(result.seconds)


def test_re_expressed_on_the_face_crop(kit_renderer, talking):
    moved = kit_renderer.on_portrait(talking)
    np.testing.assert_allclose(moved.pose, talking.pose)
    np.testing.assert_allclose(moved.mesh - moved.ref_mesh, talking.mesh - talking.ref_mesh, atol=1e-12)
    assert moved.image_size == (64, 64) and kit_renderer.portrait.image.shape == (64, 64, 3)
    still = kit_renderer.on_portrait(talking.with_arrays(talking.ref_mesh[None], np.zeros((1, 6))))
    lmks = still.landmarks_px()[0]  # the portrait's own face, inside the crop
    assert lmks.min() > 0 and lmks.max() < 64 and np.ptp(lmks[:, 1]) > 20  # a face of ~1/1.9 of the crop


def test_a_part_with_its_audio(kit_renderer, portrait, talking, tmp_path):
    audio = (np.zeros(RATE, np.float32), RATE)
    result = kit_renderer.render(talking, tmp_path / "part.mp4", audio, frames=slice(2, 5))
    assert result.frames == range(2, 5)
    for path in (result.video, result.side_by_side):
        info = probe_video(path)
        assert info.num_frames == 3 and info.audio_duration == pytest.approx(3 / 30, abs=0.03)
    saved = json.loads(result.video.with_suffix(".json").read_text())
    assert saved["frames"] == [2, 5] and saved["generate"]["steps"] == 2
    assert saved["weights"]["weights"].startswith("kit:")
    for frames in (slice(0, 6, 2), slice(4, 2)):
        with pytest.raises(ValueError, match="contiguous"):
            kit_renderer.render(talking, tmp_path / "bad.mp4", frames=frames)
    wider = copy.copy(kit_renderer)
    wider.config = replace(kit_renderer.config, width=96, height=96)
    with pytest.raises(ValueError, match="prepared at 64×64"):
        wider.render(talking, tmp_path / "bad.mp4")
    assert not list(tmp_path.glob("bad*"))


def test_a_renderer_for_another_portrait_is_refused(kit_renderer, portrait, talking):
    other = replace(portrait, image=portrait.image[:, ::-1].copy())
    with pytest.raises(ValueError, match="another portrait"):
        EditorState(talking, other, lmk2video=kit_renderer)


def test_weights_by_profile(tmp_path):
    assert run_weights("gpu", tmp_path) == f"official:{weights_dir()}"
    assert run_weights("quick", tmp_path) == f"kit:{tmp_path}"


# the widget


def test_the_button_is_off_without_weights(portrait, talking, tmp_path):
    editor = EditorWidget(EditorState(talking, portrait), tmp_path / "e.json", tmp_path / "e.mp4")
    button = editor.buttons["render with Lmk2Video"]
    assert button.disabled and button.tooltip == NO_LMK2VIDEO_WEIGHTS
    assert "aniportrait-button-render-with-lmk2video" in button._dom_classes
    assert NO_LMK2VIDEO_WEIGHTS in editor.status.value
    button.click()  # from code a disabled button still fires: the error is shown, nothing is written
    assert "<b>error:</b> no Lmk2Video weights" in editor.status.value
    assert not list(tmp_path.glob("*.mp4"))


def test_the_button_renders_beside_the_warp_preview(portrait, talking, tiny_pose2video_pipeline, tmp_path):
    """Official-style weights: no face crop, the whole portrait resized to the sampling size."""
    config = GenerateConfig(width=128, height=128, steps=1)
    models = GenerationModels("official:tiny", tiny_pose2video_pipeline, None, None, config, MotionConfig())
    renderer = Lmk2VideoRenderer(models, portrait, progress_bar=False)
    state = EditorState(talking, portrait, lmk2video=renderer)
    editor = EditorWidget(state, tmp_path / "e.json", lmk2video_path=tmp_path / "lmk2video.mp4")
    button = editor.buttons["render with Lmk2Video"]
    assert not button.disabled and "official weights, 128×128, 1 steps" in button.tooltip
    editor.sliders["pitch"].value = 10.0
    editor.buttons["set keyframe"].click()
    button.click()
    assert "rendered" in editor.status.value and "left: warp preview, right: Lmk2Video" in editor.status.value
    assert not button.disabled
    assert probe_video(tmp_path / "lmk2video.mp4").num_frames == talking.n_frames
    side = np.stack(list(read_frames(tmp_path / "lmk2video_side_by_side.mp4")))
    assert side.shape[:3] == (talking.n_frames, LABEL_HEIGHT + 256, 2 * 256)  # labels; 128² panels, ×2
