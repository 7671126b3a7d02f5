"""``python -m aniportrait_lib.train``: recipes, every Lmk2Video stage on a prepared dataset, and runs of two
processes under ``accelerate launch`` (gloo on the CPU): exact resume, and data-parallel = a bigger batch.

The prepared dataset is the two-clip mini corpus (tests/conftest.py) through ``data.prepare`` at 64 px;
recipes are ``quick`` with short budgets. Launched runs share one pre-trained small VAE (``RUN/frozen``,
copied in), so every run trains against the same fixed models.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from aniportrait_lib import recipes
from aniportrait_lib import train as train_command
from aniportrait_lib.data.prepare import PrepareConfig, prepare_dataset
from aniportrait_lib.training.lmk2video_config import Stage1TrainConfig, Stage2TrainConfig
from aniportrait_lib.training.lmk2video_data import FramePairDataset, PreparedSource
from aniportrait_lib.training.sampling import Shard, StepDraws
from aniportrait_lib.video_io import read_frames
from aniportrait_lib.weights.kit_index import find_export
from aniportrait_lib.weights.lmk2video_checkpoints import load_checkpoint

QUICK = ["--config", "quick", "--set", "vae.steps=4"]


@pytest.fixture(scope="module")
def prepared(two_clip_corpus, tmp_path_factory) -> Path:
    """The two-clip corpus prepared like real video (face crops, 64 px, MediaPipe landmarks)."""
    videos = tmp_path_factory.mktemp("videos")
    for spec in two_clip_corpus.split("train") + two_clip_corpus.split("heldout"):
        shutil.copy(two_clip_corpus.video_path(spec.clip_id), videos / f"{spec.clip_id}.mp4")
    out = tmp_path_factory.mktemp("prepared") / "data"
    summary = prepare_dataset(videos, out, PrepareConfig(image_size=64, min_frames=8, held_out_fraction=0.0,
                                                         progress=False))  # fmt: skip
    assert len(summary.prepared) == 2, summary
    return out


def test_official_recipe_file_is_the_configs_defaults():
    for stage, defaults in (("stage1", Stage1TrainConfig()), ("stage2", Stage2TrainConfig())):
        recipe = recipes.load_recipe(stage, "official")
        assert recipe.sections["train"] == defaults
    text = (recipes.RECIPES_DIR / "official.yaml").read_text()
    assert "learning_rate: 1.0e-5" in text and "max_steps: 300000" in text  # the file states them


def test_overrides_apply_and_bad_ones_name_the_field(tmp_path):
    overrides = recipes.parse_overrides(["train.learning_rate=2e-4", "train.sample_strides=[1, 2]"])
    recipe = recipes.load_recipe("stage2", "quick", overrides)
    assert recipe.sections["train"].learning_rate == 2e-4 and recipe.sections["train"].sample_strides == (
        1,
        2,
    )
    with pytest.raises(ValueError, match="unknown field 'lerning_rate'"):
        recipes.load_recipe("stage1", "quick", {"train": {"lerning_rate": 1.0}})
    with pytest.raises(ValueError, match="train.batch_size: expected int"):
        recipes.load_recipe("stage1", "quick", {"train": {"batch_size": "two"}})
    with pytest.raises(ValueError, match="neither a recipe name"):
        recipes.load_recipe("stage1", "no-such-recipe")
    saved = tmp_path / "train_config.yaml"
    recipes.save_recipe(recipe, saved)
    again = recipes.load_recipe("stage2", str(saved))
    assert again.sections == recipe.sections and again.base == "quick"  # a saved run is a recipe
    with pytest.raises(ValueError, match="recipe of 'stage2', not of 'stage1'"):
        recipes.load_recipe("stage1", str(saved))


def test_prepared_source_reads_the_prepared_crops_lazily(prepared):
    source = PreparedSource(prepared, 64)
    clip = int(np.argmax(source.lengths))
    decoded = np.stack(list(read_frames(prepared / "clips" / source.clip_ids[clip] / "frames.mp4")))
    picks = [5, 0, len(decoded) - 1]
    assert np.array_equal(source.frames(clip, picks), decoded[picks])
    assert source.landmarks(clip, picks).shape == (3, 478, 2)
    dataset = FramePairDataset.from_prepared(prepared, 64)
    assert len(dataset) == int(source.lengths.sum()) and dataset[3]["pixel_values"].shape == (3, 64, 64)
    with pytest.raises(ValueError, match="not a prepared dataset"):
        PreparedSource(prepared / "clips", 64)


def test_both_stages_train_on_a_prepared_dataset_and_export(prepared, tmp_path):
    run1, run2 = tmp_path / "stage1", tmp_path / "stage2"
    assert train_command.main(["stage1", *QUICK, "--data", str(prepared), "--output", str(run1),
                               "--max-steps", "2"]) == 0  # fmt: skip
    export = find_export(run1)
    assert export["stage1"].config["step"] == 2
    saved = yaml.safe_load((run1 / "train_config.yaml").read_text())
    assert saved["stage"] == "stage1" and saved["train"]["max_steps"] == 2
    assert train_command.main(["stage2", "--config", "quick", "--data", str(prepared), "--output", str(run2),
                               "--init", str(run1), "--max-steps", "2"]) == 0  # fmt: skip
    motion = load_checkpoint(run2 / "export" / "motion_module-2.pth")
    assert any("temporal_transformer" in k for k in motion)
    assert (
        train_command.main(["stage2", *QUICK, "--data", str(prepared), "--output", str(tmp_path / "x")]) == 2
    )


# --------------------------------------------------------------------------------------------------
# two processes (accelerate launch: torchrun + gloo on this CPU machine)


def _train(args: list[str], processes: int, config_file: Path | None = None) -> subprocess.CompletedProcess:
    """Run the training command in ``processes`` processes (a launch of 1 is a plain run)."""
    launcher = train_command.launch_command(processes, config_file)
    env = os.environ | {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([*launcher, *args], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "training" / (run / "training" / "latest").read_text(), weights_only=True)[
        "model"
    ]


@pytest.fixture(scope="module")
def frozen(prepared, tmp_path_factory) -> Path:
    """A small VAE + CLIP encoder pre-trained once (``RUN/frozen``) for every launched run."""
    run = tmp_path_factory.mktemp("frozen") / "run"
    assert (
        train_command.main(["stage1", *QUICK, "--data", str(prepared), "--output", str(run), "--dry-run"])
        == 0
    )
    return run / "frozen"


def _run_folder(root: Path, frozen: Path) -> Path:
    shutil.copytree(frozen, root / "frozen")
    return root


def test_two_processes_resume_to_the_uninterrupted_weights(prepared, frozen, tmp_path):
    args = [*QUICK, "--data", str(prepared), "--max-steps", "4", "--set", "train.checkpoint_every=2",
            "--set", "train.uncond_ratio=0.5"]  # fmt: skip
    seed = recipes.load_recipe("stage1", "quick").sections["train"].seed
    drops = [StepDraws(seed, step, 0, Shard()).uniform() < 0.5 for step in range(4)]
    assert any(drops) and not all(drops)  # steps without the reference UNet (unused parameters under DDP)
    straight = _run_folder(tmp_path / "straight", frozen)
    _train(["stage1", *args, "--output", str(straight)], processes=2)
    resumed = _run_folder(tmp_path / "resumed", frozen)
    _train(["stage1", *args, "--output", str(resumed), "--stop-after", "2"], processes=2)
    assert (resumed / "training" / "latest").read_text() == "checkpoint-00000002.pt"
    assert not (resumed / "export").exists()  # not finished: nothing exported
    _train(["stage1", *args, "--output", str(resumed)], processes=2)
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = (resumed / "training" / "log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in log[1:]] == ["1", "2", "3", "4"]  # one row per step, main only
    assert find_export(resumed)["stage1"].config["step"] == 4


def test_two_processes_equal_one_process_with_the_double_batch(prepared, frozen, tmp_path):
    # Adam's epsilon large: the first step is ≈ lr · gradient, so float noise stays float noise (with the
    # default ε it is lr · sign(gradient), which flips on near-zero gradients). Guider (a) has no BatchNorm,
    # whose statistics would be per process (as in the official DDP runs).
    args = [*QUICK, "--data", str(prepared), "--max-steps", "1", "--set", "model.guider=a",
            "--set", "train.adam_epsilon=1.0", "--set", "train.learning_rate=1.0",
            "--set", "train.uncond_ratio=0.0", "--set", "train.lr_warmup_steps=1"]  # fmt: skip
    runs = {}
    for name, processes, batch in (("two_x_2", 2, 2), ("one_x_4", 1, 4), ("one_x_2", 1, 2)):
        runs[name] = _run_folder(tmp_path / name, frozen)
        _train(["stage1", *args, "--batch-size", str(batch), "--output", str(runs[name])], processes)
    split, whole, half = (_weights(runs[n]) for n in ("two_x_2", "one_x_4", "one_x_2"))
    moved = max(float((whole[k] - half[k]).abs().max()) for k in whole)
    differs = max(float((whole[k] - split[k]).abs().max()) for k in whole)
    assert differs < 1e-5 * max(moved, 1e-3), (differs, moved)
    # the two ranks saw different samples: had both seen rank 0's, the result would be the one-process
    # run on those samples, which is far from the double batch
    assert moved > 1e-4


def test_train_command_refuses_bad_data(tmp_path):
    assert train_command.main(["stage1", *QUICK, "--data", str(tmp_path / "nope"), "--output",
                               str(tmp_path / "run")]) == 2  # fmt: skip


def test_recipe_sections_are_dataclasses():
    recipe = recipes.load_recipe("audio2mesh", "quick")
    assert all(dataclasses.is_dataclass(v) for v in recipe.sections.values())


def test_reader_processes_change_nothing(prepared, frozen, tmp_path):
    runs = {}
    for workers in (0, 2):
        runs[workers] = _run_folder(tmp_path / f"workers{workers}", frozen)
        assert train_command.main(["stage1", *QUICK, "--data", str(prepared), "--output", str(runs[workers]),
                                   "--max-steps", "2", "--workers", str(workers)]) == 0  # fmt: skip
    a, b = _weights(runs[0]), _weights(runs[2])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_losses_reach_tensorboard_when_it_is_installed(prepared, frozen, tmp_path):
    pytest.importorskip("tensorboard")  # optional: pip install -e ".[train]"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = _run_folder(tmp_path / "run", frozen)
    assert train_command.main(["stage1", *QUICK, "--data", str(prepared), "--output", str(run),
                               "--max-steps", "2", "--report-to", "tensorboard"]) == 0  # fmt: skip
    events = EventAccumulator(str(run / "training" / "trackers" / "training"))
    events.Reload()
    logged = [round(e.value, 4) for e in events.Scalars("loss")]
    rows = (run / "training" / "log.csv").read_text().splitlines()[1:]
    assert logged == [round(float(row.split(",")[1]), 4) for row in rows]


# --------------------------------------------------------------------------------------------------
# stage 2 with the networks sharded across two processes (FSDP2 from the kit's accelerate config file)

FSDP_CONFIG = Path(recipes.__file__).parent / "accelerate" / "fsdp_stage2.yaml"


@pytest.fixture(scope="module")
def stage1_run(prepared, frozen, tmp_path_factory) -> Path:
    run = _run_folder(tmp_path_factory.mktemp("stage1") / "run", frozen)
    assert train_command.main(["stage1", *QUICK, "--data", str(prepared), "--output", str(run),
                               "--max-steps", "2"]) == 0  # fmt: skip
    return run


def _motion(run: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in _weights(run).items() if "motion_modules" in k}


def test_stage2_sharded_equals_ddp_resumes_and_exports(prepared, stage1_run, tmp_path):
    # Adam with a large epsilon and a tight clip: an update is then about lr · clipped gradient, so the
    # clip's global norm shows in the weights (a norm over one process's shards only would scale them)
    args = ["stage2", "--config", "quick", "--data", str(prepared), "--init", str(stage1_run),
            "--max-steps", "4", "--set", "train.checkpoint_every=2", "--set", "train.adam_epsilon=1.0",
            "--set", "train.learning_rate=1.0", "--set", "train.max_grad_norm=1e-3",
            "--set", "train.uncond_ratio=0.0", "--set", "train.lr_warmup_steps=1"]  # fmt: skip
    ddp, sharded, resumed = tmp_path / "ddp", tmp_path / "fsdp", tmp_path / "fsdp_resumed"
    done = _train([*args, "--output", str(ddp)], processes=2)
    assert "DDP over 2 processes" in done.stdout
    done = _train([*args, "--output", str(sharded)], processes=2, config_file=FSDP_CONFIG)
    assert "FSDP2 (networks sharded) over 2 processes" in done.stdout
    a, b = _motion(ddp), _motion(sharded)
    moved = max(float(v.abs().max()) for k, v in a.items() if "proj_out" in k)  # zero at the start
    differs = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert moved > 1e-4 and differs < 1e-5 * moved, (differs, moved)
    assert _weights(ddp).keys() == _weights(sharded).keys()  # the same whole checkpoint, not shards
    # a sharded run stopped at step 2 and resumed sharded ends where the uninterrupted one did
    _train([*args, "--output", str(resumed), "--stop-after", "2"], processes=2, config_file=FSDP_CONFIG)
    _train([*args, "--output", str(resumed)], processes=2, config_file=FSDP_CONFIG)
    c = _motion(resumed)
    assert all(torch.equal(b[k], c[k]) for k in b)
    # checkpoints move between the layouts: sharded to 2, DDP to 3 (reads a name-keyed optimizer state),
    # sharded to 4 (reads DDP's position-keyed one) - the uninterrupted run's weights up to float noise
    mixed = tmp_path / "mixed"
    _train([*args, "--output", str(mixed), "--stop-after", "2"], processes=2, config_file=FSDP_CONFIG)
    _train([*args, "--output", str(mixed), "--stop-after", "1"], processes=2)
    _train([*args, "--output", str(mixed)], processes=2, config_file=FSDP_CONFIG)
    d = _motion(mixed)
    assert max(float((b[k] - d[k]).abs().max()) for k in b) < 1e-5 * moved
    # the export holds the whole trained modules (gathered): the file the DDP run wrote, up to float noise
    exported, expected = (load_checkpoint(run / "export" / "motion_module-4.pth") for run in (sharded, ddp))
    assert exported.keys() == expected.keys()
    assert all(torch.allclose(exported[k], expected[k], rtol=0, atol=1e-5 * moved) for k in expected)
