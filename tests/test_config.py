import json

import pytest

from aniportrait_lib.config import DEFAULT_PROFILE, PROFILES, get_profile, save_config


def test_three_profiles_with_expected_devices():
    assert set(PROFILES) == {"quick", "cpu", "gpu"}
    assert get_profile("quick").device == "cpu"
    assert get_profile("gpu").device == "cuda"
    assert get_profile("gpu").requires_real_weights
    assert not get_profile("cpu").requires_real_weights


def test_default_and_case_insensitive_lookup():
    assert get_profile(None).name == DEFAULT_PROFILE == "cpu"
    assert get_profile(" Quick ").name == "quick"
    assert get_profile(PROFILES["gpu"]) is PROFILES["gpu"]


def test_unknown_profile_names_the_choices():
    with pytest.raises(ValueError, match="quick, cpu, gpu"):
        get_profile("laptop")


def test_save_config_expands_dataclasses(tmp_path):
    path = save_config(tmp_path / "sub" / "config.json", profile=get_profile("quick"), steps=3)
    payload = json.loads(path.read_text())
    assert payload["profile"]["name"] == "quick"
    assert payload["steps"] == 3
