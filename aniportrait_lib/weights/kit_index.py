"""Self-describing kit exports: an index file says what a folder holds, so no loader needs to know its author.

In the spirit of diffusers' ``model_index.json``, every export of the kit writes ``kit_index.json`` at the
root of its folder, last (so a folder with an index is complete)::

    {"format": "aniportrait-kit-export", "format_version": 1,
     "components": {
        "stage1": {"files": {"model_config.json": 2210, "reference_unet-2500.pth": 1803941, ...},
                   "config": {"step": 2500, "image_size": 96, "crop_scale": 1.9, "sampling": {...}},
                   "made_by": {"source": "notebook 03_pose_guider_study", "profile": "cpu", ...}}}}

Components of the kit: ``stage1`` (Lmk2Video stage-1 networks with the VAE and CLIP encoder they were
trained against, :mod:`.kit_lmk2video`), ``motion_module`` (stage 2), ``audio2lmk`` (Audio2Mesh +
Audio2Pose, :mod:`.kit_audio2lmk`). File paths are relative to the index's folder and listed with their
sizes in bytes, which :func:`find_export` checks.

:func:`find_export` accepts any folder that holds exports - a single export folder, a copy of several, or
a whole run folder of the notebook suite - by reading every index at most :data:`SEARCH_DEPTH` folders
below it (hidden folders and a rerun's set-aside ``*.previous`` outputs are skipped). Run folders written
before indexes existed are recognised, and :func:`~.kit_legacy.index_legacy_run` indexes them in place
(``python -m aniportrait_lib.weights index <run folder>``).
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aniportrait_lib import __version__
from aniportrait_lib.atomic import write_json

__all__ = [
    "INDEX_FILE",
    "ExportComponent",
    "KitExport",
    "find_export",
    "made_by",
    "read_index",
    "write_index",
]

INDEX_FILE = "kit_index.json"
FORMAT = "aniportrait-kit-export"
FORMAT_VERSION = 1
SEARCH_DEPTH = 3
"""How many folders below the given one :func:`find_export` looks for indexes (a suite run folder keeps
its exports two levels down: ``<run>/<notebook>/<export>/``)."""

PRODUCERS = {
    "stage1": "the stage-1 export (notebook 03_pose_guider_study, last cell: save_stage1_run)",
    "motion_module": "the stage-2 export (notebook 04_train_motion_module, export cell: export_stage2)",
    "audio2lmk": "the Audio2Lmk export (notebook 02_train_audio2lmk, last cell: save_audio2lmk_run)",
}
"""What writes each component, for messages about missing ones."""


def made_by(source: str, profile: str | None = None, **extra: Any) -> dict[str, Any]:
    """Provenance recorded with a component: who wrote it, in which profile, when, with which torch."""
    import torch  # only writers of exports call this, with torch loaded: reading an index stays torch-free

    return {
        "source": source,
        "profile": profile,
        "kit_version": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }


def write_index(
    folder: str | Path,
    component: str,
    files: list[str | Path],
    config: dict[str, Any],
    provenance: dict[str, Any],
) -> Path:
    """Add (or replace) ``component`` in ``folder``'s index, with the current sizes of ``files``.

    Args:
        files: paths inside ``folder`` (absolute or relative to it) that the component needs.
        config: JSON-ready settings a loader needs besides the files (sizes, sampling settings, ...).
        provenance: :func:`made_by`.
    Raises:
        ValueError: a listed file is missing or lies outside ``folder``.
    """
    folder = Path(folder)
    sizes = {}
    for file in files:
        path = Path(file) if Path(file).is_absolute() else folder / file
        try:
            relative = path.resolve().relative_to(folder.resolve())
        except ValueError:
            raise ValueError(f"{path} is not inside the export folder {folder}") from None
        if not path.is_file():
            raise ValueError(f"{path}: listed for the {component!r} index but not written")
        sizes[relative.as_posix()] = path.stat().st_size
    index_path = folder / INDEX_FILE
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "components": {}}
    if index_path.is_file():
        try:
            payload = _validated_payload(index_path)
        except ValueError:
            pass  # an unreadable index is replaced by a fresh one
    payload["components"][component] = {"files": sizes, "config": config, "made_by": provenance}
    return write_json(index_path, payload)


@dataclass
class ExportComponent:
    """One component of an index: where it lies, its files (relative path → bytes) and its settings."""

    name: str
    folder: Path
    files: dict[str, int]
    config: dict[str, Any]
    made_by: dict[str, Any] = field(default_factory=dict)

    @property
    def index(self) -> Path:
        return self.folder / INDEX_FILE

    def path(self, relative: str) -> Path:
        """Absolute path of one of its files."""
        return self.folder / relative

    def problems(self) -> list[str]:
        """Listed files that are missing or whose size differs from the index."""
        found = []
        for relative, size in self.files.items():
            path = self.path(relative)
            if not path.is_file():
                found.append(f"{self.index}: {self.name} lists {relative}, which is missing")
            elif path.stat().st_size != size:
                found.append(
                    f"{self.index}: {self.name} lists {relative} with {size} bytes, the file has "
                    f"{path.stat().st_size} (changed or truncated since the export)"
                )
        return found


@dataclass
class KitExport:
    """Every component found under a folder (see :func:`find_export`)."""

    root: Path
    components: dict[str, ExportComponent]

    def __contains__(self, name: str) -> bool:
        return name in self.components

    def __getitem__(self, name: str) -> ExportComponent:
        return self.components[name]

    def get(self, name: str) -> ExportComponent | None:
        return self.components.get(name)

    def require(self, names: list[str], purpose: str) -> None:
        """Raise one ``ValueError`` naming every component in ``names`` that is missing and what writes it."""
        missing = [name for name in names if name not in self.components]
        if missing:
            found = ", ".join(f"{n} ({c.folder})" for n, c in self.components.items()) or "nothing"
            raise ValueError(
                f"kit export {self.root} is incomplete for {purpose}; missing:\n  "
                + "\n  ".join(f"{name}: {PRODUCERS.get(name, name)}" for name in missing)
                + f"\nfound: {found}"
            )


def _validated_payload(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{path}: not a readable index ({error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f'{path}: not a kit export index (no "format": {FORMAT!r})')
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: index format version {payload.get('format_version')!r}; this kit reads {FORMAT_VERSION}"
        )
    components = payload.get("components")
    if not isinstance(components, dict) or not components:
        raise ValueError(f"{path}: the index lists no components")
    for name, entry in components.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict):
            raise ValueError(f"{path}: component {name!r} has no file list")
        if not isinstance(entry.get("config", {}), dict):
            raise ValueError(f"{path}: component {name!r} has a malformed config")
    return payload


def read_index(path: str | Path) -> list[ExportComponent]:
    """The components of one ``kit_index.json`` (format checked; file sizes are not: see ``problems``).

    Raises:
        ValueError: unreadable JSON, another format or version, or a malformed component (names the file).
    """
    path = Path(path)
    payload = _validated_payload(path)
    return [
        ExportComponent(
            name,
            path.parent,
            dict(entry["files"]),
            dict(entry.get("config", {})),
            dict(entry.get("made_by", {})),
        )  # fmt: skip
        for name, entry in payload["components"].items()
    ]


def _index_files(root: Path, depth: int) -> list[Path]:
    found = [root / INDEX_FILE] if (root / INDEX_FILE).is_file() else []
    if depth == 0:
        return found
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if child.name.startswith(".") or child.name.endswith(".previous"):
            continue
        found.extend(_index_files(child, depth - 1))
    return found


def find_export(folder: str | Path) -> KitExport:
    """Read every index in ``folder`` and below (see the module docstring) and check it.

    Raises:
        ValueError: one message listing everything wrong: no index at all (and, for a run folder written
            before indexes, how to index it), unreadable or malformed indexes, missing or changed files,
            and components found twice.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"kit export {root}: not a folder")
    indexes = _index_files(root, SEARCH_DEPTH)
    if not indexes:
        legacy = _legacy_pieces(root)
        if legacy:
            raise ValueError(
                f"kit export {root} holds exports written before exports described themselves "
                f"({', '.join(legacy)}), so it has no {INDEX_FILE}. Index them in place once with:\n"
                f"  python -m aniportrait_lib.weights index {root}"
            )
        raise ValueError(
            f"kit export {root}: no {INDEX_FILE} in this folder or {SEARCH_DEPTH} levels below. "
            "Kit exports are written by notebooks 02-04 (or save_stage1_run / export_stage2 / "
            "save_audio2lmk_run)"
        )
    problems: list[str] = []
    components: dict[str, ExportComponent] = {}
    for index in indexes:
        try:
            listed = read_index(index)
        except ValueError as error:
            problems.append(str(error))
            continue
        for component in listed:
            problems.extend(component.problems())
            if component.name in components:
                problems.append(
                    f"{component.name} is exported twice: in {components[component.name].folder} and in "
                    f"{component.folder} (point at a folder holding one of them)"
                )
            else:
                components[component.name] = component
    problems.extend(_cross_problems(components))
    if problems:
        raise ValueError(f"kit export {root} is inconsistent:\n  " + "\n  ".join(problems))
    return KitExport(root, components)


def _cross_problems(components: dict[str, ExportComponent]) -> list[str]:
    """A motion module trained on another stage-1 denoiser than the one exported beside it."""
    motion, stage1 = components.get("motion_module"), components.get("stage1")
    if motion is None or stage1 is None:
        return []
    expected = motion.config.get("stage1_denoiser")
    if not expected:
        return []
    size = stage1.files.get(expected.get("file", ""))
    if size != expected.get("bytes"):
        return [
            f"{motion.index}: the motion modules were trained on stage-1 denoiser {expected.get('file')} "
            f"({expected.get('bytes')} bytes), but {stage1.folder} exports "
            + ", ".join(f"{f} ({b} bytes)" for f, b in stage1.files.items() if "denoising_unet" in f)
        ]
    return []


# --------------------------------------------------------------------------------------------------
# run folders written before indexes

LEGACY_LAYOUT = {  # piece → folder relative to a suite run (the notebook layout of that time)
    "audio2lmk": "02_train_audio2lmk/audio2lmk",
    "stage1": "03_pose_guider_study/stage1_b",
    "motion_module": "04_train_motion_module/stage2",
}
LEGACY_PROFILE = "03_pose_guider_study/config.json"


def _legacy_pieces(run: Path) -> list[str]:
    markers = {"audio2lmk": "audio2lmk.json", "stage1": "model_config.json", "motion_module": "config.json"}
    return [
        f"{LEGACY_LAYOUT[name]}/{marker}"
        for name, marker in markers.items()
        if (run / LEGACY_LAYOUT[name] / marker).is_file()
    ]
