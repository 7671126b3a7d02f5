"""Metric trends over suite runs: the history files a run leaves, the report's sparklines beside the
baseline comparison, ``runner --history``, and what happens with unreadable files and missing metrics.
No kernel is started: the histories and suite results are built here."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aniportrait_lib.runner import __main__ as cli
from aniportrait_lib.runner import history as histories
from aniportrait_lib.runner.baseline import compare
from aniportrait_lib.runner.report import to_html, to_markdown
from aniportrait_lib.runner.suite import NotebookResult, SuiteResult

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)


def _write_run(
    folder: Path, day: int, notebooks: dict[str, dict[str, float]], status: str = "passed"
) -> Path:
    """A history file as an earlier run would have left it, ``day`` days after ``T0``."""
    started = T0 + timedelta(days=day)
    record = {
        "format": 1,
        "run": f"{started:%Y%m%d-%H%M%S}-quick",
        "started": started.isoformat(),
        "profile": "quick",
        "commit": f"c{day:06d}",
        "notebooks": {
            name: {"status": status, "seconds": 10.0 + day, "metrics": metrics}
            for name, metrics in notebooks.items()
        },
    }
    path = folder / f"{started:%Y%m%d-%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def _suite(tmp_path: Path, day: int, metrics: dict[str, float]) -> SuiteResult:
    """A finished run of one notebook, ``00_tour``, judged against a baseline of ``rising`` = 5."""
    started = T0 + timedelta(days=day)
    run_dir = tmp_path / "runs" / f"{started:%Y%m%d-%H%M%S}-quick"
    run_dir.mkdir(parents=True)
    logged = {name: {"value": v, "direction": "higher"} for name, v in metrics.items()}
    result = NotebookResult("00_tour", run_dir / "00_tour.ipynb", run_dir / "00_tour", 12.5, metrics=logged)
    result.comparisons = compare(logged, {"rising": {"value": 5.0, "direction": "higher", "tolerance": 1.0}})
    return SuiteResult(run_dir, "quick", started, results=[result])


def _rows(text: str) -> dict[str, list[str]]:
    """A Markdown text's table rows by their first cell: the cells, stripped."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()]
    return {cells[0]: cells for cells in rows if len(cells) > 1}


@pytest.fixture()
def five_earlier_runs(tmp_path) -> Path:
    """Five earlier runs: ``rising`` goes 1..5, ``flat`` stays 0.5, ``newer`` appears in the fourth."""
    folder = tmp_path / "history"
    for day in range(5):
        metrics = {"rising": float(day + 1), "flat": 0.5}
        if day >= 3:
            metrics["newer"] = 10.0 * day
        _write_run(folder / "quick", day, {"00_tour": metrics})
    return folder


def test_sparkline_scales_between_min_and_max():
    assert histories.sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert histories.sparkline([8, 1]) == "█▁"
    assert histories.sparkline([0.3] * 6) == "▄▄▄▄▄▄"
    assert histories.sparkline([None, 1.0, None, 3.0]) == "·▁·█"
    assert histories.sparkline([None, None]) == "··"


def test_report_shows_each_metrics_trend_with_this_run_marked(five_earlier_runs, tmp_path):
    suite = _suite(tmp_path, 5, {"rising": 6.0, "flat": 0.5, "newer": 60.0})
    written = histories.write_record(suite, five_earlier_runs, commit="abc1234")
    history = histories.load_history(five_earlier_runs, "quick", current=written)
    assert [r.commit for r in history.records] == [f"c{d:06d}" for d in range(5)] + ["abc1234"]
    assert history.current == written.stem

    md = to_markdown(suite, history, last=10)
    rows = _rows(md)
    assert rows["metric"][:6] == ["metric", "value", "baseline", "change", "status", "trend (last 10 runs)"]
    # rising values give a rising sparkline, the current run last and in brackets; beside the baseline
    assert rows["rising"][1:6] == ["6", "5", "+1", "pass", "`▁▂▄▅▇[█]` 1–6"]
    assert rows["flat"][5] == "`▄▄▄▄▄[▄]` 0.5–0.5"
    # a metric the older runs did not record: a gap for each of them
    assert rows["newer"][5] == "`···▁▃[█]` 30–60"
    assert "6 runs recorded" in md and str(five_earlier_runs / "quick") in md

    page = to_html(suite, history, last=10)
    assert "▁▂▄▅▇<b class='now'>█</b>" in page and "title='1 2 3 4 5 6'" in page


def test_trend_keeps_only_the_last_n_runs_of_the_notebook(five_earlier_runs):
    _write_run(five_earlier_runs / "quick", 9, {"01_other": {"x": 1.0}})  # did not run 00_tour
    history = histories.load_history(five_earlier_runs, "quick")
    assert histories.trend(history, "00_tour", "rising", last=3).values == [3.0, 4.0, 5.0]
    assert histories.trend(history, "00_tour", "rising", last=3).current is None
    assert histories.trend(history, "01_other", "x").values == [1.0]
    with pytest.raises(ValueError, match="at least one run"):
        histories.trend(history, "00_tour", "rising", last=0)


def test_history_cli_prints_the_trend_table_and_runs_nothing(five_earlier_runs, capsys, monkeypatch):
    monkeypatch.setattr(cli, "run_suite", lambda *a, **k: pytest.fail("--history must not run notebooks"))
    monkeypatch.setattr(cli, "load_baseline", lambda profile: {"00_tour": {"rising": {"value": 4.5}}})
    argv = ["--history", "--profile", "quick", "--history-dir", str(five_earlier_runs), "--last", "4"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "5 runs recorded" in out and "## 00_tour: last 4 runs" in out
    rows = _rows(out)
    assert rows["metric"] == ["metric", "last values (oldest → newest)", "trend", "min", "max", "baseline"]
    assert rows["rising"] == ["rising", "2 3 4 5", "`▁▃▆█`", "2", "5", "4.5"]
    assert rows["flat"] == ["flat", "0.5 0.5 0.5 0.5", "`▄▄▄▄`", "0.5", "0.5", "–"]
    assert rows["newer"] == ["newer", "– – 30 40", "`··▁█`", "30", "40", "–"]
    assert rows["(run time, s)"][1] == "11 12 13 14"


def test_a_corrupt_history_file_is_named_once_and_skipped(five_earlier_runs, capsys):
    bad = five_earlier_runs / "quick" / "20261103-030000.json"
    bad.write_text('{"notebooks": {"00_tour": ')  # a run killed while writing without atomic writes
    (five_earlier_runs / "quick" / "20261109-000000.json").write_text("[1, 2]")
    assert cli.main(["--history", "--profile", "quick", "--history-dir", str(five_earlier_runs)]) == 0
    captured = capsys.readouterr()
    err_lines = captured.err.strip().splitlines()
    assert len(err_lines) == 2
    assert str(bad) in err_lines[0] and "not valid JSON" in err_lines[0] and "skipped" in err_lines[0]
    assert "not a run record" in err_lines[1]
    assert "4 runs recorded" in captured.out and "`▁▃▆█`" in captured.out  # 1 2 4 5: the third is gone


def test_a_run_records_its_history_and_its_report_shows_the_trends(five_earlier_runs, tmp_path, monkeypatch):
    """The whole CLI path with the notebooks' execution replaced: record, read back, report."""
    suite = _suite(tmp_path, 5, {"rising": 6.0, "flat": 0.5})
    monkeypatch.setattr(cli, "run_suite", lambda *a, **k: suite)
    argv = [
        "--profile",
        "quick",
        "--history-dir",
        str(five_earlier_runs),
        "--runs-root",
        str(tmp_path / "runs"),
    ]
    assert cli.main(argv) == 0
    written = five_earlier_runs / "quick" / f"{suite.started:%Y%m%d-%H%M%S}.json"
    record = json.loads(written.read_text())
    assert record["profile"] == "quick" and record["run"] == suite.run_dir.name
    assert record["notebooks"] == {
        "00_tour": {"status": "passed", "seconds": 12.5, "metrics": {"rising": 6.0, "flat": 0.5}}
    }
    rows = _rows((suite.run_dir / "report.md").read_text())
    assert rows["rising"][5] == "`▁▂▄▅▇[█]` 1–6" and rows["flat"][5] == "`▄▄▄▄▄[▄]` 0.5–0.5"
    assert "newer" not in rows  # not measured in this run: no comparison row, so no trend either


def test_default_history_dir_sits_beside_the_runs_root(tmp_path):
    assert histories.default_history_dir(tmp_path / "runs") == tmp_path / "history"


def test_runs_started_in_the_same_second_keep_separate_files(tmp_path):
    suite = _suite(tmp_path, 0, {"rising": 1.0})
    first = histories.write_record(suite, tmp_path / "history", commit="x")
    second = histories.write_record(suite, tmp_path / "history", commit="x")
    assert first != second and second.name.endswith(".2.json")
    assert len(histories.load_history(tmp_path / "history", "quick").records) == 2


def test_an_unwritable_history_does_not_fail_the_run(tmp_path, capsys):
    suite = _suite(tmp_path, 0, {"rising": 1.0})
    blocker = tmp_path / "history"
    blocker.write_text("a file where the history folder should be")
    assert cli.record_history(suite, blocker) is None
    assert "run history not recorded" in capsys.readouterr().err
