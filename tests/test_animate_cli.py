"""``python -m aniportrait_lib.animate`` on a tiny kit run: videos out, one clear error for bad input."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import soundfile as sf

from aniportrait_lib.animate import main
from aniportrait_lib.data.samples import load_speech
from aniportrait_lib.paths import DATA_SAMPLES
from aniportrait_lib.video_io import probe_video

pytestmark = pytest.mark.slow
PORTRAIT = DATA_SAMPLES / "portrait.png"


@pytest.fixture(scope="module")
def half_second_speech(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    speech = load_speech()
    sf.write(path, speech.samples[: speech.sample_rate // 2], speech.sample_rate)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "aniportrait_lib.animate", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)


def test_audio_to_video_from_a_kit_run(tiny_kit_run, half_second_speech, tmp_path):
    out = tmp_path / "talk.mp4"
    done = _cli("--ref", str(PORTRAIT), "--audio", str(half_second_speech), "--out", str(out),
                "--weights", f"kit:{tiny_kit_run}", "--steps", "1", "--acc", "--threads", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "note: no stage-2 motion module" in done.stdout and "Lmk2Video denoising" in done.stdout
    info = probe_video(out)
    assert (info.width, info.height, info.num_frames) == (64, 64, 15)  # the run's size; 0.5 s at 30 fps
    assert info.audio_sample_rate == 16_000 and info.audio_duration == pytest.approx(0.5, abs=0.07)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["generate"]["steps"] == 1 and saved["generate"]["keyframe_step"] == 3
    assert "zero-initialised" in saved["weights"]["notes"][0] and "load weights" in saved["seconds"]


def test_pose_template_alone_at_another_rate(tiny_kit_run, tmp_path):
    template = np.zeros((20, 6))
    template[:, 1] = np.linspace(0, 10, 20)
    np.save(tmp_path / "turn.npy", template)
    out = tmp_path / "turn.mp4"
    template_arg = ["--pose-template", str(tmp_path / "turn.npy")]
    done = _cli("--ref", str(PORTRAIT), *template_arg, "--out", str(out), "--weights", f"kit:{tiny_kit_run}",
                "--steps", "1", "--fps", "15", "--length", "6", "--crf", "7")  # fmt: skip
    assert done.returncode == 0, done.stderr
    info = probe_video(out)
    assert info.num_frames == 6 and info.fps == pytest.approx(15) and info.audio_sample_rate is None
    assert b"crf=7.0" in out.read_bytes()  # x264 records its settings in the stream


def test_device_and_dtype_are_said_first_and_bf16_renders_on_cpu(tiny_kit_run, tmp_path):
    out = tmp_path / "bf16.mp4"
    np.save(tmp_path / "still.npy", np.zeros((3, 6)))
    args = ["--ref", str(PORTRAIT), "--pose-template", str(tmp_path / "still.npy"),
            "--weights", f"kit:{tiny_kit_run}", "--steps", "1", "--threads", "1"]  # fmt: skip
    done = _cli(*args, "--dtype", "bf16", "--out", str(out))
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("device: cpu, bfloat16") and "no CUDA or MPS" in first
    assert re.search(r"loaded stage1 +bfloat16 cpu", done.stdout)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["weights"]["placement"] == {"device": "cpu", "dtype": "bfloat16"}
    assert probe_video(out).num_frames == 3
    assert set(saved["peak_memory_mib"]) == set(saved["seconds"])  # host memory per stage (GPU: on CUDA)
    refused = _cli(*args, "--device", "cuda", "--out", str(tmp_path / "cuda.mp4"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error: device 'cuda' asked for, but")
    assert not (tmp_path / "cuda.mp4").exists()


def test_dry_run_prints_the_plan_and_generates_nothing(tiny_kit_run, tmp_path, capsys, monkeypatch):
    np.save(tmp_path / "nod.npy", np.zeros((40, 6)))
    out = tmp_path / "plan.mp4"
    args = ["--ref", str(PORTRAIT), "--pose-template", str(tmp_path / "nod.npy"), "--weights",
            f"kit:{tiny_kit_run}", "--threads", "1", "--out", str(out), "--dry-run"]  # fmt: skip
    assert main(args) == 0
    shown = capsys.readouterr().out
    assert "(40 frames)" in shown and "peak host memory" in shown and "time per denoising step" in shown
    assert "verdict                    fits" in shown and not out.exists()
    from aniportrait_lib.pipelines import plan

    monkeypatch.setattr(plan, "machine_memory", lambda device: (1.0, None))  # a machine with 1 MiB
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: these settings do not fit this machine (--size 64x64 --dtype fp32")
    assert "no smaller setting fits either" in error and not out.exists()


def test_missing_weights_exit_with_the_list_and_no_traceback(tmp_path, half_second_speech):
    (tmp_path / "empty_run").mkdir()
    out = tmp_path / "out.mp4"
    done = _cli("--ref", str(PORTRAIT), "--audio", str(half_second_speech), "--out", str(out),
                "--weights", f"kit:{tmp_path / 'empty_run'}")  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: kit export") and "Traceback" not in done.stderr
    assert "no kit_index.json" in done.stderr and "notebooks 02-04" in done.stderr
    assert not out.exists()


def test_bad_inputs_fail_with_one_message_and_leave_nothing(
    tiny_kit_run, half_second_speech, tmp_path, capsys
):
    speech = str(half_second_speech)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really a wave file")
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16_000)
    np.save(tmp_path / "bad.npy", np.zeros((10, 5)))
    PIL.Image.fromarray(np.full((128, 128, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    weights = ["--weights", f"kit:{tiny_kit_run}", "--steps", "1"]
    cases = {
        "junk.wav": ["--ref", str(PORTRAIT), "--audio", str(tmp_path / "junk.wav")],
        "empty.wav": ["--ref", str(PORTRAIT), "--audio", str(tmp_path / "empty.wav")],
        r"\(T, 6\)": ["--ref", str(PORTRAIT), "--pose-template", str(tmp_path / "bad.npy")],
        "no face found in .*wall.png": ["--ref", str(tmp_path / "wall.png"), "--audio", speech],
        "multiples of 8": ["--ref", str(PORTRAIT), "--audio", speech, "--size", "100"],
        "nothing drives": ["--ref", str(PORTRAIT)],
        r"--crf must be in \[1, 51\]": ["--ref", str(PORTRAIT), "--audio", speech, "--crf", "0"],
        "--pose-video drives the portrait alone": [
            "--ref", str(PORTRAIT), "--audio", speech, "--pose-video", str(PORTRAIT),
        ],
        "--ref .*missing.png: no such file": ["--ref", str(tmp_path / "missing.png"), "--audio", speech],
        "'hf:x': expected 'official:": ["--ref", str(PORTRAIT), "--audio", speech, "--weights", "hf:x"],
        "--pose-video .*none.mp4: no such file": ["--ref", str(PORTRAIT), "--pose-video", "none.mp4"],
    }  # fmt: skip
    for i, (message, args) in enumerate(cases.items()):
        extra = weights if "--weights" not in args else []
        assert main([*args, *extra, "--out", str(out_dir / f"{i}.mp4")]) == 2, message
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and re.search(message, errors[0]), (message, errors)
    assert list(out_dir.iterdir()) == []
