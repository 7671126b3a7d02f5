import json

from aniportrait_lib.config import GenerateConfig, Profile, save_config


def test_save_config_expands_dataclasses(tmp_path):
    profile = Profile("quick", "test", "cpu", "float32", False, 1.0)
    path = save_config(tmp_path / "sub" / "config.json", profile=profile, steps=3, out=tmp_path)
    payload = json.loads(path.read_text())
    assert payload["profile"]["name"] == "quick" and payload["profile"]["device"] == "cpu"
    assert payload["steps"] == 3 and payload["out"] == str(tmp_path)


def test_video_crf_is_finer_for_small_frames_unless_set():
    assert GenerateConfig().video_crf() == 18
    assert GenerateConfig(width=96, height=96).video_crf() == 4
    assert GenerateConfig(width=96, height=96, crf=10).video_crf() == 10
