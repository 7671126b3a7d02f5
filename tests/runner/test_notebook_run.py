import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from aniportrait_lib.runner import start_notebook  # noqa: E402


def test_start_notebook_creates_folder_config_and_metrics(tmp_path):
    nb = start_notebook("07_demo", "quick", tmp_path)
    assert nb.out_dir == tmp_path / "07_demo"
    assert json.loads((nb.out_dir / "config.json").read_text())["profile"]["name"] == "quick"
    nb.log_metric("lve", 1.25, direction="lower", tolerance=0.1, unit="mm", description="lip error")
    payload = json.loads((nb.out_dir / "metrics.json").read_text())
    assert payload["profile"] == "quick"
    assert payload["metrics"]["lve"] == {
        "value": 1.25,
        "direction": "lower",
        "tolerance": 0.1,
        "rel_tolerance": 0.0,
        "unit": "mm",
        "description": "lip error",
    }


def test_key_figure_is_recorded(tmp_path):
    nb = start_notebook("07_demo", "quick", tmp_path)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = nb.save_figure(fig, key=True)
    plt.close(fig)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert json.loads((nb.out_dir / "metrics.json").read_text())["key_figure"] == path.name


def test_bad_metrics_are_refused(tmp_path):
    nb = start_notebook("07_demo", "quick", tmp_path)
    with pytest.raises(ValueError, match="NaN"):
        nb.log_metric("x", float("nan"))
    with pytest.raises(ValueError, match="direction"):
        nb.log_metric("x", 1.0, direction="up")


def test_relative_output_root_is_taken_from_the_checkout(tmp_path, monkeypatch):
    from aniportrait_lib.runner.notebook import resolve_output_root

    monkeypatch.setenv("ANIPORTRAIT_OUTPUTS", str(tmp_path))
    assert resolve_output_root(None) == tmp_path
    assert resolve_output_root("outputs/x").is_absolute()
