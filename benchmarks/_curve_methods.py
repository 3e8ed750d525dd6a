"""Methods that ``bench_learning_curve.py`` compares, on cached per-view features.

A method is a dict: ``clf`` (a classifier name, or a list of them averaged as
an ensemble), ``blocks``, ``aug`` (views added to the training images, as
``ViewAugmenter`` adds them), ``tta`` (views whose decisions are averaged with
the image's at test time), ``weights`` ("balanced", a dict of block
weights, or "loo": a weight of the CNN block among ``LOO_CNN_WEIGHTS``
chosen with the penalty by the ridge's leave-one-out squared error on the
training rows), ``power`` (signed square root of every feature before
scaling), ``late`` (block sets: one ridge per set, their probabilities
averaged), ``choose`` (block sets: the one of least leave-one-out
error on the training photos), ``choose_loo`` (block sets: the default
unless another wins the grouped leave-one-out by a margin, see
``_loo_choice.choose_blocks``), ``dn4`` (an image-to-class measure over
local CNN descriptors, alone or fused with the ridge: see ``_dn4.run_dn4``).
Each block is standardised on the training
rows, as the pipeline's per-block ``StandardScaler`` does.
"""

import numpy as np
from scipy.special import softmax
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import RidgeClassifierCV
from sklearn.preprocessing import StandardScaler

from hybridclf.classifiers import RidgeSoftmaxClassifier

DEFAULT_BLOCKS = ("cnn", "hog", "lbp", "color")
LOO_CNN_WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0)  # relative to the other blocks' 1


class NearestClassMean:
    """Nearest class mean by cosine similarity (a prototype classifier)."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        means = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        self.means_ = means / np.linalg.norm(means, axis=1, keepdims=True)
        return self

    def decision_function(self, X):
        return (X / np.linalg.norm(X, axis=1, keepdims=True)) @ self.means_.T


class PCALDA:
    """Shrinkage LDA (Ledoit-Wolf) in the span of the training images."""

    def fit(self, X, y):
        self.pca_ = PCA(n_components=min(X.shape) - 1, random_state=0).fit(X)
        self.lda_ = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
        self.lda_.fit(self.pca_.transform(X), y)
        self.classes_ = self.lda_.classes_
        return self

    def decision_function(self, X):
        return self.lda_.decision_function(self.pca_.transform(X))


CLASSIFIERS = {
    "ridge": RidgeSoftmaxClassifier,
    "ncm": NearestClassMean,
    "lda": PCALDA,
}


def vlad_block(features, train, views, n_words=16):
    """VLAD of block -4's local descriptors, vocabulary from ``train`` only.

    Jegou et al., "Aggregating local descriptors into a compact image
    representation", CVPR 2010; signed square root and intra-normalisation
    (Arandjelovic and Zisserman, CVPR 2013), as in FV-CNN.
    """
    def local(view, rows):
        maps = features[view]["mid_map"][rows]
        return maps.reshape(len(rows), maps.shape[1], -1).transpose(0, 2, 1)

    descriptors = local("id", train).reshape(-1, features["id"]["mid_map"].shape[1])
    km = KMeans(n_words, n_init=1, random_state=0).fit(descriptors)
    centres = km.cluster_centers_
    out = {}
    for view in views:
        local_all = local(view, np.arange(len(features[view]["mid_map"])))
        codes = np.zeros((len(local_all), n_words, centres.shape[1]))
        for i, image in enumerate(local_all):
            words = km.predict(image)
            for w in np.unique(words):
                codes[i, w] = (image[words == w] - centres[w]).sum(axis=0)
        codes = np.sign(codes) * np.sqrt(np.abs(codes))
        codes /= np.linalg.norm(codes, axis=2, keepdims=True) + 1e-12
        out[view] = codes.reshape(len(codes), -1)
    return out


def _tables(features, blocks, train, test, aug, tta, weights, power=False):
    """Scaled training rows (all ``aug`` views stacked) and test rows per view."""
    train_parts, test_parts = [[] for _ in aug], [[] for _ in tta]
    for b in blocks:
        if b == "vlad":
            per_view = vlad_block(features, train, sorted({*aug, *tta}))
        else:
            per_view = {v: features[v][b] for v in {*aug, *tta}}
        if power:
            per_view = {v: np.sign(f) * np.sqrt(np.abs(f)) for v, f in per_view.items()}
        scaler = StandardScaler().fit(np.vstack([per_view[v][train] for v in aug]))
        w = 1.0 if weights is None else weights[b]
        for i, v in enumerate(aug):
            train_parts[i].append(w * scaler.transform(per_view[v][train]))
        for i, v in enumerate(tta):
            test_parts[i].append(w * scaler.transform(per_view[v][test]))
    return ([np.hstack(p) for p in train_parts], [np.hstack(p) for p in test_parts])


def _margins(clf, X):
    s = clf.decision_function(X)
    return np.column_stack([-s, s]) if s.ndim == 1 else s


def _loo_weights(features, blocks, y, train, test, aug, tta, power):
    """The CNN block's weight with the least leave-one-out squared error."""
    Y, best = np.tile(y[train], len(aug)), None
    for w in LOO_CNN_WEIGHTS:
        weights = {b: (w if b.startswith("cnn") else 1.0) for b in blocks}
        train_x, _ = _tables(features, blocks, train, test, aug, tta, weights, power)
        ridge = RidgeClassifierCV(alphas=RidgeSoftmaxClassifier().alphas)
        score = ridge.fit(np.vstack(train_x), Y).best_score_
        if best is None or score > best[0]:
            best = (score, weights)
    return best[1]


def _late_fusion(method, features, y, train, test, aug, tta):
    """Mean of the probabilities of one ridge per block set in ``method["late"]``."""
    groups = np.tile(np.arange(len(train)), len(aug)) if method.get(
        "groups") and len(aug) > 1 else None
    total = 0.0
    for blocks in method["late"]:
        train_x, test_x = _tables(features, blocks, train, test, aug, tta, None,
                                  method.get("power", False))
        clf = RidgeSoftmaxClassifier().fit(np.vstack(train_x),
                                           np.tile(y[train], len(aug)),
                                           groups=groups)
        total = total + np.mean([clf.predict_proba(T) for T in test_x], axis=0)
    return clf.classes_[np.argmax(total, axis=1)]


def _choose_blocks(method, features, y, train, test):
    """The block set of ``method["choose"]`` with the least leave-one-out error.

    The ridge's leave-one-out squared error on the photos alone (no views),
    at its best penalty, as ``RidgeClassifierCV`` computes it.
    """
    best = None
    for blocks in method["choose"]:
        train_x, _ = _tables(features, blocks, train, test, ["id"], ["id"], None)
        ridge = RidgeClassifierCV(alphas=RidgeSoftmaxClassifier().alphas)
        score = ridge.fit(train_x[0], y[train]).best_score_
        if best is None or score > best[0]:
            best = (score, blocks)
    return best[1]


def run_method(method, features, y, train, test, proba=False):
    """Predicted labels of the ``test`` rows for one method.

    With ``proba``, the ridge classifier's probabilities instead (columns in
    the order of the sorted labels). ``method["groups"]`` leaves each photo
    out with its views in the ridge classifier's leave-one-out, as the
    pipeline does (``fit(groups=)``).
    """
    if "dn4" in method:
        from _dn4 import run_dn4

        plain = {k: v for k, v in method.items() if k != "dn4"}
        out = run_dn4(method, features, y, train, test, lambda: run_method(
            plain, features, y, train, test, proba=True))
        return out if proba else np.unique(y[train])[np.argmax(out, axis=1)]
    blocks = method.get("blocks", DEFAULT_BLOCKS)
    if "choose" in method:
        blocks = _choose_blocks(method, features, y, train, test)
    if "choose_loo" in method:
        from _loo_choice import choose_blocks

        blocks = choose_blocks(method, features, y, train, test)
    aug = ["id", *method.get("aug", ())]
    tta = ["id", *method.get("tta", ())]
    weights, power = method.get("weights"), method.get("power", False)
    if "late" in method:
        return _late_fusion(method, features, y, train, test, aug, tta)
    if weights == "balanced":
        weights = {b: 1 / np.sqrt(features["id"][b].shape[1]) for b in blocks}
    if weights == "loo":
        weights = _loo_weights(features, blocks, y, train, test, aug, tta, power)
    train_x, test_x = _tables(features, blocks, train, test, aug, tta, weights,
                              power)
    X, Y = np.vstack(train_x), np.tile(y[train], len(aug))
    names = method["clf"] if isinstance(method["clf"], list) else [method["clf"]]
    total = 0.0
    if proba:
        groups = np.tile(np.arange(len(train)), len(aug))
        clf = RidgeSoftmaxClassifier().fit(
            X, Y, groups=groups if method.get("groups") else None)
        return clf.predict_proba(test_x[0])
    groups = np.tile(np.arange(len(train)), len(aug)) if method.get(
        "groups") and len(aug) > 1 else None
    for name in names:
        clf = CLASSIFIERS[name]()
        clf = clf.fit(X, Y) if groups is None else clf.fit(X, Y, groups=groups)
        s = np.mean([_margins(clf, T) for T in test_x], axis=0)
        if len(names) > 1:  # an ensemble: mean of softmaxed standardised margins
            s = softmax((s - s.mean(1, keepdims=True))
                        / (s.std(1, keepdims=True) + 1e-12), axis=1)
        total = total + s
    return clf.classes_[np.argmax(total, axis=1)]
