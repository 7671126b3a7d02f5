"""The Lmk2Video network in one place (AniPortrait §3.2): what it is made of, and how it is wired.

Read top to bottom, this file is §3.2 of the paper:

1. **Sizes** - :class:`Lmk2VideoModelConfig`: both UNets (SD1.5 layout), the VAE, the CLIP image encoder
   and the pose guider, with the released sizes as defaults and small variants for the CPU profiles
   (:func:`small_unet_config`, ``TINY_CLIP_CONFIG``, ``SMALL_VAE_CONFIG``).
2. **Parts** - a *reference UNet* (the portrait's appearance), a *denoising UNet* (2-D in stage 1, with
   AnimateDiff motion modules in stage 2) and a *pose guider* (:func:`build_pose_guider`: (a) AnimateAnyone,
   (b) AniPortrait as released, (c) as the paper describes it). :class:`Lmk2VideoNetworks` holds the three.
3. **Wiring** - three named steps that the trainer's loss and the sampling pipeline both call:

   * :meth:`Lmk2VideoNetworks.write_reference_bank`: the reference UNet sees the portrait's latents at
     t = 0; its self-attention inputs are kept as extra keys/values for the denoiser's ``attn1``
     (:mod:`.reference_attention`);
   * :meth:`Lmk2VideoNetworks.pose_features`: the guider turns pose images into one feature map per UNet
     resolution;
   * :meth:`Lmk2VideoNetworks.denoise`: the denoiser predicts the velocity with those maps added after
     ``conv_in`` and each down block (:mod:`.pose_injection`) and the CLIP image embedding as its
     cross-attention context.

   ``forward`` is one training prediction made of the three; the pipeline
   (:class:`~aniportrait_lib.pipelines.pose2video.Pose2VideoPipeline`) fills the bank once per video,
   computes pose features once per window and calls :meth:`~Lmk2VideoNetworks.denoise` per window and step.
4. **Stages** - :func:`build_stage1_networks` (both UNets from the same weights, 2-D denoiser),
   :func:`to_video_unet` (stage-1 denoiser → motion UNet whose new motion modules output zero) and
   :func:`build_stage2_networks` (stage 2 starts from stage 1).

Loading and saving these networks in the official and the kit's file formats is the job of
:mod:`aniportrait_lib.weights`; training them is :mod:`aniportrait_lib.training`'s.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from diffusers import UNet2DConditionModel, UNetMotionModel
from diffusers.models.attention_processor import AttnProcessor2_0
from torch import nn

from aniportrait_lib.pretrained_errors import UNREADABLE_PRETRAINED, unreadable_pretrained

from .fast_paths import install_fast_paths
from .image_models import CLIP_VIT_L14_CONFIG, SD_VAE_FT_MSE_CONFIG
from .pose_guider import (
    MultiScalePoseGuider,
    MultiScalePoseGuiderConfig,
    PoseGuiderBase,
    SingleScalePoseGuider,
    SingleScalePoseGuiderConfig,
)
from .pose_injection import PoseInjector
from .reference_attention import ReferenceAttention
from .unets import (
    SD15_UNET_CONFIG,
    MotionModuleConfig,
    build_denoising_unet,
    build_image_denoising_unet,
    build_reference_unet,
)

__all__ = [
    "SMALL_VAE_CONFIG",
    "TINY_CLIP_CONFIG",
    "GuiderKind",
    "Lmk2VideoModelConfig",
    "Lmk2VideoNetworks",
    "build_pose_guider",
    "build_stage1_networks",
    "build_stage2_networks",
    "small_unet_config",
    "to_video_unet",
]

# --------------------------------------------------------------------------------------------------
# 1. sizes

GuiderKind = Literal["a", "b", "c"]
"""(a) AnimateAnyone single-scale; (b) AniPortrait multi-scale as released; (c) as the paper describes."""


def small_unet_config(
    widths: tuple[int, ...] = (32, 64, 128, 128), context_dim: int = 32, latent_channels: int = 8
) -> dict[str, Any]:
    """SD-style UNet config with SD1.5's block layout at a small size (1 layer per block, 2 heads).

    The multi-scale guider adds maps of widths ``(C, C, 2C, 4C, 4C)``, so the widths must be
    ``(C, 2C, 4C, 4C)`` as SD1.5's ``(320, 640, 1280, 1280)`` are.
    """
    config = copy.deepcopy(SD15_UNET_CONFIG)
    config.update(
        in_channels=latent_channels,  # = the small VAE's latent channels (SD: 4)
        out_channels=latent_channels,
        block_out_channels=list(widths),
        layers_per_block=1,  # SD1.5: 2
        attention_head_dim=2,  # SD naming: number of heads (SD1.5: 8)
        cross_attention_dim=context_dim,  # = CLIP projection_dim (SD1.5 / ViT-L: 768)
        sample_size=8,
    )
    return config


TINY_CLIP_CONFIG: dict[str, Any] = {
    # kit: a 1-layer ViT (random, frozen); keeps the 224 px CLIPImageProcessor input of the official code.
    # Its embedding of a one-identity corpus is an almost constant vector: a fixed context, which keeps the
    # code path of the unconditional drop (zeroed CLIP pixels) intact.
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "image_size": 224,
    "patch_size": 32,
    "projection_dim": 32,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}

SMALL_VAE_CONFIG: dict[str, Any] = {
    # kit: 4 blocks → /8 like sd-vae-ft-mse (block_out 128..512, 2 layers), at 1/8 - 1/16 the width
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [16, 32, 32, 32],
    "layers_per_block": 1,
    "act_fn": "silu",
    "latent_channels": 8,  # sd-vae-ft-mse: 4; on the quick corpus after 200 steps 22.9 dB vs 21.6 dB
    "norm_num_groups": 16,  # sd-vae-ft-mse: 32 (the 16-channel block needs fewer groups)
    "sample_size": 96,
}


@dataclass
class Lmk2VideoModelConfig:
    """Sizes of the Lmk2Video networks (defaults: official SD1.5 / ViT-L / sd-vae-ft-mse sizes)."""

    unet: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(SD15_UNET_CONFIG))  # both UNets
    vae: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(SD_VAE_FT_MSE_CONFIG))
    clip: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(CLIP_VIT_L14_CONFIG))
    guider: GuiderKind = "b"  # official release: (b)
    guider_attention_heads: int = 16  # official Transformer2DModel default (16 × 88)
    guider_attention_head_dim: int = 88
    single_guider_channels: tuple[int, ...] = (16, 32, 64, 128)  # AnimateAnyone (a) conv widths

    @property
    def latent_channels(self) -> int:
        """Guider output width = first UNet width (SD1.5: 320)."""
        return int(self.unet["block_out_channels"][0])

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> Lmk2VideoModelConfig:
        """Inverse of :func:`dataclasses.asdict` (JSON turns tuples into lists)."""
        payload = dict(payload)
        payload["single_guider_channels"] = tuple(payload["single_guider_channels"])
        return cls(**payload)


# --------------------------------------------------------------------------------------------------
# 2. parts


def build_pose_guider(config: Lmk2VideoModelConfig) -> PoseGuiderBase:
    """Guider (a), (b) or (c) at the config's size (``latent_channels`` = first UNet width)."""
    c = config.latent_channels
    if config.guider == "a":
        return SingleScalePoseGuider(SingleScalePoseGuiderConfig(c, tuple(config.single_guider_channels)))
    if config.guider not in ("b", "c"):
        raise ValueError(f"guider must be 'a', 'b' or 'c'; got {config.guider!r}")
    return MultiScalePoseGuider(
        MultiScalePoseGuiderConfig(
            latent_channels=c,
            num_attention_heads=config.guider_attention_heads,
            attention_head_dim=config.guider_attention_head_dim,
            reference_cross_attention=config.guider == "c",
        )
    )


# --------------------------------------------------------------------------------------------------
# 3. wiring


class Lmk2VideoNetworks(nn.Module):
    """The three trained networks in one module (one state dict: ``reference_unet.*``, ``denoising_unet.*``,
    ``pose_guider.*``), wired together: reference-attention processors on both UNets' ``attn1`` and pose
    hooks on the denoiser are installed here, once.

    Args:
        reference_unet: from :func:`~.unets.build_reference_unet`.
        denoising_unet: a 2-D ``UNet2DConditionModel`` (stage 1) or a ``UNetMotionModel``.
        pose_guider: any :class:`~.pose_guider.PoseGuiderBase`.
        official_compat: round the reference bank through float16 as the official inference does.
    """

    def __init__(
        self,
        reference_unet: UNet2DConditionModel,
        denoising_unet: UNet2DConditionModel | UNetMotionModel,
        pose_guider: PoseGuiderBase,
        official_compat: bool = False,
    ):
        super().__init__()
        self.reference_unet, self.denoising_unet, self.pose_guider = (
            reference_unet,
            denoising_unet,
            pose_guider,
        )
        self.attention = ReferenceAttention(reference_unet, denoising_unet, official_compat)
        self.injector = PoseInjector(denoising_unet)
        self._remove_fast_paths = install_fast_paths(reference_unet, denoising_unet, pose_guider)

    def write_reference_bank(
        self, ref_latents: torch.Tensor, context: torch.Tensor, timestep: int = 0, guided: bool = False
    ) -> None:
        """Run the reference UNet on the portrait and hand its ``attn1`` inputs to the denoiser.

        Args:
            ref_latents: ``(B, 4, h, w)`` VAE latents × 0.18215 of the reference image(s).
            context: CLIP embeddings ``(B, 1, C)``.
            timestep: the reference UNet's timestep (official 0: it sees a clean image).
            guided: the denoiser's batches will be ``[uncond, cond]`` (classifier-free guidance): only the
                conditional half attends to the bank.
        """
        self.attention.clear()  # a new bank replaces the old (and whatever a recomputation appended)
        t_ref = torch.full((len(ref_latents),), timestep, device=ref_latents.device)
        self.reference_unet(ref_latents, t_ref, encoder_hidden_states=context)
        self.attention.update()
        self.attention.classifier_free_guidance = guided

    def clear_reference_bank(self) -> None:
        """Forget the reference (the denoiser's ``attn1`` is plain self-attention again)."""
        self.attention.clear()

    def pose_features(self, pose: torch.Tensor, ref_pose: torch.Tensor | None) -> list[torch.Tensor]:
        """Pose-guider maps, one per injection point: ``[(B, C_k, F, h_k, w_k)]``.

        Args:
            pose: ``(B, 3, H, W)`` or ``(B, 3, F, H, W)`` pose images in [-1, 1].
            ref_pose: ``(B, 3, H, W)`` pose image of the reference (read by guider (c) only), or None.
        """
        pose = pose.unsqueeze(2) if pose.ndim == 4 else pose  # (B, 3, F, H, W)
        return self.pose_guider(pose, ref_pose)

    def denoise(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor,
        features: Sequence[torch.Tensor],
    ) -> torch.Tensor:
        """The denoiser's velocity prediction, shaped like ``noisy``, with the pose maps added.

        Args:
            noisy: ``(B, 4, h, w)`` (2-D denoiser) or ``(B, 4, F, h, w)`` (motion UNet).
            timesteps: ``(B,)`` or a scalar tensor.
            context: CLIP embeddings ``(B, 1, C)``; repeated here per frame for a motion UNet.
            features: :meth:`pose_features` for the same batch (and frames).
        """
        if noisy.ndim == 5:  # motion UNet: context per frame, batch-major (B·F, 1, C)
            context = context.repeat_interleave(noisy.shape[2], dim=0)
        with self.injector.features(features):
            return self.denoising_unet(noisy, timesteps, encoder_hidden_states=context).sample

    def forward(self, noisy, timesteps, context, pose, ref_pose, ref_latents=None, reference_timestep=0):
        """One training prediction: reference bank, pose features, denoise (see the module docstring).

        Args:
            noisy: ``(B, 4, h, w)`` or ``(B, 4, F, h, w)`` (stage 2). timesteps: ``(B,)``.
            context: CLIP embeddings ``(B, 1, C)``.
            pose: ``(B, 3, H, W)`` or ``(B, 3, F, H, W)`` in [-1, 1]; ref_pose: ``(B, 3, H, W)``.
            ref_latents: ``(B, 4, h, w)``, or ``None`` for the unconditional drop (no reference attention).
        Returns:
            the velocity prediction, shaped like ``noisy``.

        The bank stays in place when this returns: with gradient checkpointing the denoiser's blocks run
        again during ``backward()`` and must attend to the same bank (cleared too early, they would see
        only their own tokens). The trainer clears it after the backward pass; the next call replaces it.
        """
        if ref_latents is None:
            self.clear_reference_bank()
        else:
            self.write_reference_bank(ref_latents, context, reference_timestep)  # replaces the last bank
        features = self.pose_features(pose, ref_pose)
        return self.denoise(noisy, timesteps, context, features)

    def remove_wiring(self) -> None:
        """Take the processors and hooks off the UNets (they become stock diffusers models again)."""
        self._remove_fast_paths()
        self.attention.remove()
        self.injector.remove()


# --------------------------------------------------------------------------------------------------
# 4. stages


def build_stage1_networks(
    config: Lmk2VideoModelConfig, pretrained_unet: str | Path | None = None
) -> Lmk2VideoNetworks:
    """Fresh stage-1 networks (reference UNet, 2-D denoiser, guider) at the config's size.

    Both UNets start from the same weights, as in the official recipe, where both are loaded from SD1.5
    (``pretrained_unet``: a diffusers UNet folder such as ``stable-diffusion-v1-5/unet``, which must match
    ``config.unet``). Without it the reference UNet copies the randomly initialised denoiser (minus its
    output head), so at step 0 the reference features are the very features the denoiser computes.

    Raises:
        ValueError: the pretrained UNet's weights do not fit ``config.unet`` (names the folder).
    """
    denoiser = build_image_denoising_unet(config.unet)
    if pretrained_unet is not None:
        try:
            pretrained = UNet2DConditionModel.from_pretrained(str(pretrained_unet), local_files_only=True)
        except UNREADABLE_PRETRAINED as error:
            raise unreadable_pretrained(pretrained_unet, "SD1.5 UNet", error) from error
        try:
            denoiser.load_state_dict(pretrained.state_dict())
        except RuntimeError as error:  # missing / unexpected keys or shapes
            raise ValueError(f"{pretrained_unet} does not fit the configured UNet: {error}") from None
        del pretrained
    reference = build_reference_unet(config.unet)
    report = reference.load_state_dict(denoiser.state_dict(), strict=False)
    if report.missing_keys or any(
        not k.startswith(("conv_norm_out.", "conv_out.")) for k in report.unexpected_keys
    ):
        raise ValueError(f"reference and denoising UNets differ: {report}")
    return Lmk2VideoNetworks(reference, denoiser, build_pose_guider(config))


def to_video_unet(
    unet2d: UNet2DConditionModel, config: dict, motion: MotionModuleConfig | None = None
) -> UNetMotionModel:
    """Stage-1 2-D denoiser → ``UNetMotionModel`` with zero-output motion modules (per-frame identical).

    The 2-D weights are copied; each new motion module's ``proj_out`` is zeroed (the official
    ``zero_initialize``), so every frame is denoised exactly as the 2-D UNet does.
    """
    video = build_denoising_unet(config, motion)
    try:
        report = video.load_state_dict(unet2d.state_dict(), strict=False)
    except RuntimeError as error:  # shapes differ
        first = (
            str(error).split("size mismatch for ")[1].split("\n")[0]
            if "size mismatch" in str(error)
            else error
        )
        raise ValueError(
            f"the stage-1 denoiser does not fit the motion UNet: size mismatch for {first}"
        ) from None
    missing = [key for key in report.missing_keys if "motion_modules" not in key]
    if report.unexpected_keys or missing:
        raise ValueError(
            "the stage-1 denoiser does not fit the motion UNet: "
            f"unexpected {report.unexpected_keys[:5]}, missing {missing[:5]}"
        )
    with torch.no_grad():
        for name, module in video.named_modules():
            if name.endswith("proj_out") and "motion_modules" in name:
                module.weight.zero_()
                module.bias.zero_()
    video = video.to(unet2d.device)
    return video if video.dtype == unet2d.dtype else video.to(unet2d.dtype)


def stock_reference_unet(reference_unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """A copy of a (wired) reference UNet with plain attention processors."""
    copied = copy.deepcopy(reference_unet)
    copied.set_attn_processor(AttnProcessor2_0())
    return copied


def build_stage2_networks(
    stage1: Lmk2VideoNetworks, unet_config: dict, motion: MotionModuleConfig | None = None
) -> Lmk2VideoNetworks:
    """Stage-2 networks from trained stage-1 ones (copies; ``stage1`` is left untouched)."""
    video_unet = to_video_unet(stage1.denoising_unet, unet_config, motion)
    return Lmk2VideoNetworks(
        stock_reference_unet(stage1.reference_unet), video_unet, copy.deepcopy(stage1.pose_guider)
    )
