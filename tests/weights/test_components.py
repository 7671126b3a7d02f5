"""Building all Lmk2Video parts from configs and local weight files."""

from __future__ import annotations

import pytest
import torch

from aniportrait_lib.weights.components import load_official_components, load_oracle_components


def test_oracle_components_are_complete_and_in_eval_mode(oracle_components):
    c = oracle_components
    assert not c.denoising_unet.training and not c.vae.training
    assert c.reference_unet.conv_norm_out is None and isinstance(c.reference_unet.conv_out, torch.nn.Identity)
    assert c.scheduler.config.prediction_type == "v_prediction"


def test_official_compat_guider_stays_in_train_mode(oracle_dir):
    c = load_oracle_components(oracle_dir, official_compat=True)
    assert all(m.training for m in c.pose_guider.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_official_components_need_local_folders(tmp_path):
    with pytest.raises(ValueError, match="no config.json"):
        load_official_components(tmp_path, tmp_path / "vae", tmp_path / "image_encoder")
