"""The interactive editor's logic, free of widgets (so it is tested without a browser).

The editor shows one frame at a time. Moving a control's slider sets a **pending** value for the
current frame (previewed at once, not yet part of the edit); "set keyframe" turns the pending
values into keys of the edit document at that frame; moving to another frame drops what was not
keyed, and the sliders then show the document's interpolated values there. "save" writes the
document as JSON (:mod:`.edit_document`), "render" renders the whole edited performance through
a render backend (:mod:`.preview`), and "render with Lmk2Video" renders it with the diffusion model's
weights beside its warp preview (:mod:`.lmk2video_render`), when the editor was given them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aniportrait_lib.data.render import Reference
from aniportrait_lib.editing.controls import CONTROLS, get_control
from aniportrait_lib.editing.edit_document import EditDocument, save_edits
from aniportrait_lib.editing.edits import apply_controls, apply_edits
from aniportrait_lib.editing.face_regions import ExpressionFields
from aniportrait_lib.editing.keyframes import Interpolation
from aniportrait_lib.editing.preview import (
    RENDER_BACKENDS,
    pose_curves_figure,
    pose_image,
    render_performance,
    render_video,
)
from aniportrait_lib.landmarks.performance import Performance

if TYPE_CHECKING:  # torch and diffusers: imported by whoever builds a renderer, never by the warp editor
    from aniportrait_lib.editing.lmk2video_render import Lmk2VideoRender, Lmk2VideoRenderer

NO_LMK2VIDEO_WEIGHTS = (
    "no Lmk2Video weights: give the editor state lmk2video=Lmk2VideoRenderer.from_weights(weights, portrait) "
    "(aniportrait_lib.editing.lmk2video_render), with weights 'kit:<run folder>' (exported by notebooks 03 "
    "and 04) or 'official:<weights folder>'"
)
"""What the editor says when it cannot render with the diffusion model."""


class EditorState:
    """Current frame, pending slider values and the edit document of one performance.

    Args:
        performance: what is edited (e.g. a retargeted clip).
        reference: the portrait the warp preview moves (its ``lmks3d``/``trans_mat`` should be the
            performance's reference).
        document: the edit to start from (default: no edits).
        render_backend: "warp" (fast stand-in) or "pose2video" (the diffusion model, given as
            ``pipeline``, sampled with ``render_config``, a
            :class:`~aniportrait_lib.pipelines.generate.GenerateConfig`), see :mod:`.preview`.
        interpolation: interpolation of tracks created by the editor.
        lmk2video: a :class:`~.lmk2video_render.Lmk2VideoRenderer` built for ``reference`` (the diffusion
            model's weights and sampling settings), or None: :meth:`render_lmk2video` is unavailable.
    """

    def __init__(
        self,
        performance: Performance,
        reference: Reference,
        document: EditDocument | None = None,
        render_backend: str = "warp",
        interpolation: Interpolation = "smooth",
        pipeline=None,
        render_config=None,
        lmk2video: Lmk2VideoRenderer | None = None,
    ) -> None:
        if render_backend not in RENDER_BACKENDS:
            raise ValueError(f"unknown render backend {render_backend!r}: choose one of {RENDER_BACKENDS}")
        if render_backend == "pose2video" and pipeline is None:
            raise ValueError("render_backend='pose2video' needs a pipeline (e.g. built from your weights)")
        if lmk2video is not None and not np.array_equal(lmk2video.reference.image, reference.image):
            raise ValueError("the Lmk2Video renderer was built for another portrait than the editor's")
        self.pipeline, self.render_config, self.lmk2video = pipeline, render_config, lmk2video
        self.performance, self.reference = performance, reference
        self.document = document or EditDocument()
        self.render_backend, self.interpolation = render_backend, interpolation
        self.frame = 0
        self.pending: dict[str, float] = {}
        self._fields = ExpressionFields(performance.ref_mesh)
        self._edited: tuple[EditDocument, Performance] | None = None

    # 1. navigation and values
    def set_frame(self, frame: int) -> None:
        """Go to ``frame`` (0 … T−1); pending (un-keyed) values are dropped."""
        if not 0 <= frame < self.performance.n_frames:
            raise ValueError(f"frame {frame} is outside 0 … {self.performance.n_frames - 1}")
        self.frame, self.pending = int(frame), {}

    def keyed_values(self) -> dict[str, float]:
        """The document's value of every control at the current frame."""
        return {k: float(v[0]) for k, v in self.document.controls(np.array([self.frame])).items()}

    def values(self) -> dict[str, float]:
        """What the sliders show: keyed values overridden by pending ones."""
        return {**self.keyed_values(), **self.pending}

    def set_value(self, name: str, value: float) -> None:
        """A slider moved: preview ``value`` for control ``name`` at the current frame."""
        control = get_control(name)
        if not control.minimum <= value <= control.maximum:
            raise ValueError(f"{name} = {value} is outside [{control.minimum}, {control.maximum}]")
        self.pending[name] = float(value)

    # 2. keyframes
    def set_keyframe(self, names: list[str] | None = None) -> list[str]:
        """Key the pending controls (or ``names``, at their shown values) at the current frame."""
        values = self.values()
        names = list(self.pending) if names is None else names
        for name in names:
            self.document = self.document.with_key(name, self.frame, values[name], self.interpolation)
        self.pending = {k: v for k, v in self.pending.items() if k not in names}
        return names

    def delete_keyframe(self, names: list[str] | None = None) -> list[str]:
        """Delete the keys at the current frame (of ``names``, default every control); returns what went."""
        keyed = self.keys_at_frame()
        names = keyed if names is None else [n for n in names if n in keyed]
        for name in names:
            self.document = self.document.without_key(name, self.frame)
        self.pending = {}
        return names

    def keys_at_frame(self) -> list[str]:
        """Controls with a key at the current frame, in control order."""
        return [
            n for n in CONTROLS if n in self.document.tracks and self.document.tracks[n].key_at(self.frame)
        ]

    # 3. results
    def edited(self) -> Performance:
        """The whole performance with the document applied (pending values excluded); cached."""
        if self._edited is None or self._edited[0] is not self.document:
            self._edited = (self.document, apply_edits(self.performance, self.document))
        return self._edited[1]

    def frame_performance(self) -> Performance:
        """The current frame edited with the shown values (pending included), as a 1-frame performance."""
        one = self.performance.select([self.frame])
        return apply_controls(one, {k: np.array([v]) for k, v in self.values().items()}, self._fields)

    def preview_pose_image(self) -> np.ndarray:
        """(H, W, 3) uint8 pose image of the current frame at the portrait's size."""
        height, width = self.reference.image.shape[:2]
        return pose_image(self.frame_performance(), 0, (width, height))

    def preview_portrait(self) -> np.ndarray:
        """(H, W, 3) uint8 warped portrait of the current frame (the fast stand-in renderer)."""
        return render_performance(self.frame_performance(), self.reference, "warp")[0]

    def curves_figure(self, figsize: tuple[float, float] = (7.0, 3.6)):
        """Rotation curves of the original and edited performance, keys and the current frame."""
        curves = {"original": self.performance.pose, "edited": self.edited().pose}
        return pose_curves_figure(
            curves, self.performance.fps, (0, 1, 2), self.frame, self.document.key_frames(), figsize
        )

    def save(self, path: str | Path) -> Path:
        """Write the edit document (keys only; pending values are not saved) as JSON."""
        return save_edits(self.document, path)

    def render(self, path: str | Path, audio: tuple[np.ndarray, int] | None = None) -> Path:
        """Render the edited performance to an MP4 through ``render_backend``."""
        return render_video(
            self.edited(), self.reference, path, self.render_backend, audio, self.pipeline, self.render_config
        )

    def render_lmk2video(
        self, path: str | Path, audio: tuple[np.ndarray, int] | None = None, frames: slice | None = None
    ) -> Lmk2VideoRender:
        """Render the edited performance (or its ``frames``) with the Lmk2Video pipeline, beside its warp
        preview (:meth:`~.lmk2video_render.Lmk2VideoRenderer.render`).

        Raises:
            ValueError: the editor has no renderer (no weights were given).
        """
        if self.lmk2video is None:
            raise ValueError(NO_LMK2VIDEO_WEIGHTS)
        return self.lmk2video.render(self.edited(), path, audio, frames)
