"""Shared fixtures: small real images and the optional shared data folder."""

import os
from pathlib import Path

import numpy as np
import pytest
import skimage.data

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir():
    """The real test photos: $HYBRIDCLF_DATA, else ../shared/data beside the repo."""
    return Path(os.environ.get("HYBRIDCLF_DATA", REPO.parent / "shared" / "data"))


def require_shared(name):
    """Path of a folder of the shared data, or skip the test with the reason."""
    path = shared_data_dir() / name
    if not path.is_dir():
        pytest.skip(
            f"real test data {name!r} not found at {path}; set HYBRIDCLF_DATA to "
            "the folder that holds it"
        )
    return path


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    # on-disk caches (exported ONNX graphs) go to a folder of this test run
    old = os.environ.get("HYBRIDCLF_CACHE_DIR")
    os.environ["HYBRIDCLF_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        del os.environ["HYBRIDCLF_CACHE_DIR"]
    else:
        os.environ["HYBRIDCLF_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def _seed():
    # tests that draw random numbers get the same ones on every run
    np.random.seed(0)


@pytest.fixture(scope="session")
def real_images():
    """Eight 64x64 RGB crops of scikit-image's bundled photos and textures."""
    sources = [
        skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee(),
        skimage.data.rocket(), np.stack([skimage.data.camera()] * 3, axis=-1),
        np.stack([skimage.data.brick()] * 3, axis=-1),
        np.stack([skimage.data.grass()] * 3, axis=-1),
        np.stack([skimage.data.gravel()] * 3, axis=-1),
    ]
    return np.stack([img[100:164, 100:164] for img in sources])


@pytest.fixture(scope="session")
def texture_folder(tmp_path_factory):
    """A class-per-folder dataset: 3 texture classes x 8 real crops as PNG files."""
    import cv2

    root = tmp_path_factory.mktemp("textures")
    for name in ("brick", "grass", "gravel"):
        image = getattr(skimage.data, name)()
        (root / name).mkdir()
        for i in range(8):
            r, c = divmod(i, 4)
            crop = image[r * 128 : r * 128 + 96, c * 128 : c * 128 + 96]
            cv2.imwrite(str(root / name / f"{i}.png"), crop)
    return root


def bomb_jpeg(side=20000):
    """A 1 KB JPEG whose header declares side x side grey pixels (a bomb).

    A real 16x16 JPEG with the frame header (SOF0) patched: a decoder that
    trusts the header allocates side^2 pixels before it finds the data short.
    """
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buf, format="JPEG", quality=10)
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = side.to_bytes(2, "big") * 2
    return bytes(data)


def deflate_bombed(path, name, size, fill=b"\0", head=b""):
    """Rewrite the zip archive ``path`` with member ``name`` as ``head`` then
    ``size`` bytes of ``fill``, deflated: 80 MB of zeros take about 80 KB.

    The other members are kept as they were (a model's ``.skops`` or
    ``.npz`` with one member that unpacks to far more than the file's size).
    """
    import zipfile

    with zipfile.ZipFile(path) as archive:
        members = {i.filename: archive.read(i.filename) for i in archive.infolist()}
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            if member != name:
                archive.writestr(member, data)
                continue
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as fh:
                fh.write(head or data)
                block = fill * (1 << 20)
                for _ in range(size >> 20):
                    fh.write(block)


def bomb_png(side=20000):
    """A valid 1-bit PNG of side x side white pixels: ~50 KB for 20000^2."""
    import struct
    import zlib

    def chunk(kind, body):
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    packer = zlib.compressobj(9)
    compressed = b"".join(packer.compress(row * 500) for _ in range(side // 500))
    compressed += packer.compress(row * (side % 500)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", compressed) + chunk(b"IEND", b""))
