"""The kit's sample inputs in ``data_samples/``: a reference portrait and a short speech clip.

Both are made by code in this module, so anyone can regenerate them and check that the committed
files are what the code makes (``python -m aniportrait_lib.data.samples --check``).

* ``portrait.png`` (512×512 RGB): a head-and-shoulders crop of ``skimage.data.astronaut()``, the
  NASA portrait of astronaut Eileen Collins (public domain; the file ships inside the scikit-image
  wheel, so no download is needed).
* ``speech.wav`` (16 kHz mono, 16-bit): an English sentence spoken by eSpeak NG (see
  :mod:`aniportrait_lib.data.speech`); synthetic speech, free of any licence restriction.

``MANIFEST.json`` records a checksum of the decoded content of each file (pixels, PCM samples),
not of the file bytes, so a different PNG or WAV encoder still verifies.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image
from skimage import data

from aniportrait_lib.data.speech import synthesize
from aniportrait_lib.paths import DATA_SAMPLES

PORTRAIT_NAME = "portrait.png"
SPEECH_NAME = "speech.wav"
MANIFEST_NAME = "MANIFEST.json"

SPEECH_TEXT = (
    "Hello! I am a portrait that learned to talk. "
    "Every word you hear was made by a speech synthesiser, and my face will follow it."
)
"""The sentence spoken in ``speech.wav``."""

SPEECH_SAMPLE_RATE = 16_000
"""Hz; the rate wav2vec2 expects (official spec §2.1)."""

PORTRAIT_CROP = (0, 300, 75, 375)
"""(top, bottom, left, right) of the astronaut image kept for the portrait: face centred, shoulders in."""

PORTRAIT_SIZE = 512
"""Side of the square portrait in pixels (the official inference size)."""


@dataclass(frozen=True)
class SampleSpeech:
    """The sample speech: mono float32 samples in [-1, 1] at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int
    text: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


def make_portrait() -> np.ndarray:
    """Build the portrait from scikit-image's astronaut: (512, 512, 3) uint8 RGB."""
    top, bottom, left, right = PORTRAIT_CROP
    crop = data.astronaut()[top:bottom, left:right]
    resized = Image.fromarray(crop).resize((PORTRAIT_SIZE, PORTRAIT_SIZE), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)


def make_speech() -> SampleSpeech:
    """Speak :data:`SPEECH_TEXT` with eSpeak NG and resample it to 16 kHz (float32 mono)."""
    speech = synthesize(SPEECH_TEXT, voice="en", rate=150)
    return SampleSpeech(speech.resampled(SPEECH_SAMPLE_RATE), SPEECH_SAMPLE_RATE, SPEECH_TEXT)


def _pcm16(samples: np.ndarray) -> np.ndarray:
    return np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def write_samples(folder: Path = DATA_SAMPLES) -> dict[str, str]:
    """(Re)generate the portrait, the speech and the manifest in ``folder``; returns the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    portrait = make_portrait()
    Image.fromarray(portrait).save(folder / PORTRAIT_NAME)
    pcm = _pcm16(make_speech().samples)
    sf.write(folder / SPEECH_NAME, pcm, SPEECH_SAMPLE_RATE, subtype="PCM_16")
    manifest = {PORTRAIT_NAME: _digest(portrait), SPEECH_NAME: _digest(pcm)}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def load_portrait(folder: Path = DATA_SAMPLES) -> np.ndarray:
    """The sample portrait as (512, 512, 3) uint8 RGB."""
    path = folder / PORTRAIT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m aniportrait_lib.data.samples`")
    return np.asarray(Image.open(path).convert("RGB"))


def load_speech(folder: Path = DATA_SAMPLES) -> SampleSpeech:
    """The sample speech as float32 mono at 16 kHz."""
    path = folder / SPEECH_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m aniportrait_lib.data.samples`")
    samples, rate = sf.read(path, dtype="float32")
    return SampleSpeech(samples, rate, SPEECH_TEXT)


def verify_samples(folder: Path = DATA_SAMPLES) -> dict[str, bool]:
    """Check each sample's decoded content against ``MANIFEST.json``: {file name: matches}."""
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    pcm, _ = sf.read(folder / SPEECH_NAME, dtype="int16")
    found = {PORTRAIT_NAME: _digest(load_portrait(folder)), SPEECH_NAME: _digest(pcm.astype("<i2"))}
    return {name: found.get(name) == digest for name, digest in manifest.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate or check the kit's data_samples/.")
    parser.add_argument("--check", action="store_true", help="verify the committed files instead of writing")
    parser.add_argument("--folder", type=Path, default=DATA_SAMPLES)
    args = parser.parse_args(argv)
    if args.check:
        result = verify_samples(args.folder)
        for name, ok in result.items():
            print(f"{name}: {'ok' if ok else 'DIFFERS from MANIFEST.json'}")
        return 0 if all(result.values()) else 1
    manifest = write_samples(args.folder)
    print(f"wrote {', '.join(manifest)} and {MANIFEST_NAME} in {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
