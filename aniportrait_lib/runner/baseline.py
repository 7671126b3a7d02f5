"""Regression baselines: the metrics a profile is expected to reach, kept in the repository.

``baselines/<profile>.json`` maps notebook → metric → ``{value, direction, tolerance,
rel_tolerance}``. It changes only when someone runs the suite with ``--update-baseline`` and
commits the file, so ``git log -p baselines/cpu.json`` is the history of the kit's results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aniportrait_lib import atomic
from aniportrait_lib.paths import REPO_ROOT

BASELINE_DIR = REPO_ROOT / "baselines"


@dataclass(frozen=True)
class Comparison:
    """One metric of one run set against its baseline."""

    name: str
    value: float | None
    baseline: float | None
    status: str
    """``ok``, ``regressed``, ``improved``, ``new`` (no baseline yet), ``missing`` (not produced)
    or ``info`` (not judged)."""
    unit: str = ""
    description: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("regressed", "missing")

    @property
    def change(self) -> float | None:
        if self.value is None or self.baseline is None:
            return None
        return self.value - self.baseline


def baseline_path(profile: str, folder: Path = BASELINE_DIR) -> Path:
    return folder / f"{profile}.json"


def load_baseline(profile: str, folder: Path = BASELINE_DIR) -> dict[str, dict[str, dict[str, Any]]]:
    """The stored baseline of ``profile`` (empty where none was recorded yet)."""
    path = baseline_path(profile, folder)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"baseline file {path} is not valid JSON: {err}") from err


def _judge(value: float, entry: dict[str, Any]) -> str:
    base = float(entry["value"])
    direction = entry.get("direction")
    slack = max(float(entry.get("tolerance", 0.0)), float(entry.get("rel_tolerance", 0.0)) * abs(base))
    if direction is None:
        return "info"
    if direction == "equal":
        return "ok" if abs(value - base) <= slack else "regressed"
    worse = base - value if direction == "higher" else value - base
    if worse > slack:
        return "regressed"
    return "improved" if -worse > slack else "ok"


def compare(metrics: dict[str, dict[str, Any]], baseline: dict[str, dict[str, Any]]) -> list[Comparison]:
    """Judge a notebook's recorded metrics (``metrics.json`` ``"metrics"``) against its baseline entries."""
    rows = []
    for name, m in metrics.items():
        entry = baseline.get(name)
        if entry is None:
            status = "new" if m.get("direction") is not None else "info"
            rows.append(
                Comparison(name, m["value"], None, status, m.get("unit", ""), m.get("description", ""))
            )
            continue
        status = _judge(float(m["value"]), entry)
        rows.append(
            Comparison(name, m["value"], entry["value"], status, m.get("unit", ""), m.get("description", ""))
        )
    for name, entry in baseline.items():
        if name not in metrics and entry.get("direction") is not None:
            rows.append(Comparison(name, None, entry["value"], "missing"))
    return rows


def updated_baseline(
    current: dict[str, dict[str, Any]], results: dict[str, dict[str, dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """A new baseline: ``current`` with the notebooks in ``results`` replaced by their fresh metrics."""
    merged = {k: v for k, v in current.items() if k not in results}
    for notebook, metrics in results.items():
        merged[notebook] = {
            name: {
                "value": m["value"],
                "direction": m.get("direction"),
                "tolerance": m.get("tolerance", 0.0),
                "rel_tolerance": m.get("rel_tolerance", 0.0),
            }
            for name, m in metrics.items()
        }
    return merged


def save_baseline(profile: str, baseline: dict[str, Any], folder: Path = BASELINE_DIR) -> Path:
    """Write ``baselines/<profile>.json`` (sorted keys, one value per line: readable diffs)."""
    return atomic.write_json(baseline_path(profile, folder), baseline)
