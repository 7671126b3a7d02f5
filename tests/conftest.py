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
