"""End-to-end generation: a portrait plus speech (or plus head motion) → an MP4 with the audio.

Two entry points, one path:

* :func:`audio_to_video` — AniPortrait's audio-driven mode (official ``audio2vid.py``): speech →
  Audio2Mesh offsets on the portrait's canonical mesh + head pose (Audio2Pose, or a pose template)
  → projected landmarks → pose images → Lmk2Video.
* :func:`pose_to_video` — self-driven mode: the portrait's own face moved by a pose template
  (``pose_temp.npy``) or reenacted from a source video (official vid2vid retargeting).

Both build a :class:`~aniportrait_lib.editing.performance.Performance` (mesh + pose per frame) and
render it with :func:`render_performance`: pose images are drawn lazily, one window at a time; the
diffusion pipeline streams decoded frames; with ``keyframe_step > 1`` only every k-th frame is
generated and the rest are interpolated (official ``-acc``); frames go straight into the video file,
which appears under its name only when complete. Memory therefore does not grow with length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image

from aniportrait_lib.landmarks.drawing import draw_landmarks
from aniportrait_lib.pipelines.interpolation import FilmInterpolator, flow_interpolate, keyframe_indices


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


def reference_pose_image(face, size: tuple[int, int]) -> np.ndarray:
    """The portrait's own pose image, drawn from its MediaPipe ``lmks`` (normalised), as official."""
    return draw_landmarks(size, face.lmks, normed=True)


def _interpolator(config: GenerateConfig):
    return flow_interpolate if config.interpolation == "flow" else FilmInterpolator(config.interpolation)


def render_pose_images(
    pipeline,
    ref_image: np.ndarray,
    ref_pose: np.ndarray | None,
    pose_images,
    out_path: str | Path,
    config: GenerateConfig = GenerateConfig(),
    audio: tuple[np.ndarray, int] | None = None,
    sink: Callable[[int, np.ndarray], None] | None = None,
) -> Path:
    """Render pose images into an MP4 with a Lmk2Video pipeline (:mod:`.pose2video`).

    Args:
        ref_image: the portrait, ``(H, W, 3)`` uint8 RGB (any size: the pipeline resizes it).
        ref_pose: its pose image (:func:`reference_pose_image`), or None.
        pose_images: ``(T, h, w, 3)`` uint8, or any indexable sequence of them (e.g. :class:`LazyPoseImages`).
        audio: ``(samples, rate)`` muxed into the file, trimmed to the video's length.
        sink: also called as ``sink(index, frame)`` for every written frame (e.g. to measure it).

    Returns:
        ``out_path``, a complete H.264 MP4 (written atomically: a failure leaves no file).
    """
    import torch

    from aniportrait_lib.video_io import VideoWriter

    total = min(len(pose_images), config.max_frames or len(pose_images))
    if total == 0:
        raise ValueError("nothing to render: no pose images")
    indices = keyframe_indices(total, config.keyframe_step)
    poses = _KeyframeSubset(pose_images, indices)
    if audio is not None:
        samples, rate = audio
        audio = (np.asarray(samples)[: int(round(total / config.fps * rate))], rate)
    written = [0]
    with VideoWriter(out_path, config.fps, audio=audio) as writer:

        def write(frame: np.ndarray) -> None:
            writer.write(frame)
            if sink is not None:
                sink(written[0], frame)
            written[0] += 1

        filler = _FrameFiller(indices, _interpolator(config), write)
        pipeline(
            PIL.Image.fromarray(ref_image), poses, ref_pose, config.width, config.height,
            num_inference_steps=config.steps, guidance_scale=config.guidance_scale,
            generator=torch.manual_seed(config.seed), context_frames=config.context_frames,
            context_overlap=config.context_overlap, wrap_around=config.wrap_around,
            on_frame=filler, cache_pose_features=config.cache_pose_features,
        )  # fmt: skip
        if written[0] != total:
            raise RuntimeError(f"{out_path}: wrote {written[0]} of {total} frames")
    return Path(out_path)


def render_performance(
    pipeline, portrait, performance, out_path, config=GenerateConfig(), audio=None, sink=None
):
    """Render a performance (mesh + pose per frame) of ``portrait``: its landmarks are projected at
    the output size and drawn lazily, one window at a time (see :func:`render_pose_images`)."""
    size = (config.width, config.height)
    poses = LazyPoseImages(performance.landmarks_px(size), size)
    return render_pose_images(
        pipeline, portrait.image, portrait.pose_image, poses, out_path, config, audio, sink
    )


@dataclass(frozen=True)
class Portrait:
    """The reference portrait at the output size, with its landmarks (what every mode starts from)."""

    image: np.ndarray  # (H, W, 3) uint8 RGB, resized to the output size as the official scripts do
    lmks3d: np.ndarray  # (468, 3) canonical mesh
    trans_mat: np.ndarray  # (4, 4) canonical → camera
    pose_image: np.ndarray  # (H, W, 3) its own pose image


def load_portrait(image: str | Path | np.ndarray, config: GenerateConfig, extractor=None) -> Portrait:
    """Read (if a path), convert to RGB, resize to ``config.width × config.height`` and find the face.

    Raises:
        ValueError: unreadable image or no face (the message names the file).
    """
    from aniportrait_lib.landmarks.extract import LandmarkExtractor

    where = str(image) if isinstance(image, (str, Path)) else "the portrait array"
    if isinstance(image, (str, Path)):
        try:
            image = np.asarray(PIL.Image.open(image).convert("RGB"))
        except (OSError, ValueError) as err:
            raise ValueError(f"{where} is not a readable image: {err}") from err
    pil = PIL.Image.fromarray(np.asarray(image, np.uint8)).convert("RGB")
    rgb = np.asarray(pil.resize((config.width, config.height), PIL.Image.Resampling.LANCZOS))
    own = extractor is None
    extractor = extractor or LandmarkExtractor()
    try:
        face = extractor.detect(rgb, "rgb", where=where)
    finally:
        if own:
            extractor.close()
    size = (config.width, config.height)
    return Portrait(rgb, face.lmks3d.astype(np.float64), face.trans_mat, reference_pose_image(face, size))


def _save_resolved_config(out_path: Path, **sections) -> None:
    from aniportrait_lib.config import save_config

    save_config(Path(out_path).with_suffix(".json"), **sections)


def audio_to_video(
    ref_image: str | Path | np.ndarray,
    audio: str | Path,
    audio2mesh,
    pipeline,
    out_path: str | Path,
    config: GenerateConfig = GenerateConfig(),
    audio2pose=None,
    pose_template: np.ndarray | None = None,
    motion_config=None,
    style_id: int | None = None,
) -> Path:
    """Speech + portrait → talking video (official ``audio2vid.py``), with the audio muxed in.

    Head pose comes from ``audio2pose``, or from ``pose_template`` ((T, 6), official ping-pong
    tiling); one of them is required. The resolved configuration is saved beside the video (.json).
    """
    from aniportrait_lib.audio.features import features_from_waveform, load_waveform
    from aniportrait_lib.audio.inference import audio_to_motion
    from aniportrait_lib.editing.performance import Performance

    if audio2pose is None and pose_template is None:
        raise ValueError("audio_to_video needs head motion: pass audio2pose or a pose_template")
    waveform = load_waveform(audio)  # clear errors for missing, corrupt or empty audio
    portrait = load_portrait(ref_image, config)
    features = features_from_waveform(waveform, source=str(audio))
    motion = audio_to_motion(
        features, audio2mesh, audio2pose, pose_template, style_id, config.seed, motion_config
    )
    performance = Performance.from_reference(portrait, motion.mesh_offsets, motion.pose, config.fps)
    path = render_performance(pipeline, portrait, performance, out_path, config, audio=(waveform, 16_000))
    _save_resolved_config(
        path, generate=config, motion=motion_config, style_id=motion.style_id, audio=str(audio)
    )
    return path


def read_pose_template(path: str | Path) -> np.ndarray:
    """A ``pose_temp.npy`` as (T, 6) float64; ``ValueError`` naming the file if it is not one."""
    try:
        template = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable .npy pose template: {err}") from err
    if template.ndim != 2 or template.shape[1] != 6 or len(template) == 0:
        raise ValueError(
            f"{path}: a pose template is (T, 6) (euler xyz degrees + translation), got {template.shape}"
        )
    if not np.all(np.isfinite(template)):
        raise ValueError(f"{path}: the pose template contains NaN or infinity")
    return template.astype(np.float64)


def pose_to_video(
    ref_image: str | Path | np.ndarray,
    source: str | Path | np.ndarray,
    pipeline,
    out_path: str | Path,
    config: GenerateConfig = GenerateConfig(),
    retarget_config=None,
) -> Path:
    """Portrait + head motion → video (self-driven, no speech model).

    Args:
        source: a pose template (``.npy`` path or (T, 6) array): the portrait's own face follows it;
            or a video file: its face is reenacted onto the portrait (official vid2vid retargeting,
            :mod:`aniportrait_lib.editing.retarget`) and its audio, if any, is kept.
    """
    from aniportrait_lib.editing.performance import Performance

    portrait = load_portrait(ref_image, config)
    audio = None
    if isinstance(source, np.ndarray) or Path(source).suffix == ".npy":
        template = source if isinstance(source, np.ndarray) else read_pose_template(source)
        if template.ndim != 2 or template.shape[1] != 6 or len(template) == 0:
            raise ValueError(f"a pose template is (T, 6), got {template.shape}")
        offsets = np.zeros((len(template), 468, 3))
        performance = Performance.from_reference(portrait, offsets, template, config.fps)
    else:
        performance, audio = _reenact(portrait, Path(source), retarget_config)
    path = render_performance(pipeline, portrait, performance, out_path, config, audio)
    described = "array" if isinstance(source, np.ndarray) else str(source)
    _save_resolved_config(path, generate=config, retarget=retarget_config, source=described)
    return path


def _reenact(portrait: Portrait, video: Path, retarget_config):
    from aniportrait_lib.audio.features import load_waveform
    from aniportrait_lib.editing.retarget import RetargetConfig, retarget
    from aniportrait_lib.landmarks.extract import LandmarkExtractor
    from aniportrait_lib.video_io import probe_video

    info = probe_video(video)
    with LandmarkExtractor() as extractor:
        landmarks = extractor.detect_video(video)
    performance = retarget(landmarks, portrait, retarget_config or RetargetConfig())
    audio = (load_waveform(video), 16_000) if info.audio_sample_rate else None
    return performance, audio
