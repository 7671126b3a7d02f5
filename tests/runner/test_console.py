"""What the runner shows on the console: one line per notebook and the report's path; what kernels,
notebooks and libraries print goes to the run folder's ``run.log`` (``capfd`` sees file descriptors 1
and 2, so a kernel's own stderr would show up here if it leaked)."""

import logging
import subprocess
import sys
import warnings

import nbformat
import pytest

from aniportrait_lib.runner.__main__ import main as runner_main
from aniportrait_lib.runner.runlog import process_output_to, run_log

_NOISY = """\
import logging, os, sys, warnings
from aniportrait_lib.runner import start_notebook
print("printed by the notebook")
sys.stderr.write("stderr of the notebook\\n")
os.write(2, b"native noise on fd 2\\n")
warnings.warn("a library's warning")
logging.getLogger("somelib").warning("somelib loaded its weights")
nb = start_notebook("00_noisy", profile, output_root)
nb.log_metric("answer", 42)
"""


def _notebook(folder, name, code):
    book = nbformat.v4.new_notebook()
    book.cells = [
        nbformat.v4.new_code_cell('profile = "cpu"\noutput_root = None', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(code),
    ]
    nbformat.write(book, folder / f"{name}.ipynb")


@pytest.mark.slow
def test_console_has_one_line_per_notebook_and_the_report_the_rest_is_in_the_log(tmp_path, capfd):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder, "00_noisy", _NOISY)
    _notebook(folder, "01_broken", 'print("about to break")\nraise RuntimeError("deliberately broken")')
    runs = tmp_path / "runs"
    status = runner_main(["--profile", "quick", "--notebooks", str(folder), "--runs-root", str(runs)])
    out, err = capfd.readouterr()

    assert status == 1
    assert err == ""
    lines = out.splitlines()
    run_dir = (runs / "latest-quick").resolve()
    assert len(lines) == 4, out
    assert lines[0].startswith("[1/2] 00_noisy: ok in ") and lines[0].endswith(" s, 1 metrics")
    assert lines[1].startswith("[2/2] 01_broken: FAILED at cell 1: RuntimeError: deliberately broken")
    executed, log_file = run_dir / "01_broken.ipynb", run_dir / "run.log"
    assert lines[2] == f"FAILED 01_broken: executed notebook {executed}; log: {log_file}"
    assert lines[3] == f"suite FAILED; report: {run_dir / 'report.md'} (and .html)"

    log = log_file.read_text()
    for noise in (
        "printed by the notebook",
        "stderr of the notebook",
        "native noise on fd 2",
        "a library's warning",
        "somelib loaded its weights",
        "about to break",
        "Executing notebook with kernel",  # papermill's own logging, in this process
        "[1/2] 00_noisy: ok",
    ):
        assert noise in log, noise


@pytest.mark.slow
def test_verbose_keeps_the_full_output_on_the_console(tmp_path, capfd):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder, "00_quiet", 'print("hello")')
    runs = tmp_path / "runs"
    args = ["--profile", "quick", "--notebooks", str(folder), "--runs-root", str(runs), "--verbose"]
    assert runner_main(args) == 0
    out = capfd.readouterr().out
    assert "[1/1] 00_quiet (quick) ..." in out and "[1/1] 00_quiet: ok in" in out
    assert not (runs / "latest-quick" / "run.log").exists()


def test_a_child_process_writes_into_the_log_not_the_console(tmp_path, capfd):
    path = tmp_path / "run.log"
    handlers = list(logging.getLogger().handlers)
    with run_log(path) as stream, process_output_to(stream):
        child = "import os, sys; os.write(2, b'child stderr\\n'); print('child stdout')"
        subprocess.run([sys.executable, "-c", child], check=True)
        warnings.warn("warned in this process", stacklevel=1)
        logging.getLogger("somelib").info("somelib: load report")
    print("back on the console")
    out, err = capfd.readouterr()
    assert out == "back on the console\n" and err == ""
    log = path.read_text()
    for text in ("child stderr", "child stdout", "warned in this process", "somelib: load report"):
        assert text in log, text
    assert logging.getLogger().handlers == handlers  # the log's handler is gone once the run ends
