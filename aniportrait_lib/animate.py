"""``python -m aniportrait_lib.animate``: a portrait and speech (or head motion) → an MP4, from the shell.

What notebook 05 does, for people who script (a thin layer over :mod:`aniportrait_lib.pipelines.generate`)::

    python -m aniportrait_lib.animate --ref me.png --audio speech.wav --out talk.mp4
    python -m aniportrait_lib.animate --ref me.png --audio speech.wav --pose-template pose.npy --out talk.mp4
    python -m aniportrait_lib.animate --ref me.png --pose-template pose_temp.npy --out nod.mp4
    python -m aniportrait_lib.animate --ref me.png --pose-video source.mp4 --out reenacted.mp4

Weights: ``--weights official:<folder>`` (the released checkpoints in the official layout) or
``--weights kit:<run folder>`` (what notebooks 02-04 trained, e.g. ``kit:outputs/runs/latest-cpu``);
by default the ``--profile``'s (gpu: the official folder; quick/cpu: the newest run of that profile), and
with no ``--profile`` the official folder when it is complete, else the newest cpu run.
Device: ``--device auto|cuda|mps|cpu`` and ``--dtype auto|fp32|fp16|bf16`` (:mod:`aniportrait_lib.devices`:
CUDA, else MPS, else the CPU; float16 on a GPU, float32 on the CPU), printed before anything is loaded.
Speed: ``--steps``, ``--size``, ``--acc`` (diffuse every 3rd frame, interpolate the rest).

Exit status: 0 on success; 2 for bad arguments, unusable inputs or missing weights, with one message and
no traceback.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from aniportrait_lib.config import DEVICE_CHOICES, DTYPE_CHOICES
from aniportrait_lib.profiles import DEFAULT_PROFILE, PROFILE_NAMES, get_profile


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aniportrait_lib.animate",
        description="Animate a portrait with speech (audio → video) or with head motion (pose → video).",
    )
    parser.add_argument("--ref", required=True, type=Path, help="the portrait (an image with one face)")
    parser.add_argument("--out", required=True, type=Path, help="the video to write (.mp4)")
    parser.add_argument("--audio", type=Path, help="speech (wav, mp3, ...): audio → video")
    parser.add_argument(
        "--pose-template", type=Path, help="head poses (T, 6) .npy: with --audio instead of Audio2Pose; "
        "alone, the portrait's own face follows it"
    )  # fmt: skip
    parser.add_argument("--pose-video", type=Path, help="a talking-head video reenacted onto the portrait")
    parser.add_argument(
        "--on-face-lost", default="warn", choices=("warn", "error"),
        help="--pose-video whose face is lost part-way: warn = render the frames before it (and say how "
        "many are kept), error = refuse",
    )  # fmt: skip
    parser.add_argument("--weights", help="official:<folder> or kit:<run folder> (default: from --profile)")
    parser.add_argument(
        "--profile", choices=sorted(PROFILE_NAMES),
        help="default weights and GPU dtype: gpu = the official folder; quick/cpu = the newest run of that "
        "profile (default: the official folder if complete, else the newest cpu run)",
    )  # fmt: skip
    parser.add_argument(
        "--device", default="auto", choices=DEVICE_CHOICES,
        help="where the networks run (auto: CUDA, else Apple MPS, else the CPU)",
    )  # fmt: skip
    parser.add_argument(
        "--dtype", default="auto", choices=DTYPE_CHOICES,
        help="network precision (auto: the profile's on a GPU, fp16, and fp32 on the CPU; bf16 runs on CPUs)",
    )  # fmt: skip
    parser.add_argument(
        "--sampling", default="official", choices=("official", "kit"),
        help="official: weights only - official = as the official scripts (train-mode BatchNorm in the pose "
        "guider, wrap-around context windows); kit = eval-mode BatchNorm, open-ended windows",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, help="denoising steps (default: what the weights are meant for)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale (1 = off)")
    parser.add_argument("--size", help="output size: S (square) or WxH, multiples of 8")
    parser.add_argument("--fps", type=float, help="frames per second of the video (default 30)")
    parser.add_argument("--length", type=int, help="at most this many frames (official -L)")
    parser.add_argument("--acc", action="store_true", help="diffuse every 3rd frame, interpolate the others")
    parser.add_argument("--keyframe-step", type=int, help="diffuse every k-th frame (--acc is 3)")
    parser.add_argument("--interpolation", help="'flow' (OpenCV optical flow) or a film_net_fp16.pt file")
    parser.add_argument(
        "--crf", type=int, help="H.264 quality, 1 (finest) to 51 (default: 18, or 4 below 256 px)"
    )
    parser.add_argument("--seed", type=int, help="random seed of the initial noise and the Audio2Pose style")
    parser.add_argument("--style-id", type=int, help="Audio2Pose style in [0, 100)")
    parser.add_argument("--context-frames", type=int, help="frames per denoising window (official 16)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument(
        "--dry-run", action="store_true",
        help="load the weights, measure this machine on two tiny runs, print the estimated peak memory and "
        "time of these settings; refuse (exit 2) naming settings that fit if they do not; generate nothing",
    )  # fmt: skip
    return parser


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        size = (int(width), int(height or width))
    except ValueError:
        raise ValueError(f"--size {text!r}: expected S or WxH, e.g. 256 or 512x384") from None
    if min(size) < 64 or size[0] % 8 or size[1] % 8:
        raise ValueError(f"--size {text!r}: width and height must be multiples of 8 and at least 64")
    return size


def _check_arguments(args: argparse.Namespace) -> None:
    """Argument-level errors (before anything is loaded)."""
    if args.pose_video is not None and (args.audio is not None or args.pose_template is not None):
        raise ValueError("--pose-video drives the portrait alone: do not add --audio or --pose-template")
    if args.audio is None and args.pose_template is None and args.pose_video is None:
        raise ValueError("nothing drives the portrait: give --audio, --pose-template or --pose-video")
    if args.out.suffix.lower() != ".mp4":
        raise ValueError(f"--out {args.out}: the output is an H.264 MP4, name it *.mp4")
    for flag in ("steps", "length", "keyframe_step", "threads", "context_frames"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    if args.crf is not None and not 1 <= args.crf <= 51:
        raise ValueError(
            f"--crf must be in [1, 51] (0, lossless, makes videos browsers do not play), got {args.crf}"
        )
    if args.fps is not None and not args.fps > 0:
        raise ValueError(f"--fps must be positive, got {args.fps}")
    if args.guidance is not None and args.guidance < 1:
        raise ValueError(f"--guidance must be at least 1 (1 disables guidance), got {args.guidance}")
    if args.style_id is not None and not 0 <= args.style_id < 100:
        raise ValueError(f"--style-id must be in [0, 100) (Audio2Pose has 100 styles), got {args.style_id}")
    if args.size is not None:
        _size(args.size)
    for flag, path in (("--ref", args.ref), ("--pose-video", args.pose_video)):
        if path is not None and not path.is_file():
            raise ValueError(f"{flag} {path}: no such file")


def _config(args: argparse.Namespace, defaults):
    """The weights' sampling settings with the command line's overrides."""
    changes = {
        "steps": args.steps, "guidance_scale": args.guidance, "fps": args.fps, "max_frames": args.length,
        "seed": args.seed, "interpolation": args.interpolation, "crf": args.crf,
        "keyframe_step": args.keyframe_step or (3 if args.acc else None),
        "context_frames": args.context_frames,
    }  # fmt: skip
    if args.context_frames is not None:
        changes["context_overlap"] = min(defaults.context_overlap, args.context_frames // 4)
    if args.size is not None:
        changes["width"], changes["height"] = _size(args.size)
    return replace(defaults, **{key: value for key, value in changes.items() if value is not None})


def _frame_count(args: argparse.Namespace, config, waveform, template) -> int:
    """How many frames the video will have (before anything is generated)."""
    from aniportrait_lib.video_io import probe_video

    if waveform is not None:
        frames = int(round(len(waveform) / 16_000 * config.fps))  # load_waveform decodes at 16 kHz
    elif template is not None:
        frames = len(template)
    else:
        frames = probe_video(args.pose_video).num_frames
    return min(frames, config.max_frames or frames)


def _check_weights_fit(folder: Path, placement, audio: bool) -> None:
    """Refuse before loading when the official weights alone cannot fit where they are to go."""
    from aniportrait_lib.pipelines.plan import machine_memory, weights_mib
    from aniportrait_lib.pipelines.selection import official_parts

    needed = weights_mib(official_parts(folder, audio), placement.dtype)
    host, device = machine_memory(placement.device)
    available, where = (host, "host memory") if device is None else (device, f"{placement.device} memory")
    if needed > available:
        half = "bf16" if placement.device == "cpu" else "fp16"
        fits_half = needed / 2 < available and placement.dtype_name == "float32"
        hint = f"; in {half} they take {needed / 2 / 1024:.1f} GiB (--dtype {half})" if fits_half else ""
        raise ValueError(
            f"the weights in {folder} take {needed / 1024:.1f} GiB in {placement.dtype_name} and this "
            f"machine has {available / 1024:.1f} GiB of {where} available{hint}"
        )


def _dry_run(models, config, frames: int) -> None:
    """Print the measured plan; raise ValueError naming settings that fit when it does not fit."""
    from aniportrait_lib.pipelines.plan import plan_run

    print(f"dry run: measuring this machine on two tiny runs of the loaded models ({frames} frames asked)")
    plan, fitting = plan_run(models.pipeline, config, frames)
    for what, value in plan.table():
        print(f"  {what:<26} {value}")
    if not plan.fits:
        fix = f"settings that fit: {fitting.settings()}" if fitting else "no smaller setting fits either"
        raise ValueError(f"these settings do not fit this machine ({plan.settings()}); {fix}")
    print("dry run: nothing generated")


def run(args: argparse.Namespace) -> Path | None:
    """Generate the video the arguments describe; returns its path (raises ``ValueError`` on bad input).

    With ``--dry-run`` only the plan is printed and None returned."""
    # heavy (torch, diffusers, MediaPipe: seconds): imported after parsing, so --help answers at once
    import torch

    from aniportrait_lib.audio.features import load_waveform
    from aniportrait_lib.devices import resolve_placement
    from aniportrait_lib.pipelines.generate import audio_to_video, pose_to_video
    from aniportrait_lib.pipelines.motion_sources import read_pose_template
    from aniportrait_lib.pipelines.selection import default_weights_spec, parse_weights_spec, resolve_weights
    from aniportrait_lib.pipelines.stages import StageMeter

    _check_arguments(args)
    profile = get_profile(args.profile or DEFAULT_PROFILE)
    spec = parse_weights_spec(args.weights or default_weights_spec(args.profile))
    placement = resolve_placement(args.device, args.dtype, get_profile("gpu").dtype)
    print(placement.describe())
    if profile.name == "gpu" and placement.device == "cpu" and args.device == "auto":
        print("note: --profile gpu on a machine without a GPU: the released models run on the CPU, slowly")
    waveform = load_waveform(args.audio) if args.audio is not None else None  # bad audio fails before loading
    template = read_pose_template(args.pose_template) if args.pose_template is not None else None
    if args.threads:
        torch.set_num_threads(args.threads)
    if spec.kind == "official":
        _check_weights_fit(spec.folder, placement, audio=args.audio is not None)
    stages = StageMeter()
    with stages.stage("load weights"):
        models = resolve_weights(
            spec, audio=args.audio is not None, progress_bar=not args.dry_run, placement=placement,
            official_compat=args.sampling == "official", log=print,
        )  # fmt: skip
    print(f"weights: {models.weights}")
    for note in models.notes:
        print(f"note: {note}")
    config = _config(args, models.config)
    if args.dry_run:
        _dry_run(models, config, _frame_count(args, config, waveform, template))
        return None
    if args.audio is not None:
        out = audio_to_video(args.ref, args.audio, out_path=args.out, config=config, pose_template=template,
                             style_id=args.style_id, weights=models, stages=stages)  # fmt: skip
    else:
        source = template if template is not None else args.pose_video
        out = pose_to_video(args.ref, source, out_path=args.out, config=config, weights=models, stages=stages,
                            on_face_lost=args.on_face_lost)  # fmt: skip
    for record in stages.records:
        print(f"  {record.stage:<36} {record.seconds:8.2f} s   peak RSS {record.peak_rss_mib:8.0f} MiB")
    print(f"wrote {out} (settings: {out.with_suffix('.json')})")
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
