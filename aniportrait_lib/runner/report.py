"""The suite's report: one table per notebook (metric, value, baseline, change, pass/fail), its key
figure, and for a failed notebook the failing cell with its error. Written as Markdown (readable in
a terminal and on GitHub) and as a self-contained HTML page (figures embedded)."""

from __future__ import annotations

import base64
import html
import subprocess
from pathlib import Path

from aniportrait_lib import atomic
from aniportrait_lib.paths import REPO_ROOT
from aniportrait_lib.runner.suite import NotebookResult, SuiteResult

_STATUS_MARK = {
    "ok": "pass",
    "improved": "pass (improved)",
    "regressed": "FAIL",
    "missing": "FAIL (missing)",
    "new": "new",
    "info": "info",
}


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}"


def _rows(result: NotebookResult) -> list[list[str]]:
    rows = []
    for c in result.comparisons:
        change = c.change
        unit = f" {c.unit}" if c.unit else ""
        rows.append(
            [
                c.name,
                _fmt(c.value) + unit,
                _fmt(c.baseline),
                "–" if change is None else f"{change:+.3g}",
                _STATUS_MARK.get(c.status, c.status),
                c.description,
            ]
        )
    return rows


_HEADER = ["metric", "value", "baseline", "change", "status", "what it measures"]


def _summary_line(suite: SuiteResult) -> str:
    failed = [r.name for r in suite.results if r.failed]
    verdict = "FAILED: " + ", ".join(failed) if failed else "all notebooks passed"
    started = f"{suite.started:%Y-%m-%d %H:%M:%S} UTC"
    return f"profile `{suite.profile}`, commit `{_git_commit()}`, started {started} — {verdict}"


def _failure_text(result: NotebookResult) -> str:
    err = result.error
    where = f"cell {err.cell_index}" if err.cell_index >= 0 else "the kernel"
    return f"failed in {where}: {err.ename}: {err.evalue}"


def to_markdown(suite: SuiteResult) -> str:
    """The report as Markdown; paths are relative to the run folder."""
    lines = ["# AniPortrait Kit — notebook suite report", "", _summary_line(suite), ""]
    for r in suite.results:
        status = "FAILED" if r.failed else "stopped (dry run)" if r.stopped is not None else "passed"
        lines += [f"## {r.name} — {status} ({r.seconds:.1f} s)", ""]
        if r.stopped is not None:
            lines += [f"Stopped before training, as asked: {r.stopped}", ""]
        lines.append(f"Executed notebook: `{r.executed.name}`; outputs: `{r.out_dir.name}/`")
        lines.append("")
        if r.error is not None:
            lines += [f"**{_failure_text(r)}**", "", "```python", r.error.source.strip(), "```", ""]
            lines += ["```", r.error.traceback.strip()[-3000:], "```", ""]
        if r.comparisons:
            lines.append("| " + " | ".join(_HEADER) + " |")
            lines.append("|" + "---|" * len(_HEADER))
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in _rows(r)]
            lines.append("")
        if r.key_figure is not None:
            lines += [f"![{r.name} key figure]({r.out_dir.name}/{r.key_figure.name})", ""]
    return "\n".join(lines)


def _table_html(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _HEADER)
    body = []
    for row in rows:
        cls = "fail" if row[4].startswith("FAIL") else ""
        body.append(f"<tr class='{cls}'>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _figure_html(path: Path | None) -> str:
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='key figure' src='data:image/png;base64,{data}'>"


def to_html(suite: SuiteResult) -> str:
    """The report as one self-contained HTML page."""
    parts = [
        "<!doctype html><meta charset='utf-8'><title>AniPortrait Kit suite report</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #bbb;padding:.2em .6em}tr.fail{background:#fdd}img{max-width:100%}"
        "pre{background:#f4f4f4;padding:.5em;overflow:auto}.bad{color:#b00}</style>",
        "<h1>AniPortrait Kit — notebook suite report</h1>",
        f"<p>{html.escape(_summary_line(suite))}</p>",
    ]
    for r in suite.results:
        status = (
            "<span class='bad'>FAILED</span>" if r.failed else "stopped (dry run)" if r.stopped else "passed"
        )
        parts.append(f"<h2>{html.escape(r.name)} — {status} ({r.seconds:.1f} s)</h2>")
        if r.stopped is not None:
            parts.append(f"<p>Stopped before training, as asked: {html.escape(r.stopped)}</p>")
        if r.error is not None:
            parts.append(f"<p class='bad'><b>{html.escape(_failure_text(r))}</b></p>")
            parts.append(f"<pre>{html.escape(r.error.source.strip())}</pre>")
            parts.append(f"<pre>{html.escape(r.error.traceback.strip()[-3000:])}</pre>")
        if r.comparisons:
            parts.append(_table_html(_rows(r)))
        parts.append(_figure_html(r.key_figure))
    return "\n".join(parts) + "\n"


def write_reports(suite: SuiteResult) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into the run folder; returns their paths."""
    md = atomic.write_text(suite.run_dir / "report.md", to_markdown(suite))
    page = atomic.write_text(suite.run_dir / "report.html", to_html(suite))
    return md, page
