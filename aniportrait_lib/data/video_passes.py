"""One source video → its prepared clips: the crop pass, the landmark pass and the parts written.

:mod:`aniportrait_lib.data.prepare` runs :func:`prepare_video` on each video of a folder and keeps the
manifest and the resumption; this module is what happens to one video, with the options of
:class:`PrepareConfig`:

1. **probe** the file (an unreadable, empty or non-video file raises a ``ValueError``: the caller
   records it as skipped, with the reason);
2. **resample** to ``fps`` (default 30, official) by nearest timestamp
   (:func:`~aniportrait_lib.data.face_track.resample_frames`);
3. **first pass**: landmarks on every ``crop_detect_stride``-th full frame → one stable square crop
   (:func:`~aniportrait_lib.data.face_track.stable_crop_box`);
4. **second pass**: crop + resize every frame to ``image_size`` (written to H.264 while MediaPipe
   runs on it, per-frame IMAGE mode by default = the official labels);
5. **gaps**: faceless runs of ≤ ``max_gap_frames`` are interpolated and flagged, longer ones split
   the clip into ``<id>_part0``, ``<id>_part1``, …; parts shorter than ``min_frames`` are dropped
   with their reason;
6. **write** each part's frames, landmarks and audio into its own folder in the work folder and
   return the parts' manifest entries (layout: :mod:`aniportrait_lib.data.manifest`).

Frame timing assumes a constant frame rate (the container's average rate), true of the datasets
the kit prepares (VFHQ, CelebV-HQ, HDTF).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from aniportrait_lib.audio.features import AudioFeatureConfig, load_waveform
from aniportrait_lib.data import face_track
from aniportrait_lib.data.face_track import CropBox, CropConfig, Segment, resample_frames
from aniportrait_lib.data.manifest import (
    AUDIO_NAME,
    FRAMES_NAME,
    LANDMARKS_NAME,
    PREPARED,
    SKIPPED,
    ClipLandmarks,
    copy_frames,
    split_of,
    write_audio,
    write_landmarks,
)
from aniportrait_lib.landmarks.extract import LandmarkExtractor, VideoLandmarks
from aniportrait_lib.video_io import VideoInfo, VideoWriter, probe_video, read_frames

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".flv", ".mpg", ".mpeg", ".ts", ".wmv")
"""Suffixes searched by default (FFmpeg reads all of them); annotation files next to them are ignored."""


@dataclass(frozen=True)
class PrepareConfig:
    """How a folder of videos becomes a prepared dataset (saved in ``manifest.json``)."""

    fps: float = 30.0
    """Output frame rate; the official scripts work at 30 fps (spec §1.4, §2.1)."""
    image_size: int = 512
    """Side of the square output frames in pixels (official ``vid2pose.py``: 512×512)."""
    crop: CropConfig = field(default_factory=CropConfig)
    """Scale, downward shift and padding of the per-clip crop (:mod:`.face_track`)."""
    crop_detect_stride: int = 5
    """First pass looks at every n-th resampled frame (6 per second at 30 fps; kit choice)."""
    max_gap_frames: int = 5
    """Longest faceless run that is interpolated (1/6 s at 30 fps; kit choice); longer ones split."""
    min_frames: int = 30
    """Shortest clip kept (official ``preprocess_dataset.py`` skips clips with < 30 usable frames)."""
    audio_sample_rate: int = 16000
    """Hz of ``audio.wav`` (wav2vec2-base-960h input rate, spec §2.1)."""
    held_out_fraction: float = 0.05
    """Share of source videos put in the "heldout" split, by a hash of the clip id (kit choice)."""
    split_salt: str = "aniportrait"
    """Mixed into that hash; change it to draw a different (still deterministic) held-out set."""
    running_mode: Literal["image", "video"] = "image"
    """MediaPipe mode for both passes: "image" = official per-frame detection; "video" = tracking
    (faster, landmarks drift by up to ~10 px, see :mod:`aniportrait_lib.landmarks.extract`)."""
    workers: int = 2
    """Landmark threads (this machine class has 2 cores); does not change the results."""
    crf: int = 18
    """H.264 quality of ``frames.mp4`` (libx264 CRF; 18 ≈ visually lossless)."""
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS
    """File suffixes (lower case) treated as videos; other files are counted as ignored."""
    progress: bool = True
    """Show tqdm progress bars (overall and per clip)."""

    def __post_init__(self) -> None:
        size_ok = self.image_size >= 64 and self.image_size % 2 == 0
        checks = {
            "fps > 0": self.fps > 0,
            "image_size even and >= 64 (H.264 4:2:0, MediaPipe minimum)": size_ok,
            "crop_detect_stride >= 1": self.crop_detect_stride >= 1,
            "max_gap_frames >= 0": self.max_gap_frames >= 0,
            "min_frames >= 1": self.min_frames >= 1,
            "0 <= held_out_fraction <= 1": 0 <= self.held_out_fraction <= 1,
            "crop.scale > 0": self.crop.scale > 0,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid PrepareConfig: need {'; '.join(failed)} (got {self})")


@dataclass(frozen=True)
class SourceClip:
    """One source video after both passes: where it came from and where its cropped frames are."""

    path: Path
    source: str
    """Path relative to the input folder (the manifest's key for resuming)."""
    clip_id: str
    split: str
    box: CropBox
    info: VideoInfo
    track_mp4: Path
    """All cropped, resampled frames (T frames, image_size², H.264) in the work folder."""
    source_frames: np.ndarray
    """(T,) int64 source frame index of each resampled frame."""


def _first_pass(path: Path, fps: float, extractor: LandmarkExtractor, config: PrepareConfig) -> CropBox:
    """Landmarks on every ``crop_detect_stride``-th resampled full frame → the clip's crop box."""
    stride = config.crop_detect_stride
    frames = resample_frames(read_frames(path), fps, config.fps)
    sampled = (frame for j, (_, frame) in enumerate(frames) if j % stride == 0)
    found = extractor.detect_video(sampled, fps=config.fps / stride, channel_order="rgb")
    boxes = face_track.face_boxes(found.lmks, found.found, found.image_size)
    where = f"{path} ({len(found.found)} frames checked, one in {stride})"
    return face_track.stable_crop_box(boxes, found.image_size, config.crop, where=where)


def _second_pass(
    path: Path, source_fps: float, box: CropBox, track_mp4: Path, extractor: LandmarkExtractor,
    config: PrepareConfig, total: int,
) -> tuple[VideoLandmarks, np.ndarray]:  # fmt: skip
    """Crop + resize every resampled frame, write them to ``track_mp4`` and extract their landmarks.

    Returns the landmarks of the cropped frames and (T,) source frame indices.
    """
    source_index: list[int] = []
    bar = tqdm(total=total, desc=path.name, unit="frame", leave=False, disable=not config.progress)

    with VideoWriter(track_mp4, config.fps, crf=config.crf) as writer:

        def cropped() -> Iterator[np.ndarray]:
            for index, frame in resample_frames(read_frames(path), source_fps, config.fps):
                out = face_track.crop_frame(frame, box, config.image_size, config.crop.pad_mode)
                writer.write(out)
                source_index.append(index)
                bar.update()
                yield out

        try:
            landmarks = extractor.detect_video(cropped(), fps=config.fps, channel_order="rgb")
        finally:
            bar.close()
    return landmarks, np.asarray(source_index, dtype=np.int64)


def prepare_video(
    path: Path, source: str, clip_id: str, work_dir: Path, extractor: LandmarkExtractor, config: PrepareConfig
) -> list[dict[str, Any]]:
    """Prepare one source video into ``work_dir/<part id>/`` folders; returns its manifest entries.

    Raises:
        ValueError: unreadable / non-video file, or no face in any sampled frame (caught by
            :func:`prepare_dataset`, which records the reason).
    """
    info = probe_video(path)
    if info.fps <= 0:
        raise ValueError(f"{path} has no usable frame rate")
    box = _first_pass(path, info.fps, extractor, config)
    total = max(1, math.ceil(info.duration * config.fps))
    work_dir.mkdir(parents=True, exist_ok=True)
    track_mp4 = work_dir / "track.mp4"
    landmarks, source_frames = _second_pass(path, info.fps, box, track_mp4, extractor, config, total)
    split = split_of(clip_id, config.held_out_fraction, config.split_salt)
    clip = SourceClip(path, source, clip_id, split, box, info, track_mp4, source_frames)
    return write_parts(clip, landmarks, work_dir, config)


def _load_audio(clip: SourceClip, config: PrepareConfig) -> tuple[np.ndarray | None, str | None]:
    """(16 kHz mono waveform, None), or (None, why there is no audio)."""
    if clip.info.audio_sample_rate is None:
        return None, "the source has no audio track"
    try:
        return load_waveform(clip.path, AudioFeatureConfig(sampling_rate=config.audio_sample_rate)), None
    except ValueError as err:
        return None, f"audio not decodable: {err}"


def _write_part(
    clip: SourceClip, landmarks: VideoLandmarks, segment: Segment, part_id: str,
    audio: tuple[np.ndarray | None, str | None], folder: Path, config: PrepareConfig,
) -> dict[str, Any]:  # fmt: skip
    """Write one part's landmarks, frames and audio into ``folder``; returns its manifest entry."""
    folder.mkdir(parents=True)
    cut = slice(segment.start, segment.stop)
    arrays, interpolated = face_track.interpolate_gaps(
        {key: getattr(landmarks, key)[cut] for key in face_track.LANDMARK_KEYS}, landmarks.found[cut]
    )
    found, source_frames = landmarks.found[cut], clip.source_frames[cut]
    write_landmarks(folder / LANDMARKS_NAME, ClipLandmarks(**arrays, found=found, interpolated=interpolated,
                                                           source_frames=source_frames))  # fmt: skip
    if len(segment) == len(landmarks.found):  # the whole track: no re-encoding
        clip.track_mp4.rename(folder / FRAMES_NAME)
    else:
        copy_frames(clip.track_mp4, folder / FRAMES_NAME, segment.start, segment.stop, config.fps, config.crf)
    waveform, note = audio
    rate, audio_duration = config.audio_sample_rate, 0.0
    if waveform is not None:
        samples = waveform[round(segment.start * rate / config.fps) : round(segment.stop * rate / config.fps)]
        note = None if len(samples) else "the source's audio ends before this clip starts"
        if len(samples):
            write_audio(folder / AUDIO_NAME, samples, rate)
            audio_duration = len(samples) / rate
    entry = {
        "id": part_id, "source": clip.source, "status": PREPARED, "split": clip.split,
        "fps": config.fps, "n_frames": len(segment), "duration": len(segment) / config.fps,
        "crop_box": clip.box.xyxy, "image_size": config.image_size, "has_audio": note is None,
        "audio_duration": audio_duration, "segment": [segment.start, segment.stop],
        "source_fps": clip.info.fps, "n_interpolated": int(interpolated.sum()),
    }  # fmt: skip
    return entry | ({"audio_note": note} if note else {})


def write_parts(
    clip: SourceClip, landmarks: VideoLandmarks, work_dir: Path, config: PrepareConfig
) -> list[dict[str, Any]]:
    """Split the track at long gaps and write each long-enough part; returns all entries.

    Raises:
        ValueError: no cropped frame has a face.
    """
    segments = face_track.split_segments(landmarks.found, config.max_gap_frames)
    if not segments:
        raise ValueError(f"no face found in any of the {len(landmarks.found)} cropped frames of {clip.path}")
    audio = _load_audio(clip, config)
    entries = []
    for k, segment in enumerate(segments):
        part_id = f"{clip.clip_id}_part{k}" if len(segments) > 1 else clip.clip_id
        if len(segment) >= config.min_frames:
            entries.append(_write_part(clip, landmarks, segment, part_id, audio, work_dir / part_id, config))
            continue
        reason = (
            f"frames {segment.start}-{segment.stop - 1} of {clip.path} ({len(segment)} frames) "
            f"are fewer than min_frames={config.min_frames}"
        )
        entries.append(
            skipped_entry(clip.source, part_id, reason) | {"segment": [segment.start, segment.stop]}
        )
    for entry in entries:  # frames outside every segment (no face at the ends) stay accountable
        entry["track_frames"] = len(landmarks.found)
    return entries


def skipped_entry(source: str, clip_id: str, reason: str) -> dict[str, Any]:
    """The manifest entry of a source or part that was not prepared, with the reason."""
    return {"id": clip_id, "source": source, "status": SKIPPED, "reason": reason}
