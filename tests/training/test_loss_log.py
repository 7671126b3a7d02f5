"""The trainers' ``log.csv``: written row by row, truncated on resume, read back as columns."""

from __future__ import annotations

import numpy as np
import pytest

from aniportrait_lib.training.loss_log import LOG_COLUMNS, append_loss_row, read_loss_log, truncate_loss_log


def test_rows_read_back_as_columns_and_truncate_on_resume(tmp_path):
    path = tmp_path / "run" / "log.csv"
    for step in (1, 2, 3):
        append_loss_row(path, step, loss=1.0 / step, lr=1e-4, seconds=0.5 * step)
    steps, losses, lrs, seconds = read_loss_log(path)
    assert steps.tolist() == [1, 2, 3] and steps.dtype == np.int64
    np.testing.assert_allclose(losses, [1.0, 0.5, 1 / 3], rtol=1e-5)  # written with 6 significant digits
    assert lrs.tolist() == [1e-4] * 3 and read_loss_log(path).seconds.sum() == pytest.approx(3.0)
    truncate_loss_log(path, 2)
    assert read_loss_log(path).steps.tolist() == [1, 2]


def test_a_missing_log_is_empty_and_a_broken_one_is_named(tmp_path):
    empty = read_loss_log(tmp_path / "nothing.csv")
    assert all(len(column) == 0 for column in empty) and empty.steps.dtype == np.int64
    header_only = tmp_path / "header.csv"
    header_only.write_text(",".join(LOG_COLUMNS) + "\n")
    assert len(read_loss_log(header_only).losses) == 0
    other = tmp_path / "other.csv"
    other.write_text("step,loss\n1,0.5\n")
    with pytest.raises(ValueError, match=r"other\.csv is not a loss log: it has no column lr, seconds"):
        read_loss_log(other)
    broken = tmp_path / "broken.csv"
    broken.write_text("step,loss,lr,seconds\n1,0.5,1e-4,0.1\n2,nan?,1e-4,0.1\n")
    with pytest.raises(ValueError, match=r"broken\.csv line 3"):
        read_loss_log(broken)
