"""Lmk2Video networks (AniPortrait §3.2), assembled from stock diffusers / transformers classes.

Start with ``lmk2video``: the whole network in one file, top to bottom; the other modules are its parts.

=======================  ==========================================================================
module                   what it holds
=======================  ==========================================================================
``lmk2video``            the model config (released sizes, small variants), the three networks wired
                         together (reference bank, pose features, denoise: one wiring for training
                         and sampling), the stage-1 / stage-2 builders
``pose_guider``          three pose guiders behind one interface (AnimateAnyone; AniPortrait as
                         released; AniPortrait as the paper describes it) + pose-image conversion
``unets``                reference UNet (``UNet2DConditionModel`` without output head) and denoising
                         UNet (``UNetMotionModel`` with per-frame motion GroupNorm)
``pose_injection``       forward hooks adding pose features after ``conv_in`` / each down block
``reference_attention``  ``attn1`` processors: writer (records), reader (attends to the bank), pairing
``scheduler``            DDIM as the official inference / training configure it
``image_models``         VAE and CLIP image encoder builders (configs as facts, local folders only)
=======================  ==========================================================================
"""

from .pose_guider import (
    MultiScalePoseGuider,
    MultiScalePoseGuiderConfig,
    PoseGuiderBase,
    SingleScalePoseGuider,
    SingleScalePoseGuiderConfig,
    pose_images_to_tensor,
)
from .pose_injection import PoseInjector
from .reference_attention import ReferenceAttention, pair_reference_blocks
from .scheduler import DDIMConfig, build_scheduler
from .unets import SD15_UNET_CONFIG, MotionModuleConfig, build_denoising_unet, build_reference_unet

__all__ = [
    "SD15_UNET_CONFIG",
    "DDIMConfig",
    "MotionModuleConfig",
    "MultiScalePoseGuider",
    "MultiScalePoseGuiderConfig",
    "PoseGuiderBase",
    "PoseInjector",
    "ReferenceAttention",
    "SingleScalePoseGuider",
    "SingleScalePoseGuiderConfig",
    "build_denoising_unet",
    "build_reference_unet",
    "build_scheduler",
    "pair_reference_blocks",
    "pose_images_to_tensor",
]
