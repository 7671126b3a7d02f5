"""Audio2Lmk training: losses go down, and kill + resume ends with exactly the uninterrupted weights."""

from __future__ import annotations

import csv

import pytest
import torch
from torch.utils.data import Dataset

from aniportrait_lib.audio import Audio2Mesh, Audio2MeshConfig, Audio2Pose, Audio2PoseConfig
from aniportrait_lib.training.audio2lmk import Audio2LmkTrainConfig, Audio2LmkTrainer, collate
from aniportrait_lib.training.checkpoint import latest_checkpoint, load_training_state


class SyntheticClips(Dataset):
    """Clips of 0.4 s (12 frames): noise audio whose loudness drives mouth offsets and head pose."""

    def __init__(self, count: int = 4, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.items = []
        for index in range(count):
            loudness = torch.rand(12, generator=generator)
            audio = torch.randn(6400, generator=generator) * loudness.repeat_interleave(534)[:6400]
            offsets = torch.zeros(12, 468, 3)
            offsets[:, :, 1] = loudness[:, None] * 0.5
            pose = torch.stack(
                [loudness * 5, -loudness, loudness, loudness * 0, loudness * 0.1, loudness], dim=1
            )
            self.items.append(
                dict(input_values=audio, seq_len=12, offsets=offsets, pose=pose, style_id=index % 3)
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


W2V = dict(  # smaller than tests/conftest.py's oracle sizes, and trained with transformers' default dropout
    hidden_size=16, num_hidden_layers=1, intermediate_size=32, conv_dim=[8] * 7, num_conv_pos_embeddings=4,
    num_conv_pos_embedding_groups=2, hidden_dropout=0.1, attention_dropout=0.1, activation_dropout=0.1,
    final_dropout=0.1,
)  # fmt: skip


@pytest.fixture
def make_model(make_wav2vec2_config):
    """``make_model(kind, seed)``: a random Audio2Mesh (``"mesh"``) or Audio2Pose, initialised by ``seed``."""

    def make(kind: str, seed: int):
        torch.manual_seed(seed)
        if kind == "mesh":
            config = Audio2MeshConfig(latent_dim=16, encoder=make_wav2vec2_config(**W2V))
            return Audio2Mesh(config, random_encoder_ok=True)
        config = Audio2PoseConfig(
            latent_dim=16, num_layers=2, max_len=32, encoder=make_wav2vec2_config(**W2V)
        )
        return Audio2Pose(config, random_encoder_ok=True)

    return make


def _config(**overrides) -> Audio2LmkTrainConfig:
    values = dict(max_steps=5, batch_size=2, learning_rate=3e-3, warmup_steps=2, checkpoint_every=2, cpu=True)
    return Audio2LmkTrainConfig(**(values | overrides))


def _losses(folder) -> list[tuple[int, str]]:
    with (folder / "log.csv").open(newline="") as file:
        return [(int(row["step"]), row["loss"]) for row in csv.DictReader(file)]


@pytest.mark.parametrize("kind", ["mesh", "pose"])
def test_kill_and_resume_gives_identical_weights(tmp_path, kind, make_model):
    data = SyntheticClips()
    straight = Audio2LmkTrainer(make_model(kind, 0), data, _config(), tmp_path / "straight")
    straight.train()

    interrupted = Audio2LmkTrainer(make_model(kind, 0), data, _config(), tmp_path / "resumed")
    interrupted.train(stop_after=3)  # "killed" after step 3; the last checkpoint is step 2
    assert latest_checkpoint(tmp_path / "resumed").name == "checkpoint-00000002.pt"

    restarted = Audio2LmkTrainer(make_model(kind, 99), data, _config(), tmp_path / "resumed")  # other init
    assert restarted.resume() and restarted.step == 2
    restarted.train()

    final_a = straight.accelerator.unwrap_model(straight.model).state_dict()
    final_b = restarted.accelerator.unwrap_model(restarted.model).state_dict()
    for key, value in final_a.items():
        assert torch.equal(value, final_b[key]), key
    assert _losses(tmp_path / "straight") == _losses(tmp_path / "resumed")  # log rewound past step 2
    assert [p.name for p in sorted((tmp_path / "resumed").glob("checkpoint-*.pt"))] == [
        "checkpoint-00000004.pt",
        "checkpoint-00000005.pt",
    ]


def test_training_reduces_mesh_loss(tmp_path, make_model):
    data = SyntheticClips()
    trainer = Audio2LmkTrainer(
        make_model("mesh", 0), data, _config(max_steps=30, checkpoint_every=100), tmp_path
    )
    first = trainer.loss(collate([data[0], data[1], data[2], data[3]])).item()
    trainer.train()
    trainer.model.eval()
    with torch.no_grad():
        last = trainer.loss(collate([data[0], data[1], data[2], data[3]])).item()
    assert last < 0.6 * first  # from the zero-initialised head (predicts no motion)
    state = load_training_state(latest_checkpoint(tmp_path), make_model("mesh", 1))
    assert state.step == 30 and state.extra["config"]["max_steps"] == 30


def test_frozen_conv_encoder_is_not_optimised(tmp_path, make_model):
    model = make_model("mesh", 0)
    conv_before = model.audio_encoder.feature_extractor.conv_layers[0].conv.weight.clone()
    Audio2LmkTrainer(model, SyntheticClips(), _config(max_steps=2), tmp_path).train()
    assert torch.equal(model.audio_encoder.feature_extractor.conv_layers[0].conv.weight, conv_before)


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="Audio2Mesh or Audio2Pose"):
        Audio2LmkTrainer(torch.nn.Linear(2, 2), SyntheticClips(), _config(), tmp_path)
    data = SyntheticClips()
    data.items[1] = dict(data.items[1], input_values=torch.zeros(3200), seq_len=6)
    with pytest.raises(ValueError, match="equal length"):
        collate([data[0], data[1]])


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    from aniportrait_lib.training.checkpoint import atomic_torch_save, atomic_write_bytes

    target = tmp_path / "state.pt"
    atomic_torch_save({"w": torch.ones(2)}, target)

    def crash(file):
        file.write(b"partial")
        raise KeyboardInterrupt  # e.g. the job is killed mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, crash)
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]  # no temporary file left behind
