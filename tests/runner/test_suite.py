"""The suite runner on real notebooks (kernels are started): a broken notebook must not stop the
others, must make the run fail, and must be named with its failing cell in the report."""

import json
import shutil

import nbformat
import pytest

from aniportrait_lib.runner.__main__ import main as runner_main
from aniportrait_lib.runner.baseline import save_baseline
from aniportrait_lib.runner.report import write_reports
from aniportrait_lib.runner.suite import NOTEBOOK_DIR, discover_notebooks, run_suite

pytestmark = pytest.mark.slow


@pytest.fixture()
def notebooks(tmp_path):
    """A temporary suite: a copy of 00_tour, a deliberately broken copy of it, and a third notebook."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(NOTEBOOK_DIR / "00_tour.ipynb", folder / "00_tour.ipynb")
    broken = nbformat.read(NOTEBOOK_DIR / "00_tour.ipynb", as_version=4)
    broken.cells.insert(4, nbformat.v4.new_code_cell('raise RuntimeError("deliberately broken")'))
    nbformat.write(broken, folder / "01_broken.ipynb")
    last = nbformat.v4.new_notebook()
    last.cells = [
        nbformat.v4.new_code_cell('profile = "cpu"\noutput_root = None', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "from aniportrait_lib.runner import start_notebook\n"
            'nb = start_notebook("02_after", profile, output_root)\n'
            'nb.log_metric("answer", 42, direction="equal")'
        ),
    ]
    nbformat.write(last, folder / "02_after.ipynb")
    return folder


def test_broken_notebook_fails_the_run_but_not_the_others(notebooks, tmp_path):
    suite = run_suite("quick", notebooks_dir=notebooks, runs_root=tmp_path / "runs", log=lambda _: None)
    by_name = {r.name: r for r in suite.results}
    assert list(by_name) == ["00_tour", "01_broken", "02_after"]
    assert suite.failed
    assert by_name["00_tour"].error is None and "speech_seconds" in by_name["00_tour"].metrics
    assert by_name["02_after"].error is None and by_name["02_after"].metrics["answer"]["value"] == 42
    err = by_name["01_broken"].error
    assert err is not None and err.cell_index == 4 and err.ename == "RuntimeError"
    assert "deliberately broken" in err.evalue

    md, page = write_reports(suite)
    text = md.read_text()
    assert "01_broken — FAILED" in text and "cell 4" in text and "deliberately broken" in text
    assert "00_tour — passed" in text
    assert "cell 4" in page.read_text() and "data:image/png;base64" in page.read_text()
    assert (suite.run_dir / "01_broken.ipynb").is_file()  # the executed copy, error included


def test_cli_exit_status_only_and_baseline_regression(notebooks, tmp_path, capsys):
    runs, baselines = tmp_path / "runs", tmp_path / "baselines"
    args = ["--profile", "quick", "--notebooks", str(notebooks), "--runs-root", str(runs)]
    assert runner_main([*args, "--only", "01"]) == 1
    assert runner_main([*args, "--only", "02"]) == 0
    out = capsys.readouterr().out
    assert "report:" in out and "[1/1] 02_after" in out
    assert runner_main([*args, "--only", "99"]) == 2

    # a metric that crossed its baseline tolerance fails the run
    save_baseline(
        "quick", {"02_after": {"answer": {"value": 41, "direction": "equal", "tolerance": 0}}}, baselines
    )
    suite = run_suite(
        "quick",
        notebooks_dir=notebooks,
        only=["02"],
        runs_root=runs,
        baseline_dir=baselines,
        log=lambda _: None,
    )
    assert suite.failed and suite.results[0].comparisons[0].status == "regressed"

    # --update-baseline accepts the new value; the next run passes
    run_suite(
        "quick",
        notebooks_dir=notebooks,
        only=["02"],
        runs_root=runs,
        baseline_dir=baselines,
        update_baseline=True,
        log=lambda _: None,
    )
    assert json.loads((baselines / "quick.json").read_text())["02_after"]["answer"]["value"] == 42
    again = run_suite(
        "quick",
        notebooks_dir=notebooks,
        only=["02"],
        runs_root=runs,
        baseline_dir=baselines,
        log=lambda _: None,
    )
    assert not again.failed
    assert (runs / "latest-quick").resolve() == again.run_dir.resolve()


def test_discovery_is_ordered_and_filtered(notebooks):
    (notebooks / "scratch.ipynb").write_text("{}")  # not NN_*.ipynb: ignored
    assert [p.stem for p in discover_notebooks(notebooks)] == ["00_tour", "01_broken", "02_after"]
    assert [p.stem for p in discover_notebooks(notebooks, ["00", "02"])] == ["00_tour", "02_after"]


def test_into_reruns_a_notebook_in_an_earlier_run_folder(notebooks, tmp_path):
    runs = tmp_path / "runs"
    first = run_suite("quick", notebooks_dir=notebooks, only=["00", "02"], runs_root=runs, log=lambda _: None)
    tour_output = sorted((first.run_dir / "00_tour").rglob("*"))
    (first.run_dir / "02_after" / "metrics.json").unlink()
    (first.run_dir / "02_after" / "checkpoint-stale.pt").write_text("from the earlier run")
    newer = run_suite("quick", notebooks_dir=notebooks, only=["00"], runs_root=runs, log=lambda _: None)

    again = run_suite(
        "quick", notebooks_dir=notebooks, only=["02"], runs_root=runs, log=lambda _: None, into=first.run_dir
    )
    assert again.run_dir == first.run_dir.resolve() and not again.failed
    assert (first.run_dir / "02_after" / "metrics.json").is_file()  # written again, in the same folder
    assert not (first.run_dir / "02_after" / "checkpoint-stale.pt").exists()  # nothing to resume from
    assert not (first.run_dir / "02_after.previous").exists()  # the earlier outputs go once it succeeds
    assert again.results[0].executed == first.run_dir.resolve() / "02_after.ipynb"  # replaced by the rerun's
    assert not list(first.run_dir.glob("*.running.ipynb"))
    assert sorted((first.run_dir / "00_tour").rglob("*")) == tour_output  # the other notebook's outputs stay
    assert (runs / "latest-quick").resolve() == newer.run_dir.resolve()  # not moved by a continued run
    (first.run_dir / "01_broken").mkdir()
    (first.run_dir / "01_broken" / "kept.txt").write_text("earlier outputs")
    failed = run_suite(
        "quick", notebooks_dir=notebooks, only=["01"], runs_root=runs, log=lambda _: None, into=first.run_dir
    )
    assert failed.failed and (first.run_dir / "01_broken.previous" / "kept.txt").is_file()  # a failed rerun
    assert "deliberately broken" in (first.run_dir / "01_broken.ipynb").read_text()  # its executed copy
    (first.run_dir / "01_broken").mkdir(exist_ok=True)
    (first.run_dir / "01_broken" / "partial.txt").write_text("left by the failed attempt")
    again_failed = run_suite(
        "quick", notebooks_dir=notebooks, only=["01"], runs_root=runs, log=lambda _: None, into=first.run_dir
    )
    assert again_failed.failed and (first.run_dir / "01_broken.previous" / "kept.txt").is_file()  # still kept
    assert not (first.run_dir / "01_broken" / "partial.txt").exists()  # the failed attempt's outputs went
    with pytest.raises(ValueError, match="'quick' run; this run's profile is 'cpu'"):
        run_suite("cpu", notebooks_dir=notebooks, only=["02"], runs_root=runs, into=first.run_dir)
    with pytest.raises(ValueError, match="no such run folder"):
        run_suite("quick", notebooks_dir=notebooks, only=["02"], runs_root=runs, into=tmp_path / "nothing")


def _training_notebook(tmp_path):
    """A one-notebook suite taking dry_run and max_steps; it logs ``trained`` (max_steps or 1)."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    book = nbformat.v4.new_notebook()
    book.cells = [
        nbformat.v4.new_code_cell(
            'profile = "cpu"\noutput_root = None\ndry_run = False\nmax_steps = None',
            metadata={"tags": ["parameters"]},
        ),
        nbformat.v4.new_code_cell(
            "from aniportrait_lib.runner import start_notebook\n"
            'nb = start_notebook("00_trains", profile, output_root)\n'
            "if dry_run:\n"
            '    nb.stop_dry_run({"steps": max_steps, "batch": (2, 3)})\n'
            'nb.log_metric("trained", max_steps or 1, direction="equal")'
        ),
    ]
    nbformat.write(book, folder / "00_trains.ipynb")
    return folder


def test_a_run_with_parameters_is_shown_but_not_judged(tmp_path, capsys):
    folder, runs, baselines = _training_notebook(tmp_path), tmp_path / "runs", tmp_path / "baselines"
    save_baseline("quick", {"00_trains": {"trained": {"value": 1, "direction": "equal"}}}, baselines)
    suite = run_suite("quick", notebooks_dir=folder, runs_root=runs, baseline_dir=baselines,
                      log=lambda _: None, parameters={"max_steps": 5})  # fmt: skip
    (result,) = suite.results
    assert not suite.failed and result.unjudged.startswith(
        "run with max_steps=5"
    )  # 5 != 1, yet no regression
    assert [(c.name, c.value, c.status) for c in result.comparisons] == [("trained", 5, "info")]
    assert "00_trains — ran (not judged)" in write_reports(suite)[0].read_text()
    with pytest.raises(ValueError, match="defaults; this run sets max_steps=5"):
        run_suite("quick", notebooks_dir=folder, runs_root=runs, baseline_dir=baselines, update_baseline=True,
                  log=lambda _: None, parameters={"max_steps": 5})  # fmt: skip
    assert json.loads((baselines / "quick.json").read_text())["00_trains"]["trained"]["value"] == 1
    args = [
        "--profile",
        "quick",
        "--notebooks",
        str(folder),
        "--runs-root",
        str(runs),
        "--param",
        "max_steps=5",
    ]
    assert runner_main(args) == 0 and "not judged against the baseline" in capsys.readouterr().out
    assert not (runs / "history").exists() or not any((runs / "history").iterdir())  # kept out of trends


def test_a_dry_run_stops_where_asked_and_is_not_a_failure(tmp_path, capsys):
    folder = _training_notebook(tmp_path)
    runs, baselines = tmp_path / "runs", tmp_path / "baselines"
    save_baseline("quick", {"00_trains": {"trained": {"value": 1, "direction": "equal"}}}, baselines)
    first = run_suite(
        "quick", notebooks_dir=folder, runs_root=runs, baseline_dir=baselines, log=lambda _: None
    )
    assert not first.failed and first.results[0].stopped is None
    (first.run_dir / "00_trains" / "kept.txt").write_text("the real run's outputs")
    real_copy = (first.run_dir / "00_trains.ipynb").read_bytes()
    dry = run_suite(
        "quick", notebooks_dir=folder, runs_root=runs, baseline_dir=baselines, log=lambda _: None,
        parameters={"dry_run": True, "max_steps": 7}, into=first.run_dir,
    )  # fmt: skip
    result = dry.results[0]
    assert not dry.failed and result.error is None and not result.comparisons  # nothing judged
    assert result.stopped == "steps: 7; batch: (2, 3)"
    assert (first.run_dir / "00_trains" / "kept.txt").is_file()  # a dry run leaves the outputs as they were
    assert (first.run_dir / "00_trains.ipynb").read_bytes() == real_copy  # and the real run's executed copy
    assert result.executed == first.run_dir.resolve() / "00_trains.dry_run.ipynb"  # its own copy, beside it
    assert "steps: 7" in result.executed.read_text()
    report = write_reports(dry)[0].read_text()
    assert "stopped (dry run)" in report and "`00_trains.dry_run.ipynb`" in report
    assert runner_main(["--profile", "quick", "--notebooks", str(folder), "--runs-root", str(runs),
                        "--param", "dry_run=true", "--param", "max_steps=3"]) == 0  # fmt: skip
    assert "stopped before training as asked (dry run)" in capsys.readouterr().out
    assert runner_main(["--profile", "quick", "--notebooks", str(folder), "--param", "oops"]) == 2
