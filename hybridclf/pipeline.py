"""The hybrid pipeline: load images, augment (fit only), extract, classify."""

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
from .io import ImageLoader
from .view_sampling import ViewAugmenter

__all__ = ["FEATURE_BLOCKS", "make_hybrid_pipeline"]

#: Feature blocks that ``make_hybrid_pipeline(features=...)`` knows by name.
FEATURE_BLOCKS = {
    "cnn": CNNFeatures,
    "hog": HOGFeatures,
    "lbp": LBPFeatures,
    "sift": SIFTBoVW,
    "color": ColorHistogram,
}

DEFAULT_FEATURES = ("cnn", "hog", "lbp", "color")


def _ensemble_members():
    """The (name, classifier) members of the "soft_voting" and "stacking" choices."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier
    from sklearn.svm import SVC

    return [
        ("logistic", LogisticRegression(max_iter=5000)),
        ("svc", CalibratedClassifierCV(SVC(C=10.0), cv=3)),
        ("extra_trees", ExtraTreesClassifier(n_estimators=300)),
        ("hist_gradient_boosting", HistGradientBoostingClassifier(max_iter=100)),
    ]


def _classifier(name):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
        StackingClassifier,
        VotingClassifier,
    )
    from sklearn.svm import SVC

    from .classifiers import RidgeSoftmaxClassifier

    known = {
        "ridge": RidgeSoftmaxClassifier,
        "logistic": lambda: LogisticRegression(max_iter=5000),
        "svc": lambda: CalibratedClassifierCV(SVC(C=10.0), cv=3),
        "random_forest": lambda: RandomForestClassifier(n_estimators=500),
        "extra_trees": lambda: ExtraTreesClassifier(n_estimators=500),
        "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(),
        "soft_voting": lambda: VotingClassifier(_ensemble_members(), voting="soft"),
        "stacking": lambda: StackingClassifier(
            _ensemble_members(), final_estimator=LogisticRegression(max_iter=5000),
            stack_method="predict_proba", cv=3,
        ),
    }
    if name not in known:
        raise ValueError(
            "The 'classifier' argument of make_hybrid_pipeline must be a "
            f"classifier instance or a str among {sorted(known)}. Got {name!r} "
            "instead."
        )
    return known[name]()


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
    verbose=False,
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

    sampler : "auto", imbalanced-learn sampler or None, default="auto"
        A sampler that resamples the loaded images during ``fit`` only (for
        example to balance classes by augmentation). ``"auto"`` is a
        :class:`~hybridclf.view_sampling.ViewAugmenter`: when the training
        set's smallest class has fewer than 20 images, ``fit`` adds each
        image's mirror image and the image turned 12 degrees each way (on the
        amulet learning curve, ``docs/choosing-features.md``, 2.6 points
        more accurate at 3 photos per class, 1.9 at 5, 1.4 at 10 and never
        less; on handwritten digits, which a mirror changes, about a point
        less at 10: give ``None`` for text, digits and textures); its fitted
        ``views_`` says which views were added. ``None`` leaves the step as
        ``"passthrough"``, to be set later with ``set_params(augment=...)``.

    memory : str, joblib.Memory or None, default=None
        Where to cache fitted transformers, so that repeated fits on the same
        data (cross-validation, grid search over the classifier or one block)
        reuse loaded images and computed features. Also given to each feature
        block, so changing one block's parameters recomputes only that block.

    verbose : bool, default=False
        Print the time each step takes (scikit-learn's pipeline verbosity).

    Returns
    -------
    pipeline : imblearn.pipeline.Pipeline
        The unfitted pipeline with steps ``load``, ``augment``, ``features``
        and ``clf``.

    Examples
    --------
    >>> from hybridclf import make_hybrid_pipeline
    >>> pipe = make_hybrid_pipeline(features=["hog", "color"])
    >>> [name for name, _ in pipe.steps]
    ['load', 'augment', 'features', 'clf']
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
                    [("extract", extractor), ("scale", StandardScaler())],
                    memory=memory,
                ),
            )
            for name, extractor in blocks
        ]
    )
    clf = _classifier(classifier) if isinstance(classifier, str) else clone(classifier)
    return Pipeline(
        [
            ("load", ImageLoader()),
            ("augment", "passthrough" if sampler is None else ViewAugmenter()
             if isinstance(sampler, str) and sampler == "auto" else clone(sampler)),
            ("features", union),
            ("clf", clf),
        ],
        memory=memory,
        verbose=verbose,
    )
