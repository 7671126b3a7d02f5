"""Named vertex groups of the 468-vertex canonical mesh and the expression edits defined on them.

Indices are MediaPipe face-mesh landmark numbers (the same topology ``lmks3d`` uses). Groups
reused from :mod:`aniportrait_lib.data.face_rig`: ``MOUTH_INNER_UPPER/LOWER`` (mouth opening),
``RIGHT_EYE`` / ``LEFT_EYE`` (corners 33/133 and 263/362, lids 159/145 and 386/374).
New groups here:

| group | landmarks | used by |
|---|---|---|
| :data:`RIGHT_EYE_CONTOUR` | 16 lid-margin points, subject's right eye (``FACEMESH_RIGHT_EYE``) | tests |
| :data:`LEFT_EYE_CONTOUR` | the same for the left eye (``FACEMESH_LEFT_EYE``) | tests |
| :data:`LIPS` | the 40 points of the official lip chains (spec §1.3) | lip-sync mask, tests |
| :data:`NOSE_BASE` | 2 (under the nose tip): the lip-sync mask is 0 above it | lip-sync mask |
| ``MOUTH_CORNERS`` (face_rig) | 61, 291 outer mouth corners | smile field centres |

Every edit is a displacement of the current mesh (cm, canonical axes: x to the subject's left,
y up, z towards the camera) with weights computed once on the neutral mesh, so the same vertex
always moves the same way whatever the head pose (edits happen before projection).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aniportrait_lib.data.face_rig import LEFT_EYE, MOUTH_CORNERS, RIGHT_EYE, FaceRig
from aniportrait_lib.landmarks.mouth import mouth_opening

RIGHT_EYE_CONTOUR = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE_CONTOUR = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
LIPS = (
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 78, 95, 88, 178, 87, 14, 317, 402, 318, 324,
    308, 185, 40, 39, 37, 0, 267, 269, 270, 409, 191, 80, 81, 82, 13, 312, 311, 310, 415,
)  # fmt: skip
NOSE_BASE = 2


@dataclass(frozen=True)
class ExpressionConfig:
    """Sizes of the expression edits (canonical cm; the face is ~16 cm wide in this space)."""

    smile_lift: float = 0.45
    """Upward motion of a mouth corner at ``smile = 1`` (cm)."""
    smile_widen: float = 0.35
    """Outward motion of a mouth corner at ``smile = 1`` (cm)."""
    smile_radius: float = 0.9
    """Gaussian radius of the smile field around each corner (cm)."""
    eye_radius: float = 1.1
    """Radius of an eyelid field (cm; same as ``RigConfig.eye_radius``)."""
    lid_meet: float = 0.3
    """Where closed lids meet, as a fraction of the aperture above the lower lid (as the corpus rig)."""


def _smoothstep(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


class ExpressionFields:
    """Expression edits for one neutral mesh.

    Args:
        ref_mesh: (468, 3) neutral canonical mesh (the reference portrait's ``lmks3d``).
    """

    def __init__(self, ref_mesh: np.ndarray, config: ExpressionConfig = ExpressionConfig()) -> None:
        mesh = np.asarray(ref_mesh, np.float64)
        if mesh.shape != (468, 3):
            raise ValueError(f"expression fields need a (468, 3) neutral mesh, got {mesh.shape}")
        self.ref_mesh, self.config = mesh, config
        # lip sync: 0 above the nose base, 1 from the highest lip vertex down, smooth in between
        top, full = mesh[NOSE_BASE, 1], mesh[list(LIPS), 1].max()
        self.lower_face = _smoothstep((top - mesh[:, 1]) / max(top - full, 1e-6))
        # mouth: the corpus rig's jaw field, calibrated so that 1 unit adds 1 cm of opening
        rig = FaceRig(mesh)
        self.jaw_field = rig.jaw_field
        self.jaw_gain = float(mouth_opening(mesh + rig.jaw_field) - mouth_opening(mesh))
        self.smile_field = self._smile_field()
        self.eye_weights = np.stack([self._eye_weight(RIGHT_EYE), self._eye_weight(LEFT_EYE)])

    def _smile_field(self) -> np.ndarray:
        m, c = self.ref_mesh, self.config
        centre_x = m[list(MOUTH_CORNERS), 0].mean()
        field = np.zeros_like(m)
        for corner in MOUTH_CORNERS:
            w = np.exp(-((m[:, :2] - m[corner, :2]) ** 2).sum(axis=1) / (2 * c.smile_radius**2))
            field[:, 0] += np.sign(m[corner, 0] - centre_x) * c.smile_widen * w
            field[:, 1] += c.smile_lift * w
        return field

    def _eye_weight(self, eye: dict[str, int]) -> np.ndarray:
        m = self.ref_mesh
        centre = m[[eye["corner_outer"], eye["corner_inner"]]].mean(axis=0)
        d2 = ((m[:, :2] - centre[:2]) ** 2).sum(axis=1)
        weight = np.exp(-((d2 / self.config.eye_radius**2) ** 2))
        # full strength on both lids (so blink = 1 shuts the eye), fading beyond the corners
        return np.minimum(weight / weight[[eye["upper"], eye["lower"]]].min(), 1.0)

    def lipsync(self, mesh: np.ndarray, strength: np.ndarray) -> np.ndarray:
        """Scale each frame's lower-face offsets from the neutral mesh: ``(T, 468, 3)``, ``(T,)`` gains."""
        offsets = mesh - self.ref_mesh[None]
        return mesh + (np.asarray(strength)[:, None, None] - 1.0) * self.lower_face[None, :, None] * offsets

    def mouth(self, mesh: np.ndarray, gain: np.ndarray) -> np.ndarray:
        """Scale each frame's mouth opening about the neutral opening (never below closed lips)."""
        opening = mouth_opening(mesh)
        extra = (np.asarray(gain) - 1.0) * (opening - mouth_opening(self.ref_mesh))
        extra = np.maximum(extra, -opening)  # lips may meet, not cross
        return mesh + (extra / self.jaw_gain)[:, None, None] * self.jaw_field[None]

    def smile(self, mesh: np.ndarray, amount: np.ndarray) -> np.ndarray:
        """Mouth corners up and out by ``amount`` (T,) (1 = the config's full smile)."""
        return mesh + np.asarray(amount)[:, None, None] * self.smile_field[None]

    def blink(self, mesh: np.ndarray, right: np.ndarray, left: np.ndarray) -> np.ndarray:
        """Close the eyes of each frame by ``right`` / ``left`` (T,) in [0, 1] (1 = lids meet).

        The lids of the *current* frame move towards their meeting line, so a blink added to an
        eye that is already half closed shuts it, without the lids crossing.
        """
        out = mesh.copy()
        for eye, weight, amount in zip((RIGHT_EYE, LEFT_EYE), self.eye_weights, (right, left), strict=True):
            upper, lower = mesh[:, eye["upper"], 1], mesh[:, eye["lower"], 1]
            meet = lower + self.config.lid_meet * (upper - lower)  # (T,)
            closure = np.clip(np.asarray(amount, np.float64), 0.0, 1.0)[:, None] * weight[None]
            out[..., 1] -= closure * (mesh[..., 1] - meet[:, None])
        return out
