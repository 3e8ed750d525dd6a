"""How many training photos the label check flagged, of how many it checked.

``hybridclf train`` prints and the model card shows the photos whose label
the grouped out-of-fold predictions contradict, as a count of those checked.
The copies of a photo in the training part (augmented, or the same file
again) share its label and are not checked again, nor the images of a class
a fold had none of to learn from: "1 of 24 training images" on a training
part of 28 read as a count of another training part. :func:`label_check_text`
names what the count is of, the same way wherever it is written.
"""

__all__ = ["label_check_text"]


def label_check_text(issues, n_train=None):
    """``'1 of the 24 training photos checked'``, and the images not checked.

    Parameters
    ----------
    issues : dict
        ``label_issues`` of ``model.json``
        (:meth:`~hybridclf.training.TrainingResult.metadata`):
        ``n_flagged`` and ``n_checked``.

    n_train : int or None, default=None
        The images of the training part; when more than were checked, the
        text says which are not. None says nothing of them.

    Returns
    -------
    text : str
        The count of flagged photos of those checked.

    Examples
    --------
    >>> from hybridclf._label_check_text import label_check_text
    >>> print(label_check_text({"n_flagged": 1, "n_checked": 24}, 28))
    1 of the 24 training photos checked (of the 28 images of the training
    part, the copies of a photo and the classes a fold had no image of are not
    checked)
    >>> label_check_text({"n_flagged": 0, "n_checked": 24}, 24)
    '0 of the 24 training photos checked'
    """
    text = (f"{issues.get('n_flagged')} of the {issues.get('n_checked')} "
            "training photos checked")
    checked = issues.get("n_checked")
    if isinstance(n_train, int) and isinstance(checked, int) and n_train > checked:
        text += (f" (of the {n_train} images of the training part, the copies of "
                 "a photo and the classes a fold had no image of are not checked)")
    return text
