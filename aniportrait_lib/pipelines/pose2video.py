"""Lmk2Video sampling: reference image + pose-image sequence → video (AniPortrait §3.2, spec §3.5).

``Pose2VideoPipeline`` is a diffusers ``DiffusionPipeline`` built from stock parts (see
:mod:`aniportrait_lib.models`). The network is wired by :class:`~aniportrait_lib.models.lmk2video.
Lmk2VideoNetworks` - the very methods the trainer's loss calls: ``write_reference_bank``,
``pose_features``, ``denoise`` - for the duration of one ``__call__`` only (pose features through forward
hooks, reference attention through ``attn1`` processors), so the UNets handed in stay stock models. What is
the pipeline's own is how it samples: guidance, context windows, the scheduler's steps, decoding.

Classifier-free guidance follows the official code: the unconditional branch gets a **zero CLIP embedding
and no reference attention**; the conditional branch gets both. Pose features are the same in both.
Two economies that leave the result unchanged: the reference UNet runs on the conditional input only (the
official code also runs it on the unconditional half, whose bank is never read), and each window's pose
features are computed once and reused at every step (they do not depend on the timestep; for very long
videos at full size this cache holds ~85 MB of f0 per 16-frame window in float32).

With ``official_compat=True`` the pipeline reproduces the official inference numerics (used for parity with
the oracle): pose images as ``2·uint8 − 1`` and reference banks rounded to float16 (train-mode BatchNorm is a
property of the guider: ``MultiScalePoseGuiderConfig(official_compat=True)``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, DiffusionPipeline, UNet2DConditionModel, UNetMotionModel
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import BaseOutput
from transformers import CLIPVisionModelWithProjection

from ..host_memory import keep_freed_memory
from ..models.image_models import VAE_SCALING_FACTOR, build_clip_image_processor
from ..models.lmk2video import Lmk2VideoNetworks, stock_reference_unet, to_video_unet
from ..models.pose_guider import PoseGuiderBase, pose_images_to_tensor
from ..models.scheduler import DDIMConfig, build_scheduler
from .context import context_windows

__all__ = ["Pose2VideoPipeline", "Pose2VideoPipelineOutput"]


@dataclass
class Pose2VideoPipelineOutput(BaseOutput):
    """``videos``: float32 ``(b, 3, f, H, W)`` in [0, 1], on the CPU; None when the frames were
    streamed to ``on_frame`` instead."""

    videos: torch.Tensor | None


class Pose2VideoPipeline(DiffusionPipeline):
    """Reference image + pose images (+ reference pose) → video.

    Args:
        vae: ``AutoencoderKL`` (latents × 0.18215).
        image_encoder: ``CLIPVisionModelWithProjection``; ``image_embeds`` ``(b, C)`` is the UNets' context.
        reference_unet: from :func:`~aniportrait_lib.models.unets.build_reference_unet`.
        denoising_unet: from :func:`~aniportrait_lib.models.unets.build_denoising_unet`.
        pose_guider: any :class:`~aniportrait_lib.models.pose_guider.PoseGuiderBase`.
        scheduler: ``DDIMScheduler`` (see :mod:`aniportrait_lib.models.scheduler`).
        official_compat: ``2·uint8 − 1`` pose inputs and float16-rounded reference banks.
    """

    model_cpu_offload_seq = "image_encoder->reference_unet->denoising_unet->vae"

    def __init__(
        self,
        vae: AutoencoderKL,
        image_encoder: CLIPVisionModelWithProjection,
        reference_unet: UNet2DConditionModel,
        denoising_unet: UNetMotionModel,
        pose_guider: PoseGuiderBase,
        scheduler: DDIMScheduler,
        official_compat: bool = False,
    ):
        super().__init__()
        self.register_modules(
            vae=vae,
            image_encoder=image_encoder,
            reference_unet=reference_unet,
            denoising_unet=denoising_unet,
            pose_guider=pose_guider,
            scheduler=scheduler,
        )
        self.register_to_config(official_compat=official_compat)
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.ref_image_processor = VaeImageProcessor(
            vae_scale_factor=self.vae_scale_factor
        )  # Lanczos, [-1, 1]
        self.clip_image_processor = build_clip_image_processor()

    @classmethod
    def from_components(cls, components, official_compat: bool = False) -> Pose2VideoPipeline:
        """A pipeline over loaded :class:`~aniportrait_lib.weights.components.Lmk2VideoComponents`."""
        return cls(components.vae, components.image_encoder, components.reference_unet,
                   components.denoising_unet, components.pose_guider, components.scheduler,
                   official_compat)  # fmt: skip

    @classmethod
    def from_stage1(
        cls,
        networks: Lmk2VideoNetworks,
        vae: AutoencoderKL,
        image_encoder: CLIPVisionModelWithProjection,
        unet_config: dict,
        scheduler: DDIMConfig | None = None,
    ) -> Pose2VideoPipeline:
        """A pipeline sampling with copies of stage-1 networks (the trainer's stay intact).

        The 2-D denoiser becomes a motion UNet whose motion modules output zero
        (:func:`~aniportrait_lib.models.lmk2video.to_video_unet`); the copies carry plain attention
        processors and no hooks (the pipeline wires them per call).
        """
        return cls(
            vae=vae,
            image_encoder=image_encoder,
            reference_unet=stock_reference_unet(networks.reference_unet).eval(),
            denoising_unet=to_video_unet(networks.denoising_unet, unet_config).eval(),
            pose_guider=copy.deepcopy(networks.pose_guider).eval(),
            scheduler=build_scheduler(scheduler),
        )

    # ---------------------------------------------------------------------------------------------
    # steps of __call__
    # ---------------------------------------------------------------------------------------------

    @staticmethod
    def check_inputs(pose_images, ref_pose_image, width: int, height: int, guidance_scale: float) -> None:
        if width % 8 or height % 8:
            raise ValueError(f"width and height must be multiples of 8; got {width}×{height}")
        if len(pose_images) == 0:
            raise ValueError("pose_images is empty")
        if ref_pose_image is not None and np.asarray(ref_pose_image).ndim != 3:
            raise ValueError("ref_pose_image must be one (H, W, 3) uint8 image")
        if guidance_scale < 1:
            raise ValueError(f"guidance_scale must be ≥ 1 (1 disables guidance); got {guidance_scale}")

    def encode_reference_image(self, ref_image: PIL.Image.Image, width: int, height: int):
        """→ CLIP context ``(1, 1, C)``, ref latents ``(1, 4, H/8, W/8)`` (``latent_dist.mean`` × 0.18215)."""
        device, dtype = self.image_encoder.device, self.image_encoder.dtype
        clip_input = ref_image.convert("RGB").resize((224, 224))  # PIL default (bicubic), as official
        pixels = self.clip_image_processor(images=clip_input, return_tensors="pt").pixel_values
        embeds = self.image_encoder(pixels.to(device, dtype)).image_embeds.unsqueeze(1)
        image = self.ref_image_processor.preprocess(ref_image.convert("RGB"), height=height, width=width)
        image = image.to(self.vae.device, self.vae.dtype)
        latents = self.vae.encode(image).latent_dist.mean * VAE_SCALING_FACTOR
        return embeds, latents

    def prepare_pose_images(self, pose_images, ref_pose_image, width: int, height: int):
        """Pose inputs for the guider: a function ``window → (1, 3, len(window), H, W)`` and the
        reference pose ``(1, 3, H, W)`` (or None). Resized to ``H×W`` with nearest neighbours.

        ``pose_images`` is anything indexable by frame (an array, or a lazy sequence that draws
        landmarks on demand): only one window's images are converted at a time, so memory does not
        grow with the number of frames.
        """
        compat = self.config.official_compat
        parameter = next(self.pose_guider.parameters())

        def to_guider(images: torch.Tensor) -> torch.Tensor:  # (n, 3, h, w) → resized, on the guider
            if images.shape[-2:] != (height, width):
                images = F.interpolate(images, size=(height, width), mode="nearest")
            return images.to(parameter.device, parameter.dtype)

        def window_poses(window: list[int]) -> torch.Tensor:
            images = np.stack([np.asarray(pose_images[i]) for i in window])
            poses = pose_images_to_tensor(images, compat).permute(1, 0, 2, 3)  # (n, 3, h, w)
            return to_guider(poses).permute(1, 0, 2, 3)[None].contiguous()  # (1, 3, n, H, W)

        if ref_pose_image is None:
            return window_poses, None
        return window_poses, to_guider(pose_images_to_tensor(np.asarray(ref_pose_image), compat)[None])

    def prepare_latents(self, num_frames: int, width: int, height: int, dtype, generator) -> torch.Tensor:
        """Initial noise ``(1, 4, f, H/8, W/8)`` (drawn on the CPU for device-independent seeds)."""
        shape = (1, self.denoising_unet.config.in_channels, num_frames, height // 8, width // 8)
        noise = torch.randn(shape, generator=generator, dtype=dtype)
        return noise.to(self.denoising_unet.device) * self.scheduler.init_noise_sigma

    def networks(self) -> Lmk2VideoNetworks:
        """The pipeline's three networks wired together (:mod:`aniportrait_lib.models.lmk2video`): the
        reference-attention processors and pose hooks are installed until :meth:`~Lmk2VideoNetworks.
        remove_wiring`, so that the UNets handed in stay stock models between calls."""
        return Lmk2VideoNetworks(
            self.reference_unet, self.denoising_unet, self.pose_guider, self.config.official_compat
        )

    def window_pose_features(self, networks: Lmk2VideoNetworks, window_poses, ref_pose, windows, cache=True):
        """Pose-guider maps per window, each a list of ``(1, C_k, len(window), h_k, w_k)``.

        Computed per window, as the official loop does: with train-mode BatchNorm (``official_compat``) the
        batch statistics are those of the window's frames. They do not depend on the timestep, so they are
        computed once and reused at every step — unless ``cache`` is False, for long videos: then this
        returns a lazy sequence that recomputes a window's maps when they are needed (memory no longer
        grows with the number of windows; the guider runs once per window and step).
        """
        if cache:
            return [networks.pose_features(window_poses(window), ref_pose) for window in windows]
        return _LazyWindowFeatures(networks, window_poses, ref_pose, windows)

    def predict_window(
        self, networks: Lmk2VideoNetworks, latents, t, context, features, window, guided: bool
    ) -> torch.Tensor:
        """Denoiser prediction for the frames ``window``: ``(1 or 2, 4, len(window), h, w)``."""
        sample = latents[:, :, window]
        if guided:  # [uncond, cond]: same latents and pose maps
            sample, features = sample.repeat(2, 1, 1, 1, 1), [f.repeat(2, 1, 1, 1, 1) for f in features]
        sample = self.scheduler.scale_model_input(sample, t)
        return networks.denoise(sample, t, context, features)  # context repeated per frame there

    def predict(
        self, networks: Lmk2VideoNetworks, latents, t, context, window_features, windows, guidance_scale
    ) -> torch.Tensor:
        """Window-averaged, guided velocity for all frames ``(1, 4, F, h, w)``."""
        guided = guidance_scale > 1
        total = torch.zeros(
            (2 if guided else 1, *latents.shape[1:]), device=latents.device, dtype=latents.dtype
        )
        counts = torch.zeros((1, 1, latents.shape[2], 1, 1), device=latents.device, dtype=latents.dtype)
        for window, features in zip(windows, window_features, strict=True):
            total[:, :, window] += self.predict_window(
                networks, latents, t, context, features, window, guided
            )
            counts[:, :, window] += 1
        prediction = total / counts
        if not guided:
            return prediction
        uncond, cond = prediction.chunk(2)
        return uncond + guidance_scale * (cond - uncond)

    def decode_frames(self, latents: torch.Tensor):
        """Yield decoded frames one at a time: ``(1, 3, H, W)`` float32 in [0, 1] (streaming decode)."""
        for index in range(latents.shape[2]):
            frame = self.vae.decode(latents[:, :, index].to(self.vae.dtype) / VAE_SCALING_FACTOR).sample
            yield index, (frame / 2 + 0.5).clamp(0, 1).float().cpu()

    # ---------------------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        ref_image: PIL.Image.Image,
        pose_images: np.ndarray | list,
        ref_pose_image: np.ndarray | None,
        width: int = 512,
        height: int = 512,
        num_inference_steps: int = 25,
        guidance_scale: float = 3.5,
        generator: torch.Generator | None = None,
        context_frames: int = 16,
        context_overlap: int = 4,
        wrap_around: bool = True,
        on_frame: Callable[[int, np.ndarray], None] | None = None,
        cache_pose_features: bool = True,
    ) -> Pose2VideoPipelineOutput:
        """Generate ``len(pose_images)`` frames.

        Args:
            ref_image: the portrait (any size; resized to ``width×height`` with Lanczos, to 224² for CLIP).
            pose_images: uint8 ``(f, h, w, 3)`` drawn landmarks (resized to ``width×height``, nearest), or
                any sequence of ``(h, w, 3)`` images with ``len`` and indexing (read one window at a time).
            ref_pose_image: uint8 ``(h, w, 3)`` landmarks of ``ref_image`` (unused by the released guider).
            num_inference_steps: DDIM steps (official 25). guidance_scale: CFG weight (official 3.5; 1 = off).
            generator: seeds the initial noise (official: ``torch.manual_seed(42)``).
            context_frames, context_overlap, wrap_around: sliding windows (:mod:`.context`; official
                16, 4, True).
            on_frame: if given, each decoded frame is passed as ``on_frame(index, frame)`` with
                ``frame`` uint8 ``(H, W, 3)`` RGB, in order, and no video tensor is kept (streaming:
                e.g. a :class:`~aniportrait_lib.video_io.VideoWriter`'s ``write``).
            cache_pose_features: keep every window's pose-guider maps for all steps (fast); False
                recomputes them per step so memory does not grow with the video's length.
        Returns:
            :class:`Pose2VideoPipelineOutput` with ``videos`` ``(1, 3, f, H, W)`` in [0, 1].
        """
        # 1. check inputs
        self.check_inputs(pose_images, ref_pose_image, width, height, guidance_scale)
        num_frames, guided = len(pose_images), guidance_scale > 1
        # 2. encode the reference image (CLIP context; VAE latents)
        embeds, ref_latents = self.encode_reference_image(ref_image, width, height)
        context = torch.cat([torch.zeros_like(embeds), embeds]) if guided else embeds  # [uncond, cond]
        # 3. timesteps, noise, context windows
        self.scheduler.set_timesteps(num_inference_steps, device=self.denoising_unet.device)
        latents = self.prepare_latents(num_frames, width, height, embeds.dtype, generator)
        windows = context_windows(num_frames, context_frames, context_overlap, wrap_around)
        # 4. wire the networks (reference attention + pose hooks, removed again in the end)
        networks = self.networks()
        try:
            # 5. pose features per window (identical for both guidance branches); fill the reference bank
            #    once (timestep 0, conditional branch only)
            window_poses, ref_pose = self.prepare_pose_images(pose_images, ref_pose_image, width, height)
            window_features = self.window_pose_features(
                networks, window_poses, ref_pose, windows, cache_pose_features
            )
            networks.write_reference_bank(ref_latents.to(self.reference_unet.dtype), embeds, 0, guided)
            # 6. denoising loop (freed activation buffers reused, not unmapped and faulted in again)
            with keep_freed_memory():
                for t in self.progress_bar(self.scheduler.timesteps):
                    velocity = self.predict(
                        networks, latents, t, context, window_features, windows, guidance_scale
                    )
                    latents = self.scheduler.step(velocity, t, latents).prev_sample
        finally:
            networks.remove_wiring()
        # 7. decode frame by frame: to the caller's sink, or into a preallocated video
        if on_frame is not None:
            for index, frame in self.decode_frames(latents):
                on_frame(index, (frame[0].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8))
            return Pose2VideoPipelineOutput(videos=None)
        video = torch.empty((1, 3, num_frames, height, width), dtype=torch.float32)
        for index, frame in self.decode_frames(latents):
            video[:, :, index] = frame
        return Pose2VideoPipelineOutput(videos=video)


class _LazyWindowFeatures:
    """Pose-guider maps of each window, computed when indexed or iterated (see ``cache_pose_features``)."""

    def __init__(self, networks: Lmk2VideoNetworks, window_poses, ref_pose, windows) -> None:
        self.networks, self.window_poses, self.ref_pose, self.windows = (
            networks,
            window_poses,
            ref_pose,
            windows,
        )

    def __len__(self) -> int:
        return len(self.windows)

    def __iter__(self):
        for window in self.windows:
            yield self.networks.pose_features(self.window_poses(window), self.ref_pose)
