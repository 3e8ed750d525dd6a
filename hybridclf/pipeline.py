"""The hybrid pipeline: load images, augment (fit only), extract, classify."""

from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import StandardScaler

from ._classifiers import CLASSIFIERS, ClassifierSpec, _classifier, classifier_name
from ._pipeline_steps import (
    _AUGMENT,
    _CLF,
    _EXTRACT,
    _FEATURES,
    _LOAD,
    _SCALE,
    get_block_extractor,
    get_block_scaler,
    get_classifier,
    get_feature_union,
    get_loader,
    get_sampler,
    has_hybrid_structure,
    is_passthrough,
    iter_feature_blocks,
    set_classifier,
    set_image_params,
    set_max_pixels,
    set_n_jobs,
)
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

        On the amulet benchmark (``docs/benchmarks.md``,
        ``docs/choosing-features.md``) no configuration measured beats the
        default by more than 0.6 points, and those cost about twice its
        prediction time. Without a CNN, ``("hog", "lbp", "sift", "color")`` is
        about 2 points less accurate there, ``("hog", "lbp", "color")`` about
        3, but several times faster to predict.

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
          "hog", "lbp" and "color" (those answer early), and the classifier
          has ``predict_proba`` (the cascade compares probabilities); else
          the plain pipeline.
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
    cheap = _cascade_blocks(cascade, names, hasattr(clf, "predict_proba"))
    if cheap is None:
        return GroupedPipeline(steps, memory=memory, verbose=verbose)
    from .cascade import CascadePipeline

    return CascadePipeline(steps, cheap_features=cheap, memory=memory,
                           verbose=verbose)


def _cascade_blocks(cascade, names, probabilities=True):
    """The cheap blocks of the cascade that ``cascade`` asks for, or None.

    ``probabilities``: whether the classifier has ``predict_proba``, which a
    cascade needs ("auto" makes none without it).
    """
    from .cascade import CHEAP_FEATURES

    if cascade not in ("auto", True, False):
        raise ValueError(
            "The 'cascade' argument of make_hybrid_pipeline must be 'auto', True "
            f"or False. Got {cascade!r} instead."
        )
    cheap = tuple(name for name in CHEAP_FEATURES if name in names)
    if cascade == "auto" and ("cnn" not in names or not cheap or not probabilities):
        return None
    return (cheap or CHEAP_FEATURES) if cascade else None
