"""The duplicate search's cache: a second search decodes only new files and
aligns only new pairs, and finds the groups a search without it finds."""

import dataclasses
import shutil

import cv2
import numpy as np
import pytest
import skimage.data

from hybridclf import find_duplicate_groups
from hybridclf.inspect import _alignment, _scan
from hybridclf.inspect._scan_cache import ScanCache


def _photo(name, size=120):
    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return cv2.resize(image[..., :3], (size, size), interpolation=cv2.INTER_AREA)


def _turned_blurred(image, angle):
    turn = cv2.getRotationMatrix2D((60, 60), angle, 1.0)
    return cv2.GaussianBlur(cv2.warpAffine(image, turn, (120, 120),
                                           borderMode=cv2.BORDER_REFLECT),
                            (0, 0), 3.0)


@pytest.fixture
def folders(tmp_path):
    """Photos with copies that only the alignment finds, a byte copy, a flat
    image and a broken file; two more copies and a photo kept aside."""
    data, extra = tmp_path / "data", tmp_path / "extra"
    data.mkdir()
    extra.mkdir()
    astro, coffee = _photo("astronaut"), _photo("coffee")
    images = {"astro.png": astro, "astro_turned.png": _turned_blurred(astro, 4),
              "coffee.png": coffee, "chelsea.png": _photo("chelsea"),
              "black.png": np.zeros((60, 60, 3), np.uint8)}
    for name, image in images.items():
        cv2.imwrite(str(data / name), image[..., ::-1])
    shutil.copy(data / "coffee.png", data / "coffee_copy.png")
    (data / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    for name, image in {"astro_turned_more.png": _turned_blurred(astro, -5),
                        "coffee_turned.png": _turned_blurred(coffee, 3),
                        "rocket.png": _photo("rocket")}.items():
        cv2.imwrite(str(extra / name), image[..., ::-1])
    return data, extra


def _files(*folders):
    return sorted(str(p) for folder in folders for p in folder.iterdir())


@pytest.fixture
def counted(monkeypatch):
    """The files decoded and the pairs aligned by the searches."""
    seen = {"decoded": [], "aligned": []}
    scan_files, aligned_pairs = _scan.scan_files, _alignment.aligned_pairs

    def counting_scan(paths, **kw):
        seen["decoded"] += list(paths)
        return scan_files(paths, **kw)

    def counting_align(records, candidates, *args, **kw):
        candidates = list(candidates)
        seen["aligned"] += [(records[i].path, records[j].path) for i, j in candidates]
        return aligned_pairs(records, candidates, *args, **kw)

    monkeypatch.setattr(_scan, "scan_files", counting_scan)
    monkeypatch.setattr(_alignment, "aligned_pairs", counting_align)
    return seen


def test_second_search_decodes_only_new_files_and_finds_the_same_groups(
        folders, tmp_path, counted):
    data, extra = folders
    cache = tmp_path / "cache"
    before = _files(data)
    groups = find_duplicate_groups(before, cache_dir=cache)
    assert groups.tolist() == find_duplicate_groups(before).tolist()
    assert groups[before.index(str(data / "astro_turned.png"))] == groups[
        before.index(str(data / "astro.png"))]  # found by alignment
    first = {"decoded": set(counted["decoded"]), "aligned": set(counted["aligned"])}
    assert first["aligned"], "the data has pairs to align"

    shutil.copytree(extra, data, dirs_exist_ok=True)
    after = _files(data)
    for seen in counted.values():
        seen.clear()
    warm = find_duplicate_groups(after, cache_dir=cache)
    new = {str(data / p.name) for p in extra.iterdir()}
    # decoded: the new files, and the broken file (nothing of it is kept)
    assert set(counted["decoded"]) == new | {str(data / "broken.jpg")}
    assert counted["aligned"]
    assert all(set(pair) & new for pair in counted["aligned"])
    for seen in counted.values():
        seen.clear()
    assert warm.tolist() == find_duplicate_groups(after).tolist()
    assert warm[after.index(str(data / "coffee_turned.png"))] == warm[
        after.index(str(data / "coffee.png"))]


def test_records_read_from_the_cache_equal_scanned_ones(folders, tmp_path):
    data, _ = folders
    paths = _files(data)
    cache = ScanCache(tmp_path / "cache")
    scanned = cache.scan_files(paths)
    assert cache.n_scanned == len(paths)
    again = cache.scan_files(paths)
    assert cache.n_scanned == 1  # the broken file
    for a, b in zip(scanned, again):
        for field in dataclasses.fields(a):
            if field.name in ("align_gray", "align_value"):
                continue  # made again only for a pair to align
            np.testing.assert_equal(getattr(b, field.name), getattr(a, field.name))


def test_a_renamed_file_is_still_found_and_the_cache_can_be_deleted(folders,
                                                                    tmp_path):
    data, _ = folders
    cache = ScanCache(tmp_path / "cache")
    cache.scan_files(_files(data))
    (data / "chelsea.png").rename(data / "cat.png")
    records = cache.scan_files(_files(data))
    assert cache.n_scanned == 1
    assert str(data / "cat.png") in [r.path for r in records]
    shutil.rmtree(tmp_path / "cache")
    cache.scan_files(_files(data))
    assert cache.n_scanned == len(_files(data))
