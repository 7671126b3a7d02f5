"""The kit's stage-1 export: the official files and the kit's run folder give back the trained networks."""

from __future__ import annotations

import pytest
import torch

from aniportrait_lib.weights.kit_lmk2video import (
    export_stage1,
    load_stage1_official,
    load_stage1_run,
    save_stage1_run,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread (tests/conftest.py)


def _trained(tiny_stage1, out_dir, guider: str):
    """A trainer after one step (the pose guider's zero-initialised output projection has moved)."""
    trainer = tiny_stage1.trainer(out_dir, tiny_stage1.config(max_steps=1), guider=guider)
    trainer.train()
    return trainer


@pytest.mark.parametrize("guider", ["a", "c"])
def test_official_export_round_trip_gives_the_same_outputs(tiny_stage1, tmp_path, guider):
    trainer = _trained(tiny_stage1, tmp_path / "run", guider)
    networks = trainer.unwrapped.eval()
    model, size, latent = tiny_stage1.model(guider), tiny_stage1.size, tiny_stage1.latent
    files = export_stage1(networks, tmp_path / "export", trainer.step, model)
    assert sorted(p.name for k, p in files.items() if k != "kit") == [
        "denoising_unet-1.pth", "pose_guider-1.pth", "reference_unet-1.pth",
    ]  # fmt: skip
    assert (files["kit"] / "denoising_unet" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = load_stage1_official(tmp_path / "export", 1, tiny_stage1.model(guider)).eval()
    torch.manual_seed(0)
    noisy, ctx = torch.randn(2, latent, 4, 4), torch.randn(2, 1, 32)
    pose, ref_latents = torch.rand(2, 3, size, size) * 2 - 1, torch.randn(2, latent, 4, 4)
    with torch.no_grad():
        expected = networks(noisy, torch.tensor([10, 900]), ctx, pose, pose, ref_latents)
        got = loaded(noisy, torch.tensor([10, 900]), ctx, pose, pose, ref_latents)
    assert torch.equal(expected, got)


def test_stage1_run_folder_restores_networks_and_frozen_models(tiny_stage1, tmp_path):
    trainer = _trained(tiny_stage1, tmp_path / "run", "c")
    vae, encoder = tiny_stage1.frozen
    model, size = tiny_stage1.model("c"), tiny_stage1.size
    folder = tmp_path / "stage1"
    with pytest.raises(FileNotFoundError, match="not a complete stage-1 export"):
        load_stage1_run(folder)
    save_stage1_run(folder, trainer.unwrapped, vae, encoder, model, trainer.step, size)
    save_stage1_run(folder, trainer.unwrapped, vae, encoder, model, trainer.step, size, 1.5)  # again
    run = load_stage1_run(folder)
    assert (run.step, run.image_size, run.model, run.crop_scale) == (1, size, tiny_stage1.model("c"), 1.5)
    pairs = ((trainer.unwrapped, run.networks), (vae, run.vae), (encoder, run.image_encoder))
    for original, restored in pairs:
        restored_state = restored.state_dict()
        assert all(torch.equal(restored_state[k], v) for k, v in original.state_dict().items())
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no temporary folders left
