"""Generated videos paired with the real ones they should match, and decoded for measuring.

A test set is a folder of real clips (HDTF-style ``.mp4`` files, or a prepared dataset's held-out clips);
a generated set is a folder of videos made from the same speech and portrait. :func:`find_pairs` pairs
them by file stem (rule in its docstring) and finds each pair's speech; :func:`load_pair` decodes a pair
into frames of one size and length (and the speech, when a metric needs it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from aniportrait_lib.data.face_track import resample_frames
from aniportrait_lib.data.manifest import AUDIO_NAME, CLIPS_DIR, FRAMES_NAME, MANIFEST_NAME, PreparedDataset
from aniportrait_lib.video_io import probe_video, read_frames

__all__ = ["LoadedPair", "VideoPair", "find_pairs", "load_pair"]


@dataclass(frozen=True)
class VideoPair:
    """A generated video and the real one it should match (same speech, same person)."""

    name: str  # the reference's stem (a prepared dataset: the clip id)
    generated: Path
    reference: Path
    audio: Path | None = None  # the speech (any file PyAV decodes, an mp4 too); None: none known


@dataclass
class LoadedPair:
    """A pair decoded for measuring: F common frames, the reference resized to the generated size."""

    name: str
    generated: np.ndarray  # (F, H, W, 3) uint8 RGB
    reference: np.ndarray  # (F, H, W, 3) uint8 RGB
    fps: float  # of the generated video
    audio: np.ndarray | None  # (N,) float32 mono 16 kHz speech (first F / fps seconds), or None


def _video_files(folder: Path, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise ValueError(f"{folder}: the {what} folder does not exist")
    return {path.stem: path for path in sorted(folder.glob("*.mp4"))}


def _audio_files(audio: Path | None) -> Callable[[str], Path | None]:
    if audio is None:
        return lambda stem: None
    if audio.is_file():
        return lambda stem: audio
    if not audio.is_dir():
        raise ValueError(f"{audio}: no such audio file or folder")
    files = {path.stem: path for path in sorted(audio.iterdir()) if path.is_file()}
    return files.get


def find_pairs(
    generated: str | Path, reference: str | Path, audio: str | Path | None = None, suffix: str = ""
) -> list[VideoPair]:
    """Pair generated videos with reference videos by file stem.

    Rule: the reference ``<stem>.mp4`` pairs with the generated ``<stem><suffix>.mp4`` (``suffix`` e.g.
    ``"_true_pose"`` for notebook 05's ``<clip>_true_pose.mp4``). ``reference`` is either

    * a folder of ``.mp4`` files (HDTF-style test sets: one clip per file), or
    * a prepared dataset (``manifest.json``, :mod:`aniportrait_lib.data.prepare`): its **held-out** clips,
      ``<stem>`` = the clip id, reference video ``clips/<id>/frames.mp4``.

    Every reference clip needs its generated video; generated files without a reference are ignored.
    The speech of a pair: ``audio`` (one file for every pair, or a folder of ``<stem>.*`` files), else the
    prepared clip's ``audio.wav``, else the reference's audio track, else the generated video's, else none.

    Raises:
        ValueError: a folder is missing or empty, or a reference clip has no generated video.
    """
    generated, reference = Path(generated), Path(reference)
    produced = _video_files(generated, "generated")
    audio_for = _audio_files(Path(audio) if audio is not None else None)
    if (reference / MANIFEST_NAME).is_file():
        dataset = PreparedDataset(reference)
        clips = {entry["id"]: reference / CLIPS_DIR / entry["id"] for entry in dataset.split("heldout")}
        references = {stem: folder / FRAMES_NAME for stem, folder in clips.items()}
        speech = {s: f / AUDIO_NAME for s, f in clips.items() if (f / AUDIO_NAME).is_file()}
        where = f"{reference} (prepared dataset, held-out clips)"
    else:
        references, speech, where = _video_files(reference, "reference"), {}, str(reference)
    if not references:
        raise ValueError(f"{where}: no reference videos (.mp4) found")
    missing = [stem for stem in references if stem + suffix not in produced]
    if missing:
        shown = ", ".join(f"{stem}{suffix}.mp4" for stem in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ValueError(
            f"{generated}: no generated video for {len(missing)} reference clip(s): {shown}{more}"
        )
    pairs = []
    for stem, path in references.items():
        video = produced[stem + suffix]
        sound = audio_for(stem) or speech.get(stem) or _audio_track(path) or _audio_track(video)
        pairs.append(VideoPair(stem, video, path, sound))
    return pairs


def _audio_track(video: Path) -> Path | None:
    return video if probe_video(video).audio_sample_rate is not None else None


def _read(frames: Iterable[np.ndarray], max_frames: int | None) -> np.ndarray:
    kept = []
    for frame in frames:
        kept.append(frame)
        if max_frames is not None and len(kept) >= max_frames:
            break
    return np.stack(kept)


def load_pair(pair: VideoPair, max_frames: int | None = None, speech: bool = True) -> LoadedPair:
    """Decode a pair for measuring, frame i of one against frame i of the other:

    * the reference re-timed to the generated video's frame rate when they differ (nearest timestamp,
      :func:`~aniportrait_lib.data.face_track.resample_frames`: e.g. a 25 fps HDTF clip against 30 fps
      generated video) and its frames resized (area interpolation) to the generated frames' size;
    * both cut to their common length (and ``max_frames``);
    * the speech (unless ``speech`` is False: only LSE needs it) cut to the frames' duration.

    Raises:
        ValueError: naming the file that is unreadable or has no frames (:mod:`aniportrait_lib.video_io`).
    """
    from aniportrait_lib.audio.features import load_waveform  # audio decoding only where a pair is loaded

    fps, reference_fps = probe_video(pair.generated).fps, probe_video(pair.reference).fps
    generated = _read(read_frames(pair.generated), max_frames)
    frames = read_frames(pair.reference)
    if abs(reference_fps - fps) > 1e-3 * fps:
        frames = (frame for _, frame in resample_frames(frames, reference_fps, fps))
    reference = _read(frames, max_frames)
    n = min(len(generated), len(reference))
    generated, reference = generated[:n], reference[:n]
    height, width = generated.shape[1:3]
    if reference.shape[1:3] != (height, width):
        reference = np.stack(
            [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in reference]
        )
    audio = None
    if speech and pair.audio is not None:
        audio = load_waveform(pair.audio)[: round(n / fps * 16_000)]
    return LoadedPair(pair.name, generated, reference, fps, audio)
