"""Metric trends across suite runs: one small JSON file per run, read back as sparklines.

Every ``python -m aniportrait_lib.runner`` run writes ``<history dir>/<profile>/<timestamp>.json``:
the run's time, profile, git commit, and per notebook its status, seconds and metrics. The default
history dir is ``history/`` beside the runs root (``outputs/history/`` for ``outputs/runs/``);
``--history-dir`` points it elsewhere, e.g. somewhere that outlives a scheduled run's fresh checkout.

A metric's trend is its value in the last N runs that ran its notebook, oldest first, drawn with the
eight Unicode blocks ``▁▂▃▄▅▆▇█`` scaled between the shown minimum and maximum (a constant series is
flat at ``▄``); ``·`` is a run where the notebook ran but did not record the metric (it failed before,
or the metric is newer or was dropped). A history file that cannot be read is skipped with one line
naming it; it never stops a run or its report.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aniportrait_lib import atomic
from aniportrait_lib.paths import REPO_ROOT, outputs_root
from aniportrait_lib.runner.suite import NotebookResult, SuiteResult

HISTORY_FORMAT = 1
"""Version of a history file's layout (``"format"`` in each file)."""
DEFAULT_LAST = 10
"""How many runs a trend shows by default."""
BLOCKS = "▁▂▃▄▅▆▇█"
GAP = "·"
"""A run that ran the notebook but has no value for the metric."""


@dataclass(frozen=True)
class NotebookRecord:
    """One notebook in one recorded run."""

    status: str
    """``passed``, ``regressed`` (ran, a metric crossed its tolerance), ``failed`` (raised) or
    ``stopped`` (dry run)."""
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    """Metric name → value (only finite numbers)."""


@dataclass(frozen=True)
class RunRecord:
    """One suite run as its history file holds it."""

    id: str
    """The history file's stem: the run's start time, unique within a profile's history."""
    run: str
    """The run folder's name (several records share it when ``--into`` reran notebooks there)."""
    started: str
    """Start time, ISO 8601 UTC."""
    profile: str
    commit: str
    notebooks: dict[str, NotebookRecord]


@dataclass
class History:
    """The readable records of one profile's history folder, oldest first."""

    folder: Path
    records: list[RunRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """One line per file that could not be read, naming it and why."""
    current: str | None = None
    """The id of the record of the run being reported, if it is among ``records``."""


@dataclass(frozen=True)
class Trend:
    """A metric's values in the last runs of its notebook, oldest first (``None``: not recorded)."""

    values: list[float | None]
    current: int | None = None
    """Index in ``values`` of the run being reported (``None``: not among them)."""

    def sparkline(self, mark_current: bool = True) -> str:
        """The values as block characters; the current run's in brackets, e.g. ``▁▃▅[█]``."""
        marks = sparkline(self.values)
        if mark_current and self.current is not None:
            i = self.current
            marks = f"{marks[:i]}[{marks[i]}]{marks[i + 1 :]}"
        return marks

    @property
    def low(self) -> float | None:
        present = [v for v in self.values if v is not None]
        return min(present) if present else None

    @property
    def high(self) -> float | None:
        present = [v for v in self.values if v is not None]
        return max(present) if present else None


def sparkline(values: list[float | None]) -> str:
    """One block per value scaled from the lowest (``▁``) to the highest (``█``); ``·`` for ``None``;
    all equal values give a flat line of ``▄``."""
    present = [v for v in values if v is not None]
    if not present:
        return GAP * len(values)
    low, high = min(present), max(present)
    if high - low <= 1e-12 * max(abs(low), abs(high), 1.0):
        return "".join(GAP if v is None else BLOCKS[3] for v in values)
    top = len(BLOCKS) - 1
    return "".join(GAP if v is None else BLOCKS[round((v - low) / (high - low) * top)] for v in values)


def default_history_dir(runs_root: Path | None = None) -> Path:
    """``history/`` beside the runs root: ``outputs/history`` for the default ``outputs/runs``."""
    return (runs_root or outputs_root() / "runs").parent / "history"


def git_commit() -> str:
    """The checkout's short commit hash, or ``unknown`` (no git, not a checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _status(result: NotebookResult) -> str:
    if result.stopped is not None:
        return "stopped"
    if result.error is not None:
        return "failed"
    return "regressed" if result.failed else "passed"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def record_from_suite(suite: SuiteResult, commit: str | None = None) -> dict[str, Any]:
    """The JSON payload of ``suite``'s history file (see :func:`write_record`)."""
    notebooks = {}
    for r in suite.results:
        values = {name: m.get("value") for name, m in r.metrics.items()}
        notebooks[r.name] = {
            "status": _status(r),
            "seconds": round(r.seconds, 2),
            "metrics": {name: v for name, v in values.items() if _finite(v)},
        }
    return {
        "format": HISTORY_FORMAT,
        "run": suite.run_dir.name,
        "started": suite.started.isoformat(timespec="seconds"),
        "profile": suite.profile,
        "commit": commit if commit is not None else git_commit(),
        "notebooks": notebooks,
    }


def write_record(suite: SuiteResult, history_dir: Path, commit: str | None = None) -> Path:
    """Write ``<history_dir>/<profile>/<start time>.json`` atomically (``.2``, ``.3`` … when two runs
    started in the same second); returns its path."""
    folder = Path(history_dir) / suite.profile
    stem = f"{suite.started:%Y%m%d-%H%M%S}"
    path = folder / f"{stem}.json"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{stem}.{n}.json"
    return atomic.write_json(path, record_from_suite(suite, commit))


def read_record(path: Path) -> RunRecord:
    """One history file; a ``ValueError`` naming the file if it is not a readable record."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"history file {path}: cannot be read ({err})") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"history file {path}: not valid JSON ({err})") from err
    if not isinstance(data, dict) or not isinstance(data.get("notebooks"), dict):
        raise ValueError(f"history file {path}: not a run record (no 'notebooks' mapping)")
    notebooks = {}
    for name, entry in data["notebooks"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("metrics", {}), dict):
            raise ValueError(f"history file {path}: notebook {name!r} is not a mapping with 'metrics'")
        metrics = {k: float(v) for k, v in entry.get("metrics", {}).items() if _finite(v)}
        seconds = entry.get("seconds")
        notebooks[name] = NotebookRecord(
            str(entry.get("status", "?")), float(seconds) if _finite(seconds) else math.nan, metrics
        )
    return RunRecord(
        Path(path).stem,
        str(data.get("run", "")),
        str(data.get("started", "")),
        str(data.get("profile", "")),
        str(data.get("commit", "unknown")),
        notebooks,
    )


def load_history(history_dir: Path, profile: str, current: Path | None = None) -> History:
    """Every readable record of ``profile`` under ``history_dir``, oldest first; unreadable files are
    listed in ``skipped``. ``current``: the file written for the run being reported."""
    history = History(Path(history_dir) / profile)
    if not history.folder.is_dir():
        return history
    for path in history.folder.glob("*.json"):
        try:
            history.records.append(read_record(path))
        except ValueError as err:
            history.skipped.append(f"{err}; skipped")
    history.records.sort(key=lambda rec: (rec.started, rec.id))
    history.skipped.sort()
    if current is not None and any(rec.id == Path(current).stem for rec in history.records):
        history.current = Path(current).stem
    return history


def _runs(history: History, notebook: str, last: int) -> list[RunRecord]:
    """The last ``last`` records that ran ``notebook``."""
    if last < 1:
        raise ValueError(f"a trend needs at least one run, got last={last}")
    return [rec for rec in history.records if notebook in rec.notebooks][-last:]


def _trend(history: History, runs: list[RunRecord], values: list[float | None]) -> Trend:
    ids = [rec.id for rec in runs]
    return Trend(values, ids.index(history.current) if history.current in ids else None)


def trend(history: History, notebook: str, metric: str, last: int = DEFAULT_LAST) -> Trend:
    """``metric``'s values in the last ``last`` records that ran ``notebook``."""
    runs = _runs(history, notebook, last)
    return _trend(history, runs, [rec.notebooks[notebook].metrics.get(metric) for rec in runs])


def seconds_trend(history: History, notebook: str, last: int = DEFAULT_LAST) -> Trend:
    """How long ``notebook`` took in its last ``last`` recorded runs."""
    runs = _runs(history, notebook, last)
    seconds = [rec.notebooks[notebook].seconds for rec in runs]
    return _trend(history, runs, [None if math.isnan(s) else s for s in seconds])


def metric_names(history: History, notebook: str, last: int = DEFAULT_LAST) -> list[str]:
    """The metrics ``notebook`` recorded in its last ``last`` runs, in the order they first appear."""
    runs = _runs(history, notebook, last)
    names: dict[str, None] = {}
    for rec in runs:
        names.update(dict.fromkeys(rec.notebooks[notebook].metrics))
    return list(names)


def notebook_names(history: History) -> list[str]:
    """Every notebook in the history, in name order (``NN_`` numbering)."""
    return sorted({name for rec in history.records for name in rec.notebooks})


def fmt(value: float | None) -> str:
    """A value as the report shows it: 4 significant digits, ``–`` for none."""
    return "–" if value is None else f"{value:.4g}"


def trend_cell(t: Trend) -> str:
    """A trend for a Markdown table cell: the sparkline in code (monospace) and its range."""
    if t.low is None:
        return f"`{t.sparkline()}`"
    return f"`{t.sparkline()}` {fmt(t.low)}–{fmt(t.high)}"


_TABLE_HEADER = ["metric", "last values (oldest → newest)", "trend", "min", "max", "baseline"]


def _table_row(name: str, t: Trend, baseline: float | None) -> str:
    cells = [name, " ".join(fmt(v) for v in t.values), f"`{t.sparkline()}`", fmt(t.low), fmt(t.high)]
    return "| " + " | ".join([*cells, fmt(baseline)]) + " |"


def format_history(
    history: History, baseline: dict[str, dict[str, dict[str, Any]]], last: int = DEFAULT_LAST
) -> str:
    """The trend table of every notebook in ``history`` (Markdown): each metric's last ``last`` values,
    sparkline, range and ``baseline`` value, and a last row with the notebook's run time."""
    count = len(history.records)
    lines = [f"# Metric trends: {count} run{'s' * (count != 1)} recorded in {history.folder}", ""]
    if not history.records:
        lines.append("(no runs recorded yet: every `python -m aniportrait_lib.runner` run adds one)")
    for notebook in notebook_names(history):
        runs = _runs(history, notebook, last)
        lines += [f"## {notebook}: last {len(runs)} runs, newest {runs[-1].started} ({runs[-1].commit})", ""]
        lines += ["| " + " | ".join(_TABLE_HEADER) + " |", "|" + "---|" * len(_TABLE_HEADER)]
        stored = baseline.get(notebook, {})
        for name in metric_names(history, notebook, last):
            lines.append(
                _table_row(name, trend(history, notebook, name, last), stored.get(name, {}).get("value"))
            )
        lines += [_table_row("(run time, s)", seconds_trend(history, notebook, last), None), ""]
    return "\n".join(lines)
