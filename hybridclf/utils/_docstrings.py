"""Docstring text that several estimators and functions share, filled in once.

A parameter documented alike in many places (``n_jobs``) is written here once
and put into each docstring by the :class:`Substitution` decorator, the way
imbalanced-learn and pandas share their parameter text: the docstring holds
a ``{n_jobs}`` field and the decorator fills it. Literal braces in a
decorated docstring are doubled (``{{"hsv", "lab"}}``), as in
:meth:`str.format`.
"""

import textwrap

__all__ = ["Substitution", "n_jobs_docstring"]

_N_JOBS_MEANING = (
    "``None`` means 1 unless in a :func:`joblib.parallel_config` context; "
    "``-1`` means all processors."
)

# the indent of a parameter's description in a numpydoc docstring
_INDENT = " " * 8


class Substitution:
    """Fill the ``{name}`` fields of a function's or class's docstring.

    Parameters
    ----------
    **params : str
        The text of each field.

    Examples
    --------
    >>> @Substitution(what="the answer")
    ... def f():
    ...     '''Return {what}.'''
    >>> f.__doc__
    'Return the answer.'
    """

    def __init__(self, **params):
        self.params = params

    def __call__(self, obj):
        # docstrings are None under ``python -OO``
        if obj.__doc__:
            obj.__doc__ = obj.__doc__.format(**self.params)
        return obj


def n_jobs_docstring(what, note=""):
    """The numpydoc entry of an ``n_jobs`` parameter that sets a thread count.

    Parameters
    ----------
    what : str
        What the threads do, as a sentence (``"Threads that extract
        features."``).

    note : str, default=""
        Sentences that follow the shared text, such as what does not depend
        on ``n_jobs``.

    Returns
    -------
    entry : str
        ``n_jobs : int, default=None`` and its description, for a field of
        a docstring indented by four spaces (:class:`Substitution`).

    Examples
    --------
    >>> print(n_jobs_docstring("Threads that read files."))
    n_jobs : int, default=None
            Threads that read files. ``None`` means 1 unless in a
            :func:`joblib.parallel_config` context; ``-1`` means all
            processors.
    """
    text = " ".join(part for part in (what, _N_JOBS_MEANING, note) if part)
    return "n_jobs : int, default=None\n" + textwrap.fill(
        text, width=79, initial_indent=_INDENT, subsequent_indent=_INDENT)


#: The ``n_jobs`` entry of the image feature extractors.
_n_jobs_extract_docstring = n_jobs_docstring("Number of threads that extract features.")

#: The ``image`` entry of the augmentation functions.
_image_docstring = """image : ndarray of shape (height, width[, 3]), dtype uint8
        The image."""

#: The ``image_shape_`` attribute of the image feature extractors.
_image_shape_docstring = """image_shape_ : tuple of int
        Shape (height, width, 3) of the images seen in ``fit``."""

# The entries below go into the docstrings of methods, which are indented by
# eight spaces (the descriptions by twelve).

#: The ``X`` and ``y`` entries of the image feature extractors' ``fit`` methods.
_fit_parameters_docstring = """X : ndarray of shape (n_samples, height, width[, 3])
            Images, as produced by :class:`~hybridclf.io.ImageLoader`.

        y : Ignored
            Not used, present for API consistency by convention."""

#: The ``features`` entry of the image feature extractors' returns.
_features_docstring = (
    "features : ndarray of shape (n_samples, n_features), dtype float32\n"
    "            The features."
)


def _ignored_docstring(*names):
    """The entries of a method's parameters that only keep the API consistent.

    Examples
    --------
    >>> print(_ignored_docstring("y"))
    y : Ignored
                Not used, present for API consistency by convention.
    """
    return "\n\n        ".join(
        f"{name} : Ignored\n"
        "            Not used, present for API consistency by convention."
        for name in names
    )
