"""Metrics: how far each stage's output is from the truth, and from a baseline that any model must beat.

Reading order:

=====================  ==========================================================================
module                 what it measures
=====================  ==========================================================================
``landmark_metrics``   extracted landmarks, head pose and mesh against the mini corpus's truth
``lip_metrics``        lip vertex error and mouth-opening correlation on the 468-vertex mesh
``audio2lmk_eval``     Audio2Lmk on held-out clips against the mean-mesh and loudness baselines
``video_metrics``      generated frames: PSNR / SSIM (whole and mouth) and re-extracted landmarks
``temporal_metrics``   flicker and landmark jitter over time
``generation_eval``    a generated talking video: mouth following the speech, landmarks following
                       the driving face, against the loudness envelope and the unchanged portrait
``frechet``            the field's distribution distances: FID (Inception frames) and FVD (I3D clips)
``face_crops``         face crops the field's metrics expect (SyncNet's mouth-centred box, ArcFace's
                       five-point alignment), from MediaPipe landmarks
``lip_sync``           LSE-C / LSE-D: SyncNet's audio-visual sync confidence and distance
``identity``           CSIM: ArcFace cosine similarity of generated frames to the reference portrait
``lmd``                LMD: mouth-landmark distance to the true video
``video_pairs``        which generated video goes with which reference clip (folders, prepared datasets)
``field_table``        all of the above as one row in the papers' form, with a line per skipped metric
=====================  ==========================================================================

Metrics know nothing of notebooks: which ones a notebook logs, with which tolerances, and how a result is
put in words is :mod:`aniportrait_lib.studies`'.
"""
