"""Fixtures shared by the whole test suite.

Test modules reach the plain helpers defined here (:func:`tiny_wav2vec2_config`, :func:`tiny_audio_models`,
:class:`TinyStage1`) through fixtures: ``tests`` is not a package, so they cannot be imported.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import pytest

from aniportrait_lib.paths import shared_reference


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one torch thread, restoring the previous count afterwards.

    Tiny models: thread start-up costs more than it saves, and on shared 2-core runners several busy-waiting
    OpenMP threads slow these tests ~8× (measured 91 s vs 11 s; see also Stage1TrainConfig.num_threads).
    Used by a module with ``pytestmark = pytest.mark.usefixtures("one_thread")``, or by a folder's conftest
    with a module-scoped autouse fixture that requests it (so it is set before other module fixtures).
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


TINY_WAV2VEC2 = dict(  # = ../shared/reference/oracle/w2v_tiny_config.json (checked in test_audio_models)
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=[16] * 7,
    conv_kernel=[10, 3, 3, 3, 3, 2, 2],
    conv_stride=[5, 2, 2, 2, 2, 2, 2],
    conv_bias=False,
    feat_extract_norm="group",
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    final_dropout=0.0,
)


def tiny_wav2vec2_config(**overrides):
    """A new tiny ``Wav2Vec2Config``: by default the oracle's (``oracle/w2v_tiny_config.json``).

    That is hidden 32, 2 layers of 2 heads, feed-forward 64, 7 conv layers of 16 channels with the base
    model's kernels and strides (320 samples per frame), a positional conv 16 wide in 4 groups, and no
    dropout. ``overrides`` replace any field, e.g. ``num_hidden_layers=1`` where a test wants it faster.
    Test modules get this function from the :func:`make_wav2vec2_config` fixture.
    """
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(**{**TINY_WAV2VEC2, **overrides})


@pytest.fixture(scope="session")
def make_wav2vec2_config():
    """:func:`tiny_wav2vec2_config`, for test modules: ``make_wav2vec2_config(num_hidden_layers=1)``."""
    return tiny_wav2vec2_config


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference`` (official-code oracle and manifests); skips the test where it is absent."""
    path = shared_reference()
    if path is None:
        pytest.skip(
            "the shared reference folder (../shared/reference) is absent: "
            "official-parity tests run only where it exists (CI, the team's machines)"
        )
    return path


@pytest.fixture(scope="session")
def oracle_dir(reference_dir: Path) -> Path:
    """``../shared/reference/oracle``: tiny official weights with their recorded inputs and outputs."""
    return reference_dir / "oracle"


@pytest.fixture(scope="session")
def two_clip_corpus(tmp_path_factory):
    """A mini corpus of two clips (one training, one held out) at 192 px: shared, do not modify."""
    from aniportrait_lib.data.mini_corpus import CorpusConfig, generate_mini_corpus

    config = CorpusConfig(n_clips=2, image_size=192, heldout_every=2)
    return generate_mini_corpus(tmp_path_factory.mktemp("corpus") / "mini", config, workers=1)


@pytest.fixture(scope="session")
def oracle_components(oracle_dir: Path):
    """Tiny components with the oracle weights (shared: tests must undo any hooks/processors they add)."""
    from aniportrait_lib.weights.components import load_oracle_components

    return load_oracle_components(oracle_dir)


@pytest.fixture(scope="session")
def tiny_pose2video_pipeline():
    """A random, tiny Lmk2Video pipeline (the oracle's sizes): exercises the plumbing, not quality."""
    import torch

    from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
    from aniportrait_lib.models.pose_guider import MultiScalePoseGuider, MultiScalePoseGuiderConfig
    from aniportrait_lib.models.scheduler import build_scheduler
    from aniportrait_lib.models.unets import build_denoising_unet, build_reference_unet
    from aniportrait_lib.pipelines.pose2video import Pose2VideoPipeline

    unet = {  # SD1.5's block layout (4 levels: the multi-scale guider's 5 maps fit) at tiny widths
        "attention_head_dim": 2, "block_out_channels": [32, 64, 128, 128], "cross_attention_dim": 16,
        "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
        "in_channels": 4, "out_channels": 4, "layers_per_block": 1, "norm_num_groups": 32, "sample_size": 8,
    }  # fmt: skip
    vae = {
        "block_out_channels": [8, 16, 16, 16], "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4, "layers_per_block": 1, "latent_channels": 4,
        "norm_num_groups": 8,
    }  # fmt: skip
    clip = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
            "image_size": 224, "patch_size": 32, "projection_dim": 16}  # fmt: skip
    torch.manual_seed(0)
    guider = MultiScalePoseGuider(
        MultiScalePoseGuiderConfig(latent_channels=32, num_attention_heads=2, attention_head_dim=8)
    )
    pipe = Pose2VideoPipeline(
        build_vae(vae), build_clip_image_encoder(clip), build_reference_unet(unet),
        build_denoising_unet(unet), guider.eval(), build_scheduler(),
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_audio_models(seed: int = 0):
    """A random Audio2Mesh and Audio2Pose with a 1-layer wav2vec2 (eval mode): plumbing, not quality."""
    import torch

    from aniportrait_lib.audio import Audio2Mesh, Audio2MeshConfig, Audio2Pose, Audio2PoseConfig

    w2v = tiny_wav2vec2_config(num_hidden_layers=1)
    torch.manual_seed(seed)
    mesh = Audio2Mesh(Audio2MeshConfig(latent_dim=16, encoder=w2v), random_encoder_ok=True).eval()
    pose = Audio2Pose(Audio2PoseConfig(latent_dim=16, num_layers=1, encoder=w2v), random_encoder_ok=True)
    return mesh, pose.eval()


@pytest.fixture(scope="session")
def tiny_kit_run(tmp_path_factory) -> Path:
    """A run folder as notebooks 02 and 03 leave it (no notebook 04), with random networks of the quick
    profile's sizes at 64 px on face crops: what ``weights="kit:<run>"`` reads."""
    import torch

    from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
    from aniportrait_lib.models.lmk2video import build_stage1_networks
    from aniportrait_lib.profiles import stage_configs
    from aniportrait_lib.weights.kit_audio2lmk import save_audio2lmk_run
    from aniportrait_lib.weights.kit_lmk2video import SamplingSettings, save_stage1_run

    run = tmp_path_factory.mktemp("20260101-000000-quick")
    profile = stage_configs("quick").lmk2video
    model = profile.model
    torch.manual_seed(0)
    networks = build_stage1_networks(model)
    vae = build_vae({**model.vae, "sample_size": 64})
    encoder = build_clip_image_encoder(model.clip)
    sampling = SamplingSettings.from_evaluation(profile.evaluation)
    stage1 = run / "03_pose_guider_study" / "stage1_b"
    save_stage1_run(stage1, networks, vae, encoder, model, 7, 64, crop_scale=1.9, sampling=sampling)
    save_audio2lmk_run(run / "02_train_audio2lmk" / "audio2lmk", *tiny_audio_models(), "quick")
    return run


@pytest.fixture
def fresh_tiny_audio_models():
    """A new :func:`tiny_audio_models` pair for each test (free to modify)."""
    return tiny_audio_models()


@pytest.fixture(scope="session")
def official_folder(oracle_dir, tmp_path_factory):
    """The oracle's tiny weights written as a user's ``pretrained_weights/`` folder (official layout).

    Returns ``(folder, configs)``: ``configs`` is the oracle's ``configs.json`` (its non-released sizes).
    """
    import json

    import torch

    from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
    from aniportrait_lib.weights.components import oracle_state_dict
    from aniportrait_lib.weights.lmk2video_checkpoints import image_encoder_to_kit, load_into

    folder = tmp_path_factory.mktemp("pretrained_weights")
    configs = json.loads((oracle_dir / "configs.json").read_text())
    for name in ("reference_unet", "pose_guider"):
        torch.save(oracle_state_dict(oracle_dir, f"{name}_sd.pt"), folder / f"{name}.pth")
    full = oracle_state_dict(oracle_dir, "denoising_unet_sd.pt")
    torch.save({k: v for k, v in full.items() if "motion_module" not in k}, folder / "denoising_unet.pth")
    torch.save({k: v for k, v in full.items() if "motion_module" in k}, folder / "motion_module.pth")
    (folder / "stable-diffusion-v1-5" / "unet").mkdir(parents=True)
    (folder / "stable-diffusion-v1-5" / "unet" / "config.json").write_text(json.dumps(configs["unet2d"]))
    vae = build_vae(configs["vae"])
    load_into(vae, oracle_state_dict(oracle_dir, "vae_sd.pt"), "vae_sd.pt")
    vae.save_pretrained(folder / "sd-vae-ft-mse")
    encoder = build_clip_image_encoder(configs["clip_vision"])
    load_into(encoder, image_encoder_to_kit(oracle_state_dict(oracle_dir, "image_encoder_sd.pt")), "clip")
    encoder.save_pretrained(folder / "image_encoder")
    return folder, configs


@pytest.fixture(scope="session")
def micro_unet_config() -> dict:
    """An SD-style UNet with two blocks of widths 32 / 64 (one attention level): builds in milliseconds.

    Shared by several test modules: do not mutate it (copy it first).
    """
    return {
        "attention_head_dim": 2,
        "block_out_channels": [32, 64],
        "cross_attention_dim": 16,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "in_channels": 4,
        "out_channels": 4,
        "layers_per_block": 1,
        "norm_num_groups": 32,
        "sample_size": 8,
    }


class TinyStage1:
    """Stage-1 Lmk2Video training at 32 px on two synthetic clips, for the trainer tests (tests/training)
    and the export-format tests (tests/weights); the :func:`tiny_stage1` fixture gives one per module.

    The dataset and the fixed models (VAE, image encoder) are built on first use and then kept.
    """

    size = 32  # latents 4×4; guider maps 4, 2, 1, 1, 1 px

    @property
    def latent(self) -> int:
        """The UNet's input channels (= the small VAE's latent channels)."""
        from aniportrait_lib.models.lmk2video import small_unet_config

        return small_unet_config()["in_channels"]

    def model(self, guider: str = "b"):
        """The networks' configuration: the small UNet and VAE, the tiny CLIP encoder, guider ``guider``."""
        from aniportrait_lib.models.lmk2video import (
            SMALL_VAE_CONFIG,
            TINY_CLIP_CONFIG,
            Lmk2VideoModelConfig,
            small_unet_config,
        )

        return Lmk2VideoModelConfig(
            unet=small_unet_config(),
            vae={**SMALL_VAE_CONFIG, "sample_size": self.size},
            clip=dict(TINY_CLIP_CONFIG),
            guider=guider,
            guider_attention_heads=2,
            guider_attention_head_dim=16,
        )

    def config(self, **overrides):
        """A ``Stage1TrainConfig``: 6 steps (checkpoints every 3) on the CPU, one thread; overrides win."""
        import dataclasses

        from aniportrait_lib.training.lmk2video_config import Stage1TrainConfig

        base = Stage1TrainConfig(
            image_size=self.size, batch_size=2, max_steps=6, learning_rate=1e-3, lr_warmup_steps=2,
            use_8bit_adam=False, mixed_precision="no", checkpoint_every=3, cpu=True, seed=3, num_threads=1,
            uncond_ratio=0.3,  # exercise both branches in a few steps
        )  # fmt: skip
        return dataclasses.replace(base, **overrides)

    @cached_property
    def dataset(self):
        """Two synthetic clips: a bright square that moves with the 'landmarks' (drawn as pose images)."""
        import numpy as np

        from aniportrait_lib.training.lmk2video_data import FramePairDataset

        size = self.size
        rng = np.random.default_rng(0)
        frames, lmks = [], []
        for _ in range(2):
            clip_frames, clip_lmks = [], []
            for t in range(5):
                image = np.full((size, size, 3), 40, np.uint8)
                image[8 + t : 20 + t, 10:22] = (220, 180, 150)
                clip_frames.append(image)
                clip_lmks.append(np.clip(rng.normal(0.5, 0.15, (468, 2)) + 0.01 * t, 0.05, 0.95))
            frames.append(np.stack(clip_frames))
            lmks.append(np.stack(clip_lmks).astype(np.float32))
        return FramePairDataset.from_arrays(frames, lmks, size, seed=1)

    @cached_property
    def frozen(self) -> tuple:
        """``(vae, image_encoder)``: random (seed 0), in eval mode."""
        import torch

        from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae

        torch.manual_seed(0)
        return build_vae(self.model().vae).eval(), build_clip_image_encoder(self.model().clip).eval()

    def trainer(self, out_dir: Path, config=None, guider: str = "b", seed: int = 0):
        """A ``Stage1Trainer`` of new networks (initialised with ``seed``) writing to ``out_dir``."""
        import torch

        from aniportrait_lib.models.lmk2video import build_stage1_networks
        from aniportrait_lib.training.lmk2video import Stage1Trainer

        vae, image_encoder = self.frozen  # built (seed 0) before this trainer's seed is set
        torch.manual_seed(seed)
        networks = build_stage1_networks(self.model(guider))
        return Stage1Trainer(networks, vae, image_encoder, self.dataset, config or self.config(), out_dir)


@pytest.fixture(scope="module")
def tiny_stage1() -> TinyStage1:
    """A :class:`TinyStage1` per test module (its dataset and fixed models are shared by the module)."""
    return TinyStage1()
