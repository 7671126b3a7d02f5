"""Landmarks stage of the kit (paper §3.1 "Audio2Lmk" inputs; official ``src/utils`` landmark code).

Modules, one idea each:

| module | what it does |
|---|---|
| :mod:`.model_file` | find / fetch / verify MediaPipe's ``face_landmarker.task`` |
| :mod:`.protowire`, :mod:`.canonical_face` | read the canonical face model out of the ``.task`` |
| :mod:`.camera` | MediaPipe's perspective camera; canonical 3D → image pixels |
| :mod:`.pose` | 6-vector head pose (euler xyz degrees + translation) ↔ 4×4, smoothing |
| :mod:`.face_geometry` | image landmarks → metric mesh ``lmks3d`` + ``trans_mat`` (geometry pipeline) |
| :mod:`.image_input`, :mod:`.video_frames`, :mod:`.parallel_blocks` | inputs, decoding thread, workers |
| :mod:`.extract` | ``LandmarkExtractor``: images and videos → ``lmks``, ``lmks3d``, ``trans_mat``, ``bs`` |
| :mod:`.connections`, :mod:`.drawing` | pose images exactly like the official visualiser |
| :mod:`.pose_template` | reference video → ``pose_temp.npy`` |
| :mod:`.mouth` | the lip vertices and the mouth opening on the 468-vertex mesh |
| :mod:`.performance` | ``Performance``: a face's mesh and head pose per frame, drawn at any size |
| :mod:`.retarget` | reenactment: a source video's expressions and motion moved onto a portrait |

Heavy imports (MediaPipe) happen only when :mod:`.extract` / :mod:`.connections` are imported.
"""
