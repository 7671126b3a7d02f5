"""Every notebook of the suite follows the house rules the runner and the style guide rely on."""

import re

import nbformat
import pytest

from aniportrait_lib.runner.suite import NOTEBOOK_DIR, discover_notebooks

NOTEBOOKS = discover_notebooks(NOTEBOOK_DIR)


def test_suite_is_not_empty():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_tour.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_house_rules(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters' (papermill injects the profile there)"
    assert re.search(r'^profile = "cpu"', params[0].source, re.M), "the default profile is cpu"
    assert re.search(r"^output_root = None", params[0].source, re.M)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    for cell in code:
        assert not re.search(r"^\s*(def|class)\s", cell.source, re.M), "logic belongs in aniportrait_lib/"
        assert not cell.get("outputs"), "commit notebooks without outputs (the runner produces them)"
    assert f'start_notebook("{path.stem}"' in "".join(c.source for c in code)
    assert nb.metadata["kernelspec"]["name"] == "python3"
