"""Turn a folder of talking-head videos into a training set: crops, 30 fps, 16 kHz audio, landmarks.

The official repository starts from frames that are already cropped (spec §1.4); this module does
the step before, for VFHQ, CelebV-HQ, HDTF or your own clips (any container PyAV reads, nested
folders allowed). Per source video:

1. **probe** the file (corrupt / empty / non-video files are skipped with the reason);
2. **resample** to ``fps`` (default 30, official) by nearest timestamp
   (:func:`~aniportrait_lib.data.face_track.resample_frames`);
3. **first pass**: landmarks on every ``crop_detect_stride``-th full frame → one stable square crop
   (:func:`~aniportrait_lib.data.face_track.stable_crop_box`);
4. **second pass**: crop + resize every frame to ``image_size`` (written to H.264 while MediaPipe
   runs on it, per-frame IMAGE mode by default = the official labels);
5. **gaps**: faceless runs of ≤ ``max_gap_frames`` are interpolated and flagged, longer ones split
   the clip into ``<id>_part0``, ``<id>_part1``, …; parts shorter than ``min_frames`` are dropped
   with their reason;
6. **write** each part into a temporary folder, rename it into ``clips/<id>/`` when complete and
   rewrite ``manifest.json`` atomically (layout: :mod:`aniportrait_lib.data.manifest`).

A re-run skips the sources whose entries and files are complete, so a killed run loses at most
the video in progress. Command line::

    python -m aniportrait_lib.data.prepare INPUT_DIR OUTPUT_DIR [--fps 30 --size 512 ...]

**On N machines**: ``--shard I/N`` prepares one shard of the sources, and ``merge`` joins the N
shard folders into the dataset one unsharded run makes (how, and why they agree:
:mod:`aniportrait_lib.data.shards`)::

    python -m aniportrait_lib.data.prepare INPUT_DIR shard0/ --shard 0/2   # machine 0, likewise 1/2 …
    python -m aniportrait_lib.data.prepare merge OUTPUT_DIR shard0/ shard1/

(An input folder named ``merge``: write ``./merge``.)

Frame timing assumes a constant frame rate (the container's average rate), true of the datasets above.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
from tqdm.auto import tqdm

from aniportrait_lib.audio.features import AudioFeatureConfig, load_waveform
from aniportrait_lib.data import face_track
from aniportrait_lib.data.face_track import CropBox, CropConfig, Segment, resample_frames
from aniportrait_lib.data.manifest import (
    AUDIO_NAME,
    FRAMES_NAME,
    LANDMARKS_NAME,
    MANIFEST_NAME,
    PREPARED,
    SKIPPED,
    WORK_DIR,
    ClipLandmarks,
    Manifest,
    Shard,
    clip_ids,
    copy_frames,
    find_videos,
    split_of,
    write_audio,
    write_landmarks,
)
from aniportrait_lib.data.shards import merge_shard_folders
from aniportrait_lib.landmarks.extract import ExtractorConfig, LandmarkExtractor, VideoLandmarks
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


RESUME_IGNORES = ("workers", "progress")
"""Config fields that may differ between a run and its resumption (they do not change outputs)."""


@dataclass
class PrepareSummary:
    """What a :func:`prepare_dataset` run did; ``str()`` gives the printed end-of-run report."""

    prepared: list[str] = field(default_factory=list)
    """Ids of all prepared clips in the dataset (made now or in an earlier run)."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(id, reason) of skipped sources and dropped segments."""
    resumed: list[str] = field(default_factory=list)
    """Sources found finished by an earlier run and not redone."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall-clock seconds per source processed in this run."""
    ignored_files: int = 0
    """Files whose suffix is not in ``config.extensions``."""
    shard: Shard | None = None
    """The shard this run prepared (its sources only), or None for the whole input folder."""

    def __str__(self) -> str:
        lines = [f"{len(self.prepared)} prepared, {len(self.skipped)} skipped"]
        if self.shard is not None:
            lines.append(f"  shard {self.shard} only: merge all {self.shard.count} shards when they are done")
        lines += [f"  skipped {clip_id}: {reason}" for clip_id, reason in self.skipped]
        if self.resumed:
            lines.append(f"  {len(self.resumed)} source(s) were already done and kept")
        if self.seconds:
            total = sum(self.seconds.values())
            lines.append(f"  {len(self.seconds)} source(s) processed in {total:.1f} s")
        if self.ignored_files:
            lines.append(f"  {self.ignored_files} file(s) without a video suffix ignored")
        return "\n".join(lines)


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
        entries.append(_skipped(clip.source, part_id, reason) | {"segment": [segment.start, segment.stop]})
    for entry in entries:  # frames outside every segment (no face at the ends) stay accountable
        entry["track_frames"] = len(landmarks.found)
    return entries


def _skipped(source: str, clip_id: str, reason: str) -> dict[str, Any]:
    return {"id": clip_id, "source": source, "status": SKIPPED, "reason": reason}


def prepare_dataset(
    input_dir: str | Path,
    output_dir: str | Path,
    config: PrepareConfig = PrepareConfig(),
    on_source_done: Callable[[str], None] | None = None,
    retry_skipped: bool = False,
    shard: Shard | None = None,
) -> PrepareSummary:
    """Prepare every video under ``input_dir`` into ``output_dir`` (resumable; see module docstring).

    Args:
        input_dir: folder of videos, searched recursively.
        output_dir: dataset folder (created); an existing one is resumed if its config matches.
        config: options; defaults follow the official data (30 fps, 512², ≥ 30 frames).
        on_source_done: called with the source's relative path after each source is committed.
        retry_skipped: also redo sources that an earlier run skipped (e.g. after fixing a file);
            by default a recorded skip counts as finished.
        shard: prepare only this shard's sources (:class:`~aniportrait_lib.data.manifest.Shard`);
            ``output_dir`` then holds one shard, to be joined by :func:`merge_shards`
            (:mod:`aniportrait_lib.data.shards`).

    Returns:
        :class:`PrepareSummary` (also printed by the command line).

    Raises:
        ValueError: ``input_dir`` is not a folder, or ``output_dir`` holds a different config or shard.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise ValueError(f"{input_dir} is not a folder")
    resolved = json.loads(json.dumps(dataclasses.asdict(config), default=str))  # as stored: tuples → lists
    manifest = Manifest.open(output_dir, resolved, input_dir, ignore=RESUME_IGNORES, shard=shard)
    shutil.rmtree(output_dir / WORK_DIR, ignore_errors=True)  # leftovers of a killed run
    paths, ignored = find_videos(input_dir, config.extensions, exclude=output_dir)
    sources = [p.relative_to(input_dir).as_posix() for p in paths]
    ids = clip_ids(sources)  # over the whole folder, so that a shard names its clips as a whole run does
    todo = [
        (path, source)
        for path, source in zip(paths, sources, strict=True)
        if shard is None or shard.holds(source)
    ]
    if shard is not None:  # the shard's to-do list, written first: the merge checks it is all done
        manifest.shard_sources = [source for _, source in todo]
        manifest.save(output_dir / MANIFEST_NAME)
    summary = PrepareSummary(ignored_files=ignored, shard=shard)
    extractor_config = ExtractorConfig(video_running_mode=config.running_mode, workers=config.workers)
    with LandmarkExtractor(extractor_config) as extractor:
        for path, source in tqdm(todo, desc="videos", disable=not config.progress):
            if manifest.is_finished(source, output_dir, count_skipped=not retry_skipped):
                summary.resumed.append(source)
                continue
            start, work_dir = time.perf_counter(), output_dir / WORK_DIR / ids[source]
            shutil.rmtree(work_dir, ignore_errors=True)
            try:
                entries = prepare_video(path, source, ids[source], work_dir, extractor, config)
            except (ValueError, OSError, av.FFmpegError) as err:
                entries = [_skipped(source, ids[source], str(err))]
            manifest.commit(output_dir, work_dir, source, entries)
            summary.seconds[source] = time.perf_counter() - start
            if on_source_done is not None:
                on_source_done(source)
    if (output_dir / WORK_DIR).is_dir() and not any((output_dir / WORK_DIR).iterdir()):
        (output_dir / WORK_DIR).rmdir()
    return _count(manifest, summary)


def _count(manifest: Manifest, summary: PrepareSummary) -> PrepareSummary:
    """Fill ``summary.prepared`` and ``summary.skipped`` from the manifest's entries."""
    summary.prepared = [e["id"] for e in manifest.clips if e["status"] == PREPARED]
    summary.skipped = [(e["id"], e["reason"]) for e in manifest.clips if e["status"] == SKIPPED]
    return summary


def merge_shards(output_dir: str | Path, shard_dirs: Sequence[str | Path]) -> PrepareSummary:
    """Join the folders of the runs ``--shard 0/N`` … ``--shard N-1/N`` into one dataset.

    :func:`~aniportrait_lib.data.shards.merge_shard_folders` (checks every shard first, then
    hard-links the clips and writes ``manifest.json`` last), letting ``workers`` and ``progress``
    differ between machines.

    Args:
        output_dir: the merged dataset (created); must not hold a ``manifest.json`` yet.
        shard_dirs: the N shard folders, in any order.

    Returns:
        :class:`PrepareSummary` of the merged dataset (its clip lists only).

    Raises:
        ValueError: naming the folder and the problem (missing, unfinished or foreign shard, or an
            ``output_dir`` that already holds a dataset); nothing is written then.
    """
    return _count(merge_shard_folders(output_dir, shard_dirs, ignore=RESUME_IGNORES), PrepareSummary())


def _shard(text: str) -> Shard:
    """``--shard`` value: ``"I/N"`` → :class:`Shard` (argparse prints the message of a bad one)."""
    try:
        return Shard.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m aniportrait_lib.data.prepare INPUT_DIR OUTPUT_DIR [options]``, or
    ``python -m aniportrait_lib.data.prepare merge OUTPUT_DIR SHARD_DIR...`` (module docstring).

    Returns 0, or 2 after printing one line ``error: ...`` when the input is refused.
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["merge"]:
        return _merge_main(argv[1:])
    defaults = PrepareConfig()
    parser = argparse.ArgumentParser(
        prog="python -m aniportrait_lib.data.prepare",
        description=__doc__.split("\n")[0],
        epilog="Merge shards: python -m aniportrait_lib.data.prepare merge OUTPUT_DIR SHARD_DIR...",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("input_dir", type=Path, help="folder of videos (searched recursively)")
    add("output_dir", type=Path, help="prepared dataset; an existing one is resumed")
    add("--fps", type=float, default=defaults.fps, help="output frame rate")
    add("--size", type=int, default=defaults.image_size, help="output side in pixels")
    add("--crop-scale", type=float, default=defaults.crop.scale, help="crop side / face height")
    add("--stride", type=int, default=defaults.crop_detect_stride, help="first-pass frame stride")
    add("--max-gap", type=int, default=defaults.max_gap_frames, help="longest interpolated gap (frames)")
    add("--min-frames", type=int, default=defaults.min_frames, help="shortest clip kept")
    add("--held-out", type=float, default=defaults.held_out_fraction, help="held-out share of videos")
    add("--tracking", action="store_true", help="MediaPipe VIDEO mode (faster, drifts a few px)")
    add("--workers", type=int, default=defaults.workers, help="landmark threads")
    add("--no-progress", action="store_true", help="hide the progress bars")
    add("--retry-skipped", action="store_true", help="redo sources skipped by an earlier run")
    add("--shard", type=_shard, metavar="I/N", help="prepare only shard I of N (0 <= I < N), then merge")
    args = parser.parse_args(argv)
    try:
        config = PrepareConfig(
            fps=args.fps, image_size=args.size, crop=CropConfig(scale=args.crop_scale),
            crop_detect_stride=args.stride, max_gap_frames=args.max_gap, min_frames=args.min_frames,
            held_out_fraction=args.held_out, running_mode="video" if args.tracking else "image",
            workers=args.workers, progress=not args.no_progress,
        )  # fmt: skip
        summary = prepare_dataset(
            args.input_dir, args.output_dir, config, retry_skipped=args.retry_skipped, shard=args.shard
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary)
    return 0


def _merge_main(argv: list[str]) -> int:
    """``merge OUTPUT_DIR SHARD_DIR...``: :func:`merge_shards` from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m aniportrait_lib.data.prepare merge",
        description="Join the shard folders of a sharded preparation into one dataset (hard links).",
    )
    parser.add_argument("output_dir", type=Path, help="the merged dataset (a new folder)")
    parser.add_argument("shard_dirs", type=Path, nargs="+", help="the folders of shards 0/N … N-1/N")
    args = parser.parse_args(argv)
    try:
        summary = merge_shards(args.output_dir, args.shard_dirs)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"merged {len(args.shard_dirs)} shards into {args.output_dir}: {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
