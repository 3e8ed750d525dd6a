"""The records of the photos trained on (train_part.json), read back."""

import json

import pytest

from hybridclf._held_out import near_trained_on
from hybridclf.exceptions import ModelLoadError


def test_near_trained_on_says_nothing_for_a_record_without_fingerprints(tmp_path):
    # train_part.json of an older hybridclf: SHA-256 only
    (tmp_path / "train_part.json").write_text(json.dumps({"sha256": []}))
    assert near_trained_on(tmp_path, ["photo.png"]) is None


def test_unreadable_fingerprints_name_the_file_and_the_fix(tmp_path):
    (tmp_path / "train_part.json").write_text(json.dumps(
        {"sha256": [], "fingerprints": {"phash": ["not hex"], "vhash": []}}))
    with pytest.raises(ModelLoadError, match=r"train_part\.json.*'phash'.*Copy "
                       "the whole model directory again"):
        near_trained_on(tmp_path, ["photo.png"])


def test_photos_trained_on_from_memory_are_fingerprinted_as_files_are(tmp_path):
    # arrays got no hashes: a model trained on them from the Python API
    # recorded none, and evaluate named no near copy of them
    import cv2
    import skimage.data

    from hybridclf.inspect._fingerprint import fingerprint_record

    image = skimage.data.astronaut()[::2, ::2]
    cv2.imwrite(str(tmp_path / "photo.png"), image[:, :, ::-1])
    from_memory = fingerprint_record([image])
    assert from_memory["phash"] and from_memory["vhash"]
    assert from_memory == fingerprint_record([str(tmp_path / "photo.png")])
    encoded = cv2.imencode(".png", image[:, :, ::-1])[1].tobytes()
    assert fingerprint_record([encoded]) == from_memory
