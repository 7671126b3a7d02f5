"""Audio2Lmk (paper §3.1): speech → 3D face-mesh offsets (Audio2Mesh) and head pose (Audio2Pose).

Modules, in data-flow order:

* ``features``: any audio file → 16 kHz mono, wav2vec2 normalisation, ``seq_len`` (30 fps);
* ``encoder``: wav2vec2 time-aligned to the video frames (+ bounded-memory long-audio path);
* ``windows``: overlapping windows with cross-fades (long audio without seams);
* ``audio2mesh`` / ``audio2pose``: the two models, with the official parameter names;
* ``inference``: ``audio_to_motion`` → per-frame mesh offsets (T, 468, 3) and pose (T, 6).

Official checkpoints are converted by ``aniportrait_lib.weights.audio_checkpoints``.
"""

from .audio2mesh import Audio2Mesh, Audio2MeshConfig
from .audio2pose import Audio2Pose, Audio2PoseConfig
from .encoder import (
    TimeAlignedWav2Vec2,
    build_audio_encoder,
    default_wav2vec2_dir,
    wav2vec2_base_960h_config,
)
from .features import AudioFeatureConfig, AudioFeatures, frame_count, load_audio_features
from .inference import Motion, MotionConfig, audio_to_motion, pose_from_template

__all__ = [
    "Audio2Mesh",
    "Audio2MeshConfig",
    "Audio2Pose",
    "Audio2PoseConfig",
    "AudioFeatureConfig",
    "AudioFeatures",
    "Motion",
    "MotionConfig",
    "TimeAlignedWav2Vec2",
    "audio_to_motion",
    "build_audio_encoder",
    "default_wav2vec2_dir",
    "frame_count",
    "load_audio_features",
    "pose_from_template",
    "wav2vec2_base_960h_config",
]
