"""Benchmark: real-time factor of Audio2Mesh + Audio2Pose inference on CPU at paper size.

Builds both models at wav2vec2-base-960h size (768-d, 12 layers; heads 512-d, Audio2Pose 8 decoder
layers) with random weights, feeds a synthetic speech-like clip and times:

(a) Audio2Mesh, kit path (``infer_long``: chunked conv features, windowed transformer);
(b) Audio2Pose, kit path (windowed autoregressive decoding with cached layer inputs);
(c) Audio2Pose, official loop (5 s chunks, the whole decoder re-run for every new frame), on the
    first ``--official-seconds`` only, because it is quadratic per chunk.

RTF = compute time / audio duration (below 1 = faster than real time).

Usage::

    python benchmarks/audio2lmk.py [--seconds 20] [--official-seconds 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from aniportrait_lib.audio import Audio2Mesh, Audio2Pose, MotionConfig
from aniportrait_lib.audio.features import features_from_waveform
from aniportrait_lib.audio.inference import mesh_offsets_from_audio, pose_from_audio


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """(N,) float32 16 kHz: an amplitude-modulated chirp with a little noise."""
    t = np.arange(int(seconds * 16000)) / 16000
    tone = np.sin(2 * np.pi * (150 + 40 * t) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (0.3 * tone + 0.01 * np.random.default_rng(seed).standard_normal(t.size)).astype(np.float32)


def timed(label: str, seconds: float, fn) -> float:
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    print(f"{label:<48s} {elapsed:7.2f} s for {seconds:5.1f} s audio   RTF {elapsed / seconds:6.3f}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--official-seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mesh = Audio2Mesh(random_encoder_ok=True).eval()
        pose = Audio2Pose(random_encoder_ok=True).eval()
    features = features_from_waveform(speech_like(args.seconds))
    short = features_from_waveform(speech_like(args.official_seconds))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, random weights, paper sizes")
    kit = MotionConfig()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_mesh = timed(
            "Audio2Mesh (kit, windowed encoder)",
            args.seconds,
            lambda: mesh_offsets_from_audio(mesh, features, kit),
        )
        t_pose = timed(
            "Audio2Pose (kit, windows + cached decoding)",
            args.seconds,
            lambda: pose_from_audio(pose, features, 0, kit),
        )
        official = MotionConfig(official_compat=True, use_kv_cache=False)
        timed(
            "Audio2Pose (official loop, 5 s chunks)",
            args.official_seconds,
            lambda: pose_from_audio(pose, short, 0, official),
        )
    total = t_mesh + t_pose
    print(f"{'Audio2Mesh + Audio2Pose (kit)':<48s} {total:7.2f} s   RTF {total / args.seconds:6.3f}")


if __name__ == "__main__":
    main()
