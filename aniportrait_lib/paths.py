"""Where the kit finds things: the repository, its samples, outputs, weights and the shared reference.

Every location can be overridden by an environment variable, so that a user's clone, CI and a
GPU box can each point the kit at their own folders without editing code.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout the library was imported from (meaningful for an editable install)."""

DATA_SAMPLES = REPO_ROOT / "data_samples"
"""Small, regenerable inputs committed with the kit (portrait, speech)."""


def outputs_root() -> Path:
    """Folder under which notebooks write (``outputs/NN_name/``); ``ANIPORTRAIT_OUTPUTS`` overrides."""
    return Path(os.environ.get("ANIPORTRAIT_OUTPUTS", REPO_ROOT / "outputs"))


def weights_dir() -> Path:
    """Folder holding real pretrained weights in the official layout.

    ``ANIPORTRAIT_WEIGHTS`` overrides; the default is ``pretrained_weights/`` in the checkout, the
    folder name the official repository's README uses.
    """
    return Path(os.environ.get("ANIPORTRAIT_WEIGHTS", REPO_ROOT / "pretrained_weights"))


def cache_dir() -> Path:
    """Folder for files the kit fetches or builds once (e.g. the MediaPipe model); ``ANIPORTRAIT_CACHE``."""
    return Path(os.environ.get("ANIPORTRAIT_CACHE", REPO_ROOT / ".cache"))


def shared_reference() -> Path | None:
    """The team's reference folder (official-code oracle, manifests), or None where it is absent.

    Looked up in ``ANIPORTRAIT_SHARED_REFERENCE``, then ``../shared/reference`` beside the checkout.
    A user's clone normally has none; tests that need it skip.
    """
    candidates = []
    if env := os.environ.get("ANIPORTRAIT_SHARED_REFERENCE"):
        candidates.append(Path(env))
    candidates.append(REPO_ROOT.parent / "shared" / "reference")
    for path in candidates:
        if (path / "oracle").is_dir():
            return path
    return None
