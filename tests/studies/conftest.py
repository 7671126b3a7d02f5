"""Fixtures of the study tests."""

from __future__ import annotations

import pytest

from aniportrait_lib.runner.baseline import load_baseline


@pytest.fixture
def check_against_baseline():
    """``check(run, logged, notebook, profile)``: the metrics a study logged are exactly the ones
    ``baselines/<profile>.json`` judges for that notebook, with the same direction and tolerances."""

    def check(run, logged: dict, notebook: str, profile: str) -> None:
        baseline = load_baseline(profile)[notebook]
        assert sorted(logged) == sorted(baseline)
        for name, entry in baseline.items():
            metric = run.metrics[name]
            assert (metric.direction, metric.tolerance, metric.rel_tolerance) == (
                entry["direction"], entry["tolerance"], entry["rel_tolerance"],
            ), name  # fmt: skip

    return check
