"""Where a suite run's output goes: one line per notebook on the console, everything else in ``run.log``.

A notebook run makes noise from three places, and each is routed with the mechanism made for it:

- the notebook's own printed output (cell streams: tqdm bars, libraries' load reports printed from
  the kernel): papermill's ``stdout_file`` / ``stderr_file`` write them to the log;
- the kernel process itself (the ``Kernel is running over TCP without encryption`` warning, native
  libraries' logs such as TF-lite's written straight to file descriptor 2): the kernel is a child
  process and inherits the runner's file descriptors 1 and 2, so they point at the log while it runs;
- the runner's Python ``logging`` (papermill's ``Executing notebook with kernel`` lines and warnings)
  and ``warnings.warn``: a handler on the root logger and :func:`logging.captureWarnings`.

Nothing is dropped: ``run.log`` in the run folder holds it all, each notebook under a header line.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

RUN_LOG_FILE = "run.log"


@contextmanager
def run_log(path: Path) -> Iterator[TextIO]:
    """Open the run's log for appending (a continued run adds to it) and send Python logging at INFO
    and above, and warnings, there until the block ends. Yields the log's line-buffered text stream."""
    with open(path, "a", buffering=1, encoding="utf-8") as stream:
        stream.write(f"=== suite run started {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC ===\n")
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        level = root.level
        root.addHandler(handler)  # with a handler present, logging's last-resort stderr printer stays silent
        root.setLevel(logging.INFO)
        with warnings.catch_warnings():  # restores warnings.showwarning, which captureWarnings replaces
            logging.captureWarnings(True)
            try:
                yield stream
            finally:
                logging.captureWarnings(False)
                root.removeHandler(handler)
                root.setLevel(level)


@contextmanager
def process_output_to(stream: TextIO) -> Iterator[None]:
    """Point this process's file descriptors 1 and 2 at ``stream``'s file until the block ends.

    A kernel started inside the block inherits them, so what it writes outside the notebook's
    outputs goes to the log. Restored afterwards, also when the block raises.
    """
    for s in (sys.stdout, sys.stderr, stream):
        s.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        for fd in saved:
            os.dup2(stream.fileno(), fd)
        yield
    finally:
        for s in (sys.stdout, sys.stderr):
            s.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


def write_header(stream: TextIO, text: str) -> None:
    """A line in the log that says whose output follows."""
    stream.write(f"\n===== {text} ({datetime.now(UTC):%H:%M:%S} UTC) =====\n")
