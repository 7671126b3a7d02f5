"""AniPortrait Kit: a readable, tested reproduction of AniPortrait (Wei, Yang, Wang, 2024).

The library is split by paper stage: ``landmarks`` (MediaPipe landmarks, head pose, pose images),
``audio`` (Audio2Mesh / Audio2Pose), ``models`` (the Lmk2Video networks built from diffusers),
``pipelines``, ``training``, ``weights`` (official checkpoints), ``data`` (samples and the mini
corpus), ``editing``, ``evaluation`` and ``runner`` (the notebook suite).
"""

__version__ = "0.1.0"
