"""A small procedural rig on MediaPipe's 468-vertex canonical face mesh.

Three controls move the mesh the way speech and blinks do: ``jaw`` (lower lip and chin drop; a
negative value closes parted lips), ``spread`` (mouth corners out and lips back for "ee"; in and
lips forward for "oo") and ``blink`` per eye (upper lid down to the eye's midline). Each control is
a smooth displacement field (centimetres in canonical space: x to the subject's left, y up, z
towards the camera) computed once from the reference mesh, so a frame's mesh is the reference plus
a weighted sum of fields: cheap, exact and differentiable.

The vertex groups come from MediaPipe's face-mesh topology (documented landmark indices).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MOUTH_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
MOUTH_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
"""Inner lip contours, corner to corner (the lip chains of the official pose drawing, spec §1.3)."""
MOUTH_CORNERS = (61, 291)
RIGHT_EYE = {"corner_outer": 33, "corner_inner": 133, "upper": 159, "lower": 145}
LEFT_EYE = {"corner_outer": 263, "corner_inner": 362, "upper": 386, "lower": 374}
"""Subject's right/left eye landmarks (the right eye appears on the image's left)."""


@dataclass(frozen=True)
class RigConfig:
    """Sizes of the rig's motions, in canonical centimetres (a face is ~16 cm wide here)."""

    jaw_drop: float = 0.6
    """Lower-lip drop at ``jaw = 1`` (cm)."""
    close_fraction: float = 0.92
    """At ``jaw = -1`` the lower lip rises by this fraction of the reference's inner-lip gap (lips
    that are parted in the portrait meet)."""
    jaw_width: float = 2.6
    """|x| (cm) beyond which the jaw field fades (Gaussian fall-off length)."""
    spread_shift: float = 0.45
    """Sideways motion of each mouth corner at ``spread = ±1``."""
    round_push: float = 0.35
    """Forward motion of the lips at ``spread = -1`` (rounding)."""
    mouth_radius: float = 1.6
    """Radius of the corner / lip fields."""
    eye_radius: float = 1.1
    """Radius of an eyelid field around its eye."""


def _gauss(d2: np.ndarray, radius: float) -> np.ndarray:
    return np.exp(-d2 / (2.0 * radius**2))


class FaceRig:
    """Displacement fields of one reference mesh.

    Args:
        ref_mesh: (468, 3) reference canonical mesh (``lmks3d`` of the portrait), centimetres.
    """

    def __init__(self, ref_mesh: np.ndarray, config: RigConfig = RigConfig()) -> None:
        mesh = np.asarray(ref_mesh, dtype=np.float64)
        if mesh.shape != (468, 3):
            raise ValueError(f"the rig needs a (468, 3) canonical mesh, got {mesh.shape}")
        self.ref_mesh = mesh
        self.config = config
        self.jaw_field = self._jaw_field()
        self.spread_field = self._spread_field()
        self.blink_fields = (self._blink_field(RIGHT_EYE), self._blink_field(LEFT_EYE))

    def _jaw_field(self) -> np.ndarray:
        m, c = self.ref_mesh, self.config
        upper_y = m[list(MOUTH_INNER_UPPER[3:8]), 1].mean()
        lower_y = m[list(MOUTH_INNER_LOWER[3:8]), 1].mean()
        mid = 0.5 * (upper_y + lower_y)
        below = 1.0 / (1.0 + np.exp(-(mid - m[:, 1]) / 0.12))  # ~1 under the lip line, ~0 above
        centre_x = m[list(MOUTH_CORNERS), 0].mean()
        side = _gauss(np.maximum(np.abs(m[:, 0] - centre_x) - 1.0, 0.0) ** 2, c.jaw_width)
        self.lip_gap = float(max(upper_y - lower_y, 0.0))
        field = np.zeros_like(m)  # unit field: 1 cm of lower-lip drop
        field[:, 1] = -below * side
        field[:, 2] = -0.3 * below * side  # the jaw swings back as it opens
        return field

    def _spread_field(self) -> np.ndarray:
        m, c = self.ref_mesh, self.config
        field = np.zeros_like(m)
        mouth_centre = m[list(MOUTH_CORNERS)].mean(axis=0)
        for corner in MOUTH_CORNERS:
            w = _gauss(((m[:, :2] - m[corner, :2]) ** 2).sum(axis=1), 0.6 * c.mouth_radius)
            field[:, 0] += np.sign(m[corner, 0] - mouth_centre[0]) * c.spread_shift * w
        lips = _gauss(((m[:, :2] - mouth_centre[:2]) ** 2).sum(axis=1), c.mouth_radius)
        field[:, 2] -= c.round_push * lips  # spread pulls lips back; negative spread pushes forward
        return field

    def _blink_field(self, eye: dict[str, int]) -> np.ndarray:
        m, c = self.ref_mesh, self.config
        centre = m[[eye["corner_outer"], eye["corner_inner"]]].mean(axis=0)
        upper_y, lower_y = m[eye["upper"], 1], m[eye["lower"], 1]
        meet_y = lower_y + 0.3 * (upper_y - lower_y)  # lids meet low: the upper lid does most of the work
        d2 = ((m[:, :2] - centre[:2]) ** 2).sum(axis=1)
        w = np.exp(-((d2 / c.eye_radius**2) ** 2))  # flat near the eye, falling fast beyond its corners
        field = np.zeros_like(m)
        field[:, 1] = -(m[:, 1] - meet_y) * w
        return field

    def offsets(self, jaw: np.ndarray, spread: np.ndarray, blink: np.ndarray) -> np.ndarray:
        """Mesh offsets for per-frame controls.

        Args:
            jaw: (T,) in about [-1, 1].
            spread: (T,) in [-1, 1].
            blink: (T, 2) in [0, 1], (right eye, left eye).

        Returns:
            (T, 468, 3) float32 offsets to add to the reference mesh (centimetres).
        """
        jaw, spread, blink = np.asarray(jaw), np.asarray(spread), np.asarray(blink)
        drop = np.where(jaw >= 0, jaw * self.config.jaw_drop, jaw * self.config.close_fraction * self.lip_gap)
        out = drop[:, None, None] * self.jaw_field + spread[:, None, None] * self.spread_field
        out = (
            out
            + blink[:, 0, None, None] * self.blink_fields[0]
            + blink[:, 1, None, None] * self.blink_fields[1]
        )
        return out.astype(np.float32)


def eye_aperture(mesh: np.ndarray) -> np.ndarray:
    """Mean upper-to-lower lid distance of both eyes, ``(..., 468, 3)`` → ``(...)``."""
    mesh = np.asarray(mesh)
    gaps = [mesh[..., eye["upper"], 1] - mesh[..., eye["lower"], 1] for eye in (RIGHT_EYE, LEFT_EYE)]
    return 0.5 * (gaps[0] + gaps[1])
