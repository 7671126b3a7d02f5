"""End-to-end generation: a portrait plus speech (or plus head motion) → an MP4 with the audio.

Two entry points, one path:

* :func:`audio_to_video` — AniPortrait's audio-driven mode (official ``audio2vid.py``): speech →
  Audio2Mesh offsets on the portrait's canonical mesh + head pose (Audio2Pose, or a pose template)
  → projected landmarks → pose images → Lmk2Video.
* :func:`pose_to_video` — self-driven mode: the portrait's own face moved by a pose template
  (``pose_temp.npy``) or reenacted from a source video (official vid2vid retargeting).

Both build a :class:`~aniportrait_lib.landmarks.performance.Performance` (mesh + pose per frame) and
render it with :func:`render_performance`: pose images are drawn lazily, one window at a time; the
diffusion pipeline streams decoded frames; with ``keyframe_step > 1`` only every k-th frame is
generated and the rest are interpolated (official ``-acc``); frames go straight into the video file,
which appears under its name only when complete. Memory therefore does not grow with length.

The models are passed in, or named with ``weights="official:<folder>"`` / ``"kit:<run folder>"``
(:mod:`aniportrait_lib.pipelines.selection`), which also supplies the sampling settings they are meant for.
A :class:`~aniportrait_lib.pipelines.stages.StageMeter` passed as ``stages`` records seconds and peak
memory per stage; the seconds are also saved in the resolved configuration beside the video.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from aniportrait_lib.audio.features import AudioFeatureConfig, features_from_waveform, load_waveform
from aniportrait_lib.audio.inference import audio_to_motion
from aniportrait_lib.config import GenerateConfig, save_config
from aniportrait_lib.landmarks.drawing import draw_landmarks
from aniportrait_lib.landmarks.performance import Performance
from aniportrait_lib.pipelines.interpolation import FilmInterpolator, flow_interpolate, keyframe_indices
from aniportrait_lib.pipelines.motion_sources import (
    as_pose_template,
    reenact_video,
    resample_motion,
)
from aniportrait_lib.pipelines.portrait import Portrait, load_portrait, reference_pose_image
from aniportrait_lib.pipelines.selection import GenerationModels, resolve_weights
from aniportrait_lib.pipelines.stages import StageMeter
from aniportrait_lib.video_io import VideoWriter

__all__ = [
    "GenerateConfig",
    "LazyPoseImages",
    "Portrait",
    "audio_to_video",
    "load_portrait",
    "pose_to_video",
    "reference_pose_image",
    "render_performance",
    "render_pose_images",
    "speech_to_performance",
]


class LazyPoseImages:
    """Pose images drawn on demand from landmarks ``(T, 468, 2)`` in pixels of ``size`` (W, H)."""

    def __init__(self, landmarks_px: np.ndarray, size: tuple[int, int]) -> None:
        self.landmarks_px, self.size = landmarks_px, size

    def __len__(self) -> int:
        return len(self.landmarks_px)

    def __getitem__(self, index: int) -> np.ndarray:
        return draw_landmarks(self.size, self.landmarks_px[index], normed=False)


class _KeyframeSubset:
    """A view of a pose-image sequence at the keyframe indices only."""

    def __init__(self, images, indices: list[int]) -> None:
        self.images, self.indices = images, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.images[self.indices[index]]


class _FrameFiller:
    """Receives keyframes in order and writes every frame (keyframes + interpolated) to ``sink``."""

    def __init__(self, indices: list[int], interpolate: Callable, sink: Callable[[np.ndarray], None]) -> None:
        self.indices, self.interpolate, self.sink = indices, interpolate, sink
        self.previous: np.ndarray | None = None
        self.count = 0

    def __call__(self, k: int, frame: np.ndarray) -> None:
        if k > 0:
            start, stop = self.indices[k - 1], self.indices[k]
            for i in range(start + 1, stop):
                self.sink(self.interpolate(self.previous, frame, (i - start) / (stop - start)))
        self.sink(frame)
        self.previous, self.count = frame, k + 1


def _interpolator(config: GenerateConfig, device: torch.device):
    """Optical flow (CPU, OpenCV), or FILM on the pipeline's device."""
    if config.interpolation == "flow":
        return flow_interpolate
    return FilmInterpolator(config.interpolation, device=str(device))


def render_pose_images(
    pipeline,
    ref_image: np.ndarray,
    ref_pose: np.ndarray | None,
    pose_images,
    out_path: str | Path,
    config: GenerateConfig = GenerateConfig(),
    audio: tuple[np.ndarray, int] | None = None,
    sink: Callable[[int, np.ndarray], None] | None = None,
    stages: StageMeter | None = None,
) -> Path:
    """Render pose images into an MP4 with a Lmk2Video pipeline (:mod:`.pose2video`).

    Args:
        ref_image: the portrait, ``(H, W, 3)`` uint8 RGB (any size: the pipeline resizes it).
        ref_pose: its pose image (:func:`reference_pose_image`), or None.
        pose_images: ``(T, h, w, 3)`` uint8, or any indexable sequence of them (e.g. :class:`LazyPoseImages`).
        audio: ``(samples, rate)`` muxed into the file, trimmed to the video's length.
        sink: also called as ``sink(index, frame)`` for every written frame (e.g. to measure it).
        stages: records "Lmk2Video denoising" (CLIP, reference UNet, pose guider, UNet steps; pose images
            drawn lazily) until the first frame is decoded, then "VAE decode + interpolation + mp4".

    Returns:
        ``out_path``, a complete H.264 MP4 (written atomically: a failure leaves no file).
    """
    total = min(len(pose_images), config.max_frames or len(pose_images))
    if total == 0:
        raise ValueError("nothing to render: no pose images")
    indices = keyframe_indices(total, config.keyframe_step)
    poses = _KeyframeSubset(pose_images, indices)
    if audio is not None:
        samples, rate = audio
        audio = (np.asarray(samples)[: int(round(total / config.fps * rate))], rate)
    written = [0]
    stages = stages if stages is not None else StageMeter()
    try:
        with VideoWriter(out_path, config.fps, audio=audio, crf=config.video_crf()) as writer:

            def write(frame: np.ndarray) -> None:
                if written[0] == 0:
                    stages.start("VAE decode + interpolation + mp4")
                writer.write(frame)
                if sink is not None:
                    sink(written[0], frame)
                written[0] += 1

            filler = _FrameFiller(indices, _interpolator(config, pipeline.vae.device), write)
            stages.start("Lmk2Video denoising")
            pipeline(
                PIL.Image.fromarray(ref_image), poses, ref_pose, config.width, config.height,
                num_inference_steps=config.steps, guidance_scale=config.guidance_scale,
                generator=torch.manual_seed(config.seed), context_frames=config.context_frames,
                context_overlap=config.context_overlap, wrap_around=config.wrap_around,
                on_frame=filler, cache_pose_features=config.cache_pose_features,
            )  # fmt: skip
            if written[0] != total:
                raise RuntimeError(f"{out_path}: wrote {written[0]} of {total} frames")
    finally:
        stages.stop()  # after the writer has closed (and muxed) the file, or failed
    return Path(out_path)


def render_performance(
    pipeline, portrait, performance, out_path, config=GenerateConfig(), audio=None, sink=None, stages=None
):
    """Render a performance (mesh + pose per frame) of ``portrait``: its landmarks are projected at
    the output size and drawn lazily, one window at a time (see :func:`render_pose_images`)."""
    size = (config.width, config.height)
    poses = LazyPoseImages(performance.landmarks_px(size), size)
    return render_pose_images(
        pipeline, portrait.image, portrait.pose_image, poses, out_path, config, audio, sink, stages
    )


def _save_resolved_config(out_path: Path, **sections) -> None:
    save_config(Path(out_path).with_suffix(".json"), **sections)


def _resolve_models(weights, audio: bool, given: dict, stages: StageMeter):
    """The resolved ``weights`` (None when the models were passed directly; mixing both is an error)."""
    passed = [name for name, value in given.items() if value is not None]
    if weights is None:
        if len(passed) < len(given):
            raise ValueError(
                "pass weights='official:<folder>' or 'kit:<run folder>', or the models "
                + ", ".join(name for name in given if name not in passed)
            )
        return None
    if passed:
        raise ValueError(f"pass either weights= or the models ({', '.join(passed)}), not both")
    if isinstance(weights, GenerationModels):
        if audio and weights.audio2mesh is None:
            raise ValueError(f"{weights.weights} was resolved without its audio models (audio=False)")
        return weights
    with stages.stage("load weights"):
        return resolve_weights(weights, audio=audio)


def speech_to_performance(
    portrait: Portrait,
    features,
    audio2mesh,
    audio2pose=None,
    pose_template: np.ndarray | None = None,
    style_id: int | None = None,
    config: GenerateConfig = GenerateConfig(),
    motion_config=None,
):
    """Audio2Lmk on the portrait: the first half of :func:`audio_to_video`, for looking at its output.

    Args:
        features: :class:`~aniportrait_lib.audio.features.AudioFeatures` of the speech.
        pose_template: (T, 6) head poses at 30 fps used instead of ``audio2pose``.
    Returns:
        ``(motion, performance)``: the :class:`~aniportrait_lib.audio.inference.Motion` at 30 fps (mesh
        offsets, pose, style id) and the portrait's
        :class:`~aniportrait_lib.landmarks.performance.Performance` at ``config.fps`` (resampled in time
        when it is not 30).
    """
    motion = audio_to_motion(
        features, audio2mesh, audio2pose, pose_template, style_id, config.seed, motion_config
    )
    n_frames = math.ceil(features.duration_s * config.fps - 1e-9)
    source_fps = AudioFeatureConfig().fps  # Audio2Lmk runs at 30 fps (spec §2.1)
    offsets = resample_motion(motion.mesh_offsets, source_fps, config.fps, n_frames)
    pose = resample_motion(motion.pose, source_fps, config.fps, n_frames)
    return motion, Performance.from_reference(portrait, offsets, pose, config.fps)


def audio_to_video(
    ref_image: str | Path | np.ndarray,
    audio: str | Path,
    audio2mesh=None,
    pipeline=None,
    out_path: str | Path | None = None,
    config: GenerateConfig | None = None,
    audio2pose=None,
    pose_template: str | Path | np.ndarray | None = None,
    motion_config=None,
    style_id: int | None = None,
    weights=None,
    stages: StageMeter | None = None,
) -> Path:
    """Speech + portrait → talking video (official ``audio2vid.py``), with the audio muxed in.

    Head pose comes from ``audio2pose``, or from ``pose_template`` (``.npy`` path or (T, 6) array at
    30 fps, official ping-pong tiling); one of them is required. The resolved configuration (with the
    weights, their notes and the seconds per stage) is saved beside the video (.json).

    Args:
        audio2mesh, pipeline, audio2pose: the models; or, instead of them,
        weights: ``"official:<folder>"``, ``"kit:<run folder>"`` or resolved
            :class:`~aniportrait_lib.pipelines.selection.GenerationModels`, which also give the default
            ``config`` and ``motion_config`` (the settings those weights are meant to be sampled with).
        config: an ``fps`` other than 30 resamples the (30 fps) motion in time.
        stages: records "read audio", "load weights", "portrait landmarks", "Audio2Lmk (mesh + pose)"
            and the rendering stages of :func:`render_pose_images`.
    """
    stages = stages if stages is not None else StageMeter()
    if out_path is None:
        raise ValueError("audio_to_video needs out_path (an .mp4 file)")
    with stages.stage("read audio"):
        waveform = load_waveform(audio)  # clear errors for missing, corrupt or empty audio
        features = features_from_waveform(waveform, source=str(audio))
    template = as_pose_template(pose_template) if pose_template is not None else None
    if weights is None and audio2pose is None and template is None:
        raise ValueError("audio_to_video needs head motion: pass audio2pose or a pose_template")
    models = _resolve_models(weights, True, {"audio2mesh": audio2mesh, "pipeline": pipeline}, stages)
    if models is not None:
        audio2mesh, audio2pose, pipeline = models.audio2mesh, models.audio2pose, models.pipeline
        config, motion_config = config or models.config, motion_config or models.motion
    config = config or GenerateConfig()
    with stages.stage("portrait landmarks"):
        portrait = load_portrait(ref_image, config)
    with stages.stage("Audio2Lmk (mesh + pose)"):
        motion, performance = speech_to_performance(
            portrait, features, audio2mesh, audio2pose, template, style_id, config, motion_config
        )
    path = render_performance(
        pipeline, portrait, performance, out_path, config, (waveform, 16_000), None, stages
    )
    _save_resolved_config(
        path, generate=config, motion=motion_config, style_id=motion.style_id, audio=str(audio),
        weights=models.describe() if models else "models passed in", seconds=stages.seconds(),
        peak_memory_mib=stages.peak_memory(),
    )  # fmt: skip
    return path


def pose_to_video(
    ref_image: str | Path | np.ndarray,
    source: str | Path | np.ndarray,
    pipeline=None,
    out_path: str | Path | None = None,
    config: GenerateConfig | None = None,
    retarget_config=None,
    weights=None,
    stages: StageMeter | None = None,
    on_face_lost: str = "warn",
) -> Path:
    """Portrait + head motion → video (self-driven, no speech model).

    Args:
        source: a pose template (``.npy`` path or (T, 6) array): the portrait's own face follows it;
            or a video file: its face is reenacted onto the portrait (official vid2vid retargeting,
            :mod:`aniportrait_lib.landmarks.retarget`) and its audio, if any, is kept.
        pipeline: the Lmk2Video pipeline, or instead ``weights`` (see :func:`audio_to_video`).
        stages: records "load weights", "portrait landmarks", "source motion" and the rendering stages.
        on_face_lost: a source video whose face is lost part-way: ``"warn"`` renders the frames before (and
            says how many of how many), ``"error"`` refuses.
    """
    stages = stages if stages is not None else StageMeter()
    if out_path is None:
        raise ValueError("pose_to_video needs out_path (an .mp4 file)")
    is_template = isinstance(source, np.ndarray) or Path(source).suffix == ".npy"
    template = as_pose_template(source) if is_template else None
    if not is_template and not Path(source).is_file():
        raise ValueError(f"{source}: no such video file (a pose template must end in .npy)")
    models = _resolve_models(weights, False, {"pipeline": pipeline}, stages)
    if models is not None:
        pipeline, config = models.pipeline, config or models.config
    config = config or GenerateConfig()
    with stages.stage("portrait landmarks"):
        portrait = load_portrait(ref_image, config)
    audio = None
    with stages.stage("source motion"):
        if template is not None:
            offsets = np.zeros((len(template), 468, 3))
            performance = Performance.from_reference(portrait, offsets, template, config.fps)
        else:
            performance, audio = reenact_video(portrait, Path(source), retarget_config, on_face_lost)
    path = render_performance(pipeline, portrait, performance, out_path, config, audio, None, stages)
    described = "array" if isinstance(source, np.ndarray) else str(source)
    _save_resolved_config(
        path, generate=config, retarget=retarget_config, source=described,
        weights=models.describe() if models else "models passed in", seconds=stages.seconds(),
        peak_memory_mib=stages.peak_memory(),
    )  # fmt: skip
    return path
