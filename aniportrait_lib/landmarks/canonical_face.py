"""The canonical face model stored in ``face_landmarker.task`` (geometry-pipeline metadata).

The ``.task`` bundle is a zip; its member ``geometry_pipeline_metadata_landmarks.binarypb`` is a
serialised MediaPipe ``GeometryPipelineMetadata`` message. Read by inspection with
:mod:`aniportrait_lib.landmarks.protowire`, its layout (field numbers used here) is:

```
GeometryPipelineMetadata
  1: canonical_mesh (Mesh3d, LEN)
       1: vertex_type    (VARINT, 0 = VERTEX_PT: position xyz + texture uv, 5 floats per vertex)
       2: primitive_type (VARINT, 0 = TRIANGLE)
       3: vertex_buffer  (float32, 468 x 5 = 2340 values; written unpacked, one I32 per value)
       4: index_buffer   (uint32 varints, 898 x 3 = 2694 values, 0-based vertex ids)
  2: procrustes_landmark_basis (repeated WeightedLandmarkRef, LEN) -- 33 entries
       1: landmark_id (VARINT, omitted when 0)
       2: weight      (float32, I32); the 33 weights sum to 1.055
  3: input_source (VARINT, 1 = FACE_LANDMARK_PIPELINE)
```

The canonical mesh is in centimetre-like metric units, centred near the head, +y up, +z towards
the viewer; it is the "source" of the Procrustes fit in :mod:`.face_geometry`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from aniportrait_lib.landmarks.model_file import ensure_face_landmarker_model
from aniportrait_lib.landmarks.protowire import (
    first_varint,
    iter_fields,
    repeated_floats,
    repeated_varints,
    sub_messages,
)

METADATA_MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"
"""Zip member of ``face_landmarker.task`` holding the geometry-pipeline metadata."""

FLOATS_PER_VERTEX = 5
"""VERTEX_PT layout: x, y, z, u, v."""


@dataclass(frozen=True)
class CanonicalFace:
    """Canonical face model of MediaPipe's geometry pipeline.

    Attributes:
        vertices: (468, 3) float64, canonical metric positions (cm-like units).
        uv: (468, 2) float64, texture coordinates in [0, 1].
        triangles: (898, 3) int64, 0-based vertex indices (the official ``faces`` output adds 1).
        landmark_weights: (468,) float64, Procrustes weight per vertex (zero for the 435 vertices
            not in the basis).
        input_source: metadata enum (1 = landmarks come from the face-landmark pipeline).
    """

    vertices: np.ndarray
    uv: np.ndarray
    triangles: np.ndarray
    landmark_weights: np.ndarray
    input_source: int


def parse_geometry_metadata(data: bytes, origin: str = "<bytes>") -> CanonicalFace:
    """Decode a serialised ``GeometryPipelineMetadata`` (see the module docstring for the layout).

    Raises ``ValueError`` naming ``origin`` if the message does not have the expected shape.
    """
    top = iter_fields(data)
    meshes = sub_messages(top, 1)
    if len(meshes) != 1:
        raise ValueError(f"{origin}: expected one canonical_mesh (field 1), found {len(meshes)}")
    mesh = iter_fields(meshes[0])
    if first_varint(mesh, 1) != 0 or first_varint(mesh, 2) != 0:
        raise ValueError(f"{origin}: canonical mesh is not VERTEX_PT triangles")
    vertex_buffer = np.asarray(repeated_floats(mesh, 3), dtype=np.float32)
    index_buffer = np.asarray(repeated_varints(mesh, 4), dtype=np.int64)
    if vertex_buffer.size % FLOATS_PER_VERTEX or index_buffer.size % 3:
        raise ValueError(f"{origin}: vertex/index buffer sizes {vertex_buffer.size}/{index_buffer.size}")
    vertex_table = vertex_buffer.reshape(-1, FLOATS_PER_VERTEX).astype(np.float64)
    weights = np.zeros(len(vertex_table), dtype=np.float64)
    for entry in sub_messages(top, 2):
        fields = iter_fields(entry)
        landmark_id = first_varint(fields, 1)
        (weight,) = repeated_floats(fields, 2) or [0.0]
        if landmark_id >= len(weights):
            raise ValueError(f"{origin}: Procrustes landmark id {landmark_id} out of range")
        weights[landmark_id] = weight
    arrays = [vertex_table[:, :3].copy(), vertex_table[:, 3:].copy(), index_buffer.reshape(-1, 3), weights]
    for array in arrays:
        array.setflags(write=False)  # shared through the cache below: keep it immutable
    return CanonicalFace(*arrays, input_source=first_varint(top, 3))


@lru_cache(maxsize=4)
def load_canonical_face(task_path: str | Path | None = None) -> CanonicalFace:
    """Read the canonical face model from a ``face_landmarker.task`` bundle.

    Args:
        task_path: the ``.task`` zip; default :func:`ensure_face_landmarker_model` (fetches it).
    """
    if task_path is None:
        task_path = ensure_face_landmarker_model()
    task_path = Path(task_path)
    try:
        with zipfile.ZipFile(task_path) as bundle:
            data = bundle.read(METADATA_MEMBER)
    except (zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"{task_path}: cannot read {METADATA_MEMBER}: {error}") from error
    return parse_geometry_metadata(data, origin=f"{task_path}:{METADATA_MEMBER}")
