"""Training recipes, nothing else: each module is one loop that calls a model (as nanoGPT's ``train.py``).

Reading order:

=========================  =======================================================================
module                     what it holds
=========================  =======================================================================
``checkpoint``             atomic checkpoints with exact resume (model, optimizer, RNG states, step)
``loss_log``               the ``log.csv`` every trainer appends to (the one reader and writer)
``audio2lmk``              Audio2Mesh / Audio2Pose training (§3.1)
``audio2lmk_config``       its typed config (sizes, budgets, data) and fresh models from it
``sampling``               which samples each process takes, and a step's random draws (1 → N processes)
``lmk2video_data``         frame pairs (stage 1) and clip windows (stage 2): mini corpus or prepared folder
``lmk2video_cache``        the frozen VAE's and CLIP encoder's outputs per training frame, computed once
``lmk2video_config``       the Lmk2Video recipes: stage 1, stage 2, the small VAE (official values)
``optim``                  min-SNR weights, learning-rate schedule, AdamW (8-bit), a float64 gradient clip
``lmk2video``              stage 1: min-SNR v-prediction loss on frame pairs, on accelerate (§3.2)
``lmk2video_stage2``       stage 2: the motion modules only, on clips
``lmk2video_vae``          the small VAE of the CPU profiles, pre-trained on corpus frames
=========================  =======================================================================

The networks are :mod:`aniportrait_lib.models.lmk2video`'s; exports are written by
:mod:`aniportrait_lib.weights`; experiments that compare trainings live in :mod:`aniportrait_lib.studies`;
which sizes and budgets each profile trains with is :mod:`aniportrait_lib.profiles`' choice.
"""
