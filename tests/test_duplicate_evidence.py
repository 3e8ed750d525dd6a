"""Tests of the duplicate evidence: alignment channels, closed triangles, and
hash matches that the CNN contradicts (hybridclf.inspect._evidence)."""

import cv2
import numpy as np
import pytest
import skimage.data

from hybridclf.inspect._alignment import aligned_pairs
from hybridclf.inspect._duplicates import SearchSettings
from hybridclf.inspect._evidence import duplicate_pairs
from hybridclf.inspect._grouping import open_triangles
from hybridclf.inspect._scan import scan_files


def _photo(name, size=128):
    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return cv2.resize(image[..., :3], (size, size), interpolation=cv2.INTER_AREA)


def _scan(tmp_path, images, quality=95):
    paths = []
    for name, rgb in images.items():
        path = tmp_path / f"{name}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, quality])
        paths.append(str(path))
    return scan_files(paths)[0]


def _hue_shifted(rgb, shift):
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _turned(rgb, degrees):
    h, w = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(rgb, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def colour_blocks():
    """A photo whose grey levels depend on hue: blocks of colour over a texture."""
    rng = np.random.default_rng(0)
    value = np.clip(_photo("camera", 160), 60, 255)[..., 0]
    hue = cv2.resize(rng.integers(0, 180, (6, 6)).astype(np.uint8), (160, 160),
                     interpolation=cv2.INTER_NEAREST)
    hsv = np.dstack([hue, np.full_like(hue, 255), value])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def test_a_hue_shifted_and_turned_copy_aligns_on_the_value_channel(
        colour_blocks, tmp_path):
    copy = _turned(_hue_shifted(colour_blocks, 60), 6)
    records = _scan(tmp_path, {"original": colour_blocks, "copy": copy})
    [(i, j, similarity)] = aligned_pairs(records, [(0, 1)], 0.93)
    assert (i, j) == (0, 1)
    assert similarity >= 0.93
    # the grey images alone do not align: the hue shift moved their grey levels
    for record in records:
        record.align_value = None
    assert all(s < 0.93 for *_, s in aligned_pairs(records, [(0, 1)], 0.93))


def test_aligned_pairs_in_threads_match_one_thread(colour_blocks, tmp_path):
    images = {"original": colour_blocks,
              "turned": _turned(colour_blocks, 8),
              "shifted": _hue_shifted(colour_blocks, 40),
              "coffee": _photo("coffee"), "chelsea": _photo("chelsea")}
    records = _scan(tmp_path, images)
    candidates = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    one = aligned_pairs(records, candidates, 0.93, n_jobs=1)
    two = aligned_pairs(records, candidates, 0.93, n_jobs=2)
    assert sorted(one) == sorted(two)
    found = {(i, j) for i, j, s in one if s >= 0.93}
    assert {(0, 1), (0, 2)} <= found
    assert not found & {(0, 3), (0, 4), (3, 4)}


def test_open_triangles_lists_unlinked_pairs_with_a_shared_partner():
    # 0 is linked to 1 and 2, and 2 to 3: (1, 2) and (0, 3) share a partner
    pairs = [(0, 1), (0, 2), (2, 3), (4, 5)]
    assert open_triangles(pairs) == [(0, 3), (1, 2)]
    assert open_triangles(pairs, checked={(0, 3)}) == [(1, 2)]
    assert open_triangles(pairs + [(1, 2), (0, 3)]) == [(1, 3)]


@pytest.fixture(scope="module")
def hash_twins(tmp_path_factory):
    """coffee; a different photo with coffee's coarse tones (same hash); a copy."""
    coffee, chelsea = _photo("coffee"), _photo("chelsea")

    def coarse(x):
        return cv2.GaussianBlur(x.astype(np.float32), (0, 0), 4)

    twin = np.clip(coarse(coffee) + chelsea - coarse(chelsea), 0, 255)
    records = _scan(tmp_path_factory.mktemp("twins"),
                    {"coffee": coffee, "twin": twin.astype(np.uint8)})
    records += _scan(tmp_path_factory.mktemp("copy"), {"copy": coffee}, quality=60)
    return records


def test_a_hash_match_the_cnn_contradicts_must_align(hash_twins):
    settings = SearchSettings(10, True, 0.95, 0.93, "average")
    # embeddings that neither join nor contradict: the hashes decide
    alike = np.linalg.cholesky(np.full((3, 3), 0.8) + 0.2 * np.eye(3))
    pairs, _ = duplicate_pairs(hash_twins, alike.astype(np.float32), settings)
    assert {(p.i, p.j) for p in pairs} == {(0, 1), (0, 2), (1, 2)}
    # embeddings that call all three unrelated: only the real copy aligns
    pairs, near = duplicate_pairs(hash_twins, np.eye(3, dtype=np.float32), settings)
    assert [(p.i, p.j, p.evidence) for p in pairs] == [(0, 2, "aligned pixels")]
    unconfirmed = {(p.i, p.j) for p in near if "unconfirmed" in p.evidence}
    assert unconfirmed == {(0, 1), (1, 2)}
    # without the alignment check nothing can confirm or refute a hash match
    settings = SearchSettings(10, True, 0.95, None, "average")
    pairs, _ = duplicate_pairs(hash_twins, np.eye(3, dtype=np.float32), settings)
    assert {(p.i, p.j) for p in pairs} == {(0, 1), (0, 2), (1, 2)}


def test_features_found_for_one_pair_serve_the_next(colour_blocks, tmp_path):
    """A file first aligned as the first of a pair gets its mirror's features
    once it is the second of one, and the answers match a fresh search."""
    images = {"original": colour_blocks, "mirrored": colour_blocks[:, ::-1],
              "coffee": _photo("coffee")}
    records = _scan(tmp_path, images)
    # 0 only as first: its mirror is not needed yet
    aligned_pairs(records, [(0, 2)], 0.93)
    assert len(records[0].align_features["align_gray"]) == 1
    # the mirrored copy aligns with 0's mirror only
    reused = aligned_pairs(records, [(1, 0), (0, 2)], 0.93)
    assert len(records[0].align_features["align_gray"]) == 2
    fresh = aligned_pairs(_scan(tmp_path, images), [(1, 0), (0, 2)], 0.93)
    assert sorted(reused) == sorted(fresh)
    assert {(i, j) for i, j, s in reused if s >= 0.93} == {(1, 0)}


def test_the_value_hash_of_a_hue_shifted_copy_stays(colour_blocks, tmp_path):
    records = _scan(tmp_path, {"original": colour_blocks,
                               "shifted": _hue_shifted(colour_blocks, 60)})
    value = np.bitwise_count(records[0].vhash[0] ^ records[1].vhash[0])
    grey = np.bitwise_count(records[0].phash[0] ^ records[1].phash[0])
    assert value <= 3 < grey
    # a colour photo is not taken for a greyscale one stored as RGB
    assert not any(record.grayscale_as_colour for record in records)
    grey_copy = _scan(tmp_path, {"grey": np.repeat(colour_blocks[..., :1], 3, -1)})
    assert grey_copy[0].grayscale_as_colour


def test_hash_distances_to_takes_the_closest_variant_and_reference():
    # evaluate's check compares each test photo's flips and quarter turns with
    # the upright hashes recorded at training, as inspect pairs them
    from hybridclf.inspect._pairs import hash_distances_to

    reference = np.array([0, 0xFF], dtype=np.uint64)
    hashes = np.full((3, 8), 0b111, dtype=np.uint64)  # 3 bits from 0
    hashes[0, 5] = 0xFE  # a quarter turn 1 bit from 0xFF
    hashes[2] = 0  # no hash (flat or undecodable): never a match
    assert hash_distances_to(hashes, reference).tolist() == [1, 3, 65]
    assert hash_distances_to(hashes, reference, rotations=False).tolist() == [
        3, 3, 65]
    assert hash_distances_to(hashes, reference[:0]).tolist() == [65, 65, 65]
