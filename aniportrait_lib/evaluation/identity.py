"""CSIM, identity similarity: cosine between ArcFace embeddings of generated frames and the reference image.

The network is insightface's ArcFace ResNet-50 trained on WebFace600K, ``w600k_r50.onnx`` from the
``buffalo_l`` model pack, run with onnxruntime on the CPU. Its interface, as insightface's
``model_zoo/arcface_onnx.py`` (``ArcFaceONNX.get_feat``) and FaceFusion's ``face_recognizer.py`` feed it:

* input ``(N, 3, 112, 112)`` float32, **RGB** (insightface: ``cv2.dnn.blobFromImage(..., swapRB=True)``
  on BGR crops; FaceFusion: ``crop[:, :, ::-1]``), scaled ``(pixel - 127.5) / 127.5`` to [-1, 1]
  (insightface uses mean 127.5 / std 127.5 unless the graph's first nodes already subtract and multiply,
  as older MXNet exports do, which it feeds 0 / 1; FaceFusion's ``face_recognizer.py`` divides by 127.5
  and subtracts 1 for this same file, so its graph normalises nothing itself);
* crop: the face aligned onto insightface's five-point 112 × 112 template
  (:func:`~aniportrait_lib.evaluation.face_crops.align_to_arcface`, points from MediaPipe);
* output ``(N, 512)``, compared after L2 normalisation by cosine similarity.

Protocol (the kit's): every frame of a generated video with a face is aligned and embedded; its cosine
with the embedding of that video's reference image is averaged over the frames; CSIM is the mean of
the per-video values (each video weighs the same). Frames without a face are left out. Published CSIM
values use the same network family but their own face detector (RetinaFace/SCRFD five points); the kit
takes the five points from MediaPipe (:data:`~aniportrait_lib.evaluation.face_crops.ARCFACE_POINTS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from aniportrait_lib.evaluation.face_crops import (
    ARCFACE_SIZE,
    align_to_arcface,
    arcface_five_points,
    check_video,
    own_extractor,
    video_landmarks_px,
)
from aniportrait_lib.landmarks.extract import LandmarkExtractor

ARCFACE_MEAN = 127.5
"""Subtracted from every RGB pixel value (insightface ``ArcFaceONNX.input_mean`` for this file)."""
ARCFACE_STD = 127.5
"""Then divided by (insightface ``ArcFaceONNX.input_std``)."""
EMBEDDING_SIZE = 512
"""Width of ArcFace's embedding."""


def load_arcface(path: Path) -> ort.InferenceSession:
    """An onnxruntime CPU session on ``path``, checked to have ArcFace's interface (module docstring).

    Raises:
        ValueError: the file is missing, is not ONNX, or its input/output shapes are not (N, 3, 112, 112) →
            (N, 512); the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: ArcFace weights file missing (insightface buffalo_l, file w600k_r50.onnx)")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's error classes derive from Exception directly
        raise ValueError(f"{path}: not a readable ONNX network ({error})") from error
    inputs, outputs = session.get_inputs(), session.get_outputs()
    in_shape = inputs[0].shape if len(inputs) == 1 else None
    out_shape = outputs[0].shape if len(outputs) == 1 else None
    if (
        in_shape is None
        or len(in_shape) != 4
        or in_shape[1:] != [3, ARCFACE_SIZE, ARCFACE_SIZE]
        or out_shape is None
        or len(out_shape) != 2
        or out_shape[1] != EMBEDDING_SIZE
    ):
        got = [(i.name, i.shape) for i in inputs], [(o.name, o.shape) for o in outputs]
        raise ValueError(
            f"{path}: not the ArcFace network: expected one input (N, 3, 112, 112) and one output (N, 512), "
            f"got inputs/outputs {got}"
        )
    return session


def arcface_blob(crops: np.ndarray) -> np.ndarray:
    """(N, 112, 112, 3) uint8 RGB crops → (N, 3, 112, 112) float32 in [-1, 1], ArcFace's input."""
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[1:] != (ARCFACE_SIZE, ARCFACE_SIZE, 3):
        raise ValueError(f"expected (N, 112, 112, 3) crops, got {crops.shape}")
    return ((crops.astype(np.float32) - ARCFACE_MEAN) / ARCFACE_STD).transpose(0, 3, 1, 2).copy()


def arcface_embeddings(session: ort.InferenceSession, crops: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """L2-normalised embeddings (N, 512) float64 of aligned (N, 112, 112, 3) uint8 RGB crops.

    A network exported with a fixed batch size (an integer first input dimension) is fed that many at a time.
    """
    blob = arcface_blob(crops)
    fixed = session.get_inputs()[0].shape[0]
    step = fixed if isinstance(fixed, int) else batch_size
    name = session.get_inputs()[0].name
    chunks = []
    for start in range(0, len(blob), step):
        chunk = blob[start : start + step]
        missing = step - len(chunk) if isinstance(fixed, int) else 0
        padded = (
            np.concatenate([chunk, np.zeros((missing, *chunk.shape[1:]), np.float32)]) if missing else chunk
        )
        chunks.append(session.run(None, {name: padded})[0][: len(chunk)])
    embeddings = np.concatenate(chunks).astype(np.float64)
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)


def aligned_faces(images: np.ndarray, lmks_px: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 images and their (N, 478, 2) pixel landmarks → (N, 112, 112, 3) aligned crops."""
    points = arcface_five_points(lmks_px)
    return np.stack([align_to_arcface(image, five) for image, five in zip(images, points, strict=True)])


def csim(
    generated: Sequence[np.ndarray],
    reference_images: Sequence[np.ndarray],
    arcface_path: Path,
    extractor: LandmarkExtractor | None = None,
) -> float:
    """Mean ArcFace cosine similarity of generated videos to their reference images (module protocol).

    Args:
        generated: videos, each (F, H, W, 3) uint8 RGB.
        reference_images: one (H, W, 3) uint8 RGB image per video (sizes may differ from the video's).
        arcface_path: ``metrics/w600k_r50.onnx`` under the weights folder.
        extractor: MediaPipe wrapper to use; None creates one and closes it afterwards.

    Returns:
        CSIM in [-1, 1] (1: same identity embedding in every frame).

    Raises:
        ValueError: wrong weights file (names it), unequal counts, a reference image without a face, or a
            video without a face in any frame.
    """
    if len(generated) != len(reference_images) or not generated:
        raise ValueError(
            f"csim: need one reference image per video, got {len(generated)} and {len(reference_images)}"
        )
    session = load_arcface(arcface_path)
    per_video = []
    with own_extractor(extractor) as extract:
        for index, (video, image) in enumerate(zip(generated, reference_images, strict=True)):
            where = f"csim video {index}"
            face = extract.detect(np.asarray(image), "rgb", where=f"{where} reference image")
            ref_px = face.lmks[None, :, :2].astype(np.float64) * np.array(face.image_size, np.float64)
            reference = arcface_embeddings(session, aligned_faces(np.asarray(image)[None], ref_px))[0]
            video = check_video(video, where)
            lmks_px, found = video_landmarks_px(video, extract, where)
            if not found.any():
                raise ValueError(f"{where}: no face found in any frame")
            frames = arcface_embeddings(session, aligned_faces(video[found], lmks_px[found]))
            per_video.append(float((frames @ reference).mean()))
    return float(np.mean(per_video))
