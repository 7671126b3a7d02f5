"""Training commands: one stage of AniPortrait per call, on one process or many (``accelerate launch``).

::

    python -m aniportrait_lib.train STAGE --config RECIPE --data DATA --output RUN [options]
    accelerate launch [--num_processes N] [--multi_gpu | --config_file F] -m aniportrait_lib.train STAGE ...

``STAGE`` is ``audio2mesh``, ``audio2pose`` (paper §3.1), ``stage1`` or ``stage2`` (Lmk2Video, §3.2).

``--config`` names a recipe: a kit profile (``quick``, ``cpu``, ``gpu``: the configs the notebooks use,
:mod:`aniportrait_lib.profiles`), ``official`` (the official repository's stage-1/2 recipes,
``aniportrait_lib/recipes/official.yaml``), or a YAML file of the same form - e.g. the
``train_config.yaml`` a run saved. ``--set SECTION.FIELD=VALUE`` (repeatable) changes any field, e.g.
``--set train.learning_rate=2e-5 --set train.batch_size=4``; ``--max-steps``, ``--batch-size``,
``--mixed-precision``, ``--workers`` and ``--report-to`` are short forms of common ones.

``--data`` is a prepared dataset folder (``python -m aniportrait_lib.data.prepare``), a mini-corpus folder,
or ``mini`` (the recipe's mini corpus, made in the kit's cache if needed). Training reads the ``train``
split; frames are read lazily through a ``DataLoader`` with ``--workers`` reader processes.

``--init`` says what the networks start from:

* ``stage1``: nothing (fresh small networks in the ``quick``/``cpu`` recipes; in ``gpu``/``official`` both
  UNets from the SD1.5 UNet folder of the weights folder, as the paper), ``official:FOLDER`` (fine-tune
  the released AniPortrait ``reference_unet.pth``, ``denoising_unet.pth`` and ``pose_guider.pth``: the
  practical path on one GPU) or a kit stage-1 export / run folder (go on training it);
* ``stage2``: a stage-1 run or export folder (required; e.g. this command's ``stage1`` output) or
  ``official:FOLDER`` (the released stage-1 files); the motion modules start from ``--motion-init`` or,
  for SD1.5-sized networks, AnimateDiff's ``mm_sd_v15_v2.ckpt`` in the weights folder when present
  (zero-output modules otherwise);
* ``audio2mesh`` / ``audio2pose``: nothing, or ``official:FOLDER`` (fine-tune the released ``.pt``).

The run folder holds ``train_config.yaml`` (the resolved recipe, written first), ``training/``
(checkpoints, ``log.csv``, tracker files) and, at the end, ``export/`` (weights in the kit's indexed
export format, usable as ``--weights kit:RUN`` by the generation CLI, or as ``--init`` of stage 2). Run
the same command again to resume from the newest checkpoint; at the same number of processes the result
equals an uninterrupted run. Only the main process writes files.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import socket
import sys
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState

from aniportrait_lib.data.audio_dataset import CorpusAudioDataset, PreparedAudioDataset
from aniportrait_lib.data.manifest import MANIFEST_NAME, PreparedDataset
from aniportrait_lib.data.mini_corpus import MiniCorpus, generate_mini_corpus, open_mini_corpus
from aniportrait_lib.devices import resolve_placement
from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
from aniportrait_lib.models.lmk2video import build_stage1_networks
from aniportrait_lib.models.unets import SD15_UNET_CONFIG
from aniportrait_lib.paths import cache_dir, weights_dir
from aniportrait_lib.profiles import stage_configs
from aniportrait_lib.recipes import STAGES, Recipe, load_recipe, parse_overrides, save_recipe
from aniportrait_lib.studies.configs import Lmk2VideoProfile, MotionStudyProfile
from aniportrait_lib.studies.pose_guider_study import FrozenModels, prepare_frozen_models
from aniportrait_lib.studies.train_motion_module import (
    released_stage2_start,
    stage1_export_folder,
    stage2_start_from_export,
    stage2_trainer,
)
from aniportrait_lib.training.audio2lmk import Audio2LmkTrainer
from aniportrait_lib.training.audio2lmk_config import build_audio2mesh, build_audio2pose
from aniportrait_lib.training.lmk2video import Stage1Trainer
from aniportrait_lib.training.lmk2video_data import ClipWindowDataset, FramePairDataset
from aniportrait_lib.training.sampling import describe_layout
from aniportrait_lib.weights.animatediff import ANIMATEDIFF_FILE
from aniportrait_lib.weights.audio_checkpoints import export_official, load_into, read_state_dict
from aniportrait_lib.weights.kit_index import made_by
from aniportrait_lib.weights.kit_lmk2video import (
    SamplingSettings,
    export_stage2,
    load_released_stage1,
    load_stage1_run,
    save_stage1_run,
)

__all__ = ["launch_command", "main"]

CONFIG_FILE = "train_config.yaml"
TRAINING_DIR, EXPORT_DIR, FROZEN_DIR = "training", "export", "frozen"


# --------------------------------------------------------------------------------------------------
# data


def is_prepared(folder: Path) -> bool:
    """True when ``folder`` holds a prepared dataset's manifest."""
    return (folder / MANIFEST_NAME).is_file()


def open_corpus(spec: str, base: str) -> MiniCorpus:
    """``mini`` (the profile's corpus, made in the cache if needed) or a mini-corpus folder."""
    if spec == "mini":
        corpus = stage_configs(base).corpus
        return generate_mini_corpus(cache_dir() / f"mini_corpus-{base}", corpus)
    return open_mini_corpus(spec)


def open_data(spec: str, recipe: Recipe, image_size: int | None = None):
    """The training dataset of ``recipe.stage`` from ``spec`` (prepared folder, mini corpus or ``mini``)."""
    train = recipe.sections["train"]
    prepared = spec != "mini" and is_prepared(Path(spec))
    if not prepared and spec != "mini" and not Path(spec).is_dir():
        raise ValueError(f"--data {spec}: no such folder (give a prepared dataset, a mini corpus or 'mini')")
    if recipe.stage in ("audio2mesh", "audio2pose"):
        data = recipe.sections["data"]
        if prepared:
            return PreparedAudioDataset(PreparedDataset(spec), "train", data)
        return CorpusAudioDataset(open_corpus(spec, recipe.base), "train", data)
    size = image_size or train.image_size
    kwargs = {}
    cls = FramePairDataset
    if recipe.stage == "stage2":
        cls, kwargs = ClipWindowDataset, {"num_frames": train.num_frames, "strides": train.sample_strides}
    if prepared:
        return cls.from_prepared(spec, size, "train", train.seed, **kwargs)
    corpus = open_corpus(spec, recipe.base)
    return cls.from_corpus(corpus, size, "train", train.seed, crop_scale=train.crop_scale, **kwargs)


# --------------------------------------------------------------------------------------------------
# the stages


def _init_folder(init: str | None, prefix: str = "official:") -> Path | None:
    if init and init.startswith(prefix):
        return Path(init[len(prefix) :] or weights_dir())
    return None


def _frozen_models(dataset, profile, run: Path, state: PartialState, weights: Path | None = None):
    """The VAE and CLIP encoder stage 1 trains against: from the weights folder (``weights``, default the
    kit's), or - small recipes - a VAE pre-trained once (main process) and kept in ``RUN/frozen/``, so other
    processes and later resumes use the same one."""
    if not profile.vae.steps:
        return prepare_frozen_models(dataset, profile, weights_folder=weights)
    folder = run / FROZEN_DIR
    if state.is_main_process and not (folder / "image_encoder" / "config.json").is_file():
        frozen = prepare_frozen_models(dataset, profile)
        frozen.vae.save_pretrained(folder / "vae", safe_serialization=True)
        frozen.image_encoder.save_pretrained(folder / "image_encoder", safe_serialization=True)
    state.wait_for_everyone()
    vae = build_vae(folder=folder / "vae").requires_grad_(False).eval()
    encoder = build_clip_image_encoder(folder=folder / "image_encoder").requires_grad_(False).eval()
    return FrozenModels(vae, encoder, [], 1.0, 0.0)


def run_stage1(recipe: Recipe, args: argparse.Namespace, state: PartialState) -> None:
    s = recipe.sections
    train, model = s["train"], s["model"]
    profile = Lmk2VideoProfile(recipe.base, model, s["vae"], train, s["evaluation"])
    with state.main_process_first():
        dataset = open_data(args.data, recipe)
    released = _init_folder(args.init)
    frozen = _frozen_models(dataset, profile, args.output, state, released)
    torch.manual_seed(train.seed)  # the fresh networks' initial weights
    if released is not None:
        networks = load_released_stage1(build_stage1_networks(model), released)
    elif args.init:
        networks = load_stage1_run(stage1_export_folder(args.init)).networks
    else:
        networks = build_stage1_networks(model, frozen.unet_init)
    trainer = Stage1Trainer(
        networks, frozen.vae, frozen.image_encoder, dataset, train, args.output / TRAINING_DIR
    )
    if not _train(trainer, args, state):
        return
    trained = trainer.whole_networks()  # every process: under FSDP the weights are gathered
    if state.is_main_process:
        sampling = SamplingSettings.from_evaluation(s["evaluation"])
        save_stage1_run(
            args.output / EXPORT_DIR, trained, frozen.vae, frozen.image_encoder, model,
            trainer.step, train.image_size, train.crop_scale, sampling,
            made_by("python -m aniportrait_lib.train stage1", recipe.base),
        )  # fmt: skip
        print(f"stage-1 export: {args.output / EXPORT_DIR}")


def run_stage2(recipe: Recipe, args: argparse.Namespace, state: PartialState) -> None:
    if not args.init:
        raise ValueError("stage2 needs --init: a stage-1 run or export folder, or official:FOLDER")
    s = recipe.sections
    profile = MotionStudyProfile(recipe.base, s["train"], s["motion"], s["evaluation"])
    released = _init_folder(args.init)
    if released is not None:
        start = released_stage2_start(profile, released)
    else:
        start = stage2_start_from_export(stage1_export_folder(args.init))
        animatediff = weights_dir() / ANIMATEDIFF_FILE
        sd15_sized = start.run.model.unet["block_out_channels"] == SD15_UNET_CONFIG["block_out_channels"]
        if sd15_sized and animatediff.is_file():  # the paper's start of stage 2
            note = f"motion modules: AnimateDiff {animatediff}"
            start = dataclasses.replace(start, motion_init=animatediff, notes=[*start.notes, note])
    if args.motion_init:
        start = dataclasses.replace(start, motion_init=Path(args.motion_init))
    with state.main_process_first():
        dataset = open_data(args.data, recipe, start.run.image_size)
    for note in start.notes if state.is_main_process else []:
        print(note)
    trainer = stage2_trainer(start, dataset, profile, args.output / TRAINING_DIR)
    if not _train(trainer, args, state):
        return
    trained = trainer.whole_networks()  # every process: under FSDP the weights are gathered
    if state.is_main_process:
        evaluation = s["evaluation"]
        context = {"context_frames": evaluation.context_frames, "context_overlap": evaluation.context_overlap}
        provenance = made_by("python -m aniportrait_lib.train stage2", recipe.base)
        path = export_stage2(
            trained,
            args.output / EXPORT_DIR,
            trainer.step,
            context,
            start.denoiser_file,
            provenance,
        )
        print(f"motion modules: {path}")


def run_audio(recipe: Recipe, args: argparse.Namespace, state: PartialState) -> None:
    profile = dataclasses.replace(stage_configs(recipe.base).audio2lmk, data=recipe.sections["data"])
    train = recipe.sections["train"]
    with state.main_process_first():
        dataset = open_data(args.data, recipe)
    torch.manual_seed(train.seed)
    model = (build_audio2mesh if recipe.stage == "audio2mesh" else build_audio2pose)(profile)
    released = _init_folder(args.init)
    if released is not None:
        path = released / f"{recipe.stage}.pt"
        load_into(model, read_state_dict(path), str(path), encoder_from_folder=profile.pretrained_encoder)
    elif args.init:
        raise ValueError(f"{recipe.stage}: --init takes official:FOLDER (the released {recipe.stage}.pt)")
    trainer = Audio2LmkTrainer(model, dataset, train, args.output / TRAINING_DIR)
    if not _train(trainer, args, state):
        return
    if state.is_main_process:
        path = args.output / EXPORT_DIR / f"{recipe.stage}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        export_official(trainer.accelerator.unwrap_model(trainer.model), path)
        print(f"{recipe.stage}: {path}")


def _train(trainer, args: argparse.Namespace, state: PartialState) -> bool:
    """Resume, then train to the end (or ``--stop-after`` steps); False when the run is not finished."""
    if state.is_main_process:
        accelerator = trainer.accelerator
        print(f"{type(trainer).__name__}: {describe_layout(accelerator)}, mixed precision "
              f"{accelerator.mixed_precision}")  # fmt: skip
    if trainer.step == 0 and trainer.resume() and state.is_main_process:
        print(f"resumed at step {trainer.step} from {args.output / TRAINING_DIR}")
    config = trainer.config
    if args.dry_run:
        summary = trainer.dry_run()
        if state.is_main_process:
            print("dry run (no optimizer step):", ", ".join(f"{k}: {v}" for k, v in summary.items()))
        return False
    trainer.train(stop_after=args.stop_after)
    if trainer.step < config.max_steps:
        if trainer.step % config.checkpoint_every:
            trainer.save()
        if state.is_main_process:
            print(f"stopped at step {trainer.step} of {config.max_steps}; run the command again to go on")
        return False
    return True


# --------------------------------------------------------------------------------------------------
# command line


def launch_command(
    processes: int = 1, config_file: str | Path | None = None, mixed_precision: str = "no"
) -> list[str]:
    """The argv that runs this command in ``processes`` processes on this one machine (tests, benchmarks).

    One process without ``config_file``: ``python -m aniportrait_lib.train``. Otherwise ``accelerate launch``
    on a free local port: DDP (``--multi_gpu``; gloo where there is no GPU), or the settings of
    ``config_file`` (e.g. ``recipes/accelerate/fsdp_stage2.yaml``) with this process count and precision.
    Append the stage and its options.
    """
    if processes == 1 and config_file is None:
        return [sys.executable, "-m", "aniportrait_lib.train"]
    with socket.socket() as sock:  # a port free now, for the processes' rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    layout = ["--config_file", str(config_file)] if config_file is not None else ["--multi_gpu"]
    return [sys.executable, "-m", "accelerate.commands.launch", *layout, "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", mixed_precision, "--dynamo_backend", "no",
            "--main_process_port", str(port), "-m", "aniportrait_lib.train"]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aniportrait_lib.train",
        description=__doc__.split("\n")[0],
        epilog="Recipes: quick, cpu, gpu (kit profiles), official (the official stage-1/2 recipe), a file.",
    )
    add = parser.add_argument
    add("stage", choices=STAGES)
    add("--config", required=True, help="recipe: quick | cpu | gpu | official | path/to/recipe.yaml")
    add("--data", required=True, help="prepared dataset folder, mini-corpus folder, or 'mini'")
    add("--output", required=True, type=Path, help="run folder (created; an existing one is resumed)")
    add("--init", help="official:FOLDER, a kit export/run folder (see the module docs)")
    add("--motion-init", help="stage2: AnimateDiff motion-module file to start from (mm_sd_v15_v2.ckpt)")
    add("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    add("--max-steps", type=int, help="= --set train.max_steps=N")
    add("--batch-size", type=int, help="per process; = --set train.batch_size=N")
    add("--mixed-precision", choices=["no", "fp16", "bf16"], help="= --set train.mixed_precision=...")
    add("--workers", type=int, help="DataLoader reader processes; = --set train.num_workers=N")
    add("--report-to", help="accelerate tracker, e.g. tensorboard (offline, files in RUN/training/trackers)")
    add("--stop-after", type=int, help="train this many steps now, checkpoint, and exit (resume later)")
    add("--dry-run", action="store_true", help="build everything and read one batch; no optimizer step")
    return parser


def _short_forms(args: argparse.Namespace) -> dict[str, Any]:
    train: dict[str, Any] = {}
    for flag, field in (("max_steps", "max_steps"), ("batch_size", "batch_size"),
                        ("mixed_precision", "mixed_precision"), ("workers", "num_workers"),
                        ("report_to", "report_to")):  # fmt: skip
        if getattr(args, flag) is not None:
            train[field] = getattr(args, flag)
    return {"train": train} if train else {}


def _deep_update(base: dict, extra: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        merged[key] = _deep_update(merged.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides = _deep_update(parse_overrides(args.overrides), _short_forms(args))
        recipe = load_recipe(args.stage, args.config, overrides)
        train = recipe.sections["train"]
        if args.stage in ("stage1", "stage2"):
            recipe.sections["train"] = dataclasses.replace(train, progress=True)
        device = resolve_placement("cpu" if recipe.sections["train"].cpu else None).device
        state = PartialState(cpu=device == "cpu")
        if state.is_main_process:
            args.output.mkdir(parents=True, exist_ok=True)
            save_recipe(recipe, args.output / CONFIG_FILE)
        state.wait_for_everyone()
        runner = {"stage1": run_stage1, "stage2": run_stage2}.get(args.stage, run_audio)
        runner(recipe, args, state)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
