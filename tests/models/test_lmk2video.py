"""The Lmk2Video network file: one wiring for the trainer's loss and the pipeline's window prediction."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from aniportrait_lib.models.image_models import build_clip_image_encoder, build_vae
from aniportrait_lib.models.lmk2video import (
    SMALL_VAE_CONFIG,
    TINY_CLIP_CONFIG,
    Lmk2VideoModelConfig,
    Lmk2VideoNetworks,
    build_stage1_networks,
    build_stage2_networks,
    small_unet_config,
    to_video_unet,
)
from aniportrait_lib.models.scheduler import training_scheduler_config
from aniportrait_lib.pipelines.pose2video import Pose2VideoPipeline

SIZE, FRAMES = 32, 3  # latents 4×4
LATENT = small_unet_config()["in_channels"]


def _model() -> Lmk2VideoModelConfig:
    return Lmk2VideoModelConfig(
        unet=small_unet_config(), vae={**SMALL_VAE_CONFIG, "sample_size": SIZE}, clip=dict(TINY_CLIP_CONFIG),
        guider_attention_heads=2, guider_attention_head_dim=16,
    )  # fmt: skip


@pytest.fixture(scope="module")
def stage1() -> Lmk2VideoNetworks:
    torch.manual_seed(0)
    networks = build_stage1_networks(_model()).eval()
    with torch.no_grad():  # the guider's zero-initialised output would hide the poses
        networks.pose_guider.final_proj.weight.normal_(0, 0.1)
    return networks


@pytest.fixture(scope="module")
def pipeline(stage1) -> Pose2VideoPipeline:
    model = _model()
    pipe = Pose2VideoPipeline.from_stage1(
        stage1, build_vae(model.vae).eval(), build_clip_image_encoder(model.clip).eval(), model.unet,
        training_scheduler_config(),
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _inputs():
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(1, LATENT, FRAMES, SIZE // 8, SIZE // 8, generator=generator)
    pose = torch.rand(1, 3, FRAMES, SIZE, SIZE, generator=generator) * 2 - 1
    ref_pose = torch.rand(1, 3, SIZE, SIZE, generator=generator) * 2 - 1
    ref_latents = torch.randn(1, LATENT, SIZE // 8, SIZE // 8, generator=generator)
    context = torch.randn(1, 1, 32, generator=generator)
    return latents, pose, ref_pose, ref_latents, context


@torch.no_grad()
def test_one_stage1_network_predicts_the_same_velocity_for_the_trainer_and_the_pipeline(stage1, pipeline):
    latents, pose, ref_pose, ref_latents, context = _inputs()
    t = torch.tensor(500)
    # the trainer's path: Lmk2VideoNetworks.forward on the frames as a batch of 2-D samples
    frames = latents[0].permute(1, 0, 2, 3)  # (f, c, h, w)
    trained = stage1(
        frames, t.repeat(FRAMES), context.repeat(FRAMES, 1, 1), pose[0].permute(1, 0, 2, 3),
        ref_pose.repeat(FRAMES, 1, 1, 1), ref_latents.repeat(FRAMES, 1, 1, 1),
    )  # fmt: skip
    # the pipeline's path: bank once, pose features per window, one window prediction of the motion UNet
    networks = pipeline.networks()
    try:
        features = networks.pose_features(pose, ref_pose)
        without_bank = pipeline.predict_window(
            networks, latents, t, context, features, list(range(FRAMES)), False
        )
        networks.write_reference_bank(ref_latents, context)
        sampled = pipeline.predict_window(networks, latents, t, context, features, list(range(FRAMES)), False)
    finally:
        networks.remove_wiring()
    assert sampled.shape == latents.shape
    torch.testing.assert_close(sampled[0].permute(1, 0, 2, 3), trained, atol=1e-5, rtol=1e-5)
    assert (without_bank - sampled).abs().max() > 1e-3  # the reference bank is part of what is compared


def test_sampling_and_training_go_through_the_network_methods(stage1, pipeline, monkeypatch):
    calls = {"write_reference_bank": 0, "pose_features": 0, "denoise": 0}
    for name in calls:
        original = getattr(Lmk2VideoNetworks, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Lmk2VideoNetworks, name, spy)
    pose_images = np.zeros((FRAMES, SIZE, SIZE, 3), np.uint8)
    portrait = PIL.Image.new("RGB", (SIZE, SIZE), (120, 100, 90))
    pipeline(portrait, pose_images, None, SIZE, SIZE, num_inference_steps=2, guidance_scale=1.0,
             generator=torch.manual_seed(0), context_frames=FRAMES, context_overlap=0)  # fmt: skip
    assert calls == {"write_reference_bank": 1, "pose_features": 1, "denoise": 2}  # 1 window × 2 steps
    latents, pose, ref_pose, ref_latents, context = _inputs()
    stage1(latents[:, :, 0], torch.tensor([10]), context, pose[:, :, 0], ref_pose, ref_latents)
    assert calls == {"write_reference_bank": 2, "pose_features": 2, "denoise": 3}
    # the pipeline leaves its UNets stock: no reference processors or pose hooks after the call
    processors = {type(p).__name__ for p in pipeline.denoising_unet.attn_processors.values()}
    assert "ReferenceReaderProcessor" not in processors


def test_video_unet_from_stage1_denoises_each_frame_like_the_2d_unet(stage1):
    video = to_video_unet(stage1.denoising_unet, small_unet_config()).eval()
    sample, ctx = torch.randn(1, LATENT, 3, 4, 4), torch.randn(1, 1, 32)
    with torch.no_grad():
        out = video(sample, 50, encoder_hidden_states=ctx.repeat_interleave(3, 0)).sample
        frames = sample[0].permute(1, 0, 2, 3)  # (f, c, h, w)
        reference = Lmk2VideoNetworks(stage1.reference_unet, stage1.denoising_unet, stage1.pose_guider)
        reference.remove_wiring()  # plain 2-D UNet again
        per_frame = stage1.denoising_unet(frames, 50, encoder_hidden_states=ctx.repeat(3, 1, 1)).sample
    assert torch.allclose(out[0].permute(1, 0, 2, 3), per_frame, atol=1e-5)


def test_stage2_networks_are_copies_with_zero_motion_and_a_stock_reference(stage1):
    stage2 = build_stage2_networks(stage1, small_unet_config())
    assert stage2.reference_unet is not stage1.reference_unet
    motion_out = [p for n, p in stage2.denoising_unet.named_parameters() if n.endswith("proj_out.weight")
                  and "motion_modules" in n]  # fmt: skip
    assert motion_out and all(torch.all(p == 0) for p in motion_out)
    with pytest.raises(ValueError, match="does not fit the motion UNet"):
        to_video_unet(stage1.denoising_unet, small_unet_config(widths=(32, 64, 128, 256)))


def _gradients(networks: Lmk2VideoNetworks, video: bool, checkpointing: bool) -> dict[str, torch.Tensor]:
    if checkpointing:
        networks.denoising_unet.enable_gradient_checkpointing()
        networks.reference_unet.enable_gradient_checkpointing()
    latents, pose, ref_pose, ref_latents, context = _inputs()
    if not video:
        latents, pose = latents[:, :, 0], pose[:, :, 0]
    networks.eval().zero_grad()  # eval: BatchNorm on a batch of one; checkpointing only needs grad mode
    networks(latents, torch.tensor([500]), context, pose, ref_pose, ref_latents).square().mean().backward()
    return {n: p.grad.clone() for n, p in networks.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("video", [False, True], ids=["stage1", "stage2"])
def test_gradient_checkpointing_recomputes_with_the_reference_bank(video):
    """Checkpointed blocks are recomputed during backward: the reference bank must still be there (found on
    a GPU, where the gpu recipe's stage 2 checkpoints: the recomputed attention had no bank keys)."""

    def networks() -> Lmk2VideoNetworks:
        torch.manual_seed(0)
        stage1 = build_stage1_networks(_model())
        with torch.no_grad():
            stage1.pose_guider.final_proj.weight.normal_(0, 0.1)
        return build_stage2_networks(stage1, small_unet_config()) if video else stage1

    plain, checkpointed = _gradients(networks(), video, False), _gradients(networks(), video, True)
    assert plain.keys() == checkpointed.keys() and len(plain) > 10
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-4, atol=1e-6, msg=name)
