"""The suite's report: one table per notebook (metric, value, baseline, change, pass/fail and, given
the run history, each metric's trend over the last runs), its key figure, and for a failed notebook the
failing cell with its error. Written as Markdown (readable in a terminal and on GitHub) and as a
self-contained HTML page (figures embedded)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from aniportrait_lib import atomic
from aniportrait_lib.runner.history import (
    DEFAULT_LAST,
    GAP,
    History,
    Trend,
    fmt,
    git_commit,
    trend,
    trend_cell,
)
from aniportrait_lib.runner.suite import NotebookResult, SuiteResult

_STATUS_MARK = {
    "ok": "pass",
    "improved": "pass (improved)",
    "regressed": "FAIL",
    "missing": "FAIL (missing)",
    "new": "new",
    "info": "info",
}


_HEADER = ["metric", "value", "baseline", "change", "status", "what it measures"]


def _header(history: History | None, last: int) -> list[str]:
    """The table's columns: with a history, the trend goes beside the baseline comparison."""
    return _HEADER if history is None else [*_HEADER[:5], f"trend (last {last} runs)", _HEADER[5]]


def _rows(result: NotebookResult, history: History | None, last: int) -> list[tuple[list[str], Trend | None]]:
    """Per metric: the comparison's cells (as in ``_HEADER``) and its trend (``None`` without a history)."""
    rows = []
    for c in result.comparisons:
        change = c.change
        unit = f" {c.unit}" if c.unit else ""
        cells = [
            c.name,
            fmt(c.value) + unit,
            fmt(c.baseline),
            "–" if change is None else f"{change:+.3g}",
            _STATUS_MARK.get(c.status, c.status),
            c.description,
        ]
        rows.append((cells, None if history is None else trend(history, result.name, c.name, last)))
    return rows


def _with_trend(cells: list[str], trend_text: str | None) -> list[str]:
    return cells if trend_text is None else [*cells[:5], trend_text, cells[5]]


def _history_lines(history: History | None, last: int) -> list[str]:
    """What the report says about the trends: where they come from, how to read them, skipped files."""
    if history is None:
        return []
    count = len(history.records)
    lines = [
        f"Trends: each metric's values in up to the last {last} runs of its notebook (oldest first), from "
        f"`{history.folder}` ({count} run{'s' * (count != 1)} recorded); `[ ]` marks this run, "
        f"`{GAP}` a run without the metric.",
        "",
    ]
    return lines + [f"- {line}" for line in history.skipped] + ([""] if history.skipped else [])


def _summary_line(suite: SuiteResult) -> str:
    failed = [r.name for r in suite.results if r.failed]
    verdict = "FAILED: " + ", ".join(failed) if failed else "all notebooks passed"
    started = f"{suite.started:%Y-%m-%d %H:%M:%S} UTC"
    return f"profile `{suite.profile}`, commit `{git_commit()}`, started {started} — {verdict}"


def _status(result: NotebookResult) -> str:
    """A notebook's outcome in the report's headings."""
    if result.failed:
        return "FAILED"
    if result.stopped is not None:
        return "stopped (dry run)"
    return "ran (not judged)" if result.unjudged is not None else "passed"


def _failure_text(result: NotebookResult) -> str:
    err = result.error
    where = f"cell {err.cell_index}" if err.cell_index >= 0 else "the kernel"
    return f"failed in {where}: {err.ename}: {err.evalue}"


def to_markdown(suite: SuiteResult, history: History | None = None, last: int = DEFAULT_LAST) -> str:
    """The report as Markdown; paths are relative to the run folder. With ``history`` (which should
    hold this run's record) each metric's row also shows its trend over the last ``last`` runs."""
    lines = ["# AniPortrait Kit — notebook suite report", "", _summary_line(suite), ""]
    lines += _history_lines(history, last)
    header = _header(history, last)
    for r in suite.results:
        lines += [f"## {r.name} — {_status(r)} ({r.seconds:.1f} s)", ""]
        if r.stopped is not None:
            lines += [f"Stopped before training, as asked: {r.stopped}", ""]
        if r.unjudged is not None:
            lines += [f"Metrics not judged against the baseline: {r.unjudged}.", ""]
        lines.append(f"Executed notebook: `{r.executed.name}`; outputs: `{r.out_dir.name}/`")
        lines.append("")
        if r.error is not None:
            lines += [f"**{_failure_text(r)}**", "", "```python", r.error.source.strip(), "```", ""]
            lines += ["```", r.error.traceback.strip()[-3000:], "```", ""]
        if r.comparisons:
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            for cells, t in _rows(r, history, last):
                row = _with_trend(
                    [cell.replace("|", "\\|") for cell in cells], None if t is None else trend_cell(t)
                )
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
        if r.key_figure is not None:
            lines += [f"![{r.name} key figure]({r.out_dir.name}/{r.key_figure.name})", ""]
    return "\n".join(lines)


def _trend_html(t: Trend) -> str:
    """The sparkline in monospace, this run's block in bold red, every value in the tooltip."""
    marks = t.sparkline(mark_current=False)
    cells = [f"<b class='now'>{m}</b>" if i == t.current else m for i, m in enumerate(marks)]
    title = html.escape(" ".join(fmt(v) for v in t.values), quote=True)
    span = "" if t.low is None else f" {fmt(t.low)}–{fmt(t.high)}"
    return f"<code title='{title}'>{''.join(cells)}</code>{span}"


def _table_html(rows: list[tuple[list[str], Trend | None]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for cells, t in rows:
        cls = "fail" if cells[4].startswith("FAIL") else ""
        tds = _with_trend(
            [f"<td>{html.escape(c)}</td>" for c in cells], None if t is None else f"<td>{_trend_html(t)}</td>"
        )
        body.append(f"<tr class='{cls}'>{''.join(tds)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _figure_html(path: Path | None) -> str:
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='key figure' src='data:image/png;base64,{data}'>"


def to_html(suite: SuiteResult, history: History | None = None, last: int = DEFAULT_LAST) -> str:
    """The report as one self-contained HTML page (trends as in :func:`to_markdown`)."""
    parts = [
        "<!doctype html><meta charset='utf-8'><title>AniPortrait Kit suite report</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #bbb;padding:.2em .6em}tr.fail{background:#fdd}img{max-width:100%}"
        "pre{background:#f4f4f4;padding:.5em;overflow:auto}.bad{color:#b00}b.now{color:#c00}</style>",
        "<h1>AniPortrait Kit — notebook suite report</h1>",
        f"<p>{html.escape(_summary_line(suite))}</p>",
    ]
    parts += [f"<p>{html.escape(line)}</p>" for line in _history_lines(history, last) if line]
    for r in suite.results:
        status = "<span class='bad'>FAILED</span>" if r.failed else _status(r)
        parts.append(f"<h2>{html.escape(r.name)} — {status} ({r.seconds:.1f} s)</h2>")
        if r.stopped is not None:
            parts.append(f"<p>Stopped before training, as asked: {html.escape(r.stopped)}</p>")
        if r.unjudged is not None:
            parts.append(f"<p>Metrics not judged against the baseline: {html.escape(r.unjudged)}.</p>")
        if r.error is not None:
            parts.append(f"<p class='bad'><b>{html.escape(_failure_text(r))}</b></p>")
            parts.append(f"<pre>{html.escape(r.error.source.strip())}</pre>")
            parts.append(f"<pre>{html.escape(r.error.traceback.strip()[-3000:])}</pre>")
        if r.comparisons:
            parts.append(_table_html(_rows(r, history, last), _header(history, last)))
        parts.append(_figure_html(r.key_figure))
    return "\n".join(parts) + "\n"


def write_reports(
    suite: SuiteResult, history: History | None = None, last: int = DEFAULT_LAST
) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into the run folder (with metric trends when given the
    ``history``, see :mod:`aniportrait_lib.runner.history`); returns their paths."""
    md = atomic.write_text(suite.run_dir / "report.md", to_markdown(suite, history, last))
    page = atomic.write_text(suite.run_dir / "report.html", to_html(suite, history, last))
    return md, page
