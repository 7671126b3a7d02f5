"""DDIM schedulers of Lmk2Video (spec §3.5 and §4).

The release samples with ``beta_schedule="linear"`` (``inference_v2.yaml``) although training used
``"scaled_linear"`` (``configs/train/*.yaml``); both use zero-terminal-SNR betas, "trailing" spacing and
v-prediction. Both are exposed so a notebook can show the difference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from diffusers import DDIMScheduler

__all__ = ["DDIMConfig", "build_scheduler", "inference_scheduler_config", "training_scheduler_config"]


@dataclass
class DDIMConfig:
    """``DDIMScheduler`` arguments (defaults: official inference, ``configs/inference/inference_v2.yaml``)."""

    num_train_timesteps: int = 1000  # SD1.5
    beta_start: float = 0.00085  # SD1.5
    beta_end: float = 0.012  # SD1.5
    beta_schedule: str = "linear"  # inference_v2.yaml; training used "scaled_linear"
    clip_sample: bool = False
    steps_offset: int = 1
    prediction_type: str = "v_prediction"  # the denoiser predicts velocity
    rescale_betas_zero_snr: bool = True  # zero terminal SNR (Lin et al. 2024)
    timestep_spacing: str = "trailing"  # 25 steps → 999, 959, …, 39; 3 steps → 999, 666, 332


def inference_scheduler_config() -> DDIMConfig:
    """The official sampling configuration (linear betas)."""
    return DDIMConfig()


def training_scheduler_config() -> DDIMConfig:
    """The official training configuration (``scaled_linear`` betas; otherwise identical)."""
    return DDIMConfig(beta_schedule="scaled_linear")


def build_scheduler(config: DDIMConfig | None = None) -> DDIMScheduler:
    """A diffusers ``DDIMScheduler`` from a :class:`DDIMConfig` (default: official inference)."""
    return DDIMScheduler(**asdict(config or inference_scheduler_config()))
