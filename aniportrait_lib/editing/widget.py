"""The interactive editor in JupyterLab: ipywidgets around an :class:`~.editor_state.EditorState`.

Layout: one slider per control (:mod:`.controls`) and a frame scrubber on the left; the current
frame's pose image and warped portrait on the right; the rotation curves (original vs edited,
keys dotted, current frame solid) below; buttons "set keyframe", "delete keyframe", "save edits",
"render" (the state's render backend, the warp stand-in by default) and "render with Lmk2Video" (the
diffusion model beside the warp preview, :mod:`.lmk2video_render`; disabled, with a tooltip saying why,
when the state has no weights), a status line, an area for the diffusion pipeline's progress bar and
one for the rendered video. Every widget carries a CSS class ``aniportrait-<role>`` so a browser test
can find it. All logic lives in the state object; this module only wires events.

Creating the editor never blocks: in a headless run (papermill) the widgets are built and shown
as a static view, and nothing waits for a click.
"""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets
from IPython.display import Video, display

from aniportrait_lib.editing.controls import CONTROLS
from aniportrait_lib.editing.editor_state import NO_LMK2VIDEO_WEIGHTS, EditorState
from aniportrait_lib.editing.preview import figure_png, image_png

PREVIEW_PX = 300
"""Largest on-screen side of the two preview images (pixels)."""
CURVES_PX = 640
"""On-screen width of the curve plot (pixels)."""


class EditorWidget:
    """ipywidgets editor; show it with ``display(editor.widget)``.

    Args:
        state: the editor's logic and data.
        edits_path: where "save edits" writes the JSON.
        video_path: where "render" writes the MP4.
        audio: optional (samples, rate) muxed into the rendered videos.
        lmk2video_path: where "render with Lmk2Video" writes the MP4 (the side-by-side video with the
            warp preview goes next to it, ``<stem>_side_by_side.mp4``).
    """

    def __init__(
        self,
        state: EditorState,
        edits_path: str | Path = "edits.json",
        video_path: str | Path = "edited.mp4",
        audio=None,
        lmk2video_path: str | Path = "edited_lmk2video.mp4",
    ) -> None:
        self.state, self.edits_path, self.video_path, self.audio = (
            state,
            Path(edits_path),
            Path(video_path),
            audio,
        )
        self.lmk2video_path = Path(lmk2video_path)
        self._syncing = False
        self.sliders = {name: self._slider(name) for name in CONTROLS}
        self.frame = widgets.IntSlider(
            0, 0, state.performance.n_frames - 1, description="frame", continuous_update=False
        )
        self.frame.add_class("aniportrait-frame")
        self.frame.observe(self._on_frame, names="value")
        height, width = state.reference.image.shape[:2]
        shown = min(width, PREVIEW_PX)
        size = {
            "width": f"{shown}px",
            "height": f"{round(shown * height / width)}px",
            "object_fit": "contain",
        }
        self.pose_image = self._image("pose-image", widgets.Layout(**size))
        self.portrait = self._image("portrait", widgets.Layout(**size))
        self.curves = self._image("curves", widgets.Layout(width=f"{CURVES_PX}px", height="auto"))
        self.status = widgets.HTML(layout=widgets.Layout(min_height="1.5em"))
        self.status.add_class("aniportrait-status")
        self.progress = widgets.Output()  # the diffusion pipeline's progress bar (tqdm) appears here
        self.progress.add_class("aniportrait-progress")
        self.video = widgets.Output()
        self.video.add_class("aniportrait-video")
        self.buttons = {
            "set keyframe": self._button("set keyframe", "key", self._on_set_key),
            "delete keyframe": self._button("delete keyframe", "trash", self._on_delete_key),
            "save edits": self._button("save edits", "save", self._on_save),
            "render": self._button("render", "film", self._on_render),
        }
        lmk2video = self._button("render with Lmk2Video", "magic", self._on_render_lmk2video)
        self.buttons["render with Lmk2Video"] = lmk2video
        lmk2video.layout.width = "auto"
        if state.lmk2video is None:
            lmk2video.disabled, lmk2video.tooltip = True, NO_LMK2VIDEO_WEIGHTS
            self.status.value = f"render with Lmk2Video is off: {NO_LMK2VIDEO_WEIGHTS}"
        else:
            lmk2video.tooltip = f"the edited clip beside the warp preview: {state.lmk2video.describe()}"
        self.widget = self._layout()
        self.refresh(curves=True)

    def _slider(self, name: str) -> widgets.FloatSlider:
        c = CONTROLS[name]
        slider = widgets.FloatSlider(
            value=c.neutral, min=c.minimum, max=c.maximum, step=c.step, description=c.label,
            continuous_update=False, style={"description_width": "8em"},
        )  # fmt: skip
        slider.add_class(f"aniportrait-slider-{name}")
        slider.observe(lambda change, name=name: self._on_slider(name, change["new"]), names="value")
        return slider

    def _image(self, role: str, layout: widgets.Layout) -> widgets.Image:
        image = widgets.Image(format="png", layout=layout)
        image.add_class(f"aniportrait-{role}")
        return image

    def _button(self, label: str, icon: str, callback) -> widgets.Button:
        button = widgets.Button(description=label, icon=icon)
        button.add_class("aniportrait-button-" + label.replace(" ", "-").lower())
        button.on_click(lambda _button: self._guarded(callback))
        return button

    def _layout(self) -> widgets.Widget:
        controls = widgets.VBox([self.frame, *self.sliders.values()])
        previews = widgets.HBox(
            [self.pose_image, self.portrait], layout=widgets.Layout(align_items="flex-start")
        )
        buttons = widgets.HBox(list(self.buttons.values()))
        return widgets.VBox(
            [widgets.HBox([controls, previews]), self.curves, buttons, self.status, self.progress, self.video]
        )

    def _guarded(self, callback) -> None:
        """Run a callback; show an error in the status line instead of losing it in the log."""
        try:
            callback()
        except (ValueError, NotImplementedError, OSError, RuntimeError) as err:  # shown, not lost in a log
            self.status.value = f"<b>error:</b> {err}"

    # events
    def _on_slider(self, name: str, value: float) -> None:
        if self._syncing:
            return
        self._guarded(lambda: self.state.set_value(name, value))
        self.refresh()

    def _on_frame(self, change) -> None:
        self.state.set_frame(change["new"])
        self.sync_sliders()
        self.refresh(curves=True)
        keys = self.state.keys_at_frame()
        self.status.value = f"frame {self.state.frame}: keys {', '.join(keys) or '(none)'}"

    def _on_set_key(self) -> None:
        names = self.state.set_keyframe()
        self.status.value = (
            f"keyed {', '.join(names) or 'nothing (move a slider first)'} at frame {self.state.frame}"
        )
        self.refresh(curves=True)

    def _on_delete_key(self) -> None:
        names = self.state.delete_keyframe()
        self.status.value = f"deleted keys {', '.join(names) or '(none)'} at frame {self.state.frame}"
        self.sync_sliders()
        self.refresh(curves=True)

    def _on_save(self) -> None:
        path = self.state.save(self.edits_path)
        self.status.value = f"saved {len(self.state.document.tracks)} track(s) to {path}"

    def _on_render(self) -> None:
        self.status.value = (
            f"rendering {self.state.performance.n_frames} frames ({self.state.render_backend}) …"
        )
        path = self.state.render(self.video_path, self.audio)
        self.video.clear_output()
        with self.video:
            display(Video(str(path), embed=True, width=self.state.reference.image.shape[1]))
        self.status.value = f"rendered {path}"

    def _on_render_lmk2video(self) -> None:
        if self.state.lmk2video is None:  # the button is disabled then; a click from code still lands here
            raise ValueError(NO_LMK2VIDEO_WEIGHTS)
        button = self.buttons["render with Lmk2Video"]
        self.status.value = (
            f"rendering {self.state.performance.n_frames} frames with Lmk2Video "
            f"({self.state.lmk2video.describe()}) …"
        )
        button.disabled = True  # one render at a time
        self.progress.clear_output()
        self.video.clear_output()  # an earlier result is not left beside a failed render's error
        try:
            with self.progress:
                result = self.state.render_lmk2video(self.lmk2video_path, self.audio)
        finally:
            button.disabled = False
        with self.video:
            display(Video(str(result.side_by_side), embed=True))
        total = sum(result.seconds.values())
        self.status.value = (
            f"rendered {result.video} ({len(result.frames)} frames, {total:.1f} s); "
            "left: warp preview, right: Lmk2Video"
        )

    # views
    def sync_sliders(self) -> None:
        """Show the state's values on the sliders without treating them as user moves."""
        self._syncing = True
        try:
            for name, value in self.state.values().items():
                self.sliders[name].value = value
        finally:
            self._syncing = False

    def refresh(self, curves: bool = False) -> None:
        """Redraw the previews of the current frame (and the curves when asked)."""
        self.pose_image.value = image_png(self.state.preview_pose_image())
        self.portrait.value = image_png(self.state.preview_portrait())
        if curves:
            self.curves.value = figure_png(self.state.curves_figure())
