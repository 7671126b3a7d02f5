"""Data: the kit's samples, the mini corpus (a talking-head dataset with ground truth) and real video prepared
for training (AniPortrait trains on HDTF, VFHQ and CelebV-HQ; spec §4).

Reading order:

===================  ===========================================================================
module               what it holds
===================  ===========================================================================
``samples``          ``data_samples/``: the reference portrait and a short speech clip
``corpus_text``      what the mini corpus says, and with which voices
``speech``           offline speech synthesis (eSpeak NG) with word and phoneme timings
``visemes``          phonemes → mouth-shape curves over time
``head_motion``      head sway, nods and blinks
``face_rig``         a small rig on MediaPipe's canonical mesh (jaw, lips, blinks)
``warp``, ``render`` a portrait warped to follow moved landmarks; one clip rendered
``mini_corpus``      the mini corpus: made deterministically, resumable, split by sentence
``corpus_frames``    a corpus clip as the Lmk2Video models see it: face-cropped frames, true landmarks
``face_track``       one clip over time: fixed frame rate, one stable square crop, gaps
``video_passes``     one source video → clips: tracked face crops, 30 fps, 16 kHz audio, landmarks
``prepare``          a folder of talking-head videos → those clips, resumably, and the manifest
``manifest``         the prepared dataset on disk and its reader
``shards``           N machines, one dataset: shard folders checked, then merged (hard links)
``audio_dataset``    Audio2Lmk training items (speech with per-frame mesh offsets and pose)
===================  ===========================================================================
"""
