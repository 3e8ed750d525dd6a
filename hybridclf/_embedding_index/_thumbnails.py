"""The thumbnails that an embedding index hands out with its neighbours.

:meth:`EmbeddingIndex.neighbours` gives each training photo's JPEG
thumbnail as it was saved, after ``_checked_thumbnail`` has read its header:
one that says more than ``_MAX_THUMBNAIL_SIDE`` pixels a side was not written
by hybridclf and is left out (None), its pixels never decoded, with one
warning per size (``_warn_thumbnail``).
"""

import functools
import io
import logging

__all__ = []

logger = logging.getLogger(__name__)

# Longest side of a thumbnail that neighbours() hands out; hybridclf writes
# 112. An index from someone else held a JPEG of 12000 x 12000 pixels in 2 MB:
# `hybridclf evaluate` decoded and drew it in its gallery, took 21 GB and was
# killed. One larger (or no image) is left out, its pixels never decoded.
_MAX_THUMBNAIL_SIDE = 1024


def _checked_thumbnail(data):
    """``data``, or None when its header says over 1024 pixels a side.

    Only the header is read (some 60 microseconds), so each thumbnail
    handed out is checked, not the whole index at every load. Bytes that
    are no image header are handed out as they are (a reader that decodes
    them gets an error it handles, with no pixels to hold).
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        width = height = Image.MAX_IMAGE_PIXELS  # over the limit either way
    except (OSError, SyntaxError, ValueError):
        return data
    if max(width, height) <= _MAX_THUMBNAIL_SIDE:
        return data
    _warn_thumbnail(width, height)
    return None


@functools.cache
def _warn_thumbnail(width, height):
    """Warn once per size of thumbnail left out."""
    logger.warning(
        "A thumbnail of the embedding index is %d x %d pixels (hybridclf writes "
        "at most %d a side): it is left out, not decoded. The index "
        "(neighbours.npz) was not written by hybridclf; retrain the model to "
        "rebuild it.", width, height, _MAX_THUMBNAIL_SIDE)
