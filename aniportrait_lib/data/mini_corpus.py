"""The mini corpus: a deterministic talking-head dataset with ground truth, made in about a minute.

Real talking-head datasets (VFHQ, CelebV-HQ, HDTF) are large, licence-bound and slow to train on.
The kit therefore makes its own: the sample portrait speaks eSpeak NG sentences with several
voices and speeds. For every clip the mouth follows the phoneme timings (:mod:`.visemes`), the
eyes blink and the head sways and nods at stressed syllables (:mod:`.head_motion`); the face mesh
is moved by a small rig (:mod:`.face_rig`), projected with the official camera and the portrait is
warped to follow it (:mod:`.render`). Every driving signal is stored with the clip, so each later
stage can be trained *and measured* against the truth.

Layout of a corpus folder::

    corpus.json            config, reference summary and one entry per clip
    reference.npz          portrait (S, S, 3), lmks (478, 3), lmks3d (468, 3), trans_mat (4, 4)
    clips/<id>.mp4         frames (H.264) with the speech muxed in (AAC)
    audio/<id>.wav         the speech, 16 kHz mono PCM16
    truth/<id>.npz         offsets (T, 468, 3), pose (T, 6), jaw, spread, blink, lmks2d, phonemes

Clips are split by sentence: held-out clips speak sentences that no training clip speaks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from aniportrait_lib import atomic
from aniportrait_lib.data.corpus_text import SENTENCES, VOICES
from aniportrait_lib.data.face_rig import FaceRig, RigConfig
from aniportrait_lib.data.head_motion import HeadMotionConfig
from aniportrait_lib.data.render import ClipTruth, Reference, clip_truth, render_frames
from aniportrait_lib.data.samples import load_portrait
from aniportrait_lib.data.speech import Speech, SpeechRequest, synthesize_many
from aniportrait_lib.data.visemes import ArticulationConfig
from aniportrait_lib.video_io import write_video

AUDIO_RATE = 16_000
"""Hz of the stored speech (wav2vec2's rate, spec §2.1)."""
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CorpusConfig:
    """Size and variety of a mini corpus (defaults: the ``cpu`` profile's; :mod:`aniportrait_lib.profiles`
    chooses each profile's)."""

    n_clips: int = 40
    """Number of clips (one sentence each; at most len(SENTENCES) distinct sentences)."""
    image_size: int = 256
    """Side of the square frames in pixels (the official training size is 512)."""
    fps: float = 30.0
    """Frame rate (the official Audio2Lmk and inference rate, spec §2.1)."""
    heldout_every: int = 5
    """Every n-th clip (and so its sentence) is held out for evaluation."""
    rate_range: tuple[int, int] = (135, 185)
    """eSpeak speaking rate range, words per minute."""
    pitch_range: tuple[int, int] = (35, 65)
    """eSpeak base pitch range (0-100)."""
    voices: tuple[str, ...] = VOICES
    seed: int = 0
    """Everything random (voice choice, rate, pitch, sway, blinks) derives from this seed."""
    head: HeadMotionConfig = field(default_factory=HeadMotionConfig)
    rig: RigConfig = field(default_factory=RigConfig)
    articulation: ArticulationConfig = field(default_factory=ArticulationConfig)


@dataclass(frozen=True)
class ClipSpec:
    """One planned clip: what is said, by which voice, and where the files are."""

    clip_id: str
    text: str
    voice: str
    rate: int
    pitch: int
    split: str  # "train" or "heldout"
    n_frames: int = 0
    duration: float = 0.0


def plan_clips(config: CorpusConfig) -> list[ClipSpec]:
    """The clips of a corpus, deterministically from ``config.seed``."""
    if not 1 <= config.n_clips:
        raise ValueError(f"n_clips must be at least 1, got {config.n_clips}")
    rng = np.random.default_rng(config.seed)
    clips = []
    for i in range(config.n_clips):
        split = "heldout" if i % config.heldout_every == config.heldout_every - 1 else "train"
        clips.append(
            ClipSpec(
                clip_id=f"clip{i:03d}",
                text=SENTENCES[i % len(SENTENCES)],
                voice=config.voices[int(rng.integers(len(config.voices)))],
                rate=int(rng.integers(config.rate_range[0], config.rate_range[1] + 1)),
                pitch=int(rng.integers(config.pitch_range[0], config.pitch_range[1] + 1)),
                split=split,
            )
        )
    return clips


def config_digest(config: CorpusConfig) -> str:
    """A short hash of the config: a corpus folder is reused only for the same config."""
    payload = json.dumps(dataclasses.asdict(config), sort_keys=True) + f"v{FORMAT_VERSION}"
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def build_reference(image_size: int) -> tuple[Reference, np.ndarray]:
    """The sample portrait at ``image_size`` with its MediaPipe landmarks: (Reference, lmks (478, 3))."""
    # MediaPipe (slow to import): only building a corpus needs it, reading one does not
    from aniportrait_lib.landmarks.extract import LandmarkExtractor

    portrait = load_portrait()
    if portrait.shape[0] != image_size:
        resized = Image.fromarray(portrait).resize((image_size, image_size), Image.Resampling.LANCZOS)
        portrait = np.asarray(resized)
    with LandmarkExtractor() as extractor:
        face = extractor.detect(portrait, "rgb", where=f"data_samples/portrait.png at {image_size} px")
    return Reference(portrait, face.lmks3d.astype(np.float64), face.trans_mat.astype(np.float64)), face.lmks


@dataclass
class MiniCorpus:
    """A generated corpus on disk (see the module docstring for the layout)."""

    root: Path
    config: dict
    clips: list[ClipSpec]

    def split(self, name: str) -> list[ClipSpec]:
        """Clips of one split, ``"train"`` or ``"heldout"``."""
        if name not in ("train", "heldout"):
            raise ValueError(f"unknown split {name!r}: use 'train' or 'heldout'")
        return [c for c in self.clips if c.split == name]

    def video_path(self, clip_id: str) -> Path:
        return self.root / "clips" / f"{clip_id}.mp4"

    def audio_path(self, clip_id: str) -> Path:
        return self.root / "audio" / f"{clip_id}.wav"

    def audio(self, clip_id: str) -> tuple[np.ndarray, int]:
        """The clip's speech: (float32 mono samples, 16000)."""
        samples, rate = sf.read(self.audio_path(clip_id), dtype="float32")
        return samples, rate

    def truth(self, clip_id: str) -> ClipTruth:
        """The ground truth of one clip (arrays as in :class:`~aniportrait_lib.data.render.ClipTruth`)."""
        with np.load(self.root / "truth" / f"{clip_id}.npz") as data:
            return ClipTruth(**{f.name: data[f.name] for f in dataclasses.fields(ClipTruth)})

    def reference(self) -> Reference:
        """The portrait and its landmarks at the corpus's image size."""
        with np.load(self.root / "reference.npz") as data:
            return Reference(data["image"], data["lmks3d"], data["trans_mat"])

    def reference_lmks(self) -> np.ndarray:
        """The portrait's MediaPipe ``lmks`` (478, 3), normalised."""
        with np.load(self.root / "reference.npz") as data:
            return data["lmks"]


def _clip_done(root: Path, clip_id: str) -> bool:
    return all(
        (root / sub / f"{clip_id}{ext}").is_file()
        for sub, ext in (("clips", ".mp4"), ("audio", ".wav"), ("truth", ".npz"))
    )


def _write_clip(root: Path, index: int, spec: ClipSpec, speech: Speech, reference: Reference, rig: FaceRig,
                config: CorpusConfig) -> ClipSpec:  # fmt: skip
    """Render and store one clip; the truth file is written last and marks the clip complete."""
    rng = np.random.default_rng([config.seed, index])
    truth = clip_truth(speech, reference, rig, config.fps, rng, config.head, config.articulation)
    frames = render_frames(reference, truth)
    audio = speech.resampled(AUDIO_RATE)
    with atomic.atomic_path(root / "audio" / f"{spec.clip_id}.wav") as tmp:
        sf.write(tmp, audio, AUDIO_RATE, subtype="PCM_16", format="WAV")
    write_video(root / "clips" / f"{spec.clip_id}.mp4", frames, config.fps, audio=(audio, AUDIO_RATE))
    phonemes = json.dumps([(p.phoneme, p.start) for p in speech.phonemes])
    with atomic.atomic_path(root / "truth" / f"{spec.clip_id}.npz") as tmp:
        with tmp.open("wb") as fh:
            np.savez(fh, **dataclasses.asdict(truth), phonemes=phonemes)
    return dataclasses.replace(spec, n_frames=len(frames), duration=len(audio) / AUDIO_RATE)


def _store_reference(root: Path, reference: Reference, lmks: np.ndarray) -> None:
    with atomic.atomic_path(root / "reference.npz") as tmp:
        with tmp.open("wb") as fh:
            np.savez(
                fh, image=reference.image, lmks=lmks, lmks3d=reference.lmks3d, trans_mat=reference.trans_mat
            )


def _check_folder(root: Path, digest: str) -> None:
    manifest = root / "corpus.json"
    if manifest.is_file():
        found = json.loads(manifest.read_text()).get("digest")
        if found != digest:
            raise ValueError(
                f"{root} holds a mini corpus made with another config (digest {found}, wanted {digest}); "
                "choose another folder or delete it"
            )


def generate_mini_corpus(
    root: str | Path,
    config: CorpusConfig | None = None,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> MiniCorpus:
    """Make (or finish, or just open) the mini corpus in ``root``.

    Resumable: finished clips are kept and only missing ones are made, so a killed run loses at
    most the clips in progress. The same config always gives the same files.

    Args:
        root: output folder (e.g. ``outputs/01_extract_landmarks/mini_corpus``).
        config: the corpus's size and variety (default :class:`CorpusConfig`, the ``cpu`` profile's).
        workers: clips rendered in parallel (and utterances synthesised in parallel).
        progress: called as ``progress(done, total)`` after each clip.
    """
    if config is None:
        config = CorpusConfig()
    elif not isinstance(config, CorpusConfig):
        raise ValueError(f"a mini corpus needs a CorpusConfig, got {config!r} (see aniportrait_lib.profiles)")
    root = Path(root)
    digest = config_digest(config)
    _check_folder(root, digest)
    plan = plan_clips(config)
    root.mkdir(parents=True, exist_ok=True)
    atomic.write_json(root / "corpus.json", {"digest": digest, "complete": False})
    reference, lmks = build_reference(config.image_size)
    _store_reference(root, reference, lmks)
    rig = FaceRig(reference.lmks3d, config.rig)
    todo = [(i, spec) for i, spec in enumerate(plan) if not _clip_done(root, spec.clip_id)]
    speeches = synthesize_many([SpeechRequest(s.text, s.voice, s.rate, s.pitch) for _, s in todo], workers)
    done = len(plan) - len(todo)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [
            pool.submit(_write_clip, root, i, spec, speech, reference, rig, config)
            for (i, spec), speech in zip(todo, speeches, strict=True)
        ]
        for future in futures:
            future.result()
            done += 1
            if progress is not None:
                progress(done, len(plan))
    return _finish_manifest(root, config, digest, plan)


def _finish_manifest(root: Path, config: CorpusConfig, digest: str, plan: list[ClipSpec]) -> MiniCorpus:
    clips = []
    for spec in plan:
        n_frames = len(np.load(root / "truth" / f"{spec.clip_id}.npz")["pose"])
        duration = sf.info(root / "audio" / f"{spec.clip_id}.wav").duration
        clips.append(dataclasses.replace(spec, n_frames=n_frames, duration=round(duration, 6)))
    payload = {
        "format_version": FORMAT_VERSION,
        "digest": digest,
        "complete": True,
        "config": dataclasses.asdict(config),
        "clips": [dataclasses.asdict(c) for c in clips],
    }
    atomic.write_json(root / "corpus.json", payload)
    return MiniCorpus(root, payload["config"], clips)


def open_mini_corpus(root: str | Path) -> MiniCorpus:
    """Open a complete corpus folder made by :func:`generate_mini_corpus`."""
    root = Path(root)
    manifest = root / "corpus.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"no mini corpus in {root} (corpus.json missing): generate it first")
    payload = json.loads(manifest.read_text())
    if not payload.get("complete"):
        raise ValueError(
            f"the mini corpus in {root} is incomplete: run generate_mini_corpus again to finish it"
        )
    return MiniCorpus(root, payload["config"], [ClipSpec(**c) for c in payload["clips"]])
