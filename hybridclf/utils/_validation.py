"""The one place that imports scikit-learn's and imbalanced-learn's private helpers.

Everything else in hybridclf imports them from here, so a change in their
private APIs is fixed in one file.
"""

from imblearn.utils._docstring import _random_state_docstring
from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    generate_invalid_param_val,
    make_constraint,
    validate_params,
)

__all__ = [
    "_random_state_docstring",
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "Options",
    "StrOptions",
    "_fit_context",
    "generate_invalid_param_val",
    "make_constraint",
    "validate_params",
]
