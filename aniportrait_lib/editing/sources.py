"""Inputs for reenactment demos: a mini corpus to drive from, and a second portrait to drive.

The mini corpus's speaker *is* the sample portrait, so retargeting a clip back onto it would show
nothing. :func:`mirrored_reference` makes a different target from the same picture: the portrait
flipped left–right has a mirrored face mesh and a mirrored head pose (its roll and yaw change
sign), which makes the difference between absolute and relative rotation transfer visible.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aniportrait_lib.data.mini_corpus import (
    CorpusConfig,
    MiniCorpus,
    config_digest,
    generate_mini_corpus,
    open_mini_corpus,
)
from aniportrait_lib.data.render import Reference

LANDMARKS_NOTEBOOK = "01_extract_landmarks"


def find_or_make_corpus(output_root: str | Path, own_dir: str | Path, config: CorpusConfig) -> MiniCorpus:
    """The mini corpus made with ``config``: notebook 01's copy under ``output_root`` if it is complete and
    made with the same config (opened read-only), else generated (or reused) in ``own_dir/mini_corpus``."""
    if not isinstance(config, CorpusConfig):
        raise ValueError(f"a mini corpus needs a CorpusConfig, got {config!r} (see aniportrait_lib.profiles)")
    earlier = Path(output_root) / LANDMARKS_NOTEBOOK / "mini_corpus"
    manifest = earlier / "corpus.json"
    if manifest.is_file():
        payload = json.loads(manifest.read_text())
        if payload.get("complete") and payload.get("digest") == config_digest(config):
            return open_mini_corpus(earlier)
    return generate_mini_corpus(Path(own_dir) / "mini_corpus", config)


def mirrored_reference(reference: Reference, extractor) -> Reference:
    """The portrait flipped left–right, with its own landmarks from ``extractor`` (a
    :class:`~aniportrait_lib.landmarks.extract.LandmarkExtractor`)."""
    image = np.ascontiguousarray(reference.image[:, ::-1])
    face = extractor.detect(image, "rgb", where="the mirrored portrait")
    return Reference(image, np.asarray(face.lmks3d, np.float64), np.asarray(face.trans_mat, np.float64))
