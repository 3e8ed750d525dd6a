"""API checks for estimators that take images.

scikit-learn's :func:`~sklearn.utils.estimator_checks.check_estimator` feeds
2-D tables, which image transformers reject. These checks feed images instead
and test the same contract: cloning, parameters stored verbatim and validated
with the house message, fitting, pickling and determinism. Use them on a
feature block of your own before adding it to a pipeline::

    from hybridclf.utils.estimator_checks import check_image_transformer
    check_image_transformer(MyBlock(), images)
"""

import pickle

import joblib
import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ._validation import (
    InvalidParameterError,
    generate_invalid_param_val,
    make_constraint,
)

__all__ = [
    "check_image_transformer",
    "image_sampler_checks",
    "image_transformer_checks",
]


def _with_seed(estimator):
    """A clone with every random_state fixed, for comparing two fits."""
    estimator = clone(estimator)
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=0)
    return estimator


def _equal(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def check_clone_round_trip(estimator, images):
    """clone() gives equal parameters, and get_params/set_params round-trip."""
    params = estimator.get_params(deep=False)
    cloned = clone(estimator)
    assert joblib.hash(cloned.get_params(deep=False)) == joblib.hash(params)
    cloned.set_params(**params)
    assert joblib.hash(cloned.get_params(deep=False)) == joblib.hash(params)


def check_init_stores_params(estimator, images):
    """__init__ stores each keyword verbatim and sets nothing else."""
    params = estimator.get_params(deep=False)
    fresh = type(estimator)(**params)
    for name, value in params.items():
        assert getattr(fresh, name) is value, f"__init__ changed {name!r}"
    extra = set(vars(fresh)) - set(params)
    assert not extra, f"__init__ sets attributes that are not parameters: {extra}"


def check_constraints_cover_params(estimator, images):
    """_parameter_constraints has exactly one entry per parameter."""
    constraints = set(getattr(estimator, "_parameter_constraints", {}))
    params = set(estimator.get_params(deep=False))
    assert constraints == params, (
        f"constraints without a parameter: {constraints - params}; parameters "
        f"without a constraint: {params - constraints}"
    )


def check_not_fitted(estimator, images):
    """transform before fit raises NotFittedError."""
    if not estimator.__sklearn_tags__().requires_fit:
        return
    try:
        clone(estimator).transform(images)
    except NotFittedError:
        return
    raise AssertionError("transform before fit did not raise NotFittedError")


def check_fit_returns_self_keeps_params(estimator, images):
    """fit returns self and does not change the parameters."""
    est = _with_seed(estimator)
    before = joblib.hash(est.get_params(deep=False))
    assert est.fit(images) is est
    assert joblib.hash(est.get_params(deep=False)) == before


def check_output_rows_and_names(estimator, images):
    """One finite row per image, and one feature name per column."""
    est = _with_seed(estimator).fit(images)
    out = est.transform(images)
    assert out.shape[0] == len(images)
    assert np.isfinite(out).all()
    if out.ndim != 2:  # an image-to-image step such as the loader
        return
    names = est.get_feature_names_out()
    assert len(names) == out.shape[1]
    assert len(set(names)) == len(names), "feature names are not unique"


def check_fit_transform_consistent(estimator, images):
    """fit_transform equals fit then transform, and refitting is idempotent."""
    est = _with_seed(estimator)
    first = est.fit_transform(images)
    _equal(first, est.transform(images))
    _equal(first, est.fit(images).transform(images))


def check_pickle_keeps_output(estimator, images):
    """A pickled and unpickled fitted estimator gives the same output."""
    est = _with_seed(estimator).fit(images)
    restored = pickle.loads(pickle.dumps(est))
    _equal(est.transform(images), restored.transform(images))


def check_fixed_random_state(estimator, images):
    """Two fits with the same random_state give the same output."""
    a = _with_seed(estimator).fit_transform(images)
    b = _with_seed(estimator).fit_transform(images)
    _equal(a, b)


def check_rejects_other_image_shape(estimator, images):
    """transform rejects images of another shape than fit saw."""
    if not estimator.__sklearn_tags__().requires_fit:
        return
    est = _with_seed(estimator).fit(images)
    other = np.ascontiguousarray(images[:, :-8, :-8])
    try:
        est.transform(other)
    except ValueError as exc:
        assert "shape" in str(exc)
        return
    raise AssertionError("transform accepted images of another shape")


def check_param_validation(estimator, images):
    """A bad value of any parameter raises the house message at fit."""

    class _NotAValue:
        pass

    name = type(estimator).__name__
    for param, constraints in estimator._parameter_constraints.items():
        bad_values = [_NotAValue()]
        for constraint in constraints:
            try:
                bad_values.append(generate_invalid_param_val(make_constraint(constraint)))
            except NotImplementedError:
                continue
        # labels too, for samplers (and extractors that may fine-tune)
        labels = np.arange(len(images)) % 2
        for value in bad_values:
            est = clone(estimator).set_params(**{param: value})
            try:
                est.fit(images, labels)
            except InvalidParameterError as exc:
                expected = f"The '{param}' parameter of {name} must be"
                assert expected in str(exc), str(exc)
                continue
            except (ValueError, TypeError):
                # a value the constraint allows but the estimator rejects itself
                continue
            raise AssertionError(
                f"{name}(…{param}={value!r}) was fitted without an error"
            )


def image_transformer_checks():
    """The checks run by :func:`check_image_transformer`, in order."""
    return [
        check_clone_round_trip,
        check_init_stores_params,
        check_constraints_cover_params,
        check_not_fitted,
        check_fit_returns_self_keeps_params,
        check_output_rows_and_names,
        check_fit_transform_consistent,
        check_pickle_keeps_output,
        check_fixed_random_state,
        check_rejects_other_image_shape,
        check_param_validation,
    ]


def image_sampler_checks():
    """The checks that apply to an image sampler (it has no ``transform``)."""
    return [
        check_clone_round_trip,
        check_init_stores_params,
        check_constraints_cover_params,
        check_param_validation,
    ]


def check_image_transformer(estimator, images):
    """Run every API check on an image transformer; raise on the first failure.

    Parameters
    ----------
    estimator : estimator instance
        An unfitted transformer that takes images of shape (n_images, height,
        width, 3).

    images : ndarray of shape (n_images, height, width, 3), dtype uint8
        A few images to fit and transform (at least 16 x 16 pixels more than
        the estimator's minimum size).
    """
    for check in image_transformer_checks():
        check(estimator, images)
