"""LSE-C and LSE-D, lip-sync confidence and distance measured by SyncNet (Chung & Zisserman 2016, v2 weights).

The measure as Wav2Lip (Prajwal et al. 2020) defined it runs joonson/syncnet_python on each video. The kit
re-implements that scoring loop (``SyncNetInstance.evaluate``) over the same network and weights file:

1. **Frames**: the video at 25 fps (other rates are resampled by nearest frame, as ``ffmpeg -r 25``
   does), face crops 224 × 224 (see below), fed to the lip branch in OpenCV's **BGR** order with raw
   pixel values 0–255 (no normalisation), five consecutive frames per window: ``(N, 3, 5, 224, 224)``.
2. **Audio**: mono 16 kHz as 16-bit PCM values (the reference reads the WAV with ``scipy.io.wavfile``,
   so float audio in [-1, 1] is scaled by 32768), ``python_speech_features.mfcc`` with its defaults
   (25 ms windows every 10 ms = 100 Hz, 13 cepstra, the first replaced by the log frame energy);
   window ``i`` is MFCC frames ``4 i … 4 i + 19`` (0.2 s): ``(N, 1, 13, 20)``.
3. **Windows**: ``min_length = min(frames, samples // 640)``; windows ``i = 0 … min_length - 6`` (the
   reference's ``lastframe = min_length - 5``); both branches give 1024-d embeddings.
4. **Offset search** (``calc_pdist``, ``vshift = 15``): the audio embeddings are zero-padded by 15 on
   both ends; ``d[i, j]`` = Euclidean distance (``torch.nn.functional.pairwise_distance``) between video
   window ``i`` and audio window ``i + j - 15``, ``j = 0 … 30``; ``mean_dist[j]`` = mean over ``i``.
5. **Scores**: LSE-D = ``min(mean_dist)``; LSE-C = ``median(mean_dist) - min(mean_dist)``; offset =
   ``15 - argmin(mean_dist)`` frames. Offset > 0: the mouth moves that many frames *after* the sound
   (video late); < 0: video early. Lower LSE-D and higher LSE-C are better.

**Face crop** (:mod:`.face_crops`): the reference pipeline (``run_pipeline.py``) tracks faces with the
S3FD detector and cuts a padded square around each box. The kit takes the box from MediaPipe's 468 mesh
landmarks (frames without a face get the box interpolated from their neighbours) and applies the same
crop geometry (crop_scale 0.4, 13-frame median smoothing, grey padding 110, resize to 224). LSE is
sensitive to the crop, so the kit's values are close to, not identical with, published ones.

:func:`lse_from_crops` runs steps 1–5 on ready crops (any network with ``forward_lip`` /
``forward_aud``; used by the tests with synthetic frames), :func:`lse` adds the MediaPipe crop.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import python_speech_features
import torch
from torch import nn

from aniportrait_lib.evaluation.face_crops import (
    check_video,
    fill_missing,
    own_extractor,
    syncnet_face_crops,
    video_landmarks_px,
)
from aniportrait_lib.landmarks.extract import N_MESH, LandmarkExtractor


@dataclass(frozen=True)
class SyncNetConfig:
    """The scoring loop's constants (defaults: joonson/syncnet_python ``demo_syncnet.py`` and
    ``SyncNetInstance.evaluate``)."""

    fps: float = 25.0
    """Video rate SyncNet was trained on ("Video 25 FPS, Audio 16000HZ")."""
    sample_rate: int = 16000
    """Audio rate (Hz)."""
    window_frames: int = 5
    """Video frames per lip window (0.2 s)."""
    mfcc_per_frame: int = 4
    """MFCC frames per video frame (100 Hz / 25 fps)."""
    mfcc_window: int = 20
    """MFCC frames per audio window (0.2 s)."""
    vshift: int = 15
    """Largest offset searched, in frames, each way (``--vshift``)."""
    batch_size: int = 20
    """Windows per forward pass (``--batch_size``)."""


@dataclass
class LseResult:
    """SyncNet's scores for one video (module docstring, step 5)."""

    confidence: float
    """LSE-C: median minus minimum of the mean-distance curve (higher = better synchronised)."""
    distance: float
    """LSE-D: minimum of the mean-distance curve (lower = better)."""
    offset: int
    """Best audio-video offset in frames at 25 fps (> 0: video late)."""


def _conv_block(conv: nn.Module, channels: int, norm: type[nn.Module], pool: nn.Module | None) -> list:
    """conv → batch norm → ReLU (→ pool), the repeating unit of both SyncNet branches."""
    return [conv, norm(channels), nn.ReLU(inplace=True), *([pool] if pool is not None else [])]


class SyncNetV2(nn.Module):
    """SyncNet v2 with the attribute names of syncnet_python's ``S`` (so ``syncnet_v2.model`` loads as is).

    * audio branch ``netcnnaud`` + ``netfcaud``: (N, 1, 13, 20) MFCC window → (N, 1024);
    * lip branch ``netcnnlip`` + ``netfclip``: (N, 3, 5, 224, 224) BGR 0–255 window → (N, 1024).
    """

    def __init__(self, embedding_size: int = 1024) -> None:
        super().__init__()
        b2, b3 = nn.BatchNorm2d, nn.BatchNorm3d
        self.netcnnaud = nn.Sequential(
            *_conv_block(nn.Conv2d(1, 64, 3, padding=1), 64, b2, nn.MaxPool2d(1, 1)),
            *_conv_block(nn.Conv2d(64, 192, 3, padding=1), 192, b2, nn.MaxPool2d(3, (1, 2))),
            *_conv_block(nn.Conv2d(192, 384, 3, padding=1), 384, b2, None),
            *_conv_block(nn.Conv2d(384, 256, 3, padding=1), 256, b2, None),
            *_conv_block(nn.Conv2d(256, 256, 3, padding=1), 256, b2, nn.MaxPool2d(3, 2)),
            *_conv_block(nn.Conv2d(256, 512, (5, 4)), 512, b2, None),
        )  # (N, 1, 13, 20) -> (N, 512, 1, 1)
        self.netfcaud = self._head(embedding_size)
        self.netfclip = self._head(embedding_size)
        self.netcnnlip = nn.Sequential(
            *_conv_block(nn.Conv3d(3, 96, (5, 7, 7), (1, 2, 2)), 96, b3, nn.MaxPool3d((1, 3, 3), (1, 2, 2))),
            *_conv_block(
                nn.Conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)),
                256,
                b3,
                nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            ),
            *_conv_block(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, b3, None),
            *_conv_block(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, b3, None),
            *_conv_block(
                nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, b3, nn.MaxPool3d((1, 3, 3), (1, 2, 2))
            ),
            *_conv_block(nn.Conv3d(256, 512, (1, 6, 6)), 512, b3, None),
        )  # (N, 3, 5, 224, 224) -> (N, 512, 1, 1, 1)

    @staticmethod
    def _head(embedding_size: int) -> nn.Sequential:
        """512 → 512 (batch norm, ReLU) → ``embedding_size``, one per branch."""
        return nn.Sequential(
            nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embedding_size)
        )

    def forward_aud(self, mfcc: torch.Tensor) -> torch.Tensor:
        """(N, 1, 13, 20) MFCC windows → (N, 1024) audio embeddings."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_lip(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, 5, 224, 224) BGR 0–255 frame windows → (N, 1024) lip embeddings."""
        return self.netfclip(self.netcnnlip(frames).flatten(1))


def load_syncnet(path: Path) -> SyncNetV2:
    """:class:`SyncNetV2` in eval mode with the weights of ``path`` (``syncnet_v2.model``, a state dict).

    Loaded with ``torch.load(weights_only=True)`` and ``load_state_dict(strict=True)``; BatchNorm
    ``num_batches_tracked`` counters (absent from files saved by old PyTorch) are the only keys that may
    be missing.

    Raises:
        ValueError: missing file, not a state dict, or not SyncNet v2's keys / shapes (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: SyncNet weights file missing (joonson/syncnet_python, syncnet_v2.model)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as error:
        raise ValueError(f"{path}: not a readable PyTorch state dict ({error})") from error
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors (SyncNet v2), got {type(state).__name__}")
    network = SyncNetV2()
    expected = network.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)}" for k in state if k in expected and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        raise ValueError(
            f"{path}: not SyncNet v2 weights: missing {missing[:4]}, unexpected {unexpected[:4]}, "
            f"wrong shapes {wrong[:4]}"
        )
    network.load_state_dict({**expected, **state}, strict=True)
    return network.eval()


def syncnet_mfcc(audio: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """MFCC as SyncNet's reference computes it: float audio [-1, 1] → 16-bit values →
    ``python_speech_features.mfcc`` (defaults) → (13, T) float32 at 100 Hz."""
    audio = np.asarray(audio, np.float64)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (samples,), got {audio.shape}")
    pcm = np.clip(np.round(audio * 32768.0), -32768, 32767)  # what `ffmpeg -acodec pcm_s16le` writes
    return python_speech_features.mfcc(pcm, sample_rate).T.astype(np.float32)


def resample_frames(video: np.ndarray, fps: float, target_fps: float = 25.0) -> np.ndarray:
    """(F, H, W, 3) frames at ``fps`` → frames at ``target_fps`` by nearest frame (drop / repeat)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if abs(fps - target_fps) < 1e-6:
        return video
    count = int(np.floor(len(video) * target_fps / fps))
    index = np.minimum(np.round(np.arange(count) * fps / target_fps).astype(int), len(video) - 1)
    return video[index]


@torch.inference_mode()
def sync_distances(
    network: nn.Module, crops: np.ndarray, audio: np.ndarray, config: SyncNetConfig = SyncNetConfig()
) -> np.ndarray:
    """Steps 1–4 of the module docstring: (N windows, 2 vshift + 1) distances ``d[i, j]`` (offset 15 - j).

    Args:
        network: :class:`SyncNetV2` or anything with ``forward_lip`` / ``forward_aud`` of the same shapes.
        crops: (F, H, W, 3) uint8 RGB face crops at ``config.fps`` (H = W = 224 for SyncNet v2).
        audio: (samples,) float mono in [-1, 1] at ``config.sample_rate``.
    """
    mfcc = torch.from_numpy(syncnet_mfcc(audio, config.sample_rate))
    samples_per_frame = round(config.sample_rate / config.fps)
    min_length = min(len(crops), len(audio) // samples_per_frame)
    windows = min_length - config.window_frames
    if windows < 1:
        raise ValueError(
            f"too short for SyncNet: {len(crops)} frames and {len(audio) / config.sample_rate:.2f} s "
            f"of audio (needs at least {config.window_frames + 1} frames of both)"
        )
    device = next(network.parameters(), torch.zeros(0)).device  # the caller's placement (stand-ins: none)
    lip, aud = [], []
    for start in range(0, windows, config.batch_size):
        starts = range(start, min(windows, start + config.batch_size))
        frames = np.stack([crops[i : i + config.window_frames, :, :, ::-1] for i in starts])  # RGB -> BGR
        frames = torch.from_numpy(frames.transpose(0, 4, 1, 2, 3).astype(np.float32))  # (N, 3, 5, H, W)
        step, width = config.mfcc_per_frame, config.mfcc_window
        mfccs = torch.stack([mfcc[:, i * step : i * step + width] for i in starts])[:, None]  # (N, 1, 13, 20)
        lip.append(network.forward_lip(frames.to(device)).float().cpu())
        aud.append(network.forward_aud(mfccs.to(device)).float().cpu())
    lip_feat, aud_feat = torch.cat(lip), torch.cat(aud)
    shift = config.vshift
    padded = torch.nn.functional.pad(aud_feat, (0, 0, shift, shift))
    candidates = padded.unfold(0, 2 * shift + 1, 1).transpose(1, 2)  # (N, 2 vshift + 1, D)
    return torch.nn.functional.pairwise_distance(lip_feat[:, None, :], candidates).numpy()


def lse_from_crops(
    crops: np.ndarray, audio: np.ndarray, network: nn.Module, config: SyncNetConfig = SyncNetConfig()
) -> LseResult:
    """LSE-C, LSE-D and offset of ready face crops (F, H, W, 3) uint8 RGB at 25 fps and 16 kHz audio."""
    mean_dist = torch.from_numpy(sync_distances(network, crops, audio, config).mean(axis=0))
    minimum, best = torch.min(mean_dist, 0)
    median = torch.median(mean_dist)  # an odd count (2 vshift + 1): the true median
    return LseResult(float(median - minimum), float(minimum), config.vshift - int(best))


def lse(
    video: np.ndarray,
    audio: np.ndarray,
    fps: float,
    syncnet_path: Path,
    extractor: LandmarkExtractor | None = None,
) -> LseResult:
    """LSE-C / LSE-D of one talking video against its audio (module protocol, MediaPipe face crop).

    Args:
        video: (F, H, W, 3) uint8 RGB frames at ``fps``.
        audio: (samples,) float32 mono in [-1, 1] at 16 kHz, starting with the first frame.
        fps: the video's frame rate (resampled to 25 by nearest frame).
        syncnet_path: ``metrics/syncnet_v2.model`` under the weights folder.
        extractor: MediaPipe wrapper to use; None creates one and closes it afterwards.

    Raises:
        ValueError: wrong weights file (names it), a video without a face in any frame, or too short a clip.
    """
    network = load_syncnet(syncnet_path)
    config = SyncNetConfig()
    video = resample_frames(check_video(video, "lse video"), fps, config.fps)
    with own_extractor(extractor) as extract:
        lmks_px, found = video_landmarks_px(video, extract, "lse video")
    crops = syncnet_face_crops(video, fill_missing(lmks_px[:, :N_MESH], found, "lse video"))
    return lse_from_crops(crops, np.asarray(audio, np.float32), network, config)
