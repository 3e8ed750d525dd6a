"""How a cross-validation score and its spread over the folds are written.

``hybridclf train`` prints and the model card shows each cross-validated
metric as its mean over the folds and the standard deviation of the fold
scores. Written as a bare ``0.929 +/- 0.047`` the spread read as a confidence
interval of the mean, which it is not: it is how far one fold's score strays
from another's (the interval of the mean, over 15 folds that share photos,
is neither it nor a fixed fraction of it). :func:`cv_score_text` says so,
the same way wherever the figure is written.
"""

__all__ = ["cv_score_text"]


def cv_score_text(values):
    """``'0.929 +/- 0.047 (standard deviation over 15 folds)'``.

    Parameters
    ----------
    values : dict
        One metric of ``cv_scores`` (:class:`~hybridclf.training.TrainingResult`,
        ``model.json``): ``mean``, ``std`` (of the fold scores) and
        ``folds`` (each fold's score).

    Returns
    -------
    text : str
        The mean and the standard deviation, three decimals each, and what
        the spread is: the standard deviation over the folds, named with
        their number.

    Examples
    --------
    >>> cv_score_text({"mean": 0.929, "std": 0.047, "folds": [0.9] * 15})
    '0.929 +/- 0.047 (standard deviation over 15 folds)'
    """
    n = len(values["folds"])
    return (f"{values['mean']:.3f} +/- {values['std']:.3f} (standard deviation "
            f"over {n} fold{'' if n == 1 else 's'})")
