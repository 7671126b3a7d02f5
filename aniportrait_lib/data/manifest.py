"""The prepared dataset on disk: ``manifest.json``, one folder per clip, and a reader for both.

Layout written by :mod:`aniportrait_lib.data.prepare`::

    OUTPUT_DIR/
      manifest.json          dataset config + one entry per clip (prepared or skipped, with reason)
      clips/<clip_id>/
        frames.mp4           cropped frames, image_size², H.264, at the dataset fps
        landmarks.npz        per-frame arrays on the cropped frames (table below)
        audio.wav            16 kHz mono PCM16, same time span as the frames (only if the source had audio)

``landmarks.npz`` (T = number of frames of the clip):

| key | shape | meaning |
|---|---|---|
| ``lmks`` | (T, 478, 3) float32 | normalised to the cropped frame (x, y in [0, 1]), irises included |
| ``lmks3d`` | (T, 468, 3) float64 | pose-free metric mesh |
| ``trans_mat`` | (T, 4, 4) float64 | canonical → camera transform |
| ``bs`` | (T, 51) float32 | blendshape scores |
| ``found`` | (T,) bool | MediaPipe found the face in this frame |
| ``interpolated`` | (T,) bool | the row was filled from its neighbours (``== ~found``) |
| ``source_frames`` | (T,) int64 | index of the source-video frame each frame was taken from |

Pose images are not stored: :func:`pose_images` draws them from ``lmks`` when needed.

A **shard** folder (``prepare ... --shard I/N``) has the same layout, holds only the sources with
``shard_of(source, N) == I``, and its manifest also records ``"shard": {"index": I, "count": N,
"sources": [...]}`` (the sources it must prepare); :mod:`aniportrait_lib.data.shards` checks such
folders and merges N of them into the dataset one unsharded run would have written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from aniportrait_lib.atomic import atomic_path, write_json
from aniportrait_lib.landmarks.drawing import draw_landmarks
from aniportrait_lib.video_io import VideoWriter, read_frames

MANIFEST_NAME = "manifest.json"
CLIPS_DIR = "clips"
WORK_DIR = ".work"
"""Where the video in progress is written before its folders are renamed into ``clips/``."""
FRAMES_NAME, LANDMARKS_NAME, AUDIO_NAME = "frames.mp4", "landmarks.npz", "audio.wav"
FORMAT = "aniportrait-prepared/1"
"""Version tag written in every manifest; readers refuse other versions."""

PREPARED, SKIPPED = "prepared", "skipped"


@dataclass(frozen=True)
class ClipLandmarks:
    """The arrays of one clip's ``landmarks.npz`` (shapes in the module table)."""

    lmks: np.ndarray
    lmks3d: np.ndarray
    trans_mat: np.ndarray
    bs: np.ndarray
    found: np.ndarray
    interpolated: np.ndarray
    source_frames: np.ndarray

    def __len__(self) -> int:
        return len(self.lmks)


def pose_images(clip: ClipLandmarks, indices: Sequence[int] | None = None, size: int = 512) -> np.ndarray:
    """Draw the official pose images of some frames of a prepared clip.

    Args:
        clip: the clip's landmarks (:meth:`PreparedDataset.load_landmarks`).
        indices: frame indices (default: every frame).
        size: side of the square images in pixels.

    Returns:
        (N, size, size, 3) uint8 pose images (:func:`~aniportrait_lib.landmarks.drawing.draw_landmarks`).
    """
    chosen = range(len(clip)) if indices is None else list(indices)
    images = [draw_landmarks((size, size), clip.lmks[int(i)], normed=True) for i in chosen]
    return np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)


def find_videos(
    input_dir: Path, extensions: Iterable[str], exclude: Path | None = None
) -> tuple[list[Path], int]:
    """Video files under ``input_dir``, sorted, and the number of other files.

    The search is recursive; hidden files and folders are skipped, and so is ``exclude`` (the
    output folder, when it lies inside the input folder).
    """
    suffixes = {ext.lower() for ext in extensions}
    excluded = exclude.resolve() if exclude is not None else None
    videos, ignored = [], 0
    for path in sorted(input_dir.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(input_dir).parts) or not path.is_file():
            continue
        if excluded is not None and path.resolve().is_relative_to(excluded):
            continue
        if path.suffix.lower() in suffixes:
            videos.append(path)
        else:
            ignored += 1
    return videos, ignored


def clip_ids(relative_paths: list[str]) -> dict[str, str]:
    """Relative path → clip id: folders joined by ``__``, unsafe characters → ``_``, suffix dropped.

    Two files that differ only by suffix (``a.mp4``, ``a.mkv``) both keep it (``a_mp4``, ``a_mkv``).
    """

    def clean(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)

    stems = {rel: "__".join(clean(p) for p in Path(rel).with_suffix("").parts) for rel in relative_paths}
    counts: dict[str, int] = {}
    for stem in stems.values():
        counts[stem] = counts.get(stem, 0) + 1
    return {
        rel: stem if counts[stem] == 1 else f"{stem}_{clean(Path(rel).suffix.lstrip('.'))}"
        for rel, stem in stems.items()
    }


def split_of(clip_id: str, held_out_fraction: float, salt: str) -> str:
    """Put a deterministic ``held_out_fraction`` of ids in "heldout", the others in "train".

    The id and ``salt`` are hashed (SHA-1) to a number in [0, 1): the split of a clip never depends on
    which other clips exist, and all parts of one source share their source's split (no leakage).
    """
    digest = hashlib.sha1(f"{salt}/{clip_id}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < held_out_fraction else "train"


def shard_of(source: str, count: int) -> int:
    """The shard (0 … ``count`` - 1) that prepares ``source`` (path relative to the input folder).

    SHA-1 of the path modulo ``count``: every machine computes the same answer, each source is in
    exactly one shard, and adding or removing files never moves the others to another shard.
    """
    return int.from_bytes(hashlib.sha1(source.encode()).digest()[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the sources with ``shard_of(source, count) == index``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self}: need 0 <= I < N (the N shards are numbered 0 to N-1)")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` (e.g. ``"0/4"``) → ``Shard(I, N)``; ``ValueError`` quoting ``text`` otherwise."""
        match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
        if match is None:
            raise ValueError(f"shard {text!r}: expected I/N with whole numbers I < N, e.g. 0/4")
        return cls(int(match[1]), int(match[2]))

    def holds(self, source: str) -> bool:
        """True if this shard prepares ``source`` (relative path)."""
        return shard_of(source, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def write_landmarks(path: Path, landmarks: ClipLandmarks) -> None:
    """Write ``landmarks.npz`` (compressed, atomically)."""
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **dataclasses.asdict(landmarks))


def write_audio(path: Path, samples: np.ndarray, rate: int) -> None:
    """Write ``audio.wav``: (N,) float samples in [-1, 1] as mono PCM16, atomically."""
    with atomic_path(path) as tmp:
        soundfile.write(tmp, np.clip(samples, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")


def copy_frames(source: Path, dest: Path, start: int, stop: int, fps: float, crf: int) -> int:
    """Re-encode frames ``[start, stop)`` of ``source`` into ``dest`` (H.264); returns the count.

    Used for the parts of a split clip (a second lossy encode at the same CRF; an unsplit clip keeps
    its first and only encode).
    """
    with VideoWriter(dest, fps, crf=crf) as writer:
        for index, frame in enumerate(read_frames(source)):
            if index >= stop:
                break
            if index >= start:
                writer.write(frame)
    if writer.frames_written != stop - start:
        raise ValueError(f"{source} has {writer.frames_written + start} frames, expected at least {stop}")
    return writer.frames_written


def clip_files(root: Path, entry: dict[str, Any]) -> list[Path]:
    """The files a prepared clip must have (audio only when ``has_audio``)."""
    folder = root / CLIPS_DIR / entry["id"]
    names = [FRAMES_NAME, LANDMARKS_NAME] + ([AUDIO_NAME] if entry.get("has_audio") else [])
    return [folder / name for name in names]


def config_changes(wanted: dict[str, Any], stored: dict[str, Any], ignore: Sequence[str] = ()) -> list[str]:
    """Sorted names of the config fields that differ between two JSON configs, ``ignore`` keys aside."""
    keys = (set(wanted) | set(stored)) - set(ignore)
    return sorted(key for key in keys if wanted.get(key) != stored.get(key))


def claim_ids(source: str, entries: list[dict[str, Any]], taken: dict[str, str]) -> list[dict[str, Any]]:
    """``entries`` of ``source`` with each id already in ``taken`` (id → source using it) made a skip.

    E.g. part 0 of ``x.mp4`` and the file ``x_part0.mp4`` both want the id ``x_part0``: the source
    prepared first keeps it, the other's entry says why it was skipped.
    """
    return [
        {"id": entry["id"], "source": source, "status": SKIPPED,
         "reason": f"clip id {entry['id']} is already used by {taken[entry['id']]}; rename one file"}
        if entry["id"] in taken else entry
        for entry in entries
    ]  # fmt: skip


@dataclass
class Manifest:
    """Dataset-level ``config`` plus ``clips``: one dict per clip, in the order they were made.

    Every clip dict has ``id``, ``source`` (path relative to the input folder), ``status``
    ("prepared" | "skipped") and, when skipped, ``reason``; prepared ones also ``fps``,
    ``n_frames``, ``duration`` (s), ``crop_box`` ([x0, y0, x1, y1] source pixels), ``image_size``,
    ``has_audio``, ``split`` ("train" | "heldout"), ``segment`` ([start, stop) in the resampled
    source timeline of ``track_frames`` frames) and ``n_interpolated``.

    A shard's manifest also has ``shard`` and ``shard_sources`` (written only when ``shard`` is set,
    so an unsharded manifest looks as it always did).
    """

    config: dict[str, Any]
    clips: list[dict[str, Any]]
    input_dir: str = ""
    shard: Shard | None = None
    """Which shard of a sharded preparation this folder holds; None for a whole dataset."""
    shard_sources: list[str] = field(default_factory=list)
    """The sources the shard must prepare (its to-do list; the merge checks they are all done)."""

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read ``manifest.json``; ``ValueError`` naming the file if it is not a prepared-dataset manifest."""
        path = Path(path)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not the manifest of a prepared dataset (format {FORMAT})")
        shard = payload.get("shard")
        return cls(
            payload["config"], payload["clips"], payload.get("input_dir", ""),
            Shard(shard["index"], shard["count"]) if shard else None, shard["sources"] if shard else [],
        )  # fmt: skip

    def save(self, path: str | Path) -> None:
        """Write atomically (a killed run leaves the previous complete manifest)."""
        payload = {"format": FORMAT, "input_dir": self.input_dir, "config": self.config, "clips": self.clips}
        if self.shard is not None:
            payload["shard"] = dataclasses.asdict(self.shard) | {"sources": self.shard_sources}
        write_json(path, payload)

    @classmethod
    def open(
        cls, root: Path, config: dict[str, Any], input_dir: Path, ignore: Sequence[str] = (),
        shard: Shard | None = None,
    ) -> Manifest:  # fmt: skip
        """The manifest of ``root`` if there is one (its config must equal ``config`` except for
        the ``ignore`` keys, and it must hold the same ``shard``), else a new empty one. ``config`` is
        the JSON form (as stored).

        Raises:
            ValueError: the stored config differs (names the differing fields) or the shard does, or
                the file is broken.
        """
        path = root / MANIFEST_NAME
        if not path.exists():
            return cls(config, [], str(input_dir.resolve()), shard)
        manifest = cls.load(path)
        changed = config_changes(config, manifest.config, ignore)
        if changed:
            raise ValueError(
                f"{path} was made with a different config ({', '.join(changed)}); "
                "use a new output folder or the same options to resume"
            )
        if manifest.shard != shard:
            held, asked = (
                f"shard {s}" if s else "no shard (a whole dataset)" for s in (manifest.shard, shard)
            )
            raise ValueError(f"{path} holds {held}, this run asks for {asked}; use a new output folder")
        return manifest

    def commit(self, root: Path, work_dir: Path, source: str, entries: list[dict[str, Any]]) -> None:
        """Move a source's finished part folders from ``work_dir`` into ``root/clips/`` and rewrite
        the manifest atomically: the moment the source counts as done. A kill before the manifest
        is written only costs redoing this source (its old folders are replaced then).
        """
        taken = {entry["id"]: entry["source"] for entry in self.clips if entry["source"] != source}
        entries = claim_ids(source, entries, taken)
        for entry in self.entries_for(source) + entries:
            if entry["id"] not in taken:
                shutil.rmtree(root / CLIPS_DIR / entry["id"], ignore_errors=True)
        for entry in entries:
            if entry["status"] == PREPARED:
                (root / CLIPS_DIR).mkdir(parents=True, exist_ok=True)
                (work_dir / entry["id"]).rename(root / CLIPS_DIR / entry["id"])
        self.replace_source(source, entries)
        self.save(root / MANIFEST_NAME)
        shutil.rmtree(work_dir, ignore_errors=True)

    def entries_for(self, source: str) -> list[dict[str, Any]]:
        """The clip entries made from one source video (relative path)."""
        return [entry for entry in self.clips if entry["source"] == source]

    def is_finished(self, source: str, root: Path, count_skipped: bool = True) -> bool:
        """True when ``source`` has entries and every prepared one has all its files in ``root``.

        With ``count_skipped=False`` a source whose only entry is a skip is not finished.
        """
        entries = self.entries_for(source)
        if not count_skipped and all(entry["status"] == SKIPPED for entry in entries):
            return False
        prepared = [entry for entry in entries if entry["status"] == PREPARED]
        return bool(entries) and all(p.is_file() for entry in prepared for p in clip_files(root, entry))

    def replace_source(self, source: str, entries: list[dict[str, Any]]) -> None:
        """Put ``entries`` in place of the old entries of ``source`` (clips stay sorted by source)."""
        kept = [entry for entry in self.clips if entry["source"] != source]
        self.clips = sorted(kept + entries, key=lambda entry: entry["source"])  # stable: parts keep order


class PreparedDataset:
    """Read a folder written by :func:`aniportrait_lib.data.prepare.prepare_dataset`.

    Example::

        data = PreparedDataset("outputs/prepared")
        clip = data.clips[0]                         # manifest entry (dict)
        lm = data.load_landmarks(clip["id"])         # ClipLandmarks, lm.lmks (T, 478, 3)
        poses = data.pose_images(clip["id"], [0, 1], 512)
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.manifest = Manifest.load(self.root / MANIFEST_NAME)
        self.config = self.manifest.config

    @property
    def clips(self) -> list[dict[str, Any]]:
        """Manifest entries of the prepared clips (skipped ones are in :attr:`skipped`)."""
        return [entry for entry in self.manifest.clips if entry["status"] == PREPARED]

    @property
    def skipped(self) -> list[dict[str, Any]]:
        """Manifest entries of skipped sources and dropped segments, each with its ``reason``."""
        return [entry for entry in self.manifest.clips if entry["status"] == SKIPPED]

    def split(self, name: str) -> list[dict[str, Any]]:
        """Prepared clips of one split ("train" or "heldout")."""
        return [entry for entry in self.clips if entry["split"] == name]

    def clip(self, clip_id: str) -> dict[str, Any]:
        """The manifest entry of a prepared clip; ``KeyError`` naming the id if there is none."""
        for entry in self.clips:
            if entry["id"] == clip_id:
                return entry
        raise KeyError(f"no prepared clip {clip_id!r} in {self.root / MANIFEST_NAME}")

    def _file(self, clip_id: str, name: str) -> Path:
        return self.root / CLIPS_DIR / self.clip(clip_id)["id"] / name

    def load_landmarks(self, clip_id: str) -> ClipLandmarks:
        """The clip's ``landmarks.npz`` as :class:`ClipLandmarks`."""
        path = self._file(clip_id, LANDMARKS_NAME)
        with np.load(path) as data:
            return ClipLandmarks(**{key: data[key] for key in ClipLandmarks.__dataclass_fields__})

    def frames(self, clip_id: str) -> Iterator[np.ndarray]:
        """Lazily decoded cropped frames, (image_size, image_size, 3) uint8 RGB."""
        return read_frames(self._file(clip_id, FRAMES_NAME))

    def audio(self, clip_id: str) -> tuple[np.ndarray, int]:
        """``(samples (N,) float32 in [-1, 1], 16000)``; ``ValueError`` if the source had no audio."""
        if not self.clip(clip_id)["has_audio"]:
            raise ValueError(f"clip {clip_id} has no audio (its source video had no audio track)")
        samples, rate = soundfile.read(self._file(clip_id, AUDIO_NAME), dtype="float32")
        return samples, int(rate)

    def pose_images(self, clip_id: str, indices: Sequence[int] | None = None, size: int = 512) -> np.ndarray:
        """:func:`pose_images` of one clip: (N, size, size, 3) uint8."""
        return pose_images(self.load_landmarks(clip_id), indices, size)
