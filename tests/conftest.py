"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from aniportrait_lib.paths import shared_reference


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
    from transformers import Wav2Vec2Config

    from aniportrait_lib.audio import Audio2Mesh, Audio2MeshConfig, Audio2Pose, Audio2PoseConfig

    w2v = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, conv_dim=[16] * 7,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    )  # fmt: skip
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
    from aniportrait_lib.training.lmk2video_config import lmk2video_profile
    from aniportrait_lib.weights.kit_audio2lmk import save_audio2lmk_run
    from aniportrait_lib.weights.kit_lmk2video import SamplingSettings, save_stage1_run

    run = tmp_path_factory.mktemp("20260101-000000-quick")
    profile = lmk2video_profile("quick")
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
