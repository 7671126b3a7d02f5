"""Configs every stage shares: a run profile's budget (:class:`Profile`), the rendering settings
(:class:`GenerateConfig`) and how a resolved configuration is saved (:func:`save_config`).

Which values each profile (``quick``, ``cpu``, ``gpu``) uses is chosen once, in
:mod:`aniportrait_lib.profiles`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aniportrait_lib.atomic import write_json


@dataclass(frozen=True)
class Profile:
    """What a run of the kit may spend, and where."""

    name: str
    """``"quick"``, ``"cpu"`` or ``"gpu"``."""
    description: str
    """One line for people: what the profile is for."""
    device: str
    """torch device the notebooks use: ``"cpu"`` for quick/cpu, ``"cuda"`` for gpu."""
    dtype: str
    """Inference dtype: ``"float32"`` on CPU; ``"float16"`` on GPU as the official scripts (spec §3.5)."""
    requires_real_weights: bool
    """True when the profile needs the real pretrained weights (SD1.5, CLIP, wav2vec2, AniPortrait)."""
    minutes_per_notebook: float
    """Rough budget a notebook is designed to stay within on the profile's machine."""
    seed: int = 42
    """Default seed; the official scripts use 42 (spec §3.5)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, saved next to every output."""
        return dataclasses.asdict(self)


DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
"""What ``--device`` accepts (resolved by :func:`aniportrait_lib.devices.resolve_placement`)."""
DTYPE_CHOICES = ("auto", "fp32", "fp16", "bf16")
"""What ``--dtype`` accepts."""

SMALL_VIDEO_SIDE = 256
"""Frames with a shorter side below this (the quick and cpu profiles' 64² and 96²) are written at a finer
H.264 quality (:meth:`GenerateConfig.video_crf`)."""


@dataclass(frozen=True)
class GenerateConfig:
    """Rendering settings; defaults follow the official inference scripts unless noted."""

    width: int = 512  # official -W
    height: int = 512  # official -H
    steps: int = 25  # official --steps
    guidance_scale: float = 3.5  # official --cfg
    seed: int = 42  # official --seed (torch.manual_seed)
    fps: float = 30.0  # audio2vid: fixed 30 fps (spec §2.1)
    context_frames: int = 16  # official context window
    context_overlap: int = 4  # official overlap
    wrap_around: bool = False  # kit: open-ended windows; official True (closed loop)
    keyframe_step: int = 1  # 1: diffuse every frame; 3: official -acc (fi_step 3)
    interpolation: str = "flow"  # "flow" (OpenCV, no weights) or a path to film_net_fp16.pt
    max_frames: int | None = None  # official -L (None: the whole audio / template)
    cache_pose_features: bool = False  # kit: recompute pose maps per step (memory flat in length)
    face_crop_scale: float | None = None  # kit: first cut a square of this × face height (official: None)
    crf: int | None = None  # kit: H.264 quality of the mp4 (lower = finer); None: by size, see video_crf()

    def video_crf(self) -> int:
        """The x264 constant rate factor the video is written with: ``crf``, or by frame size when None.

        18 ("visually lossless") from 256 px up; 4 below, where a lip is a pixel or two thick. Measured on the
        cpu mini corpus's true held-out frames at 96²: the mouth opening MediaPipe re-extracts correlates
        0.93 with the truth on the raw frames, 0.78 after CRF 18, 0.85 after CRF 10, 0.90 after CRF 4
        (about 5× the file size of CRF 18). 0 (lossless) is avoided: x264 then writes the High 4:4:4
        Predictive profile, which browsers do not play.
        """
        if self.crf is not None:
            return self.crf
        return 18 if min(self.width, self.height) >= SMALL_VIDEO_SIDE else 4


def save_config(path: Path, **sections: Any) -> Path:
    """Write the resolved configuration of a run as JSON (dataclasses are expanded).

    Example: ``save_config(out / "config.json", profile=profile, audio2mesh=cfg)``.
    """

    def expand(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        if isinstance(value, Path):
            return str(value)
        return value

    return write_json(path, {key: expand(value) for key, value in sections.items()})
