"""Run the notebook suite headlessly with papermill and judge what each notebook measured.

Each notebook runs in its own kernel with the ``profile`` and ``output_root`` parameters injected;
a failing notebook is recorded (cell, error, traceback) and the suite goes on with the next one.
The console gets one line per notebook; what the kernels and libraries print goes to the run
folder's ``run.log`` (:mod:`aniportrait_lib.runner.runlog`), unless ``verbose``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from aniportrait_lib.paths import REPO_ROOT, outputs_root
from aniportrait_lib.profiles import get_profile
from aniportrait_lib.runner import baseline as baselines
from aniportrait_lib.runner.notebook import KEY_FIGURE_FILE, METRICS_FILE, DryRunStop
from aniportrait_lib.runner.runlog import RUN_LOG_FILE, process_output_to, run_log, write_header

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
_NOTEBOOK_PATTERN = re.compile(r"^\d\d_.+\.ipynb$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class CellError:
    """Where and how a notebook failed."""

    cell_index: int
    """Index (from 0) of the failing cell in the source notebook, as Jupyter shows it (-1: not a cell
    error). The executed copy has one more cell, papermill's injected parameters."""
    ename: str
    evalue: str
    traceback: str
    source: str = ""


@dataclass
class NotebookResult:
    """The outcome of one notebook in one suite run."""

    name: str
    executed: Path
    out_dir: Path
    seconds: float
    error: CellError | None = None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    comparisons: list[baselines.Comparison] = field(default_factory=list)
    stopped: str | None = None
    """Set when the notebook stopped as asked (``dry_run``): what it reported; no metric is judged."""
    unjudged: str | None = None
    """Set when the notebook ran with parameters of its own (``--param``): why its metrics, shown with the
    status ``info``, are not judged against the baseline, which holds the profile's defaults."""

    @property
    def failed(self) -> bool:
        """True if the notebook raised or a metric regressed or went missing."""
        return self.error is not None or any(c.failed for c in self.comparisons)

    @property
    def key_figure(self) -> Path | None:
        path = self.out_dir / KEY_FIGURE_FILE
        return path if path.is_file() else None


@dataclass
class SuiteResult:
    """A whole suite run: its folder, profile and per-notebook results."""

    run_dir: Path
    profile: str
    started: datetime
    results: list[NotebookResult] = field(default_factory=list)
    baseline_updated: Path | None = None
    log_file: Path | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    """The ``--param`` values every notebook ran with (empty: the profile's defaults)."""
    """``run.log``: what the kernels and libraries printed (``None`` when verbose: it went to the screen)."""

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.results)


def discover_notebooks(folder: Path = NOTEBOOK_DIR, only: list[str] | None = None) -> list[Path]:
    """The suite's notebooks (``NN_name.ipynb``) in order; ``only`` keeps names starting with a prefix."""
    found = sorted(p for p in folder.glob("*.ipynb") if _NOTEBOOK_PATTERN.match(p.name))
    if only:
        found = [p for p in found if any(p.stem.startswith(prefix) for prefix in only)]
        if not found:
            raise ValueError(f"no notebook in {folder} matches --only {' '.join(only)}")
    return found


def _source_index(executed: Path, executed_index: int) -> int:
    """Map a cell index of papermill's executed copy back to the source notebook."""
    import nbformat  # slow to import (~1 s): only a failed notebook's report needs it

    try:
        cells = nbformat.read(executed, as_version=4).cells
    except (OSError, ValueError):
        return executed_index
    # the cells as they ran: without the error banners papermill inserts into the saved copy afterwards
    cells = [c for c in cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
    injected = [i for i, c in enumerate(cells) if "injected-parameters" in c.metadata.get("tags", [])]
    return executed_index - 1 if injected and injected[0] < executed_index else executed_index


def _cell_error(exc: Exception, executed: Path) -> CellError:
    import papermill  # slow to import (~1 s, Jupyter's client): only running notebooks needs it

    if isinstance(exc, papermill.PapermillExecutionError):
        tb = _ANSI.sub("", "\n".join(exc.traceback or []))
        index = _source_index(executed, exc.cell_index)
        return CellError(index, exc.ename, str(exc.evalue), tb, exc.source or "")
    return CellError(-1, type(exc).__name__, str(exc), "")


def run_notebook(
    source: Path,
    run_dir: Path,
    profile: str,
    kernel_name: str = "python3",
    cell_timeout: int | None = None,
    parameters: dict[str, Any] | None = None,
    log_stream: TextIO | None = None,
    executed: Path | None = None,
) -> NotebookResult:
    """Execute one notebook into ``run_dir`` and collect its metrics; never raises for notebook errors.

    ``parameters`` are injected besides ``profile`` and ``output_root`` (e.g. ``dry_run``, ``dataset``).
    A notebook that stops with :class:`~.notebook.DryRunStop` (asked for a dry run) is not a failure.
    ``log_stream``: a file that gets the notebook's printed output and its kernel's stdout and stderr
    (``None``: they go where they always went, the kernel's to this process's console).
    ``executed``: where papermill writes the executed copy (``None``: ``run_dir/<source name>``).
    """
    import papermill  # slow to import (~1 s, Jupyter's client): only running notebooks needs it

    executed = executed or run_dir / source.name
    out_dir = run_dir / source.stem
    started = time.perf_counter()
    error = None
    try:
        with process_output_to(log_stream) if log_stream is not None else nullcontext():
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters={**(parameters or {}), "profile": profile, "output_root": str(run_dir)},
                kernel_name=kernel_name,
                language="python",
                cwd=str(source.parent),
                progress_bar=False,
                log_output=False,
                stdout_file=log_stream,
                stderr_file=log_stream,
                execution_timeout=cell_timeout,
            )
    except Exception as exc:  # a failed notebook is a result to report, not a reason to stop the suite
        error = _cell_error(exc, executed)
    stopped = None
    if error is not None and error.ename == DryRunStop.__name__:
        stopped, error = error.evalue, None
    result = NotebookResult(source.stem, executed, out_dir, time.perf_counter() - started, error)
    result.stopped = stopped
    metrics_file = out_dir / METRICS_FILE
    if metrics_file.is_file():
        result.metrics = json.loads(metrics_file.read_text()).get("metrics", {})
    return result


def _describe(result: NotebookResult) -> str:
    if result.stopped is not None:
        return f"stopped before training as asked (dry run) in {result.seconds:.1f} s: {result.stopped[:300]}"
    if result.error is not None:
        where = f"cell {result.error.cell_index}" if result.error.cell_index >= 0 else "kernel"
        return f"FAILED at {where}: {result.error.ename}: {result.error.evalue.splitlines()[0][:200]}"
    bad = [c.name for c in result.comparisons if c.failed]
    status = f"REGRESSED ({', '.join(bad)})" if bad else "ok"
    if result.unjudged is not None:
        status = f"ran, not judged against the baseline ({result.unjudged.split(';')[0]})"
    return f"{status} in {result.seconds:.1f} s, {len(result.metrics)} metrics"


def run_suite(
    profile: str = "cpu",
    *,
    notebooks_dir: Path = NOTEBOOK_DIR,
    only: list[str] | None = None,
    runs_root: Path | None = None,
    baseline_dir: Path = baselines.BASELINE_DIR,
    update_baseline: bool = False,
    kernel_name: str = "python3",
    cell_timeout: int | None = None,
    log: Callable[[str], None] = print,
    into: Path | None = None,
    parameters: dict[str, Any] | None = None,
    verbose: bool = False,
    announce: Callable[[str], None] | None = None,
) -> SuiteResult:
    """Execute the suite into ``<runs_root>/<timestamp>-<profile>/`` and compare with the baseline.

    Writes the executed notebooks, each notebook's output folder, ``report.md`` and ``report.html``.
    With ``update_baseline`` the fresh metrics of notebooks that ran without error replace theirs
    in ``baselines/<profile>.json``.

    ``parameters``: papermill parameters for every notebook besides ``profile`` / ``output_root``. A notebook
    run with them is not judged against the baseline (its metrics are shown, marked ``info``): the baseline
    holds the profile's defaults, and e.g. another ``dataset`` or ``max_steps`` gives other numbers. For the
    same reason ``update_baseline`` refuses them.

    ``log`` gets one line per notebook, once it has run (name, outcome, seconds, number of metrics).
    Everything else (the notebooks' printed output, the kernels' stderr, Python logging and warnings)
    goes to ``<run folder>/run.log``; with ``verbose`` nothing is routed there, and ``log`` also gets a
    line as each notebook starts. ``announce`` (not verbose) gets that starting line instead, e.g. to
    show it on a terminal until the notebook's line replaces it.

    ``into``: run in this existing run folder instead (made by an earlier run of the same profile), e.g.
    to rerun notebook 05 on the models notebooks 01-04 left there; the notebooks run now replace their
    earlier outputs, the others' stay, the report covers the notebooks run now and ``latest-<profile>``
    is not moved. A rerun notebook starts from an empty output folder (its trainers would otherwise
    resume the earlier run's checkpoints, trained on whatever the upstream notebooks left then): the
    earlier folder is kept as ``<notebook>.previous`` until the rerun succeeds, and stays there if it fails
    (a later rerun discards the failed attempt's folder, not the ``.previous``). The executed copy of a rerun
    notebook is written as ``<notebook>.running.ipynb`` and replaces ``<notebook>.ipynb`` once the notebook
    has run or failed (a killed rerun leaves the earlier copy in place). A notebook that stopped for a dry
    run leaves the earlier outputs and executed copy as they were: its own executed copy (where it stopped,
    and why) is kept as ``<notebook>.dry_run.ipynb``, the file the report names, and the next dry run of
    that notebook replaces it.
    """
    profile = get_profile(profile).name
    if update_baseline and parameters:
        raise ValueError(
            "--update-baseline records the profile's defaults; this run sets "
            + describe_parameters(parameters)
        )
    notebooks = discover_notebooks(notebooks_dir, only)
    started = datetime.now(UTC)
    runs_root = runs_root or outputs_root() / "runs"
    run_dir = (
        _existing_run_dir(into, profile)
        if into
        else _new_run_dir(runs_root, f"{started:%Y%m%d-%H%M%S}-{profile}")
    )
    suite = SuiteResult(run_dir, profile, started, log_file=None if verbose else run_dir / RUN_LOG_FILE,
                        parameters=dict(parameters or {}))  # fmt: skip
    stored = baselines.load_baseline(profile, baseline_dir)
    with run_log(suite.log_file) if suite.log_file is not None else nullcontext() as stream:
        for i, source in enumerate(notebooks, 1):
            starting = f"[{i}/{len(notebooks)}] {source.stem} ({profile}) ..."
            if verbose:
                log(starting)
            elif announce is not None:
                announce(starting)
            if stream is not None:
                write_header(stream, starting)
            _run_one(suite, source, stored, into is not None, kernel_name, cell_timeout, parameters, stream)
            line = f"[{i}/{len(notebooks)}] {source.stem}: {_describe(suite.results[-1])}"
            if stream is not None:
                stream.write(line + "\n")
            log(line)
    if update_baseline:
        fresh = {r.name: r.metrics for r in suite.results if r.error is None and r.stopped is None}
        suite.baseline_updated = baselines.save_baseline(
            profile, baselines.updated_baseline(stored, fresh), baseline_dir
        )
    if into is None:
        _point_latest(runs_root, run_dir, profile)
    return suite


def _run_one(
    suite: SuiteResult,
    source: Path,
    stored: dict,
    rerun: bool,
    kernel_name: str,
    cell_timeout: int | None,
    parameters: dict[str, Any] | None,
    log_stream: TextIO | None,
) -> None:
    """Run one notebook of ``suite`` (in place of its earlier outputs when ``rerun``), judge its
    metrics against ``stored`` and append the result."""
    run_dir = suite.run_dir
    previous = _set_aside(run_dir / source.stem) if rerun else None
    # a rerun's executed copy takes the earlier one's place only if the notebook did not stop for a dry run
    executed = run_dir / (f"{source.stem}.running.ipynb" if rerun else source.name)
    result = run_notebook(
        source, run_dir, suite.profile, kernel_name, cell_timeout, parameters, log_stream, executed
    )
    if rerun:
        kept = run_dir / (f"{source.stem}.dry_run.ipynb" if result.stopped is not None else source.name)
        if executed.exists():  # papermill may not have written it (e.g. the kernel did not start)
            executed.replace(kept)
        result.executed = kept
    if previous is not None and result.stopped is not None:  # a dry run changes nothing there
        shutil.rmtree(run_dir / source.stem, ignore_errors=True)
        previous.rename(run_dir / source.stem)
    elif previous is not None and result.error is None:
        shutil.rmtree(previous)
    if result.stopped is None and parameters:
        result.unjudged = (
            f"run with {describe_parameters(parameters)}; the baseline holds the profile's defaults"
        )
        shown = baselines.compare(result.metrics, {})
        result.comparisons = [dataclasses.replace(c, status="info") for c in shown]
    elif result.stopped is None:
        result.comparisons = baselines.compare(result.metrics, stored.get(result.name, {}))
    suite.results.append(result)


def describe_parameters(parameters: dict[str, Any]) -> str:
    """``{"dataset": "d", "max_steps": 5}`` → ``dataset=d, max_steps=5``."""
    return ", ".join(f"{name}={value}" for name, value in parameters.items())


def _set_aside(out_dir: Path) -> Path | None:
    """Rename a notebook's earlier output folder to ``<name>.previous`` and return that.

    If a ``.previous`` is already there, an earlier rerun failed or was killed: what it left in
    ``out_dir`` is discarded and the ``.previous`` (the last complete outputs) is kept.
    """
    previous = out_dir.with_name(out_dir.name + ".previous")
    if previous.exists():
        if out_dir.exists():
            shutil.rmtree(out_dir)
        return previous
    if not out_dir.exists():
        return None
    out_dir.rename(previous)
    return previous


def _existing_run_dir(folder: Path, profile: str) -> Path:
    """``folder`` checked as a run folder of ``profile`` to continue in."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ValueError(f"--into {folder}: no such run folder")
    made_by = re.fullmatch(r"\d{8}-\d{6}-(\w+?)(\.\d+)?", folder.name)
    if made_by and made_by.group(1) != profile:
        raise ValueError(f"--into {folder}: a {made_by.group(1)!r} run; this run's profile is {profile!r}")
    return folder


def _new_run_dir(runs_root: Path, stem: str) -> Path:
    """Create ``<runs_root>/<stem>`` (``<stem>.2``, ``.3`` … when runs start in the same second)."""
    runs_root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        run_dir = runs_root / (stem if n == 1 else f"{stem}.{n}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder under {runs_root}")


def _point_latest(runs_root: Path, run_dir: Path, profile: str) -> None:
    """Keep ``<runs_root>/latest-<profile>`` pointing at the newest run (a symlink where possible)."""
    link = runs_root / f"latest-{profile}"
    if link.is_symlink() or link.is_file():
        link.unlink()
    try:
        link.symlink_to(run_dir.name, target_is_directory=True)
    except OSError:
        link.write_text(run_dir.name + "\n")
