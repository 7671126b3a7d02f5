"""Benchmark audio → video end to end on the CPU: seconds per stage and peak RSS, 16 vs 128 frames.

Random weights at a fixed small configuration (Audio2Mesh / Audio2Pose with a small wav2vec2; the
mid-size Lmk2Video of ``benchmarks/pipeline.py`` at 128×128): what is measured is the kit's
plumbing and its memory behaviour, not image quality. Each frame count runs in its own process, so
``ru_maxrss`` is that run's peak. The speech is the sample clip cut to ``frames / 30`` seconds.

    python benchmarks/generate.py                      # 16 and 128 frames
    python benchmarks/generate.py --frames 16 64 --steps 2 --size 256
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def _audio_models():
    import torch
    from transformers import Wav2Vec2Config

    from aniportrait_lib.audio import Audio2Mesh, Audio2MeshConfig, Audio2Pose, Audio2PoseConfig

    w2v = Wav2Vec2Config(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256)
    torch.manual_seed(0)
    mesh = Audio2Mesh(Audio2MeshConfig(latent_dim=128, encoder=w2v), random_encoder_ok=True).eval()
    pose = Audio2Pose(
        Audio2PoseConfig(latent_dim=128, num_layers=4, encoder=w2v), random_encoder_ok=True
    ).eval()
    return mesh, pose


def run_once(frames: int, steps: int, size: int) -> dict:
    """One end-to-end measurement in this process; returns seconds per stage and the peak RSS."""
    import soundfile as sf
    import torch
    from pipeline import build_pipeline

    from aniportrait_lib.audio.features import features_from_waveform, load_waveform
    from aniportrait_lib.audio.inference import MotionConfig, mesh_offsets_from_audio, pose_from_audio
    from aniportrait_lib.data.samples import load_portrait, load_speech
    from aniportrait_lib.landmarks.performance import Performance
    from aniportrait_lib.pipelines.generate import (
        GenerateConfig,
        LazyPoseImages,
        render_pose_images,
    )
    from aniportrait_lib.pipelines.generate import (
        load_portrait as portrait_of,
    )

    seconds: dict[str, float] = {}
    mesh_model, pose_model = _audio_models()
    pipe = build_pipeline()
    config = GenerateConfig(width=size, height=size, steps=steps)
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        speech = load_speech()
        wav = Path(tmp) / "speech.wav"
        sf.write(wav, speech.samples[: int(frames / 30 * speech.sample_rate)], speech.sample_rate)
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            seconds[name] = round(now - clock, 3)
            clock = now

        waveform = load_waveform(wav)
        features = features_from_waveform(waveform)
        lap("audio features")
        portrait = portrait_of(load_portrait(), config)
        lap("portrait landmarks")
        offsets = mesh_offsets_from_audio(mesh_model, features, MotionConfig())
        lap("audio2mesh")
        pose = pose_from_audio(pose_model, features, style_id=0)
        lap("audio2pose")
        performance = Performance.from_reference(portrait, offsets, pose, 30.0)
        poses = LazyPoseImages(performance.landmarks_px((size, size)), (size, size))
        lap("projection")
        render_pose_images(pipe, portrait.image, portrait.pose_image, poses, Path(tmp) / "out.mp4", config,
                           audio=(waveform, 16_000))  # fmt: skip
        lap("pose images + diffusion + decode + mp4")
    return {
        "frames": features.seq_len,
        "steps": steps,
        "size": size,
        "seconds": seconds,
        "seconds_total": round(sum(seconds.values()), 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    from pipeline import measure_in_children, print_rss_growth

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, nargs="*", default=[16, 128])
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_once(args.frames[0], args.steps, args.size)))
        return
    results = measure_in_children(__file__, args.frames, args.steps, args.size)
    for r in results:
        print(f"{r['frames']} frames, {r['steps']} step(s) at {r['size']}²: peak RSS {r['peak_rss_mib']} MiB")
        for stage, sec in r["seconds"].items():
            print(f"    {stage:<40} {sec:8.2f} s")
    print_rss_growth(results)


if __name__ == "__main__":
    main()
