import json

import numpy as np
import pytest

from aniportrait_lib.editing.edit_document import (
    SCHEMA,
    EditDocument,
    edits_from_dict,
    example_edits,
    load_edits,
    save_edits,
)
from aniportrait_lib.editing.keyframes import Track


def _payload(**tracks):
    return {"schema": SCHEMA, "version": 1, "tracks": tracks}


def test_round_trip_through_json(tmp_path):
    doc = (
        EditDocument(note="test")
        .with_key("yaw", 10, 15.0)
        .with_key("yaw", 0, 0.0)
        .with_key("blink_left", 3, 1.0, "linear")
    )
    path = save_edits(doc, tmp_path / "edits.json")
    loaded = load_edits(path)
    assert loaded == doc
    payload = json.loads(path.read_text())
    assert payload["version"] == 1 and set(payload["tracks"]) == {"yaw", "blink_left"}
    assert payload["tracks"]["yaw"]["keys"] == [{"frame": 0, "value": 0.0}, {"frame": 10, "value": 15.0}]
    controls = loaded.controls(12)
    assert controls["yaw"][10] == 15.0 and controls["yaw"][11] == 15.0 and controls["scale"][0] == 1.0
    assert loaded.key_frames() == [0, 3, 10]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "JSON object"),
        ({"schema": "other", "version": 1}, "'schema' must be"),
        ({"schema": SCHEMA, "version": 2}, "newer kit"),
        ({**_payload(), "extra": 1}, "unknown top-level"),
        (_payload(jaw={"keys": [{"frame": 0, "value": 1}]}), "unknown control 'jaw'"),
        (_payload(yaw={"keys": [{"frame": 0, "value": 90}]}), r"outside \[-45.0, 45.0\]"),
        (_payload(yaw={"keys": [{"frame": -1, "value": 0}]}), r"keys\[0\].frame must be an integer >= 0"),
        (_payload(yaw={"keys": [{"frame": 1.5, "value": 0}]}), "must be an integer"),
        (_payload(yaw={"keys": [{"frame": 1, "value": "a"}]}), "finite number"),
        (_payload(yaw={"keys": []}), "non-empty list"),
        (_payload(yaw={"keys": [{"frame": 1, "value": 0}, {"frame": 1, "value": 2}]}), "same frame"),
        (_payload(yaw={"interpolation": "cubic", "keys": [{"frame": 1, "value": 0}]}), "interpolation"),
    ],
)
def test_invalid_documents_are_refused_with_the_field_named(payload, message):
    with pytest.raises(ValueError, match=message) as err:
        edits_from_dict(payload, "my_edits.json")
    assert "my_edits.json" in str(err.value)


def test_load_names_the_file(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        load_edits(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_edits(tmp_path / "missing.json")


def test_document_checks_values_and_removes_empty_tracks():
    with pytest.raises(ValueError, match="outside"):
        EditDocument().with_key("blink", 0, 2.0)
    with pytest.raises(ValueError, match="unknown edit control"):
        EditDocument({"nose": Track.from_pairs([(0, 1.0)])})
    doc = EditDocument().with_key("smile", 4, 0.5).without_key("smile", 4)
    assert doc.tracks == {}


def test_example_edit_turns_the_second_half_and_blinks_once():
    controls = example_edits(64).controls(64)
    assert np.all(controls["yaw"][:33] == 0.0) and np.all(controls["yaw"][48:] == 15.0)
    assert controls["blink"].max() == 1.0 and np.count_nonzero(controls["blink"]) == 7
    assert np.all(controls["mouth"] == 1.6)
    with pytest.raises(ValueError, match="at least 16 frames"):
        example_edits(8)
