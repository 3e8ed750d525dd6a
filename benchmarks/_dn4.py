"""An image-to-class measure over local CNN descriptors (DN4 / NBNN), issue 21.

Li et al., "Revisiting Local Descriptor based Image-to-Class Measure for
Few-shot Learning" (DN4, CVPR 2019) and Boiman et al., "In Defense of
Nearest-Neighbor Based Image Classification" (NBNN, CVPR 2008): every image
gives the L2-normalised local descriptors of an intermediate CNN map (one per
map position); a query's score for class c is the mean, over its local
descriptors, of the summed cosine similarities to their ``knn`` nearest
descriptors among all of class c's training descriptors.

For measuring only (rows 51 and 52 of ``bench_learning_curve.py`` and the
screening in ``_dn4_screen.py``; figures in docs/benchmarks.md, "Fourth
round"): the maps of EfficientNet-Lite2 are computed once per image and view
and kept in ``benchmarks/results/features/`` (gitignored).
"""

import numpy as np
from _common import RESULTS_DIR

#: the maps cached per image: MBConv block index (14 x 14: -14, -10, -7;
#: 7 x 7: -4, -2, -1) or "head" (7 x 7, 1280 channels)
LAYERS = (-14, -10, -7, -4, -2, -1, "head")


def local_maps(name, images, view):
    """{layer: float16 maps (n, c, h, w)} of EfficientNet-Lite2, cached."""
    path = RESULTS_DIR / "features" / f"{name}-{view}-local.npz"
    keys = [str(layer) for layer in LAYERS]
    if path.exists():
        data = np.load(path)
        return {layer: data[key] for layer, key in zip(LAYERS, keys)}
    import torch

    from hybridclf.features._backbones import load_backbone
    from hybridclf.features._cnn_embedding import _LiteTrunk

    model, spec = load_backbone("efficientnet_lite2", "imagenet")
    trunk = _LiteTrunk(model, list(LAYERS)).eval()
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0
    torch.set_num_threads(1)
    parts = [[] for _ in LAYERS]
    with torch.inference_mode():
        for start in range(0, len(images), 16):
            x = torch.from_numpy(images[start:start + 16].transpose(0, 3, 1, 2)
                                 .astype(np.float32))
            for i, fmap in enumerate(trunk((x - mean) / std)):
                parts[i].append(fmap.numpy().astype(np.float16))
    maps = {layer: np.concatenate(p) for layer, p in zip(LAYERS, parts)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{key: maps[layer] for layer, key in zip(LAYERS, keys)})
    return maps


def descriptors(maps):
    """(n, h * w, c) L2-normalised local descriptors of maps (n, c, h, w)."""
    x = maps.astype(np.float32).reshape(len(maps), maps.shape[1], -1)
    x = x.transpose(0, 2, 1)
    return x / (np.linalg.norm(x, axis=2, keepdims=True) + 1e-12)


def centred(desc, rows):
    """Descriptors less the mean descriptor of the images ``rows``, L2-normalised."""
    x = desc - desc[rows].reshape(-1, desc.shape[-1]).mean(axis=0)
    return x / (np.linalg.norm(x, axis=2, keepdims=True) + 1e-12)


def dn4_scores(query, pools, knn=1, exclude=None, chunk=8):
    """Image-to-class scores (n_query, n_classes).

    ``query``: (n, m, c) local descriptors; ``pools``: per class, a tuple
    (descriptors (p, m, c), owner ids (p,)); ``exclude``: the owner id of each
    query (its own descriptors, and those of its views, are left out: a
    leave-one-out score for a training photo), or None.
    """
    n, m, _ = query.shape
    out = np.zeros((n, len(pools)), dtype=np.float32)
    for j, (pool, owners) in enumerate(pools):
        flat = pool.reshape(-1, pool.shape[-1])
        owner_rows = np.repeat(owners, pool.shape[1])
        for start in range(0, n, chunk):
            q = query[start:start + chunk]
            sims = q.reshape(-1, q.shape[-1]) @ flat.T  # (chunk * m, p * m)
            sims = sims.reshape(len(q), m, -1)
            if exclude is not None:
                mask = owner_rows[None, :] == np.asarray(
                    exclude[start:start + chunk])[:, None]
                sims = np.where(mask[:, None, :], -np.inf, sims)
            if knn == 1:
                top = sims.max(axis=2)
            else:
                top = -np.partition(-sims, knn - 1, axis=2)[:, :, :knn]
                top = top.sum(axis=2)
            out[start:start + len(q), j] = top.mean(axis=1)
    return out


def class_pools(desc_by_view, y, train, classes, views=("id",)):
    """Per class, its training photos' descriptors (all ``views``) and owners."""
    pools = []
    for c in classes:
        rows = train[y[train] == c]
        pool = np.concatenate([desc_by_view[v][rows] for v in views])
        pools.append((pool, np.tile(rows, len(views))))
    return pools


def standardised(scores):
    """Scores standardised per row (across classes)."""
    return ((scores - scores.mean(axis=1, keepdims=True))
            / (scores.std(axis=1, keepdims=True) + 1e-12))


def softmax_rows(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def local_key(layer):
    """The features' key of a layer's local descriptors."""
    return f"local{layer}"


def add_local_blocks(features, name, images, views, layers):
    """Add each layer's local descriptors (key ``local_key(layer)``) per view."""
    from _curve_data import VIEWS

    for view in views:
        maps = local_maps(name, VIEWS[view](images), view)
        for layer in layers:
            features[view][local_key(layer)] = descriptors(maps[layer])


_MEMO = {}


def run_dn4(method, features, y, train, test, ridge_proba):
    """Class probabilities of a DN4 method (columns: the sorted labels).

    ``method["dn4"]``: ``layer``, ``knn`` and ``fuse`` (None: the softmax of
    the per-photo standardised DN4 scores alone; "avg": its mean with
    ``ridge_proba()``, the default's probabilities). The class pools hold the
    descriptors of the training photos and of the views the method adds in
    fit (``method["aug"]``).
    """
    spec = method["dn4"]
    views = ("id", *method.get("aug", ()))
    memo = (spec["layer"], spec["knn"], views, train.tobytes(), test.tobytes())
    if memo not in _MEMO:  # the rows share each draw's DN4 scores (small)
        key = local_key(spec["layer"])
        desc = {v: features[v][key] for v in views}
        pools = class_pools(desc, y, train, np.unique(y[train]), views)
        _MEMO[memo] = dn4_scores(desc["id"][test], pools, spec["knn"])
    proba = softmax_rows(standardised(_MEMO[memo]))
    if spec.get("fuse") == "avg":
        proba = 0.5 * proba + 0.5 * ridge_proba()
    return proba
