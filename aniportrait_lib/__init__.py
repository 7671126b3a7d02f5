"""AniPortrait Kit: a readable, tested reproduction of AniPortrait (Wei, Yang, Wang, 2024).

The library is split by paper stage, in layers whose imports flow one way (top to bottom; the contract
in ``pyproject.toml`` is checked by ``make test``):

1. ``runner`` (the notebook suite), ``studies`` (what each notebook's experiment needs), ``profiles``
   (the one registry: a profile name → every stage's config), ``animate`` (the command line:
   ``python -m aniportrait_lib.animate``), ``train`` (the training commands,
   ``python -m aniportrait_lib.train``, also under ``accelerate launch``);
2. ``pipelines`` (sampling a video), ``training`` (the recipes), ``editing`` (reenactment and edits);
3. ``weights`` (every file format: official checkpoints and the kit's exports), ``evaluation``
   (metrics), ``data`` (samples, the mini corpus, prepared datasets);
4. ``models`` (the Lmk2Video network: start with ``models/lmk2video.py``), ``audio`` (Audio2Mesh /
   Audio2Pose), ``landmarks`` (MediaPipe landmarks, head pose, pose images);
5. ``config``, ``paths``, ``atomic``, ``video_io``, ``environment``, ``plots``.
"""

__version__ = "0.1.0"
