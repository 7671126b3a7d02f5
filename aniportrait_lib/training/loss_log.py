"""The trainers' CSV loss log (``step, loss, lr, seconds``), shared by every trainer of the kit.

Rows are appended as training goes; on resume, rows written after the restored checkpoint (a killed
run may have logged past it) are dropped, atomically, so the log always matches the weights.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from aniportrait_lib.atomic import write_text

LOG_COLUMNS = ("step", "loss", "lr", "seconds")


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
