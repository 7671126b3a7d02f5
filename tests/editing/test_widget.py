"""The ipywidgets editor, driven from Python (the browser test drives it from Chromium)."""

import json
from types import SimpleNamespace

import pytest

from aniportrait_lib.editing.controls import CONTROLS
from aniportrait_lib.editing.editor_state import EditorState
from aniportrait_lib.editing.widget import EditorWidget


@pytest.fixture
def editor(portrait, talking, tmp_path):
    state = EditorState(talking, portrait)
    return EditorWidget(state, tmp_path / "edits.json", tmp_path / "edited.mp4")


def test_editor_has_every_control_and_live_previews(editor):
    assert list(editor.sliders) == list(CONTROLS)
    assert editor.frame.max == 5
    assert editor.portrait.value[:4] == b"\x89PNG" and editor.curves.value[:4] == b"\x89PNG"
    before = editor.portrait.value
    editor.sliders["yaw"].value = 12.0
    assert editor.portrait.value != before and editor.state.pending == {"yaw": 12.0}


def test_buttons_key_scrub_and_save(editor, tmp_path):
    editor.sliders["smile"].value = 0.5
    editor.buttons["set keyframe"].click()
    assert "keyed smile at frame 0" in editor.status.value
    editor.frame.value = 3
    assert editor.sliders["smile"].value == 0.5 and editor.state.pending == {}  # held after the last key
    editor.buttons["save edits"].click()
    payload = json.loads((tmp_path / "edits.json").read_text())
    assert payload["tracks"]["smile"]["keys"] == [{"frame": 0, "value": 0.5}]
    editor.frame.value = 0
    editor.buttons["delete keyframe"].click()
    assert editor.state.document.tracks == {} and editor.sliders["smile"].value == 0.0


class BrokenPipeline:
    """Fails as a pipeline can, once it runs (generation reads its VAE's device first)."""

    vae = SimpleNamespace(device="cpu")

    def __call__(self, *args, **kwargs):
        raise RuntimeError("out of memory on the GPU")


def test_render_errors_show_in_the_status_line(portrait, talking, tmp_path):
    state = EditorState(talking, portrait, render_backend="pose2video", pipeline=BrokenPipeline())
    editor = EditorWidget(state, tmp_path / "e.json", tmp_path / "e.mp4")
    editor.buttons["render"].click()
    assert "error" in editor.status.value and "out of memory" in editor.status.value
    assert not (tmp_path / "e.mp4").exists()  # no half-written video
