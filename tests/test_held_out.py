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
