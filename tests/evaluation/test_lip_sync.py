"""LSE-C / LSE-D: the offset search finds a planted lag (synthetic frames and audio that share one signal),
the weights file checks, and the whole path through MediaPipe with a random-weight SyncNet v2 stand-in."""

import cv2
import numpy as np
import pytest
import python_speech_features
import torch
from standins_faces import write_syncnet_standin
from torch import nn

from aniportrait_lib.data.samples import load_portrait
from aniportrait_lib.evaluation.face_crops import syncnet_face_crops
from aniportrait_lib.evaluation.lip_sync import (
    LseResult,
    SyncNetV2,
    load_syncnet,
    lse,
    lse_from_crops,
    resample_frames,
    sync_distances,
    syncnet_mfcc,
)
from aniportrait_lib.landmarks.extract import LandmarkExtractor

pytestmark = pytest.mark.usefixtures("one_thread")
RATE, FPS, N = 16000, 25, 80
LOUD, QUIET = 0.3, 0.003


class SharedSignalSyncNet(nn.Module):
    """A stand-in with SyncNet's two branches whose embeddings agree only when video and audio are aligned:
    the lip branch reads each frame's brightness, the audio branch each frame's loudness (MFCC c0, the log
    energy), both mapped to about ±0.8 per frame of the 5-frame window."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold  # log energy half-way between the quiet and the loud frames

    def forward_lip(self, frames):  # (N, 3, 5, H, W) BGR 0-255 -> (N, 5)
        return (frames.mean(dim=(1, 3, 4)) - 127.5) / 127.5

    def forward_aud(self, mfcc):  # (N, 1, 13, 20) -> (N, 5): first 2 of each frame's 4 MFCC frames
        energy = mfcc[:, 0, 0].reshape(len(mfcc), 5, 4)[..., :2].mean(-1)
        return 0.8 * torch.tanh(energy - self.threshold)


def frames_for(bits):
    """(F,) 0/1 -> (F, 32, 32, 3) uint8 frames, bright for 1 and dark for 0 (0.5 * 255 ± 0.8 * 127.5)."""
    return np.broadcast_to(
        np.where(bits, 229.5, 25.5).astype(np.uint8)[:, None, None, None], (len(bits), 32, 32, 3)
    )


def audio_for(bits, seed=0):
    """(F,) 0/1 -> 16 kHz noise, loud during the 1-frames and quiet during the 0-frames (640 samples each)."""
    noise = np.random.default_rng(seed).standard_normal(len(bits) * RATE // FPS)
    return (noise * np.repeat(np.where(bits, LOUD, QUIET), RATE // FPS)).astype(np.float32)


@pytest.fixture(scope="module")
def shared_signal_net():
    c0 = [syncnet_mfcc(audio_for(np.full(25, loud))).mean(axis=1)[0] for loud in (True, False)]
    return SharedSignalSyncNet(threshold=float(np.mean(c0)))


@pytest.mark.parametrize("lag", [3, -4, 0])
def test_the_offset_search_finds_a_planted_lag(shared_signal_net, lag):
    bits = np.random.default_rng(1).integers(0, 2, N + 10).astype(bool)
    video_bits = bits[5 - lag : 5 - lag + N]  # video frame t shows bit t - lag: lag > 0 = video late
    audio_bits = bits[5 : 5 + N]
    result = lse_from_crops(frames_for(video_bits), audio_for(audio_bits), shared_signal_net)
    assert isinstance(result, LseResult)
    assert result.offset == lag
    assert result.distance < 0.5 and result.confidence > 1.0


def test_an_aligned_pair_is_more_confident_than_a_shuffled_one(shared_signal_net):
    rng = np.random.default_rng(2)
    bits, other = rng.integers(0, 2, (2, N)).astype(bool)
    aligned = lse_from_crops(frames_for(bits), audio_for(bits), shared_signal_net)
    shuffled = lse_from_crops(frames_for(bits), audio_for(other), shared_signal_net)
    assert aligned.confidence > shuffled.confidence + 0.5
    assert aligned.distance < shuffled.distance - 0.5


def test_the_distance_curve_follows_the_reference_definition(shared_signal_net):
    bits = np.random.default_rng(3).integers(0, 2, 40).astype(bool)
    frames, audio = frames_for(bits), audio_for(bits)
    d = sync_distances(shared_signal_net, frames, audio)
    assert d.shape == (40 - 5, 31)  # windows 0 .. min_length - 6; offsets +15 .. -15

    def lip(first):  # the stand-in's embedding of video window `first` (frames first .. first + 4)
        window = frames[first : first + 5].transpose(3, 0, 1, 2)[None, ::-1].astype(np.float32)  # BGR
        return shared_signal_net.forward_lip(torch.from_numpy(window.copy()))

    mfcc = torch.from_numpy(syncnet_mfcc(audio))
    aud = shared_signal_net.forward_aud(mfcc[None, None, :, 4 * 9 : 4 * 9 + 20])  # audio window 9
    assert d[7, 15 + 2] == pytest.approx(float(torch.dist(lip(7), aud)), abs=1e-5)  # video 7 vs audio 9
    # audio windows before the first are zero vectors (the reference zero-pads; pairwise_distance adds 1e-6)
    assert d[0, 0] == pytest.approx(float(torch.linalg.vector_norm(lip(0) + 1e-6)), abs=1e-5)


def test_mfcc_is_python_speech_features_on_16_bit_values():
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, RATE).astype(np.float32)
    mfcc = syncnet_mfcc(audio)
    assert mfcc.shape == (13, 99)  # 1 s: 25 ms windows every 10 ms
    pcm = np.round(audio.astype(np.float64) * 32768)
    np.testing.assert_allclose(mfcc, python_speech_features.mfcc(pcm, RATE).T, rtol=1e-5, atol=1e-4)


def test_resampling_to_25_fps_keeps_the_timeline():
    video = np.arange(50)[:, None, None, None].astype(np.uint8) * np.ones((1, 2, 2, 3), np.uint8)
    assert resample_frames(video, 50.0)[:, 0, 0, 0].tolist() == list(range(0, 50, 2))
    assert len(resample_frames(video[:30], 30.0)) == 25
    with pytest.raises(ValueError, match="too short"):
        lse_from_crops(frames_for(np.ones(5, bool)), audio_for(np.ones(5, bool)), SharedSignalSyncNet(0.0))


def test_the_standin_has_every_key_and_shape_of_syncnet_v2_and_loads(tmp_path):
    path = write_syncnet_standin(tmp_path / "syncnet_v2.model")
    network = load_syncnet(path)
    assert not network.training
    state = torch.load(path, weights_only=True)
    assert len(state) == len(SyncNetV2().state_dict())
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # old-PyTorch files
    torch.save(old, tmp_path / "old.model")
    torch.testing.assert_close(
        load_syncnet(tmp_path / "old.model").netfcaud[3].weight, state["netfcaud.3.weight"]
    )
    with torch.inference_mode():
        assert network.forward_aud(torch.zeros(2, 1, 13, 20)).shape == (2, 1024)
        assert network.forward_lip(torch.zeros(1, 3, 5, 224, 224)).shape == (1, 1024)


def test_wrong_weights_files_are_refused_with_their_name(tmp_path):
    path = tmp_path / "syncnet_v2.model"
    with pytest.raises(ValueError, match="syncnet_v2.model: SyncNet weights file missing"):
        load_syncnet(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="syncnet_v2.model: not a readable PyTorch state dict"):
        load_syncnet(path)
    state = SyncNetV2().state_dict()
    state["netfclip.3.weight"] = torch.zeros(512, 512)  # a 512-d embedding: another network
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"syncnet_v2.model: not SyncNet v2 weights.*netfclip.3.weight"):
        load_syncnet(path)
    torch.save({"model": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="syncnet_v2.model: not SyncNet v2 weights"):
        load_syncnet(path)


def test_the_whole_path_through_mediapipe_with_the_real_architecture(tmp_path):
    path = write_syncnet_standin(tmp_path / "metrics" / "syncnet_v2.model")
    portrait = load_portrait()[::2, ::2]  # 256 px
    video = np.stack([np.roll(portrait, shift, axis=0) for shift in range(0, 16, 2)])  # 8 frames, nodding
    audio = audio_for(np.ones(8, bool))
    with LandmarkExtractor() as extractor:
        result = lse(video, audio, 25.0, path, extractor)
        twice = lse(np.repeat(video, 2, axis=0), audio, 50.0, path, extractor)  # 50 fps -> the same frames
    assert -15 <= result.offset <= 15 and result.distance > 0 and np.isfinite(result.confidence)
    assert twice == result
    blank = np.full((8, 128, 128, 3), 90, np.uint8)
    with pytest.raises(ValueError, match="lse video: no face found in any frame"), pytest.warns(UserWarning):
        lse(blank, audio, 25.0, path, extractor=None)


def test_the_face_crop_follows_syncnet_pythons_geometry():
    frame = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    box = np.array([[80.0, 60.0], [120.0, 100.0]])  # 40 px: half-size s = 20, centre (100, 80)
    lmks = np.repeat(np.linspace(box[0], box[1], 468)[None], 3, axis=0)
    crops = syncnet_face_crops(np.stack([frame] * 3), lmks)
    # rows y - s .. y + 1.8 s, columns x - 1.4 s .. x + 1.4 s, resized to 224
    expected = cv2.resize(frame[60:116, 72:128], (224, 224))
    assert crops.shape == (3, 224, 224, 3)
    np.testing.assert_array_equal(crops[1], expected)
    corner = syncnet_face_crops(np.stack([frame] * 3), lmks - 80)  # box at the top-left: padded with 110
    assert (corner[1, :20, :20] == 110).all()
