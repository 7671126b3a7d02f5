"""Every file format of the kit, in one place: the official checkpoints and the kit's own exports.

Reading order:

==========================  =========================================================================
module                      what it holds
==========================  =========================================================================
``layout``                  the official ``pretrained_weights/`` layout: what is present, what is missing
``checkpoint_io``           the one safe reader of weight files (memory-mapped; one ValueError per bad file)
``lmk2video_checkpoints``   official Lmk2Video ``.pth`` keys ↔ the kit's diffusers keys; motion-module checks
``animatediff``             AnimateDiff ``mm_sd_v15_v2.ckpt`` (stage 2's official start): manifest, loader
``audio_checkpoints``       official ``audio2mesh.pt`` / ``audio2pose.pt`` ↔ the kit's Audio2Lmk models
``components``              the six Lmk2Video parts filled from an official folder or the test oracle
``deep_check``              keys and shapes of present checkpoints against the kit's networks
``kit_index``               ``kit_index.json``: the kit's exports describe themselves; finding them
``kit_lmk2video``           the kit's stage-1 and stage-2 (motion module) exports, written and read
``kit_audio2lmk``           the kit's Audio2Mesh + Audio2Pose export, written and read
``kit_legacy``              indexing run folders written before exports described themselves
==========================  =========================================================================

``python -m aniportrait_lib.weights check | layout | show | index`` is the command line. Nothing here
downloads anything: weights come from local folders, and checkpoints load with ``weights_only=True`` or
from safetensors, through :func:`~.checkpoint_io.load_checkpoint`.
"""
