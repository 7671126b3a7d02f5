"""Reenactment and editing (paper: face reenactment; official ``scripts/vid2vid.py``, spec §3.6).

AniPortrait's intermediate representation — a canonical 3D face mesh and a head pose per frame —
can be driven by another face's video and edited before it is drawn. The geometry both this package and
the pipelines use lives below them, in :mod:`aniportrait_lib.landmarks`: ``performance`` (``Performance``:
mesh (T, 468, 3), pose (T, 6), reference mesh/matrix, fps, size) and ``retarget`` (official vid2vid
retargeting with absolute rotation, and the relative-rotation option). Modules here, one idea each:

| module | what it does |
|---|---|
| :mod:`.controls` | the editable controls (pose offsets, scale, mouth, lip sync, smile, blinks) |
| :mod:`.keyframes` | keyframe tracks: linear / monotone cubic Hermite, holds at both ends |
| :mod:`.edit_document` | ``EditDocument``: tracks saved as versioned, validated JSON; the example edit |
| :mod:`.face_regions` | named vertex groups and the expression fields built on them |
| :mod:`.edits` | ``apply_edits(performance, document) -> Performance`` |
| :mod:`.preview` | pose images, the warped-portrait stand-in renderer, render backends |
| :mod:`.lmk2video_render` | the edited performance through the Lmk2Video pipeline, beside its warp preview |
| :mod:`.editor_state` | the interactive editor's logic (no widgets; unit-tested) |
| :mod:`.widget` | ``EditorWidget``: ipywidgets around the editor state |
| :mod:`.sources` | demo inputs: the mini corpus to drive from, a mirrored portrait to drive |

Typical use::

    performance = retarget(extractor.detect_video("source.mp4"), reference, RetargetConfig("relative"))
    edited = apply_edits(performance, load_edits("edits.json"))
    render_video(edited, reference, "out.mp4", backend="warp")
    Lmk2VideoRenderer.from_weights("kit:outputs/runs/latest-cpu", reference).render(edited, "lmk2video.mp4")
"""
