"""What each notebook's experiment needs beyond the library's stages: orchestration, tables, verdict
prose, regression tolerances and plots - one module per notebook, named after it.

The stages themselves (models, training recipes, metrics, weights) live in their own packages and know
nothing of notebooks; a study composes them the way its notebook tells the story. Reading order:

===============================  ==================================================================
module                           notebook
===============================  ==================================================================
``pose_guider_study``            03: the three pose guiders trained alike, scored on held-out frames
``train_motion_module``          04: stage 2 from notebook 03's export, stage 1 vs stage 2 over time
``train_motion_module_report``   04: its tables, verdicts, plots, side-by-side video and metrics
===============================  ==================================================================
"""
