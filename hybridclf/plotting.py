"""Figures of an evaluation report (the only module that imports matplotlib).

Each function draws one figure from the plain data of
:func:`hybridclf.evaluation.evaluate_model`'s report and returns the matplotlib
``Figure``. Figures are made with :class:`matplotlib.figure.Figure`, not
``pyplot``, so no global state or GUI backend is touched. Pass ``ax`` to draw
into an axes of your own.
"""

import functools
import logging

import numpy as np

from .utils import import_or_raise
from .utils._docstrings import Substitution

logger = logging.getLogger(__name__)

__all__ = [
    "plot_block_importance",
    "plot_confusion_matrix",
    "plot_error_gallery",
    "plot_reliability",
    "plot_stage_speed",
]

# the docstring entries of the plotting functions
_AX_DOC = """ax : matplotlib Axes, default=None
        Where to draw; a new figure when None."""

_FIG_DOC = """fig : matplotlib Figure
        The figure."""


@functools.cache
def _charmap(path):
    """The code points that the font file at ``path`` draws."""
    from matplotlib import ft2font

    return frozenset(ft2font.FT2Font(path).get_charmap())


@functools.cache
def _font_for(char):
    """The family name of an installed font that draws ``char``, or None.

    Regular faces only, in name order; matplotlib's "Last Resort" font draws
    a placeholder box for every character, so it is never one.
    """
    from matplotlib import font_manager

    for entry in sorted(font_manager.fontManager.ttflist, key=lambda e: e.name):
        if (entry.style == "normal" and entry.weight in (400, "normal")
                and not entry.name.startswith("Last Resort")
                and ord(char) in _charmap(entry.fname)):
            return entry.name
    return None


def _with_fallback_fonts(fig):
    """Give each text of ``fig`` the installed fonts that draw its other characters.

    Matplotlib draws with DejaVu Sans, which has no Thai or CJK: a class named
    พระสมเด็จ came out as a row of boxes. A text with characters its font
    lacks gets, after its own, the installed fonts that have them
    (matplotlib's per-character font fallback); a warning names those that
    no installed font has.
    """
    from matplotlib import font_manager, text

    lacking = set()
    for artist in fig.findobj(text.Text):
        chars = {c for c in artist.get_text() if ord(c) > 127 and not c.isspace()}
        if not chars:
            continue
        drawn = _charmap(font_manager.findfont(artist.get_fontproperties()))
        missing = sorted(c for c in chars if ord(c) not in drawn)
        fonts = [f for f in dict.fromkeys(map(_font_for, missing)) if f]
        lacking.update(c for c in missing if _font_for(c) is None)
        if fonts:
            artist.set_fontfamily([*artist.get_fontfamily(), *fonts])
    if lacking:
        _warn_lacking("".join(sorted(lacking)))
    return fig


@functools.cache
def _warn_lacking(chars):
    """Warn once per process about characters that no installed font draws."""
    logger.warning(
        "No installed font draws %r: the figures show boxes for them. Install a "
        "font that has them (Thai: fonts-thai-tlwg; most scripts: fonts-noto).",
        chars)


def _literal(text):
    """``text`` as matplotlib draws it literally, never as mathtext.

    Matplotlib reads the text between two ``$`` as TeX: a class folder named
    ``cost $5 or $6`` came out with ``5 or`` in italics, and one named
    ``a $\\x$`` (or a photo ``rate $^$.jpg``) raised a ParseFatalException that
    ended ``hybridclf evaluate`` without a report. An escaped ``\\$`` is
    drawn as a dollar sign, and a text without an unescaped one is no math.

    Examples
    --------
    >>> print(_literal("cost $5 or $6"))
    cost \\$5 or \\$6
    """
    return str(text).replace("$", "\\$")


#: Inches a character of a tick label takes at matplotlib's default 10 points
#: (DejaVu Sans averages 0.6 em, 0.083 in); a generous round figure.
_NAME_INCHES_PER_CHAR = 0.085


def _axes(ax, feature, size=(5.0, 4.0)):
    """(figure, axes): the given axes, or a new figure of ``size`` inches."""
    figure_module = import_or_raise("matplotlib.figure", feature)
    if ax is not None:
        return ax.figure, ax
    fig = figure_module.Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


@Substitution(ax=_AX_DOC, fig=_FIG_DOC)
def plot_confusion_matrix(matrix, labels, *, ax=None):
    """Draw a confusion matrix, true classes in rows, with counts in the cells.

    The cells and the colour bar are counts of test images, not shares of a
    row; the colour bar says so.

    Parameters
    ----------
    matrix : array-like of shape (n_classes, n_classes)
        Counts; row ``i`` is true class ``labels[i]``.

    labels : list of str
        Class names.

    {ax}

    Returns
    -------
    {fig}
    """
    matrix = np.asarray(matrix)
    n = len(labels)
    # room for the names too: sized by the class count alone, a figure with a
    # 52-character name collapsed its axes and cut every name to its end
    name = _NAME_INCHES_PER_CHAR * max((len(str(c)) for c in labels), default=0)
    fig, ax = _axes(ax, "plot_confusion_matrix",
                    size=(2.0 + 0.6 * n + 1.2 * name, 1.6 + 0.55 * n + 0.71 * name))
    image = ax.imshow(matrix, cmap="Blues")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] > threshold else "black")
    labels = [_literal(label) for label in labels]
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    # counts, not shares of a row: the figure says so, as the report's does not
    fig.colorbar(image, ax=ax, label="test images (counts)")
    return _with_fallback_fonts(fig)


@Substitution(ax=_AX_DOC, fig=_FIG_DOC)
def plot_reliability(bins, *, ax=None):
    """Draw a reliability curve: accuracy against confidence of the top class.

    Each point is labelled with the number of test images in its bin (the
    legend says so): a bin of 3 images is no evidence of miscalibration.

    Parameters
    ----------
    bins : list of dict
        Per confidence bin: ``confidence`` (mean top probability),
        ``accuracy`` and ``count``, as in the report's ``reliability``.

    {ax}

    Returns
    -------
    {fig}
    """
    fig, ax = _axes(ax, "plot_reliability")
    used = [b for b in bins if b["count"]]
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    ax.plot([b["confidence"] for b in used], [b["accuracy"] for b in used],
            marker="o", label="model (beside each point: its test images)")
    for b in used:
        # left of the points near 1, which drew their count past the edge
        right = b["confidence"] > 0.85
        ax.annotate(str(b["count"]), (b["confidence"], b["accuracy"]),
                    textcoords="offset points", xytext=(-3 if right else 3, -10),
                    ha="right" if right else "left", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("top-class probability")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left")
    return fig


def _barh(ax, names, values, errors=None, xlabel=""):
    positions = np.arange(len(names))
    ax.barh(positions, values, xerr=errors, color="tab:blue")
    ax.set_yticks(positions, [_literal(name) for name in names])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)


@Substitution(ax=_AX_DOC, fig=_FIG_DOC)
def plot_block_importance(importance, *, ax=None):
    """Draw the accuracy drop when each feature block is permuted.

    Parameters
    ----------
    importance : dict of str to dict
        Per block: ``mean`` and ``std`` of the accuracy drop, and its 95%
        ``interval`` (``[low, high]``, or None or absent), drawn as the
        error bar when every block has one (else the ``std``).

    {ax}

    Returns
    -------
    {fig}
    """
    fig, ax = _axes(ax, "plot_block_importance",
                    size=(5.0, 1.2 + 0.4 * len(importance)))
    names = list(importance)
    means = [importance[n]["mean"] for n in names]
    intervals = [importance[n].get("interval") for n in names]
    if names and all(intervals):
        errors = np.array([[m - low for m, (low, _) in zip(means, intervals)],
                           [high - m for m, (_, high) in zip(means, intervals)]])
        label = "accuracy drop when the block is permuted (95% interval)"
    else:
        errors = [importance[n]["std"] for n in names]
        label = "accuracy drop when the block is permuted"
    _barh(ax, names, means, np.clip(errors, 0, None), label)
    return _with_fallback_fonts(fig)


@Substitution(ax=_AX_DOC, fig=_FIG_DOC)
def plot_stage_speed(speed, *, ax=None):
    """Draw the milliseconds per image of each stage of the pipeline.

    Parameters
    ----------
    speed : dict of str to float
        Stage name to ms per image.

    {ax}

    Returns
    -------
    {fig}
    """
    fig, ax = _axes(ax, "plot_stage_speed", size=(5.0, 1.2 + 0.4 * len(speed)))
    _barh(ax, list(speed), list(speed.values()), xlabel="ms per image")
    return _with_fallback_fonts(fig)


@Substitution(fig=_FIG_DOC)
def plot_error_gallery(images, titles, *, n_columns=6, neighbours=None):
    """Draw misclassified images with their true class and top guesses.

    Parameters
    ----------
    images : list of ndarray of shape (height, width, 3)
        The images.

    titles : list of str
        One caption per image.

    n_columns : int, default=6
        Images per row.

    neighbours : list of list of (ndarray or None, str), or None, default=None
        For each image, its nearest training photos: the thumbnail (None draws
        the caption alone) and a caption (label and similarity). Each image
        is then drawn at the start of a row, beside them, two images to a
        row when they have at most three neighbours each.

    Returns
    -------
    {fig}
    """
    figure_module = import_or_raise("matplotlib.figure", "plot_error_gallery")
    marked = neighbours is not None  # the test photo stands out from its neighbours
    cells = [[(image, title, marked)] for image, title in zip(images, titles)]
    if neighbours is not None:
        k = max((len(near) for near in neighbours), default=0)
        for group, near in zip(cells, neighbours):
            group += [(thumb, caption, False) for thumb, caption in near]
            group += [(None, "", False)] * (k - len(near))
        n_columns = (1 + k) * (2 if k <= 3 else 1)
    cells = [cell for group in cells for cell in group]
    n = max(len(cells), 1)
    n_columns = min(n_columns, n)
    n_rows = int(np.ceil(n / n_columns))
    fig = figure_module.Figure(figsize=(2.2 * n_columns, 2.6 * n_rows),
                               layout="constrained")
    # with the default padding (0.04 in) the top line of a four-line caption,
    # the file name, came out cut at the figure's top edge
    fig.get_layout_engine().set(h_pad=0.1)
    axes = np.atleast_1d(fig.subplots(n_rows, n_columns, squeeze=False)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, (image, title, mark) in zip(axes, cells):
        # a file name that is not UTF-8 holds surrogates, which the font
        # renderer refuses: show its bad bytes as U+FFFD
        title = _literal(title.encode("utf-8", "surrogateescape")
                         .decode("utf-8", "replace"))
        if image is not None:
            ax.imshow(image)
        if mark:
            ax.set_title(title, fontsize=7, fontweight="bold", color="#b00020")
        else:
            ax.set_title(title, fontsize=7)
    return _with_fallback_fonts(fig)
