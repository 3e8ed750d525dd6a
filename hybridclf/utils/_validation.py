"""The one place that imports scikit-learn's private validation helpers.

Everything else in hybridclf imports them from here, so a change in
scikit-learn's private API is fixed in one file.
"""

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
