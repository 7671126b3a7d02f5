"""What each notebook's experiment needs beyond the library's stages: orchestration, tables, verdict
prose, regression tolerances and the figures made of them - one module per notebook, named after it.

The stages themselves (models, training recipes, metrics, weights) live in their own packages and know
nothing of notebooks; a study composes them the way its notebook tells the story, and logs the metrics the
suite compares with ``baselines/`` (names, directions and tolerances live here, next to the prose that reads
them). Reading order:

===============================  ==================================================================
module                           notebook
===============================  ==================================================================
``extract_landmarks``            01: source | pose-image video; extraction metrics
``train_audio2lmk``              02: live loss curves, mouth opening over time, side-by-side video,
                                 Audio2Lmk metrics against two baselines
``configs``                      03, 04: the typed study configs (model + recipe + held-out
                                 evaluation) and their small-profile builders
``pose_guider_study``            03: the three pose guiders trained alike, scored on held-out frames
``train_motion_module``          04: stage 2 from notebook 03's export, stage 1 vs stage 2 over time
``train_motion_module_report``   04: its tables, verdicts, plots, side-by-side video and metrics
``generate_video``               05: every held-out clip generated from speech and scored; verdict
``reenact_and_edit``             06: re-extracting an edited render; reenactment metrics
===============================  ==================================================================

Which sizes and budgets each profile uses is :mod:`aniportrait_lib.profiles`' choice; the kit's plots are
drawn one way everywhere by :mod:`aniportrait_lib.plots`.
"""
