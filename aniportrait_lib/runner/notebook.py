"""What a notebook calls first: its output folder, its profile and its metrics.

Every notebook starts with ``nb = start_notebook("03_pose_guider_study", profile, output_root)``
and then records numbers with ``nb.log_metric(...)`` and its key figure with
``nb.save_figure(fig, key=True)``. The suite runner reads the resulting ``metrics.json`` to build
its report and compare with the baseline. The same calls work when a person runs the notebook by
hand: the files simply land in ``outputs/NN_name/``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aniportrait_lib import atomic
from aniportrait_lib.config import Profile, save_config
from aniportrait_lib.devices import Placement, resolve_placement
from aniportrait_lib.paths import REPO_ROOT, outputs_root
from aniportrait_lib.profiles import StageConfigs, get_profile, stage_configs

Direction = Literal["higher", "lower", "equal"] | None
"""How a metric is judged against its baseline: better when higher, better when lower, must stay
equal (within tolerance), or ``None`` for information only (never fails)."""

METRICS_FILE = "metrics.json"
KEY_FIGURE_FILE = "key_figure.png"


@dataclass
class Metric:
    """One recorded number with the rule that judges it."""

    value: float
    direction: Direction = None
    tolerance: float = 0.0
    """Absolute slack allowed before a change counts as a regression."""
    rel_tolerance: float = 0.0
    """Relative slack (fraction of the baseline value); the larger of the two applies."""
    unit: str = ""
    description: str = ""


class DryRunStop(Exception):  # noqa: N818 - a stop that was asked for, not an error
    """Raised by :meth:`NotebookRun.stop_dry_run`: the notebook stopped where its ``dry_run`` asked.

    The suite runner reports such a notebook as stopped, not failed, and judges none of its metrics.
    """


@dataclass
class NotebookRun:
    """A running notebook: where it writes, which profile it uses and what it has measured."""

    name: str
    profile: Profile
    out_dir: Path
    metrics: dict[str, Metric] = field(default_factory=dict)
    key_figure: str | None = None
    started: float = field(default_factory=time.time)
    placement: Placement | None = None
    """Device and dtype the notebook's networks use (:func:`aniportrait_lib.devices.resolve_placement`)."""

    @property
    def configs(self) -> StageConfigs:
        """Every stage's config for this run's profile (:func:`aniportrait_lib.profiles.stage_configs`),
        freshly built at each access: keep the one you change."""
        return stage_configs(self.profile.name)

    def log_metric(
        self,
        name: str,
        value: float,
        *,
        direction: Direction = None,
        tolerance: float = 0.0,
        rel_tolerance: float = 0.0,
        unit: str = "",
        description: str = "",
    ) -> float:
        """Record ``value`` under ``name`` (written to ``metrics.json`` at once) and return it."""
        value = float(value)
        if math.isnan(value):
            raise ValueError(f"metric {name!r} of notebook {self.name} is NaN")
        if direction not in ("higher", "lower", "equal", None):
            raise ValueError(f"metric {name!r}: direction must be 'higher', 'lower', 'equal' or None")
        self.metrics[name] = Metric(value, direction, tolerance, rel_tolerance, unit, description)
        self._write()
        return value

    def save_figure(self, fig: Any, name: str = "figure", key: bool = False, dpi: int = 100) -> Path:
        """Save a matplotlib figure as PNG in the output folder; ``key=True`` makes it the report's figure."""
        path = self.out_dir / (KEY_FIGURE_FILE if key else f"{name}.png")
        with atomic.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
        if key:
            self.key_figure = path.name
            self._write()
        return path

    def save_config(self, **sections: Any) -> Path:
        """Save the resolved configuration (the profile plus any stage configs) as ``config.json``."""
        placement = self.placement.to_dict() if self.placement is not None else None
        path = self.out_dir / "config.json"
        return save_config(path, profile=self.profile, placement=placement, **sections)

    def stop_dry_run(self, summary: dict[str, Any]) -> None:
        """End a ``dry_run``: write ``summary`` (what the training would do) to ``dry_run.json`` and stop
        the notebook here with :class:`DryRunStop`, before any optimizer step."""
        atomic.write_json(self.out_dir / "dry_run.json", {k: str(v) for k, v in summary.items()})
        raise DryRunStop("; ".join(f"{k}: {v}" for k, v in summary.items()))

    def _write(self) -> None:
        payload = {
            "notebook": self.name,
            "profile": self.profile.name,
            "metrics": {k: vars(m) for k, m in self.metrics.items()},
            "key_figure": self.key_figure,
            "seconds_since_start": round(time.time() - self.started, 3),
        }
        atomic.write_json(self.out_dir / METRICS_FILE, payload)


def resolve_output_root(output_root: str | Path | None) -> Path:
    """``None`` → the kit's ``outputs/``; a relative path is taken from the repository root."""
    if output_root is None:
        return outputs_root()
    root = Path(output_root)
    return root if root.is_absolute() else REPO_ROOT / root


def start_notebook(
    name: str, profile: str | Profile | None = None, output_root: str | Path | None = None
) -> NotebookRun:
    """Begin a notebook run: resolve the profile, create ``<output_root>/<name>/``, save the config.

    Args:
        name: the notebook's stem, e.g. ``"00_tour"``; also the name of its output folder.
        profile: ``"quick"``, ``"cpu"`` (default) or ``"gpu"``; the device comes from the machine
            (``ANIPORTRAIT_DEVICE`` / ``ANIPORTRAIT_DTYPE`` override it, see :mod:`aniportrait_lib.devices`).
    Raises:
        RuntimeError: the ``gpu`` profile on a machine without CUDA (unless ``ANIPORTRAIT_DEVICE`` says
            where to run), before anything is written.
        output_root: where notebook folders go; ``None`` means ``outputs/`` (the runner passes its
            run folder, ``outputs/runs/<timestamp>-<profile>/``).
    """
    resolved = get_profile(profile)
    placement = resolve_placement(profile_dtype=resolved.dtype)
    if resolved.device == "cuda" and placement.device == "cpu" and placement.from_machine:
        raise RuntimeError(
            f"notebook {name}: profile {resolved.name!r} is meant for a CUDA GPU and this machine has none "
            f"({placement.reason}). Run it with profile='cpu' (or 'quick'), or on purpose on the CPU with "
            "the environment variable ANIPORTRAIT_DEVICE=cpu (e.g. for a dry run)."
        )
    run = NotebookRun(
        name=name, profile=resolved, out_dir=resolve_output_root(output_root) / name, placement=placement
    )
    run.out_dir.mkdir(parents=True, exist_ok=True)
    run.save_config()
    run._write()
    return run
