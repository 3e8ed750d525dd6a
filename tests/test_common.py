"""API checks for every estimator of hybridclf."""

import pytest
from sklearn.base import clone
from sklearn.utils import estimator_checks as sk_checks

from hybridclf import (
    ClassAwareAugmenter,
    ImageLoader,
    ViewAugmenter,
    make_hybrid_pipeline,
)
from hybridclf.features import (
    CNNFeatures,
    ColorHistogram,
    HOGFeatures,
    LBPFeatures,
    SIFTBoVW,
)
from hybridclf.utils.estimator_checks import (
    image_sampler_checks,
    image_transformer_checks,
)

ESTIMATORS = [
    ImageLoader(size=32),
    HOGFeatures(image_size=None, pixels_per_cell=8),
    LBPFeatures(),
    ColorHistogram(),
    SIFTBoVW(n_words=16, max_descriptors=2000),
]


def _id(obj):
    return getattr(obj, "__name__", type(obj).__name__)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_id)
@pytest.mark.parametrize("check", image_transformer_checks(), ids=_id)
def test_image_estimator_api(estimator, check, real_images):
    check(clone(estimator), real_images)


@pytest.mark.parametrize("check", image_sampler_checks(), ids=_id)
def test_image_sampler_api(check, real_images):
    check(ClassAwareAugmenter(random_state=0), real_images)


SKLEARN_CHECKS = [
    sk_checks.check_estimator_cloneable,
    sk_checks.check_estimator_repr,
    sk_checks.check_no_attributes_set_in_init,
    sk_checks.check_get_params_invariance,
    sk_checks.check_set_params,
    sk_checks.check_valid_tag_types,
    sk_checks.check_estimator_tags_renamed,
]


@pytest.mark.parametrize(
    "estimator",
    [*ESTIMATORS, ClassAwareAugmenter(), ViewAugmenter(), CNNFeatures(weights=None),
     # the pipelines (RidgeSoftmaxClassifier: check_estimator in
     # test_classifiers.py)
     make_hybrid_pipeline(features=["hog", "color"]),
     make_hybrid_pipeline(features=["hog", "color", "cnn"], cascade=True)],
    ids=_id,
)
@pytest.mark.parametrize("check", SKLEARN_CHECKS, ids=_id)
def test_sklearn_checks_without_data(estimator, check):
    # scikit-learn's data checks feed 2-D tables, which image estimators reject
    # (they are tagged two_d_array=False); its checks that need no data apply
    check(type(estimator).__name__, clone(estimator))
