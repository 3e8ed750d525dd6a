"""Photo quality: the inspector's measures and thresholds, per photo."""

import cv2
import numpy as np
import pytest
import skimage.data

from hybridclf import quality
from hybridclf.inspect import InspectThresholds, inspect_dataset
from hybridclf.quality import (
    measure_photo,
    photo_issues,
    photo_quality,
    quality_message,
)


@pytest.fixture
def photo():
    return skimage.data.astronaut()


def test_a_good_photo_has_no_issue(photo):
    answer = photo_quality(photo)
    assert answer == {"ok": True, "issues": [], "measures": answer["measures"]}
    assert answer["measures"]["width"] == photo.shape[1]


@pytest.mark.parametrize("change, issue", [
    (lambda im: cv2.GaussianBlur(im, (0, 0), 3), "blurry"),
    (lambda im: (im // 12).astype(np.uint8), "too_dark"),
    (lambda im: np.clip(im.astype(int) + 200, 0, 255).astype(np.uint8), "too_bright"),
    (lambda im: cv2.resize(im, (24, 24), interpolation=cv2.INTER_AREA), "too_small"),
])
def test_each_issue_is_found(photo, change, issue):
    answer = photo_quality(change(photo))
    assert not answer["ok"]
    assert issue in answer["issues"]


def test_a_flat_image_is_low_information_not_blurry():
    assert photo_issues(measure_photo(np.full((64, 64, 3), 128, np.uint8))) == [
        "low_information"]


def test_measures_do_not_depend_on_the_resolution(photo):
    small = measure_photo(cv2.resize(photo, (256, 256), interpolation=cv2.INTER_AREA))
    large = measure_photo(photo)
    assert large["sharpness"] == pytest.approx(small["sharpness"])
    assert large["brightness"] == pytest.approx(small["brightness"])


def test_thresholds_are_the_inspectors():
    defaults = InspectThresholds()
    assert defaults.blur_threshold == quality.BLUR_THRESHOLD
    assert defaults.dark_threshold == quality.DARK_THRESHOLD
    assert defaults.bright_threshold == quality.BRIGHT_THRESHOLD
    assert defaults.entropy_threshold == quality.ENTROPY_THRESHOLD
    assert defaults.min_size == quality.MIN_SIZE


def test_the_message_names_every_issue_in_words():
    assert quality_message([]) == ""
    text = quality_message(["blurry", "too_bright"])
    assert text.startswith("This photo is blurry and over-exposed: ")
    assert "retake it if you can" in text


def test_a_bad_array_is_explained():
    with pytest.raises(ValueError, match="uint8 image.*read_image"):
        measure_photo(np.zeros((4, 4, 3), np.float32))


def test_same_answer_as_the_inspector(photo, tmp_path):
    (tmp_path / "a").mkdir()
    changed = {f"blur{s}.png": cv2.GaussianBlur(photo, (0, 0), s) for s in (1, 2, 3, 5)}
    changed["dark.png"] = (photo // 10).astype(np.uint8)
    changed["sharp.png"] = photo
    for name, image in changed.items():
        cv2.imwrite(str(tmp_path / "a" / name), image[..., ::-1])
    report = inspect_dataset(tmp_path, check_duplicates=False, quick=True)
    kinds = {"blurry", "too_dark", "too_bright", "too_small", "low_information"}
    found = {row["file"].rsplit("/", 1)[-1]: sorted(
        i["kind"] for i in row["issues"] if i["kind"] in kinds) for row in report.files}
    ours = {name: sorted(photo_quality(image)["issues"])
            for name, image in changed.items()}
    assert found == ours
    assert ours["blur5.png"] == ["blurry"] and ours["sharp.png"] == []
