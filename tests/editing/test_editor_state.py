"""The editor's logic without widgets: pending values, keyframes, previews, save and render."""

import numpy as np
import pytest

from aniportrait_lib.editing.edit_document import EditDocument, load_edits
from aniportrait_lib.editing.editor_state import EditorState
from aniportrait_lib.pipelines.generate import GenerateConfig
from aniportrait_lib.video_io import probe_video


@pytest.fixture
def state(portrait, talking):
    return EditorState(talking, portrait)


def test_slider_values_preview_before_they_are_keyed(state):
    portrait_before, pose_before = state.preview_portrait(), state.preview_pose_image()
    state.set_value("yaw", 20.0)
    assert state.values()["yaw"] == 20.0 and state.document.tracks == {}
    assert np.abs(state.preview_portrait().astype(int) - portrait_before).mean() > 1.0
    assert not np.array_equal(state.preview_pose_image(), pose_before)
    state.set_frame(2)  # un-keyed values are dropped
    assert state.values()["yaw"] == 0.0
    with pytest.raises(ValueError, match="outside"):
        state.set_value("yaw", 99.0)
    with pytest.raises(ValueError, match="frame 6 is outside"):
        state.set_frame(6)


def test_keyframes_interpolate_between_frames(state):
    state.set_value("yaw", 10.0)
    assert state.set_keyframe() == ["yaw"]
    state.set_frame(4)
    state.set_value("yaw", 30.0)
    state.set_value("blink", 1.0)
    state.set_keyframe(["yaw"])  # blink stays pending only
    assert state.pending == {"blink": 1.0} and state.keys_at_frame() == ["yaw"]
    state.set_frame(2)
    assert 10.0 < state.values()["yaw"] < 30.0
    np.testing.assert_allclose(
        state.edited().pose[:, 1] - state.performance.pose[:, 1], state.document.controls(6)["yaw"]
    )
    state.set_frame(4)
    assert state.delete_keyframe() == ["yaw"] and state.document.tracks["yaw"].key_at(4) is None


def test_preview_matches_the_full_edit(state):
    state.document = EditDocument().with_key("yaw", 0, 0.0).with_key("yaw", 5, 12.0).with_key("smile", 3, 0.8)
    state.set_frame(3)
    one = state.frame_performance()
    full = state.edited().select([3])
    np.testing.assert_allclose(one.mesh, full.mesh, atol=1e-12)
    np.testing.assert_allclose(one.pose, full.pose, atol=1e-12)


def test_save_and_render(state, tmp_path):
    state.set_value("roll", 5.0)
    state.set_keyframe()
    saved = load_edits(state.save(tmp_path / "edits.json"))
    assert saved == state.document
    video = state.render(tmp_path / "edited.mp4")
    info = probe_video(video)
    assert info.num_frames == 6 and (info.width, info.height) == (256, 256)


def test_diffusion_render_backend(portrait, talking, tmp_path, tiny_pose2video_pipeline):
    with pytest.raises(ValueError, match="needs a pipeline"):
        EditorState(talking, portrait, render_backend="pose2video")
    with pytest.raises(ValueError, match="unknown render backend"):
        EditorState(talking, portrait, render_backend="blender")
    fast = GenerateConfig(width=256, height=256, steps=1, fps=talking.fps)
    state = EditorState(
        talking, portrait, render_backend="pose2video", pipeline=tiny_pose2video_pipeline, render_config=fast
    )
    state.set_value("yaw", 10.0)
    state.set_keyframe()
    info = probe_video(state.render(tmp_path / "diffused.mp4"))
    assert info.num_frames == talking.n_frames and (info.width, info.height) == (256, 256)
