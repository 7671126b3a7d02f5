"""``python -m aniportrait_lib.runner``: run the notebook suite and write its report.

Examples::

    python -m aniportrait_lib.runner                     # every notebook, cpu profile
    python -m aniportrait_lib.runner --profile quick     # the CI smoke run
    python -m aniportrait_lib.runner --only 01 03        # notebooks 01 and 03
    python -m aniportrait_lib.runner --update-baseline   # accept this run's metrics as the new baseline
    python -m aniportrait_lib.runner --only 05 --into outputs/runs/latest-cpu   # rerun 05 in that run
    python -m aniportrait_lib.runner --profile gpu --param dry_run=true         # up to each training loop
    python -m aniportrait_lib.runner --only 03 --param dataset=outputs/my_dataset   # train on your videos
    python -m aniportrait_lib.runner --history --profile cpu --last 5   # metric trends; runs nothing
    python -m aniportrait_lib.runner --history-dir ~/aniportrait-history  # keep the history elsewhere

The console shows one line per notebook and, at the end, the report's path (and for each failed
notebook where its executed copy is); what the kernels and libraries print goes to ``run.log`` in the
run folder. ``--verbose`` shows it all on the console instead.

Each run also writes one small file to the history (``outputs/history/<profile>/``, or
``<history dir>/<profile>/`` with ``--history-dir``), and the report shows each metric's last values as
a sparkline beside its baseline; ``--history`` prints those trends without running anything.

Exit status: 0 when every notebook ran and no metric crossed its tolerance, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from aniportrait_lib.config import DEVICE_CHOICES, DTYPE_CHOICES
from aniportrait_lib.profiles import DEFAULT_PROFILE, PROFILE_NAMES
from aniportrait_lib.runner import history as histories
from aniportrait_lib.runner.baseline import load_baseline
from aniportrait_lib.runner.report import write_reports
from aniportrait_lib.runner.suite import NOTEBOOK_DIR, SuiteResult, run_suite


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aniportrait_lib.runner",
        description="Run the AniPortrait Kit notebook suite headlessly.",
    )
    parser.add_argument(
        "--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILE_NAMES), help="run profile"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NN", help="run only notebooks whose name starts with these"
    )
    parser.add_argument(
        "--update-baseline", action="store_true", help="store this run's metrics as the baseline"
    )
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOK_DIR, help="folder of NN_*.ipynb notebooks")
    parser.add_argument(
        "--runs-root", type=Path, default=None, help="where run folders go (default outputs/runs)"
    )
    parser.add_argument(
        "--kernel", default="python3", help="Jupyter kernel name (default python3: this Python)"
    )
    parser.add_argument("--cell-timeout", type=int, default=None, help="seconds a single cell may take")
    parser.add_argument(
        "--into", type=Path, default=None, metavar="RUN_DIR",
        help="run in this existing run folder (same profile), on what its other notebooks left there",
    )  # fmt: skip
    parser.add_argument(
        "--device", choices=DEVICE_CHOICES, default=None,
        help="where the notebooks' networks run (default: the machine's best; 'cpu' runs the gpu profile on "
        "the CPU on purpose, e.g. for a dry run). Sets ANIPORTRAIT_DEVICE for the kernels",
    )  # fmt: skip
    parser.add_argument(
        "--dtype", choices=DTYPE_CHOICES, default=None, help="network precision (ANIPORTRAIT_DTYPE)"
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="a notebook parameter for every notebook (value read as YAML), e.g. dry_run=true, max_steps=200",
    )  # fmt: skip
    parser.add_argument(
        "--verbose", action="store_true",
        help="show the kernels' and libraries' output on the console (default: the run folder's run.log)",
    )  # fmt: skip
    parser.add_argument(
        "--history", action="store_true",
        help="print the profile's metric trends (last values, sparkline, baseline) and exit; runs nothing",
    )  # fmt: skip
    parser.add_argument(
        "--history-dir", type=Path, default=None, metavar="DIR",
        help="where each run's record goes, under DIR/<profile>/ (default: history/ beside the runs root, "
        "outputs/history); point scheduled runs with a fresh outputs/ at a folder that stays",
    )  # fmt: skip
    parser.add_argument(
        "--last", type=_positive, default=histories.DEFAULT_LAST, metavar="N",
        help=f"how many runs a trend shows (default {histories.DEFAULT_LAST})",
    )  # fmt: skip
    return parser


def _positive(text: str) -> int:
    """``--last``'s value: a whole number of runs, at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of runs >= 1, got {text!r}")
    return value


def parse_params(items: list[str]) -> dict:
    """``["dry_run=true", "dataset=data/x"]`` → ``{"dry_run": True, "dataset": "data/x"}``."""
    params = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise ValueError(f"--param {item!r}: expected NAME=VALUE, e.g. dry_run=true")
        params[name.strip()] = yaml.safe_load(text)
    return params


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    history_dir = args.history_dir or histories.default_history_dir(args.runs_root)
    if args.history:
        return print_history(args.profile, history_dir, args.last)
    for variable, value in (("ANIPORTRAIT_DEVICE", args.device), ("ANIPORTRAIT_DTYPE", args.dtype)):
        if value is not None:
            os.environ[variable] = value  # the notebook kernels inherit this environment
    try:
        parameters = parse_params(args.param)
        suite = run_suite(
            args.profile,
            notebooks_dir=args.notebooks,
            only=args.only,
            runs_root=args.runs_root,
            update_baseline=args.update_baseline,
            kernel_name=args.kernel,
            cell_timeout=args.cell_timeout,
            into=args.into,
            parameters=parameters,
            verbose=args.verbose,
            log=_finish_line,
            announce=_announce if sys.stdout.isatty() else None,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # a run with notebook parameters is not comparable with the others: kept out of the history's trends
    history = None if suite.parameters else record_history(suite, history_dir)
    md, _ = write_reports(suite, history, args.last)
    for line in summary_lines(suite, md):
        print(line)
    return 1 if suite.failed else 0


def print_history(profile: str, history_dir: Path, last: int) -> int:
    """``--history``: the trend table on stdout, each unreadable history file named on stderr."""
    try:
        baseline = load_baseline(profile)
    except ValueError as err:
        print(f"warning: {err}; trends shown without the baseline", file=sys.stderr)
        baseline = {}
    history = histories.load_history(history_dir, profile)
    for line in history.skipped:
        print(f"warning: {line}", file=sys.stderr)
    print(histories.format_history(history, baseline, last))
    return 0


def record_history(suite: SuiteResult, history_dir: Path) -> histories.History | None:
    """Add this run's record to the history and read the history back for the report's trends.

    Never fails the run: a history that cannot be written is reported on stderr and the report is
    written without trends; unreadable older files are named on stderr (and in the report) and skipped.
    """
    try:
        written = histories.write_record(suite, history_dir)
    except OSError as err:
        print(f"warning: run history not recorded in {history_dir}: {err}", file=sys.stderr)
        return None
    history = histories.load_history(history_dir, suite.profile, current=written)
    for line in history.skipped:
        print(f"warning: {line}", file=sys.stderr)
    return history


def _announce(text: str) -> None:
    """Show which notebook is running on a terminal, without a newline: its result line replaces it."""
    print(text, end="", flush=True)


def _finish_line(text: str) -> None:
    """A notebook's line; on a terminal it first erases what :func:`_announce` showed."""
    print("\r\x1b[K" + text if sys.stdout.isatty() else text, flush=True)


def summary_lines(suite: SuiteResult, report: Path) -> list[str]:
    """What the console shows after the notebooks' lines: for each failed notebook one line with its
    executed copy and the log, a line for an updated baseline, and last the verdict with the report."""
    log = f"; log: {suite.log_file}" if suite.log_file is not None else ""
    lines = [
        f"FAILED {r.name}: executed notebook {r.executed}{log}" for r in suite.results if r.failed
    ]  # fmt: skip
    if suite.baseline_updated:
        lines.append(f"baseline updated: {suite.baseline_updated} (review and commit it)")
    lines.append(f"suite {'FAILED' if suite.failed else 'passed'}; report: {report} (and .html)")
    return lines


if __name__ == "__main__":
    sys.exit(main())
