"""Benchmark: landmark extraction speed, official per-frame IMAGE mode vs the kit's video path.

Builds a synthetic 512×512 clip (the oracle portrait, or scikit-image's astronaut when the shared
reference is absent, with a small random affine jitter per frame), writes it as an H.264 mp4 in a
temporary folder, and times:

(a) the official recipe: one MediaPipe IMAGE-mode ``detect`` per frame, one thread;
(b) the kit's ``LandmarkExtractor.detect_video`` with ``video_running_mode="video"`` (MediaPipe
    tracking in blocks on 2 threads, incl. the metric mesh ``lmks3d`` and the pose per frame);
(c) the same with ``video_running_mode="image"``, the kit's default (per-frame detection in
    parallel: identical landmarks to (a)).

Each with decoding excluded (frames already in memory) and included (from the mp4). Prints frames
per second, the speed ratios and the max / mean landmark difference (pixels) against (a).

Usage::

    python benchmarks/landmarks.py [--frames 300] [--seed 0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import cv2
import imageio.v3 as iio
import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision

from aniportrait_lib.landmarks.extract import ExtractorConfig, LandmarkExtractor
from aniportrait_lib.landmarks.model_file import ensure_face_landmarker_model
from aniportrait_lib.paths import shared_reference
from aniportrait_lib.video_io import read_frames

SIZE = 512


def portrait_rgb() -> np.ndarray:
    """(512, 512, 3) uint8 RGB: the oracle portrait if available, else skimage's astronaut."""
    reference = shared_reference()
    if reference is not None:
        path = reference / "oracle" / "landmarks" / "input_bgr_512.png"
        if path.is_file():
            return cv2.imread(str(path))[:, :, ::-1].copy()
    from skimage.data import astronaut

    return cv2.resize(astronaut(), (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def jittered_clip(image: np.ndarray, n_frames: int, seed: int) -> np.ndarray:
    """(T, 512, 512, 3) uint8: ``image`` under a slowly drifting small rotation / scale / shift."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0.0, 1.0, (n_frames, 4)), axis=0) * [0.3, 0.003, 0.8, 0.8]
    frames = []
    for angle, scale, dx, dy in walk:
        matrix = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), angle, 1.0 + scale)
        matrix[:, 2] += (dx, dy)
        frames.append(cv2.warpAffine(image, matrix, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames)


class Timer:
    """Wall-clock and process CPU seconds (all threads) of a ``with`` block."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def official_image_mode(frames_rgb, model: Path) -> tuple[Timer, np.ndarray]:
    """(a): timer and (T, 478, 2) pixel landmarks (NaN where no face) of per-frame IMAGE detection."""
    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model)),
        running_mode=vision.RunningMode.IMAGE,
        num_faces=1,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    points = []
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        with Timer() as timer:
            for frame in frames_rgb:
                image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
                result = landmarker.detect(image)
                face = result.face_landmarks[0] if result.face_landmarks else None
                points.append(np.array([(p.x, p.y) for p in face]) if face else np.full((478, 2), np.nan))
    return timer, np.stack(points) * SIZE


def kit_video(extractor: LandmarkExtractor, source, fps: float) -> tuple[Timer, np.ndarray]:
    """(b)/(c): timer and (T, 478, 2) pixel landmarks of ``detect_video``."""
    with Timer() as timer:
        result = extractor.detect_video(source, fps=fps, channel_order="rgb")
    return timer, result.lmks[:, :, :2].astype(np.float64) * SIZE


def report(
    label: str, timer: Timer, n: int, base: Timer | None = None, points=None, base_points=None
) -> None:
    """Print one line: fps, CPU ms per frame, speed-up over (a), landmark difference in pixels."""
    line = f"{label:<50s} {n / timer.wall:6.1f} fps  cpu {1000 * timer.cpu / n:5.1f} ms/frame"
    if base is not None:
        error = np.linalg.norm(points - base_points, axis=-1)
        line += f"  x{base.wall / timer.wall:4.2f}  max {np.nanmax(error):5.2f} px"
        line += f"  mean {np.nanmean(error):5.2f} px"
    print(line)


def best_of(repeats: int, run) -> tuple[Timer, np.ndarray]:
    """Run ``run()`` ``repeats`` times; keep the fastest (least disturbed by other processes)."""
    results = [run() for _ in range(repeats)]
    return min(results, key=lambda result: result[0].wall)


def main() -> None:
    """Build the clip, run (a), (b), (c) with decoding excluded and included, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs per configuration")
    args = parser.parse_args()
    model = ensure_face_landmarker_model()
    clip = jittered_clip(portrait_rgb(), args.frames, args.seed)
    fps, best = 30.0, partial(best_of, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "clip.mp4"
        iio.imwrite(video, clip, fps=fps, codec="libx264", quality=9, macro_block_size=16)
        decoded = np.stack(list(read_frames(video)))
        n = len(decoded)
        print(f"{n} frames {SIZE}x{SIZE}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        t_a, p_a = best(lambda: official_image_mode(decoded, model))
        t_a_dec, _ = best(lambda: official_image_mode(read_frames(video), model))
        report("(a) official IMAGE mode per frame, decoding excluded", t_a, n)
        report("(a) official IMAGE mode per frame, decoding included", t_a_dec, n)
        for mode in ("video", "image"):
            with LandmarkExtractor(replace(ExtractorConfig(), video_running_mode=mode)) as extractor:
                kit_video(extractor, decoded[:8], fps)  # warm-up
                t_b, p_b = best(lambda: kit_video(extractor, decoded, fps))  # noqa: B023 (called at once)
                t_b_dec, p_b_dec = best(lambda: kit_video(extractor, video, fps))  # noqa: B023
            tag = "(b) kit video path, tracking" if mode == "video" else "(c) kit video path, per-frame"
            report(f"{tag}, decoding excluded", t_b, n, t_a, p_b, p_a)
            report(f"{tag}, decoding included", t_b_dec, n, t_a_dec, p_b_dec, p_a)
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
