"""The classifier registry of the hybrid pipeline: names, factories and grids.

Re-exported by :mod:`hybridclf.pipeline` (``CLASSIFIERS``, ``classifier_name``).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression

__all__ = ["CLASSIFIERS", "ClassifierSpec", "classifier_name"]

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
#: factory and its search grid. The ridge's grid starts at 1: below about 30
#: every penalty gives the same predictions on amulet6 (about 4000
#: standardised features for 140 photos), so a grid reaching 1e-2 chose its
#: lowest penalty on a tie and was no more accurate (docs/benchmarks.md,
#: "Ridge penalty: search grid or leave-one-out").
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

