"""Which landmark pairs AniPortrait's pose images connect, with their colours and draw order.

Most edge lists are facts of the official ``draw_util.py``: a custom jaw/cheek contour (the
MediaPipe face oval without the forehead) and the lips split into eight coloured chains. The eyes
and eyebrows are MediaPipe's own connection sets, taken from the installed MediaPipe
(``mediapipe.tasks.vision.FaceLandmarksConnections``).

Draw order matters where differently coloured lines overlap. The official code collected all edges
into one ``dict`` (edge → colour) and drew its keys in insertion order; MediaPipe's sets were then
``frozenset`` objects, iterated in hash order. :func:`pose_image_edges` rebuilds exactly that:
each MediaPipe list goes through a ``frozenset`` built from the same elements in the same order (int
tuple hashes are deterministic in CPython), and a repeated edge keeps its first position and its
last colour, like a dict.

Colours are in array channel order (c0, c1, c2) of the drawn image, which is the order the network
sees (spec §1.3).
"""

from __future__ import annotations

from collections.abc import Iterable

from mediapipe.tasks.python.vision import FaceLandmarksConnections

Edge = tuple[int, int]
Colour = tuple[int, int, int]

CUSTOM_FACE_OVAL: tuple[Edge, ...] = (
    (176, 149), (150, 136), (356, 454), (58, 132), (152, 148), (361, 288), (251, 389),
    (132, 93), (389, 356), (400, 377), (136, 172), (377, 152), (323, 361), (172, 58),
    (454, 323), (365, 379), (379, 378), (148, 176), (93, 234), (397, 365), (149, 150),
    (288, 397), (234, 127), (378, 400), (127, 162), (162, 21),
)  # fmt: skip
"""Official jaw + cheek contour (26 edges, no forehead), in the official list order."""

LIP_CHAINS: tuple[tuple[tuple[int, ...], Colour], ...] = (
    ((61, 146, 91, 181, 84, 17), (10, 180, 20)),  # outer bottom, left
    ((17, 314, 405, 321, 375, 291), (20, 10, 180)),  # outer bottom, right
    ((78, 95, 88, 178, 87, 14), (100, 100, 30)),  # inner bottom, left
    ((14, 317, 402, 318, 324, 308), (100, 150, 50)),  # inner bottom, right
    ((61, 185, 40, 39, 37, 0), (20, 80, 100)),  # outer top, left
    ((0, 267, 269, 270, 409, 291), (80, 100, 20)),  # outer top, right
    ((78, 191, 80, 81, 82, 13), (120, 100, 200)),  # inner top, left
    ((13, 312, 311, 310, 415, 308), (150, 120, 100)),  # inner top, right
)
"""The eight lip chains of the official drawing, in draw order, with their colours."""

FACE_OVAL_COLOUR: Colour = (10, 200, 10)
"""Colour of the face contour (custom oval, or MediaPipe's full oval with ``forehead=True``)."""
EYE_GROUPS: tuple[tuple[str, Colour], ...] = (
    ("FACE_LANDMARKS_LEFT_EYE", (180, 200, 10)),
    ("FACE_LANDMARKS_LEFT_EYEBROW", (180, 220, 10)),
    ("FACE_LANDMARKS_RIGHT_EYE", (10, 200, 180)),
    ("FACE_LANDMARKS_RIGHT_EYEBROW", (10, 220, 180)),
)
"""MediaPipe connection sets for eyes and brows (subject's left/right) and their official colours."""
IRIS_GROUPS: tuple[tuple[str, Colour], ...] = (
    ("FACE_LANDMARKS_LEFT_IRIS", (250, 200, 10)),
    ("FACE_LANDMARKS_RIGHT_IRIS", (10, 200, 250)),
)
"""Iris rings (landmarks 468–477): defined but never drawn by the official code; for studies only."""


def mediapipe_edges(name: str) -> list[Edge]:
    """A MediaPipe connection set in the iteration order the official drawing saw (frozenset order)."""
    connections = getattr(FaceLandmarksConnections, name)
    return list(frozenset((c.start, c.end) for c in connections))


def chain_edges(chain: Iterable[int]) -> list[Edge]:
    """Consecutive pairs of a polyline: (a, b, c) → [(a, b), (b, c)]."""
    chain = list(chain)
    return list(zip(chain[:-1], chain[1:], strict=True))


def pose_image_edges(forehead: bool = False, irises: bool = False) -> dict[Edge, Colour]:
    """Edge → colour, in draw order, as the official ``FaceMeshVisualizer`` assembles it.

    Args:
        forehead: use MediaPipe's full face oval (incl. forehead) instead of the custom jaw contour;
            the official code supports it but never enables it.
        irises: also draw the iris rings (not drawn by the official code; study option).
    """
    spec: dict[Edge, Colour] = {}
    oval = mediapipe_edges("FACE_LANDMARKS_FACE_OVAL") if forehead else CUSTOM_FACE_OVAL
    spec.update(dict.fromkeys(oval, FACE_OVAL_COLOUR))
    for name, colour in EYE_GROUPS[:2] + (IRIS_GROUPS[:1] if irises else ()):
        spec.update(dict.fromkeys(mediapipe_edges(name), colour))
    for name, colour in EYE_GROUPS[2:] + (IRIS_GROUPS[1:] if irises else ()):
        spec.update(dict.fromkeys(mediapipe_edges(name), colour))
    for chain, colour in LIP_CHAINS:
        spec.update(dict.fromkeys(chain_edges(chain), colour))
    return spec
