"""What a file holds: the image format its first bytes announce; regular files only.

:func:`sniff_image_format` recognises an image from its first bytes, not its
extension; :func:`special_file_reason` tells a FIFO, socket or device from a
regular file without opening it, and ``_read_file`` reads regular files only,
so that nothing the loader or a folder walk opens can block.
"""

import errno
import os
import stat

__all__ = ["IMAGE_EXTENSIONS", "LINKED_FOLDER", "sniff_image_format",
           "special_file_reason"]

# (format name, offset, magic bytes); RIFF/WEBP is checked separately
_MAGIC = [
    ("jpeg", 0, b"\xff\xd8\xff"),
    ("png", 0, b"\x89PNG\r\n\x1a\n"),
    ("gif", 0, b"GIF87a"),
    ("gif", 0, b"GIF89a"),
    ("bmp", 0, b"BM"),
    ("tiff", 0, b"II*\x00"),
    ("tiff", 0, b"MM\x00*"),
    ("jpeg2000", 0, b"\x00\x00\x00\x0cjP  \r\n\x87\n"),
]
_PNM = {b"P1", b"P2", b"P3", b"P4", b"P5", b"P6"}


# the file kinds other than regular files, as the folder walks report them
_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)

#: Why the folder walks pass over a symbolic link to a folder (they do not
#: follow them: a link may lead back up the tree), reported, never silent.
LINKED_FOLDER = ("a symbolic link to a folder, not followed: its files are left "
                 "out; pass the folder it points to, or copy its files here")

# the file name extensions of the formats above, for load_image_folder's report
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".dib", ".tif",
     ".tiff", ".webp", ".jp2", ".pbm", ".pgm", ".ppm", ".pnm"}
)


def sniff_image_format(header):
    """Return the image format that the first bytes of a file announce.

    Parameters
    ----------
    header : bytes
        The first bytes of the file; 16 are enough.

    Returns
    -------
    format : str or None
        One of ``"jpeg"``, ``"png"``, ``"gif"``, ``"bmp"``, ``"tiff"``,
        ``"webp"``, ``"jpeg2000"``, ``"pnm"``, or ``None`` when the bytes do not
        start a known image format.

    Examples
    --------
    >>> from hybridclf.io import sniff_image_format
    >>> sniff_image_format(b"\\x89PNG\\r\\n\\x1a\\n....")
    'png'
    >>> sniff_image_format(b"hello world") is None
    True
    """
    header = bytes(header[:16])
    for name, offset, magic in _MAGIC:
        if header[offset : offset + len(magic)] == magic:
            return name
    if header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        return "webp"
    if header[:2] in _PNM and len(header) > 2 and header[2:3].isspace():
        return "pnm"
    return None


def max_file_bytes(max_pixels):
    """The largest file read as an image of at most ``max_pixels`` pixels.

    8 bytes a pixel (uncompressed 16-bit RGBA, the largest a decoder takes)
    and 16 MB for metadata: 528 MB at the default 64 megapixels. A larger
    file (a video or a disk image named ``.jpg``) would only fill memory.

    Parameters
    ----------
    max_pixels : int
        The pixel budget of one image (``ImageLoader``'s ``max_pixels``).

    Returns
    -------
    max_bytes : int
        The size in bytes over which a file is refused unread.
    """
    return 8 * max_pixels + (16 << 20)


def _oversized(n_bytes, max_bytes):
    """The reason a file over :func:`max_file_bytes` is not read."""
    return (f"too large a file ({n_bytes / 1e6:.0f} MB): an image under the pixel "
            f"limit needs at most {max_bytes / 1e6:.0f} MB, so it is refused unread. "
            "Raise the 'max_pixels' parameter (--max-pixels on the command line) "
            "if it is an image")


# the bytes that tell an image file, and a non-image one's reason, apart
_HEAD_BYTES = 512


def _describe_non_image(data):
    """A short reason for bytes that are no image."""
    if not data:
        return "empty file (0 bytes)"
    sample = bytes(data[:_HEAD_BYTES])
    try:
        sample.decode("utf-8")
        is_text = True
    except UnicodeDecodeError:
        is_text = False
    if is_text:
        return "not an image: the content is text"
    return "not an image: the content is no known image format"


def special_file_reason(path):
    """Why ``path`` is not read: it is a FIFO, socket or device; else None.

    Only regular files (and symbolic links to them) are read: opening a FIFO
    blocks until something writes into it, and a device may never end. The
    file is not opened to find out (``os.stat`` only).

    Parameters
    ----------
    path : str or os.PathLike
        A file path.

    Returns
    -------
    reason : str or None
        The reason it is skipped (for a symbolic link to a folder too:
        :data:`LINKED_FOLDER`), or None for a regular file, a folder or a
        path that does not exist (reading it reports that).

    Examples
    --------
    >>> from hybridclf.io import special_file_reason
    >>> special_file_reason("/dev/null")
    'not a regular file (a character device); only regular files are read'
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode) and os.path.islink(path):
        return LINKED_FOLDER
    for test, kind in _SPECIAL_KINDS:
        if test(mode):
            return f"not a regular file ({kind}); only regular files are read"
    return None


#: Why a symbolic link that leads back to itself cannot be read.
_LINK_LOOP = ("cannot be read: a loop of symbolic links, each leading to another "
              "and none to a file; remove the link or point it at the photo")


def _not_found(path):
    """Why ``path``, which open() did not find, cannot be read."""
    if os.path.islink(path):
        return (f"cannot be read: a symbolic link to {os.readlink(path)!r}, "
                "which does not exist; remove the link or point it at the photo")
    return "file not found"


def _read_file(path, size=-1, max_bytes=None, images_only=False):
    """The first ``size`` bytes (all for -1) of a regular file; ValueError else.

    The file is opened non-blocking and checked again once open, so that a
    FIFO put in its place between the check and the open cannot block. A
    whole file larger than ``max_bytes`` is refused unread (see
    :func:`max_file_bytes`). With ``images_only``, a whole file whose first
    bytes announce no image format (:func:`sniff_image_format`: a video, an
    archive, a document among the photos) is refused with its reason after
    reading those bytes alone: the decoder refuses it on them anyway, and a
    folder of phone videos was otherwise read whole, file by file, hundreds
    of megabytes each (one per thread at once).
    """
    reason = special_file_reason(path)
    if reason is not None:
        raise ValueError(reason)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as exc:
        raise ValueError(_not_found(path)) from exc
    except IsADirectoryError as exc:
        raise ValueError("is a directory, not a file") from exc
    except PermissionError as exc:
        raise ValueError("permission denied") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError(_LINK_LOOP) from exc
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from exc
    info = os.fstat(fd)
    mode = info.st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ValueError("is a directory, not a file" if stat.S_ISDIR(mode)
                         else "not a regular file; only regular files are read")
    with os.fdopen(fd, "rb") as fh:
        try:
            if size < 0 and images_only:
                head = fh.read(_HEAD_BYTES)
                if sniff_image_format(head) is None:
                    raise ValueError(_describe_non_image(head))
                fh.seek(0)
            if size < 0 and max_bytes is not None and info.st_size > max_bytes:
                raise ValueError(_oversized(info.st_size, max_bytes))
            return fh.read(size)
        except OSError as exc:
            raise ValueError(f"cannot be read ({exc.strerror or exc})") from exc
