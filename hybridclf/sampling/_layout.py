"""The image batch of the sampler: its check, and the shape of new images.

``_as_images`` checks the images given to the sampler and gives their uint8
view for augmenting; ``_to_input_layout`` stacks the generated uint8 images
in the shape and dtype of that input (a float batch in [0, 1] gets float
images back, an (n, h, w, 1) batch gets (n, h, w, 1) images).
"""

import numpy as np

from ..utils._validation import check_image_array

__all__ = []


def _as_images(X, name):
    """Validate an image batch; return its uint8 view for augmenting."""
    return check_image_array(
        X, what=f"The images given to {name}", batch=True, allow_float=True,
        hint="Put it after the ImageLoader, before the feature extraction "
        "(make_hybrid_pipeline does), or stack separate images with numpy.stack.")


def _to_input_layout(generated, X):
    """Stack generated uint8 images in the shape and dtype of the input ``X``."""
    out = np.stack(generated) if generated else np.empty(
        (0, *X.shape[1:]), dtype=np.uint8)
    if X.ndim == 4 and X.shape[3] == 1:
        out = out.reshape((-1, *X.shape[1:]))
    if X.dtype != np.uint8:
        out = out.astype(X.dtype) / X.dtype.type(255)
    return out
