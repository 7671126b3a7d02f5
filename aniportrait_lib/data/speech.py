"""Offline speech synthesis with eSpeak NG, with word and phoneme timings.

The kit needs speech it can make on any machine, without a network: for the sample clip in
``data_samples/`` and for the mini corpus, whose mouth shapes follow the phoneme timings. eSpeak NG
is small, deterministic and GPL-licensed *as a program*; the audio it produces carries no licence
restriction. Its command line gives phonemes but no timings, so this module calls the C library
through :mod:`ctypes` in synchronous mode with phoneme events enabled: every event carries its
position in the audio in milliseconds.

The library and its voice data come from the ``espeakng-loader`` wheel (PyPI), so nothing has to be
installed from Debian. eSpeak keeps global state, so all calls go through one lock.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import espeakng_loader
import numpy as np

# Constants of speak_lib.h (eSpeak NG 1.51 public API).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_EVENT_WORD, _EVENT_SENTENCE, _EVENT_END, _EVENT_PHONEME = 1, 2, 5, 7
_EE_OK = 0


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class PhonemeEvent:
    """One phoneme as eSpeak scheduled it.

    ``phoneme`` is eSpeak's mnemonic (e.g. ``"a"``, ``"tS"``, ``"_:"`` for a pause); ``start`` is the
    time in seconds from the start of the audio.
    """

    phoneme: str
    start: float


@dataclass(frozen=True)
class WordEvent:
    """One word: its text, its start time in seconds and its character offset in the input."""

    text: str
    start: float
    char_offset: int


@dataclass
class Speech:
    """Synthesised speech: mono float32 samples in [-1, 1] at ``sample_rate`` Hz, with timings."""

    samples: np.ndarray
    sample_rate: int
    text: str
    voice: str
    phonemes: list[PhonemeEvent] = field(default_factory=list)
    words: list[WordEvent] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Length of the audio in seconds."""
        return len(self.samples) / self.sample_rate

    def resampled(self, rate: int) -> np.ndarray:
        """The samples at ``rate`` Hz (polyphase resampling), float32 clipped to [-1, 1]."""
        from scipy.signal import resample_poly  # slow to import (~0.7 s); nothing else here needs scipy

        gcd = np.gcd(int(rate), int(self.sample_rate))
        out = resample_poly(self.samples, int(rate) // gcd, int(self.sample_rate) // gcd)
        return np.clip(out, -1.0, 1.0).astype(np.float32)


class _ESpeak:
    """The process-wide eSpeak NG library, initialised once."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data_path = Path(espeakng_loader.get_data_path())
        # espeak_Initialize wants the folder that *contains* espeak-ng-data.
        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            str(data_path.parent).encode(),
            _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT,
        )
        if self.sample_rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise with voice data at {data_path}")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, str]] = []
        self._callback = _SynthCallback(self._on_audio)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    def _on_audio(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != 0:  # the list ends with espeakEVENT_LIST_TERMINATED
            ev = events[i]
            label = ev.id.string.decode("utf-8", "replace") if ev.type == _EVENT_PHONEME else ""
            self._events.append((ev.type, ev.audio_position, ev.text_position, label))
            i += 1
        return 0

    def synthesize(self, text: str, voice: str, rate: int, pitch: int) -> Speech:
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise ValueError(f"eSpeak NG has no voice named {voice!r}")
            self.lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
            self.lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
            self._chunks, self._events = [], []
            encoded = text.encode("utf-8")
            status = self.lib.espeak_Synth(encoded, len(encoded) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
            if status != _EE_OK:
                raise RuntimeError(f"eSpeak NG could not synthesise the text (status {status})")
            self.lib.espeak_Synchronize()
            pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            events = list(self._events)
        return _assemble(pcm, self.sample_rate, text, voice, events)


def _assemble(pcm, sample_rate, text, voice, events) -> Speech:
    samples = pcm.astype(np.float32) / 32768.0
    phonemes = [PhonemeEvent(label, pos / 1000.0) for kind, pos, _, label in events if kind == _EVENT_PHONEME]
    words = []
    for kind, pos, text_pos, _ in events:
        if kind == _EVENT_WORD:
            # text_position is 1-based; the word runs to the next space.
            start = max(text_pos - 1, 0)
            end = text.find(" ", start)
            words.append(WordEvent(text[start : end if end >= 0 else None], pos / 1000.0, start))
    return Speech(samples, sample_rate, text, voice, phonemes, words)


_engine: _ESpeak | None = None


def _synthesize_here(text: str, voice: str, rate: int, pitch: int) -> Speech:
    """Synthesise in this process (eSpeak keeps state between utterances: only the first is reproducible)."""
    global _engine
    if _engine is None:
        _engine = _ESpeak()
    return _engine.synthesize(text, voice, rate, pitch)


@dataclass(frozen=True)
class SpeechRequest:
    """What to say and how: the arguments of :func:`synthesize`."""

    text: str
    voice: str = "en"  # eSpeak voice, optionally with a variant ("en-us", "en+f3")
    rate: int = 160  # words per minute (eSpeak's range is about 80-450)
    pitch: int = 50  # base pitch, 0-100


def synthesize_many(requests: list[SpeechRequest], workers: int = 2) -> list[Speech]:
    """Synthesise several utterances, each in a fresh Python subprocess, ``workers`` at a time.

    eSpeak NG carries synthesiser state from one utterance to the next inside a process (the same
    text spoken twice gives slightly different samples), but a fresh process is bit-exact —
    except for voice variants with breath noise (``+f2``, ``+f3``, ``+f5``, ``+klatt``…), whose
    noise eSpeak seeds from the clock. Running
    every utterance in its own short-lived process makes the output depend only on the request.
    """
    for req in requests:
        if not any(ch.isalpha() for ch in req.text):
            raise ValueError(f"nothing to speak in {req.text!r}: the text has no letters")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(_synthesize_in_subprocess, requests))


def _synthesize_in_subprocess(request: SpeechRequest) -> Speech:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.npz"
        proc = subprocess.run(
            [sys.executable, "-m", "aniportrait_lib.data.speech", str(out)],
            input=json.dumps(dataclasses.asdict(request)),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1:] or ["(no message)"]
            raise ValueError(f"eSpeak NG failed for {request}: {last[0]}")
        with np.load(out) as data:
            meta = json.loads(str(data["meta"]))
            return Speech(
                data["samples"],
                int(data["sample_rate"]),
                meta["text"],
                meta["voice"],
                [PhonemeEvent(*p) for p in meta["phonemes"]],
                [WordEvent(*w) for w in meta["words"]],
            )


def _worker_main(out_path: str) -> None:
    """Subprocess entry: read a :class:`SpeechRequest` as JSON on stdin, write the Speech as ``.npz``."""
    request = SpeechRequest(**json.loads(sys.stdin.read()))
    speech = _synthesize_here(request.text, request.voice, request.rate, request.pitch)
    meta = {
        "text": speech.text,
        "voice": speech.voice,
        "phonemes": [dataclasses.astuple(p) for p in speech.phonemes],
        "words": [dataclasses.astuple(w) for w in speech.words],
    }
    np.savez(out_path, samples=speech.samples, sample_rate=speech.sample_rate, meta=json.dumps(meta))


def synthesize(text: str, voice: str = "en", rate: int = 160, pitch: int = 50) -> Speech:
    """Speak ``text`` with eSpeak NG and return the audio with phoneme and word timings.

    Args:
        text: UTF-8 text to speak; must contain at least one letter.
        voice: an eSpeak voice name, optionally with a variant (``"en-us"``, ``"en+f3"``).
        rate: speaking rate in words per minute.
        pitch: base pitch, 0-100.

    Returns:
        :class:`Speech` at eSpeak's native sample rate (22050 Hz); the same request always gives
        the same samples (see :func:`synthesize_many`).
    """
    return synthesize_many([SpeechRequest(text, voice, rate, pitch)], workers=1)[0]


if __name__ == "__main__":
    _worker_main(sys.argv[1])
