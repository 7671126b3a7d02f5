"""Lmk2Video stage 2 (official ``train_stage_2.py``, spec §4): motion modules only, on 16-frame clips.

Starts from stage-1 weights: the 2-D denoiser becomes a ``UNetMotionModel`` whose motion modules output
zero at first (:func:`~aniportrait_lib.models.lmk2video.build_stage2_networks`; the official code
initialises them from AnimateDiff's ``mm_sd_v15_v2.ckpt``, which the small profiles do not have), the
reference UNet and the pose guider are copied and frozen, and only parameters under ``motion_modules``
train. Everything else - loss, min-SNR weights, noise offset, unconditional drop, checkpoints and exact
resume - is the stage-1 trainer's, applied to ``(B, 4, F, h, w)`` latents.

Export: :func:`~aniportrait_lib.weights.kit_lmk2video.export_stage2` writes ``motion_module-N.pth``, the
denoiser's motion-module entries in the official key layout.
"""

from __future__ import annotations

import torch
from diffusers import UNetMotionModel

from aniportrait_lib.models.lmk2video import Lmk2VideoNetworks

from .lmk2video import Stage1Trainer

__all__ = ["Stage2Trainer"]


class Stage2Trainer(Stage1Trainer):
    """Trains only ``motion_modules`` of a stage-2 denoiser (``build_stage2_networks``) on clip windows.

    ``dataset`` must be a :class:`~.lmk2video_data.ClipWindowDataset`; ``config`` a
    :class:`~.lmk2video_config.Stage2TrainConfig`. The frozen networks stay in eval mode (BatchNorm
    statistics of the guider are not updated).
    """

    @staticmethod
    def _check_denoiser(networks: Lmk2VideoNetworks) -> None:
        if not isinstance(networks.denoising_unet, UNetMotionModel):
            raise ValueError(
                "stage 2 trains a motion UNet: build the networks with models.lmk2video.build_stage2_networks"
            )

    def select_trainable(self, networks: Lmk2VideoNetworks) -> None:
        """Only parameters whose name contains ``motion_modules``."""
        networks.requires_grad_(False)
        count = 0
        for name, parameter in networks.denoising_unet.named_parameters():
            if "motion_modules" in name:
                parameter.requires_grad_(True)
                count += 1
        if count == 0:
            raise ValueError("the denoiser has no motion_modules parameters to train")

    fixed_parts = ("VAE", "image encoder", "stage-1 networks")

    def fixed_state(self, networks: Lmk2VideoNetworks) -> dict[str, torch.Tensor]:
        """Stage 1's fixed models plus every network weight outside the motion modules (the stage-1 model)."""
        state = networks.state_dict()
        fixed = {f"networks.{k}": v for k, v in state.items() if "motion_modules" not in k}
        return super().fixed_state(networks) | fixed

    def train_mode(self) -> None:
        """Motion modules train; the frozen reference UNet and guider stay in eval mode."""
        self.networks.train()
        self.unwrapped.reference_unet.eval()
        self.unwrapped.pose_guider.eval()
