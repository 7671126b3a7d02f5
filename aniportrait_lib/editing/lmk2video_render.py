"""Rendering an edited performance with the Lmk2Video diffusion model, beside the warp preview.

The editor previews with the fast warp stand-in (:mod:`.preview`); this module renders the same edited
performance through the paper's renderer, a :class:`~aniportrait_lib.pipelines.pose2video.Pose2VideoPipeline`
loaded from weights (:func:`~aniportrait_lib.pipelines.selection.resolve_weights`):

* ``"kit:<run folder>"`` - what notebooks 03 and 04 trained (quick / cpu profiles), sampled with the settings
  they were trained and evaluated with (:attr:`GenerationModels.config`: frame size, face crop, steps,
  guidance, context windows);
* ``"official:<folder>"`` - the released weights (gpu profile; 512², 25 steps, guidance 3.5).

Kit models were trained on face crops, so the portrait is prepared as generation prepares it
(:func:`~aniportrait_lib.pipelines.portrait.load_portrait`: cut around the face, resized, landmarks found
again) and the performance is re-expressed on it (:meth:`Lmk2VideoRenderer.on_portrait`): the same mesh
offsets from the neutral mesh and the same head poses relative to the portrait's own matrix, which is how
Audio2Lmk's output is rendered too. The warp preview is drawn on that same prepared portrait, so the two
panels of the side-by-side video show the same frames of the same edit. (Offsets and translations are in
centimetres, so an ``x`` / ``y`` shift - a fraction of the full portrait's width - moves the head by a larger
fraction of a tighter face crop.)

Typical use::

    renderer = Lmk2VideoRenderer.from_weights("kit:outputs/runs/latest-cpu", portrait)
    result = renderer.render(apply_edits(performance, document), "edited_lmk2video.mp4")
    result.video, result.side_by_side  # the Lmk2Video render; warp preview | Lmk2Video
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from aniportrait_lib.config import save_config
from aniportrait_lib.data.render import Reference
from aniportrait_lib.devices import Placement
from aniportrait_lib.editing.preview import render_performance as render_warp
from aniportrait_lib.landmarks.performance import Performance
from aniportrait_lib.pipelines.generate import load_portrait
from aniportrait_lib.pipelines.generate import render_performance as render_diffusion
from aniportrait_lib.pipelines.selection import GenerationModels, resolve_weights
from aniportrait_lib.pipelines.stages import StageMeter
from aniportrait_lib.plots import side_by_side_video

__all__ = ["Lmk2VideoRender", "Lmk2VideoRenderer"]

SIDE_BY_SIDE_MIN_PX = 256
"""Panels of the side-by-side video smaller than this are enlarged (nearest neighbour) to reach it."""


@dataclass(frozen=True)
class Lmk2VideoRender:
    """What :meth:`Lmk2VideoRenderer.render` wrote."""

    video: Path  # the Lmk2Video frames, H.264 MP4 (with the audio, if given)
    side_by_side: Path  # labelled panels "warp preview" | "Lmk2Video", enlarged to SIDE_BY_SIDE_MIN_PX
    frames: range  # the performance's frames rendered (indices)
    size: tuple[int, int]  # (W, H) of the Lmk2Video frames
    seconds: dict[str, float]  # stage → seconds (warp preview, denoising, decode + mp4, side by side)


class Lmk2VideoRenderer:
    """A Lmk2Video pipeline with its sampling settings and the portrait prepared for it.

    Args:
        models: resolved weights (:func:`~aniportrait_lib.pipelines.selection.resolve_weights`; pose → video,
            ``audio=False``, is enough); their ``config`` is what the renders are sampled with.
        reference: the portrait the performances are expressed on (e.g. a retargeting target), full size.
        extractor: a :class:`~aniportrait_lib.landmarks.extract.LandmarkExtractor` to reuse (else one is made
            and closed) for the portrait's landmarks.
        progress_bar: show the pipeline's per-step progress bar (tqdm: a widget in Jupyter) while rendering;
            this sets the pipeline's progress-bar configuration.
        num_threads: torch threads while rendering (restored afterwards); None leaves them as they are.

    Attributes:
        config: the sampling settings (``models.config``); steps, guidance or windows may be changed, not the
            size or face crop the portrait was prepared with.
    """

    def __init__(
        self,
        models: GenerationModels,
        reference: Reference,
        extractor=None,
        progress_bar: bool = True,
        num_threads: int | None = None,
    ) -> None:
        self.models, self.reference, self.num_threads = models, reference, num_threads
        self.config = models.config
        self.portrait = load_portrait(reference.image, self.config, extractor)
        models.pipeline.set_progress_bar_config(disable=not progress_bar, desc="Lmk2Video denoising")

    @classmethod
    def from_weights(
        cls,
        weights: str,
        reference: Reference,
        placement: Placement | None = None,
        extractor=None,
        progress_bar: bool = True,
        num_threads: int | None = None,
    ) -> Lmk2VideoRenderer:
        """Load ``weights`` (``"kit:<folder>"`` / ``"official:<folder>"``) for pose → video on ``placement``
        (default the CPU in float32).

        Raises:
            ValueError: a missing or incomplete weights folder; the message lists every missing part.
        """
        models = resolve_weights(weights, audio=False, placement=placement)
        return cls(models, reference, extractor, progress_bar, num_threads)

    @property
    def portrait_reference(self) -> Reference:
        """The prepared portrait (face crop at the weights' size) as the warp renderer's input."""
        return Reference(self.portrait.image, self.portrait.lmks3d, self.portrait.trans_mat)

    def describe(self) -> str:
        """One line: which weights and how they are sampled."""
        c = self.config
        crop = f", face crop {c.face_crop_scale}× face height" if c.face_crop_scale is not None else ""
        return (
            f"{self.models.weights.split(':')[0]} weights, {c.width}×{c.height}, {c.steps} steps, "
            f"guidance {c.guidance_scale}, {c.context_frames}-frame windows{crop}"
        )

    def on_portrait(self, performance: Performance) -> Performance:
        """``performance`` re-expressed on the prepared portrait: the same mesh offsets from its neutral mesh
        and the same poses relative to the portrait's matrix (see the module docstring)."""
        offsets = np.asarray(performance.mesh) - np.asarray(performance.ref_mesh)[None]
        return Performance.from_reference(self.portrait, offsets, performance.pose, performance.fps)

    @contextlib.contextmanager
    def _threads(self):
        previous = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def render(
        self,
        performance: Performance,
        path: str | Path,
        audio: tuple[np.ndarray, int] | None = None,
        frames: slice | None = None,
    ) -> Lmk2VideoRender:
        """Render ``performance`` (e.g. an edited one) with Lmk2Video, and beside its warp preview.

        Args:
            path: the Lmk2Video MP4; the side-by-side video goes next to it as ``<stem>_side_by_side.mp4``,
                the resolved settings (sampling, weights, frames, seconds) as ``<stem>.json``.
            audio: (samples, rate) of the whole performance; the part under ``frames`` is muxed into both.
            frames: a contiguous part to render (e.g. ``slice(30, 54)``); default every frame.

        Returns:
            the written files, the frames rendered and the seconds per stage. Both files are written
            atomically (a failure leaves no half-written file, and no side-by-side video of an earlier call).
        """
        chosen = range(performance.n_frames)[frames if frames is not None else slice(None)]
        if len(chosen) == 0 or chosen.step != 1:
            raise ValueError(
                f"frames {frames} of a {performance.n_frames}-frame performance: choose a non-empty, "
                "contiguous part (step 1)"
            )
        height, width = self.portrait.image.shape[:2]
        if (self.config.width, self.config.height) != (width, height):
            raise ValueError(
                f"config asks for {self.config.width}×{self.config.height} frames, the portrait was prepared "
                f"at {width}×{height}: build a new renderer for another size"
            )
        config = replace(self.config, fps=performance.fps)
        excerpt = self.on_portrait(performance.select(slice(chosen.start, chosen.stop)))
        audio = _audio_part(audio, chosen, config.fps)
        path = Path(path)
        side_by_side = path.with_name(f"{path.stem}_side_by_side.mp4")
        side_by_side.unlink(missing_ok=True)  # never shown beside a newer render by mistake
        stages = StageMeter()
        with stages.stage("warp preview"):
            warp = render_warp(excerpt, self.portrait_reference, "warp")
        diffused: list[np.ndarray] = []
        with self._threads():
            render_diffusion(
                self.models.pipeline, self.portrait, excerpt, path, config, audio,
                lambda _index, frame: diffused.append(frame), stages,
            )  # fmt: skip
        with stages.stage("side-by-side video"):
            panels = {"warp preview": warp, "Lmk2Video": diffused}
            side_by_side_video(side_by_side, panels, config.fps, audio, SIDE_BY_SIDE_MIN_PX)
        result = Lmk2VideoRender(path, side_by_side, chosen, (width, height), stages.seconds())
        save_config(
            path.with_suffix(".json"), generate=config, weights=self.models.describe(),
            frames=[chosen.start, chosen.stop], seconds=result.seconds,
        )  # fmt: skip
        return result


def _audio_part(audio: tuple[np.ndarray, int] | None, frames: range, fps: float):
    """The (samples, rate) under ``frames`` of a performance at ``fps`` (None stays None)."""
    if audio is None:
        return None
    samples, rate = audio
    start, stop = (round(i / fps * rate) for i in (frames.start, frames.stop))
    return np.asarray(samples)[start:stop], rate
