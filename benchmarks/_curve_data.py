"""Datasets, image views and cached features for ``bench_learning_curve.py``."""

import cv2
import numpy as np
from _common import RESULTS_DIR, block_features, find_dataset, shared_data_dir

from hybridclf import load_image_folder
from hybridclf.io import ImageLoader
from hybridclf.training import read_groups_csv
from hybridclf.view_sampling import make_view

BLOCKS = ("cnn", "hog", "lbp", "color")


def _rotate(images, degrees):
    out = np.empty_like(images)
    h, w = images.shape[1:3]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    for i, img in enumerate(images):
        out[i] = cv2.warpAffine(img, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    return out


def _crop(images, fraction, corner):
    h, w = images.shape[1:3]
    ch, cw = int(h * fraction), int(w * fraction)
    top = {"c": (h - ch) // 2, "tl": 0, "br": h - ch}[corner]
    left = {"c": (w - cw) // 2, "tl": 0, "br": w - cw}[corner]
    return np.stack([cv2.resize(img[top:top + ch, left:left + cw], (w, h),
                                interpolation=cv2.INTER_LINEAR) for img in images])


#: image views whose features are cached: augmentation in fit and at test time
VIEWS = {
    "id": lambda x: x,
    "hflip": lambda x: np.ascontiguousarray(x[:, :, ::-1]),
    "rot90": lambda x: np.ascontiguousarray(np.rot90(x, 1, axes=(1, 2))),
    "rot180": lambda x: np.ascontiguousarray(np.rot90(x, 2, axes=(1, 2))),
    "rot270": lambda x: np.ascontiguousarray(np.rot90(x, 3, axes=(1, 2))),
    "rot+12": lambda x: _rotate(x, 12),
    "rot-12": lambda x: _rotate(x, -12),
    "crop_c": lambda x: _crop(x, 0.85, "c"),
    "crop_tl": lambda x: _crop(x, 0.85, "tl"),
    "crop_br": lambda x: _crop(x, 0.85, "br"),
    # ViewAugmenter's default views, made by the library itself
    **{name: (lambda x, name=name: np.stack([make_view(i, name) for i in x]))
       for name in ("zoom_out", "hue_turn", "darken", "blur")},
}


def load_amulet6():
    """(images, labels, groups, paths) of amulet6 with the hand-checked groups."""
    folder = find_dataset("amulet6")
    if folder is None:
        return None
    paths, labels = load_image_folder(folder)
    groups = read_groups_csv(shared_data_dir() / "amulet6_groups.csv", paths,
                             root=folder)
    images = ImageLoader(size=224, n_jobs=2).fit_transform(paths)
    return images, np.asarray(labels), np.asarray(groups), paths


def load_digits_photos(per_class=50):
    """scikit-learn's handwritten digits, first ``per_class`` of each, as RGB.

    The 8x8 scans (values 0-16) are enlarged to 224x224 and inverted (dark
    ink on white paper); every image is its own group.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.concatenate([np.flatnonzero(digits.target == c)[:per_class]
                           for c in range(10)])
    small = (255 - digits.images[keep] * 255 / 16).astype(np.uint8)
    big = np.stack([cv2.resize(img, (224, 224), interpolation=cv2.INTER_LINEAR)
                    for img in small])
    images = np.repeat(big[..., None], 3, axis=3)
    labels = np.array([str(t) for t in digits.target[keep]])
    return images, labels, np.arange(len(keep)), None


def view_features(name, images, views, blocks=BLOCKS):
    """{view: {block: features}} and {block: ms per image}, cached on disk."""
    out, ms = {}, {}
    for view in views:
        shown = VIEWS[view](images)
        out[view] = {}
        for block in blocks:
            out[view][block], t = block_features(block, shown,
                                                 cache_key=f"{name}-{view}")
            if view == "id":
                ms[block] = t
    return out, ms


def cnn_maps(name, images, view):
    """EfficientNet-Lite2's block -4 and head maps (n, c, 7, 7), cached, float16.

    The raw maps behind the default CNN block's two pooled vectors, for
    pooling them by regions (``grid_pool``) or encoding them (VLAD).
    """
    path = RESULTS_DIR / "features" / f"{name}-{view}-maps.npz"
    if path.exists():
        data = np.load(path)
        return data["mid"], data["head"]
    import torch

    from hybridclf.features._backbones import load_backbone
    from hybridclf.features._cnn_embedding import _LiteTrunk

    model, spec = load_backbone("efficientnet_lite2", "imagenet")
    trunk = _LiteTrunk(model, [-4, "head"]).eval()
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0
    torch.set_num_threads(2)
    mids, heads = [], []
    with torch.inference_mode():
        for start in range(0, len(images), 16):
            x = torch.from_numpy(images[start:start + 16].transpose(0, 3, 1, 2)
                                 .astype(np.float32))
            mid, head = trunk((x - mean) / std)
            mids.append(mid.numpy().astype(np.float16))
            heads.append(head.numpy().astype(np.float16))
    mid, head = np.concatenate(mids), np.concatenate(heads)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, mid=mid, head=head)
    return mid, head


def gem(x, axis=(2, 3)):
    return np.cbrt(np.mean(np.clip(x, 1e-6, None) ** 3, axis=axis))


def grid_pool(x, n):
    """GeM over an n x n grid of overlapping regions of maps (n, c, h, w)."""
    h = x.shape[2]
    edges = np.linspace(0, h, n + 1).round().astype(int)
    out = []
    for i in range(n):
        for j in range(n):
            rows = slice(max(edges[i] - 1, 0), min(edges[i + 1] + 1, h))
            cols = slice(max(edges[j] - 1, 0), min(edges[j + 1] + 1, h))
            out.append(gem(x[:, :, rows, cols]))
    return np.concatenate(out, axis=1)


def add_map_blocks(features, name, images, views):
    """Add the blocks "grid2" (2x2 GeM of block -4) and "mid_map" (its raw map)."""
    for view in views:
        mid, _ = cnn_maps(name, VIEWS[view](images), view)
        mid = mid.astype(np.float32)
        features[view]["grid2"] = grid_pool(mid, 2)
        features[view]["mid_map"] = mid
