"""The kit's own Audio2Lmk export: trained Audio2Mesh / Audio2Pose in a folder that describes itself.

The trainer's checkpoints (``audio2mesh_<profile>/checkpoint-N.pt``) hold optimizer and RNG state and
need the profile's code to rebuild the models. Generation needs less, and needs it self-described:

    audio2lmk/
    ├── audio2mesh.pt      official key format (what the released ``audio2mesh.pt`` holds), including the
    ├── audio2pose.pt      trained wav2vec2 encoder (``audio_encoder.*``): no wav2vec2 folder is needed
    ├── audio2lmk.json     the model sizes (with the wav2vec2 config), the profile, and the motion settings
    └── kit_index.json     component "audio2lmk" (:mod:`.kit_index`): the three files and their sizes

``audio2lmk.json`` and the index are removed first and written last, so a folder that has them is complete
and consistent, even if an export was killed half-way. :func:`load_audio2lmk_run` rebuilds both models
from it alone.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from transformers import Wav2Vec2Config

from aniportrait_lib.atomic import atomic_torch_save, write_json
from aniportrait_lib.audio.audio2mesh import Audio2Mesh, Audio2MeshConfig
from aniportrait_lib.audio.audio2pose import Audio2Pose, Audio2PoseConfig
from aniportrait_lib.audio.inference import MotionConfig

from .audio_checkpoints import kit_to_official, load_audio2mesh, load_audio2pose
from .kit_index import INDEX_FILE, made_by, write_index

__all__ = [
    "AUDIO2LMK_CONFIG_FILE",
    "KIT_MOTION",
    "Audio2LmkRun",
    "index_audio2lmk_export",
    "load_audio2lmk_run",
    "save_audio2lmk_run",
]

AUDIO2LMK_CONFIG_FILE = "audio2lmk.json"
FORMAT_VERSION = 1

KIT_MOTION = MotionConfig(rotation_scale=1.0)
"""How kit-trained models turn audio into motion: the official ×0.5 on predicted rotations compensates for
the released model's training data; a model trained on the mini corpus already has the corpus's amplitudes
(notebook 02 evaluates with the same choice, see
:func:`~aniportrait_lib.evaluation.audio2lmk_eval.predict_clip`)."""


def _config_to_json(config: Audio2MeshConfig | Audio2PoseConfig) -> dict:
    sizes = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name != "encoder"}
    return {**sizes, "encoder": config.encoder.to_dict()}


def _config_from_json(cls, payload: dict):
    payload = dict(payload)
    encoder = Wav2Vec2Config.from_dict(payload.pop("encoder"))
    return cls(**payload, encoder=encoder)


@dataclass
class Audio2LmkRun:
    """What :func:`load_audio2lmk_run` returns: both models (eval mode, float32, CPU) and their settings."""

    audio2mesh: Audio2Mesh
    audio2pose: Audio2Pose
    motion: MotionConfig
    profile: str


def save_audio2lmk_run(
    folder: str | Path,
    audio2mesh: Audio2Mesh,
    audio2pose: Audio2Pose,
    profile: str,
    motion: MotionConfig = KIT_MOTION,
    provenance: dict | None = None,
) -> dict[str, Path]:
    """Write ``audio2mesh.pt``, ``audio2pose.pt`` (official key format) and ``audio2lmk.json`` atomically.

    Args:
        folder: created if needed (notebook 02 uses ``02_train_audio2lmk/audio2lmk``).
        profile: the run profile the models were trained in (``"quick"``, ``"cpu"``, ``"gpu"``).
        motion: how generation should post-process their output (default :data:`KIT_MOTION`).
        provenance: :func:`~.kit_index.made_by` (default: "save_audio2lmk_run" in ``profile``).

    Returns:
        ``{"audio2mesh": path, "audio2pose": path, "config": path, "index": path}``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / AUDIO2LMK_CONFIG_FILE
    config_path.unlink(missing_ok=True)  # the folder reads as incomplete until the new files are in
    (folder / INDEX_FILE).unlink(missing_ok=True)
    written = {}
    for name, model in (("audio2mesh", audio2mesh), ("audio2pose", audio2pose)):
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        written[name] = folder / f"{name}.pt"
        atomic_torch_save(kit_to_official(state), written[name])
    payload = {
        "format": FORMAT_VERSION,
        "profile": profile,
        "audio2mesh": {"file": written["audio2mesh"].name, "config": _config_to_json(audio2mesh.config)},
        "audio2pose": {"file": written["audio2pose"].name, "config": _config_to_json(audio2pose.config)},
        "motion": dataclasses.asdict(motion),
        "encoder_weights": "inside each .pt (audio_encoder.* keys); no wav2vec2 folder needed",
    }
    written["config"] = write_json(config_path, payload)
    written["index"] = index_audio2lmk_export(folder, provenance or made_by("save_audio2lmk_run", profile))
    return written


def index_audio2lmk_export(folder: str | Path, provenance: dict) -> Path:
    """Write the ``audio2lmk`` entry of ``folder``'s index from its ``audio2lmk.json``.

    Raises:
        ValueError: ``audio2lmk.json`` is unreadable, or a model file it names is missing.
    """
    folder = Path(folder)
    config_path = folder / AUDIO2LMK_CONFIG_FILE
    try:
        payload = json.loads(config_path.read_text())
        files = [config_path, folder / payload["audio2mesh"]["file"], folder / payload["audio2pose"]["file"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{config_path}: not a readable Audio2Lmk export config ({error})") from None
    return write_index(folder, "audio2lmk", files, {"profile": payload.get("profile")}, provenance)


def load_audio2lmk_run(folder: str | Path) -> Audio2LmkRun:
    """Rebuild the models of a :func:`save_audio2lmk_run` folder (strict key and shape checks).

    Raises:
        FileNotFoundError: ``audio2lmk.json`` is missing (no export, or an unfinished one).
        ValueError: a model file is missing, unreadable or does not match the saved sizes.
    """
    folder = Path(folder)
    config_path = folder / AUDIO2LMK_CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path} not found: {folder} holds no complete Audio2Lmk export "
            "(run notebook 02_train_audio2lmk to the end)"
        )
    try:
        payload = json.loads(config_path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{config_path}: not a readable Audio2Lmk export config ({error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{config_path}: unknown export format {found!r}")
    mesh_config = _config_from_json(Audio2MeshConfig, payload["audio2mesh"]["config"])
    pose_config = _config_from_json(Audio2PoseConfig, payload["audio2pose"]["config"])
    mesh = load_audio2mesh(folder / payload["audio2mesh"]["file"], mesh_config)
    pose = load_audio2pose(folder / payload["audio2pose"]["file"], pose_config)
    return Audio2LmkRun(mesh, pose, MotionConfig(**payload["motion"]), str(payload["profile"]))
