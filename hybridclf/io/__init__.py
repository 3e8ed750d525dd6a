"""Reading images: decoding, colour conversion and resizing to one shape.

:func:`read_image` turns one file, byte string or array into an RGB ``uint8``
array; :class:`ImageLoader` does it for a whole batch and resizes every image to
one shape, as the first step of a pipeline; :func:`load_image_folder` lists a
class-per-folder dataset.

The package's modules, one concept each:

- ``_files``: the image format a file's first bytes announce
  (:func:`sniff_image_format`), regular files only (:func:`special_file_reason`);
- ``_decode``: bytes to RGB ``uint8`` with the pixel limit
  (:data:`DEFAULT_MAX_PIXELS`), and the one array check (:func:`array_to_rgb`);
- ``_read``: one image (:func:`read_image`, :func:`fit_to_size`);
- ``_loader``: the :class:`ImageLoader` transformer (a batch, in threads,
  measured as decoded);
- ``_scan``: walking a class-per-folder tree (:func:`scan_image_folder`), and
  the error of inputs that hold no image (:func:`no_images_error`);
- ``_folders``: listing one dataset or several merged by class
  (:func:`load_image_folder`, :func:`load_image_folders`).
- ``_groups_csv``: reading a ``file,group`` CSV (``duplicate_groups.csv``)
  that ``train --groups`` and ``inspect --groups`` both take
  (:func:`~._groups_csv.read_groups_csv`, :func:`~._groups_csv.read_group_names`).
"""

# DEFAULT_MIN_SIZE, IMAGE_EXTENSIONS, LINKED_FOLDER, call_on_readable,
# class_name, fit_to_size, log_skipped and max_file_bytes are public too,
# outside __all__
from ._decode import DEFAULT_MAX_PIXELS, array_to_rgb
from ._files import (  # noqa: F401
    IMAGE_EXTENSIONS,
    LINKED_FOLDER,
    max_file_bytes,
    sniff_image_format,
    special_file_reason,
)
from ._folders import load_image_folder, load_image_folders
from ._loader import _SOURCE_MODULES, ImageLoader  # noqa: F401
from ._read import DEFAULT_MIN_SIZE, fit_to_size, read_image  # noqa: F401
from ._readable import call_on_readable  # noqa: F401
from ._scan import (  # noqa: F401
    FEEDBACK_LOG,
    class_name,
    log_skipped,
    no_images_error,
    scan_image_folder,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FEEDBACK_LOG",
    "ImageLoader",
    "array_to_rgb",
    "load_image_folder",
    "load_image_folders",
    "no_images_error",
    "read_image",
    "scan_image_folder",
    "sniff_image_format",
    "special_file_reason",
]

