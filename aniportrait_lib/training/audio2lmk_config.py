"""Audio2Lmk's typed config (sizes, training budgets, data) and the builders of fresh models from it.

The paper (§3.1) gives no training hyper-parameters for the audio stage and the official repository
ships none, so the ``quick`` and ``cpu`` values (chosen in :mod:`aniportrait_lib.profiles`) are the kit's,
chosen to train on the mini corpus within the profile's time budget on 2 CPU cores; ``gpu`` uses the
released architecture (wav2vec2-base-960h, latent 512) and the real wav2vec2 weights from the weights folder.

**The conv feature extractor.** The official models freeze wav2vec2's conv feature encoder
(``feature_extractor._freeze_parameters()``): with *pretrained* weights its features are already
good speech features, and freezing saves memory. Without pretrained weights the frozen encoder is a
fixed *random* filter bank whose features carry little phonetic detail, so the small profiles
train it (``train_conv_extractor=True``); :func:`unfreeze_conv_extractor` undoes the freeze.
The ``gpu`` profile keeps the maintainers' recipe (frozen, pretrained).

Usage::

    profile = stage_configs("cpu").audio2lmk      # aniportrait_lib.profiles
    mesh_model = build_audio2mesh(profile)          # real wav2vec2 weights only for "gpu"
    trainer = Audio2LmkTrainer(mesh_model, dataset, profile.mesh_train, out_dir)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

from transformers import Wav2Vec2Config

from aniportrait_lib.audio.audio2mesh import Audio2Mesh, Audio2MeshConfig
from aniportrait_lib.audio.audio2pose import Audio2Pose, Audio2PoseConfig
from aniportrait_lib.audio.encoder import TimeAlignedWav2Vec2, default_wav2vec2_dir, wav2vec2_base_960h_config
from aniportrait_lib.data.audio_dataset import AudioDatasetConfig
from aniportrait_lib.training.audio2lmk import Audio2LmkTrainConfig


def small_wav2vec2_config(
    hidden: int, layers: int, heads: int, conv_dim: int, dropout: float = 0.0
) -> Wav2Vec2Config:
    """A shrunken wav2vec2-base: same conv kernels/strides (so the same 320-sample stride and
    400-sample receptive field) and post-norm encoder, with fewer and narrower layers.

    LayerDrop and SpecAugment are off: with a few minutes of audio and a few thousand steps they
    slow learning more than they regularise (kit choice).
    """
    base = wav2vec2_base_960h_config()
    return Wav2Vec2Config(
        **{
            **base.to_dict(),
            "hidden_size": hidden,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "intermediate_size": 4 * hidden,  # wav2vec2-base ratio 3072 / 768
            "conv_dim": [conv_dim] * 7,
            "num_conv_pos_embeddings": 16,  # 16 frames ≈ 0.5 s at 30 fps (base: 128 at ~50 Hz)
            "num_conv_pos_embedding_groups": 4,
            "hidden_dropout": dropout,
            "attention_dropout": dropout,
            "activation_dropout": dropout,
            "feat_proj_dropout": dropout,
            "layerdrop": 0.0,
            "apply_spec_augment": False,
        }
    )


@dataclass
class Audio2LmkProfile:
    """Everything that differs between profiles for Audio2Lmk (see the module docstring)."""

    name: str
    encoder: Wav2Vec2Config
    mesh: Audio2MeshConfig
    pose: Audio2PoseConfig
    mesh_train: Audio2LmkTrainConfig
    pose_train: Audio2LmkTrainConfig
    data: AudioDatasetConfig = field(default_factory=AudioDatasetConfig)
    pretrained_encoder: bool = False
    """Initialise wav2vec2 from ``<weights>/wav2vec2-base-960h`` (official ``from_pretrained: True``)."""
    train_conv_extractor: bool = True
    """Train the conv feature encoder (random init) instead of the official freeze (pretrained)."""
    log_every: int = 25
    """Steps between live loss-plot updates in the notebook."""
    torch_threads: int | None = None
    """``torch.set_num_threads`` for training (None: torch's default, all cores). ``quick`` uses 1: on a
    shared 2-core machine (CI) two threads per process oversubscribe the cores (measured: Audio2Mesh quick
    steps 0.04 s with 1 thread vs 0.3–1.2 s with 2 under a load average of 2–5); ``cpu`` uses all cores,
    which pays on a machine the suite has to itself (cpu Audio2Mesh step: 170 ms → 111 ms with 2)."""

    def with_budget(self, max_steps: int | None) -> Audio2LmkProfile:
        """This profile with ``max_steps`` training steps for each model (``None``: unchanged)."""
        if max_steps is None:
            return self

        def budget(train: Audio2LmkTrainConfig) -> Audio2LmkTrainConfig:
            return replace(
                train, max_steps=max_steps, checkpoint_every=min(train.checkpoint_every, max_steps)
            )

        return replace(self, mesh_train=budget(self.mesh_train), pose_train=budget(self.pose_train))


def unfreeze_conv_extractor(encoder: TimeAlignedWav2Vec2) -> None:
    """Make wav2vec2's conv feature encoder trainable again (undoes ``_freeze_parameters``)."""
    for parameter in encoder.feature_extractor.parameters():
        parameter.requires_grad = True
    encoder.feature_extractor._requires_grad = True


def _encoder_dir(profile: Audio2LmkProfile, wav2vec2_dir: str | Path | None) -> Path | None:
    if not profile.pretrained_encoder:
        return None
    folder = Path(wav2vec2_dir) if wav2vec2_dir is not None else default_wav2vec2_dir()
    if folder is None:
        warnings.warn(
            f"profile {profile.name!r} wants pretrained wav2vec2 weights but no wav2vec2-base-960h "
            "folder was found in the weights folder: training from a random encoder",
            stacklevel=3,
        )
    return folder


def _prepare(model, profile: Audio2LmkProfile, pretrained: bool):
    if profile.train_conv_extractor or not pretrained:
        unfreeze_conv_extractor(model.audio_encoder)
    return model


def build_audio2mesh(profile: Audio2LmkProfile, wav2vec2_dir: str | Path | None = None) -> Audio2Mesh:
    """A fresh Audio2Mesh for ``profile`` (random encoder unless the profile is pretrained).

    Without pretrained weights the conv extractor is always made trainable (see module docstring).
    """
    folder = _encoder_dir(profile, wav2vec2_dir)
    model = Audio2Mesh(profile.mesh, wav2vec2_dir=folder, random_encoder_ok=folder is None)
    return _prepare(model, profile, folder is not None)


def build_audio2pose(profile: Audio2LmkProfile, wav2vec2_dir: str | Path | None = None) -> Audio2Pose:
    """A fresh Audio2Pose for ``profile`` (same encoder rules as :func:`build_audio2mesh`)."""
    folder = _encoder_dir(profile, wav2vec2_dir)
    model = Audio2Pose(profile.pose, wav2vec2_dir=folder, random_encoder_ok=folder is None)
    return _prepare(model, profile, folder is not None)
