"""The trainers' CSV loss log (``step, loss, lr, seconds``), shared by every trainer of the kit.

Rows are appended as training goes; on resume, rows written after the restored checkpoint (a killed
run may have logged past it) are dropped, atomically, so the log always matches the weights. This module
is the format's only writer and only reader: plots and studies read a log with :func:`read_loss_log`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import NamedTuple

import numpy as np

from aniportrait_lib.atomic import write_text

LOG_COLUMNS = ("step", "loss", "lr", "seconds")


class LossLog(NamedTuple):
    """A ``log.csv`` as columns, one entry per logged optimizer step (unpacks in the file's column order)."""

    steps: np.ndarray  # (S,) int64: the optimizer step each row was logged after
    losses: np.ndarray  # (S,) float64: that step's training loss
    lrs: np.ndarray  # (S,) float64: the learning rate of that step
    seconds: np.ndarray  # (S,) float64: wall time of that step; ``seconds.sum()`` is the training time


def append_loss_row(path: Path, step: int, loss: float, lr: float, seconds: float) -> None:
    """Append one row (writing the header first for a new file)."""
    new_file = not path.is_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as file:
        writer = csv.writer(file)
        if new_file:
            writer.writerow(LOG_COLUMNS)
        writer.writerow([step, f"{loss:.6g}", f"{lr:.6g}", f"{seconds:.3f}"])


def truncate_loss_log(path: Path, step: int) -> None:
    """Keep only the rows up to ``step`` (no-op where there is no log yet)."""
    if not path.is_file():
        return
    with path.open(newline="") as file:
        rows = [row for row in csv.DictReader(file) if int(row["step"]) <= step]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=LOG_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, text.getvalue())


def read_loss_log(path: str | Path) -> LossLog:
    """Read a trainer's ``log.csv`` → :class:`LossLog`.

    A missing file reads as an empty log (a trainer that has not finished a step yet).

    Raises:
        ValueError: the file lacks one of :data:`LOG_COLUMNS`, or a value is not a number (the message
            names the file and the line).
    """
    path = Path(path)
    rows = []
    if path.is_file():
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            missing = [c for c in LOG_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path} is not a loss log: it has no column {', '.join(missing)}")
            for row in reader:
                try:
                    rows.append(
                        (int(row["step"]), float(row["loss"]), float(row["lr"]), float(row["seconds"]))
                    )
                except (TypeError, ValueError) as err:
                    raise ValueError(f"{path} line {reader.line_num}: {err}") from err
    steps, losses, lrs, seconds = zip(*rows, strict=True) if rows else ((), (), (), ())
    return LossLog(
        np.array(steps, np.int64), np.array(losses, float), np.array(lrs, float), np.array(seconds, float)
    )
