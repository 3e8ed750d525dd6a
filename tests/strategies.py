"""Hypothesis strategies for images."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays


@st.composite
def image_batches(draw, min_side=16, max_side=96, max_images=3):
    """Batches of RGB uint8 images of one random size: (n, h, w, 3)."""
    n = draw(st.integers(1, max_images))
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    seed = draw(st.integers(0, 2**16))
    kind = draw(st.sampled_from(["noise", "constant", "gradient"]))
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    if kind == "constant":
        return np.full((n, h, w, 3), draw(st.integers(0, 255)), dtype=np.uint8)
    ramp = np.linspace(0, 255, w, dtype=np.float32)[None, None, :, None]
    return np.broadcast_to(ramp, (n, h, w, 3)).round().astype(np.uint8).copy()


def single_images(max_side=64):
    """Arrays of any supported dtype and channel layout."""
    return st.sampled_from([np.uint8, np.uint16, np.float32]).flatmap(
        lambda dtype: arrays(
            dtype,
            st.tuples(st.integers(1, max_side), st.integers(1, max_side),
                      st.sampled_from([1, 3, 4])),
            elements=(
                st.floats(0, 1, width=32) if dtype == np.float32
                else st.integers(0, np.iinfo(dtype).max)
            ),
        )
    )
