"""ImageLoader, read_image and load_image_folder."""

import io
import os
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hybridclf import ImageLoader, ImageLoadError, SkippedFilesWarning, read_image
from hybridclf.io import fit_to_size, load_image_folder

from .conftest import bomb_jpeg, bomb_png, require_shared
from .strategies import single_images

# what each file of ../shared/data/broken must give: a reason, or None (loads)
BROKEN_EXPECTED = {
    "zero_bytes.jpg": "empty file",
    "text_file.png": "not an image",
    "notes.txt": "not an image",
    "truncated_half.jpg": "truncated",
    "one_pixel_1x1.png": "too small",
}


def _encode(image, fmt, **kwargs):
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _broken_files():
    root = require_shared("broken")
    return sorted(
        os.path.join(d, f) for d, _, files in os.walk(root) for f in files
    )


# -- the shared folder of awkward files ---------------------------------------
def test_every_broken_file_loads_or_is_reported():
    files = _broken_files()
    assert len(files) >= 25  # 26 entries, one of them the nested folder
    loader = ImageLoader(size=64)
    for path in files:
        expected = BROKEN_EXPECTED.get(os.path.basename(path))
        if expected is None:
            out = loader.transform([path])
            assert out.shape == (1, 64, 64, 3) and out.dtype == np.uint8
        else:
            with pytest.raises(ImageLoadError, match=expected) as info:
                loader.transform([path])
            assert info.value.failures[0][0] == path


def test_loader_reports_every_bad_file_of_a_batch_at_once():
    files = _broken_files()
    with pytest.raises(ImageLoadError) as info:
        ImageLoader(size=32, n_jobs=2).transform(files)
    failed = {os.path.basename(p): reason for p, reason in info.value.failures}
    assert set(failed) == set(BROKEN_EXPECTED)
    for name, reason in BROKEN_EXPECTED.items():
        assert reason in failed[name]
        assert name in str(info.value)


def test_read_each_reads_the_good_images_and_gives_each_bad_one_its_reason(
        real_images):
    good = _encode(Image.fromarray(real_images[1]), "PNG")
    items = [real_images[0], b"not an image", good, good[:40]]
    loader = ImageLoader(size=64, n_jobs=2)
    images, reasons = loader.read_each(items)
    assert reasons[0] is None and reasons[2] is None
    assert "not an image" in reasons[1] and reasons[3]
    np.testing.assert_array_equal(
        images, loader.transform([real_images[0], good]))
    with pytest.raises(ImageLoadError) as info:
        loader.transform(items)
    assert [source for source, _ in info.value.failures] == ["<bytes 1>",
                                                             "<bytes 3>"]


def test_each_image_is_measured_as_decoded_before_it_is_resized(real_images):
    good = _encode(Image.fromarray(real_images[1][:40]), "PNG")
    items = [real_images[0], b"not an image", good]
    loader = ImageLoader(size=32)
    images, reasons, shapes = loader.read_each(items, measure=np.shape)
    # one measure per image read, at its own size, in the order of the images
    assert shapes == [real_images[0].shape, real_images[1][:40].shape]
    np.testing.assert_array_equal(images, loader.transform([items[0], good]))
    assert reasons[1] is not None
    images, shapes = loader.read_measured([good], np.shape)
    assert images.shape == (1, 32, 32, 3) and shapes == [(40, 64, 3)]
    # an unreadable image fails as in transform
    with pytest.raises(ImageLoadError) as info:
        loader.read_measured(items, np.shape)
    assert [source for source, _ in info.value.failures] == ["<bytes 1>"]


def test_broken_exif_rotated_photo_is_upright():
    path = require_shared("broken") / "exif_orientation6.jpg"
    with Image.open(path) as img:
        stored = img.size  # (width, height) before rotation
        upright = np.asarray(img.transpose(Image.Transpose.ROTATE_270).convert("RGB"))
    image = read_image(path)
    assert image.shape[:2] == (stored[0], stored[1])
    assert np.abs(image.astype(int) - upright).mean() < 2


@pytest.mark.parametrize(
    "name", ["cmyk.jpg", "palette_P.png", "grayscale_L.png", "sixteen_bit_rgb.png",
             "webp_image.webp", "tiff_image.tiff", "bmp_image.bmp", "animated.gif"]
)
def test_broken_converted_formats_match_pillow(name):
    path = require_shared("broken") / name
    with Image.open(path) as img:
        expected = np.asarray(img.convert("RGB"))
    image = read_image(path)
    assert image.shape == expected.shape
    assert np.abs(image.astype(int) - expected).max() <= 2


def test_broken_sixteen_bit_grey_is_scaled_not_clipped():
    path = require_shared("broken") / "sixteen_bit_gray.png"
    raw = np.asarray(Image.open(path), dtype=np.int64)
    image = read_image(path)
    assert raw.max() > 255  # the file really is 16-bit
    np.testing.assert_array_equal(image[..., 0], np.round(raw / 257).astype(np.uint8))


# -- conversions, on images made here -----------------------------------------
def test_exif_orientation_applied_to_made_jpeg():
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image = read_image(_encode(img, "JPEG", exif=exif, quality=95))
    assert image.shape == (40, 20, 3)
    assert image[5, 10, 0] > 200 and image[35, 10, 2] > 200  # red now on top


def test_rgba_is_blended_onto_background():
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :8, 3] = 0
    rgba[:, 8:, 3] = 255
    rgba[0, 0, 3] = 128
    data = _encode(Image.fromarray(rgba, "RGBA"), "PNG")
    image = read_image(data, background=(0, 0, 100))
    assert tuple(image[5, 2]) == (0, 0, 100)
    assert tuple(image[5, 12]) == (200, 0, 0)
    assert tuple(image[0, 0]) == (round(200 * 128 / 255), 0, round(100 * 127 / 255))


def test_palette_with_transparency_uses_background():
    img = Image.new("P", (16, 16), 1)
    img.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    img.info["transparency"] = 1
    image = read_image(_encode(img, "PNG", transparency=1), background=(7, 8, 9))
    assert tuple(image[3, 3]) == (7, 8, 9)


def test_sixteen_bit_grey_made_here():
    arr = np.array([[0, 257 * 100], [65535, 257 * 3]] * 8, dtype=np.uint16)
    arr = np.tile(arr, (1, 8))
    image = read_image(_encode(Image.fromarray(arr), "PNG"))
    assert image[0, 0, 0] == 0 and image[0, 1, 0] == 100
    assert image[1, 0, 0] == 255 and image[1, 1, 0] == 3


def test_cmyk_jpeg_matches_pillow_conversion():
    img = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # red
    image = read_image(_encode(img, "JPEG", quality=95))
    assert image[8, 8, 0] > 200 and image[8, 8, 1] < 60 and image[8, 8, 2] < 60


def test_truncated_jpeg_is_reported_not_filled():
    data = _encode(Image.fromarray(np.full((64, 64, 3), 90, np.uint8)), "JPEG")
    with pytest.raises(ImageLoadError, match="truncated"):
        read_image(data[: len(data) // 2])


def test_jpeg_with_trailing_bytes_still_loads():
    data = _encode(Image.fromarray(np.full((32, 32, 3), 90, np.uint8)), "JPEG")
    image = read_image(data + b"\x00" * 10)
    assert np.abs(image.astype(int) - 90).max() <= 2


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty file"), (b"just some text", "not an image"),
     (b"\x00\x01\x02\x03" * 8, "not an image")],
)
def test_non_images_named_like_images(tmp_path, content, reason):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=reason) as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageLoadError, match="file not found"):
        ImageLoader().transform([tmp_path / "nope.jpg"])
    with pytest.raises(ImageLoadError, match="directory"):
        ImageLoader().transform([tmp_path])


def test_too_small_names_the_parameter():
    with pytest.raises(ImageLoadError, match="'min_size' parameter"):
        ImageLoader(min_size=16).transform([np.zeros((8, 40), np.uint8)])
    assert ImageLoader(min_size=8, size=8).transform([np.zeros((8, 40))]).shape == (
        1, 8, 8, 3)


@pytest.mark.parametrize("dtype, scale", [(np.uint8, 255), (np.uint16, 65535),
                                          (np.float32, 1.0), (np.float64, 1.0)])
def test_array_dtypes_convert_to_the_same_uint8(dtype, scale):
    values = np.array([0, 51, 102, 255], dtype=np.float64) / 255
    arr = np.tile((values * scale).astype(dtype), (16, 4))
    image = ImageLoader(size=(16, 16)).transform([arr])[0]
    np.testing.assert_array_equal(image[0, :4, 0], [0, 51, 102, 255])


def test_float_out_of_range_is_rejected_with_the_fix():
    with pytest.raises(ValueError, match="Divide by 255"):
        read_image(np.full((20, 20, 3), 200.0))


def test_single_path_is_rejected():
    with pytest.raises(TypeError, match="Wrap it in a list"):
        ImageLoader().transform("photo.jpg")


def test_single_image_array_is_rejected_with_the_fix(real_images):
    # read as 64 greyscale images 3 pixels wide: ImageLoadError listed each as
    # "too small (3x64 pixels)" and advised lowering 'min_size'
    with pytest.raises(ValueError, match=r"For one colour image, pass \[image\]"):
        ImageLoader().transform(real_images[0])
    assert ImageLoader(size=32).transform(real_images[0][np.newaxis]).shape == (
        1, 32, 32, 3)


def test_mixed_inputs_and_pathlike(tmp_path, real_images):
    path = tmp_path / "a.png"
    Image.fromarray(real_images[0]).save(path)
    data = _encode(Image.fromarray(real_images[1]), "PNG")
    out = ImageLoader(size=64).transform([path, str(path), data, real_images[2]])
    np.testing.assert_array_equal(out[0], real_images[0])
    np.testing.assert_array_equal(out[1], real_images[0])
    np.testing.assert_array_equal(out[2], real_images[1])
    np.testing.assert_array_equal(out[3], real_images[2])


def test_threads_give_the_same_images(real_images):
    images = list(real_images) * 3
    one = ImageLoader(size=(40, 50), n_jobs=1).transform(images)
    two = ImageLoader(size=(40, 50), n_jobs=2).transform(images)
    np.testing.assert_array_equal(one, two)


def test_load_error_pickles():
    err = ImageLoadError([("a.jpg", "truncated image data")], hint="fix it")
    again = pickle.loads(pickle.dumps(err))
    assert again.failures == err.failures and str(again) == str(err)


# -- resizing -----------------------------------------------------------------
def test_pad_keeps_whole_image_and_fills_borders():
    wide = np.full((10, 40, 3), 50, np.uint8)
    out = fit_to_size(wide, (20, 20), "pad", background=(1, 2, 3))
    assert tuple(out[0, 10]) == (1, 2, 3) and tuple(out[19, 10]) == (1, 2, 3)
    assert tuple(out[10, 0]) == (50, 50, 50) and tuple(out[10, 19]) == (50, 50, 50)


def test_crop_cuts_the_centre():
    wide = np.zeros((10, 40, 3), np.uint8)
    wide[:, 15:25] = 255
    out = fit_to_size(wide, (10, 10), "crop")
    assert (out == 255).all()


def test_stretch_uses_the_whole_image():
    wide = np.zeros((10, 40, 3), np.uint8)
    wide[:, :20] = 255
    out = fit_to_size(wide, (10, 10), "stretch")
    assert (out[:, :4] == 255).all() and (out[:, 6:] == 0).all()


@settings(max_examples=40, deadline=None)
@given(
    image=single_images(),
    size=st.tuples(st.integers(1, 48), st.integers(1, 48)),
    aspect=st.sampled_from(["pad", "crop", "stretch"]),
)
def test_any_array_becomes_rgb_uint8_of_the_asked_size(image, size, aspect):
    out = ImageLoader(size=size, aspect=aspect, min_size=1).transform([image])
    assert out.shape == (1, *size, 3) and out.dtype == np.uint8


@settings(max_examples=30, deadline=None)
@given(value=st.integers(0, 255), size=st.integers(1, 40),
       aspect=st.sampled_from(["pad", "crop", "stretch"]))
def test_resizing_a_flat_image_keeps_its_colour(value, size, aspect):
    flat = np.full((13, 29, 3), value, np.uint8)
    out = fit_to_size(flat, (size, size), aspect, background=(value,) * 3)
    assert (out == value).all()


# -- folders ------------------------------------------------------------------
def _make_tree(root):
    (root / "cats" / "deep").mkdir(parents=True)
    (root / "dogs").mkdir()
    Image.new("RGB", (20, 20)).save(root / "cats" / "a.JPG", format="JPEG")
    Image.new("RGB", (20, 20)).save(root / "cats" / "deep" / "b", format="PNG")
    Image.new("RGB", (20, 20)).save(root / "dogs" / "c.png", format="JPEG")
    (root / "dogs" / "readme.txt").write_text("not a photo")
    (root / "dogs" / "empty.jpg").write_bytes(b"")
    (root / "loose.jpg").write_bytes(b"")
    (root / ".hidden").mkdir()
    Image.new("RGB", (20, 20)).save(root / ".hidden" / "x.png")


def test_folder_recursive_by_content_with_skips_reported(tmp_path):
    _make_tree(tmp_path)
    with pytest.warns(SkippedFilesWarning) as record:
        paths, labels = load_image_folder(tmp_path)
    names = [os.path.relpath(p, tmp_path) for p in paths]
    assert names == ["cats/a.JPG", os.path.join("cats", "deep", "b"), "dogs/c.png"]
    assert labels == ["cats", "cats", "dogs"]
    message = str(record[0].message)
    for skipped, reason in [("readme.txt", "text"), ("empty.jpg", "empty file"),
                            ("loose.jpg", "not inside a class folder")]:
        line = next(ln for ln in message.splitlines() if skipped in ln)
        assert reason in line


def test_folder_without_skips_warns_nothing(texture_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths, labels = load_image_folder(texture_folder)
    assert len(paths) == 24 and sorted(set(labels)) == ["brick", "grass", "gravel"]


def test_an_augmented_folder_warns_nothing_of_its_manifest(tmp_path):
    # hybridclf augment writes manifest.csv beside the class folders, and
    # train reads it for its groups: "Skipping manifest.csv: not inside a
    # class folder" was a warning on every such training
    (tmp_path / "cat").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "cat" / "a.png")
    (tmp_path / "manifest.csv").write_text("file,label,kind,source\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image_folder(tmp_path)[1] == ["cat"]


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="No images found"):
        load_image_folder(tmp_path)


def test_folder_of_the_shared_broken_files_lists_the_decodable_ones():
    root = require_shared("broken")
    with pytest.warns(SkippedFilesWarning):
        paths, labels = load_image_folder(root)
    # the only class folder is nested/, with its images at two depths
    assert labels == ["nested", "nested"]


def test_read_image_draft_size_decodes_a_large_jpeg_smaller():
    import cv2
    import skimage.data

    big = cv2.resize(skimage.data.astronaut(), (2400, 2000))
    ok, data = cv2.imencode(".jpg", big[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    data = data.tobytes()
    assert read_image(data).shape == (2000, 2400, 3)
    small = read_image(data, draft_size=(256, 256))
    assert small.shape == (500, 600, 3)  # 1/4 scale: the smallest >= 256
    assert np.abs(small.astype(int).mean() - big.mean()) < 2


# -- the pixel budget: decompression bombs are refused from the header ------------
def _no_decoding(monkeypatch):
    """Make every decoder fail loudly: the tests below must not reach one."""
    import cv2
    from PIL import ImageFile

    def refuse(*args, **kwargs):
        raise AssertionError("an image over the pixel budget was decoded")

    monkeypatch.setattr(cv2, "imdecode", refuse)
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("make, declared", [
    (lambda: bomb_jpeg(20000), "400000000 pixels"),  # over Pillow's own limit
    (lambda: bomb_jpeg(9000), "9000x9000 pixels"),
    (lambda: bomb_png(13000), "13000x13000 pixels"),
])
def test_bombs_are_refused_undecoded(make, declared, tmp_path, monkeypatch):
    data = make()
    (tmp_path / "bomb").write_bytes(data)
    _no_decoding(monkeypatch)
    for source in (data, tmp_path / "bomb"):
        with pytest.raises(ImageLoadError, match=declared) as info:
            ImageLoader(size=64).transform([source])
        assert "over the limit of 64000000 pixels" in str(info.value)
        assert "max_pixels" in str(info.value)


def test_pillows_own_limit_is_reported_as_the_budget(monkeypatch):
    # above Pillow's limit (179 MP) Pillow raises on open; the old fallback
    # then decoded the file in full with OpenCV
    _no_decoding(monkeypatch)
    with pytest.raises(ImageLoadError, match="too large.*400000000 pixels"):
        read_image(bomb_jpeg(20000), max_pixels=10**9)


def _frames(fmt, n=3, size=(100, 80)):
    frames = [Image.new("RGB", size, (40 * i, 90, 200)) for i in range(n)]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:])


@pytest.mark.parametrize("data", [
    _encode(Image.new("RGB", (100, 80)), "JPEG"),
    _encode(Image.new("1", (100, 80)), "PNG"),
    _encode(Image.new("RGB", (100, 80)), "BMP"),
    _encode(Image.new("RGB", (100, 80)), "PPM"),
    _encode(Image.new("RGB", (100, 80)), "WEBP"),
    _frames("GIF"), _frames("WEBP"), _frames("TIFF"), _frames("PNG"),
], ids=["jpeg", "png-1bit", "bmp", "ppm", "webp", "gif-animated",
        "webp-animated", "tiff-pages", "apng"])
def test_every_format_checks_the_budget(data, monkeypatch):
    assert read_image(data, max_pixels=8000).shape == (80, 100, 3)
    _no_decoding(monkeypatch)
    with pytest.raises(ImageLoadError, match=r"100x80 pixels.*limit of 7999"):
        read_image(data, max_pixels=7999)


def test_large_legal_jpegs_keep_reduced_decoding(monkeypatch):
    import cv2

    noise = np.random.RandomState(0).randint(0, 255, (1200, 1000, 3), np.uint8)
    data = _encode(Image.fromarray(noise), "JPEG", quality=95)
    assert len(data) > 200_000
    flags = []
    decode = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode",
                        lambda buf, flag: flags.append(flag) or decode(buf, flag))
    ImageLoader(size=64).transform([data])
    assert flags == [cv2.IMREAD_REDUCED_COLOR_8]


def test_max_pixels_is_validated_and_old_loaders_get_the_default():
    from sklearn.utils._param_validation import InvalidParameterError

    from hybridclf.io import DEFAULT_MAX_PIXELS

    with pytest.raises(InvalidParameterError, match="max_pixels"):
        ImageLoader(max_pixels=0).fit()
    with pytest.raises(ValueError, match="'max_pixels' parameter of read_image"):
        read_image(np.zeros((4, 4), np.uint8), max_pixels=0.5)
    old = ImageLoader(size=32)
    del old.max_pixels  # as saved before the parameter existed
    assert pickle.loads(pickle.dumps(old)).get_params()["max_pixels"] == (
        DEFAULT_MAX_PIXELS)


# -- only regular files are read ----------------------------------------------
def _in_thread(function, *args):
    """Run function(*args); fail instead of hanging when it blocks."""
    import threading

    result = {}

    def run():
        try:
            result["value"] = function(*args)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), f"{function.__name__} blocked"
    return result


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifos_sockets_and_devices_are_refused_unopened(tmp_path):
    import socket

    os.mkfifo(tmp_path / "x.jpg")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "s.png"))
        cases = [(tmp_path / "x.jpg", "FIFO"), (tmp_path / "s.png", "socket")]
        if os.path.exists("/dev/zero"):
            cases.append(("/dev/zero", "character device"))
        for path, kind in cases:
            error = _in_thread(read_image, path)["error"]
            assert isinstance(error, ImageLoadError)
            assert f"not a regular file (a {kind}" in str(error)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_the_folder_scan_reports_special_files_and_empty_classes(tmp_path):
    from hybridclf.io import scan_image_folder

    for cls in ("cats", "dogs", "empty"):
        (tmp_path / cls).mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "cats" / "a.png")
    Image.new("RGB", (32, 32)).save(tmp_path / "dogs" / "b.png")
    os.mkfifo(tmp_path / "dogs" / "x.jpg")
    paths, labels, skipped = _in_thread(scan_image_folder, tmp_path)["value"]
    assert labels == ["cats", "dogs"]
    reasons = {os.path.basename(p): r for p, r in skipped}
    assert "FIFO" in reasons["x.jpg"]
    assert "without any image" in reasons["empty"]
    with pytest.warns(SkippedFilesWarning, match=r"(?s)x\.jpg.*FIFO.*empty"):
        assert load_image_folder(tmp_path) == (paths, labels)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_links_to_folders_are_reported_by_every_walk(tmp_path):
    """A linked class folder was "not inside a class folder", a linked
    sub-folder (and its images) left out without a word: by ``train``,
    ``predict`` (no row) and ``inspect`` ("0 image files")."""
    from hybridclf.inspect import inspect_dataset
    from hybridclf.io import LINKED_FOLDER, scan_image_folder
    from hybridclf.prediction import iter_image_files

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    Image.new("RGB", (32, 32)).save(elsewhere / "c.png")
    data = tmp_path / "data"
    (data / "cats").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(data / "cats" / "a.png")
    (data / "dogs").symlink_to(elsewhere)
    (data / "cats" / "more").symlink_to(elsewhere)
    links = {str(data / "dogs"), str(data / "cats" / "more")}
    paths, labels, skipped = scan_image_folder(data)
    assert labels == ["cats"]
    assert dict(skipped) == dict.fromkeys(links, LINKED_FOLDER)
    files = iter_image_files([data])
    assert set(files) == links | {str(data / "cats" / "a.png")}
    with pytest.raises(ImageLoadError, match="a symbolic link to a folder"):
        read_image(data / "dogs")
    report = inspect_dataset(data, quick=True, check_duplicates=False)
    assert {n["file"]: n["reason"] for n in report.non_image_files} == dict.fromkeys(
        links, LINKED_FOLDER)


def test_load_image_folders_merges_classes_with_unique_names(tmp_path):
    from hybridclf.io import load_image_folders

    roots = [tmp_path / "a" / "photos", tmp_path / "b" / "photos",
             tmp_path / "feedback"]
    for root, label in zip(roots, ("cat", "cat", "fox")):
        (root / label).mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(root / label / "1.png")
    paths, labels, names = load_image_folders(roots)
    assert labels == ["cat", "cat", "fox"]
    assert names == ["photos/cat/1.png", "photos-2/cat/1.png", "feedback/fox/1.png"]
    assert paths[2] == str(roots[2] / "fox" / "1.png")
    # one folder: names relative to it, as load_image_folder lists
    assert load_image_folders(roots[0])[2] == ["cat/1.png"]
    with pytest.raises(ValueError, match="name one folder twice"):
        load_image_folders([roots[0], roots[0] / ".." / "photos"])


def test_the_cache_keys_cover_every_module_of_the_io_package():
    # the feature cache and the duplicate-search cache key on the sources of
    # these modules: one left out would let an edited decoder serve stale
    # cached features
    import pkgutil

    import hybridclf.io

    modules = {f"hybridclf.io.{m.name}"
               for m in pkgutil.iter_modules(hybridclf.io.__path__)}
    assert set(hybridclf.io._SOURCE_MODULES) == {"hybridclf.io"} | modules


def test_a_class_named_in_either_unicode_form_is_one_class(tmp_path):
    """"café" decomposed (NFD, a folder copied from macOS's HFS+) beside
    "café" composed (typed on Linux, or a feedback label): before, two classes
    that print alike, in training, inspect ("café=4, café=4") and augment."""
    import unicodedata

    from hybridclf import inspect_dataset

    for form, names in (("NFD", ("0.png", "1.png")), ("NFC", ("2.png", "3.png"))):
        folder = tmp_path / unicodedata.normalize(form, "café")
        folder.mkdir()
        for i, name in enumerate(names):
            pixels = np.full((16, 16, 3), 40 * (i + 1) + len(form), np.uint8)
            Image.fromarray(pixels).save(folder / name)
    (tmp_path / "tea").mkdir()
    Image.new("RGB", (16, 16), "green").save(tmp_path / "tea" / "t.png")
    _, labels = load_image_folder(tmp_path)
    assert sorted(set(labels)) == ["caf\u00e9", "tea"]
    assert labels.count("caf\u00e9") == 4
    counts = inspect_dataset(tmp_path, quick=True).stats["class_counts"]
    assert counts == {"caf\u00e9": 4, "tea": 1}


_PEAK_SCRIPT = """
import sys
from hybridclf.io import read_image

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

data = open(sys.argv[1], "rb").read()
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # the peak starts again from here
before = status("VmRSS:")
image = read_image(data)
print((status("VmHWM:") - before) / image.nbytes)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"),
                    reason="measures the peak memory through Linux's /proc")
def test_a_large_png_is_decoded_without_spare_copies(tmp_path):
    # a 64-megapixel PNG (a 190 KB upload) peaked at 4.5 times its 190 MB of
    # pixels: a copy in exif_transpose and two in np.asarray's tobytes; sixteen
    # of them in one /predict/batch took the service to 1.9 GB
    import subprocess
    import sys
    import zlib

    side = 3000
    row = b"\x00" + bytes(range(256)) * (side * 3 // 256) + b"\x00" * (side * 3 % 256)
    pixels = zlib.compress(row * side, 9)
    header = np.array([side, side], ">u4").tobytes() + bytes([8, 2, 0, 0, 0])
    path = tmp_path / "large.png"
    path.write_bytes(_png_file(header, pixels))
    answer = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(path)],
                            capture_output=True, text=True, check=True, timeout=120)
    assert float(answer.stdout) < 3.0, answer.stdout


def _png_file(header, pixels):
    import zlib

    def chunk(kind, body):
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))


def test_a_folder_that_cannot_be_read_is_reported_not_dropped(tmp_path, monkeypatch,
                                                              real_images):
    # os.walk passes over a folder it cannot list without a word: its photos
    # vanished from train, evaluate, augment, predict, extract and inspect.
    # (EACCES is simulated: the tests may run as root, which reads anything.)
    from hybridclf.inspect._scan import list_files
    from hybridclf.io import scan_image_folder
    from hybridclf.prediction import iter_image_files

    for folder in ("cat", "dog", "dog/locked"):
        (tmp_path / folder).mkdir()
        Image.fromarray(real_images[0]).save(tmp_path / folder / "a.png")
    locked = os.fspath(tmp_path / "dog" / "locked")
    scandir = os.scandir

    def refuse(path="."):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    paths, _, skipped = scan_image_folder(tmp_path)
    assert len(paths) == 2
    assert skipped == [(locked, "a folder that cannot be read (Permission denied): "
                        "its files are left out; give this user read access to it")]
    assert locked in iter_image_files([tmp_path])
    files, labels = list_files(tmp_path)
    assert (locked, "dog") in set(zip(files, labels))


def test_a_file_too_large_for_any_image_is_refused_unread(tmp_path, real_images):
    # a 3 GB file named .jpg (a video, a disk image) was read whole into
    # memory first: 'hybridclf predict' peaked at 3.3 GB for it
    path = tmp_path / "big.jpg"
    with open(path, "wb") as fh:
        Image.fromarray(real_images[0]).save(fh, format="JPEG")
    os.truncate(path, 40 << 20)  # sparse: 40 MB on paper, nothing on disk
    with pytest.raises(ImageLoadError, match=r"too large a file \(42 MB\): an image "
                       r"under the pixel limit needs at most 17 MB"):
        read_image(path, max_pixels=10_000)
    assert read_image(path).shape == (64, 64, 3)  # within the default budget


def test_a_file_given_twice_is_listed_once(tmp_path, monkeypatch):
    # predict with a folder given twice, or a file and its folder, wrote the
    # same file's row twice and counted it twice in "N files"
    from hybridclf.prediction import iter_image_files

    (tmp_path / "data" / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / "data" / name)
    monkeypatch.chdir(tmp_path)
    files = iter_image_files(["data/sub/b.png", "data", "./data/", "data/a.png"])
    assert files == ["data/sub/b.png", os.path.join("data", "a.png")]


def test_a_large_file_that_is_no_image_is_refused_on_its_first_bytes(tmp_path):
    # a folder of phone videos among the photos: predict read each whole (up
    # to 528 MB, one per thread at once) before the decoder refused it on
    # its first bytes; one over the limit was called "too large a file ...
    # raise max_pixels if it is an image"
    import tracemalloc

    path = tmp_path / "clip.mp4"
    with open(path, "wb") as fh:
        fh.write(b"\x00\x00\x00\x18ftypmp42\x80\xf1" + bytes(500))
    os.truncate(path, 40 << 20)  # sparse: 40 MB on paper, nothing on disk
    tracemalloc.start()
    try:
        with pytest.raises(ImageLoadError, match="not an image: the content is "
                           "no known image format"):
            read_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # its first bytes, not 40 MB
    with pytest.raises(ImageLoadError, match="not an image"):
        read_image(path, max_pixels=10_000)
