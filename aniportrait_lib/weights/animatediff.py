"""AnimateDiff's ``mm_sd_v15_v2.ckpt``: the motion modules stage 2 starts from (spec §4), checked and loaded.

The official ``train_stage_2.py`` fills the denoiser's motion modules from AnimateDiff v2 before training
them; generation never needs the file (the released ``motion_module.pth`` replaces it). It is optional in
the weights folder (:data:`~aniportrait_lib.weights.layout.ANIMATEDIFF_FILE`, from ``guoyww/animatediff``).

What the file holds (``manifests/mm_sd_v15_v2.json``, derived - the file itself was not available here):

* 21 motion modules at SD1.5 widths: ``down_blocks.{0..3}.motion_modules.{0,1}`` (320, 640, 1280, 1280),
  ``up_blocks.{0..3}.motion_modules.{0,1,2}`` (1280, 1280, 640, 320) and ``mid_block.motion_modules.0``
  (1280); 28 tensors each, 588 in all, 454,417,600 values;
* per module ``C``: ``norm``, ``proj_in`` / ``proj_out`` (C×C), two attentions ``attention_blocks.{0,1}``
  (``to_q/to_k/to_v`` C×C without bias, ``to_out.0``, and a fixed sin/cos table ``pos_encoder.pe``
  (1, 32, C)), ``norms.{0,1}``, a GEGLU feed-forward ``ff.net.0.proj`` (8C×C) → ``ff.net.2`` (C×4C),
  ``ff_norm``;
* float32. How sure: the key layout is the same as AniPortrait's released ``motion_module.pth`` (the
  official-code manifest), and the published size (1,817,888,431 bytes) is 454,417,600 × 4 bytes plus
  371 bytes of zip/pickle overhead per tensor - the same per-tensor overhead AnimateDiff v1 shows for its
  560 tensors. float16 would be half that size. The deep check accepts float16 / bfloat16 too.

AnimateDiff v1 (``mm_sd_v15.ckpt``: 24-frame tables, no mid-block module) and v3 (``v3_sd15_mm.ckpt``: no
mid-block module) do not fit a UNet built like the official one; :func:`load_animatediff_motion` says which
layout it found instead of listing hundreds of keys.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from torch import nn

from aniportrait_lib.weights.layout import ANIMATEDIFF_FILE
from aniportrait_lib.weights.lmk2video_checkpoints import (
    check_motion_modules,
    describe_motion_file,
    load_checkpoint,
    load_into,
)

__all__ = [
    "ANIMATEDIFF_FILE",
    "ANIMATEDIFF_MANIFEST",
    "animatediff_manifest",
    "describe_motion_file",
    "load_animatediff_motion",
]

ANIMATEDIFF_MANIFEST = Path(__file__).with_name("manifests") / "mm_sd_v15_v2.json"
"""Key → [shape, dtype] of the published ``mm_sd_v15_v2.ckpt`` (with its size, hash and derivation notes)."""


@cache
def animatediff_manifest() -> dict[str, tuple[tuple[int, ...], str]]:
    """Official key → (shape, dtype) of ``mm_sd_v15_v2.ckpt``, in the file's order."""
    keys = json.loads(ANIMATEDIFF_MANIFEST.read_text())["keys"]
    return {key: (tuple(shape), dtype) for key, (shape, dtype) in keys.items()}


def load_animatediff_motion(unet: nn.Module, path: str | Path) -> None:
    """Fill every motion module of a kit ``UNetMotionModel`` from an AnimateDiff-format checkpoint.

    Accepts ``mm_sd_v15_v2.ckpt`` for an SD1.5-sized UNet, and any file in the same key layout whose
    widths fit ``unet`` (the kit's own ``motion_module-<step>.pth`` exports, AniPortrait's
    ``motion_module.pth``). Non-motion tensors in the file are ignored; floating tensors are cast to the
    UNet's dtype.

    Raises:
        ValueError: one message naming the file when it cannot be read, holds no motion modules, or its
            motion modules are not this UNet's (what layout it holds, and a few missing / unexpected /
            mis-shaped keys with their counts).
    """
    path = Path(path)
    converted = check_motion_modules(unet, load_checkpoint(path), path)
    load_into(unet, converted, path.name, strict=False)
