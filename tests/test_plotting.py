"""The report figures: class names drawn in any script the machine has a font for."""

import io
import logging
import warnings

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from hybridclf import plotting  # noqa: E402

# a character that DejaVu Sans (matplotlib's default) lacks and STIX, which
# matplotlib ships too, has: a class name in a script the default font lacks
SCRIPT_G = "\u210a"
THAI = "พระสมเด็จ"


def _glyph_warnings(fig):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png", dpi=50)
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_class_names_are_drawn_with_a_font_that_has_them():
    # the confusion matrix and the error gallery drew such names as boxes
    # (a Thai class, พระสมเด็จ, on a machine with a Thai font)
    labels = [f"{SCRIPT_G} class", "plain"]
    fig = plotting.plot_confusion_matrix([[3, 1], [0, 4]], labels)
    assert _glyph_warnings(fig) == []
    gallery = plotting.plot_error_gallery([np.zeros((8, 8, 3), np.uint8)],
                                          [f"true {SCRIPT_G} class"])
    assert _glyph_warnings(gallery) == []


def test_a_script_no_font_has_is_named_once(caplog):
    if plotting._font_for(THAI[0]) is not None:
        pytest.skip("this machine has a Thai font")
    plotting._warn_lacking.cache_clear()
    with caplog.at_level(logging.WARNING, logger="hybridclf.plotting"):
        for _ in range(2):
            plotting.plot_confusion_matrix([[1]], [THAI])
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "fonts-thai-tlwg" in warned[0]
    assert all(c in warned[0] for c in THAI)


@pytest.mark.parametrize("name", ["a $\\x$", "rate $^$.jpg", "cost $5 or $6",
                                  "a\\$b$"])
def test_a_name_with_dollar_signs_is_drawn_as_written(name):
    # matplotlib read the text between two '$' as TeX: 'cost $5 or $6' came
    # out in italics, and 'a $\x$' raised a ParseFatalException at savefig,
    # which ended `hybridclf evaluate` without a report
    from matplotlib.text import Text

    figures = [plotting.plot_confusion_matrix([[3, 1], [0, 4]], [name, "b"]),
               plotting.plot_error_gallery([np.zeros((8, 8, 3), np.uint8)],
                                           [f"{name}\ntrue b"]),
               plotting.plot_block_importance({name: {"mean": 0.1, "std": 0.0}})]
    for fig in figures:
        fig.savefig(io.BytesIO(), format="png", dpi=50)
        drawn = [text._preprocess_math(text.get_text())
                 for text in fig.findobj(Text) if "$" in text.get_text()]
        assert drawn and all(math is False and name in shown
                             for shown, math in drawn)
