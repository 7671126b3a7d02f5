"""The edit controls: what a slider, a keyframe track and the JSON file can change.

Every control is one number per frame. Pose controls change the head's rigid motion (they keep
the 6-vector pose of spec §1.2, so the edited performance stays drawable by the official
projection); expression controls move vertices of the canonical mesh (468×3, cm) on named vertex
groups (:mod:`.face_regions`). A control left at its ``neutral`` value changes nothing.

| name | unit | neutral | effect |
|---|---|---|---|
| ``yaw``, ``pitch``, ``roll`` | degrees | 0 | added to euler y / x / z (+yaw: the face turns image-right) |
| ``x``, ``y`` | image fraction | 0 | the head moves by x·W pixels right, y·H pixels down |
| ``scale`` | × | 1 | the head looks ``scale`` times larger (it moves towards the camera) |
| ``mouth`` | × | 1 | mouth-opening gain about the neutral opening |
| ``lipsync`` | × | 1 | gain on the lower-face offsets from the neutral mesh (the audio-driven motion) |
| ``smile`` | 0–1 | 0 | mouth corners up and out (negative: down and in) |
| ``blink``, ``blink_left``, ``blink_right`` | 0–1 | 0 | closes both / the subject's left / right eye |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Control:
    """One editable quantity; ``minimum`` … ``maximum`` bound sliders and validated files."""

    name: str
    label: str
    unit: str
    neutral: float
    """The value that leaves the performance unchanged."""
    minimum: float
    maximum: float
    step: float
    """Slider step."""
    kind: Literal["pose", "expression"]


CONTROLS: dict[str, Control] = {
    c.name: c
    for c in (
        Control("yaw", "yaw (°)", "deg", 0.0, -45.0, 45.0, 0.5, "pose"),
        Control("pitch", "pitch (°)", "deg", 0.0, -30.0, 30.0, 0.5, "pose"),
        Control("roll", "roll (°)", "deg", 0.0, -30.0, 30.0, 0.5, "pose"),
        Control("x", "x shift", "image fraction", 0.0, -0.3, 0.3, 0.01, "pose"),
        Control("y", "y shift", "image fraction", 0.0, -0.3, 0.3, 0.01, "pose"),
        Control("scale", "scale", "factor", 1.0, 0.5, 2.0, 0.01, "pose"),
        Control("mouth", "mouth opening", "gain", 1.0, 0.0, 3.0, 0.05, "expression"),
        Control("lipsync", "lip-sync strength", "gain", 1.0, 0.0, 2.0, 0.05, "expression"),
        Control("smile", "smile", "amount", 0.0, -1.0, 1.0, 0.05, "expression"),
        Control("blink", "blink (both)", "closure", 0.0, 0.0, 1.0, 0.05, "expression"),
        Control("blink_left", "blink left", "closure", 0.0, 0.0, 1.0, 0.05, "expression"),
        Control("blink_right", "blink right", "closure", 0.0, 0.0, 1.0, 0.05, "expression"),
    )
}
"""Every control, in slider order."""


def get_control(name: str) -> Control:
    """The control called ``name``; ``ValueError`` listing the valid names otherwise."""
    if name not in CONTROLS:
        raise ValueError(f"unknown edit control {name!r}: choose one of {', '.join(CONTROLS)}")
    return CONTROLS[name]
