"""Fréchet distances of generated videos to real ones: FID on frames and FVD on 16-frame clips.

Both metrics embed every sample with a fixed, pretrained network, fit one Gaussian to the generated
embeddings and one to the real ones, and report the Fréchet (2-Wasserstein) distance between the two::

    d² = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½)

Lower is better; 0 means the two sets have the same mean and covariance of features. The value depends on
the number of samples (small sets read high), so numbers are comparable only at equal set sizes.

**FID** (Heusel et al. 2017) - every frame of every video, pooled. The network is NVIDIA's TorchScript
Inception-v3 ``inception-2015-12-05.pt`` as used by stylegan2-ada-pytorch
(``metrics/frechet_inception_distance.py``: ``detector(images, return_features=True)``). Frames go in as
uint8 ``(N, 3, H, W)`` at their own resolution; inside, the network casts to float32, resizes to 299×299
(bilinear, by ``grid_sample``), scales with ``(x − 128) / 128`` and returns the 2048 pool features.

**FVD** (Unterthiner et al. 2018) - clips of ``clip_frames`` (16) consecutive frames. The network is the
Kinetics-400 I3D, in StyleGAN-V's TorchScript port ``i3d_torchscript.pt``, called as
``detector(clips, rescale=False, resize=False, return_features=True)`` on float ``(N, 3, T, 224, 224)`` in
[-1, 1]; it returns the 400 logits before the softmax. The preprocessing is done here, as the original FVD
code does it (google-research ``frechet_video_distance.py``: each frame bilinearly resized to 224×224, then
``2·x/255 − 1``); universome/fvd-comparison shows the TorchScript port called this way matches the tf.hub
I3D. (StyleGAN-V's own metric passes uint8 and lets the network rescale and resize; doing both steps here
keeps them visible and tested.) A non-square frame is stretched to 224×224, not cropped; the resize is
PyTorch's half-pixel bilinear without antialiasing (TF1's ``resize_bilinear`` had no half-pixel offset: a
sub-pixel shift). Clips are taken back to back from the start of each video (frames 0-15, 16-31, ...; the
remainder is dropped): StyleGAN-V takes one clip per video, but a reproduction's few test videos would then
give too few samples.

Statistics are accumulated batch by batch in float64 (mean and covariance with ``n − 1``, as ``np.cov`` in
the FVD reference code; StyleGAN's ``FeatureStats`` divides by ``n``), merged with Chan et al.'s pairwise
update, so no feature matrix is kept. The square-root term is computed from the
eigenvalues of ``Σ₁ Σ₂`` (real and ≥ 0 in exact arithmetic); eigenvalues below the float64 rank tolerance
count as 0. Without that tolerance, a small set (fewer samples than features, a singular covariance) adds
the square roots of ~2000 rounding-noise eigenvalues, and two identical 12-frame sets read about −1e-6 of
the trace instead of 0.

Videos are uint8 ``(F, H, W, 3)`` RGB. Which weights files are present, and skipping a metric when one is
missing, is the caller's business (:func:`aniportrait_lib.weights.layout.check_component`); nothing is ever
downloaded. A file that is not the expected network raises ``ValueError`` naming it: it must load with
``torch.jit.load``, accept the call above, and give finite ``(B, 2048)`` / ``(B, 400)`` features on every
batch (so another network that happens to load is caught on its first batch).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "FID_FEATURES",
    "FVD_FEATURES",
    "FVD_SIZE",
    "FeatureMoments",
    "fid",
    "frechet_distance",
    "fvd",
    "fvd_clips",
]

FID_FEATURES = 2048
"""Width of the Inception-v3 pool features (stylegan2-ada-pytorch's ``return_features=True``)."""
FVD_FEATURES = 400
"""Width of the I3D features: the Kinetics-400 logits before the softmax."""
FVD_SIZE = 224
"""Frame side the I3D takes (google-research ``frechet_video_distance.py``: ``target_resolution``)."""


@dataclass(frozen=True)
class _Detector:
    """What a feature network file must be: its name in messages, how it is called, its feature width."""

    name: str
    call_kwargs: dict[str, bool]
    width: int


_INCEPTION = _Detector("FID Inception-v3 (inception-2015-12-05.pt)", {"return_features": True}, FID_FEATURES)
_I3D = _Detector(
    "FVD I3D (i3d_torchscript.pt)", {"rescale": False, "resize": False, "return_features": True}, FVD_FEATURES
)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance ``‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½)`` between two Gaussians, in float64.

    Args:
        mu1, mu2: means, ``(D,)``.
        sigma1, sigma2: covariances, ``(D, D)``, symmetric positive semi-definite (singular is fine).

    Returns:
        The squared distance, in squared feature units; ≥ 0 up to rounding (about 1e-15 of the traces).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            f"frechet_distance expects means (D,) and covariances (D, D) of one D; got {mu1.shape}, "
            f"{sigma1.shape}, {mu2.shape}, {sigma2.shape}"
        )
    # tr (Σ₁Σ₂)^½ = Σ √λ over the eigenvalues of Σ₁Σ₂ (similar to Σ₁^½ Σ₂ Σ₁^½, hence real and ≥ 0);
    # the imaginary parts and the negative or tiny real parts are rounding noise.
    eigenvalues = np.linalg.eigvals(sigma1 @ sigma2).real
    tolerance = d * np.finfo(np.float64).eps * float(np.abs(eigenvalues).max(initial=0.0))
    root_trace = np.sqrt(eigenvalues[eigenvalues > tolerance]).sum()
    mean_term = float(np.square(mu1 - mu2).sum())
    return mean_term + float(np.trace(sigma1) + np.trace(sigma2) - 2.0 * root_trace)


class FeatureMoments:
    """Running mean and covariance of feature rows in float64, without keeping the rows.

    Batches are merged with Chan et al.'s pairwise update (no ``Σx² − nμ²`` cancellation).
    """

    def __init__(self, width: int):
        self.count = 0
        self.mean = np.zeros(width, np.float64)
        self._scatter = np.zeros((width, width), np.float64)  # Σ (x − μ)(x − μ)ᵀ

    def add(self, features: np.ndarray) -> None:
        """Add a batch of features ``(B, D)``."""
        x = np.asarray(features, np.float64)
        n = x.shape[0]
        if n == 0:
            return
        batch_mean = x.mean(axis=0)
        centred = x - batch_mean
        delta = batch_mean - self.mean
        total = self.count + n
        self._scatter += centred.T @ centred + np.outer(delta, delta) * (self.count * n / total)
        self.mean += delta * (n / total)
        self.count = total

    def covariance(self) -> np.ndarray:
        """Unbiased covariance ``(D, D)`` (divides by ``n − 1``, as ``np.cov``); needs two rows or more."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 feature rows; have {self.count}")
        return self._scatter / (self.count - 1)


def _check_videos(videos: Sequence[np.ndarray], label: str) -> list[np.ndarray]:
    if len(videos) == 0:
        raise ValueError(f"no {label} videos")
    checked = []
    for i, video in enumerate(videos):
        video = np.asarray(video)
        if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or video.shape[0] == 0:
            raise ValueError(
                f"{label} video {i}: expected uint8 (F, H, W, 3) with F ≥ 1; got {video.dtype} {video.shape}"
            )
        checked.append(video)
    return checked


def _load(path: Path, detector: _Detector, device: str | torch.device) -> torch.jit.ScriptModule:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (the {detector.name} network)")
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated, but it is the format these files come in
            warnings.filterwarnings(
                "ignore", message=".*torch.jit.load.* is deprecated", category=DeprecationWarning
            )
            module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as exc:
        reason = str(exc).strip().split(". ")[0]
        raise ValueError(
            f"{path}: not a TorchScript file, so not the {detector.name} network ({reason})"
        ) from exc
    return module.eval().to(device)


def _features(module, path: Path, detector: _Detector, batch: torch.Tensor) -> np.ndarray:
    """Run ``module`` on ``batch`` as ``detector``; check the output is ``(B, width)`` and finite."""
    try:
        with torch.no_grad():
            out = module(batch, **detector.call_kwargs)
    except torch.cuda.OutOfMemoryError:
        raise
    except (RuntimeError, TypeError, torch.jit.Error) as exc:  # a TorchScript `raise` is a torch.jit.Error
        last_line = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]  # not the whole script trace
        raise ValueError(f"{path}: calling it as the {detector.name} network failed ({last_line})") from exc
    expected = (batch.shape[0], detector.width)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"{path}: gives features {got}, expected {expected}; not the {detector.name} network"
        )
    features = out.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(features).all():
        raise ValueError(f"{path}: gives non-finite features; not a working {detector.name} network")
    return features


def _distance(moments: dict[str, FeatureMoments], unit: str) -> float:
    for label, m in moments.items():
        if m.count < 2:
            raise ValueError(
                f"{label} gives {m.count} {unit}; a Fréchet distance needs at least 2 in each set"
            )
    gen, ref = moments["generated"], moments["reference"]
    return frechet_distance(gen.mean, gen.covariance(), ref.mean, ref.covariance())


def _frame_batches(video: np.ndarray, batch_size: int) -> Iterator[torch.Tensor]:
    """uint8 ``(F, H, W, 3)`` -> uint8 batches ``(B, 3, H, W)`` (the Inception's input layout)."""
    for start in range(0, video.shape[0], batch_size):
        yield torch.from_numpy(np.ascontiguousarray(video[start : start + batch_size])).permute(0, 3, 1, 2)


def fid(
    generated: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    detector_path: Path,
    batch_size: int = 32,
    *,
    device: str | torch.device = "cpu",
) -> float:
    """FID between the frames of ``generated`` and of ``reference`` videos, each set's frames pooled.

    Args:
        generated, reference: videos, uint8 ``(F, H, W, 3)`` RGB, any sizes and lengths.
        detector_path: ``metrics/inception-2015-12-05.pt`` (NVIDIA's TorchScript Inception-v3).
        batch_size: frames per network call.
        device: where the network runs.

    Returns:
        FID in squared Inception-feature units (lower is better).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1; got {batch_size}")
    sets = {
        "generated": _check_videos(generated, "generated"),
        "reference": _check_videos(reference, "reference"),
    }
    module = _load(detector_path, _INCEPTION, device)
    moments = {}
    for label, videos in sets.items():
        moments[label] = FeatureMoments(FID_FEATURES)
        for video in videos:
            for batch in _frame_batches(video, batch_size):
                moments[label].add(_features(module, detector_path, _INCEPTION, batch.to(device)))
    return _distance(moments, "frames")


def fvd_clips(video: np.ndarray, clip_frames: int = 16) -> torch.Tensor:
    """Cut a video into back-to-back clips and prepare them for the I3D.

    Args:
        video: uint8 ``(F, H, W, 3)`` RGB with ``F ≥ clip_frames``.
        clip_frames: frames per clip (16 in the FVD protocol).

    Returns:
        float32 ``(F // clip_frames, 3, clip_frames, 224, 224)`` in [-1, 1]: frames ``[k·T, (k+1)·T)`` of
        the video, each bilinearly resized to 224×224 and scaled with ``2·x/255 − 1``.
    """
    n_clips = video.shape[0] // clip_frames
    frames = torch.from_numpy(np.ascontiguousarray(video[: n_clips * clip_frames])).permute(0, 3, 1, 2)
    frames = F.interpolate(frames.float(), size=(FVD_SIZE, FVD_SIZE), mode="bilinear", align_corners=False)
    frames = (frames * (2.0 / 255.0) - 1.0).clamp(-1.0, 1.0)
    # (k·T, 3, 224, 224) -> (k, T, 3, 224, 224) -> (k, 3, T, 224, 224)
    return frames.reshape(n_clips, clip_frames, 3, FVD_SIZE, FVD_SIZE).permute(0, 2, 1, 3, 4).contiguous()


def fvd(
    generated: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    detector_path: Path,
    clip_frames: int = 16,
    *,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
) -> float:
    """FVD between the 16-frame clips of ``generated`` and of ``reference`` videos.

    Args:
        generated, reference: videos, uint8 ``(F, H, W, 3)`` RGB, each with ``F ≥ clip_frames``; every
            video gives ``F // clip_frames`` clips, and each set needs 2 clips or more.
        detector_path: ``metrics/i3d_torchscript.pt`` (StyleGAN-V's TorchScript I3D).
        clip_frames: consecutive frames per clip.
        batch_size: clips per network call (a clip at 224² is ~9.6 MB of float32).
        device: where the network runs.

    Returns:
        FVD in squared I3D-logit units (lower is better).
    """
    if clip_frames < 1 or batch_size < 1:
        raise ValueError(f"clip_frames and batch_size must be ≥ 1; got {clip_frames} and {batch_size}")
    sets = {
        "generated": _check_videos(generated, "generated"),
        "reference": _check_videos(reference, "reference"),
    }
    for label, videos in sets.items():
        for i, video in enumerate(videos):
            if video.shape[0] < clip_frames:
                raise ValueError(
                    f"{label} video {i} has {video.shape[0]} frames, fewer than clip_frames={clip_frames}"
                )
    module = _load(detector_path, _I3D, device)
    moments = {}
    for label, videos in sets.items():
        moments[label] = FeatureMoments(FVD_FEATURES)
        for video in videos:
            for start in range(0, video.shape[0] // clip_frames, batch_size):
                part = video[start * clip_frames : (start + batch_size) * clip_frames]
                clips = fvd_clips(part, clip_frames).to(device)
                moments[label].add(_features(module, detector_path, _I3D, clips))
    return _distance(moments, f"clips of {clip_frames} frames")
