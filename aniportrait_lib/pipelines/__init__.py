"""Sampling: how the trained networks turn a portrait and a motion into a video (AniPortrait §3.2, §3.5).

Reading order:

=================  ================================================================================
module             what it holds
=================  ================================================================================
``pose2video``     ``Pose2VideoPipeline``: one diffusers ``__call__`` - reference bank, pose features
                   per window, DDIM steps through :class:`~aniportrait_lib.models.lmk2video.
                   Lmk2VideoNetworks`'s methods, streaming decode
``context``        the sliding context windows of long videos (official 16 frames, overlap 4)
``selection``      ``official:<folder>`` / ``kit:<folder>`` → ready-to-use models and their settings
``portrait``       the reference portrait: its landmarks, face crop and pose image
``motion_sources`` pose templates, reenactment from a source video, motion resampling
``interpolation``  keyframe generation (official ``-acc``): optical flow or FILM in between
``stages``         seconds and peak memory per stage of a run
``generate``       ``audio_to_video`` / ``pose_to_video``: everything above, end to end, into an mp4
=================  ================================================================================

The network itself is :mod:`aniportrait_lib.models.lmk2video`'s; loading weight files is
:mod:`aniportrait_lib.weights`'s.
"""
