import numpy as np
import pytest

from aniportrait_lib.data import samples
from aniportrait_lib.data.speech import SpeechRequest, synthesize, synthesize_many


def test_committed_samples_match_their_manifest():
    assert samples.verify_samples() == {"portrait.png": True, "speech.wav": True}


def test_regeneration_is_deterministic(tmp_path):
    manifest = samples.write_samples(tmp_path)
    assert samples.verify_samples(tmp_path) == {name: True for name in manifest}
    committed = samples.verify_samples()  # same code, same content as the committed files
    assert all(committed.values())
    assert manifest == __import__("json").loads((samples.DATA_SAMPLES / samples.MANIFEST_NAME).read_text())


def test_loaded_samples_have_documented_shapes():
    portrait = samples.load_portrait()
    assert portrait.shape == (512, 512, 3) and portrait.dtype == np.uint8
    speech = samples.load_speech()
    assert speech.sample_rate == 16_000 and speech.samples.ndim == 1
    assert 4.0 < speech.duration < 15.0
    assert np.abs(speech.samples).max() > 0.1  # not silence


def test_missing_sample_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="aniportrait_lib.data.samples"):
        samples.load_portrait(tmp_path)


def test_speech_timings_are_ordered_and_inside_the_audio():
    speech = synthesize("Open wide and say papa.", voice="en", rate=170)
    starts = [p.start for p in speech.phonemes]
    assert len(starts) > 10 and starts == sorted(starts)
    assert 0 <= starts[0] and starts[-1] <= speech.duration
    assert [w.text for w in speech.words] == ["Open", "wide", "and", "say", "papa."]


def test_same_request_gives_identical_samples_and_voices_differ():
    a, b, c = synthesize_many(
        [SpeechRequest("one two"), SpeechRequest("one two"), SpeechRequest("one two", "en+f3")]
    )
    assert np.array_equal(a.samples, b.samples)
    assert len(a.samples) != len(c.samples) or not np.array_equal(a.samples, c.samples)


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="no letters"):
        synthesize("  123 ")
    with pytest.raises(ValueError, match="no voice"):
        synthesize("hello", voice="no-such-voice")
