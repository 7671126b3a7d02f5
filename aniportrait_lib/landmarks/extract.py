"""Face landmarks, metric mesh and head pose from images and videos (AniPortrait's ``LMKExtractor``).

Runs MediaPipe's Tasks ``FaceLandmarker`` (the official ``face_landmarker_v2_with_blendshapes``
bundle, CPU) and returns, per face, the five arrays the official code stores:

| field | shape | meaning |
|---|---|---|
| ``lmks`` | (478, 3) float32 | normalised (x, y in [0, 1] of W, H; z in width units), incl. irises |
| ``lmks3d`` | (468, 3) float64 | pose-free metric mesh (geometry pipeline, see :mod:`.face_geometry`) |
| ``trans_mat`` | (4, 4) float64 | canonical→camera matrix, as MediaPipe returns it |
| ``bs`` | (51,) float32 | blendshape scores without ``_neutral`` (index 0) |
| ``faces`` | (898, 3) int64 | mesh triangles, **1-based** like the official output |

Differences from the official extractor, on purpose:

* **Input** is BGR uint8 by default (official), or RGB with ``channel_order="rgb"``; greyscale and
  4-channel images are converted (:mod:`.image_input`). Image files are read upright (EXIF
  orientation), 16-bit and palette files included (:func:`.image_input.read_image`). Too small, empty
  or corrupt inputs raise ``ValueError`` naming the file and frame; so does a single image without a
  face (the official code returned ``None``).
* **Several faces** in an image: up to ``image_max_faces`` are detected, the largest (landmark
  bounding-box area) is returned and a ``UserWarning`` says so and how many were found (the official
  code asked for one face, i.e. MediaPipe's highest-scoring detection).
* **Small faces**: MediaPipe's detector misses a face less than about 1/8 of the image's longer side
  tall (measured on the sample portrait: found at 360 px in 1024 px, not at 320 px), as in a group
  photo; the "no face found" error says so.
* **Videos** are cut into blocks of 64 frames processed on both cores; within a block MediaPipe
  runs in VIDEO mode (it tracks the face and skips the detector while tracking holds), decoding
  runs on a third thread. Frames without a face are marked in :attr:`VideoLandmarks.found`
  instead of stopping, so dataset preparation can interpolate or split. The official scripts run
  IMAGE mode on every frame; ``ExtractorConfig(video_running_mode="image")`` does the same (still
  in parallel). Tracking moves some landmarks (forehead, jaw) by a few pixels compared with
  per-frame detection; ``benchmarks/landmarks.py`` measures it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision

from aniportrait_lib.landmarks.canonical_face import load_canonical_face
from aniportrait_lib.landmarks.face_geometry import estimate_face_geometry
from aniportrait_lib.landmarks.image_input import ChannelOrder, read_image, to_rgb_uint8
from aniportrait_lib.landmarks.model_file import ensure_face_landmarker_model
from aniportrait_lib.landmarks.native_log import silence_native_stderr
from aniportrait_lib.landmarks.parallel_blocks import iter_blocks, map_blocks_in_order
from aniportrait_lib.landmarks.video_frames import PrefetchingFrames
from aniportrait_lib.video_io import probe_video, read_frames

logger = logging.getLogger(__name__)

N_LANDMARKS, N_MESH, N_BLENDSHAPES = 478, 468, 51


@dataclass(frozen=True)
class ExtractorConfig:
    """Options of :class:`LandmarkExtractor` (defaults follow the official ``LMKExtractor`` unless noted)."""

    model_path: str | None = None
    """``face_landmarker.task``; None = :func:`ensure_face_landmarker_model` (cache / fetch)."""
    image_max_faces: int = 4
    """Faces detected per image (and per frame in "image" video mode), so that extra faces can be noticed
    and counted (official: 1). The landmark model runs once per face found, so single faces cost the same."""
    video_max_faces: int = 1
    """Faces tracked per video; MediaPipe re-runs its detector every frame while fewer than this
    many faces are tracked, so >1 removes most of the tracking speed-up."""
    min_face_detection_confidence: float = 0.5
    """MediaPipe default (official: default)."""
    min_face_presence_confidence: float = 0.5
    """MediaPipe default (official: default)."""
    min_tracking_confidence: float = 0.5
    """MediaPipe default; below it VIDEO mode re-detects (official: default)."""
    min_side: int = 64
    """Smallest accepted image side in pixels (kit choice, see :mod:`.image_input`)."""
    prefetch_frames: int = 8
    """Frames decoded ahead on the background thread."""
    video_running_mode: Literal["video", "image"] = "image"
    """"image" (default): every frame detected independently, identical to the official per-frame
    IMAGE-mode extraction (training labels must match it); "video": MediaPipe tracking within each
    block — smoother from frame to frame but up to ~10 px away from the per-frame result."""
    workers: int = 2
    """Threads running blocks in parallel (this machine class has 2 cores)."""
    block_frames: int = 64
    """Frames per block; each block starts a fresh tracker (first frame detected), so tracking
    state never crosses block boundaries and results do not depend on ``workers``."""


@dataclass(frozen=True)
class FaceLandmarks:
    """One face in one image; arrays as in the module table. ``image_size`` = (W, H) pixels.

    ``trans_mat`` is MediaPipe's own matrix; ``lmks3d`` comes from the kit's geometry pipeline,
    whose matrix agrees with MediaPipe's to ~3e-5 (tests), so the two are consistent.
    """

    lmks: np.ndarray
    lmks3d: np.ndarray
    trans_mat: np.ndarray
    bs: np.ndarray
    faces: np.ndarray
    image_size: tuple[int, int]
    n_faces_found: int = 1
    """How many faces MediaPipe returned (> 1: the largest was kept)."""


@dataclass(frozen=True)
class VideoLandmarks:
    """Per-frame results of one video; frames without a face are NaN with ``found[t] = False``.

    Arrays: ``lmks`` (T, 478, 3) float32, ``lmks3d`` (T, 468, 3), ``trans_mat`` (T, 4, 4),
    ``bs`` (T, 51) float32, ``found`` (T,) bool, ``n_faces`` (T,) int; ``faces`` (898, 3) 1-based;
    ``image_size`` (W, H) pixels; ``fps`` frames per second used for the tracking timestamps.
    """

    lmks: np.ndarray
    lmks3d: np.ndarray
    trans_mat: np.ndarray
    bs: np.ndarray
    found: np.ndarray
    n_faces: np.ndarray
    faces: np.ndarray
    image_size: tuple[int, int]
    fps: float
    source: str = "<frames>"

    @property
    def missing_frames(self) -> list[int]:
        """Indices of frames where no face was found."""
        return np.flatnonzero(~self.found).tolist()

    def frame(self, index: int) -> FaceLandmarks:
        """The result of one frame; ``ValueError`` if that frame has no face."""
        if not self.found[index]:
            raise ValueError(f"no face found in {self.source} frame {index}")
        return FaceLandmarks(
            self.lmks[index], self.lmks3d[index], self.trans_mat[index], self.bs[index],
            self.faces, self.image_size, int(self.n_faces[index]),
        )  # fmt: skip


def _largest_face(result: vision.FaceLandmarkerResult) -> int:
    """Index of the face with the largest landmark bounding box (image-normalised area)."""
    areas = []
    for face in result.face_landmarks:
        xy = np.array([(p.x, p.y) for p in face])
        width, height = xy.max(axis=0) - xy.min(axis=0)
        areas.append(width * height)
    return int(np.argmax(areas))


class LandmarkExtractor:
    """MediaPipe FaceLandmarker + geometry pipeline, for single images and for videos.

    :meth:`detect` uses one IMAGE-mode graph owned by the extractor (call it from one thread at a
    time); :meth:`detect_video` creates its own graphs per block and may run concurrently.

    Example::

        with LandmarkExtractor() as extractor:
            face = extractor.detect_file("portrait.png")       # FaceLandmarks
            video = extractor.detect_video("talking.mp4")     # VideoLandmarks
    """

    def __init__(self, config: ExtractorConfig = ExtractorConfig()) -> None:
        self.config = config
        self.model_path = Path(config.model_path or ensure_face_landmarker_model())
        self.canonical = load_canonical_face(self.model_path)
        self.faces = self.canonical.triangles + 1  # official output is 1-based
        self.faces.setflags(write=False)  # shared by every result
        self._image_landmarker = self._create(vision.RunningMode.IMAGE, config.image_max_faces)

    def _create(self, mode: vision.RunningMode, num_faces: int) -> vision.FaceLandmarker:
        """A FaceLandmarker in ``mode`` with blendshapes and transformation matrices enabled."""
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=mode,
            num_faces=num_faces,
            min_face_detection_confidence=self.config.min_face_detection_confidence,
            min_face_presence_confidence=self.config.min_face_presence_confidence,
            min_tracking_confidence=self.config.min_tracking_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        with silence_native_stderr():  # MediaPipe's graph logs informational lines on creation
            return vision.FaceLandmarker.create_from_options(options)

    def _to_face(self, result: vision.FaceLandmarkerResult, size: tuple[int, int]) -> FaceLandmarks:
        """Convert MediaPipe's result (≥ 1 face) into the largest face's arrays (+ metric mesh)."""
        index = _largest_face(result) if len(result.face_landmarks) > 1 else 0
        lmks = np.array([(p.x, p.y, p.z) for p in result.face_landmarks[index]], dtype=np.float32)
        bs = np.array([c.score for c in result.face_blendshapes[index]][1:], dtype=np.float32)
        lmks3d, _ = estimate_face_geometry(lmks, size, self.canonical)
        trans_mat = np.asarray(result.facial_transformation_matrixes[index], dtype=np.float64)
        return FaceLandmarks(lmks, lmks3d, trans_mat, bs, self.faces, size, len(result.face_landmarks))

    def detect(
        self, image: np.ndarray, channel_order: ChannelOrder = "bgr", where: str = "<array>"
    ) -> FaceLandmarks:
        """Landmarks of the (largest) face in one image, IMAGE mode (no tracking).

        Args:
            image: uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); see :mod:`.image_input`.
            channel_order: "bgr" (official; OpenCV arrays) or "rgb".
            where: name of the file / frame, used in errors and warnings.

        Raises:
            ValueError: unusable image or no face found (message names ``where``).
        """
        rgb = to_rgb_uint8(image, channel_order, self.config.min_side, where)
        result = self._image_landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        if not result.face_landmarks:
            raise ValueError(
                f"no face found in {where} (MediaPipe misses faces under ~1/8 of the image's longer side: "
                "crop the picture closer to the face)"
            )
        face = self._to_face(result, (rgb.shape[1], rgb.shape[0]))
        if face.n_faces_found > 1:
            count = face.n_faces_found
            found = f"at least {count}" if count >= self.config.image_max_faces else str(count)
            warnings.warn(f"{found} faces found in {where}; keeping the largest", stacklevel=2)
        return face

    def detect_file(self, path: str | Path) -> FaceLandmarks:
        """:meth:`detect` on an image file, read upright by :func:`.image_input.read_image` (grey, colour,
        palette, alpha, 8 or 16 bits); errors name the file."""
        return self.detect(read_image(path), "bgr", where=f"{path} frame 0")

    def detect_video(
        self,
        source: str | Path | Iterable[np.ndarray],
        fps: float | None = None,
        channel_order: ChannelOrder = "bgr",
    ) -> VideoLandmarks:
        """Landmarks of every frame of a video, on all cores, with decoding on a background thread.

        Frames are cut into blocks of ``config.block_frames``; each block gets a fresh MediaPipe
        landmarker in ``config.video_running_mode`` ("video": detect on the block's first frame,
        then track; "image": detect every frame like the official scripts) and blocks run on
        ``config.workers`` threads. Results do not depend on the number of workers.

        Args:
            source: a video file (decoded with PyAV, RGB), or an iterable of uint8 frames in
                ``channel_order`` (all the same size).
            fps: frame rate for the tracking timestamps; default the file's rate, else 30.
            channel_order: layout of frames given as arrays ("bgr" like :meth:`detect`).

        Returns:
            :class:`VideoLandmarks`; frames without a face are marked, not raised (a ``UserWarning``
            naming the source says so when no frame has a face).

        Raises:
            ValueError: unreadable/corrupt file, a frame of the wrong size or type, or no frames
                (the message names the file and frame).
        """
        if isinstance(source, (str, Path)):
            info = probe_video(source)
            name, frames, order = str(source), read_frames(source), "rgb"
            fps = fps or info.fps
        else:
            name, frames, order, fps = "<frames>", source, channel_order, fps or 30.0

        def job(start: int, block: list[np.ndarray]) -> list[FaceLandmarks | tuple[int, int]]:
            return self._run_block(start, block, fps, order, name)

        config = self.config
        with PrefetchingFrames(frames, config.prefetch_frames) as prefetched:
            blocks = iter_blocks(prefetched, config.block_frames)
            per_frame = map_blocks_in_order(blocks, job, config.workers)
        if not per_frame:
            raise ValueError(f"{name}: no frames")
        sizes = {item if isinstance(item, tuple) else item.image_size for item in per_frame}
        if len(sizes) > 1:
            raise ValueError(f"{name}: frames have different sizes {sorted(sizes)}")
        return self._stack(per_frame, fps, name)

    def _run_block(
        self, start: int, frames: list[np.ndarray], fps: float, order: str, name: str
    ) -> list[FaceLandmarks | tuple[int, int]]:
        """Detect frames ``start …`` with a fresh landmarker; a frame without a face yields its (W, H)."""
        tracking = self.config.video_running_mode == "video"
        mode = vision.RunningMode.VIDEO if tracking else vision.RunningMode.IMAGE
        max_faces = self.config.video_max_faces if tracking else self.config.image_max_faces
        out: list[FaceLandmarks | tuple[int, int]] = []
        last_ms = -1
        with self._create(mode, max_faces) as landmarker:
            for index, frame in enumerate(frames, start):
                rgb = to_rgb_uint8(frame, order, self.config.min_side, f"{name} frame {index}")
                image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
                if tracking:
                    last_ms = max(last_ms + 1, round(index * 1000.0 / fps))  # strictly increasing
                    result = landmarker.detect_for_video(image, last_ms)
                else:
                    result = landmarker.detect(image)
                size = (rgb.shape[1], rgb.shape[0])
                out.append(self._to_face(result, size) if result.face_landmarks else size)
        return out

    def _stack(
        self, per_frame: list[FaceLandmarks | tuple[int, int]], fps: float, name: str
    ) -> VideoLandmarks:
        """Stack per-frame results into NaN-filled arrays with a ``found`` mask."""
        n = len(per_frame)
        arrays = {
            "lmks": np.full((n, N_LANDMARKS, 3), np.nan, np.float32),
            "lmks3d": np.full((n, N_MESH, 3), np.nan),
            "trans_mat": np.full((n, 4, 4), np.nan),
            "bs": np.full((n, N_BLENDSHAPES), np.nan, np.float32),
        }
        found, n_faces = np.zeros(n, bool), np.zeros(n, np.int64)
        for t, item in enumerate(per_frame):
            if isinstance(item, FaceLandmarks):
                for key, array in arrays.items():
                    array[t] = getattr(item, key)
                found[t], n_faces[t] = True, item.n_faces_found
        first = per_frame[0]
        size = first if isinstance(first, tuple) else first.image_size
        if (n_faces > 1).any():
            warnings.warn(
                f"several faces in {name} ({int((n_faces > 1).sum())} frames); kept the largest", stacklevel=3
            )
        if not found.any():
            warnings.warn(f"no face found in any of the {n} frames of {name}", stacklevel=3)
        elif not found.all():
            logger.info("%s: no face in %d of %d frames", name, int((~found).sum()), n)
        return VideoLandmarks(
            **arrays, found=found, n_faces=n_faces, faces=self.faces, image_size=size, fps=fps, source=name
        )

    def close(self) -> None:
        """Release the MediaPipe graph."""
        self._image_landmarker.close()

    def __enter__(self) -> LandmarkExtractor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
