"""Training recipes: what ``python -m aniportrait_lib.train STAGE --config NAME`` resolves a name to.

A recipe is one stage's configs (dataclasses: ``train``, and per stage ``model`` / ``vae`` /
``evaluation`` / ``motion`` / ``data``) taken from a kit profile (:mod:`aniportrait_lib.profiles`) and
changed by a YAML file and by ``--set SECTION.FIELD=VALUE`` overrides, each field checked by name and
kind. The files beside this module are the named recipes: ``official.yaml`` (the official repository's
stage-1/2 recipes); ``accelerate/`` holds accelerate launcher configs, not recipes. A run saves its
resolved recipe as YAML (:func:`save_recipe`), itself a valid ``--config``.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aniportrait_lib.atomic import atomic_write_bytes
from aniportrait_lib.profiles import PROFILE_NAMES, StageConfigs, stage_configs

__all__ = ["RECIPES_DIR", "STAGES", "Recipe", "load_recipe", "merge", "parse_overrides", "save_recipe"]

STAGES = ("audio2mesh", "audio2pose", "stage1", "stage2")
RECIPES_DIR = Path(__file__).parent
"""The named recipe files (``<name>.yaml``)."""


@dataclass
class Recipe:
    """A stage's resolved recipe: the kit profile it starts from and its sections (dataclass configs)."""

    stage: str
    base: str
    sections: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain values (tuples as lists) in the form :func:`load_recipe` reads back."""
        plain = {name: _plain(dataclasses.asdict(value)) for name, value in self.sections.items()}
        return {"stage": self.stage, "base": self.base, **plain}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _sections(stage: str, configs: StageConfigs) -> dict[str, Any]:
    """The overridable configs of ``stage`` in a profile's registry entry (fresh copies)."""
    if stage == "stage1":
        lmk = configs.lmk2video
        return {"train": lmk.stage1, "model": lmk.model, "vae": lmk.vae, "evaluation": lmk.evaluation}
    if stage == "stage2":
        motion = configs.motion
        return {"train": motion.stage2, "motion": motion.motion, "evaluation": motion.evaluation}
    audio = configs.audio2lmk
    return {"train": audio.mesh_train if stage == "audio2mesh" else audio.pose_train, "data": audio.data}


def merge(config: Any, values: dict[str, Any], where: str) -> Any:
    """``config`` (a dataclass) with ``values`` applied, recursively; ``ValueError`` naming ``where`` and the
    field for an unknown field or a value of the wrong kind."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping of fields, got {values!r}")
    fields = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for key, value in values.items():
        if key not in fields:
            raise ValueError(f"{where}: unknown field {key!r} (fields: {', '.join(sorted(fields))})")
        current, name = getattr(config, key), f"{where}.{key}"
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = merge(current, value, name)
        elif isinstance(current, dict) and isinstance(value, dict):
            changes[key] = {**current, **value}
        elif isinstance(current, tuple) and isinstance(value, list | tuple):
            changes[key] = tuple(value)
        elif isinstance(current, bool) != isinstance(value, bool) and current is not None:
            raise ValueError(f"{name}: expected {type(current).__name__}, got {value!r}")
        elif isinstance(current, float) and isinstance(value, int | str) and _is_number(value):
            changes[key] = float(value)  # YAML 1.1 reads "2e-4" (no dot) as text
        elif current is not None and value is not None and not isinstance(value, type(current)):
            raise ValueError(f"{name}: expected {type(current).__name__}, got {value!r}")
        else:
            changes[key] = value
    return dataclasses.replace(config, **changes)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        payload = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: not a readable YAML recipe ({error})") from None
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: a recipe is a mapping (base: ..., {'|'.join(STAGES)}: ...)")
    return payload


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.lr=1e-4", ...]`` → nested mapping (values read as YAML: numbers, lists, null, true)."""
    nested: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. train.max_steps=100")
        node = nested
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(text)
    return nested


def load_recipe(stage: str, config: str, overrides: dict[str, Any] | None = None) -> Recipe:
    """The recipe ``config`` (profile name, ``official`` or YAML file) for ``stage``, with ``overrides``.

    A file holds ``base: <profile>`` and, per stage, its sections (``stage1: {train: {...}}``); a saved
    ``train_config.yaml`` (``stage:`` and sections at the top) is read too.

    Raises:
        ValueError: unknown stage, recipe, section or field (the message names the file and the field).
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}: choose one of {', '.join(STAGES)}")
    if config in PROFILE_NAMES:
        base, values, where = config, {}, f"profile {config!r}"
    else:
        path = RECIPES_DIR / f"{config}.yaml" if (RECIPES_DIR / f"{config}.yaml").is_file() else Path(config)
        if not path.is_file():
            names = sorted([*PROFILE_NAMES, *(p.stem for p in RECIPES_DIR.glob("*.yaml"))])
            raise ValueError(f"--config {config!r} is neither a recipe name ({', '.join(names)}) nor a file")
        payload, where = _read_yaml(path), str(path)
        base = str(payload.get("base", "gpu"))
        if payload.get("stage") not in (None, stage):
            raise ValueError(f"{path} is the recipe of {payload['stage']!r}, not of {stage!r}")
        values = payload.get(stage, {}) if "stage" not in payload else {
            k: v for k, v in payload.items() if k not in ("stage", "base")
        }  # fmt: skip
        values = values or {}
        if base not in PROFILE_NAMES:
            raise ValueError(f"{path}: base {base!r} is not a kit profile ({', '.join(PROFILE_NAMES)})")
    sections = _sections(stage, stage_configs(base))
    for layer, source in ((values, where), (overrides or {}, "--set")):
        for name, section_values in layer.items():
            if name not in sections:
                raise ValueError(
                    f"{source}: {stage} has no section {name!r} (sections: {', '.join(sections)})"
                )
            sections[name] = merge(sections[name], section_values, f"{source}: {name}")
    return Recipe(stage, base, sections)


def save_recipe(recipe: Recipe, path: Path) -> None:
    """Write the resolved recipe as YAML (atomically); it is a valid ``--config`` file."""
    header = f"# resolved by: python -m aniportrait_lib.train {' '.join(sys.argv[1:])}\n"
    text = header + yaml.safe_dump(recipe.to_dict(), sort_keys=False)
    atomic_write_bytes(path, lambda file: file.write(text.encode()))
