import pytest

from aniportrait_lib.runner.baseline import compare, load_baseline, save_baseline, updated_baseline


def _m(value, direction=None, tol=0.0, rel=0.0):
    return {"value": value, "direction": direction, "tolerance": tol, "rel_tolerance": rel}


def _status(metrics, baseline):
    return {c.name: c.status for c in compare(metrics, baseline)}


def test_higher_is_better():
    base = {"psnr": _m(20.0, "higher", tol=0.5)}
    assert _status({"psnr": _m(19.6, "higher")}, base) == {"psnr": "ok"}
    assert _status({"psnr": _m(19.4, "higher")}, base) == {"psnr": "regressed"}
    assert _status({"psnr": _m(21.0, "higher")}, base) == {"psnr": "improved"}


def test_lower_is_better_with_relative_tolerance():
    base = {"err": _m(2.0, "lower", rel=0.1)}
    assert _status({"err": _m(2.19, "lower")}, base) == {"err": "ok"}
    assert _status({"err": _m(2.21, "lower")}, base) == {"err": "regressed"}
    assert _status({"err": _m(1.5, "lower")}, base) == {"err": "improved"}


def test_equal_fails_both_ways():
    base = {"n": _m(2, "equal")}
    assert _status({"n": _m(2, "equal")}, base) == {"n": "ok"}
    assert _status({"n": _m(3, "equal")}, base) == {"n": "regressed"}
    assert _status({"n": _m(1, "equal")}, base) == {"n": "regressed"}


def test_info_new_and_missing():
    base = {"gone": _m(1.0, "higher"), "seconds": _m(3.0, None)}
    rows = {c.name: c for c in compare({"seconds": _m(99.0), "fresh": _m(1.0, "lower")}, base)}
    assert rows["seconds"].status == "info" and not rows["seconds"].failed
    assert rows["fresh"].status == "new" and not rows["fresh"].failed
    assert rows["gone"].status == "missing" and rows["gone"].failed


def test_update_replaces_only_the_notebooks_that_ran(tmp_path):
    current = {"00_tour": {"a": _m(1.0, "equal")}, "01_x": {"b": _m(5.0, "lower")}}
    fresh = {"00_tour": {"a": {**_m(2.0, "equal"), "unit": "s", "description": "d"}}}
    merged = updated_baseline(current, fresh)
    assert merged["01_x"] == current["01_x"]
    assert merged["00_tour"] == {"a": _m(2.0, "equal")}
    save_baseline("quick", merged, tmp_path)
    assert load_baseline("quick", tmp_path) == merged
    assert load_baseline("cpu", tmp_path) == {}


def test_corrupt_baseline_names_the_file(tmp_path):
    (tmp_path / "cpu.json").write_text("{not json")
    with pytest.raises(ValueError, match="cpu.json"):
        load_baseline("cpu", tmp_path)
