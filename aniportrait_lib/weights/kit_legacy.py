"""Run folders written before kit exports described themselves: index them in place.

Until exports wrote ``kit_index.json`` (:mod:`.kit_index`), a loader found a suite run's weights by the
notebooks' folder names. :func:`index_legacy_run` reads what those exports already held and writes the
indexes beside them, once; afterwards the run folder loads like any other export
(``python -m aniportrait_lib.weights index <run folder>``).
"""

from __future__ import annotations

import json
from pathlib import Path

from .kit_audio2lmk import index_audio2lmk_export
from .kit_index import LEGACY_LAYOUT, LEGACY_PROFILE, made_by
from .kit_lmk2video import SamplingSettings, index_stage1_export, index_stage2_export, latest_motion_module

__all__ = ["index_legacy_run"]


def index_legacy_run(run: str | Path) -> list[Path]:
    """Write ``kit_index.json`` into the exports of a run folder made before indexes existed.

    Reads what those exports already held: the stage-1 ``model_config.json``, the sampling settings notebook
    03 saved in its ``config.json``, the latest ``motion_module-<step>.pth`` with its ``config.json``, and
    ``audio2lmk.json``. Returns the indexes written.

    Raises:
        ValueError: nothing to index, or a piece is unreadable (names the file).
    """
    run = Path(run)
    written: list[Path] = []
    audio = run / LEGACY_LAYOUT["audio2lmk"]
    if (audio / "audio2lmk.json").is_file():
        written.append(index_audio2lmk_export(audio, made_by("legacy run folder, indexed in place")))
    stage1 = run / LEGACY_LAYOUT["stage1"]
    if (stage1 / "model_config.json").is_file():
        profile_path = run / LEGACY_PROFILE
        try:
            saved = json.loads(profile_path.read_text())
            evaluation = saved["lmk2video"]["evaluation"]
            profile = saved["profile"]["name"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{profile_path}: cannot read the run's sampling settings ({error})") from None
        sampling = SamplingSettings.from_evaluation(evaluation)
        provenance = made_by("legacy run folder, indexed in place", profile)
        written.append(index_stage1_export(stage1, sampling, provenance))
    stage2 = run / LEGACY_LAYOUT["motion_module"]
    motion_file = latest_motion_module(stage2) if stage2.is_dir() else None
    if motion_file is not None:
        try:
            evaluation = json.loads((stage2 / "config.json").read_text())["evaluation"]
            context = {"context_frames": int(evaluation["context_frames"]),
                       "context_overlap": int(evaluation["context_overlap"])}  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            context = {}  # the loader then uses the official windows and says so
        provenance = made_by("legacy run folder, indexed in place")
        written.append(index_stage2_export(motion_file, context, provenance))
    if not written:
        raise ValueError(
            f"{run}: no exports of an earlier kit run found to index ({', '.join(LEGACY_LAYOUT.values())})"
        )
    return written
