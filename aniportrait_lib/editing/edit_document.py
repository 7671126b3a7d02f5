"""An edit document: keyframe tracks for some controls, saved as a small versioned JSON file.

The same file drives the interactive editor and headless runs (papermill, scripts), so an edit
made by hand in JupyterLab is replayed exactly. Layout (schema version 1)::

    {
      "schema": "aniportrait-kit/edits",
      "version": 1,
      "note": "free text",
      "tracks": {
        "yaw":   {"interpolation": "smooth",
                  "keys": [{"frame": 40, "value": 0.0}, {"frame": 60, "value": 15.0}]},
        "blink": {"interpolation": "linear", "keys": [{"frame": 20, "value": 1.0}]}
      }
    }

Track names are the controls of :mod:`.controls`; values must lie in the control's range;
frames are 0-based indices at the performance's fps. Anything else is refused with a
``ValueError`` that names the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from aniportrait_lib import atomic
from aniportrait_lib.editing.controls import CONTROLS, get_control
from aniportrait_lib.editing.keyframes import INTERPOLATIONS, Interpolation, Keyframe, Track

SCHEMA = "aniportrait-kit/edits"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class EditDocument:
    """Tracks by control name (controls without a track stay neutral)."""

    tracks: dict[str, Track] = field(default_factory=dict)
    note: str = ""

    def __post_init__(self) -> None:
        for name, track in self.tracks.items():
            control = get_control(name)
            for key in track.keys:
                _check_value(control.name, key.value, f"tracks.{name}")

    def controls(self, frames: int | np.ndarray) -> dict[str, np.ndarray]:
        """Every control's value per frame: ``{name: (T,) float64}`` (neutral where untracked).

        ``frames``: an int T (frames 0 … T−1) or an array of frame indices (T,).
        """
        t = np.arange(frames) if np.ndim(frames) == 0 else np.asarray(frames)
        out = {name: np.full(len(t), c.neutral) for name, c in CONTROLS.items()}
        for name, track in self.tracks.items():
            out[name] = track.evaluate(t)
        return out

    def with_key(
        self, name: str, frame: int, value: float, interpolation: Interpolation = "smooth"
    ) -> EditDocument:
        """A copy with a key on ``name`` at ``frame`` (a new track uses ``interpolation``)."""
        _check_value(get_control(name).name, value, f"key {name}@{frame}")
        track = self.tracks.get(name)
        new = (
            track.with_key(frame, value)
            if track
            else Track((Keyframe(int(frame), float(value)),), interpolation)
        )
        return replace(self, tracks={**self.tracks, name: new})

    def without_key(self, name: str, frame: int) -> EditDocument:
        """A copy without ``name``'s key at ``frame`` (the track goes when its last key goes)."""
        tracks = dict(self.tracks)
        if name in tracks:
            remaining = tracks[name].without_key(frame)
            if remaining is None:
                del tracks[name]
            else:
                tracks[name] = remaining
        return replace(self, tracks=tracks)

    def key_frames(self) -> list[int]:
        """Every frame that holds a key on some track, sorted."""
        return sorted({k.frame for t in self.tracks.values() for k in t.keys})

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload (schema version 1), tracks in control order."""
        tracks = {
            name: {
                "interpolation": self.tracks[name].interpolation,
                "keys": [{"frame": k.frame, "value": k.value} for k in self.tracks[name].keys],
            }
            for name in CONTROLS
            if name in self.tracks
        }
        return {"schema": SCHEMA, "version": SCHEMA_VERSION, "note": self.note, "tracks": tracks}


def _check_value(name: str, value: Any, where: str) -> None:
    control = CONTROLS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ValueError(f"{where}: value must be a finite number, got {value!r}")
    if not control.minimum <= value <= control.maximum:
        raise ValueError(
            f"{where}: {name} value {value} is outside [{control.minimum}, {control.maximum}]"
            f" ({control.unit})"
        )


def _parse_track(name: str, payload: Any, where: str) -> Track:
    if name not in CONTROLS:
        raise ValueError(f"{where}: unknown control {name!r}; valid controls: {', '.join(CONTROLS)}")
    if not isinstance(payload, dict) or set(payload) - {"interpolation", "keys"}:
        raise ValueError(f"{where}: tracks.{name} must be an object with 'interpolation' and 'keys'")
    interpolation = payload.get("interpolation", "smooth")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"{where}: tracks.{name}.interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}"
        )
    keys = payload.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ValueError(f"{where}: tracks.{name}.keys must be a non-empty list")
    pairs = []
    for i, key in enumerate(keys):
        at = f"{where}: tracks.{name}.keys[{i}]"
        if not isinstance(key, dict) or set(key) != {"frame", "value"}:
            raise ValueError(f"{at} must be an object with exactly 'frame' and 'value'")
        frame = key["frame"]
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
            raise ValueError(f"{at}.frame must be an integer >= 0, got {frame!r}")
        _check_value(name, key["value"], at)
        pairs.append((frame, float(key["value"])))
    if len({f for f, _ in pairs}) != len(pairs):
        raise ValueError(f"{where}: tracks.{name} has two keys on the same frame")
    return Track.from_pairs(pairs, interpolation)


def edits_from_dict(payload: Any, where: str = "<edits>") -> EditDocument:
    """Validate a parsed JSON payload and build the document; errors name ``where`` and the field."""
    if not isinstance(payload, dict):
        raise ValueError(f"{where}: an edit document is a JSON object, got {type(payload).__name__}")
    if payload.get("schema") != SCHEMA:
        raise ValueError(f"{where}: 'schema' must be {SCHEMA!r}, got {payload.get('schema')!r}")
    version = payload.get("version")
    if version != SCHEMA_VERSION:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        hint = " (written by a newer kit: update aniportrait_lib)" if newer else ""
        raise ValueError(
            f"{where}: unsupported edit schema version {version!r}, expected {SCHEMA_VERSION}{hint}"
        )
    unknown = set(payload) - {"schema", "version", "note", "tracks"}
    if unknown:
        raise ValueError(f"{where}: unknown top-level field(s) {sorted(unknown)}")
    tracks = payload.get("tracks", {})
    if not isinstance(tracks, dict):
        raise ValueError(f"{where}: 'tracks' must be an object mapping control names to tracks")
    note = payload.get("note", "")
    if not isinstance(note, str):
        raise ValueError(f"{where}: 'note' must be a string")
    return EditDocument({name: _parse_track(name, t, where) for name, t in tracks.items()}, note)


def save_edits(document: EditDocument, path: str | Path) -> Path:
    """Write ``document`` as JSON (atomically) and return the path."""
    return atomic.write_json(path, document.to_dict())


def load_edits(path: str | Path) -> EditDocument:
    """Read and validate an edit file written by :func:`save_edits` (or by hand)."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"edit file {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    return edits_from_dict(payload, str(path))


def example_edits(n_frames: int) -> EditDocument:
    """The notebook's default edit for a clip of ``n_frames`` frames.

    * the head turns 15° towards the image's right over the second half (smooth, from the middle
      frame to three quarters, then held);
    * the mouth opens 1.6× as wide throughout;
    * both eyes blink once around the first quarter (closed for one frame, 4 frames each way).
    """
    if n_frames < 16:
        raise ValueError(f"the example edit needs a clip of at least 16 frames, got {n_frames}")
    half, three_quarters, quarter = n_frames // 2, (3 * n_frames) // 4, n_frames // 4
    return EditDocument(
        {
            "yaw": Track.from_pairs([(half, 0.0), (three_quarters, 15.0)], "smooth"),
            "mouth": Track.from_pairs([(0, 1.6)], "smooth"),
            "blink": Track.from_pairs([(quarter - 4, 0.0), (quarter, 1.0), (quarter + 4, 0.0)], "linear"),
        },
        note="example: head turn right over the second half, wider mouth, one blink",
    )
