"""The hybrid pipeline: load images, augment (fit only), extract, classify."""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import StandardScaler

from .features import (
    CNNFeatures,
    ColorHistogram,
    HOGFeatures,
    LBPFeatures,
    SIFTBoVW,
)
from .grouped_fit import GroupedPipeline, fit_classifier, view_groups
from .io import ImageLoader
from .view_sampling import AUTO_VIEWS, DEFAULT_VIEWS, ViewAugmenter

__all__ = [
    "CLASSIFIERS",
    "FEATURE_BLOCKS",
    "ClassifierSpec",
    "classifier_name",
    "fit_classifier",
    "get_block_extractor",
    "get_block_scaler",
    "get_classifier",
    "get_feature_union",
    "get_loader",
    "get_sampler",
    "has_hybrid_structure",
    "is_passthrough",
    "iter_feature_blocks",
    "make_hybrid_pipeline",
    "set_classifier",
    "set_max_pixels",
    "set_n_jobs",
    "set_image_params",
    "view_groups",
]

#: Feature blocks that ``make_hybrid_pipeline(features=...)`` knows by name.
FEATURE_BLOCKS = {
    "cnn": CNNFeatures,
    "hog": HOGFeatures,
    "lbp": LBPFeatures,
    "sift": SIFTBoVW,
    "color": ColorHistogram,
}

DEFAULT_FEATURES = ("cnn", "hog", "lbp", "color")

# The step names of the pipeline. Only this module knows them; everything
# else goes through the accessors below.
_LOAD, _AUGMENT, _FEATURES, _CLF = "load", "augment", "features", "clf"
_EXTRACT, _SCALE = "extract", "scale"

# Trees of the "random_forest" and "extra_trees" choices, and of the extra
# trees inside the two ensembles (fewer: four members are fitted there).
_N_TREES = 500
_N_TREES_IN_ENSEMBLE = 300


# -- the classifier registry -----------------------------------------------------
def _logistic():
    return LogisticRegression(max_iter=5000)


def _svc():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    return CalibratedClassifierCV(SVC(C=10.0), cv=3)


def _ridge():
    from .classifiers import RidgeSoftmaxClassifier

    return RidgeSoftmaxClassifier()


def _random_forest():
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=_N_TREES)


def _extra_trees(n_estimators=_N_TREES):
    from sklearn.ensemble import ExtraTreesClassifier

    return ExtraTreesClassifier(n_estimators=n_estimators)


def _hist_gradient_boosting(max_iter=100):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=max_iter)


def _ensemble_members():
    """The (name, classifier) members of the "soft_voting" and "stacking" choices."""
    return [
        ("logistic", _logistic()),
        ("svc", _svc()),
        ("extra_trees", _extra_trees(_N_TREES_IN_ENSEMBLE)),
        ("hist_gradient_boosting", _hist_gradient_boosting()),
    ]


def _soft_voting():
    from sklearn.ensemble import VotingClassifier

    return VotingClassifier(_ensemble_members(), voting="soft")


def _stacking():
    from sklearn.ensemble import StackingClassifier

    return StackingClassifier(
        _ensemble_members(), final_estimator=_logistic(),
        stack_method="predict_proba", cv=3,
    )


@dataclass(frozen=True)
class ClassifierSpec:
    """One classifier that the pipeline knows by name.

    Attributes
    ----------
    name : str
        The name given to ``make_hybrid_pipeline(classifier=...)`` and to
        ``hybridclf train --classifier``.

    factory : callable
        Returns a new unfitted classifier.

    type_name : str
        The class name of what ``factory`` returns; it tells a classifier's
        name back from a fitted pipeline (:func:`classifier_name`).

    search_grid : dict
        The grid of ``train_model(search="grid" | "halving")``, about 20
        candidates over the classifier's own parameters (``clf__...``), so
        the fold features are computed once for the whole search.
    """

    name: str
    factory: Callable = field(repr=False)
    type_name: str
    search_grid: dict = field(repr=False)


_TREE_GRID = {
    "clf__max_features": ["sqrt", "log2", 0.05, 0.1, 0.2],
    "clf__min_samples_leaf": [1, 2, 4, 8],
}

#: The classifiers of :func:`make_hybrid_pipeline`, by name: each with its
#: factory and its search grid.
CLASSIFIERS = {spec.name: spec for spec in [
    ClassifierSpec("ridge", _ridge, "RidgeSoftmaxClassifier",
                   {"clf__alphas": [(float(a),) for a in np.logspace(0, 4, 20)]}),
    ClassifierSpec("logistic", _logistic, "LogisticRegression",
                   {"clf__C": np.logspace(-3, 3, 20).tolist()}),
    ClassifierSpec("svc", _svc, "CalibratedClassifierCV", {
        "clf__estimator__C": [0.1, 1.0, 10.0, 100.0],
        "clf__estimator__gamma": ["scale", 1e-4, 1e-3, 1e-2, 1e-1],
    }),
    ClassifierSpec("random_forest", _random_forest, "RandomForestClassifier",
                   dict(_TREE_GRID)),
    ClassifierSpec("extra_trees", _extra_trees, "ExtraTreesClassifier",
                   dict(_TREE_GRID)),
    ClassifierSpec("hist_gradient_boosting", _hist_gradient_boosting,
                   "HistGradientBoostingClassifier", {
                       "clf__learning_rate": [0.03, 0.1, 0.3, 0.5],
                       "clf__max_leaf_nodes": [7, 15, 31, 63, 127],
                   }),
    ClassifierSpec("soft_voting", _soft_voting, "VotingClassifier", {
        "clf__logistic__C": np.logspace(-2, 2, 5).tolist(),
        "clf__weights": [None, [2, 1, 1, 1], [1, 2, 1, 1], [1, 1, 2, 1]],
    }),
    ClassifierSpec("stacking", _stacking, "StackingClassifier",
                   {"clf__final_estimator__C": np.logspace(-3, 3, 20).tolist()}),
]}


def _classifier(name):
    if name not in CLASSIFIERS:
        raise ValueError(
            "The 'classifier' argument of make_hybrid_pipeline must be a "
            f"classifier instance or a str among {sorted(CLASSIFIERS)}. Got {name!r} "
            "instead."
        )
    return CLASSIFIERS[name].factory()


def classifier_name(clf):
    """The :data:`CLASSIFIERS` name of a classifier, or None.

    Parameters
    ----------
    clf : estimator
        A classifier, such as ``get_classifier(pipe)``.

    Returns
    -------
    name : str or None
        The name whose factory makes a classifier of that class; None for a
        classifier of your own.

    Examples
    --------
    >>> from hybridclf import make_hybrid_pipeline
    >>> from hybridclf.pipeline import classifier_name, get_classifier
    >>> classifier_name(get_classifier(make_hybrid_pipeline(classifier="svc")))
    'svc'
    """
    for spec in CLASSIFIERS.values():
        if type(clf).__name__ == spec.type_name:
            return spec.name
    return None


# -- accessors -------------------------------------------------------------------
def is_passthrough(step):
    """Whether a pipeline step is switched off (None or ``"passthrough"``)."""
    return step is None or (isinstance(step, str) and step == "passthrough")


def _step(pipe, name):
    step = dict(pipe.steps).get(name)
    return None if is_passthrough(step) else step


def get_loader(pipe):
    """The image loader of a hybrid pipeline, or None when it is switched off."""
    return _step(pipe, _LOAD)


def get_sampler(pipe):
    """The sampler of a hybrid pipeline (fit only), or None when there is none."""
    return _step(pipe, _AUGMENT)


def get_feature_union(pipe):
    """The ``FeatureUnion`` of a hybrid pipeline's feature blocks."""
    return dict(pipe.steps)[_FEATURES]


def get_classifier(pipe):
    """The final classifier of a hybrid pipeline."""
    return dict(pipe.steps)[_CLF]


def set_classifier(pipe, clf):
    """Put ``clf`` (fitted or not) in place of the pipeline's classifier.

    Unlike ``set_params(clf=...)`` this keeps a fitted pipeline fitted: the
    other steps are left as they are. Returns ``pipe``.
    """
    index = [name for name, _ in pipe.steps].index(_CLF)
    pipe.steps[index] = (_CLF, clf)
    return pipe


def set_n_jobs(pipe, n_jobs):
    """Set every ``n_jobs`` of a fitted pipeline's steps, whatever it was in fit.

    The loader, the feature extractors and the classifier get ``n_jobs``. A
    ``FeatureUnion``'s own ``n_jobs`` is left as it is: it would start worker
    processes (and copy the model to them) on every call; its blocks run side
    by side in threads anyway (see
    :func:`~hybridclf.prediction.transform_features`).

    Parameters
    ----------
    pipe : Pipeline
        A hybrid pipeline, fitted or not.

    n_jobs : int or None
        Threads each step may use; None means every core (-1).

    Returns
    -------
    pipe : Pipeline
        The same pipeline.
    """
    n_jobs = -1 if n_jobs is None else int(n_jobs)
    params = pipe.get_params()
    names = [k for k, v in params.items()
             if k.endswith("n_jobs") and (v is None or isinstance(v, int))
             and not isinstance(params.get(k.rpartition("__")[0]), FeatureUnion)]
    return pipe.set_params(**{name: n_jobs for name in names})


def set_max_pixels(pipe, max_pixels):
    """Set the ``max_pixels`` of every image loader of a pipeline.

    Parameters
    ----------
    pipe : Pipeline
        A hybrid pipeline, fitted or not.

    max_pixels : int
        Most pixels an encoded image may declare (see
        :class:`~hybridclf.io.ImageLoader`).

    Returns
    -------
    pipe : Pipeline
        The same pipeline.
    """
    names = [k for k in pipe.get_params() if k.endswith("max_pixels")]
    return pipe.set_params(**{name: int(max_pixels) for name in names})


def set_image_params(pipe, *, n_jobs=None, max_pixels=None):
    """Set the threads and the pixel limit of every image step of a pipeline.

    The image steps are the loader, the sampler and each block's extractor;
    the classifier keeps its own ``n_jobs``. A fitted pipeline stays fitted:
    both are run-time settings, as the commands that load a model set them.

    Parameters
    ----------
    pipe : Pipeline
        A hybrid pipeline, fitted or not.

    n_jobs : int or None, default=None
        Threads of the image steps; None leaves them as they are.

    max_pixels : int or None, default=None
        The most pixels an image may declare in its header (every
        ``max_pixels`` parameter of the pipeline); None leaves it as it is.

    Returns
    -------
    pipe : Pipeline
        The same pipeline.
    """
    if n_jobs is not None:
        pipe.set_params(**{name: n_jobs for name in pipe.get_params() if name.endswith(
            ("load__n_jobs", "augment__n_jobs", "extract__n_jobs"))})
    if max_pixels is not None:
        set_max_pixels(pipe, max_pixels)
    return pipe


def iter_feature_blocks(union_or_pipe):
    """Yield ``(name, block)`` for each feature block that is switched on.

    Parameters
    ----------
    union_or_pipe : Pipeline or FeatureUnion
        A hybrid pipeline, or its feature union.

    Yields
    ------
    name : str
        The block's name (``"hog"``).

    block : estimator
        The block: a ``Pipeline`` of the steps ``extract`` and ``scale`` as
        :func:`make_hybrid_pipeline` builds it, or any transformer.
    """
    union = union_or_pipe
    if not hasattr(union, "transformer_list"):
        union = get_feature_union(union_or_pipe)
    for name, block in union.transformer_list:
        if not is_passthrough(block):
            yield name, block


def get_block_extractor(block):
    """The feature extractor of a block (the block itself if it has no steps)."""
    return block.named_steps[_EXTRACT] if _is_block(block) else block


def get_block_scaler(block):
    """The scaler of a block as :func:`make_hybrid_pipeline` builds it, or None."""
    return block.named_steps[_SCALE] if _is_block(block) else None


def _is_block(block):
    names = [name for name, _ in getattr(block, "steps", [])]
    return names == [_EXTRACT, _SCALE]


def has_hybrid_structure(pipe):
    """Whether ``pipe`` has the steps and blocks that make_hybrid_pipeline builds."""
    steps = dict(pipe.steps)
    union = steps.get(_FEATURES)
    if set(steps) != {_LOAD, _AUGMENT, _FEATURES, _CLF} or not hasattr(
            union, "transformer_list"):
        return False
    return all(_is_block(block) for _, block in union.transformer_list)


def _feature_block(item):
    """(name, Pipeline(extract, scale)) for a block name or a (name, estimator)."""
    if isinstance(item, str):
        if item not in FEATURE_BLOCKS:
            raise ValueError(
                "The 'features' argument of make_hybrid_pipeline must list names "
                f"among {sorted(FEATURE_BLOCKS)} or (name, transformer) pairs. Got "
                f"{item!r} instead."
            )
        name, extractor = item, FEATURE_BLOCKS[item]()
    elif (
        isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
        and hasattr(item[1], "transform")
    ):
        name, extractor = item[0], clone(item[1])
    else:
        raise TypeError(
            "Each entry of the 'features' argument of make_hybrid_pipeline must be "
            f"a block name (one of {sorted(FEATURE_BLOCKS)}) or a (name, "
            f"transformer) pair. Got {item!r} instead."
        )
    return name, extractor


def make_hybrid_pipeline(
    *, features=DEFAULT_FEATURES, classifier="ridge", sampler="auto", memory=None,
    verbose=False, cascade="auto",
):
    """Build the hybrid image classifier as an imbalanced-learn ``Pipeline``.

    The pipeline takes image file paths (or arrays) and labels::

        load -> augment (fit only) -> features -> clf

    - ``load``: an :class:`~hybridclf.io.ImageLoader` that reads and resizes
      every image to one size (``load__size``, 224 by default).
    - ``augment``: the sampler given as ``sampler`` (such as a class-aware
      augmenter), applied during ``fit`` only; ``"passthrough"`` when None.
    - ``features``: a :class:`~sklearn.pipeline.FeatureUnion` with one block
      per entry of ``features``; each block is a ``Pipeline`` of the extractor
      (step ``extract``) and a :class:`~sklearn.preprocessing.StandardScaler`
      (step ``scale``), so every block is scaled on its own.
    - ``clf``: the classifier.

    The arguments only choose the steps. Everything else is a parameter of a
    step, set with ``set_params`` or tuned with ``GridSearchCV`` by its name,
    for example ``features__hog__extract__orientations``,
    ``features__lbp__extract__grid``, ``features__sift__extract__n_words``,
    ``load__n_jobs`` or ``clf__alphas``. ``pipe.get_params()`` lists them all.

    Parameters
    ----------
    features : sequence of str or (str, transformer), default=("cnn", "hog", \
"lbp", "color")
        The feature blocks, by name or as ``(name, transformer)`` pairs for a
        transformer of your own that takes images of shape (n, height, width,
        3). Known names:

        - "cnn": :class:`~hybridclf.features.CNNFeatures`
        - "hog": :class:`~hybridclf.features.HOGFeatures`
        - "lbp": :class:`~hybridclf.features.LBPFeatures`
        - "sift": :class:`~hybridclf.features.SIFTBoVW`
        - "color": :class:`~hybridclf.features.ColorHistogram`

        The default was the most accurate on the amulet benchmark
        (``docs/benchmarks.md``, ``docs/choosing-features.md``). Without a
        CNN, ``("hog", "lbp", "sift", "color")`` is about 4 points less
        accurate there but several times faster to predict.

    classifier : str or estimator, default="ridge"
        The final classifier, by name or as a scikit-learn classifier:

        - "ridge": :class:`~hybridclf.classifiers.RidgeSoftmaxClassifier`, a
          ridge classifier whose penalty is chosen by leave-one-out
          cross-validation and whose probabilities are calibrated on its
          leave-one-out decisions; the most accurate on the amulet benchmark
          (``docs/benchmarks.md``), and fast.
        - "logistic": ``LogisticRegression``.
        - "svc": an RBF ``SVC`` with probabilities calibrated by
          ``CalibratedClassifierCV``.
        - "random_forest": a ``RandomForestClassifier`` of 500 trees.
        - "extra_trees": an ``ExtraTreesClassifier`` of 500 trees.
        - "hist_gradient_boosting": a ``HistGradientBoostingClassifier``.
        - "soft_voting": a ``VotingClassifier`` averaging the probabilities of
          LogisticRegression, the calibrated SVC, extra trees (300) and
          histogram gradient boosting (100 iterations).
        - "stacking": a ``StackingClassifier`` of the same four, combined by a
          LogisticRegression on their out-of-fold probabilities (3 folds).

    sampler : "auto", "views", imbalanced-learn sampler or None, default="auto"
        A sampler that resamples the loaded images during ``fit`` only:

        - "auto": ``ViewAugmenter(views=AUTO_VIEWS)``: when the training
          set's smallest class has fewer than 15 images, each image is joined
          by itself shrunk, with its hue turned, darkened and blurred
          (:data:`~hybridclf.view_sampling.AUTO_VIEWS`); from 15 images on,
          nothing is added. On the learning curve (``docs/benchmarks.md``,
          20 paired draws) it raised accuracy by about 5, 4 and 1 points at
          3, 5 and 10 photos per class on amulet6 and on handwritten digits,
          and lost nowhere. The classifier leaves each image out with its
          views in its leave-one-out (``groups``, see
          :class:`~hybridclf.grouped_fit.GroupedPipeline`), so its
          probabilities and the open-set threshold learned from them stay
          honest.
        - "views": ``ViewAugmenter()``, the same without the blur (for
          textures that fill the frame, which a blur erases).
        - a sampler, such as :class:`~hybridclf.ClassAwareAugmenter`
          (balances classes by random augmentation) or a
          :class:`~hybridclf.ViewAugmenter` of your own.
        - None: no views; the step is ``"passthrough"``, to be set later with
          ``set_params(augment=...)``.

    memory : str, joblib.Memory or None, default=None
        Where to cache fitted transformers, so that repeated fits on the same
        data (cross-validation, grid search over the classifier or one block)
        reuse loaded images and computed features. Also given to each feature
        block, so changing one block's parameters recomputes only that block.

    verbose : bool, default=False
        Print the time each step takes (scikit-learn's pipeline verbosity).

    cascade : {"auto", True, False}, default="auto"
        Whether to return a :class:`~hybridclf.cascade.CascadePipeline`: the
        same steps, plus a calibrated classifier on the HOG, LBP and colour
        blocks that answers the photos it is sure of without running the
        other blocks (the CNN); its threshold is learned in ``fit`` from
        grouped out-of-fold predictions (pass ``groups=``), so that the
        accuracy stays within 0.005 of the full model's. On amulet6 it
        answered three photos in four without the CNN, at the same accuracy
        (``docs/benchmarks.md``, "Cascade").

        - "auto": a cascade when the blocks include "cnn" and at least one of
          "hog", "lbp" and "color" (those answer early); else the plain
          pipeline.
        - True: a cascade; its cheap blocks are those of "hog", "lbp" and
          "color" among ``features`` (set others with
          ``set_params(cheap_features=...)``).
        - False: the plain pipeline: every block runs on every photo.

    Returns
    -------
    pipeline : imblearn.pipeline.Pipeline
        The unfitted pipeline with steps ``load``, ``augment``, ``features``
        and ``clf``: a ``CascadePipeline`` (a subclass) when ``cascade``
        makes one.

    Examples
    --------
    >>> from hybridclf import make_hybrid_pipeline
    >>> pipe = make_hybrid_pipeline(features=["hog", "color"])
    >>> [name for name, _ in pipe.steps]
    ['load', 'augment', 'features', 'clf']
    >>> type(make_hybrid_pipeline()).__name__, type(
    ...     make_hybrid_pipeline(cascade=False)).__name__
    ('CascadePipeline', 'GroupedPipeline')
    >>> pipe.set_params(features__hog__extract__orientations=12)["features"]
    FeatureUnion(...)
    """
    if isinstance(features, str):
        features = [features]
    blocks = [_feature_block(item) for item in features]
    if not blocks:
        raise ValueError(
            "The 'features' argument of make_hybrid_pipeline must name at least "
            f"one block among {sorted(FEATURE_BLOCKS)}. Got an empty list."
        )
    names = [name for name, _ in blocks]
    if len(set(names)) != len(names):
        raise ValueError(
            f"The 'features' argument of make_hybrid_pipeline names a block twice: "
            f"{names!r}. Give each (name, transformer) pair its own name."
        )
    union = FeatureUnion(
        [
            (
                name,
                Pipeline(
                    [(_EXTRACT, extractor), (_SCALE, StandardScaler())],
                    memory=memory,
                ),
            )
            for name, extractor in blocks
        ]
    )
    clf = _classifier(classifier) if isinstance(classifier, str) else clone(classifier)
    if isinstance(sampler, str):
        if sampler not in ("auto", "views"):
            raise ValueError(
                "The 'sampler' argument of make_hybrid_pipeline must be \"auto\", "
                "\"views\", an imbalanced-learn sampler or None. Got "
                f"{sampler!r} instead."
            )
        sampler = ViewAugmenter(views=AUTO_VIEWS if sampler == "auto" else
                                DEFAULT_VIEWS)
    steps = [
        (_LOAD, ImageLoader()),
        (_AUGMENT, "passthrough" if sampler is None else clone(sampler)),
        (_FEATURES, union),
        (_CLF, clf),
    ]
    cheap = _cascade_blocks(cascade, names)
    if cheap is None:
        return GroupedPipeline(steps, memory=memory, verbose=verbose)
    from .cascade import CascadePipeline

    return CascadePipeline(steps, cheap_features=cheap, memory=memory,
                           verbose=verbose)


def _cascade_blocks(cascade, names):
    """The cheap blocks of the cascade that ``cascade`` asks for, or None."""
    from .cascade import CHEAP_FEATURES

    if cascade not in ("auto", True, False):
        raise ValueError(
            "The 'cascade' argument of make_hybrid_pipeline must be 'auto', True "
            f"or False. Got {cascade!r} instead."
        )
    cheap = tuple(name for name in CHEAP_FEATURES if name in names)
    if cascade == "auto" and ("cnn" not in names or not cheap):
        return None
    return (cheap or CHEAP_FEATURES) if cascade else None
